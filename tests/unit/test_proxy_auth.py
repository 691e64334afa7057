"""Proxy authentication with NTLM and Negotiate as pure logic: the scheme chosen from the proxy's
offers, the 407 loop on one kept-alive connection, the refusal sentences and the profile's ban on
Basic. The proxy side is canned squid replies; its NTLM verdicts come from pyspnego's own NTLM
acceptor checking the password (NTLM_USER_FILE), so a wrong password is refused by a verifier,
not by the test. Kerberos contexts are fakes here (a ticket needs a KDC: tests/integration/
test_proxy_kerberos.py has the real one). Also the [MS-NLMP] section 4.2 test vectors for the
NTLM computations: our NT hash (proxy_auth.nt_hash) and pyspnego's NTLMv2 response.
"""

from __future__ import annotations

import base64
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import spnego
import spnego.exceptions

from sstpvpn.client.proxy import (
    AuthFailed,
    AuthScheme,
    AuthUnavailable,
    ProxyHandshake,
    ProxySettings,
    Refused,
    SendRequest,
    TunnelOpen,
    Unavailable,
)
from sstpvpn.client.proxy_auth import kerberos_principal, nt_hash, spnego_context

SECRET = "Corp-Pa55word"
TARGET = ("vpn.example.com", 443)
NTLM_USER = ProxySettings("proxy.corp.test", 3128, "CORP\\alice", SECRET)
ANONYMOUS = ProxySettings("proxy.corp.test", 3128)
PRINCIPAL = "alice@CORP.TEST"


def reply(status: int, *challenges: str, close: bool = False) -> bytes:
    """A squid-like reply: keep-alive with a Content-Length body unless `close`."""
    body = b"<html>denied</html>" if status == 407 else b""
    head = f"HTTP/1.1 {status} {'Proxy Authentication Required' if status == 407 else 'Connection established'}\r\nServer: squid/5.7\r\n"
    head += "".join(f"Proxy-Authenticate: {challenge}\r\n" for challenge in challenges)
    if status == 407:
        head += f"Content-Length: {len(body)}\r\nConnection: {'close' if close else 'keep-alive'}\r\n"
    return head.encode() + b"\r\n" + body


OFFERS = ("Negotiate", "NTLM", 'Basic realm="corp"')


def authorization_of(request: bytes) -> str | None:
    found = re.search(rb"\r\nProxy-Authorization: ([^\r]+)\r\n", request)
    return found.group(1).decode() if found else None


def converse(handshake: ProxyHandshake, answer: Callable[[str | None], bytes]) -> tuple[object, list[tuple[int, str | None]]]:
    """Run the handshake against `answer` (Proxy-Authorization -> reply bytes); returns the last
    step and every request as (connection number, Proxy-Authorization)."""
    connection, requests = 0, []
    data = handshake.request_bytes()
    for _round in range(10):
        authorization = authorization_of(data)
        requests.append((connection, authorization))
        step = handshake.receive(answer(authorization))
        if step is None:
            step = handshake.receive(b"")
        if isinstance(step, SendRequest):
            connection += step.new_connection
            data = step.data
            continue
        return step, requests
    raise AssertionError(f"no end after {requests}")


# --- a real NTLM verifier on the proxy's side ------------------------------------------------------


@pytest.fixture
def ntlm_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pyspnego's NTLM acceptor reads DOMAIN:USER:PASSWORD lines from NTLM_USER_FILE."""
    users = tmp_path / "ntlm-users"
    users.write_text(f"CORP:alice:{SECRET}\n")
    monkeypatch.setenv("NTLM_USER_FILE", str(users))


