"""The pure parts of the revocation check (client/revocation.py): judging OCSP answers and CRLs
built here with `cryptography`, the chain's links, the policy's decisions and sentences, the cache.
Fetching is replaced by a table of URL -> answer (or failure); the real responder, CRL server and
client are in tests/revocation."""

from __future__ import annotations

import datetime
import hashlib
import http.server
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sstpvpn.client import revocation
from sstpvpn.client.first_contact import fetch_presented_certificate
from sstpvpn.client.profiles import Revocation
from sstpvpn.client.revocation import Answer, Cache, Checker, FetchError, Outcome, judge_crl, judge_ocsp
from sstpvpn.client.transport import TransportError, TransportSettings, open_connection
from tests.gui.tls_server import LoopbackTlsServer

NOW = datetime.datetime(2026, 12, 5, 12, 0, tzinfo=datetime.UTC)
OCSP_URL = "http://ocsp.test/"
CRL_URL = "http://crl.test/ca.crl"


@dataclass(frozen=True)
class Made:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def make(
    name: str,
    issuer: Made | None = None,
    *,
    ca: bool = False,
    ocsp_url: str | None = OCSP_URL,
    crl_url: str | None = CRL_URL,
    usages: list[x509.ObjectIdentifier] | None = None,
    serial: int | None = None,
    dns: str | None = None,
) -> Made:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if issuer is not None and ocsp_url:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [x509.AccessDescription(x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]
            ),
            critical=False,
        )
    if issuer is not None and crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints([x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)]), critical=False
        )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(dns)]), critical=False)
    return Made(builder.sign(issuer.key if issuer else key, hashes.SHA256()), key)


@pytest.fixture(scope="module")
def pki() -> dict[str, Made]:
    root = make("Test Root", ca=True)
    leaf = make("vpn.test", root)
    return {"root": root, "leaf": leaf, "stranger": make("Stranger Root", ca=True)}


