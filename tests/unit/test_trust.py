"""Certificate decisions as pure logic: RFC 6125 name matching (SAN only, no wildcard under a
public suffix, IDNA 2008 host names), server-auth usage, the SHA-256 pin, chain-error sentences
and the facts `diagnose` shows. Certificates are built in memory."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import ssl
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sstpvpn.client import trust
from sstpvpn.client.transport import TransportSettings

KEY = ec.generate_private_key(ec.SECP256R1())
NOW = datetime.datetime(2025, 6, 1, 12, 0, tzinfo=datetime.UTC)


def make_cert(
    cn: str | None = "vpn.test",
    dns: list[str] | None = None,
    ips: list[str] | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    not_before: datetime.datetime = NOW - datetime.timedelta(days=1),
    not_after: datetime.datetime = NOW + datetime.timedelta(days=30),
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")]))
        .public_key(KEY.public_key())
        .serial_number(7)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns or []]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips or []]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    return builder.sign(KEY, hashes.SHA256())


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


# --- RFC 6125 DNS name matching ------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, reference, expected",
    [
        ("vpn.example.com", "vpn.example.com", True),
        ("VPN.Example.COM", "vpn.example.com", True),  # case-insensitive
        ("vpn.example.com.", "vpn.example.com", True),  # trailing dot ignored on either side
        ("vpn.example.com", "vpn.example.com.", True),
        ("vpn.example.com", "vpn.example.org", False),
        ("vpn.example.com", "example.com", False),
        ("*.example.com", "vpn.example.com", True),
        ("*.example.com", "VPN.EXAMPLE.COM", True),
        ("*.example.com", "a.b.example.com", False),  # one label only
        ("*.example.com", "example.com", False),  # must match a non-empty label
        ("*.example.com", ".example.com", False),
        ("*.com", "example.com", False),  # not directly under a single-label domain
        ("*", "localhost", False),
        ("f*.example.com", "foo.example.com", False),  # partial wildcards refused
        ("*oo.example.com", "foo.example.com", False),
        ("xn--*.example.com", "xn--bcher-kva.example.com", False),  # wildcard inside an A-label
        ("vpn.*.com", "vpn.example.com", False),  # only the left-most label
        ("*.*.example.com", "a.b.example.com", False),
        ("*.xn--bcher-kva.example", "shop.xn--bcher-kva.example", True),  # A-labels compare as text
        ("*.example.com", "xn--bcher-kva.example.com", True),
        ("bücher.example", "xn--bcher-kva.example", False),  # a U-label in a certificate is invalid
        # No wildcard directly under a public suffix (Public Suffix List, ICANN and private sections).
        ("*.co.uk", "foo.co.uk", False),
        ("*.CO.UK", "foo.co.uk", False),
        ("*.example.co.uk", "a.example.co.uk", True),
        ("*.github.io", "someone.github.io", False),
        ("*.someone.github.io", "www.someone.github.io", True),
        ("*.kobe.jp", "foo.kobe.jp", False),  # "*.kobe.jp" is itself a rule: foo.kobe.jp is public too
        ("*.foo.kobe.jp", "www.foo.kobe.jp", False),
        ("*.city.kobe.jp", "www.city.kobe.jp", True),  # an exception rule ("!city.kobe.jp") makes it private
        ("*.xn--55qx5d.cn", "shop.xn--55qx5d.cn", False),  # 公司.cn, listed in Unicode, compared as an A-label
        ("*.vpn.corp", "a.vpn.corp", True),  # under an unknown top-level domain: only the TLD is public
        ("co.uk", "co.uk", True),  # an exact name is not a wildcard: the list does not apply
        ("*..example.com", "a..example.com", False),  # empty labels
    ],
)
def test_dns_name_matches(pattern: str, reference: str, expected: bool) -> None:
    assert trust.dns_name_matches(pattern, reference) is expected


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Bücher.Example.", "xn--bcher-kva.example"),
        ("VPN.Example.com", "vpn.example.com"),
        ("faß.de", "xn--fa-hia.de"),  # IDNA 2008 keeps ß (IDNA 2003, Python's "idna" codec, made it "fass.de")
        ("ｖｐｎ．Example．com", "vpn.example.com"),  # UTS 46 maps full-width letters and dots
        ("XN--BCHER-KVA.Example", "xn--bcher-kva.example"),  # a valid A-label, any case
        ("vpn-1.ab--cd.example", "vpn-1.ab--cd.example"),  # ASCII labels are not IDNA's business
        ("vpn_gw.corp", "vpn_gw.corp"),  # DNS allows underscores; some private names use them
        ("127.0.0.1", ipaddress.IPv4Address("127.0.0.1")),
        ("[2001:DB8::1]", ipaddress.IPv6Address("2001:db8::1")),
        ("::1", ipaddress.IPv6Address("::1")),
    ],
)
def test_reference_identity(name: str, expected: object) -> None:
    assert trust.reference_identity(name) == expected


def test_reference_identity_rejects_an_empty_name() -> None:
    with pytest.raises(ValueError, match="The server name is empty"):
        trust.reference_identity(".")


@pytest.mark.parametrize(
    "name, reason",
    [
        ("-bücher.example", "the label -bücher starts or ends with a hyphen"),
        ("bücher-.example", "the label bücher- starts or ends with a hyphen"),
        ("-vpn.example.com", "the label -vpn starts or ends with a hyphen"),
        ("☃.example", 'the character "☃" (U+2603) is not allowed in a host name'),  # not PVALID in IDNA 2008
        ("vpn\ufffd.example", 'the character "\ufffd" (U+FFFD) is not allowed in a host name'),  # disallowed in UTS 46
        ("my vpn.example", "the character U+0020 is not allowed in a host name"),
        ("*.example.com", 'the character "*" (U+002A) is not allowed in a host name'),
        ("xn--zz.example", "xn--zz is not a valid internationalized (xn--) label"),
        ("xn--ls8h.example", "xn--ls8h is not a valid internationalized (xn--) label"),  # an emoji: IDNA 2003 only
        ("٣a.example", "the label ٣a breaks the IDNA 2008 rules for internationalized names"),  # bidi rule
        ("a..example", "it has two dots in a row, or a dot at the start"),
        (".example", "it has two dots in a row, or a dot at the start"),
        ("a" * 64 + ".example", "a label is longer than 63 characters"),
        (".".join(["a" * 63] * 4), "it is longer than 253 characters"),
    ],
)
def test_reference_identity_refuses_invalid_names_with_a_sentence(name: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        trust.reference_identity(name)
    assert str(caught.value) == f"{name} is not a valid host name ({reason}): check the host name in the profile."


def test_invalid_idn_reference_is_a_name_problem_not_an_exception() -> None:
    cert = make_cert(dns=["xn--bcher-kva.example", "*.example.com"])
    assert trust.server_name_problem(cert, "-bücher.example") == (
        "-bücher.example is not a valid host name (the label -bücher starts or ends with a hyphen): check the host name in the profile."
    )
    assert trust.server_name_problem(cert, "☃.example") == (
        '☃.example is not a valid host name (the character "☃" (U+2603) is not allowed in a host name): check the host name in the profile.'
    )


def test_idn_reference_matches_a_labels_in_the_certificate() -> None:
    cert = make_cert(dns=["xn--bcher-kva.example"])
    assert trust.server_name_problem(cert, "bücher.example") is None
    assert trust.server_name_problem(cert, "Bücher.example") is None
    assert trust.server_name_problem(cert, "xn--bcher-kva.example") is None
    assert trust.server_name_problem(cert, "buecher.example") == (
        "The server's certificate is for xn--bcher-kva.example, not buecher.example. Check the host name in the profile."
    )
    # ß stays ß under IDNA 2008: a certificate for the IDNA 2003 spelling "fass.de" is not for faß.de.
    assert trust.server_name_problem(make_cert(dns=["xn--fa-hia.de"]), "faß.de") is None
    assert trust.server_name_problem(make_cert(dns=["fass.de"]), "faß.de") == (
        "The server's certificate is for fass.de, not faß.de. Check the host name in the profile."
    )
    # A wildcard matches an A-label like any other label.
    assert trust.server_name_problem(make_cert(dns=["*.example.com"]), "bücher.example.com") is None


# --- identities in certificates --------------------------------------------------------------


def test_ip_reference_matches_only_ip_san_entries() -> None:
    cert = make_cert(cn="192.0.2.1", dns=["vpn.test", "192.0.2.9"], ips=["192.0.2.1", "2001:db8::1"])
    assert trust.certificate_matches(cert, ipaddress.ip_address("192.0.2.1"))
    assert trust.certificate_matches(cert, ipaddress.ip_address("2001:db8:0::1"))  # same address, other spelling
    assert not trust.certificate_matches(cert, ipaddress.ip_address("192.0.2.9"))  # only a DNS-ID says so
    assert not trust.certificate_matches(cert, ipaddress.ip_address("192.0.2.2"))
    assert not trust.certificate_matches(cert, ipaddress.ip_address("::ffff:192.0.2.1"))


def test_ip_reference_never_matches_the_common_name() -> None:
    cert = make_cert(cn="192.0.2.1")
    assert not trust.certificate_matches(cert, ipaddress.ip_address("192.0.2.1"))
    assert trust.server_name_problem(cert, "192.0.2.1") == (
        "The server's certificate names 192.0.2.1 only in its Common Name, which modern clients no longer accept: "
        "the server's administrator must issue a certificate with a subjectAltName for 192.0.2.1."
    )


def test_ip_reference_listed_only_as_a_dns_name() -> None:
    cert = make_cert(cn="192.0.2.1", dns=["192.0.2.1"])
    assert trust.server_name_problem(cert, "192.0.2.1") == (
        "The server's certificate lists 192.0.2.1 only as a name, not as an IP address, so it cannot "
        "prove it is that address. Connect by the server's host name instead."
    )
    assert trust.server_name_problem(cert, "192.0.2.7") == (
        "The server's certificate is for 192.0.2.1, not 192.0.2.7. Check the host name in the profile."
    )


def test_dns_reference_does_not_match_ip_san() -> None:
    cert = make_cert(cn=None, ips=["192.0.2.1"])
    assert not trust.certificate_matches(cert, "192.0.2.1.nip.example")
    assert not trust.certificate_matches(cert, "vpn.test")


CN_ONLY = (
    "The server's certificate names vpn.test only in its Common Name, which modern clients no longer accept: "
    "the server's administrator must issue a certificate with a subjectAltName for vpn.test."
)


def test_common_name_is_never_used() -> None:
    # No fallback to the CN, even when it is exactly the host.
    assert not trust.certificate_matches(make_cert(cn="vpn.test"), "vpn.test")
    assert trust.server_name_problem(make_cert(cn="vpn.test"), "vpn.test") == CN_ONLY
    assert trust.server_name_problem(make_cert(cn="vpn.test"), "VPN.Test.") == (
        "The server's certificate names vpn.test only in its Common Name, which modern clients no longer accept: "
        "the server's administrator must issue a certificate with a subjectAltName for VPN.Test."
    )
    assert not trust.certificate_matches(make_cert(cn="*.example.com"), "vpn.example.com")
    assert trust.server_name_problem(make_cert(cn="*.example.com"), "vpn.example.com") == (
        "The server's certificate names *.example.com only in its Common Name, which modern clients no longer "
        "accept: the server's administrator must issue a certificate with a subjectAltName for vpn.example.com."
    )
    # A CN for another name says the same: there is nothing else to compare.
    assert trust.server_name_problem(make_cert(cn="other.test"), "vpn.test") == (
        "The server's certificate names other.test only in its Common Name, which modern clients no longer accept: "
        "the server's administrator must issue a certificate with a subjectAltName for vpn.test."
    )


def test_common_name_is_not_used_beside_san_entries() -> None:
    # A SAN with only IP addresses does not make the CN a DNS identity.
    only_ips = make_cert(cn="vpn.test", ips=["192.0.2.1"])
    assert not trust.certificate_matches(only_ips, "vpn.test")
    assert trust.server_name_problem(only_ips, "vpn.test") == (
        "The server's certificate is for 192.0.2.1, not vpn.test. Check the host name in the profile."
    )
    assert trust.server_name_problem(only_ips, "192.0.2.1") is None
    with_dns = make_cert(cn="vpn.test", dns=["other.test"])
    assert not trust.certificate_matches(with_dns, "vpn.test")
    assert trust.server_name_problem(with_dns, "vpn.test") == (
        "The server's certificate is for other.test, not vpn.test. Check the host name in the profile."
    )


def test_san_without_dns_or_ip_entries_counts_as_cn_only() -> None:
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vpn.test")]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")]))
        .public_key(KEY.public_key())
        .serial_number(8)
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name("admin@vpn.test")]), critical=False)
        .sign(KEY, hashes.SHA256())
    )
    assert not trust.certificate_matches(cert, "vpn.test")
    assert trust.server_name_problem(cert, "vpn.test") == CN_ONLY


# --- wildcards and public suffixes -------------------------------------------------------------


def test_wildcard_directly_under_a_public_suffix_is_refused() -> None:
    assert trust.server_name_problem(make_cert(dns=["*.co.uk"]), "foo.co.uk") == (
        "The server's certificate is for *.co.uk, not foo.co.uk. Check the host name in the profile."
    )
    assert trust.server_name_problem(make_cert(dns=["*.com"]), "example.com") == (
        "The server's certificate is for *.com, not example.com. Check the host name in the profile."
    )
    assert trust.server_name_problem(make_cert(dns=["*.github.io"]), "someone.github.io") == (
        "The server's certificate is for *.github.io, not someone.github.io. Check the host name in the profile."
    )
    # The CN does not rescue it either.
    assert not trust.certificate_matches(make_cert(cn="foo.co.uk", dns=["*.co.uk"]), "foo.co.uk")


def test_wildcard_under_a_registered_domain_is_accepted() -> None:
    cert = make_cert(dns=["*.example.co.uk"])
    assert trust.server_name_problem(cert, "a.example.co.uk") is None
    assert trust.server_name_problem(cert, "A.Example.CO.UK.") is None
    assert trust.server_name_problem(cert, "a.b.example.co.uk") == (
        "The server's certificate is for *.example.co.uk, not a.b.example.co.uk. Check the host name in the profile."
    )
    assert trust.server_name_problem(cert, "example.co.uk") == (
        "The server's certificate is for *.example.co.uk, not example.co.uk. Check the host name in the profile."
    )
    # One refused wildcard does not hide a good entry beside it.
    assert trust.server_name_problem(make_cert(dns=["*.co.uk", "foo.co.uk"]), "foo.co.uk") is None


def test_name_mismatch_sentence_names_both_sides() -> None:
    cert = make_cert(dns=["vpn.test"])
    assert trust.server_name_problem(cert, "vpn.test") is None
    assert trust.server_name_problem(cert, "other.example") == (
        "The server's certificate is for vpn.test, not other.example. Check the host name in the profile."
    )
    many = make_cert(dns=["vpn.test", "www.vpn.test"], ips=["192.0.2.1"])
    assert trust.server_name_problem(many, "other.example") == (
        "The server's certificate is for vpn.test, www.vpn.test and 192.0.2.1, not other.example. Check the host name in the profile."
    )
    lots = make_cert(dns=[f"n{i}.test" for i in range(6)])
    assert trust.server_name_problem(lots, "x.test") == (
        "The server's certificate is for n0.test, n1.test, n2.test, n3.test and 2 more, not x.test. Check the host name in the profile."
    )


def test_certificate_without_any_name() -> None:
    assert trust.server_name_problem(make_cert(cn=None), "vpn.test") == (
        "The server's certificate names no host at all, so it cannot prove it is vpn.test. "
        "Ask the server's administrator for a certificate that names the server."
    )


# --- extended key usage ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "eku",
    [
        None,
        [ExtendedKeyUsageOID.SERVER_AUTH],
        [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
        [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE],
    ],
)
def test_server_usage_allowed(eku: list | None) -> None:
    assert trust.usage_problem(make_cert(dns=["vpn.test"], eku=eku)) is None


def test_client_only_certificate_is_refused() -> None:
    cert = make_cert(dns=["vpn.test"], eku=[ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.CODE_SIGNING])
    assert trust.usage_problem(cert) == (
        "The server's certificate is not meant for TLS servers (its extended key usage allows only "
        "clientAuth, codeSigning): the server's administrator must install a certificate for server authentication."
    )


# --- pin -----------------------------------------------------------------------------------------


def test_parse_pin_accepts_colons_and_any_case() -> None:
    digest = hashlib.sha256(b"x").digest()
    colon_upper = ":".join(f"{b:02X}" for b in digest)
    assert trust.parse_pin(colon_upper) == digest
    assert trust.parse_pin(digest.hex()) == digest
    assert trust.parse_pin("  " + colon_upper.lower() + "\n") == digest


@pytest.mark.parametrize("text", ["", "abcd", "g" * 64, hashlib.sha1(b"x").hexdigest(), "0" * 66])
def test_parse_pin_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        trust.parse_pin(text)
    assert str(caught.value) == (
        "The pinned SHA-256 fingerprint must be 64 hexadecimal digits (colons allowed), like AB:CD:...: copy it again from the server's certificate."
    )


def test_settings_reject_a_bad_pin_before_connecting() -> None:
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        TransportSettings("vpn.test", pin_sha256="12:34")


def test_pin_problem_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = der(make_cert(dns=["vpn.test"]))
    digest = hashlib.sha256(leaf).digest()
    calls = []
    real = trust.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(trust.hmac, "compare_digest", spy)
    assert trust.pin_problem(leaf, digest) is None
    assert trust.pin_problem(leaf, bytes(32)) is not None
    assert calls == [(digest, digest), (digest, bytes(32))]


def test_pin_problem() -> None:
    leaf = der(make_cert(dns=["vpn.test"]))
    digest = hashlib.sha256(leaf).digest()
    assert trust.pin_problem(leaf, None) is None
    assert trust.pin_problem(leaf, digest) is None
    other = bytes(32)
    assert trust.pin_problem(leaf, other) == (
        f"The server's certificate fingerprint SHA256 {trust.colon_hex(digest)} does not match the pinned one "
        f"(SHA256 {':'.join(['00'] * 32)}): the certificate has changed or someone is intercepting the "
        "connection; check with the server's administrator before changing the pin."
    )
    assert trust.colon_hex(b"\xab\xcd\x01") == "AB:CD:01"


# --- chain errors (OpenSSL codes, as on Linux) -------------------------------------------------


def verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message}")
    error.verify_code, error.verify_message = code, message
    return error


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="OpenSSL verify codes")


@linux_only
def test_expired_leaf_sentence_has_the_date() -> None:
    leaf = make_cert(
        dns=["vpn.test"],
        not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        not_after=datetime.datetime(2021, 2, 3, 4, 5, tzinfo=datetime.UTC),
    )
    assert trust.verification_sentence(verify_error(10, "certificate has expired"), [der(leaf)], NOW) == (
        "The server's certificate expired on 2021-02-03 04:05 UTC: ask the server's administrator to renew it, "
        "or check this computer's date and time."
    )
    # Without the chain (the platform closed the socket) the sentence still says what happened.
    assert trust.verification_sentence(verify_error(10, "certificate has expired"), [], NOW) == (
        "The server's certificate has expired: ask the server's administrator to renew it, or check this computer's date and time."
    )


@linux_only
def test_expired_issuer_is_named() -> None:
    leaf = make_cert(dns=["vpn.test"])
    issuer = make_cert(
        cn="Old Test CA",
        not_after=datetime.datetime(2024, 12, 31, tzinfo=datetime.UTC),
        not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
    )
    assert trust.verification_sentence(verify_error(10, "certificate has expired"), [der(leaf), der(issuer)], NOW) == (
        "The certificate of Old Test CA, in the server's chain, expired on 2024-12-31 00:00 UTC: ask the server's "
        "administrator to renew it, or check this computer's date and time."
    )


@linux_only
def test_not_yet_valid_sentence() -> None:
    leaf = make_cert(
        dns=["vpn.test"],
        not_before=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
        not_after=datetime.datetime(2031, 1, 1, tzinfo=datetime.UTC),
    )
    assert trust.verification_sentence(verify_error(9, "certificate is not yet valid"), [der(leaf)], NOW) == (
        "The server's certificate is not valid before 2030-01-01 00:00 UTC: check this computer's date and time."
    )


@linux_only
@pytest.mark.parametrize(
    "code, message",
    [(20, "unable to get local issuer certificate"), (18, "self-signed certificate"), (19, "self-signed certificate in certificate chain")],
)
def test_untrusted_chain_sentence_suggests_the_ca_file(code: int, message: str) -> None:
    assert trust.verification_sentence(verify_error(code, message), [], NOW) == (
        f"The server's certificate was not issued by a trusted authority ({message}): if you trust this server, "
        "add its CA certificate to the profile (--ca-file)."
    )


@linux_only
def test_invalid_purpose_uses_the_leaf_usages() -> None:
    leaf = make_cert(dns=["vpn.test"], eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    assert trust.verification_sentence(verify_error(26, "unsuitable certificate purpose"), [der(leaf)], NOW) == (
        "The server's certificate is not meant for TLS servers (its extended key usage allows only clientAuth): "
        "the server's administrator must install a certificate for server authentication."
    )


# --- facts for diagnose --------------------------------------------------------------------------


def test_describe_certificate() -> None:
    cert = make_cert(dns=["vpn.test"], ips=["192.0.2.1"], eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    facts = trust.describe_certificate(der(cert))
    assert facts.subject == "CN=vpn.test"
    assert facts.issuer == "CN=Test CA"
    assert facts.names == ("DNS:vpn.test", "IP:192.0.2.1")
    assert facts.extended_key_usage == ("serverAuth",)
    # `netsh http show sslcert` style: lower-case hex, no separators.
    assert facts.sha1 == hashlib.sha1(der(cert)).hexdigest() and len(facts.sha1) == 40
    assert facts.sha256 == hashlib.sha256(der(cert)).hexdigest()
    assert f"SHA-1 hash: {facts.sha1}" in facts.lines()
    assert "valid: 2025-05-31 12:00 UTC to 2025-07-01 12:00 UTC" in facts.lines()
    assert trust.describe_certificate(der(make_cert())).extended_key_usage is None


# --- which name is sent and checked ------------------------------------------------------------


def test_sni_and_expected_name() -> None:
    by_name = TransportSettings("vpn.test")
    assert (by_name.sni_to_send, by_name.expected_name) == ("vpn.test", "vpn.test")
    by_ip = TransportSettings("192.0.2.1")
    assert (by_ip.sni_to_send, by_ip.expected_name) == (None, "192.0.2.1")  # no IP in SNI (RFC 6066)
    override = TransportSettings("192.0.2.1", sni="vpn.test")
    assert (override.sni_to_send, override.expected_name) == ("vpn.test", "vpn.test")
    no_sni = TransportSettings("vpn.test", sni="")
    assert (no_sni.sni_to_send, no_sni.expected_name) == (None, "vpn.test")


def test_sni_is_the_a_label_name_that_is_checked() -> None:
    # ssl would encode a Unicode server_hostname with IDNA 2003 ("faß.de" -> "fass.de"): send what we check.
    assert TransportSettings("Bücher.Example").sni_to_send == "xn--bcher-kva.example"
    assert TransportSettings("faß.de").sni_to_send == "xn--fa-hia.de"
    assert TransportSettings("192.0.2.1", sni="bücher.example").sni_to_send == "xn--bcher-kva.example"
    assert TransportSettings("VPN.test.").sni_to_send == "vpn.test"  # RFC 6066: no trailing dot
    # An invalid name sends no SNI; the name check then refuses it with its sentence.
    assert TransportSettings("-bücher.example").sni_to_send is None


def test_http_host() -> None:
    assert TransportSettings("vpn.test").http_host == "vpn.test"
    assert TransportSettings("vpn.test", 4443).http_host == "vpn.test:4443"
    assert TransportSettings("2001:db8::1", 8443).http_host == "[2001:db8::1]:8443"
    assert TransportSettings("2001:db8::1", 8443).server == "[2001:db8::1]:8443"
