"""Whether a certificate of the SSTP server's chain was revoked: OCSP, then the CRL; cached.

After the TLS handshake and the chain, name, usage and pin checks (`transport.open_connection`),
and before the SSTP request, every certificate of the verified chain below the trust anchor is
checked against its issuer (the next certificate up):

1. **OCSP** (RFC 6960) at each `http://` responder the certificate's Authority Information Access
   names. The request is built by `cryptography.x509.ocsp` (CertID with SHA-1, as RFC 5019 and
   Windows use; no nonce, so answers can be cached) and POSTed. The answer counts only when it is
   signed by the issuer itself, or by a delegated responder certificate that the issuer signed,
   that carries id-kp-OCSPSigning and is within its dates; its thisUpdate may not lie in the
   future and its nextUpdate not in the past (five minutes of clock skew allowed either way; an
   answer without nextUpdate counts for a day after its thisUpdate).
2. **CRL** at each `http://` distribution point, when OCSP gave no usable answer (no responder, or
   none answered usably). The CRL must be the issuer's (issuer name, cRLSign, signature checked
   with the issuer's key) and current (lastUpdate/nextUpdate as above); indirect CRLs, delta CRLs
   and CRLs limited to some reasons or some kinds of certificates are not used.

A certificate found revoked by any source is refused, always, with a sentence that names it (its
subject CN, or the whole subject) and gives the revocation date and reason. "Cannot tell" (every
responder and CRL failed) depends on the profile (`Profile.revocation`, `TransportSettings.revocation`):
soft (the default) connects and says so in the log and the status; hard refuses with a sentence.

**A certificate that names no revocation service** (no OCSP responder, no CRL distribution point)
is connected to in both modes, with the note "not checked: the certificate names no revocation
service". That is a decision: hard mode exists so that an attacker who can block the responder
cannot get a revoked certificate accepted; the absence of revocation information is fixed inside
the signed certificate, so no attacker can cause it, and refusing such certificates would make
hard mode unusable with private CAs (SoftEther's own certificates, most test labs). Windows does
the same for SSTP (no revocation information is not an error there). The trust anchor itself and a
self-signed (pinned) server certificate have nothing above them to answer for them: nothing is
checked and the status says so. Services named only by other schemes (`ldap://`, as Active
Directory Certificate Services often writes first, `https://`) are not read: when a certificate
names no `http://` service but some other one, that is "cannot tell" (soft: warning, hard: refused),
since the certificate does say it can be revoked.

**Stapled OCSP** (the TLS status_request extension) is not used: Python's `ssl` module neither
asks for a stapled response nor exposes one. Checked: its documentation has no OCSP or
status_request API; in CPython 3.11.7 (what we ship) `ssl.SSLContext`, `ssl.SSLSocket` and
`ssl.SSLObject` have no attribute for it, and the `_ssl` extension names no such method; adding it
is CPython issue gh-88946 ("SSL needs client OCSP stapling", bpo-44783), still open. So the client
asks the responder itself.

**Proxies**: every fetch goes directly to the responder or CRL server, never through the profile's
HTTP proxy or the system's. Windows fetches CRLs and OCSP through WinHTTP's proxy settings; here a
network that reaches the web only through a proxy gives "cannot tell" (soft mode connects with the
warning; hard mode refuses there).

**Time**: each fetch may take `FETCH_SECONDS` (4 s); a source that has not answered within
`STAGGER_SECONDS` (1 s) gets the next one asked meanwhile (OCSP responders first, then the CRLs),
so a silent, firewalled responder costs about 5 s, not 4 s per source; all certificates are
checked in parallel and the whole check gives up after `TOTAL_SECONDS` (8 s: a name that does not
resolve, a server that drips bytes; what has not answered by then is "cannot tell"). A cached
answer costs no network at all. Measured on a 2-core VM (tests/revocation): 9-21 ms with the
responder answering, 2-4 ms from the cache, 11-17 ms with responder and CRL server refusing
connections, 5.0 s with both silent.

**Cache**: in the user's cache folder (platformdirs: `~/.cache/sstp-vpn/revocation` on Linux),
at most `CACHE_BYTES` in all (the oldest entries go first). OCSP answers are kept until their
nextUpdate, CRLs until theirs, and each is checked again (signature, dates) whenever it is read.
A cache never makes a revoked certificate good: a revocation seen once is remembered on its own
(`revoked-*` entries, kept when others are pruned) and refuses the certificate even when the
responder is later unreachable or says otherwise; only a certificateHold ends with its answer's
nextUpdate.

On Windows and macOS the OS verifier (truststore) builds the chain, and Python cannot read that
chain: the chain is then the presented one, each link checked to be signed by the next, and a
certificate whose issuer the server does not send (usually the intermediate under the root) gets
its issuer from the profile's CA file or, on Windows, the system's Root and CA stores
(`trusted_authorities`, never run on Windows); failing that it is "not checked" (its issuer's key
is needed to check any answer), as on macOS, whose keychain Python cannot list. The same applies
on every system to a pinned certificate, which is trusted without a verified chain. truststore is
not asked to check revocation itself (no VERIFY_CRL_CHECK_* flag): this module does it the same way
on every system.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import json
import os
import queue
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from . import trust
from .core.i18n import _
from .profiles import Revocation

FETCH_SECONDS = 4.0  # one HTTP fetch (connect, send, answer)
TOTAL_SECONDS = 8.0  # the whole check, all certificates in parallel
STAGGER_SECONDS = 1.0  # a source silent this long: the next one is asked meanwhile
SKEW = datetime.timedelta(minutes=5)
NO_NEXT_UPDATE_VALIDITY = datetime.timedelta(days=1)
OCSP_LIMIT = 64 * 1024  # bytes of an OCSP answer
CRL_LIMIT = 16 * 1024 * 1024  # bytes of a CRL
CACHE_BYTES = 32 * 1024 * 1024
APP_DIR_NAME = "sstp-vpn"

Fetch = Callable[[str, bytes | None, float], bytes]  # url, POST body (None: GET), timeout -> body


class Outcome(enum.Enum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # cannot tell: no source gave a usable answer
    NOT_CHECKED = "not-checked"  # nothing to ask: no revocation service, the anchor, no issuer


@dataclass(frozen=True)
class Answer:
    """What one source said about one certificate."""

    outcome: Outcome  # GOOD, REVOKED or UNKNOWN
    source: str  # "OCSP" or "CRL" (protocol names, not translated)
    url: str
    problem: str = ""  # UNKNOWN: why this source gave no usable answer (a phrase for the user)
    revoked_at: datetime.datetime | None = None
    reason: x509.ReasonFlags | None = None
    valid_until: datetime.datetime | None = None  # how long the answer may be used
    cached: bool = False


@dataclass(frozen=True)
class CertificateCheck:
    name: str  # subject CN, or the whole subject
    outcome: Outcome
    answer: Answer | None = None  # the answer that decided (GOOD, REVOKED)
    problems: tuple[str, ...] = ()  # UNKNOWN: each source's problem; NOT_CHECKED: why
    urls: tuple[str, ...] = ()  # the services the certificate names


@dataclass(frozen=True)
class RevocationResult:
    policy: Revocation
    checks: tuple[CertificateCheck, ...]
    seconds: float = 0.0

    @property
    def outcome(self) -> Outcome:
        outcomes = [check.outcome for check in self.checks]
        for worst in (Outcome.REVOKED, Outcome.UNKNOWN, Outcome.GOOD):
            if worst in outcomes:
                return worst
        return Outcome.NOT_CHECKED

    @property
    def refusal(self) -> str | None:
        """The sentence that refuses the connection, or None when it may go on."""
        for check in self.checks:
            if check.outcome is Outcome.REVOKED and check.answer is not None:
                return revoked_sentence(check.name, check.answer)
        if self.policy is Revocation.HARD:
            for check in self.checks:
                if check.outcome is Outcome.UNKNOWN:
                    return _(
                        "Whether the certificate {name} was revoked cannot be checked ({reason}), and the profile requires that check "
                        "(revocation: hard), so the connection was refused: check that this computer can reach {services}, "
                        "or set the profile's revocation check to soft."
                    ).format(name=check.name, reason="; ".join(check.problems), services=", ".join(check.urls) or "?")
        return None

    @property
    def warning(self) -> str | None:
        """Soft mode's sentence for the log when a check could not be done."""
        for check in self.checks:
            if check.outcome is Outcome.UNKNOWN and self.policy is Revocation.SOFT:
                return _(
                    "Whether the certificate {name} was revoked could not be checked ({reason}); connecting anyway, "
                    "as the profile's revocation check is soft."
                ).format(name=check.name, reason="; ".join(check.problems))
        return None

    @property
    def summary(self) -> str:
        """One line for the status window and the log: "good (OCSP, http://...)", "not checked: ...",
        "revoked ...", "could not be checked: ..."."""
        outcome = self.outcome
        if outcome is Outcome.REVOKED:
            check = next(check for check in self.checks if check.outcome is Outcome.REVOKED)
            assert check.answer is not None
            # Translators: the status window's revocation line
            return _("revoked: {name} on {date} ({reason})").format(
                name=check.name, date=_date(check.answer.revoked_at), reason=reason_words(check.answer.reason)
            )
        if outcome is Outcome.UNKNOWN:
            check = next(check for check in self.checks if check.outcome is Outcome.UNKNOWN)
            # Translators: the status window's revocation line
            return _("could not be checked: {name} ({reason})").format(name=check.name, reason="; ".join(check.problems))
        if outcome is Outcome.GOOD and any(check.outcome is Outcome.NOT_CHECKED for check in self.checks):
            # Some certificates good, others not checked (a server certificate naming no service
            # under an intermediate that does): each one, so the status never says "good" alone.
            return "; ".join(_short(check) for check in self.checks)
        if outcome is Outcome.GOOD:
            check = next(check for check in self.checks if check.outcome is Outcome.GOOD)
            assert check.answer is not None
            if check.answer.cached:
                # Translators: the status window's revocation line; {source} is OCSP or CRL
                return _("good ({source}, {url}, remembered)").format(source=check.answer.source, url=check.answer.url)
            # Translators: the status window's revocation line; {source} is OCSP or CRL
            return _("good ({source}, {url})").format(source=check.answer.source, url=check.answer.url)
        reasons = [problem for check in self.checks for problem in check.problems]
        # Translators: the status window's revocation line
        return _("not checked: {reason}").format(reason=reasons[0] if reasons else _("no certificate to check"))

    def lines(self) -> list[str]:
        """One line per certificate, for `diagnose` and the log window."""
        lines = []
        for check in self.checks:
            if check.outcome in (Outcome.GOOD, Outcome.REVOKED) and check.answer is not None:
                answer = check.answer
                if check.outcome is Outcome.GOOD:
                    state = _("good")
                else:
                    state = _("revoked on {date} ({reason})").format(date=_date(answer.revoked_at), reason=reason_words(answer.reason))
                origin = _("remembered answer") if answer.cached else _("fresh answer")
                lines.append(f"{check.name}: {state} ({answer.source}, {answer.url}, {origin})")
            elif check.outcome is Outcome.UNKNOWN:
                lines.append(_("{name}: could not be checked ({reason})").format(name=check.name, reason="; ".join(check.problems)))
            else:
                lines.append(_("{name}: not checked ({reason})").format(name=check.name, reason="; ".join(check.problems)))
        return lines


