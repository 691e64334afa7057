"""First contact with a server whose certificate nobody trusts yet: self-signed, or issued by a
private CA this computer does not know.

The tray app never trusts such a certificate silently: it reads the chain over a look-only
connection (nothing but the TLS handshake and close_notify is sent, as in `diagnose`), shows the
thumbprints, and only if the user agrees does one of two things (`trust_offered`):

- **Trust this server's certificate** (`Choice.PIN`): pin the leaf's SHA-256. A pinned certificate
  is trusted when the server presents exactly it, whoever issued it (`transport.verified_handshake`);
  a self-signed one is also kept as the profile's CA file, as before.
- **Trust the issuing CA** (`Choice.CA`), when the server sends its CA: the top of the presented
  chain (each certificate checked to have signed the one below it) is added to the profile's own CA
  file in the user's data folder (`ProfileStore.certificates_dir`), after the certificates of the CA
  file the profile had. Every certificate it issues for the server's name is then trusted.

A profile with a pin whose server now presents another certificate gets neither: the user is told
that the certificate changed since the pin was made (`Profile.pinned_at`), with the old and the new
thumbprint, and may pin the new one.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import ssl
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509

from . import trust
from .core.i18n import _
from .core.types import Failure, FailureKind, Layer
from .profiles import Profile, ProfileStore, Revocation
from .revocation import Outcome, check_connection
from .transport import TransportError, TransportSettings, open_stream, tls_handshake


class Choice(enum.Enum):
    PIN = "pin"  # trust this server's certificate
    CA = "ca"  # trust the issuing CA


class _Shown:
    """What the dialogs show of a certificate (`der`): its thumbprints and PEM form."""

    der: bytes

    @property
    def sha256_colons(self) -> str:
        return trust.colon_hex(hashlib.sha256(self.der).digest())

    @property
    def sha1_colons(self) -> str:
        return trust.colon_hex(hashlib.sha1(self.der).digest())

    @property
    def pem(self) -> bytes:
        return ssl.DER_cert_to_PEM_cert(self.der).encode("ascii")


@dataclass(frozen=True)
class OfferedCa(_Shown):
    """The CA certificate a server presented with its own: what "Trust the issuing CA" keeps."""

    der: bytes
    facts: trust.CertificateFacts


@dataclass(frozen=True)
class PresentedCertificate(_Shown):
    """The leaf certificate a server presents, and what the user needs to decide about it."""

    der: bytes
    facts: trust.CertificateFacts
    self_signed: bool
    name_problem: str | None  # the certificate is not for the host we connect to
    issuing_ca: OfferedCa | None = None  # the top of the presented chain, when it leads from the leaf to a CA
    unusable: str | None = None  # out of its dates, or not for TLS servers: trusting it would not help

    @property
    def sha256_hex(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    @property
    def can_be_pinned(self) -> bool:
        """Trusting it makes sense: issued for the right name, in date, for a TLS server (self-signed
        or from an authority nobody here trusts: the offer is the same)."""
        return self.name_problem is None and self.unusable is None

    @property
    def can_trust_ca(self) -> bool:
        return self.can_be_pinned and self.issuing_ca is not None

    @property
    def ca_missing(self) -> bool:
        """Issued by an authority the server does not send: only the pin can be offered."""
        return not self.self_signed and self.issuing_ca is None

    @property
    def issuer(self) -> str:
        return self.facts.issuer


def describe_presented(chain: list[bytes] | bytes, expected_name: str) -> PresentedCertificate:
    """What the user is shown about `chain` (DER, leaf first, as presented; or only the leaf)."""
    chain = [chain] if isinstance(chain, bytes) else list(chain)
    der = chain[0]
    certificate = trust.load_certificate(der)
    self_signed = trust.is_self_signed_der(der)
    unusable = trust.anchored_leaf_problem(der) or trust.usage_problem(certificate)
    return PresentedCertificate(
        der,
        trust.describe_certificate(der),
        self_signed,
        trust.server_name_problem(certificate, expected_name),
        None if self_signed else _issuing_ca(chain),
        unusable,
    )


def _issuing_ca(chain: list[bytes]) -> OfferedCa | None:
    """The top of the presented chain, as far as each certificate signed the one below it, if that
    is a CA certificate; None when the server does not send the leaf's issuer."""
    top = None
    for child, parent in zip(chain, chain[1:], strict=False):
        try:
            if not trust.issued_by(child, parent) or not _is_ca(parent):
                break
        except ValueError:
            break
        top = parent
    return None if top is None else OfferedCa(top, trust.describe_certificate(top))


