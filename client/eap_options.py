"""EAP-TLS and PEAP as profile settings and command-line options, shared by `sstp-vpn connect`,
`sstp-vpn profiles add` and the profile-to-settings code.

For EAP-TLS the profile's secret in the keyring (the "password" slot, `--password-stdin`) is the
passphrase of the certificate's private key: empty for an unencrypted key. For PEAP it is the
user's password, as for MS-CHAPv2.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .certificate_files import ca_file_problem
from .core.i18n import _

if TYPE_CHECKING:  # eap_tls (ssl, cryptography) is imported when a connection needs it
    from .core.eap_tls import TlsMethodSettings

AUTH_CHOICES = ("password", "eap-tls", "peap")  # "password": MS-CHAPv2 / EAP-MSCHAPv2 (and what --allow-* add)
OPTION_NAMES = ("auth", "client_cert", "eap_server_name", "eap_ca_file", "eap_pin_sha256", "eap_tls13")


def method_names() -> dict[str, str]:
    """Sign-in method -> the name the user reads (the editor's choices, `profiles show`)."""
    return {
        # Translators: a sign-in method; MS-CHAPv2 and EAP-MSCHAPv2 are protocol names
        "password": _("MS-CHAPv2 or EAP-MSCHAPv2"),
        # Translators: a sign-in method: EAP-TLS with the user's certificate
        "eap-tls": _("EAP-TLS (certificate)"),
        "peap": "PEAP (EAP-MSCHAPv2)",  # not translated: protocol names only
    }


class _MethodNames(Mapping[str, str]):
    """METHOD_NAMES for callers that still look names up in a mapping: each lookup is translated
    when it happens (never at import time, before a language is chosen)."""

    def __getitem__(self, method: str) -> str:
        return method_names()[method]

    def __iter__(self) -> Iterator[str]:
        return iter(AUTH_CHOICES)

    def __len__(self) -> int:
        return len(AUTH_CHOICES)


METHOD_NAMES: Mapping[str, str] = _MethodNames()


def add_eap_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--auth", choices=AUTH_CHOICES, default=None, help=_("sign-in method: password (MS-CHAPv2, EAP-MSCHAPv2), eap-tls (a certificate) or peap")
    )
    parser.add_argument(
        "--client-cert",
        metavar="FILE",
        default="",
        help=_("EAP-TLS: your certificate and key, PEM or PKCS#12 (.p12); the key's passphrase is the password"),
    )
    parser.add_argument(
        "--eap-server-name", metavar="NAME", default="", help=_("EAP-TLS/PEAP: the name in the authentication (NPS/RADIUS) server's certificate")
    )
    parser.add_argument(
        "--eap-ca-file", metavar="PEM", default="", help=_("EAP-TLS/PEAP: also trust these CA certificates for the authentication server")
    )
    parser.add_argument(
        "--eap-pin-sha256",
        metavar="HEX",
        default="",
        help=_("EAP-TLS/PEAP: also require this SHA-256 fingerprint of the authentication server's certificate"),
    )
    parser.add_argument("--eap-tls13", action="store_true", help=_("EAP-TLS: allow TLS 1.3 (RFC 9190)"))


def settings_problems(method: str, client_cert: str, server_name: str, ca_file: str, pin: str) -> dict[str, str]:
    """Field -> sentence, for the profile editor, `profiles add` and `connect`."""
    problems: dict[str, str] = {}
    if method not in AUTH_CHOICES:
        problems["auth_method"] = _("The sign-in method must be one of {methods}.").format(methods=", ".join(AUTH_CHOICES))
        return problems
    if method == "password":
        return problems
    from . import trust  # cryptography: only for the EAP methods

    if method == "eap-tls":
        if not client_cert:
            problems["client_certificate"] = _("EAP-TLS needs your certificate file (PEM with the key, or PKCS#12).")
        elif not os.path.isfile(client_cert):
            problems["client_certificate"] = _("The certificate file {path} does not exist.").format(path=client_cert)
    if server_name:
        try:
            trust.reference_identity(server_name)
        except ValueError as error:
            problems["eap_server_name"] = str(error)
    if ca_file:
        problem = ca_file_problem(Path(ca_file))
        if problem:
            problems["eap_ca_file"] = problem
    if pin:
        try:
            trust.parse_pin(pin)
        except ValueError as error:
            problems["eap_pin_sha256"] = str(error)
    if not server_name and not pin:
        problems["eap_server_name"] = _(
            "Enter the name in the authentication server's certificate (EAP server name), or its SHA-256 fingerprint: otherwise it cannot be checked."
        )
    return problems


def tls_method_settings(
    method: str, client_cert: str, server_name: str, ca_file: str, pin: str, tls13: bool, password: str
) -> TlsMethodSettings | None:
    """The engine's settings for EAP-TLS/PEAP, or None for the password methods."""
    if method == "password":
        return None
    from . import trust
    from .core.eap_tls import TlsMethod, TlsMethodSettings

    return TlsMethodSettings(
        TlsMethod(method),
        server_name=server_name or None,
        ca_file=Path(ca_file) if ca_file else None,
        pin_sha256=trust.parse_pin(pin) if pin else None,
        client_certificate=Path(client_cert) if client_cert else None,
        key_passphrase=(password or None) if method == "eap-tls" else None,
        allow_tls13=tls13,
    )


def options_problem(args: argparse.Namespace) -> str | None:
    """`connect HOST ...`: what is wrong with the EAP options as given (the sentences), or None."""
    client_cert = os.path.abspath(args.client_cert) if args.client_cert else ""
    problems = settings_problems(args.auth or "password", client_cert, args.eap_server_name, args.eap_ca_file, args.eap_pin_sha256)
    return " ".join(problems.values()) or None
