"""Whether to trust the server's certificate, and the sentences that say why not.

The chain is checked by the operating system's trust store through `truststore` (Windows
CryptoAPI, macOS Security framework, OpenSSL with the distribution's bundle on Linux), plus the
CA certificates of an optional `--ca-file`: truststore adds those to the system store on every OS
(on Linux both live in the same OpenSSL store; on Windows and macOS truststore retries with the
extra anchors). OpenSSL's own host-name check is switched off: `server_name_problem` does it after
the handshake, so the sentence can name both the certificate's names and the one we expected.
It accepts only subjectAltName entries (never the subject CN), no wildcard directly under a public
suffix (the Public Suffix List), and compares DNS names in IDNA 2008 A-label form.
Before anything is sent over the connection, the leaf must also pass the server-auth usage check
and the optional SHA-256 pin.

Windows and macOS (`OS_VERIFIER`): truststore lets OpenSSL finish the handshake without checking,
then asks the OS; when the OS refuses the chain it closes the socket before raising, so the
rejected chain cannot be read from it (`peer_chain` gives [] and callers that show it open a
look-only connection), and it hands the OS only the CA certificates of the CA file
(`get_ca_certs()` skips certificates that are not CAs). A self-signed server certificate given as
the CA file (what first contact keeps) is therefore trusted there through `leaf_anchors`: the
connection stands when the server presents exactly that certificate, as OpenSSL decides on Linux.
"""

from __future__ import annotations

import _ssl  # ENCODING_DER, for the certificate objects that get_*_chain() returns before 3.13
import datetime
import functools
import hashlib
import hmac
import ipaddress
import os
import platform
import re
import ssl
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import idna
import truststore
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import system_store
from .core.i18n import _, ngettext

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# truststore checks the chain with the OS's own verifier after the handshake on Windows and macOS
# (elsewhere OpenSSL checks it during the handshake, against the distribution's bundle): see the
# module's docstring for what that changes. Tests set it to run those paths on Linux.
OS_VERIFIER = platform.system() in ("Windows", "Darwin")

# OpenSSL X509_V_ERR_* codes (x509_vfy.h) that need their own sentence.
_UNTRUSTED_CODES = {2, 18, 19, 20, 21}  # no issuer found / self-signed / chain does not end in a trusted root
_NOT_YET_VALID = 9
_EXPIRED = 10
_INVALID_PURPOSE = 26

_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
    ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE: "anyExtendedKeyUsage",
}
_SERVER_USAGES = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE}


# ---------------------------------------------------------------------------------------------
# TLS contexts


def verifying_context(ca_file: Path | None) -> ssl.SSLContext:
    """TLS 1.2+ client context that checks the chain against the OS store (+ `ca_file`).

    Raises OSError or ssl.SSLError when `ca_file` cannot be read.
    """
    # Where OpenSSL checks the chain itself, truststore's context is an OpenSSL one that loads the
    # system's bundle at wrap_socket, after the TCP connect: a front end that began loading the
    # same certificates ahead (system_store.py) hands over that context instead. Nothing begun
    # (or it failed): truststore's, as ever, so the bundle is never read before the SYN.
    context = None if OS_VERIFIER else system_store.take()
    if context is None:
        context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # done by server_name_problem(), with a better sentence
    context.verify_mode = ssl.CERT_REQUIRED
    # A CA file may hold an intermediate CA the user chose to trust (the top of the chain a server
    # presented, `first_contact`): it is an anchor as it stands, as Python 3.13's defaults have it.
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if ca_file is not None:
        context.load_verify_locations(cafile=os.fspath(ca_file))
    return context


