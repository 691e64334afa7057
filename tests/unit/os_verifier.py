"""truststore as it behaves on Windows and macOS, run on Linux, and a TLS server on loopback.

What truststore 0.10 does there (truststore/_api.py, _windows.py, _macos.py): while wrapping, its
`_configure_context` switches OpenSSL's own checks off (CERT_NONE, no host-name check); once the
handshake is done, `TruststoreSSLSocket.do_handshake` hands the presented chain to the OS
(`_verify_peercerts_impl`), and if the OS refuses it, calls `self.close()` before re-raising the
SSLCertVerificationError. The SSLSocket's `_sslobj` is then None, so `getpeercert()` and
`get_unverified_chain()` raise AttributeError. The CA file reaches the OS only through
`ssl_context.get_ca_certs(binary_form=True)`, which returns CA certificates only. The memory-BIO
`TruststoreSSLObject` raises the same error but closes nothing.

`behave_like_windows()` swaps in only the two platform hooks, copies of truststore's Windows
`_configure_context` and a `_verify_peercerts_impl` that, like CryptoAPI with no system root that
knows our test CAs, trusts a chain only if it leads to one of `get_ca_certs()`. truststore's own
code (the wrapper classes, the close on refusal) runs unchanged.
"""

from __future__ import annotations

import contextlib
import datetime
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import truststore._api as truststore_api
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from truststore._ssl_constants import _set_ssl_context_verify_mode

from sstpvpn.client import trust
from tests.gui.tls_server import LoopbackTlsServer

# CERT_E_UNTRUSTEDROOT, as FormatMessageW words it.
UNTRUSTED_CODE = 0x800B0109
UNTRUSTED_MESSAGE = "A certificate chain processed, but terminated in a root certificate which is not trusted by the trust provider."
OS_UNTRUSTED = (
    f"The server's certificate was not accepted by the system's trust store ({UNTRUSTED_MESSAGE}): "
    "if you trust this server, add its CA certificate to the profile (--ca-file)."
)


@contextlib.contextmanager
def _configure_context(ctx: ssl.SSLContext) -> Iterator[None]:
    """truststore/_windows.py's (and _macos.py's) `_configure_context`."""
    check_hostname = ctx.check_hostname
    verify_mode = ctx.verify_mode
    ctx.check_hostname = False
    _set_ssl_context_verify_mode(ctx, ssl.CERT_NONE)
    try:
        yield
    finally:
        ctx.check_hostname = check_hostname
        _set_ssl_context_verify_mode(ctx, verify_mode)


def _verify_peercerts_impl(ssl_context: ssl.SSLContext, cert_chain: list[bytes], server_hostname: str | None = None) -> None:
    """The OS's verdict: the chain must lead to one of the context's CA certificates (the only
    extra anchors truststore gives the OS), each link signed by the next."""
    if not cert_chain:
        raise ssl.SSLCertVerificationError("Peer sent no certificates to verify")
    anchors = [x509.load_der_x509_certificate(der) for der in ssl_context.get_ca_certs(binary_form=True)]
    presented = [x509.load_der_x509_certificate(der) for der in cert_chain]
    current, rest = presented[0], presented[1:]
    for _ in range(len(presented)):
        if any(_issued_by(current, anchor) for anchor in anchors):
            return
        issuer = next((cert for cert in rest if _issued_by(current, cert)), None)
        if issuer is None:
            break
        current = issuer
    error = ssl.SSLCertVerificationError(UNTRUSTED_MESSAGE)
    error.verify_message = UNTRUSTED_MESSAGE
    error.verify_code = UNTRUSTED_CODE
    raise error


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def behave_like_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(truststore_api, "_configure_context", _configure_context)
    monkeypatch.setattr(truststore_api, "_verify_peercerts_impl", _verify_peercerts_impl)
    monkeypatch.setattr(trust, "OS_VERIFIER", True)


# ---------------------------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True)
class Issued:
    pem_path: Path  # the certificate (and, for a served one, its issuer after it)
    key_path: Path
    der: bytes
    not_after: datetime.datetime


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certificate(
    folder: Path,
    label: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    ca: bool = False,
    expired: bool = False,
    basic_constraints: bool = True,
) -> tuple[Issued, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for "localhost" (or a CA): self-signed unless `issuer` is given. A self-signed
    server certificate is what first contact keeps as the CA file."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    not_after = (now - datetime.timedelta(days=2) if expired else now + datetime.timedelta(days=30)).replace(second=0, microsecond=0)
    subject = _name(f"{label} CA" if ca else "localhost")
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=10))
        .not_valid_after(not_after)
    )
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    else:
        if basic_constraints:
            builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    pem = cert.public_bytes(serialization.Encoding.PEM)
    if issuer is not None and not ca:
        pem += issuer[0].public_bytes(serialization.Encoding.PEM)  # served with its issuer
    pem_path, key_path = folder / f"{label}.pem", folder / f"{label}.key"
    pem_path.write_bytes(pem)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return Issued(pem_path, key_path, cert.public_bytes(serialization.Encoding.DER), not_after), cert, key


# ---------------------------------------------------------------------------------------------
# A server


class TlsServer(LoopbackTlsServer):
    """TLS on 127.0.0.1 presenting `served` (certificate, then its issuer if any); see
    tests/gui/tls_server.py."""

    def __init__(self, served: Issued) -> None:
        super().__init__(served.pem_path, served.key_path)