def _short(check: CertificateCheck) -> str:
    if check.outcome is Outcome.GOOD and check.answer is not None:
        # Translators: one certificate in the status window's revocation line; {source} is OCSP or CRL
        return _("{name} good ({source}, {url})").format(name=check.name, source=check.answer.source, url=check.answer.url)
    # Translators: one certificate in the status window's revocation line
    return _("{name} not checked ({reason})").format(name=check.name, reason="; ".join(check.problems))


def revoked_sentence(name: str, answer: Answer) -> str:
    return _(
        "The certificate {name} in the server's chain was revoked on {date} (reason: {reason}), according to {source} at {url}: "
        "the connection was refused. Tell the server's administrator; the server needs a new certificate."
    ).format(name=name, date=_date(answer.revoked_at), reason=reason_words(answer.reason), source=answer.source, url=answer.url)


def reason_words(reason: x509.ReasonFlags | None) -> str:
    words = {
        x509.ReasonFlags.unspecified: _("unspecified"),
        x509.ReasonFlags.key_compromise: _("key compromise"),
        x509.ReasonFlags.ca_compromise: _("CA compromise"),
        x509.ReasonFlags.affiliation_changed: _("affiliation changed"),
        x509.ReasonFlags.superseded: _("superseded"),
        x509.ReasonFlags.cessation_of_operation: _("cessation of operation"),
        x509.ReasonFlags.certificate_hold: _("certificate on hold"),
        x509.ReasonFlags.privilege_withdrawn: _("privilege withdrawn"),
        x509.ReasonFlags.aa_compromise: _("attribute authority compromise"),
        x509.ReasonFlags.remove_from_crl: _("removed from the CRL"),
    }
    # Translators: a revocation without a reason code
    return words.get(reason, _("no reason given")) if reason is not None else _("no reason given")