def inspecting_context() -> ssl.SSLContext:
    """A context that accepts any certificate: ONLY for `diagnose` to read the chain of a server
    it does not trust. Nothing but close_notify may ever be sent over such a connection."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def peer_chain(sock: ssl.SSLSocket | ssl.SSLObject, verified: bool = False) -> list[bytes]:
    """DER certificates of the peer, leaf first.

    Python 3.13 made get_verified_chain()/get_unverified_chain() public; 3.10-3.12 have them only
    on the internal `_sslobj` (truststore relies on the same). Where neither exists only the leaf
    (if any) is returned. A socket that is closed, as truststore leaves it on Windows and macOS
    when the OS rejected the chain, gives [] (not AttributeError from its missing `_sslobj`).
    """
    if isinstance(sock, ssl.SSLSocket) and getattr(sock, "_sslobj", None) is None:
        return []
    for owner in (sock, getattr(sock, "_sslobj", None)):
        method = getattr(owner, "get_verified_chain" if verified else "get_unverified_chain", None)
        if method is None:
            continue
        try:
            chain = method() or []
        except (ValueError, ssl.SSLError):
            continue
        return [c if isinstance(c, bytes) else c.public_bytes(_ssl.ENCODING_DER) for c in chain]
    try:
        leaf = sock.getpeercert(binary_form=True)
    except (ValueError, OSError):
        leaf = None
    return [leaf] if leaf else []


_PEM_CERTIFICATE = re.compile(rb"-----BEGIN (X509 )?CERTIFICATE-----\r?\n.+?\r?\n-----END \1?CERTIFICATE-----", re.DOTALL)


def leaf_anchors(ca_file: Path | None) -> frozenset[bytes]:
    """DER of the self-signed certificates in `ca_file` that are not CA certificates, on systems
    whose verifier never sees them (`OS_VERIFIER`: truststore passes only `get_ca_certs()`, which
    leaves them out); empty elsewhere, where OpenSSL trusts them itself. Such a certificate is
    trusted the way a pin is: when the server presents exactly it (`anchored_leaf_problem` then
    checks its dates). An unreadable file gives none: the system verifier then refuses as usual."""
    if ca_file is None or not OS_VERIFIER:
        return frozenset()
    try:
        store = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        store.load_verify_locations(cafile=os.fspath(ca_file))
        authorities = set(store.get_ca_certs(binary_form=True))  # what truststore hands the OS
        text = Path(ca_file).read_bytes()
    except (OSError, ssl.SSLError):
        return frozenset()
    anchors = set()
    for der in pem_certificates(text):
        if der not in authorities and is_self_signed_der(der):
            anchors.add(der)
    return frozenset(anchors)


def pem_certificates(text: bytes) -> list[bytes]:
    """DER of each PEM certificate block in `text` (blocks that are not base64 are skipped)."""
    found = []
    for block in _PEM_CERTIFICATE.finditer(text):
        pem = block.group(0).decode("ascii", "replace").replace("X509 CERTIFICATE", "CERTIFICATE")
        try:
            found.append(ssl.PEM_cert_to_DER_cert(pem))
        except ValueError:
            continue
    return found


def is_self_signed(cert: x509.Certificate) -> bool:
    """Issued by itself: same name as issuer and subject, signed by its own key."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def is_self_signed_der(der: bytes) -> bool:
    """`is_self_signed` for a certificate given as DER, also one with a serial number that
    `cryptography` refuses (`load_certificate`)."""
    try:
        return issued_by(der, der)
    except ValueError:
        return False


def issued_by(child_der: bytes, issuer_der: bytes) -> bool:
    """The certificate `child_der` names `issuer_der`'s subject as its issuer and carries that
    certificate's signature (no dates, usages or constraints: a link in a presented chain).
    Raises ValueError for data that is not a certificate."""
    child, issuer = load_certificate(child_der), load_certificate(issuer_der)
    if child.issuer != issuer.subject:
        return False
    tbs, _ = _tbs_and_serial(child_der)
    try:
        if tbs == child.tbs_certificate_bytes:
            child.verify_directly_issued_by(issuer)
        else:  # loaded with a stand-in serial number (`load_certificate`): check the bytes that were signed
            _verify_signature(issuer.public_key(), child, tbs)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _verify_signature(key: object, child: x509.Certificate, tbs: bytes) -> None:
    """Raises InvalidSignature (or TypeError for a key type that cannot sign certificates)."""
    hash_algorithm = child.signature_hash_algorithm
    parameters = child.signature_algorithm_parameters
    if isinstance(key, rsa.RSAPublicKey) and hash_algorithm is not None and parameters is not None:
        key.verify(child.signature, tbs, parameters, hash_algorithm)  # type: ignore[arg-type]
    elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(parameters, ec.ECDSA):
        key.verify(child.signature, tbs, parameters)
    elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        key.verify(child.signature, tbs)
    else:
        raise TypeError("unsupported signature")


