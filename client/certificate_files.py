"""Checks of the certificate files a user names (extra CA certificates for the server or the EAP
server), before anything connects: one sentence per problem. Shared by the profile validation and
the EAP options."""

from __future__ import annotations

from pathlib import Path

from .core.i18n import _


def ca_file_problem(path: Path) -> str | None:
    """None when the file exists and holds at least one PEM certificate. A server certificate
    kept there on first contact may be SoftEther's, whose serial number cryptography warns about:
    it is read as `trust.load_certificate` reads it."""
    from . import trust

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _("The CA file {path} does not exist.").format(path=path)
    except OSError as error:
        return _("The CA file {path} cannot be read ({reason}).").format(path=path, reason=error.strerror)
    for der in trust.pem_certificates(data):
        try:
            trust.load_certificate(der)
        except ValueError:
            continue
        return None
    return _("The CA file {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----).").format(path=path)