def _date(moment: datetime.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "?"


def display_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else (cert.subject.rfc4514_string() or _("(no subject)"))


# ---------------------------------------------------------------------------------------------
# What a certificate names


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        description.access_location.value
        for description in access
        if description.access_method == AuthorityInformationAccessOID.OCSP and isinstance(description.access_location, x509.UniformResourceIdentifier)
    ]


def crl_urls(cert: x509.Certificate) -> list[str]:
    """The URLs of the distribution points whose CRL is issued by the certificate's issuer (indirect
    CRLs, with a cRLIssuer, are not read)."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    urls = []
    for point in points:
        if point.crl_issuer or not point.full_name:
            continue
        urls += [name.value for name in point.full_name if isinstance(name, x509.UniformResourceIdentifier)]
    return urls


def is_http(url: str) -> bool:
    return url.lower().startswith("http://")


# ---------------------------------------------------------------------------------------------
# OCSP (pure: bytes in, an Answer out)


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    return request.public_bytes(serialization.Encoding.DER)


def judge_ocsp(data: bytes, cert: x509.Certificate, issuer: x509.Certificate, url: str, now: datetime.datetime) -> Answer:
    def unknown(problem: str) -> Answer:
        return Answer(Outcome.UNKNOWN, "OCSP", url, problem)

    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError:
        return unknown(_("the OCSP responder at {url} sent an answer that is not OCSP").format(url=url))
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        return unknown(
            _("the OCSP responder at {url} answered {status}").format(url=url, status=response.response_status.name.lower().replace("_", " "))
        )
    single = None
    for candidate in response.responses:
        if candidate.serial_number != cert.serial_number:
            continue
        try:
            expected = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, candidate.hash_algorithm).build()
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if candidate.issuer_key_hash == expected.issuer_key_hash and candidate.issuer_name_hash == expected.issuer_name_hash:
            single = candidate
            break
    if single is None:
        return unknown(_("the OCSP responder at {url} answered about another certificate").format(url=url))
    problem = responder_problem(response, issuer, now)
    if problem is not None:
        return unknown(_("the OCSP answer from {url} cannot be trusted: {reason}").format(url=url, reason=problem))
    this_update, next_update = single.this_update_utc, single.next_update_utc
    if this_update > now + SKEW:
        return unknown(_("the OCSP answer from {url} is dated in the future ({date})").format(url=url, date=_date(this_update)))
    valid_until = next_update if next_update is not None else this_update + NO_NEXT_UPDATE_VALIDITY
    if valid_until < now - SKEW:
        return unknown(_("the OCSP answer from {url} is out of date (valid until {date})").format(url=url, date=_date(valid_until)))
    status = single.certificate_status
    if status is ocsp.OCSPCertStatus.GOOD:
        return Answer(Outcome.GOOD, "OCSP", url, valid_until=valid_until)
    if status is ocsp.OCSPCertStatus.REVOKED:
        return Answer(Outcome.REVOKED, "OCSP", url, revoked_at=single.revocation_time_utc, reason=single.revocation_reason, valid_until=valid_until)
    return unknown(_("the OCSP responder at {url} does not know the certificate").format(url=url))


def responder_problem(response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime.datetime) -> str | None:
    """Why the response's signer may not answer for `issuer`'s certificates, or None: the issuer
    itself, or a certificate in the response that the issuer signed, with id-kp-OCSPSigning, in date."""
    problems = []
    for signer in [issuer, *response.certificates]:
        if not _is_responder(response, signer):
            continue
        if not _signature_valid(signer.public_key(), response.signature, response.tbs_response_bytes, response):
            problems.append(_("its signature does not match"))
            continue
        if signer == issuer:
            return None
        if signer.issuer != issuer.subject or not _signed_by(signer, issuer):
            problems.append(_("it was signed by {name}, whom the issuer did not authorise").format(name=display_name(signer)))
            continue
        usages = trust.extended_key_usages(signer) or []
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
            problems.append(_("its signer {name} is not an OCSP responder (no OCSPSigning usage)").format(name=display_name(signer)))
            continue
        if not signer.not_valid_before_utc - SKEW <= now <= signer.not_valid_after_utc + SKEW:
            problems.append(_("its signer's certificate {name} is out of its dates").format(name=display_name(signer)))
            continue
        return None
    return problems[0] if problems else _("it was signed by neither the issuer nor a responder the issuer authorised")


def _is_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return bool(response.responder_name == cert.subject)
    return response.responder_key_hash == key_hash(cert)


def key_hash(cert: x509.Certificate) -> bytes:
    """SHA-1 of the subjectPublicKey BIT STRING's contents (RFC 6960 ResponderID byKey)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    _tag, offset, _length = _der_header(spki, 0)  # SEQUENCE
    _tag, start, length = _der_header(spki, offset)  # AlgorithmIdentifier
    tag, start, length = _der_header(spki, start + length)  # BIT STRING
    if tag != 0x03:
        raise ValueError("no BIT STRING in the public key")
    return hashlib.sha1(spki[start + 1 : start + length]).digest()