def leaf_matches_pin(leaf_der: bytes, pin: bytes | None) -> bool:
    """The leaf is exactly the pinned certificate: then it is trusted as it stands, whoever issued
    it (`transport.verified_handshake`), as a self-signed one in `leaf_anchors` is."""
    return pin is not None and hmac.compare_digest(hashlib.sha256(leaf_der).digest(), pin)


def anchored_leaf_problem(leaf_der: bytes, now: datetime.datetime | None = None) -> str | None:
    """For a server certificate trusted as one of the `leaf_anchors`, or through the pin: what a
    verifier would still refuse about it, its dates (the name, the usage and a pin are checked as
    for any chain)."""
    cert = load_certificate(leaf_der)
    now = now or datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc < now:
        return _validity_sentence([cert], now, expired=True)
    if cert.not_valid_before_utc > now:
        return _validity_sentence([cert], now, expired=False)
    return None


# ---------------------------------------------------------------------------------------------
# Host names (RFC 6125)


def reference_identity(name: str) -> str | IpAddress:
    """The identity we expect: an IP address, or a lower-case A-label DNS name without the
    trailing dot. A Unicode name is mapped (UTS 46, non-transitional) and converted to A-labels
    under IDNA 2008; an A-label given as such must be valid. Raises ValueError (with a sentence)
    for a name that is not a valid host name."""
    try:
        return ipaddress.ip_address(name.strip("[]").split("%", 1)[0])
    except ValueError:
        pass
    try:
        # UTS 46 maps case, full-width letters and dots (U+3002 etc.); ASCII needs only lower-casing.
        mapped = name.lower() if name.isascii() else idna.uts46_remap(name, std3_rules=False)
    except idna.IDNAError as error:
        raise ValueError(_invalid_name(name, _idna_reason(name, error))) from None
    text = mapped[:-1] if mapped.endswith(".") else mapped
    if not text:
        raise ValueError(_("The server name is empty: check the host name in the profile."))
    labels = [_a_label(name, label) for label in text.split(".")]
    ascii_name = ".".join(labels)
    if len(ascii_name) > 253:
        # Translators: the reason in "{name} is not a valid host name ({reason}): check the host name in the profile."
        raise ValueError(_invalid_name(name, _("it is longer than 253 characters")))
    return ascii_name


_LDH = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")  # underscores: DNS allows them, some hosts use them


def _a_label(name: str, label: str) -> str:
    """One (lower-case) label of `name` as an A-label or LDH label, or ValueError with a sentence."""
    if not label:
        # Translators: the reason in "{name} is not a valid host name ({reason}): check the host name in the profile."
        raise ValueError(_invalid_name(name, _("it has two dots in a row, or a dot at the start")))
    if label.startswith("-") or label.endswith("-"):
        # Translators: the reason in "{name} is not a valid host name ({reason}): check the host name in the profile."
        raise ValueError(_invalid_name(name, _("the label {label} starts or ends with a hyphen").format(label=label)))
    if label.isascii() and not label.startswith("xn--"):
        bad = next((c for c in label if c not in _LDH), None)
        if bad is not None:
            raise ValueError(_invalid_name(name, _character_not_allowed(bad)))
        result = label
    else:
        try:
            result = idna.alabel(label).decode("ascii")
            if label.isascii() and idna.alabel(idna.ulabel(label)).decode("ascii") != label:
                raise idna.IDNAError("not the canonical A-label")
        except idna.IDNAError as error:
            if label.isascii():  # an xn-- label that does not decode to a valid IDNA 2008 label
                # Translators: the reason in "{name} is not a valid host name ({reason}): check the host name in the profile."
                reason = _("{label} is not a valid internationalized (xn--) label").format(label=label)
                raise ValueError(_invalid_name(name, reason)) from None
            raise ValueError(_invalid_name(name, _idna_reason(label, error))) from None
    if len(result) > 63:
        # Translators: the reason in "{name} is not a valid host name ({reason}): check the host name in the profile."
        raise ValueError(_invalid_name(name, _("a label is longer than 63 characters")))
    return result