def ocsp_answer(
    leaf: Made,
    issuer: Made,
    *,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    signer: Made | None = None,
    extra_certs: list[x509.Certificate] | None = None,
    this_update: datetime.datetime = NOW - datetime.timedelta(hours=1),
    next_update: datetime.datetime | None = NOW + datetime.timedelta(hours=6),
    revoked_at: datetime.datetime | None = None,
    reason: x509.ReasonFlags | None = None,
    by_hash: bool = False,
) -> bytes:
    signer = signer or issuer
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf.cert,
        issuer=issuer.cert,
        algorithm=hashes.SHA1(),
        cert_status=status,
        this_update=this_update,
        next_update=next_update,
        revocation_time=revoked_at if status is ocsp.OCSPCertStatus.REVOKED else None,
        revocation_reason=reason if status is ocsp.OCSPCertStatus.REVOKED else None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH if by_hash else ocsp.OCSPResponderEncoding.NAME, signer.cert)
    if extra_certs:
        builder = builder.certificates(extra_certs)
    return builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def crl(
    issuer: Made,
    revoked: list[tuple[int, datetime.datetime, x509.ReasonFlags | None]] = (),
    *,
    signer: Made | None = None,
    next_update=NOW + datetime.timedelta(days=1),
) -> bytes:  # type: ignore[assignment]
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(NOW - datetime.timedelta(hours=1))
        .next_update(next_update)
    )
    for serial, when, reason in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return builder.sign((signer or issuer).key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


# ---------------------------------------------------------------------------------------------
# OCSP answers


def test_ocsp_good_signed_by_the_issuer(pki):
    answer = judge_ocsp(ocsp_answer(pki["leaf"], pki["root"]), pki["leaf"].cert, pki["root"].cert, OCSP_URL, NOW)
    assert answer.outcome is Outcome.GOOD and answer.valid_until == NOW + datetime.timedelta(hours=6)


def test_ocsp_responder_identified_by_key_hash(pki):
    answer = judge_ocsp(ocsp_answer(pki["leaf"], pki["root"], by_hash=True), pki["leaf"].cert, pki["root"].cert, OCSP_URL, NOW)
    assert answer.outcome is Outcome.GOOD


def test_ocsp_revoked_gives_date_and_reason(pki):
    when = datetime.datetime(2026, 11, 30, 8, 15, tzinfo=datetime.UTC)
    data = ocsp_answer(pki["leaf"], pki["root"], status=ocsp.OCSPCertStatus.REVOKED, revoked_at=when, reason=x509.ReasonFlags.key_compromise)
    answer = judge_ocsp(data, pki["leaf"].cert, pki["root"].cert, OCSP_URL, NOW)
    assert (answer.outcome, answer.revoked_at, answer.reason) == (Outcome.REVOKED, when, x509.ReasonFlags.key_compromise)
    sentence = revocation.revoked_sentence("vpn.test", answer)
    assert "vpn.test" in sentence and "2026-11-30 08:15 UTC" in sentence and "key compromise" in sentence and OCSP_URL in sentence


def test_ocsp_delegated_responder_with_ocsp_signing_is_accepted(pki):
    responder = make("OCSP responder", pki["root"], usages=[ExtendedKeyUsageOID.OCSP_SIGNING], ocsp_url=None, crl_url=None)
    data = ocsp_answer(pki["leaf"], pki["root"], signer=responder, extra_certs=[responder.cert])
    assert judge_ocsp(data, pki["leaf"].cert, pki["root"].cert, OCSP_URL, NOW).outcome is Outcome.GOOD


def test_ocsp_delegated_responder_without_ocsp_signing_is_refused(pki):
    responder = make("Some server", pki["root"], usages=[ExtendedKeyUsageOID.SERVER_AUTH], ocsp_url=None, crl_url=None)
    data = ocsp_answer(pki["leaf"], pki["root"], signer=responder, extra_certs=[responder.cert])
    answer = judge_ocsp(data, pki["leaf"].cert, pki["root"].cert, OCSP_URL, NOW)
    assert answer.outcome is Outcome.UNKNOWN and "OCSPSigning" in answer.problem


def test_ocsp_responder_not_issued_by_the_issuer_is_refused(pki):
    responder = make("Rogue responder", pki["stranger"], usages=[ExtendedKeyUsageOID.OCSP_SIGNING], ocsp_url=None, crl_url=None)
    data = ocsp_answer(pki["leaf"], pki["root"], signer=responder, extra_certs=[responder.cert], status=ocsp.OCSPCertStatus.GOOD)
    answer = judge_ocsp(data, pki["leaf"].cert, pki["root"].cert, OCSP_URL, NOW)
    assert answer.outcome is Outcome.UNKNOWN and "Rogue responder" in answer.problem


def test_ocsp_signed_by_an_unnamed_key_is_refused(pki):
    """The responder names the issuer but another key signed: the signature does not match."""
    impostor = make("Test Root", ca=True)  # the same name as the issuer, another key
    answer = judge_ocsp(ocsp_answer(pki["leaf"], pki["root"], signer=impostor), pki["leaf"].cert, pki["root"].cert, OCSP_URL, NOW)
    assert answer.outcome is Outcome.UNKNOWN and "signature" in answer.problem


def test_ocsp_dates_are_honoured(pki):
    stale = ocsp_answer(pki["leaf"], pki["root"], this_update=NOW - datetime.timedelta(days=2), next_update=NOW - datetime.timedelta(hours=1))
    future = ocsp_answer(pki["leaf"], pki["root"], this_update=NOW + datetime.timedelta(hours=1))
    old_without_next = ocsp_answer(pki["leaf"], pki["root"], this_update=NOW - datetime.timedelta(days=2), next_update=None)
    for data, word in ((stale, "out of date"), (future, "future"), (old_without_next, "out of date")):
        answer = judge_ocsp(data, pki["leaf"].cert, pki["root"].cert, OCSP_URL, NOW)
        assert answer.outcome is Outcome.UNKNOWN and word in answer.problem
    skewed = ocsp_answer(pki["leaf"], pki["root"], this_update=NOW + datetime.timedelta(minutes=2))
    assert judge_ocsp(skewed, pki["leaf"].cert, pki["root"].cert, OCSP_URL, NOW).outcome is Outcome.GOOD


def test_ocsp_answer_about_another_certificate_or_not_successful(pki):
    other = make("other.test", pki["root"])
    answer = judge_ocsp(ocsp_answer(other, pki["root"]), pki["leaf"].cert, pki["root"].cert, OCSP_URL, NOW)
    assert answer.outcome is Outcome.UNKNOWN and "another certificate" in answer.problem
    refused = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(serialization.Encoding.DER)
    answer = judge_ocsp(refused, pki["leaf"].cert, pki["root"].cert, OCSP_URL, NOW)
    assert answer.outcome is Outcome.UNKNOWN and "unauthorized" in answer.problem
    assert judge_ocsp(b"<html>", pki["leaf"].cert, pki["root"].cert, OCSP_URL, NOW).outcome is Outcome.UNKNOWN


def test_ocsp_request_names_the_certificate(pki):
    request = ocsp.load_der_ocsp_request(revocation.ocsp_request(pki["leaf"].cert, pki["root"].cert))
    assert request.serial_number == pki["leaf"].cert.serial_number
    assert request.issuer_key_hash == revocation.key_hash(pki["root"].cert)


# ---------------------------------------------------------------------------------------------
# CRLs


def test_crl_good_and_revoked(pki):
    leaf, root = pki["leaf"], pki["root"]
    assert judge_crl(crl(root), leaf.cert, root.cert, CRL_URL, NOW).outcome is Outcome.GOOD
    when = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)
    answer = judge_crl(crl(root, [(leaf.cert.serial_number, when, x509.ReasonFlags.superseded)]), leaf.cert, root.cert, CRL_URL, NOW)
    assert (answer.outcome, answer.revoked_at, answer.reason) == (Outcome.REVOKED, when, x509.ReasonFlags.superseded)
    pem = x509.load_der_x509_crl(crl(root)).public_bytes(serialization.Encoding.PEM)
    assert judge_crl(pem, leaf.cert, root.cert, CRL_URL, NOW).outcome is Outcome.GOOD


