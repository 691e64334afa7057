"""Certificates for the first-contact and trust tests: a private root CA, an intermediate, leaves,
and a self-signed certificate with the serial number SoftEther gives its own (0, or negative),
which `cryptography`'s builder refuses to make: it is built with serial 1, then that byte is
changed and the certificate signed again."""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Made:
    der: bytes
    key: Key

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_der_x509_certificate(self.der)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key(kind: str) -> Key:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())


def make(
    subject: str,
    issuer: Made | None = None,
    *,
    ca: bool = False,
    dns: str | None = None,
    key: str = "ec",
    days: tuple[int, int] = (-1, 30),
    serial: int = 1,
    basic_constraints: bool = True,
) -> Made:
    """A certificate for `subject`, issued by `issuer` (self-signed without one)."""
    own_key = _key(key)
    signer_key = issuer.key if issuer else own_key
    issuer_name = issuer.certificate.subject if issuer else _name(subject)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(own_key.public_key())
        .serial_number(serial)
        .not_valid_before(now + datetime.timedelta(days=days[0]))
        .not_valid_after(now + datetime.timedelta(days=days[1]))
    )
    if basic_constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    if dns is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    certificate = builder.sign(signer_key, hashes.SHA256())
    return Made(certificate.public_bytes(serialization.Encoding.DER), own_key)


def private_chain(name: str = "localhost", key: str = "ec") -> tuple[Made, Made, Made]:
    """(root CA, intermediate CA, leaf for `name`)."""
    root = make("Example Private Root CA", ca=True, key=key)
    intermediate = make("Example Issuing CA", root, ca=True, key=key)
    return root, intermediate, make(name, intermediate, dns=name, key=key)


# ---------------------------------------------------------------------------------------------
# DER surgery for a serial number the builder refuses


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _element(der: bytes, offset: int) -> tuple[int, int]:
    """(content start, end) of the element at `offset`."""
    length, position = der[offset + 1], offset + 2
    if length & 0x80:
        count = length & 0x7F
        length, position = int.from_bytes(der[position : position + count], "big"), position + count
    return position, position + length


def with_serial_byte(made: Made, value: int, signer: Made | None = None) -> bytes:
    """`made` (built with serial 1) with its one-byte serial number set to `value` (0x00: zero,
    0x80-0xFF: negative), signed again by `signer` (itself by default)."""
    der = made.der
    certificate_start, _ = _element(der, 0)
    tbs_content, tbs_end = _element(der, certificate_start)
    position = tbs_content
    if der[position] == 0xA0:
        position = _element(der, position)[1]
    assert der[position : position + 3] == b"\x02\x01\x01", "built with serial 1"
    tbs = bytearray(der[certificate_start:tbs_end])
    tbs[position - certificate_start + 2] = value
    algorithm_end = _element(der, tbs_end)[1]
    algorithm = der[tbs_end:algorithm_end]
    key = (signer or made).key
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(bytes(tbs), padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = key.sign(bytes(tbs), ec.ECDSA(hashes.SHA256()))
    bit_string = b"\x03" + _length(len(signature) + 1) + b"\x00" + signature
    body = bytes(tbs) + algorithm + bit_string
    return b"\x30" + _length(len(body)) + body


def softether_like(folder: Path, name: str = "localhost", value: int = 0x00) -> tuple[Path, Path, bytes]:
    """A self-signed server certificate for `name` with serial number 0 (or the negative one
    `value` gives), written as PEM with its key: (certificate path, key path, DER)."""
    made = make(name, dns=name)
    der = with_serial_byte(made, value)
    pem = "-----BEGIN CERTIFICATE-----\n"
    encoded = base64.b64encode(der).decode("ascii")
    pem += "\n".join(encoded[i : i + 64] for i in range(0, len(encoded), 64)) + "\n-----END CERTIFICATE-----\n"
    cert_path, key_path = folder / "softether.pem", folder / "softether.key"
    cert_path.write_text(pem)
    key_path.write_bytes(made.key_pem())
    return cert_path, key_path, der