def _der_header(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, offset of the contents, length of the contents)."""
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first < 0x80:
        return tag, offset, first
    count = first & 0x7F
    return tag, offset + count, int.from_bytes(data[offset : offset + count], "big")


def _signature_valid(key: object, signature: bytes, data: bytes, response: ocsp.OCSPResponse) -> bool:
    hash_algorithm = response.signature_hash_algorithm
    try:
        if isinstance(key, rsa.RSAPublicKey) and hash_algorithm is not None and response.signature_algorithm_oid != SignatureAlgorithmOID.RSASSA_PSS:
            key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey) and hash_algorithm is not None:
            key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
            key.verify(signature, data)
        else:
            return False  # RSA-PSS, DSA: not used by OCSP responders we know
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def _signed_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# CRL (pure)


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """DER or PEM; ValueError otherwise."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def judge_crl(data: bytes, cert: x509.Certificate, issuer: x509.Certificate, url: str, now: datetime.datetime) -> Answer:
    def unknown(problem: str) -> Answer:
        return Answer(Outcome.UNKNOWN, "CRL", url, problem)

    try:
        crl = load_crl(data)
    except ValueError:
        return unknown(_("{url} did not send a CRL").format(url=url))
    if crl.issuer != issuer.subject:
        return unknown(_("the CRL at {url} is issued by another authority").format(url=url))
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.crl_sign:
            return unknown(_("the CRL at {url} is signed by a certificate that may not sign CRLs").format(url=url))
    except x509.ExtensionNotFound:
        pass
    try:
        signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, UnsupportedAlgorithm):
        signed = False
    if not signed:
        return unknown(_("the signature of the CRL at {url} does not match its issuer").format(url=url))
    extensions = {extension.oid: extension.value for extension in crl.extensions}
    if x509.oid.ExtensionOID.DELTA_CRL_INDICATOR in extensions:
        return unknown(_("{url} holds a delta CRL, which is not read").format(url=url))
    scope = extensions.get(x509.oid.ExtensionOID.ISSUING_DISTRIBUTION_POINT)
    if isinstance(scope, x509.IssuingDistributionPoint):
        is_ca = _is_ca(cert)
        if (
            scope.indirect_crl
            or scope.only_some_reasons
            or scope.only_contains_attribute_certs
            or (scope.only_contains_user_certs and is_ca)
            or (scope.only_contains_ca_certs and not is_ca)
        ):
            return unknown(_("the CRL at {url} does not cover this certificate").format(url=url))
    last_update, next_update = crl.last_update_utc, crl.next_update_utc
    if last_update > now + SKEW:
        return unknown(_("the CRL at {url} is dated in the future ({date})").format(url=url, date=_date(last_update)))
    valid_until = next_update if next_update is not None else last_update + NO_NEXT_UPDATE_VALIDITY
    if valid_until < now - SKEW:
        return unknown(_("the CRL at {url} is out of date (next update was due {date})").format(url=url, date=_date(valid_until)))
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if entry is None:
        return Answer(Outcome.GOOD, "CRL", url, valid_until=valid_until)
    reason: x509.ReasonFlags | None = None
    try:
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        pass
    if reason is x509.ReasonFlags.remove_from_crl:
        return Answer(Outcome.GOOD, "CRL", url, valid_until=valid_until)
    return Answer(Outcome.REVOKED, "CRL", url, revoked_at=entry.revocation_date_utc, reason=reason, valid_until=valid_until)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