def test_crl_with_a_wrong_signature_issuer_or_date_is_not_used(pki):
    leaf, root = pki["leaf"], pki["root"]
    forged = make("Test Root", ca=True)
    cases = {
        "signature": crl(root, signer=forged),
        "another authority": crl(pki["stranger"]),
        "out of date": crl(root, next_update=NOW - datetime.timedelta(hours=1)),
        "not send a CRL": b"not a CRL",
    }
    for word, data in cases.items():
        answer = judge_crl(data, leaf.cert, root.cert, CRL_URL, NOW)
        assert answer.outcome is Outcome.UNKNOWN and word in answer.problem, word


# ---------------------------------------------------------------------------------------------
# The chain


def test_chain_links_verified_and_presented(pki):
    root = pki["root"]
    inter = make("Test Intermediate", root, ca=True)
    leaf = make("vpn.test", inter)
    pairs, orphans = revocation.chain_links([leaf.der, inter.der, root.der], [])
    assert [(c.subject, i.subject) for c, i in pairs] == [(leaf.cert.subject, inter.cert.subject), (inter.cert.subject, root.cert.subject)]
    assert orphans == []
    # The OS verified it (Windows/macOS): the presented chain, whose top's issuer is not sent.
    pairs, orphans = revocation.chain_links([], [leaf.der, inter.der])
    assert [c.subject for c, _ in pairs] == [leaf.cert.subject] and [c.subject for c in orphans] == [inter.cert.subject]
    # An intermediate as the anchor (partial chain): nothing above it is checked.
    pairs, orphans = revocation.chain_links([leaf.der, inter.der], [leaf.der, inter.der])
    assert len(pairs) == 1 and orphans == []
    # A self-signed server certificate: nothing to check.
    assert revocation.chain_links([root.der], [root.der]) == ([], [])


def test_a_missing_issuer_is_found_among_the_trusted_authorities(pki, tmp_path):
    """Windows/macOS (no verified chain) and pins: the server sends leaf and intermediate only;
    the root from the CA file answers for the intermediate."""
    root = pki["root"]
    inter = make("Test Intermediate", root, ca=True)
    leaf = make("vpn.test", inter)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(pki["stranger"].cert.public_bytes(serialization.Encoding.PEM) + root.cert.public_bytes(serialization.Encoding.PEM))
    authorities = revocation.trusted_authorities(ca_file)
    assert authorities == [pki["stranger"].der, root.der]
    pairs, orphans = revocation.chain_links([], [leaf.der, inter.der], authorities)
    assert [(c.subject, i.subject) for c, i in pairs] == [(leaf.cert.subject, inter.cert.subject), (inter.cert.subject, root.cert.subject)]
    assert orphans == []
    pairs, orphans = revocation.chain_links([], [leaf.der], authorities)  # the intermediate not sent, not known: not checked
    assert pairs == [] and [c.subject for c in orphans] == [leaf.cert.subject]
    assert revocation.trusted_authorities(tmp_path / "missing.pem") == [] and revocation.trusted_authorities(None) == []