def _idna_reason(label: str, error: idna.IDNAError) -> str:
    if isinstance(error, idna.InvalidCodepoint):  # InvalidCodepointContext too: a joiner out of place
        found = re.search(r"U\+([0-9A-F]{4,6})", str(error))
        if found:
            return _character_not_allowed(chr(int(found.group(1), 16)))
    # Translators: the reason in "{name} is not a valid host name ({reason}): check the host name in the profile."
    return _("the label {label} breaks the IDNA 2008 rules for internationalized names").format(label=label)


def _character_not_allowed(char: str) -> str:
    # Translators: the reason in "{name} is not a valid host name ({reason}): ..."; {character} is like "é" (U+00E9)
    return _("the character {character} is not allowed in a host name").format(character=_show(char))


def _show(char: str) -> str:
    code = f"U+{ord(char):04X}"
    return f'"{char}" ({code})' if char.isprintable() and not char.isspace() else code


def _invalid_name(name: str, reason: str) -> str:
    return _("{name} is not a valid host name ({reason}): check the host name in the profile.").format(name=name, reason=reason)


def sni_name(name: str) -> str | None:
    """The server name to send in SNI: the same lower-case A-label form the certificate is checked
    against (Python's ssl would encode a Unicode name with IDNA 2003). None for a name that is not a
    valid host name: nothing is sent, and the name check then refuses it with its sentence."""
    try:
        reference = reference_identity(name)
    except ValueError:
        return None
    return reference if isinstance(reference, str) else None