# ---------------------------------------------------------------------------------------------
# The chain


def chain_links(
    verified: list[bytes], presented: list[bytes], authorities: Iterable[bytes] = ()
) -> tuple[list[tuple[x509.Certificate, x509.Certificate]], list[x509.Certificate]]:
    """(certificate, issuer) pairs to check, and certificates that cannot be checked because their
    issuer is not known. `verified` is the chain OpenSSL built (leaf ... anchor; empty on Windows and
    macOS, or when verification was off for a pin), else the presented chain is followed as far as
    each certificate is signed by the next; where the server does not send an issuer, one of the
    trusted `authorities` (the CA file's, the system store's where Python can list it) that signed
    the certificate is its issuer, and the chain ends there."""
    from_verified = len(verified) >= 2
    chain = list(verified if from_verified else presented)
    pairs: list[tuple[x509.Certificate, x509.Certificate]] = []
    orphans: list[x509.Certificate] = []
    for position, der in enumerate(chain):
        cert = trust.load_certificate(der)
        if trust.is_self_signed(cert):
            break  # the anchor (or a self-signed server certificate): nothing above it answers for it
        above = chain[position + 1] if position + 1 < len(chain) else None
        if above is not None and trust.issued_by(der, above):
            pairs.append((cert, trust.load_certificate(above)))
            continue
        if from_verified:
            break  # OpenSSL's chain ends at the anchor, which may be an intermediate (partial chain)
        authority = next((candidate for candidate in authorities if _issued_by(der, candidate)), None)
        if authority is None:
            orphans.append(cert)
        else:
            pairs.append((cert, trust.load_certificate(authority)))
        break
    return pairs, orphans


def _issued_by(child: bytes, issuer: bytes) -> bool:
    try:
        return trust.issued_by(child, issuer)
    except ValueError:
        return False