# ---------------------------------------------------------------------------------------------
# The checker: sources in order, policy, cache, time


class Responses:
    """URL -> bytes, or -> a FetchError phrase; counts the fetches."""

    def __init__(self, table: dict[str, bytes | str]) -> None:
        self.table = table
        self.fetched: list[str] = []

    def __call__(self, url: str, body: bytes | None, timeout: float) -> bytes:
        self.fetched.append(url)
        value = self.table.get(url, f"{url} refused the connection")
        if isinstance(value, str):
            raise FetchError(value)
        return value


def checker(tmp_path: Path, table: dict[str, bytes | str]) -> tuple[Checker, Responses]:
    responses = Responses(table)
    return Checker(cache=Cache(tmp_path / "cache"), fetch=responses, now=lambda: NOW), responses


def chain(pki) -> list[bytes]:
    return [pki["leaf"].der, pki["root"].der]


def test_good_ocsp_connects_and_is_cached(tmp_path, pki):
    check, responses = checker(tmp_path, {OCSP_URL: ocsp_answer(pki["leaf"], pki["root"])})
    result = check.check_chain(chain(pki), chain(pki), Revocation.HARD)
    assert result.outcome is Outcome.GOOD and result.refusal is None and result.warning is None
    assert result.summary == f"good (OCSP, {OCSP_URL})"
    again = check.check_chain(chain(pki), chain(pki), Revocation.HARD)
    assert again.outcome is Outcome.GOOD and again.checks[0].answer.cached and responses.fetched == [OCSP_URL]


def test_ocsp_down_falls_back_to_the_crl(tmp_path, pki):
    when = datetime.datetime(2026, 12, 2, 10, 30, tzinfo=datetime.UTC)
    check, responses = checker(tmp_path, {CRL_URL: crl(pki["root"], [(pki["leaf"].cert.serial_number, when, x509.ReasonFlags.key_compromise)])})
    result = check.check_chain(chain(pki), chain(pki), Revocation.SOFT)
    assert responses.fetched == [OCSP_URL, CRL_URL]
    assert result.outcome is Outcome.REVOKED
    assert (
        result.refusal is not None
        and "vpn.test" in result.refusal
        and "2026-12-02 10:30 UTC" in result.refusal
        and "key compromise" in result.refusal
    )


def test_cannot_tell_soft_warns_hard_refuses(tmp_path, pki):
    check, _ = checker(tmp_path, {})
    soft = check.check_chain(chain(pki), chain(pki), Revocation.SOFT)
    assert soft.outcome is Outcome.UNKNOWN and soft.refusal is None
    assert soft.warning is not None and "vpn.test" in soft.warning and "refused the connection" in soft.warning and "soft" in soft.warning
    hard = check.check_chain(chain(pki), chain(pki), Revocation.HARD)
    assert hard.warning is None and hard.refusal is not None
    assert "vpn.test" in hard.refusal and OCSP_URL in hard.refusal and CRL_URL in hard.refusal and "hard" in hard.refusal


def test_no_revocation_service_is_not_checked_in_either_mode(tmp_path, pki):
    leaf = make("bare.test", pki["root"], ocsp_url=None, crl_url=None)
    check, responses = checker(tmp_path, {})
    for policy in (Revocation.SOFT, Revocation.HARD):
        result = check.check_chain([leaf.der, pki["root"].der], [leaf.der], policy)
        assert result.outcome is Outcome.NOT_CHECKED and result.refusal is None and result.warning is None
        assert result.summary == "not checked: the certificate names no revocation service"
    assert responses.fetched == []


def test_a_good_intermediate_above_an_unchecked_server_certificate_is_not_summed_up_as_good(tmp_path, pki):
    inter = make("Test Intermediate", pki["root"], ca=True, ocsp_url=None)
    leaf = make("bare.test", inter, ocsp_url=None, crl_url=None)
    check, _ = checker(tmp_path, {CRL_URL: crl(pki["root"])})
    result = check.check_chain([leaf.der, inter.der, pki["root"].der], [leaf.der, inter.der], Revocation.HARD)
    assert result.outcome is Outcome.GOOD and result.refusal is None
    assert result.summary == f"bare.test not checked (the certificate names no revocation service); Test Intermediate good (CRL, {CRL_URL})"