class NtlmProxy:
    """squid with an NTLM helper: 407 with the offers, then the challenge, then 200 or 407."""

    def __init__(self, offers: tuple[str, ...] = OFFERS, protocol: str = "ntlm", scheme: str = "NTLM", close_first: bool = False) -> None:
        self.offers, self.protocol, self.scheme, self.close_first = offers, protocol, scheme, close_first
        self.acceptor: spnego.ContextProxy | None = None
        self.accepted_user: str | None = None

    def __call__(self, authorization: str | None) -> bytes:
        if authorization is None:
            return reply(407, *self.offers, close=self.close_first)
        scheme, token = authorization.split(" ", 1)
        assert scheme == self.scheme
        if self.acceptor is None:
            self.acceptor = spnego.server(protocol=self.protocol)
        try:
            answer = self.acceptor.step(base64.b64decode(token))
        except spnego.exceptions.SpnegoError:
            return reply(407, *self.offers)  # squid: the helper said NA; the offers again, no token
        if self.acceptor.complete:
            self.accepted_user = self.acceptor.client_principal
            return reply(200)
        assert answer is not None
        return reply(407, f"{self.scheme} {base64.b64encode(answer).decode()}")


def ntlm_only(scheme: AuthScheme, proxy: ProxySettings):
    """The real pyspnego contexts, but no Kerberos ticket (none of these tests has a KDC)."""
    if scheme is AuthScheme.NEGOTIATE and not proxy.has_credentials:
        raise AuthUnavailable(Unavailable.NO_TICKET)
    return spnego_context(scheme, proxy)


def test_ntlm_handshake_runs_on_one_connection(ntlm_users: None) -> None:
    proxy = NtlmProxy(offers=("NTLM", 'Basic realm="corp"'))
    step, requests = converse(ProxyHandshake(NTLM_USER, *TARGET, ntlm_only), proxy)
    assert step == TunnelOpen(200, "Connection established")
    assert [connection for connection, _auth in requests] == [0, 0, 0]
    assert [auth.split()[0] if auth else None for _connection, auth in requests] == [None, "NTLM", "NTLM"]
    assert proxy.accepted_user == "CORP\\alice"
    assert all(SECRET not in (auth or "") for _connection, auth in requests)


def test_ntlm_after_a_closing_407_starts_on_a_new_connection_and_stays_there(ntlm_users: None) -> None:
    proxy = NtlmProxy(offers=("NTLM",), close_first=True)
    step, requests = converse(ProxyHandshake(NTLM_USER, *TARGET, ntlm_only), proxy)
    assert step == TunnelOpen(200, "Connection established")
    assert [connection for connection, _auth in requests] == [0, 1, 1]


def test_wrong_ntlm_password_is_refused_by_the_verifier(ntlm_users: None) -> None:
    wrong = ProxySettings("proxy.corp.test", 3128, "CORP\\alice", "not-" + SECRET)
    handshake = ProxyHandshake(wrong, *TARGET, ntlm_only)
    step, requests = converse(handshake, NtlmProxy(offers=("NTLM", 'Basic realm="corp"')))
    assert isinstance(step, Refused)
    assert step.failure.reason == (
        "The proxy at proxy.corp.test:3128 refused the NTLM sign-in as CORP\\alice: check the proxy user name "
        "(DOMAIN\\user or user) and password in the proxy settings."
    )
    assert len(requests) == 3  # no second try, and no fall back to Basic with the same password
    assert SECRET not in step.failure.reason