def trusted_authorities(ca_file: Path | None) -> list[bytes]:
    """The certificates a missing issuer may be found among: the profile's CA file, and on Windows
    the system's Root and CA stores (`ssl.enum_certificates`; never run on Windows). macOS's
    keychain has no Python API: there a certificate whose issuer the server does not send stays
    "not checked". Unreadable sources give nothing."""
    found: list[bytes] = []
    if ca_file is not None:
        try:
            found += trust.pem_certificates(Path(ca_file).read_bytes())
        except OSError:
            pass
    if sys.platform == "win32":
        for store in ("ROOT", "CA"):
            try:
                found += [data for data, encoding, _usage in ssl.enum_certificates(store) if encoding == "x509_asn"]
            except OSError:
                continue
    return found


# ---------------------------------------------------------------------------------------------
# I/O: HTTP and the cache


class FetchError(Exception):
    """The phrase says why (for "cannot tell")."""


REDIRECTS = 3  # a CRL (GET) may be moved to another http:// address this many times


def http_fetch(url: str, body: bytes | None, timeout: float, limit: int = CRL_LIMIT) -> bytes:
    """GET (or POST `body` as an OCSP request) `url` directly, never through a proxy. A GET follows
    up to REDIRECTS redirections to http:// addresses (not to https://, whose certificate would
    need its own revocation check)."""
    location = url
    for _hop in range(REDIRECTS + 1):
        status, reason, moved_to, data = _http_once(url, location, body, timeout, limit)
        if status == 200:
            return data
        if status in (301, 302, 303, 307, 308) and body is None and moved_to:
            target = urllib.parse.urljoin(location, moved_to)
            if is_http(target):
                location = target
                continue
        raise FetchError(_("{url} answered {status} {reason}").format(url=url, status=status, reason=reason))
    raise FetchError(_("{url} redirected more than {count} times").format(url=url, count=REDIRECTS))