def test_only_ldap_services_cannot_tell(tmp_path, pki):
    leaf = make("ad.test", pki["root"], ocsp_url=None, crl_url="ldap:///CN=Corp-CA,CN=CDP,DC=corp,DC=example?certificateRevocationList")
    check, responses = checker(tmp_path, {})
    result = check.check_chain([leaf.der, pki["root"].der], [leaf.der], Revocation.HARD)
    assert result.outcome is Outcome.UNKNOWN and result.refusal is not None and "ldap:///" in result.refusal and responses.fetched == []


def test_self_signed_server_certificate_has_nothing_to_check(tmp_path, pki):
    check, _ = checker(tmp_path, {})
    result = check.check_chain([pki["root"].der], [pki["root"].der], Revocation.HARD)
    assert result.outcome is Outcome.NOT_CHECKED and result.refusal is None


def test_a_revocation_seen_once_stays_even_when_the_responder_later_says_good_or_is_down(tmp_path, pki):
    when = NOW - datetime.timedelta(days=1)
    revoked = ocsp_answer(pki["leaf"], pki["root"], status=ocsp.OCSPCertStatus.REVOKED, revoked_at=when, reason=x509.ReasonFlags.key_compromise)
    check, _ = checker(tmp_path, {OCSP_URL: revoked})
    assert check.check_chain(chain(pki), chain(pki), Revocation.SOFT).outcome is Outcome.REVOKED
    for table in ({OCSP_URL: ocsp_answer(pki["leaf"], pki["root"])}, {}):
        later, _ = checker(tmp_path, table)
        result = later.check_chain(chain(pki), chain(pki), Revocation.SOFT)
        assert result.outcome is Outcome.REVOKED and result.refusal is not None and "key compromise" in result.refusal


def test_a_cached_answer_past_its_next_update_is_asked_again(tmp_path, pki):
    short = ocsp_answer(pki["leaf"], pki["root"], next_update=NOW + datetime.timedelta(minutes=1))
    check, responses = checker(tmp_path, {OCSP_URL: short})
    check.check_chain(chain(pki), chain(pki), Revocation.SOFT)
    check.now = lambda: NOW + datetime.timedelta(hours=1)
    result = check.check_chain(chain(pki), chain(pki), Revocation.SOFT)
    assert responses.fetched == [OCSP_URL, OCSP_URL, CRL_URL]  # the stale answer was not used...
    assert result.outcome is Outcome.UNKNOWN  # ...and the fresh one (the same bytes) is stale too


def test_the_whole_check_is_time_boxed(tmp_path, pki):
    def hang(url: str, body: bytes | None, timeout: float) -> bytes:
        time.sleep(5)
        raise FetchError("too late")

    check = Checker(cache=Cache(tmp_path / "cache"), fetch=hang, now=lambda: NOW, total_seconds=0.5)
    started = time.monotonic()
    result = check.check_chain(chain(pki), chain(pki), Revocation.SOFT)
    assert time.monotonic() - started < 1.5
    assert result.outcome is Outcome.UNKNOWN and "no answer within" in result.checks[0].problems[0]


def test_a_silent_responder_does_not_hold_up_the_crl(tmp_path, pki):
    """OCSP silent: after the stagger the CRL is asked meanwhile, and its answer decides."""
    when = NOW - datetime.timedelta(days=3)
    table = {CRL_URL: crl(pki["root"], [(pki["leaf"].cert.serial_number, when, x509.ReasonFlags.cessation_of_operation)])}

    def fetch(url: str, body: bytes | None, timeout: float) -> bytes:
        if url == OCSP_URL:
            time.sleep(3)
            raise FetchError(f"{url} did not answer within 3 s")
        return Responses(table)(url, body, timeout)

    check = Checker(cache=Cache(tmp_path / "cache"), fetch=fetch, now=lambda: NOW, stagger_seconds=0.2)
    started = time.monotonic()
    result = check.check_chain(chain(pki), chain(pki), Revocation.SOFT)
    assert time.monotonic() - started < 1.5
    assert result.outcome is Outcome.REVOKED and "cessation of operation" in (result.refusal or "") and "according to CRL" in (result.refusal or "")