def _is_ca(der: bytes) -> bool:
    try:
        return bool(trust.load_certificate(der).extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def fetch_presented_certificate(settings: TransportSettings) -> PresentedCertificate:
    """Connect (through the profile's proxy, if any), read the server's chain without trusting it,
    and close. Raises TransportError with the sentence when the server cannot be reached."""
    raw, _address = open_stream(settings)
    tls = tls_handshake(raw, settings, trust.inspecting_context())
    try:
        chain = trust.peer_chain(tls)
    finally:
        try:
            tls.close()
        except (OSError, ssl.SSLError):
            pass
    if not chain:
        raise TransportError(Failure(Layer.TLS, _("The server sent no certificate: it cannot prove who it is."), FailureKind.TRUST))
    presented = describe_presented(chain, settings.expected_name)
    if presented.unusable is None:
        # A revoked certificate (the connection that failed has just found it so, and the revocation
        # cache remembers it) is never offered for trust: pinning it would not make it good.
        checked = check_connection([], chain, Revocation.SOFT)
        if checked.outcome is Outcome.REVOKED:
            presented = replace(presented, unusable=checked.refusal)
    return presented


def is_self_signed(certificate: x509.Certificate) -> bool:
    """Issued by itself: same name as issuer and subject, signed by its own key."""
    return trust.is_self_signed(certificate)


# ---------------------------------------------------------------------------------------------
# A changed certificate, and what the user's choice does to the profile


@dataclass(frozen=True)
class ChangedCertificate:
    """A pinned profile's server presents another certificate than the pinned one."""

    server: str
    old_sha256: str  # AB:CD:..., as pinned
    new_sha256: str
    pinned_at: str  # ISO 8601, "" when the profile does not say (made before it kept the date)

    def sentence(self) -> str:
        day = pin_date(self.pinned_at)
        if day:
            sentence = _("The certificate of {server} changed since you trusted it on {date}; old {old}, new {new}.")
        else:
            sentence = _("The certificate of {server} changed since you trusted it; old {old}, new {new}.")
        return sentence.format(server=self.server, date=day, old=self.old_sha256, new=self.new_sha256)


def certificate_change(profile: Profile, certificate: PresentedCertificate) -> ChangedCertificate | None:
    """None unless the profile has a pin and the server presented another certificate."""
    if not profile.pin_sha256:
        return None
    try:
        old = trust.parse_pin(profile.pin_sha256)
    except ValueError:
        return None
    if old.hex() == certificate.sha256_hex:
        return None
    return ChangedCertificate(profile.server, trust.colon_hex(old), certificate.sha256_colons, profile.pinned_at)


def pin_timestamp(now: datetime.datetime | None = None) -> str:
    """What `Profile.pinned_at` holds: the UTC time, ISO 8601 to the second."""
    return (now or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pin_date(pinned_at: str) -> str:
    """The day of `pinned_at` (YYYY-MM-DD), or "" when it is empty or not a date."""
    try:
        return datetime.datetime.fromisoformat(pinned_at.replace("Z", "+00:00")).strftime("%Y-%m-%d")
    except ValueError:
        return ""


def trust_offered(
    store: ProfileStore, profile: Profile, certificate: PresentedCertificate, choice: Choice, now: datetime.datetime | None = None
) -> Profile:
    """`profile` with what the user chose to trust (the caller saves it). Writes the certificate
    file it names: the self-signed leaf for a pin, the CA file with the issuing CA added."""
    if choice is Choice.PIN:
        ca_file = profile.ca_file
        if certificate.self_signed:  # as before: it is also its own CA file
            ca_file = str(store.save_pinned_certificate(profile.id, certificate.pem))
        return replace(profile, ca_file=ca_file, pin_sha256=certificate.sha256_colons, pinned_at=pin_timestamp(now))
    if certificate.issuing_ca is None:
        raise ValueError(_("The server did not send the certificate of its issuing authority: only its own certificate can be trusted."))
    kept = _kept_certificates(profile.ca_file)
    added = [der for der in kept if der != certificate.issuing_ca.der] + [certificate.issuing_ca.der]
    text = b"".join(ssl.DER_cert_to_PEM_cert(der).encode("ascii") for der in added)
    path = store.save_pinned_certificate(profile.id, text)
    return replace(profile, ca_file=str(path), pin_sha256="", pinned_at="")


def _kept_certificates(ca_file: str) -> list[bytes]:
    """The certificates of the profile's CA file so far (none if it has none or it cannot be read)."""
    if not ca_file:
        return []
    try:
        return trust.pem_certificates(Path(ca_file).read_bytes())
    except OSError:
        return []