def _http_once(url: str, location: str, body: bytes | None, timeout: float, limit: int) -> tuple[int, str, str, bytes]:
    """(status, reason, Location header, body) of one request to `location`; sentences name `url`."""
    import http.client  # only when something is fetched: not with every connect's imports (issue 18)

    parts = urllib.parse.urlsplit(location)
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise FetchError(_("{url} is not an http:// address").format(url=url))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        headers = {"Accept": "*/*", "Connection": "close"}
        if body is not None:
            headers["Content-Type"] = "application/ocsp-request"
        connection.request("POST" if body is not None else "GET", path, body=body, headers=headers)
        reply = connection.getresponse()
        if reply.status != 200:
            return reply.status, reply.reason, reply.getheader("Location") or "", b""
        data = reply.read(limit + 1)
        if len(data) > limit:
            raise FetchError(_("{url} sent more than {size} MB").format(url=url, size=limit // (1024 * 1024) or 1))
        return 200, reply.reason, "", data
    except TimeoutError:
        raise FetchError(_("{url} did not answer within {seconds:.0f} s").format(url=url, seconds=timeout)) from None
    except ConnectionRefusedError:
        raise FetchError(_("{url} refused the connection").format(url=url)) from None
    except (OSError, http.client.HTTPException) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise FetchError(_("{url} cannot be reached ({reason})").format(url=url, reason=reason)) from None
    finally:
        connection.close()


def cache_folder() -> Path:
    import platformdirs

    return platformdirs.user_cache_path(APP_DIR_NAME) / "revocation"


class Cache:
    """Files in `folder`: `ocsp-*` and `crl-*` hold answers as received (checked again when read),
    `revoked-*` the revocations seen. Writes are atomic; failures to write are ignored (a cache)."""

    def __init__(self, folder: Path | None = None, limit: int = CACHE_BYTES) -> None:
        self.folder = folder if folder is not None else cache_folder()
        self.limit = limit
        self._lock = threading.Lock()

    @staticmethod
    def key(kind: str, *parts: bytes | str) -> str:
        digest = hashlib.sha256()
        for part in parts:
            digest.update(part.encode() if isinstance(part, str) else part)
            digest.update(b"\0")
        return f"{kind}-{digest.hexdigest()[:40]}"

    def get(self, name: str) -> bytes | None:
        try:
            return (self.folder / name).read_bytes()
        except OSError:
            return None

    def put(self, name: str, data: bytes) -> None:
        with self._lock:
            try:
                self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
                with os.fdopen(handle, "wb") as file:
                    file.write(data)
                os.replace(temporary, self.folder / name)
                self._prune()
            except OSError:
                return

    def forget(self, name: str) -> None:
        try:
            (self.folder / name).unlink()
        except OSError:
            pass

    def _prune(self) -> None:
        entries = []
        for path in self.folder.iterdir():
            try:
                entries.append((path.stat().st_mtime, path.stat().st_size, path))
            except OSError:
                continue
        total = sum(size for _mtime, size, _path in entries)
        # Oldest first; revocations seen are kept as long as anything else can go.
        for _mtime, size, path in sorted(entries, key=lambda entry: (entry[2].name.startswith("revoked-"), entry[0])):
            if total <= self.limit:
                break
            try:
                path.unlink()
                total -= size
            except OSError:
                continue

    # -- revocations seen: a cache never makes a revoked certificate good --------------------

    def remember_revoked(self, key: str, name: str, answer: Answer) -> None:
        until = answer.valid_until if answer.reason is x509.ReasonFlags.certificate_hold else None
        record = {
            "name": name,
            "source": answer.source,
            "url": answer.url,
            "revoked_at": answer.revoked_at.isoformat() if answer.revoked_at else None,
            "reason": answer.reason.value if answer.reason else None,
            "until": until.isoformat() if until else None,
        }
        self.put(key, json.dumps(record).encode())

    def revoked(self, key: str, now: datetime.datetime) -> Answer | None:
        data = self.get(key)
        if data is None:
            return None
        try:
            record = json.loads(data)
            until = datetime.datetime.fromisoformat(record["until"]) if record.get("until") else None
            if until is not None and until < now:
                self.forget(key)
                return None
            return Answer(
                Outcome.REVOKED,
                str(record["source"]),
                str(record["url"]),
                revoked_at=datetime.datetime.fromisoformat(record["revoked_at"]) if record.get("revoked_at") else None,
                reason=x509.ReasonFlags(record["reason"]) if record.get("reason") else None,
                cached=True,
            )
        except (ValueError, KeyError, TypeError):
            return None


# ---------------------------------------------------------------------------------------------
# The check


@dataclass
class Checker:
    """Checks certificates against their issuers. `fetch` and `now` are replaceable for tests."""

    cache: Cache = field(default_factory=Cache)
    fetch: Fetch = field(default=lambda url, body, timeout: http_fetch(url, body, timeout, OCSP_LIMIT if body is not None else CRL_LIMIT))
    fetch_seconds: float = FETCH_SECONDS
    stagger_seconds: float = STAGGER_SECONDS
    total_seconds: float = TOTAL_SECONDS
    now: Callable[[], datetime.datetime] = field(default=lambda: datetime.datetime.now(datetime.UTC))

    def check_chain(self, verified: list[bytes], presented: list[bytes], policy: Revocation, authorities: Iterable[bytes] = ()) -> RevocationResult:
        started = time.monotonic()
        deadline = started + self.total_seconds
        try:
            pairs, orphans = chain_links(verified, presented, list(authorities))
        except ValueError:
            pairs, orphans = [], []
        results: list[CertificateCheck | None] = [None] * len(pairs)

        def work(index: int, cert: x509.Certificate, issuer: x509.Certificate) -> None:
            results[index] = self.check_certificate(cert, issuer, deadline)

        threads = [threading.Thread(target=work, args=(index, *pair), name="sstp-vpn-revocation", daemon=True) for index, pair in enumerate(pairs)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()) + 0.2)
        checks: list[CertificateCheck] = []
        for index, (cert, _issuer) in enumerate(pairs):
            result = results[index]
            if result is None:  # still waiting (a name that does not resolve): abandoned, it ends by itself
                names = ocsp_urls(cert) + crl_urls(cert)
                result = CertificateCheck(
                    display_name(cert),
                    Outcome.UNKNOWN,
                    problems=(_("no answer within {seconds:.0f} s").format(seconds=self.total_seconds),),
                    urls=tuple(names),
                )
            checks.append(result)
        for cert in orphans:
            checks.append(
                CertificateCheck(display_name(cert), Outcome.NOT_CHECKED, problems=(_("the server did not send its issuer's certificate"),))
            )
        if not checks:
            chain = verified or presented
            if chain:
                try:
                    name = display_name(trust.load_certificate(chain[0]))
                except ValueError:
                    name = "?"
                checks.append(
                    CertificateCheck(
                        name, Outcome.NOT_CHECKED, problems=(_("the certificate is trusted as it stands; no authority above it can revoke it"),)
                    )
                )
        return RevocationResult(policy, tuple(checks), time.monotonic() - started)

    def check_certificate(self, cert: x509.Certificate, issuer: x509.Certificate, deadline: float) -> CertificateCheck:
        name = display_name(cert)
        responders, points = ocsp_urls(cert), crl_urls(cert)
        named = tuple(responders + points)
        if not named:
            return CertificateCheck(name, Outcome.NOT_CHECKED, problems=(_("the certificate names no revocation service"),))
        now = self.now()
        revoked_key = Cache.key("revoked", key_hash(issuer), str(cert.serial_number))
        remembered = self.cache.revoked(revoked_key, now)
        if remembered is not None:
            return CertificateCheck(name, Outcome.REVOKED, remembered, urls=named)
        sources = [(kind, url) for kind, urls in (("ocsp", responders), ("crl", points)) for url in urls if is_http(url)]
        for kind, url in sources:  # a current answer kept from before costs nothing
            answer = self._cached(kind, url, cert, issuer)
            if answer is not None:
                return self._decided(name, named, revoked_key, answer)
        problems: list[str] = []
        answer = self._ask_in_turn(sources, cert, issuer, deadline, problems)
        if answer is not None:
            return self._decided(name, named, revoked_key, answer)
        if not problems:
            problems.append(
                _("the certificate names only revocation services this program cannot read: {services}").format(services=", ".join(named))
            )
        return CertificateCheck(name, Outcome.UNKNOWN, problems=tuple(problems), urls=named)

    def _decided(self, name: str, named: tuple[str, ...], revoked_key: str, answer: Answer) -> CertificateCheck:
        if answer.outcome is Outcome.REVOKED:
            self.cache.remember_revoked(revoked_key, name, answer)
        return CertificateCheck(name, answer.outcome, answer, urls=named)

    def _ask_in_turn(
        self, sources: list[tuple[str, str]], cert: x509.Certificate, issuer: x509.Certificate, deadline: float, problems: list[str]
    ) -> Answer | None:
        """The first GOOD or REVOKED answer. The sources are asked in order (OCSP responders, then
        CRLs); the next starts when one fails, or when one has not answered within `stagger_seconds`
        (then both run: a silent responder costs one fetch's time, not one per source)."""
        results: queue.SimpleQueue[tuple[Answer | None, list[str]]] = queue.SimpleQueue()

        def ask(kind: str, url: str) -> None:
            found: list[str] = []
            answer: Answer | None = None
            try:
                answer = self._fetch(kind, url, cert, issuer, deadline, found)
            finally:  # also after a bug: the check must not wait for this source until its deadline
                results.put((answer, found))

        waiting, started = 0, 0
        next_start = time.monotonic()
        while True:
            now = time.monotonic()
            if started < len(sources) and (waiting == 0 or now >= next_start):
                threading.Thread(target=ask, args=sources[started], name="sstp-vpn-revocation-fetch", daemon=True).start()
                started, waiting = started + 1, waiting + 1
                next_start = now + self.stagger_seconds
                continue
            if waiting == 0:
                return None
            until = min(next_start, deadline) if started < len(sources) else deadline
            try:
                answer, found = results.get(timeout=max(0.0, until - now))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    problems.append(_("no answer within {seconds:.0f} s").format(seconds=self.total_seconds))
                    return None
                continue
            waiting -= 1
            problems.extend(found)
            if answer is not None:
                return answer

    def _key(self, kind: str, url: str, cert: x509.Certificate, issuer: x509.Certificate) -> str:
        return Cache.key(kind, url, key_hash(issuer), str(cert.serial_number) if kind == "ocsp" else "")

    def _cached(self, kind: str, url: str, cert: x509.Certificate, issuer: x509.Certificate) -> Answer | None:
        """A current GOOD answer kept in the cache (checked again as it is read), or None."""
        key = self._key(kind, url, cert, issuer)
        data = self.cache.get(key)
        if data is None:
            return None
        answer = (judge_ocsp if kind == "ocsp" else judge_crl)(data, cert, issuer, url, self.now())
        if answer.outcome is Outcome.UNKNOWN:
            self.cache.forget(key)
            return None
        return Answer(answer.outcome, answer.source, url, "", answer.revoked_at, answer.reason, answer.valid_until, cached=True)

    def _fetch(self, kind: str, url: str, cert: x509.Certificate, issuer: x509.Certificate, deadline: float, problems: list[str]) -> Answer | None:
        """A GOOD or REVOKED answer fetched from `url`, or None with the problem noted."""
        remaining = deadline - time.monotonic()
        if remaining <= 0.05:
            problems.append(_("no time was left to ask {url}").format(url=url))
            return None
        try:
            data = self.fetch(url, ocsp_request(cert, issuer) if kind == "ocsp" else None, min(self.fetch_seconds, remaining))
        except FetchError as error:
            problems.append(str(error))
            return None
        answer = (judge_ocsp if kind == "ocsp" else judge_crl)(data, cert, issuer, url, self.now())
        if answer.outcome is Outcome.UNKNOWN:
            problems.append(answer.problem)
            return None
        if answer.outcome is Outcome.GOOD and answer.valid_until is not None:
            self.cache.put(self._key(kind, url, cert, issuer), data)
        return answer


def check_connection(
    verified: Iterable[bytes], presented: Iterable[bytes], policy: Revocation, checker: Checker | None = None, authorities: Iterable[bytes] = ()
) -> RevocationResult:
    """The revocation check of a connection's chain (`transport.open_connection`, `diagnose`).
    `authorities`: see `chain_links` (`trusted_authorities(settings.ca_file)`)."""
    return (checker or Checker()).check_chain(list(verified), list(presented), policy, authorities)
