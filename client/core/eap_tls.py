"""EAP-TLS (RFC 5216) for the peer, and the TLS machinery PEAP (peap.py) shares with it: a
sans-IO TLS client over `ssl.MemoryBIO`, the EAP-TLS framing (L/M/S flags, fragments, ACKs) and
the key derivation (MSK).

The EAP server's certificate is checked like the SSTP server's (trust.py): chain against the
system store plus an optional CA file, then the expected server name (subjectAltName only), the
server-auth usage and an optional SHA-256 pin. There is no way to trust it silently: without an
expected name and without a pin the method refuses to start.

How the keys are obtained. RFC 5216 2.3: Key_Material = TLS-PRF(master_secret, "client EAP
encryption", client_random || server_random), MSK = the first 64 bytes, EMSK the next 64. Python's
`ssl` offers neither the master secret nor `export_keying_material` (3.11-3.13: `SSLObject` has no
such method). Options weighed:
* pyOpenSSL's `Connection.export_keying_material`: a second TLS stack and dependency, and it cannot
  use `truststore`, so the EAP server's chain would not be checked against the Windows/macOS stores
  the way the SSTP server's is.
* ctypes into the libssl behind `_ssl` (SSL_export_keying_material on the SSLObject's SSL*): relies
  on CPython's private object layout.
* `SSLContext.keylog_filename` (documented, OpenSSL's NSS key log): OpenSSL writes
  `CLIENT_RANDOM <client_random> <master_secret>` (TLS 1.2) or `EXPORTER_SECRET ...` (TLS 1.3)
  while the handshake runs. Chosen. The log goes to an anonymous in-memory file (memfd) on Linux,
  elsewhere to a file in a fresh 0700 directory; each context has its own, it is read once right
  after the handshake and closed/deleted at once. The server random, which the log lacks, is read
  from the ServerHello record (sent in clear in TLS 1.2).
For TLS 1.2, TLS-PRF(master, "client EAP encryption", randoms) equals the RFC 5705 exporter with
that label and no context, so both views agree. For TLS 1.3 (RFC 9190, EAP-TLS only and only when
the profile allows it: see `MAX_TLS_VERSION`), Key_Material = TLS-Exporter(
"EXPORTER_EAP_TLS_Key_Material", 0x0D, 128) is computed from the EXPORTER_SECRET line (RFC 8446
7.5), and the method finishes only on the server's commitment message (one 0x00 byte of
application data, RFC 9190 2.5).
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import os
import re
import ssl
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .. import trust
from .i18n import _
from .types import Failure, FailureKind, Layer

WHERE = Layer.AUTH

EAP_TLS_TYPE = 13
PEAP_TYPE = 25

FLAG_LENGTH, FLAG_MORE, FLAG_START = 0x80, 0x40, 0x20
VERSION_MASK = 0x07
FRAGMENT_SIZE = 1398  # TLS bytes per EAP packet: fits a 1500-byte MRU with every header (wpa_supplicant's default)
MAX_MESSAGE = 128 * 1024  # a whole TLS flight from the server; certificate chains stay far below

# The default ceiling is TLS 1.2 for both methods. EAP-TLS over TLS 1.3 (RFC 9190) works with
# FreeRADIUS 3.2 (tests/eap), but no source says how an SSTP server (RRAS) takes its HLAK from a
# TLS 1.3 MSK ([MS-SSTP] predates RFC 9190; we use the first 32 bytes, as for every other EAP
# method), and Windows' own client only uses TLS 1.3 for EAP-TLS on recent builds: so a profile
# must opt in (`TlsMethodSettings.allow_tls13`). PEAP stays at 1.2: with TLS 1.3 its keys come
# from RFC 9427, not from [MS-PEAP], and no server here implements that.
MAX_TLS_VERSION = ssl.TLSVersion.TLSv1_2
TLS13_LABEL = b"EXPORTER_EAP_TLS_Key_Material"

KEY_LABEL = b"client EAP encryption"


# ---------------------------------------------------------------------------------------------
# Settings


class TlsMethod(enum.Enum):
    EAP_TLS = "eap-tls"
    PEAP = "peap"  # PEAPv0 with EAP-MSCHAPv2 inside

    @property
    def eap_type(self) -> int:
        return EAP_TLS_TYPE if self is TlsMethod.EAP_TLS else PEAP_TYPE


@dataclass(frozen=True)
class TlsMethodSettings:
    """What a profile says about EAP-TLS or PEAP. `server_name` is the name the EAP server's
    certificate must carry (often not the SSTP host: NPS has its own certificate); `pin_sha256` a
    SHA-256 fingerprint of that certificate. One of the two is required."""

    method: TlsMethod
    server_name: str | None = None
    ca_file: Path | None = None
    pin_sha256: bytes | None = None
    client_certificate: Path | None = None  # EAP-TLS: PEM (certificate + key) or PKCS#12 (.p12/.pfx)
    key_passphrase: str | None = field(default=None, repr=False)  # from the keyring, never a file
    allow_tls13: bool = False  # EAP-TLS only: offer TLS 1.3 (RFC 9190); see MAX_TLS_VERSION


# ---------------------------------------------------------------------------------------------
# Key derivation


def tls12_prf(secret: bytes, label: bytes, seed: bytes, length: int, hash_name: str = "sha256") -> bytes:
    """TLS 1.2 PRF (RFC 5246 5): P_hash(secret, label || seed)."""
    full_seed = label + seed
    out, a = b"", full_seed
    while len(out) < length:
        a = hmac.digest(secret, a, hash_name)
        out += hmac.digest(secret, a + full_seed, hash_name)
    return out[:length]


def eap_tls_key_material(
    master_secret: bytes, client_random: bytes, server_random: bytes, hash_name: str = "sha256", label: bytes = KEY_LABEL
) -> bytes:
    """RFC 5216 2.3 Key_Material (128 bytes): MSK = [0:64], EMSK = [64:128]."""
    return tls12_prf(master_secret, label, client_random + server_random, 128, hash_name)


def hkdf_expand_label(secret: bytes, label: bytes, context: bytes, length: int, hash_name: str) -> bytes:
    """RFC 8446 7.1 HKDF-Expand-Label."""
    full = b"tls13 " + label
    info = struct.pack("!H", length) + bytes((len(full),)) + full + bytes((len(context),)) + context
    out, block, counter = b"", b"", 0
    while len(out) < length:
        counter += 1
        block = hmac.digest(secret, block + info + bytes((counter,)), hash_name)
        out += block
    return out[:length]


def tls13_exporter(exporter_secret: bytes, label: bytes, context: bytes, length: int, hash_name: str) -> bytes:
    """RFC 8446 7.5 TLS-Exporter(label, context_value, key_length)."""
    empty_hash = hashlib.new(hash_name, b"").digest()
    derived = hkdf_expand_label(exporter_secret, label, empty_hash, len(empty_hash), hash_name)
    return hkdf_expand_label(derived, b"exporter", hashlib.new(hash_name, context).digest(), length, hash_name)


def prf_hash_for(cipher_name: str) -> str:
    """The TLS 1.2 PRF hash of a cipher suite (OpenSSL name): SHA-384 suites use SHA-384, all
    others SHA-256."""
    return "sha384" if cipher_name.upper().endswith("SHA384") else "sha256"


# ---------------------------------------------------------------------------------------------
# Private files for OpenSSL (key log, client key)


@contextlib.contextmanager
def private_file(data: bytes = b"") -> Iterator[tuple[str, Callable[[], bytes]]]:
    """A path OpenSSL can open that nobody else can read, and a function returning its content.
    Linux: an anonymous memory file (never on disk). Elsewhere: a file in a new 0700 directory.
    Closed and removed when the block ends."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("sstp-vpn-eap", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}", lambda: _read_all(fd)
        finally:
            os.close(fd)
        return
    folder = tempfile.mkdtemp(prefix="sstp-vpn-eap-")
    path = os.path.join(folder, "data")
    try:
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            handle.write(data)
        yield path, lambda: Path(path).read_bytes()
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def _read_all(fd: int) -> bytes:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 65536, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------------------------------------
# Client certificate


