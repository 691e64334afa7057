"""A throwaway PKI for the test server: a private CA, the right certificate and two wrong ones.

Kinds of served certificate:
  "good"        vpn.test (+ IP SAN of the server), issued by our CA: the client must accept it.
  "wrong-name"  other.test, issued by our CA: the client must reject it (host name mismatch).
  "other-ca"    vpn.test, issued by a second CA the client does not trust: must be rejected.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERTIFICATE_KINDS = ("good", "wrong-name", "other-ca")


@dataclass(frozen=True)
class ServerCertificate:
    kind: str
    cert_path: Path  # PEM
    key_path: Path  # traditional PKCS#1 RSA PEM, which SoftEther's ServerCertSet wants
    sha256: str  # hex SHA-256 of the certificate's DER, as a client sees it on the wire


@dataclass(frozen=True)
class ServerPki:
    ca_path: Path  # the CA the client is told to trust
    other_ca_path: Path  # a CA the client does not trust
    certificates: dict[str, ServerCertificate]


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    # Back-dated an hour so a slightly skewed clock in a namespace never makes it "not yet valid".
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))


def _make_ca(common_name: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _key()
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, hashes.SHA256()), key


def _make_leaf(dns_name: str, ip: str | None, ca: x509.Certificate, ca_key: rsa.RSAPrivateKey) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _key()
    alt_names: list[x509.GeneralName] = [x509.DNSName(dns_name)]
    if ip is not None:
        alt_names.append(x509.IPAddress(ipaddress.ip_address(ip)))
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name(dns_name))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    return builder.sign(ca_key, hashes.SHA256()), key


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _save_leaf(directory: Path, kind: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> ServerCertificate:
    cert_path, key_path = directory / f"{kind}.pem", directory / f"{kind}.rsa.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return ServerCertificate(kind, cert_path, key_path, hashlib.sha256(der).hexdigest())


def make_test_pki(directory: Path, server_name: str, server_ip: str, other_name: str) -> ServerPki:
    """Write the CAs and the three server certificates into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _make_ca("SSTP VPN Test CA")
    other_ca, other_ca_key = _make_ca("SSTP VPN Untrusted Test CA")
    ca_path, other_ca_path = directory / "ca.pem", directory / "other-ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    other_ca_path.write_bytes(other_ca.public_bytes(serialization.Encoding.PEM))
    certificates = {
        "good": _save_leaf(directory, "good", *_make_leaf(server_name, server_ip, ca, ca_key)),
        # No IP SAN: connecting by address must not make the wrong name acceptable.
        "wrong-name": _save_leaf(directory, "wrong-name", *_make_leaf(other_name, None, ca, ca_key)),
        "other-ca": _save_leaf(directory, "other-ca", *_make_leaf(server_name, server_ip, other_ca, other_ca_key)),
    }
    return ServerPki(ca_path, other_ca_path, certificates)