def test_ntlm_inside_negotiate_without_a_ticket(ntlm_users: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The real factory: no ticket in the cache, so Negotiate carries NTLM, made from the password."""
    no_ticket(monkeypatch, tmp_path)
    proxy = NtlmProxy(offers=("Negotiate",), protocol="negotiate", scheme="Negotiate")
    handshake = ProxyHandshake(NTLM_USER, *TARGET, spnego_context)
    step, requests = converse(handshake, proxy)
    assert step == TunnelOpen(200, "Connection established")
    assert [connection for connection, _auth in requests] == [0, 0, 0]
    assert handshake.scheme is AuthScheme.NEGOTIATE and handshake.user == "CORP\\alice"


def test_wrong_password_inside_negotiate(ntlm_users: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_ticket(monkeypatch, tmp_path)
    wrong = ProxySettings("proxy.corp.test", 3128, "CORP\\alice", "nope")
    step, _requests = converse(
        ProxyHandshake(wrong, *TARGET, spnego_context), NtlmProxy(offers=("Negotiate",), protocol="negotiate", scheme="Negotiate")
    )
    assert isinstance(step, Refused)
    assert step.failure.reason == (
        "The proxy at proxy.corp.test:3128 refused the NTLM sign-in (inside Negotiate) as CORP\\alice: check the proxy user name "
        "(DOMAIN\\user or user) and password in the proxy settings, or sign in to the domain (or run kinit) to use Kerberos."
    )


def test_proxy_closing_in_the_middle_of_ntlm(ntlm_users: None) -> None:
    real = NtlmProxy(offers=("NTLM",))

    def closes_after_the_challenge(authorization: str | None) -> bytes:
        answer = real(authorization)
        return answer.replace(b"Connection: keep-alive", b"Connection: close") if authorization else answer

    step, requests = converse(ProxyHandshake(NTLM_USER, *TARGET, ntlm_only), closes_after_the_challenge)
    assert isinstance(step, Refused)
    assert step.failure.reason == (
        "The proxy at proxy.corp.test:3128 closed the connection in the middle of NTLM authentication, which needs one "
        "connection kept open from start to end: check that nothing between you and the proxy closes connections, or ask "
        "the proxy's administrator."
    )
    assert len(requests) == 2


# --- scheme choice, with fake contexts --------------------------------------------------------------


class FakeContext:
    """A Kerberos-like context: one token, then done."""

    def __init__(self, mechanism: str = "kerberos", user: str | None = PRINCIPAL) -> None:
        self.mechanism, self.user = mechanism, user
        self.steps: list[bytes | None] = []

    def step(self, token: bytes | None) -> bytes | None:
        self.steps.append(token)
        return b"krb5-ap-req" if token is None else None


def contexts(kerberos: Unavailable | None = None, failed: str = ""):
    """A factory: Negotiate is Kerberos (or unavailable for `kerberos`); NTLM a fake."""

    def factory(scheme: AuthScheme, proxy: ProxySettings):
        if scheme is AuthScheme.NEGOTIATE:
            if failed:
                raise AuthFailed(failed)
            if kerberos is not None:
                raise AuthUnavailable(kerberos, "gssapi" if kerberos is Unavailable.NOT_INSTALLED else "")
            return FakeContext()
        return FakeContext("ntlm", None)

    return factory


def first_scheme(proxy: ProxySettings, offers: tuple[str, ...], factory) -> str | None:
    step = ProxyHandshake(proxy, *TARGET, factory).receive(reply(407, *offers))
    assert isinstance(step, SendRequest), step
    authorization = authorization_of(step.data)
    return authorization.split()[0] if authorization else None


@pytest.mark.parametrize(
    "offers, kerberos, proxy, chosen",
    [
        (OFFERS, None, NTLM_USER, "Negotiate"),
        (tuple(reversed(OFFERS)), None, NTLM_USER, "Negotiate"),  # our order, not the proxy's
        (OFFERS, None, ANONYMOUS, "Negotiate"),  # Kerberos needs no password
        (OFFERS, Unavailable.NO_TICKET, NTLM_USER, "NTLM"),
        (('Basic realm="x"', "NTLM"), None, NTLM_USER, "NTLM"),
        (('Basic realm="x"',), Unavailable.NO_TICKET, NTLM_USER, "Basic"),
        (("negotiate", "ntlm"), None, NTLM_USER, "Negotiate"),  # scheme names are case-insensitive
    ],
)
def test_scheme_choice(offers: tuple[str, ...], kerberos: Unavailable | None, proxy: ProxySettings, chosen: str) -> None:
    assert first_scheme(proxy, offers, contexts(kerberos)) == chosen


def test_kerberos_handshake_opens_on_the_first_token() -> None:
    handshake = ProxyHandshake(ANONYMOUS, *TARGET, contexts())
    step, requests = converse(handshake, lambda auth: reply(407, *OFFERS) if auth is None else reply(200))
    assert step == TunnelOpen(200, "Connection established")
    assert requests == [(0, None), (0, "Negotiate " + base64.b64encode(b"krb5-ap-req").decode())]
    assert (handshake.scheme, handshake.user) == (AuthScheme.NEGOTIATE, PRINCIPAL)


def test_refused_kerberos_ticket() -> None:
    step, requests = converse(ProxyHandshake(ANONYMOUS, *TARGET, contexts()), lambda auth: reply(407, *OFFERS))
    assert isinstance(step, Refused)
    assert step.failure.reason == (
        "The proxy at proxy.corp.test:3128 refused the Kerberos sign-in as alice@CORP.TEST: sign in to the domain again (or run "
        "kinit) and check that the proxy's name is the one it has in the domain; if it goes on, ask the proxy's administrator."
    )
    assert len(requests) == 2


def test_a_refused_ticket_falls_back_to_ntlm_with_the_password(ntlm_users: None) -> None:
    """A proxy that cannot read the ticket (its keytab is out of date) but checks NTLM: the
    password still signs in, on the same connection."""
    ntlm = NtlmProxy(offers=OFFERS)

    def proxy(authorization: str | None) -> bytes:
        if authorization is not None and authorization.startswith("Negotiate"):
            return reply(407, *OFFERS)  # squid: the helper said BH; the offers again, no token
        return ntlm(authorization)

    def factory(scheme: AuthScheme, settings: ProxySettings):
        return FakeContext() if scheme is AuthScheme.NEGOTIATE else spnego_context(scheme, settings)

    handshake = ProxyHandshake(NTLM_USER, *TARGET, factory)
    step, requests = converse(handshake, proxy)
    assert step == TunnelOpen(200, "Connection established")
    assert [(connection, auth.split()[0] if auth else None) for connection, auth in requests] == [
        (0, None),
        (0, "Negotiate"),
        (1, "NTLM"),  # a new connection: the old one stays bound to the failed Negotiate (squid)
        (1, "NTLM"),
    ]
    assert (handshake.method, handshake.user, ntlm.accepted_user) == ("NTLM", "CORP\\alice", "CORP\\alice")


def test_a_refused_password_is_not_tried_again_with_basic(ntlm_users: None) -> None:
    """After NTLM refuses the password, Basic is not tried with it: one more failed sign-in would
    only bring the account closer to its lockout."""
    wrong = ProxySettings("proxy.corp.test", 3128, "CORP\\alice", "nope")
    step, requests = converse(ProxyHandshake(wrong, *TARGET, ntlm_only), NtlmProxy(offers=("NTLM", 'Basic realm="corp"')))
    assert isinstance(step, Refused) and "refused the NTLM sign-in" in step.failure.reason
    assert not any((auth or "").startswith("Basic") for _connection, auth in requests)


@pytest.mark.parametrize(
    "offers, proxy, why, sentence",
    [
        (
            ("Negotiate",),
            ANONYMOUS,
            Unavailable.NO_TICKET,
            "The proxy at proxy.corp.test:3128 asks for Kerberos (Negotiate) sign-in, and you have no Kerberos ticket: sign in to "
            "the domain (or run kinit), then connect again.",
        ),
        (
            OFFERS,
            ANONYMOUS,
            Unavailable.NO_TICKET,
            "The proxy at proxy.corp.test:3128 asks for Kerberos (Negotiate) sign-in, and you have no Kerberos ticket: sign in to "
            "the domain (or run kinit), or enter the proxy user name and password in the proxy settings.",
        ),
        (
            ("Negotiate",),
            ANONYMOUS,
            Unavailable.TICKET_EXPIRED,
            "The proxy at proxy.corp.test:3128 asks for Kerberos (Negotiate) sign-in, and your Kerberos ticket has expired: sign "
            "in to the domain (or run kinit), then connect again.",
        ),
        (
            ("NTLM",),
            ProxySettings("proxy.corp.test", 3128, "CORP\\alice"),
            None,
            "The proxy at proxy.corp.test:3128 requires a user name and password: add them to the proxy settings.",
        ),
        (
            ('Basic realm="corp"',),
            ProxySettings("proxy.corp.test", 3128, "alice", SECRET, allow_basic=False),
            None,
            "The proxy at proxy.corp.test:3128 accepts only Basic authentication, which sends the password readable by anyone on "
            "the way to the proxy, and the proxy settings forbid it: allow Basic in the proxy settings if you trust this "
            "network, or ask the proxy's administrator for NTLM or Negotiate.",
        ),
        (
            ("Negotiate",),
            ANONYMOUS,
            Unavailable.NOT_INSTALLED,
            "The proxy at proxy.corp.test:3128 asks for Negotiate authentication, but this installation of SSTP VPN lacks the "
            "Python package for it (gssapi): reinstall SSTP VPN.",
        ),
    ],
)
def test_unusable_offers_are_told(offers: tuple[str, ...], proxy: ProxySettings, why: Unavailable | None, sentence: str) -> None:
    step = ProxyHandshake(proxy, *TARGET, contexts(why)).receive(reply(407, *offers))
    assert isinstance(step, Refused)
    assert step.failure.reason == sentence
    assert SECRET not in step.failure.reason


def test_kerberos_that_cannot_get_the_proxys_ticket() -> None:
    step = ProxyHandshake(ANONYMOUS, *TARGET, contexts(failed="Server not found in Kerberos database")).receive(reply(407, "Negotiate"))
    assert isinstance(step, Refused)
    assert step.failure.reason == (
        "Kerberos could not sign in to the proxy at proxy.corp.test:3128 (Server not found in Kerberos database): check that the "
        "proxy's name is the one it has in the domain (its service HTTP/proxy.corp.test) and that you are signed in to the "
        "domain (or ran kinit)."
    )


def test_kerberos_failure_falls_through_to_ntlm() -> None:
    assert first_scheme(NTLM_USER, OFFERS, contexts(failed="Server not found in Kerberos database")) == "NTLM"


# --- Basic forbidden ---------------------------------------------------------------------------------


def test_forbidden_basic_is_never_sent(ntlm_users: None) -> None:
    no_basic = ProxySettings("proxy.corp.test", 3128, "CORP\\alice", SECRET, allow_basic=False)
    step, requests = converse(ProxyHandshake(no_basic, *TARGET, ntlm_only), NtlmProxy(offers=('Basic realm="corp"', "NTLM")))
    assert step == TunnelOpen(200, "Connection established")
    assert all(not (auth or "").startswith("Basic") for _connection, auth in requests)
    allowed = ProxySettings("proxy.corp.test", 3128, "alice", SECRET)
    assert first_scheme(allowed, ('Basic realm="corp"',), contexts()) == "Basic"


def test_a_bad_challenge_token_is_a_sentence(ntlm_users: None) -> None:
    def garbage(authorization: str | None) -> bytes:
        return reply(407, "NTLM") if authorization is None else reply(407, "NTLM bm90LWFuLW50bG0tbWVzc2FnZQ==")

    step, _requests = converse(ProxyHandshake(NTLM_USER, *TARGET, ntlm_only), garbage)
    assert isinstance(step, Refused)
    assert step.failure.reason.startswith("The NTLM challenge of the proxy at proxy.corp.test:3128 cannot be answered (")
    assert step.failure.reason.endswith("): ask the proxy's administrator.")


def test_a_proxy_that_challenges_forever_is_refused() -> None:
    class Endless(FakeContext):
        def step(self, token: bytes | None) -> bytes | None:
            return b"more"

    step, requests = converse(
        ProxyHandshake(NTLM_USER, *TARGET, lambda scheme, proxy: Endless("ntlm", None)), lambda auth: reply(407, "NTLM bW9yZQ==")
    )
    assert isinstance(step, Refused) and "refused the NTLM sign-in" in step.failure.reason
    assert len(requests) == 5  # the first request and MAX_TOKENS tokens


# --- the real factory ------------------------------------------------------------------------------


def no_ticket(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An empty private ticket cache and a krb5.conf without realms, so the host's own play no part."""
    (tmp_path / "krb5.conf").write_text("[libdefaults]\n dns_lookup_kdc = false\n dns_lookup_realm = false\n")
    monkeypatch.setenv("KRB5_CONFIG", str(tmp_path / "krb5.conf"))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-such-ccache'}")


def test_no_ticket_is_told_by_the_real_factory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_ticket(monkeypatch, tmp_path)
    with pytest.raises(AuthUnavailable) as caught:
        kerberos_principal()
    assert caught.value.why is Unavailable.NO_TICKET
    step = ProxyHandshake(ANONYMOUS, *TARGET, spnego_context).receive(reply(407, "Negotiate"))
    assert isinstance(step, Refused) and "you have no Kerberos ticket" in step.failure.reason


def test_no_ticket_as_root_through_sudo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`sudo sstp-vpn connect`: root's own (empty) cache is looked at, not the user's; the sentence
    says so instead of asking for a kinit the user has done."""
    (tmp_path / "krb5.conf").write_text(f"[libdefaults]\n dns_lookup_kdc = false\n default_ccache_name = FILE:{tmp_path / 'root-ccache'}\n")
    monkeypatch.setenv("KRB5_CONFIG", str(tmp_path / "krb5.conf"))
    monkeypatch.delenv("KRB5CCNAME", raising=False)
    monkeypatch.setenv("SUDO_USER", "alice")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    with pytest.raises(AuthUnavailable) as through_sudo:
        kerberos_principal()
    assert (through_sudo.value.why, through_sudo.value.detail) == (Unavailable.NO_TICKET, "sudo")
    monkeypatch.delenv("SUDO_USER")
    with pytest.raises(AuthUnavailable) as as_root:
        kerberos_principal()
    assert (as_root.value.why, as_root.value.detail) == (Unavailable.NO_TICKET, "")

    def factory(scheme: AuthScheme, proxy: ProxySettings):
        raise through_sudo.value

    step = ProxyHandshake(ANONYMOUS, *TARGET, factory).receive(reply(407, "Negotiate"))
    assert isinstance(step, Refused)
    assert step.failure.reason == (
        "The proxy at proxy.corp.test:3128 asks for Kerberos (Negotiate) sign-in, and root has no Kerberos ticket: sudo does not pass "
        "yours on. Connect as yourself (the tray app, or sstp-vpn without sudo through the network helper), or run kinit as root."
    )


def test_ntlm_context_starts_with_a_negotiate_message() -> None:
    context = spnego_context(AuthScheme.NTLM, NTLM_USER)
    token = context.step(None)
    assert token is not None and token.startswith(b"NTLMSSP\x00\x01\x00\x00\x00")  # [MS-NLMP] 2.2.1.1 NEGOTIATE_MESSAGE
    assert context.mechanism == "ntlm"


def test_pyspnego_logs_no_tokens(ntlm_users: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    step, _requests = converse(ProxyHandshake(NTLM_USER, *TARGET, ntlm_only), NtlmProxy(offers=("NTLM",)))
    assert step == TunnelOpen(200, "Connection established")
    assert not [record for record in caplog.records if record.name.startswith("spnego")], caplog.text
    assert "TlRMTVNT" not in caplog.text  # base64 of "NTLMSSP"


def test_send_request_repr_hides_the_request() -> None:
    step = ProxyHandshake(ProxySettings("p", 1, "alice", SECRET), *TARGET).receive(reply(407, 'Basic realm="x"'))
    assert isinstance(step, SendRequest)
    assert base64.b64encode(f"alice:{SECRET}".encode()).decode() not in repr(step)


# --- [MS-NLMP] section 4.2 test vectors ------------------------------------------------------------


def test_nt_hash_is_ntowfv1() -> None:
    """[MS-NLMP] 4.2.2.1.2: NTOWFv1("Password")."""
    assert nt_hash("Password") == "a4f49c406510bdcab6824ee7c30fd852"


def test_pyspnego_ntlmv2_matches_ms_nlmp_4_2_4() -> None:
    """[MS-NLMP] 4.2.4: user "User", domain "Domain", password "Password", server challenge
    0123456789abcdef, client challenge aa*8, time 0, AV pairs NbDomainName "Domain" and
    NbComputerName "Server". pyspnego's NTLMv2 functions (spnego._ntlm_raw.crypto: not public,
    the ones its NTLM context computes with)."""
    from spnego._ntlm_raw.crypto import compute_response_v2, ntowfv1, ntowfv2
    from spnego._ntlm_raw.messages import AvId, FileTime, TargetInfo

    response_key = ntowfv2("User", ntowfv1("Password"), "Domain")
    assert response_key.hex() == "0c868a403bfd7a93a3001ef22ef02e3f"  # 4.2.4.1.1 NTOWFv2
    assert bytes.fromhex(nt_hash("Password")) == ntowfv1("Password")
    target_info = TargetInfo()
    target_info[AvId.nb_domain_name] = "Domain"
    target_info[AvId.nb_computer_name] = "Server"
    nt_response, lm_response, session_base_key = compute_response_v2(
        response_key, bytes.fromhex("0123456789abcdef"), b"\xaa" * 8, FileTime(1601, 1, 1), target_info
    )
    assert lm_response.hex() == "86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa"  # 4.2.4.2.1 LMv2
    assert nt_response.hex() == (  # 4.2.4.2.2 NTLMv2 response: NTProofStr, then temp
        "68cd0ab851e51c96aabc927bebef6a1c"
        "01010000000000000000000000000000aaaaaaaaaaaaaaaa00000000"
        "02000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000"
    )
    assert session_base_key.hex() == "8de40ccadbc14a82f15cb0ad0de95ca3"  # 4.2.4.1.2 SessionBaseKey


# --- the profile's choice reaches the handshake ----------------------------------------------------


@pytest.mark.parametrize("allow_basic", [True, False])
def test_profile_allow_basic_reaches_proxy_settings(allow_basic: bool) -> None:
    from sstpvpn.client.profile_settings import proxy_settings
    from sstpvpn.client.profiles import Profile, ProxyChoice, ProxyMode

    manual = Profile(
        "id", "Office", "vpn.example.com", proxy=ProxyChoice(ProxyMode.MANUAL, "proxy.corp.test", 3128, "alice", allow_basic=allow_basic)
    )
    settings = proxy_settings(manual, SECRET)
    assert settings is not None and settings.allow_basic is allow_basic
    system = Profile("id", "Office", "vpn.example.com", proxy=ProxyChoice(ProxyMode.SYSTEM, allow_basic=allow_basic))
    found = proxy_settings(system, None, environ={"https_proxy": "http://proxy.corp.test:3128"})
    assert found is not None and (found.host, found.allow_basic) == ("proxy.corp.test", allow_basic)
    step = ProxyHandshake(settings, *TARGET).receive(reply(407, 'Basic realm="corp"'))
    assert isinstance(step, SendRequest) is allow_basic


def test_reason_is_gssapis_own_words(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """pyspnego wraps GSSAPI's error in its own ("SpnegoError (1): SpnegoError (16): ..."); the
    sentence quotes only the innermost cause."""
    from sstpvpn.client.proxy_auth import reason

    no_ticket(monkeypatch, tmp_path)
    with pytest.raises(spnego.exceptions.SpnegoError) as caught:
        spnego.client(hostname="proxy.corp.test", service="HTTP", protocol="kerberos").step()
    assert reason(caught.value) == f"No Kerberos credentials available (default cache: FILE:{tmp_path / 'no-such-ccache'})"