class CertificateFileError(ValueError):
    """The client certificate file cannot be used; str() is the sentence for the user."""


def load_client_certificate(path: Path, passphrase: str | None) -> tuple[bytes, list[bytes]]:
    """(unencrypted PKCS#8 PEM key, [certificate DER, chain DER...]) from a PEM file (certificate,
    optional chain and private key, the key optionally encrypted) or a PKCS#12 file. Raises
    CertificateFileError with the sentence for the user."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise CertificateFileError(
            _("Cannot read the client certificate file {path} ({reason}): check the path in the profile.").format(
                path=path, reason=error.strerror or error
            )
        ) from None
    password = passphrase.encode("utf-8") if passphrase else None
    if b"-----BEGIN" in data:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError:
            certs = []
        if not certs:
            raise CertificateFileError(
                _("The file {path} holds no certificate: choose the file with your certificate and its key.").format(path=path)
            )
        block = _pem_key_block(data)
        if not block:
            raise CertificateFileError(
                _("The file {path} holds your certificate but not its private key: choose a PEM file with both, or a PKCS#12 (.p12) file.").format(
                    path=path
                )
            )
        try:
            key = serialization.load_pem_private_key(block, password)
        except TypeError:  # encrypted without a passphrase, or a passphrase for an unencrypted key
            raise CertificateFileError(_passphrase_sentence(path, None if b"ENCRYPTED" in block else passphrase)) from None
        except ValueError:
            if b"ENCRYPTED" in block:
                raise CertificateFileError(_passphrase_sentence(path, passphrase)) from None
            raise CertificateFileError(_("The private key in {path} cannot be read: export it again as PEM or PKCS#12.").format(path=path)) from None
    else:
        try:
            p12_key, cert, extra = pkcs12.load_key_and_certificates(data, password)
        except ValueError:
            raise CertificateFileError(_passphrase_sentence(path, passphrase)) from None
        if p12_key is None or cert is None:
            raise CertificateFileError(
                _("The file {path} does not hold both a certificate and its private key: export both into it.").format(path=path)
            )
        key = p12_key
        certs = [cert, *extra]
    chain = [c.public_bytes(serialization.Encoding.DER) for c in certs]
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem, chain


def _pem_key_block(data: bytes) -> bytes:
    """The PEM block of the private key ("PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY", ...)."""
    match = re.search(rb"-----BEGIN ([A-Z ]*PRIVATE KEY)-----.*?-----END \1-----", data, re.S)
    return match.group(0) if match else b""


def _passphrase_sentence(path: Path, passphrase: str | None) -> str:
    if passphrase:
        return _("The passphrase for {path} is wrong, or the file is damaged: enter the passphrase again.").format(path=path)
    return _("The key in {path} is protected by a passphrase: enter it in the profile.").format(path=path)


def _load_into_context(context: ssl.SSLContext, key_pem: bytes, chain: list[bytes]) -> None:
    """load_cert_chain() only takes file names: hand OpenSSL the certificate and the key
    re-encrypted under a one-time passphrase, through a private file that is removed at once."""
    from cryptography.hazmat.primitives import serialization

    one_time = os.urandom(24).hex().encode("ascii")
    key = serialization.load_pem_private_key(key_pem, None)
    encrypted = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(one_time))
    certs = b"".join(ssl.DER_cert_to_PEM_cert(der).encode("ascii") for der in chain)
    with private_file(certs + encrypted) as (path, _read):
        context.load_cert_chain(path, password=one_time)


# ---------------------------------------------------------------------------------------------
# EAP-TLS framing (RFC 5216 2.1.5, 3.1)


class FramingError(ValueError):
    pass


class Framing:
    """Reassembles the server's fragments and cuts ours. `receive()` takes the type data of a
    Request and returns what to do: ("start", b""), ("message", tls_bytes), ("ack", b"") when the
    server acknowledged our fragment, ("fragment", b"") when it sent one with M set (answer with
    `ack()`)."""

    def __init__(self, version: int = 0, fragment_size: int = FRAGMENT_SIZE) -> None:
        self.version = version
        self.fragment_size = fragment_size
        self._incoming = bytearray()
        self._expected: int | None = None
        self._outgoing = b""  # what is left of our message after the fragment just sent

    @property
    def sending(self) -> bool:
        return bool(self._outgoing)

    def receive(self, type_data: bytes) -> tuple[str, bytes]:
        if not type_data:
            # Translators: a technical detail, shown in parentheses after "The authentication server sent a malformed EAP-TLS packet"
            raise FramingError(_("an EAP-TLS request without flags"))
        flags, data = type_data[0], type_data[1:]
        if flags & FLAG_LENGTH:
            if len(data) < 4:
                # Translators: a technical detail, as above
                raise FramingError(_("a TLS Message Length field cut short"))
            total = struct.unpack("!I", data[:4])[0]
            data = data[4:]
            if total > MAX_MESSAGE:
                # Translators: a technical detail, as above
                raise FramingError(_("a TLS message of {size} bytes, more than {limit}").format(size=total, limit=MAX_MESSAGE))
            if not self._incoming:
                self._expected = total
        if flags & FLAG_START:
            self._incoming.clear()
            self._expected = None
            self._outgoing = b""
            return "start", b""
        if self._outgoing and not data and not flags & FLAG_MORE:
            return "ack", b""
        self._incoming += data
        if len(self._incoming) > MAX_MESSAGE:
            # Translators: a technical detail, as above
            raise FramingError(_("TLS fragments adding up to more than {limit} bytes").format(limit=MAX_MESSAGE))
        if flags & FLAG_MORE:
            return "fragment", b""
        message = bytes(self._incoming)
        self._incoming.clear()
        self._expected = None
        return "message", message

    def ack(self) -> bytes:
        """An empty response: acknowledges a fragment, or ends the exchange on our side."""
        return bytes((self.version,))

    def send(self, message: bytes) -> bytes:
        """Type data for the first fragment of `message` (all of it when it fits)."""
        if len(message) <= self.fragment_size:
            self._outgoing = b""
            return bytes((self.version,)) + message
        self._outgoing = message[self.fragment_size :]
        return bytes((FLAG_LENGTH | FLAG_MORE | self.version,)) + struct.pack("!I", len(message)) + message[: self.fragment_size]

    def next_fragment(self) -> bytes:
        chunk, self._outgoing = self._outgoing[: self.fragment_size], self._outgoing[self.fragment_size :]
        flags = self.version | (FLAG_MORE if self._outgoing else 0)
        return bytes((flags,)) + chunk


# ---------------------------------------------------------------------------------------------
# The TLS client over memory buffers


def _server_random(stream: bytes) -> bytes | None:
    """The random of the ServerHello at the start of the server's first flight, or None when
    the stream does not (yet) hold it. Records: type(1) version(2) length(2); handshake:
    type(1) length(3) version(2) random(32)."""
    position = 0
    handshake = b""
    while position + 5 <= len(stream):
        content_type, length = stream[position], struct.unpack_from("!H", stream, position + 3)[0]
        body = stream[position + 5 : position + 5 + length]
        position += 5 + length
        if content_type != 22:
            return None
        handshake += body
        if len(handshake) >= 38:
            return handshake[6:38] if handshake[0] == 2 else None
    return None


@dataclass(frozen=True)
class TlsKeys:
    version: str  # "TLSv1.2" or "TLSv1.3"
    cipher: str
    master_secret: bytes = field(repr=False)  # TLS 1.3: the exporter master secret
    client_random: bytes = field(repr=False)
    server_random: bytes = field(repr=False)  # TLS 1.3: not needed, b""

    def key_material(self, label: bytes = KEY_LABEL) -> bytes:
        """TLS 1.2: RFC 5216 2.3 (label "client EAP encryption", or PEAP's). TLS 1.3: RFC 9190 2.3."""
        if self.version == "TLSv1.3":
            return tls13_exporter(self.master_secret, TLS13_LABEL, bytes((EAP_TLS_TYPE,)), 128, prf_hash_for(self.cipher))
        return eap_tls_key_material(self.master_secret, self.client_random, self.server_random, prf_hash_for(self.cipher), label)


class TlsProblem(Exception):
    """The tunnel cannot be used; `failure` says why."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def _alert_sentences() -> dict[str, str]:
    """The sentence for each TLS alert (by OpenSSL's reason name) the authentication server may send."""
    return {
        "UNKNOWN_CA": _(
            "The authentication server does not trust the authority that issued your certificate: ask the administrator which certificate to use."
        ),
        "BAD_CERTIFICATE": _("The authentication server refused your certificate: ask the administrator which certificate to use."),
        "CERTIFICATE_EXPIRED": _("The authentication server refused your certificate because it has expired: ask for a new one."),
        "CERTIFICATE_REVOKED": _("The authentication server refused your certificate because it was revoked: ask for a new one."),
        "UNSUPPORTED_CERTIFICATE": _(
            "The authentication server refused your certificate as unsuitable: ask the administrator which certificate to use."
        ),
        "ACCESS_DENIED": _("The authentication server denied access to your certificate: ask the administrator to allow it."),
        "HANDSHAKE_FAILURE": _(
            "The authentication server and this client found no TLS settings in common: ask the administrator to allow TLS 1.2 for EAP."
        ),
        "PROTOCOL_VERSION": _("The authentication server does not accept TLS 1.2 for EAP: ask the administrator to allow it."),
    }


def _rename(sentence: str) -> str:
    """trust.py's sentence about "the server", said of the EAP authentication server and its own
    settings. A prefix names the server, rather than words replaced inside the sentence, so that
    it holds in every language (a German or French possessive is no fragment to replace)."""
    sentence = sentence.replace("(--ca-file)", "(--eap-ca-file)")
    sentence = sentence.replace(_("Check the host name in the profile."), _("Check the EAP server name in the profile (--eap-server-name)."))
    # Translators: {sentence} is a sentence about "the server's certificate", said here of the EAP
    # (authentication) server, which is another server than the VPN server
    return _("EAP authentication server: {sentence}").format(sentence=sentence)


class TlsClient:
    """One TLS client session whose records travel in EAP. `feed()` takes a whole TLS message from
    the server and returns the bytes to send back; after `established`, `write()`/`read()` carry
    application data (PEAP's inner EAP). Raises TlsProblem with the user's sentence."""

    def __init__(self, settings: TlsMethodSettings, client_chain: tuple[bytes, list[bytes]] | None = None) -> None:
        self.settings = settings
        self.established = False
        self.keys: TlsKeys | None = None
        self.peer_certificate: bytes | None = None
        self._server_stream = b""
        self._server_random: bytes | None = None
        self._keylog = contextlib.ExitStack()
        try:
            context = trust.verifying_context(settings.ca_file)
        except (OSError, ssl.SSLError) as error:
            raise TlsProblem(
                Failure(
                    WHERE,
                    _("Cannot read the EAP CA file {path} ({error}): check the path in the profile.").format(path=settings.ca_file, error=error),
                    FailureKind.TRUST,
                )
            ) from None
        tls13 = settings.allow_tls13 and settings.method is TlsMethod.EAP_TLS
        context.maximum_version = ssl.TLSVersion.TLSv1_3 if tls13 else MAX_TLS_VERSION
        if client_chain is not None:
            try:
                _load_into_context(context, *client_chain)
            except (OSError, ValueError, ssl.SSLError) as error:  # e.g. a key that is not the certificate's
                raise TlsProblem(
                    Failure(
                        WHERE,
                        _(
                            "The client certificate and its key cannot be used together ({reason}): check that the "
                            "certificate file holds your certificate with its own key."
                        ).format(reason=getattr(error, "reason", None) or error.__class__.__name__),
                        FailureKind.TRUST,
                    )
                ) from None
        path, self._read_keylog = self._keylog.enter_context(private_file())
        try:
            context.keylog_filename = path
            self._context = context
            self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
            sni = trust.sni_name(settings.server_name) if settings.server_name else None
            self._tls = context.wrap_bio(self._in, self._out, server_hostname=sni)
        except (OSError, ValueError, ssl.SSLError) as error:
            self._keylog.close()  # the key log file must not stay behind
            raise TlsProblem(
                Failure(
                    WHERE,
                    _("The TLS session for the EAP method cannot be set up ({error}).").format(error=error.__class__.__name__),
                    FailureKind.OTHER,
                )
            ) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._context.keylog_filename = None  # type: ignore[assignment]  # typeshed says str; CPython takes None: stop logging
        self._keylog.close()

    def start(self) -> bytes:
        """The ClientHello."""
        return self._handshake()

    def feed(self, message: bytes) -> bytes:
        if not self.established:
            self._server_stream += message
            if self._server_random is None:
                self._server_random = _server_random(self._server_stream)
        self._in.write(message)
        if not self.established:
            return self._handshake()
        return self._out.read()

    def write(self, data: bytes) -> bytes:
        self._tls.write(data)
        return self._out.read()

    def read(self) -> bytes:
        """Application data received so far (b"" when none)."""
        chunks = []
        while True:
            try:
                chunk = self._tls.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLError as error:
                raise TlsProblem(self._alert_failure(error)) from None
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def _handshake(self) -> bytes:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            return self._out.read()
        except ssl.SSLCertVerificationError as error:
            chain = trust.peer_chain(self._tls)  # truststore leaves a memory-BIO session open
            if chain and chain[0] in trust.leaf_anchors(self.settings.ca_file):
                # Windows/macOS: truststore finished the handshake, then asked the OS, which never saw
                # this self-signed certificate of the CA file. Presented exactly, it is trusted as on
                # Linux (trust.leaf_anchors), if in date; the name, usage and pin are checked next.
                problem = trust.anchored_leaf_problem(chain[0])
                if problem is None:
                    output = self._out.read()
                    self._handshake_done()
                    return output
                self.close()
                raise TlsProblem(Failure(WHERE, _rename(problem), FailureKind.TRUST)) from None
            self.close()
            raise TlsProblem(Failure(WHERE, _rename(trust.verification_sentence(error, chain)), FailureKind.TRUST)) from None
        except ssl.SSLError as error:
            self.close()
            raise TlsProblem(self._alert_failure(error)) from None
        output = self._out.read()
        self._handshake_done()
        return output

    def _alert_failure(self, error: ssl.SSLError) -> Failure:
        reason = (getattr(error, "reason", None) or "").upper()
        for key, sentence in _alert_sentences().items():
            if key in reason:
                kind = FailureKind.AUTHENTICATION if "CERTIFICATE" in key or key in ("UNKNOWN_CA", "ACCESS_DENIED") else FailureKind.PROTOCOL
                return Failure(WHERE, sentence, kind)
        return Failure(
            WHERE,
            _(
                "The TLS session with the authentication server failed ({reason}): "
                "try again; if it keeps happening, ask the administrator to check the EAP settings."
            ).format(reason=error.reason or error),
            FailureKind.PROTOCOL,
        )

    def _handshake_done(self) -> None:
        leaf = self._tls.getpeercert(binary_form=True)
        if not leaf:
            self.close()
            raise TlsProblem(
                Failure(
                    WHERE, _("The authentication server sent no certificate: ask its administrator to check the EAP settings."), FailureKind.TRUST
                )
            )
        self.peer_certificate = leaf
        problem = self._certificate_problem(leaf)
        if problem is not None:
            self.close()
            raise TlsProblem(Failure(WHERE, problem, FailureKind.TRUST))
        version, cipher = self._tls.version() or "", (self._tls.cipher() or ("",))[0]
        lines = self._read_keylog().decode("ascii", "replace").splitlines()
        self.close()
        wanted = "CLIENT_RANDOM" if version == "TLSv1.2" else "EXPORTER_SECRET"
        master = client_random = None
        for line in lines:
            parts = line.split()
            if len(parts) == 3 and parts[0] == wanted:
                client_random, master = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
        server_random = self._server_random if version == "TLSv1.2" else b""
        if master is None or client_random is None or server_random is None or version not in ("TLSv1.2", "TLSv1.3"):
            raise TlsProblem(
                Failure(
                    WHERE,
                    _("Could not derive the EAP keys from the {version} session: this is a bug in this client; please report it.").format(
                        version=version or "TLS"
                    ),
                    FailureKind.OTHER,
                )
            )
        self.keys = TlsKeys(version, cipher, master, client_random, server_random)
        self.established = True

    def _certificate_problem(self, leaf: bytes) -> str | None:
        settings = self.settings
        cert = trust.load_certificate(leaf)
        if settings.server_name is None and settings.pin_sha256 is None:
            names = trust.certificate_names(cert).presented()
            # Translators: stands for the names a certificate is for, when it names none
            shown = ", ".join(names[:4]) or _("no name")
            return _(
                "No EAP server name is set in the profile, so the authentication server's certificate "
                "(for {names}) cannot be checked: set the EAP server name (--eap-server-name)."
            ).format(names=shown)
        if settings.server_name is not None:
            problem = trust.server_name_problem(cert, settings.server_name)
            if problem is not None:
                return _rename(problem)
        problem = trust.usage_problem(cert)
        if problem is not None:
            return _rename(problem)
        problem = trust.pin_problem(leaf, settings.pin_sha256)
        return _rename(problem) if problem is not None else None


# ---------------------------------------------------------------------------------------------
# The EAP-TLS method


class TunnelMethod:
    """Interface of the TLS-based EAP methods for EapClient (auth.py). `respond()` takes the type
    data of a Request and returns the type data of the Response (None: send nothing). When the
    method has finished on our side, `msk` is set; on a problem, `failure`."""

    eap_type: int
    name: str
    packet_name: str  # as the method's packets are called in a sentence ("EAP-TLS", "PEAP")

    def __init__(self) -> None:
        self.msk: bytes | None = None
        self.failure: Failure | None = None
        self.tls_version: str | None = None
        self._logs: list[str] = []

    def respond(self, type_data: bytes) -> bytes | None:
        if self.failure is not None:
            return None
        try:
            return self._respond(type_data)
        except FramingError as error:
            self._log(f"dropped the session: {error}")
            self.failure = Failure(
                WHERE,
                _(
                    "The authentication server sent a malformed {method} packet ({error}): try again; if it keeps happening, tell its administrator."
                ).format(method=self.packet_name, error=error),
                FailureKind.PROTOCOL,
            )
        except TlsProblem as problem:
            self._log(f"failed: {problem.failure.reason}")
            self.failure = problem.failure
        return None

    def _respond(self, type_data: bytes) -> bytes | None:
        """One Request's type data -> the Response's; FramingError and TlsProblem end the method."""
        raise NotImplementedError

    def failure_sentence(self) -> str:
        """The sentence for an EAP Failure from the server while this method ran."""
        raise NotImplementedError

    def refused_password(self) -> bool:
        """Whether that EAP Failure refused the password (PEAP's inner method), not a certificate."""
        return False

    def take_logs(self) -> list[str]:
        logs, self._logs = self._logs, []
        return logs

    def _log(self, line: str) -> None:
        self._logs.append(f"{self.name}: {line}")


class EapTls(TunnelMethod):
    eap_type = EAP_TLS_TYPE
    name = "EAP-TLS"
    packet_name = "EAP-TLS"

    def __init__(self, settings: TlsMethodSettings) -> None:
        super().__init__()
        self.settings = settings
        self._framing = Framing()
        self._tls: TlsClient | None = None
        self._sent_certificate = False

    def _respond(self, type_data: bytes) -> bytes | None:
        what, message = self._framing.receive(type_data)
        if what == "start":
            if self._tls is not None:
                self._tls.close()
            self._tls = TlsClient(self.settings, self._client_chain())
            self._log("server started EAP-TLS; sent ClientHello")
            return self._framing.send(self._tls.start())
        if self._tls is None:
            self._log("ignored an EAP-TLS request before the server's Start")
            return None
        if what == "ack":
            return self._framing.next_fragment()
        if what == "fragment":
            return self._framing.ack()
        output = self._tls.feed(message)
        if output:
            self._sent_certificate = True  # our answer to the server's first flight carries our certificate
        if self._tls.established and self.msk is None:
            keys = self._tls.keys
            assert keys is not None
            if self.tls_version is None:
                self.tls_version = keys.version
                self._log(f"TLS session established ({keys.version}, {keys.cipher}); the server's certificate checks out")
            if keys.version == "TLSv1.2":
                self.msk = keys.key_material()[:64]
            elif self._tls.read() == b"\x00":
                # RFC 9190 2.5: the commitment message; the server accepted our certificate.
                self.msk = keys.key_material()[:64]
                self._log("the server sent its commitment message")
        return self._framing.send(output) if output else self._framing.ack()

    def _client_chain(self) -> tuple[bytes, list[bytes]]:
        path = self.settings.client_certificate
        if path is None:
            raise TlsProblem(
                Failure(
                    WHERE,
                    _("EAP-TLS needs your certificate, and the profile names no certificate file: choose one (--client-cert)."),
                    FailureKind.AUTHENTICATION,
                )
            )
        try:
            return load_client_certificate(path, self.settings.key_passphrase)
        except CertificateFileError as error:
            raise TlsProblem(Failure(WHERE, str(error), FailureKind.AUTHENTICATION)) from None

    def failure_sentence(self) -> str:
        if self._sent_certificate:
            return _(
                "The authentication server refused your certificate: ask the administrator whether it is "
                "allowed to connect, or which certificate to use."
            )
        return _("The authentication server ended EAP-TLS before the TLS session was set up: ask its administrator to check the EAP settings.")


def start_tunnel_method(eap_type: int, settings: TlsMethodSettings, credentials, rng) -> TunnelMethod:  # type: ignore[no-untyped-def]
    """The method object for an EAP-TLS or PEAP Request (EapClient calls this)."""
    if eap_type == EAP_TLS_TYPE:
        return EapTls(settings)
    from .peap import Peap

    return Peap(settings, credentials, rng)