def dns_name_matches(pattern: str, reference: str) -> bool:
    """RFC 6125 section 6.4: case-insensitive, in A-label form (a certificate's dNSName must be
    ASCII); a wildcard only as the whole left-most label, matching exactly one non-empty label,
    never directly under a single-label domain, and never directly under a public suffix (the
    Public Suffix List: *.co.uk, *.github.io)."""
    pattern = pattern.rstrip(".").lower()
    reference = reference.rstrip(".").lower()
    if not pattern or not reference or not pattern.isascii() or not reference.isascii():
        return False
    if "*" not in pattern:
        return pattern == reference
    labels = pattern.split(".")
    if labels[0] != "*" or "*" in ".".join(labels[1:]) or len(labels) < 3 or "" in labels:
        return False  # partial wildcards (f*.x.y, xn--*.x.y), inner wildcards, *.tld or empty labels
    ref_labels = reference.split(".")
    if len(ref_labels) != len(labels) or not ref_labels[0]:
        return False
    if ref_labels[1:] != labels[1:]:
        return False
    return not _public_suffixes().is_public(".".join(labels[1:]))


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    """The Public Suffix List bundled with `publicsuffixlist` (ICANN and private sections), read
    once, when the first wildcard is checked. An unknown top-level domain counts as public."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList()


@dataclass(frozen=True)
class CertificateNames:
    dns: tuple[str, ...]  # SAN dNSName entries
    ips: tuple[IpAddress, ...]  # SAN iPAddress entries
    common_names: tuple[str, ...]  # subject CN values: shown, never matched

    def presented(self) -> list[str]:
        """The names a user should see: SAN entries, else the CN."""
        shown = list(self.dns) + [str(ip) for ip in self.ips]
        return shown or list(self.common_names)


def certificate_names(cert: x509.Certificate) -> CertificateNames:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(ip for ip in san.get_values_for_type(x509.IPAddress) if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    cns = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    return CertificateNames(dns, ips, cns)


def certificate_matches(cert: x509.Certificate, reference: str | IpAddress) -> bool:
    """An IP reference matches only SAN iPAddress entries; a DNS reference matches only SAN dNSName
    entries. The subject CN is never used (RFC 9525; browsers and OpenSSL-based clients refuse it)."""
    names = certificate_names(cert)
    if isinstance(reference, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return reference in names.ips
    return any(dns_name_matches(pattern, reference) for pattern in names.dns)


def server_name_problem(cert: x509.Certificate, expected: str) -> str | None:
    """None if the certificate is for `expected`, else the sentence for the user."""
    try:
        reference = reference_identity(expected)
    except ValueError as error:
        return str(error)
    if certificate_matches(cert, reference):
        return None
    names = certificate_names(cert)
    shown = list(names.dns) + [str(ip) for ip in names.ips]
    if not shown and names.common_names:
        return _(
            "The server's certificate names {names} only in its Common Name, "
            "which modern clients no longer accept: the server's administrator must issue a certificate "
            "with a subjectAltName for {expected}."
        ).format(names=_name_list(list(names.common_names)), expected=expected.rstrip(".") or expected)
    if not isinstance(reference, str) and str(reference) in shown:  # only as text: a SAN DNS name
        return _(
            "The server's certificate lists {expected} only as a name, not as an IP address, so it cannot "
            "prove it is that address. Connect by the server's host name instead."
        ).format(expected=expected)
    if not shown:
        return _(
            "The server's certificate names no host at all, so it cannot prove it is {expected}. "
            "Ask the server's administrator for a certificate that names the server."
        ).format(expected=expected)
    return _("The server's certificate is for {names}, not {expected}. Check the host name in the profile.").format(
        names=_name_list(shown), expected=expected
    )


def _name_list(names: list[str], limit: int = 4) -> str:
    if len(names) > limit:
        more = len(names) - limit
        # Translators: a list of names cut short: "a.example, b.example, c.example, d.example and 2 more"
        return ngettext("{names} and {count} more", "{names} and {count} more", more).format(names=", ".join(names[:limit]), count=more)
    if len(names) == 1:
        return names[0]
    # Translators: the end of a list of names: "a.example, b.example and c.example"
    return _("{names} and {last}").format(names=", ".join(names[:-1]), last=names[-1])


# ---------------------------------------------------------------------------------------------
# Usage, pin, chain errors


def extended_key_usages(cert: x509.Certificate) -> list[x509.ObjectIdentifier] | None:
    """The EKU purposes, or None when the certificate has no EKU extension (any use allowed)."""
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None


def usage_problem(cert: x509.Certificate) -> str | None:
    """None if the leaf may authenticate a TLS server (serverAuth, anyExtendedKeyUsage or no EKU)."""
    usages = extended_key_usages(cert)
    if usages is None or _SERVER_USAGES.intersection(usages):
        return None
    return _usage_sentence(usages)


def _usage_sentence(usages: list[x509.ObjectIdentifier]) -> str:
    # Translators: an empty list of certificate purposes, in "its extended key usage allows only nothing"
    allowed = ", ".join(eku_name(u) for u in usages) or _("nothing")
    return _(
        "The server's certificate is not meant for TLS servers (its extended key usage allows only "
        "{allowed}): the server's administrator must install a certificate for server authentication."
    ).format(allowed=allowed)


def eku_name(oid: x509.ObjectIdentifier) -> str:
    return _EKU_NAMES.get(oid, oid.dotted_string)


def parse_pin(text: str) -> bytes:
    """A SHA-256 fingerprint given as 64 hex digits, colons allowed, any case."""
    digits = text.strip().replace(":", "")
    if len(digits) != 64 or not all(c in "0123456789abcdefABCDEF" for c in digits):
        raise ValueError(
            _(
                "The pinned SHA-256 fingerprint must be 64 hexadecimal digits (colons allowed), "
                "like AB:CD:...: copy it again from the server's certificate."
            )
        )
    return bytes.fromhex(digits)


def colon_hex(digest: bytes) -> str:
    """AB:CD:EF..., the way certificate viewers show a fingerprint."""
    return ":".join(f"{b:02X}" for b in digest)


def thumbprint(digest: bytes) -> str:
    """Lower-case hex without separators, as `netsh http show sslcert` prints "Certificate Hash"."""
    return digest.hex()


def pin_problem(leaf_der: bytes, pin: bytes | None) -> str | None:
    """None when no pin is set or the leaf's SHA-256 equals it."""
    if pin is None:
        return None
    actual = hashlib.sha256(leaf_der).digest()
    if hmac.compare_digest(actual, pin):
        return None
    return _(
        "The server's certificate fingerprint SHA256 {actual} does not match the pinned one "
        "(SHA256 {pinned}): the certificate has changed or someone is intercepting the "
        "connection; check with the server's administrator before changing the pin."
    ).format(actual=colon_hex(actual), pinned=colon_hex(pin))


