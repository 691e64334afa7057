"""The test's own PKI for the EAP tests: a CA that issues FreeRADIUS's certificate and the good
client certificate, and a second CA that the server does not trust (its client certificate is
refused) and that a client may be told to trust instead (then FreeRADIUS's certificate is unknown)."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAME = "radius.eap.test"
CLIENT_NAME = "alice"
PASSPHRASE = "key passphrase 1"


@dataclass(frozen=True)
class EapPki:
    ca: Path  # PEM: the CA that issued the server's and the good client's certificate
    other_ca: Path  # PEM: a CA FreeRADIUS does not know
    server_cert: Path
    server_key: Path  # unencrypted PEM, for FreeRADIUS
    client_pem: Path  # certificate + encrypted key (PASSPHRASE), issued by `ca`
    client_p12: Path  # the same as PKCS#12 (PASSPHRASE)
    foreign_client_pem: Path  # certificate + encrypted key, issued by `other_ca`
    big_client_pem: Path  # an RSA-4096 certificate with a long chain: our flight needs several fragments
    server_sha256: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: str, issuer: x509.Name, public_key) -> x509.CertificateBuilder:  # type: ignore[no-untyped-def]
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
    )


def _ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    cert = (
        _builder(cn, _name(cn), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(cn: str, ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], usage, dns: str | None = None):  # type: ignore[no-untyped-def]
    key = _key()
    builder = (
        _builder(cn, ca[0].subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca[1].public_key()), critical=False)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return builder.sign(ca[1], hashes.SHA256()), key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    os.chmod(path, 0o644)
    return path


def _big_client(ca, encrypted) -> bytes:  # type: ignore[no-untyped-def]
    """RSA-4096 client certificate issued by `ca`, sent with three copies of the CA certificate
    and a long subjectAltName list: well over the 1398 bytes of one EAP-TLS fragment."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    names = [x509.DNSName(f"host{i}.alice.eap.test") for i in range(60)]
    cert = (
        _builder(CLIENT_NAME, ca[0].subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca[1], hashes.SHA256())
    )
    return _pem(cert) + _pem(ca[0]) * 3 + encrypted(key)


def make_eap_pki(directory: Path) -> EapPki:
    directory.mkdir(parents=True, exist_ok=True)
    ca, other = _ca("EAP Test CA"), _ca("Some Other CA")
    server, server_key = _leaf(SERVER_NAME, ca, ExtendedKeyUsageOID.SERVER_AUTH, SERVER_NAME)
    client, client_key = _leaf(CLIENT_NAME, ca, ExtendedKeyUsageOID.CLIENT_AUTH)
    foreign, foreign_key = _leaf(CLIENT_NAME, other, ExtendedKeyUsageOID.CLIENT_AUTH)
    encryption = serialization.BestAvailableEncryption(PASSPHRASE.encode())

    def encrypted(key) -> bytes:  # type: ignore[no-untyped-def]
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    return EapPki(
        ca=_write(directory / "ca.pem", _pem(ca[0])),
        other_ca=_write(directory / "other-ca.pem", _pem(other[0])),
        server_cert=_write(directory / "server.pem", _pem(server) + _pem(ca[0])),
        server_key=_write(
            directory / "server.key",
            server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        ),
        client_pem=_write(directory / "client.pem", _pem(client) + encrypted(client_key)),
        client_p12=_write(directory / "client.p12", pkcs12.serialize_key_and_certificates(b"alice", client_key, client, [ca[0]], encryption)),
        foreign_client_pem=_write(directory / "foreign.pem", _pem(foreign) + encrypted(foreign_key)),
        big_client_pem=_write(directory / "big.pem", _big_client(ca, encrypted)),
        server_sha256=server.fingerprint(hashes.SHA256()),
    )