def test_cache_is_size_bounded_and_keeps_revocations(tmp_path):
    cache = Cache(tmp_path, limit=3000)
    cache.remember_revoked("revoked-a", "x", Answer(Outcome.REVOKED, "CRL", CRL_URL, revoked_at=NOW))
    for number in range(5):
        cache.put(f"crl-{number}", bytes(1000))
        time.sleep(0.01)
    names = sorted(path.name for path in tmp_path.iterdir())
    assert "revoked-a" in names and "crl-0" not in names and "crl-4" in names
    assert sum(path.stat().st_size for path in tmp_path.iterdir()) <= 3000


# ---------------------------------------------------------------------------------------------
# Over real TLS on loopback: a revoked certificate stays refused when pinned, and is never offered


def test_a_revoked_certificate_is_refused_even_pinned_and_never_offered_for_trust(tmp_path, pki, monkeypatch):
    """The connection that found it revoked remembers it (the user's cache folder); the pin does
    not skip the check, and the tray's first-contact offer sees the revocation and offers nothing."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))
    leaf = make("localhost", pki["root"], dns="localhost", ocsp_url="http://127.0.0.1:9/", crl_url=None)
    when = datetime.datetime.now(datetime.UTC).replace(microsecond=0) - datetime.timedelta(hours=2)
    revoked = ocsp_answer(
        leaf,
        pki["root"],
        status=ocsp.OCSPCertStatus.REVOKED,
        revoked_at=when,
        reason=x509.ReasonFlags.key_compromise,
        this_update=datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1),
        next_update=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1),
    )
    found = Checker(fetch=Responses({"http://127.0.0.1:9/": revoked})).check_chain([leaf.der, pki["root"].der], [], Revocation.SOFT)
    assert found.outcome is Outcome.REVOKED  # and remembered in $XDG_CACHE_HOME/sstp-vpn/revocation

    (tmp_path / "chain.pem").write_bytes(b"".join(m.cert.public_bytes(serialization.Encoding.PEM) for m in (leaf, pki["root"])))
    (tmp_path / "key.pem").write_bytes(
        leaf.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    with LoopbackTlsServer(tmp_path / "chain.pem", tmp_path / "key.pem") as server:
        pin = hashlib.sha256(leaf.der).hexdigest()
        with pytest.raises(
            TransportError, match="The certificate localhost in the server's chain was revoked on " + when.strftime("%Y-%m-%d %H:%M UTC")
        ):
            open_connection(TransportSettings("localhost", server.port, pin_sha256=pin, timeout=5))
        offer = fetch_presented_certificate(TransportSettings("localhost", server.port, timeout=5))
        assert not offer.can_be_pinned and offer.unusable is not None and "key compromise" in offer.unusable
        assert server.requests == []  # nothing was sent over the refused connection


# ---------------------------------------------------------------------------------------------
# HTTP, on loopback


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
    posted: list[bytes] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        self.posted.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.routes, _Handler.posted = {}, []
    yield f"http://127.0.0.1:{server.server_address[1]}", _Handler
    server.shutdown()
    server.server_close()


def test_http_fetch_gets_posts_follows_http_redirects_and_names_failures(web):
    base, handler = web
    handler.routes = {
        "/ca.crl": (200, {}, b"CRL"),
        "/moved.crl": (301, {"Location": "/ca.crl"}, b""),
        "/loop.crl": (302, {"Location": "/loop.crl"}, b""),
        "/to-https.crl": (302, {"Location": "https://127.0.0.1/ca.crl"}, b""),
        "/ocsp": (200, {}, b"OCSP answer"),
        "/big": (200, {}, bytes(2000)),
    }
    assert revocation.http_fetch(f"{base}/ca.crl", None, 2) == b"CRL"
    assert revocation.http_fetch(f"{base}/moved.crl", None, 2) == b"CRL"
    assert revocation.http_fetch(f"{base}/ocsp", b"request", 2, revocation.OCSP_LIMIT) == b"OCSP answer" and handler.posted == [b"request"]
    for path, words in (("/loop.crl", "redirected more than 3 times"), ("/to-https.crl", "answered 302"), ("/nothing", "answered 404")):
        with pytest.raises(FetchError, match=words):
            revocation.http_fetch(f"{base}{path}", None, 2)
    with pytest.raises(FetchError, match="sent more than 1 MB"):
        revocation.http_fetch(f"{base}/big", None, 2, limit=1000)
    with pytest.raises(FetchError, match="refused the connection"):
        revocation.http_fetch("http://127.0.0.1:9/", None, 2)