def verification_sentence(error: ssl.SSLCertVerificationError, chain_der: list[bytes], now: datetime.datetime | None = None) -> str:
    """The sentence for a chain the trust store rejected. `chain_der` (leaf first) may be empty
    when the platform closed the socket before we could read it."""
    message = getattr(error, "verify_message", None) or str(error)
    code = getattr(error, "verify_code", None)
    if OS_VERIFIER:
        # truststore on Windows/macOS reports the platform's own codes; only the text is portable.
        return _(
            "The server's certificate was not accepted by the system's trust store ({message}): "
            "if you trust this server, add its CA certificate to the profile (--ca-file)."
        ).format(message=message)
    chain = _load_all(chain_der)
    now = now or datetime.datetime.now(datetime.UTC)
    if code in _UNTRUSTED_CODES:
        return _(
            "The server's certificate was not issued by a trusted authority ({message}): "
            "if you trust this server, add its CA certificate to the profile (--ca-file)."
        ).format(message=message)
    if code == _EXPIRED:
        return _validity_sentence(chain, now, expired=True)
    if code == _NOT_YET_VALID:
        return _validity_sentence(chain, now, expired=False)
    if code == _INVALID_PURPOSE:
        for cert in chain[:1]:
            usages = extended_key_usages(cert)
            if usages is not None and not _SERVER_USAGES.intersection(usages):
                return _usage_sentence(usages)
        return _(
            "A certificate in the server's chain is not meant for TLS servers (unsuitable certificate purpose): "
            "the server's administrator must install a certificate chain for server authentication."
        )
    return _(
        "The server's certificate was rejected ({message}): check the server's certificate, or "
        "if you trust this server, add its CA certificate to the profile (--ca-file)."
    ).format(message=message)


def _load_all(chain_der: list[bytes]) -> list[x509.Certificate]:
    certs = []
    for der in chain_der:
        try:
            certs.append(load_certificate(der))
        except ValueError:
            break
    return certs


def _validity_sentence(chain: list[x509.Certificate], now: datetime.datetime, expired: bool) -> str:
    for position, cert in enumerate(chain):
        limit = cert.not_valid_after_utc if expired else cert.not_valid_before_utc
        if (limit < now) if expired else (limit > now):
            date = _date(limit)
            if position == 0 and expired:
                sentence = _(
                    "The server's certificate expired on {date}: ask the server's administrator to renew it, or check this computer's date and time."
                )
            elif position == 0:
                sentence = _("The server's certificate is not valid before {date}: check this computer's date and time.")
            elif expired:
                sentence = _(
                    "The certificate of {name}, in the server's chain, expired on {date}: "
                    "ask the server's administrator to renew it, or check this computer's date and time."
                )
            else:
                sentence = _("The certificate of {name}, in the server's chain, is not valid before {date}: check this computer's date and time.")
            return sentence.format(name=_display_name(cert), date=date)
    if expired:
        return _("The server's certificate has expired: ask the server's administrator to renew it, or check this computer's date and time.")
    return _("The server's certificate is not valid yet: check this computer's date and time.")


