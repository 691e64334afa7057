"""A small HTTPS server on loopback with a self-signed certificate for "localhost": the first
contact the profile editor's Test button must not trust silently; and the loopback TLS server it
runs on, which other tests give their own certificates. Every request gets "HTTP/1.1 200 OK",
which is what an SSTP server answers to the SSTP request."""

from __future__ import annotations

import datetime
import hashlib
import socket
import ssl
import threading
from pathlib import Path
from typing import Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def self_signed_certificate(folder: Path, name: str = "localhost") -> tuple[Path, Path, bytes]:
    """(certificate PEM path, key PEM path, certificate DER)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path, certificate.public_bytes(serialization.Encoding.DER)


HANDSHAKE_TIMEOUT = 5.0


class LoopbackTlsServer:
    """TLS on 127.0.0.1 presenting the chain in `pem_path`. To a request ending in an empty line it
    answers as SSTP servers answer the SSTP request; it counts the connections it accepted and
    keeps the requests."""

    def __init__(self, pem_path: Path, key_path: Path) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(pem_path, key_path)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.connections = 0
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-tls", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with raw:
                # A handshake gets seconds, as real servers give it (the command line's head start
                # opens TCP before its imports end); the conversation after it reads by read_timeout.
                raw.settimeout(HANDSHAKE_TIMEOUT)
                try:
                    with self._context.wrap_socket(raw, server_side=True) as tls:
                        tls.settimeout(self.read_timeout)
                        self._converse(tls)
                except (ssl.SSLError, OSError):
                    continue  # a client that rejected our certificate, or only looked at it

    read_timeout = 5.0

    def _converse(self, tls: ssl.SSLSocket) -> None:
        """One connection after the handshake: read the HTTP request and answer it."""
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = tls.recv(4096)
            if not chunk:
                break
            request += chunk
        if request:
            self.requests.append(request)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n")  # as SSTP servers answer


class SelfSignedHttpsServer(LoopbackTlsServer):
    def __init__(self, folder: Path) -> None:
        cert_path, key_path, self.der = self_signed_certificate(folder)
        self.sha256 = hashlib.sha256(self.der).hexdigest()
        self.sha1 = hashlib.sha1(self.der).hexdigest()
        super().__init__(cert_path, key_path)
