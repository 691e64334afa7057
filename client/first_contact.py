"""First contact with a server whose self-signed certificate nobody trusts yet.

The tray app never trusts such a certificate silently: it reads the certificate over a look-only
connection (nothing but the TLS handshake and close_notify is sent, as in `diagnose`), shows its
SHA-256 and SHA-1 thumbprints, and only if the user agrees keeps it as the profile's CA file and
pins its SHA-256. From then on the connection checks the chain against exactly that certificate,
the host name, and the pin (on Windows and macOS, where the OS verifier never sees a CA file that is
not a CA certificate, through `trust.leaf_anchors`: the server must present exactly it).
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import trust
from .core.types import Failure, FailureKind, Layer
from .transport import TransportError, TransportSettings, open_stream, tls_handshake


@dataclass(frozen=True)
class PresentedCertificate:
    """The leaf certificate a server presents, and what the user needs to decide about it."""

    der: bytes
    facts: trust.CertificateFacts
    self_signed: bool
    name_problem: str | None  # the certificate is not for the host we connect to

    @property
    def sha256_hex(self) -> str:
        return hashlib.sha256(self.der).hexdigest()

    @property
    def sha256_colons(self) -> str:
        return trust.colon_hex(hashlib.sha256(self.der).digest())

    @property
    def sha1_colons(self) -> str:
        return trust.colon_hex(hashlib.sha1(self.der).digest())

    @property
    def pem(self) -> bytes:
        return x509.load_der_x509_certificate(self.der).public_bytes(serialization.Encoding.PEM)

    @property
    def can_be_pinned(self) -> bool:
        """Pinning makes sense for a self-signed certificate issued for the right name."""
        return self.self_signed and self.name_problem is None


def describe_presented(der: bytes, expected_name: str) -> PresentedCertificate:
    certificate = x509.load_der_x509_certificate(der)
    return PresentedCertificate(
        der, trust.describe_certificate(der), is_self_signed(certificate), trust.server_name_problem(certificate, expected_name)
    )


def fetch_presented_certificate(settings: TransportSettings) -> PresentedCertificate:
    """Connect (through the profile's proxy, if any), read the server's certificate without trusting
    it, and close. Raises TransportError with the sentence when the server cannot be reached."""
    raw, _ = open_stream(settings)
    tls = tls_handshake(raw, settings, trust.inspecting_context())
    try:
        chain = trust.peer_chain(tls)
    finally:
        try:
            tls.close()
        except (OSError, ssl.SSLError):
            pass
    if not chain:
        raise TransportError(Failure(Layer.TLS, "The server sent no certificate: it cannot prove who it is.", FailureKind.TRUST))
    return describe_presented(chain[0], settings.expected_name)


def is_self_signed(certificate: x509.Certificate) -> bool:
    """Issued by itself: same name as issuer and subject, signed by its own key."""
    return trust.is_self_signed(certificate)