def _date(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _display_name(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else cert.subject.rfc4514_string()


# ---------------------------------------------------------------------------------------------
# Facts for `diagnose`


@dataclass(frozen=True)
class CertificateFacts:
    subject: str
    issuer: str
    names: tuple[str, ...]  # "DNS:vpn.example.com", "IP:192.0.2.1"
    not_before: datetime.datetime
    not_after: datetime.datetime
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...] | None  # None: no EKU extension
    sha1: str  # netsh "Certificate Hash" style: lower-case hex, no separators
    sha256: str

    def lines(self) -> list[str]:
        # Translators: an empty list in diagnose's certificate lines ("names: (none)")
        none = _("(none)")
        # Translators: a certificate without the extended key usage extension, in "extended key usage: (none: any use)"
        eku = _("(none: any use)") if self.extended_key_usage is None else ", ".join(self.extended_key_usage)
        return [
            # Translators: diagnose's certificate lines, "label: value"
            _("subject: {subject}").format(subject=self.subject),
            _("names: {names}").format(names=", ".join(self.names) or none),
            _("issuer: {issuer}").format(issuer=self.issuer),
            _("valid: {start} to {end}").format(start=_date(self.not_before), end=_date(self.not_after)),
            _("key usage: {usages}").format(usages=", ".join(self.key_usage) or none),
            _("extended key usage: {usages}").format(usages=eku),
            _("SHA-1 hash: {hash}").format(hash=self.sha1),
            _("SHA-256 hash: {hash}").format(hash=self.sha256),
        ]


_KEY_USAGE_FIELDS = (
    ("digital_signature", "digitalSignature"),
    ("content_commitment", "nonRepudiation"),
    ("key_encipherment", "keyEncipherment"),
    ("data_encipherment", "dataEncipherment"),
    ("key_agreement", "keyAgreement"),
    ("key_cert_sign", "keyCertSign"),
    ("crl_sign", "cRLSign"),
)


def describe_certificate(der: bytes) -> CertificateFacts:
    cert = load_certificate(der)
    names = certificate_names(cert)
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        key_usage = [label for attr, label in _KEY_USAGE_FIELDS if getattr(usage, attr)]
        if usage.key_agreement:  # encipher_only/decipher_only are defined only with keyAgreement
            key_usage += [label for attr, label in (("encipher_only", "encipherOnly"), ("decipher_only", "decipherOnly")) if getattr(usage, attr)]
    except x509.ExtensionNotFound:
        key_usage = []
    ekus = extended_key_usages(cert)
    return CertificateFacts(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        names=tuple([f"DNS:{n}" for n in names.dns] + [f"IP:{ip}" for ip in names.ips]),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        key_usage=tuple(key_usage),
        extended_key_usage=None if ekus is None else tuple(eku_name(u) for u in ekus),
        sha1=thumbprint(hashlib.sha1(der).digest()),
        sha256=thumbprint(hashlib.sha256(der).digest()),
    )


# What cryptography says (since 41) when it parses a serial number that is zero or negative, as in
# SoftEther's self-made server certificate; "a future release" will refuse such a certificate.
_SERIAL_WARNING = r"Parsed a (negative )?serial number"


def load_certificate(der: bytes) -> x509.Certificate:
    """A certificate a server presented (or a user saved), DER. SoftEther makes its own certificate
    with a serial number of 0 or below, which RFC 5280 forbids: cryptography warns about it today
    and will refuse it in a future release. Nothing here uses the serial number, so such a
    certificate is read as it is, quietly; and if cryptography refuses it, from a copy whose serial
    number is 1 (same length, so the rest is unchanged; the thumbprints are always taken of `der`,
    and `issued_by` checks the signature over the original bytes). Raises ValueError otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", _SERIAL_WARNING, CryptographyDeprecationWarning)
            return x509.load_der_x509_certificate(der)
    except ValueError:
        stand_in = _with_positive_serial(der)
        if stand_in is None:
            raise
        return x509.load_der_x509_certificate(stand_in)


def _with_positive_serial(der: bytes) -> bytes | None:
    """`der` with a serial number that is zero or negative replaced by 1, else None."""
    try:
        _, (start, end) = _tbs_and_serial(der)
    except (IndexError, ValueError):
        return None
    if end <= start or (der[start] & 0x80 == 0 and any(der[start:end])):
        return None  # positive already: its problem is another one
    return der[:start] + b"\x01" + bytes(end - start - 1) + der[end:]


def _tbs_and_serial(der: bytes) -> tuple[bytes, tuple[int, int]]:
    """The signed part (tbsCertificate, DER) and where the serial number's value bytes are in
    `der`. Raises ValueError (or IndexError) for data that is not a certificate."""
    _, certificate, _ = _der_element(der, 0, 0x30)
    tbs_start = certificate
    _, tbs_content, tbs_end = _der_element(der, tbs_start, 0x30)
    position = tbs_content
    if der[position] == 0xA0:  # [0] EXPLICIT version
        position = _der_element(der, position, 0xA0)[2]
    _, serial_start, serial_end = _der_element(der, position, 0x02)
    return der[tbs_start:tbs_end], (serial_start, serial_end)


def _der_element(der: bytes, offset: int, tag: int) -> tuple[int, int, int]:
    """(tag, first content byte, end) of the DER element at `offset`, which must have `tag`."""
    if der[offset] != tag:
        raise ValueError("not a certificate")
    length, position = der[offset + 1], offset + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4:
            raise ValueError("not a certificate")
        length, position = int.from_bytes(der[position : position + count], "big"), position + count
    if position + length > len(der):
        raise ValueError("not a certificate")
    return tag, position, position + length
