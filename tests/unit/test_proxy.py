"""Proxy URL parsing and the CONNECT exchange as pure logic: canned proxy replies (the exact bytes
tinyproxy 1.11.1 and squid 5.7 send) in, verdicts and sentences out."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sstpvpn.client.core.types import FailureKind
from sstpvpn.client.proxy import (
    AuthContext,
    AuthScheme,
    AuthUnavailable,
    Challenge,
    ConnectExchange,
    Offer,
    ProxyHandshake,
    ProxySettings,
    Refused,
    SendRequest,
    TunnelOpen,
    Unavailable,
    auth_challenges,
    basic_authorization,
    scheme_names,
)

SECRET = "s3cret-Pa55"
PROXY = ProxySettings("127.0.0.1", 8888, "alice", SECRET)
ANONYMOUS = ProxySettings("127.0.0.1", 8888)
TARGET = ("vpn.example.com", 443)

TINYPROXY_407 = (
    b"HTTP/1.0 407 Proxy Authentication Required\r\nServer: tinyproxy/1.11.1\r\nContent-Type: text/html\r\n"
    b'Proxy-Authenticate: Basic realm="Tinyproxy"\r\nConnection: close\r\n\r\n<html>407</html>\n'
)
TINYPROXY_401 = (
    b"HTTP/1.0 401 Unauthorized\r\nServer: tinyproxy/1.11.1\r\nContent-Type: text/html\r\n"
    b'WWW-Authenticate: Basic realm="Tinyproxy"\r\nConnection: close\r\n\r\n<html>401</html>\n'
)
TINYPROXY_403 = b"HTTP/1.1 403 Access violation\r\nServer: tinyproxy/1.11.1\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html>403</html>\n"
TINYPROXY_200 = b"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\n"
SQUID_BODY = b"x" * 3045
SQUID_407 = (
    b"HTTP/1.1 407 Proxy Authentication Required\r\nServer: squid/5.7\r\nContent-Type: text/html;charset=utf-8\r\n"
    b'Content-Length: 3045\r\nProxy-Authenticate: Basic realm="testproxy"\r\nConnection: keep-alive\r\n\r\n' + SQUID_BODY
)
SQUID_200 = b"HTTP/1.1 200 Connection established\r\n\r\n"


def feed(exchange: ConnectExchange, *chunks: bytes):
    verdict = None
    for chunk in chunks:
        verdict = exchange.receive(chunk)
        if verdict is not None:
            return verdict
    return verdict


def feed_bytewise(exchange: ConnectExchange, data: bytes, then_eof: bool = False):
    for i in range(len(data)):
        verdict = exchange.receive(data[i : i + 1])
        if verdict is not None:
            return verdict
    return exchange.receive(b"") if then_eof else None


# --- ProxySettings.parse -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, host, port, user, password",
    [
        ("http://proxy.example.com:3128", "proxy.example.com", 3128, None, None),
        ("HTTP://proxy.example.com:3128/", "proxy.example.com", 3128, None, None),
        ("proxy.example.com:8080", "proxy.example.com", 8080, None, None),  # http:// assumed
        ("http://alice:s%40cret%3A1@proxy:8080", "proxy", 8080, "alice", "s@cret:1"),
        ("http://al%20ice@[2001:db8::1]:3128", "2001:db8::1", 3128, "al ice", None),
        ("http://alice:@127.0.0.1:1", "127.0.0.1", 1, "alice", ""),
        ("http://j%C3%B6rg:p%C3%A4ss@proxy:3128", "proxy", 3128, "jörg", "päss"),
        ("  http://proxy:3128  ", "proxy", 3128, None, None),
        ("http://CORP%5Calice@proxy:3128", "proxy", 3128, "CORP\\alice", None),  # an NTLM user DOMAIN\user
        ("http://CORP\\alice@proxy:3128", "proxy", 3128, "CORP\\alice", None),
        ("http://alice%40corp.example@proxy:3128", "proxy", 3128, "alice@corp.example", None),
    ],
)
def test_parse(url: str, host: str, port: int, user: str | None, password: str | None) -> None:
    proxy = ProxySettings.parse(url)
    assert (proxy.host, proxy.port, proxy.username, proxy.password) == (host, port, user, password)


@pytest.mark.parametrize(
    "url, sentence",
    [
        ("", "The proxy URL is empty: write http://host:port."),
        ("https://u:topsecret@proxy:3128", "Only HTTP proxies are supported: write the proxy as http://host:port."),
        ("socks5://proxy:1080", "Only HTTP proxies are supported: write the proxy as http://host:port."),
        ("http://u:topsecret@proxy", "The proxy URL has no port: write http://host:port, e.g. http://proxy.example.com:3128."),
        ("http://proxy:0", "The port in the proxy URL must be a number from 1 to 65535."),
        ("http://u:topsecret@proxy:99999", "The port in the proxy URL must be a number from 1 to 65535."),
        ("http://proxy:abc", "The port in the proxy URL must be a number from 1 to 65535."),
        ("http://proxy:3128/path", "The proxy URL must not have a path or query: write http://host:port."),
        ("http://proxy:3128?x=1", "The proxy URL must not have a path or query: write http://host:port."),
        ("http://:topsecret@proxy:3128", "The proxy URL has a password but no user name: write http://user:password@host:port."),
        ("http://a%3Ab:topsecret@proxy:3128", "The proxy user name cannot contain a colon: Basic authentication does not allow it."),
        ("http://:3128", "The proxy URL has no host name: write http://host:port."),
    ],
)
def test_parse_errors_are_sentences_without_the_password(url: str, sentence: str) -> None:
    with pytest.raises(ValueError) as caught:
        ProxySettings.parse(url)
    assert str(caught.value) == sentence
    assert "topsecret" not in str(caught.value)


def test_password_is_not_in_repr() -> None:
    assert SECRET not in repr(PROXY)
    assert "alice" in repr(PROXY)


def test_address_brackets_ipv6() -> None:
    assert ProxySettings("2001:db8::1", 3128).address == "[2001:db8::1]:3128"
    assert ProxySettings("proxy", 3128).address == "proxy:3128"


# --- the request ---------------------------------------------------------------------------------


def test_request_without_credentials() -> None:
    exchange = ConnectExchange(PROXY, *TARGET)
    assert exchange.request_bytes() == b"CONNECT vpn.example.com:443 HTTP/1.1\r\nHost: vpn.example.com:443\r\n\r\n"


def test_request_with_credentials() -> None:
    exchange = ConnectExchange(PROXY, "2001:db8::5", 4443, basic_authorization(PROXY))
    token = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert exchange.request_bytes() == (
        b"CONNECT [2001:db8::5]:4443 HTTP/1.1\r\nHost: [2001:db8::5]:4443\r\n" + f"Proxy-Authorization: Basic {token}\r\n\r\n".encode()
    )


# --- replies ---------------------------------------------------------------------------------------


def test_tunnel_opens_on_200() -> None:
    exchange = ConnectExchange(ANONYMOUS, *TARGET)
    assert feed(exchange, TINYPROXY_200) == TunnelOpen(200, "Connection established")
    assert feed_bytewise(ConnectExchange(ANONYMOUS, *TARGET), TINYPROXY_200) == TunnelOpen(200, "Connection established")


def test_bytes_after_200_are_refused() -> None:
    verdict = feed(ConnectExchange(ANONYMOUS, *TARGET), TINYPROXY_200 + b"\x16\x03\x01")
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason == (
        "The proxy at 127.0.0.1:8888 sent data of its own after opening the tunnel to vpn.example.com:443: it may be "
        "intercepting the connection; try without the proxy or ask its administrator."
    )
    assert verdict.failure.kind is FailureKind.UNREACHABLE


def handshake_of(proxy: ProxySettings, contexts=None) -> ProxyHandshake:
    return ProxyHandshake(proxy, *TARGET) if contexts is None else ProxyHandshake(proxy, *TARGET, contexts)


def test_407_without_credentials() -> None:
    verdict = feed(handshake_of(ANONYMOUS), TINYPROXY_407, b"")
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason == ("The proxy at 127.0.0.1:8888 requires a user name and password: add them to the proxy settings.")
    assert verdict.failure.kind is FailureKind.UNREACHABLE


def test_407_with_a_user_name_but_no_password_is_not_usable() -> None:
    verdict = feed(handshake_of(ProxySettings("127.0.0.1", 8888, "alice")), TINYPROXY_407, b"")
    assert isinstance(verdict, Refused) and "requires a user name and password" in verdict.failure.reason


def test_tinyproxy_407_closes_so_the_retry_needs_a_new_connection() -> None:
    exchange = ConnectExchange(PROXY, *TARGET)
    assert exchange.receive(TINYPROXY_407) is None  # the body runs until the proxy closes
    assert exchange.receive(b"") == Challenge((Offer("Basic"),), reuse_connection=False)
    assert feed_bytewise(ConnectExchange(PROXY, *TARGET), TINYPROXY_407, then_eof=True) == Challenge((Offer("Basic"),), reuse_connection=False)
    handshake = handshake_of(PROXY)
    step = feed(handshake, TINYPROXY_407, b"")
    assert isinstance(step, SendRequest) and step.new_connection
    assert step.data == ConnectExchange(PROXY, *TARGET, basic_authorization(PROXY)).request_bytes()
    assert handshake.receive(TINYPROXY_200) == TunnelOpen(200, "Connection established")
    assert (handshake.scheme, handshake.user) == ("Basic", "alice")


def test_squid_407_keeps_the_connection_for_the_retry() -> None:
    exchange = ConnectExchange(PROXY, *TARGET)
    assert exchange.receive(SQUID_407[:-10]) is None
    assert exchange.receive(SQUID_407[-10:]) == Challenge((Offer("Basic"),), reuse_connection=True)
    retry = exchange.follow_up(basic_authorization(PROXY))
    token = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert retry.request_bytes() == (
        b"CONNECT vpn.example.com:443 HTTP/1.1\r\nHost: vpn.example.com:443\r\n" + f"Proxy-Authorization: Basic {token}\r\n\r\n".encode()
    )
    assert retry.receive(SQUID_200) == TunnelOpen(200, "Connection established")
    handshake = handshake_of(PROXY)
    step = handshake.receive(SQUID_407)
    assert isinstance(step, SendRequest) and not step.new_connection
    assert step.data == retry.request_bytes()
    assert handshake.receive(SQUID_200) == TunnelOpen(200, "Connection established")


def test_endless_407_body_means_a_new_connection() -> None:
    exchange = ConnectExchange(PROXY, *TARGET)
    head = SQUID_407.split(b"\r\n\r\n")[0].replace(b"3045", b"10000000") + b"\r\n\r\n"
    assert exchange.receive(head) is None
    assert exchange.receive(b"x" * 70000) == Challenge((Offer("Basic"),), reuse_connection=False)


def test_a_stalled_407_body_means_a_new_connection() -> None:
    handshake = handshake_of(PROXY)
    assert handshake.stalled() is None  # nothing was answered: the driver says the proxy is silent
    head = SQUID_407.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    assert handshake.receive(head + b"xx") is None
    step = handshake.stalled()
    assert isinstance(step, SendRequest) and step.new_connection


@pytest.mark.parametrize("reply", [TINYPROXY_401, SQUID_407], ids=["tinyproxy-401", "squid-407"])
def test_wrong_password(reply: bytes) -> None:
    handshake = handshake_of(PROXY)
    assert isinstance(feed(handshake, SQUID_407), SendRequest)
    verdict = feed(handshake, reply, b"")
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason == ("The proxy at 127.0.0.1:8888 refused the user name or password: check them in the proxy settings.")
    assert SECRET not in verdict.failure.reason


def test_other_status_refuses_the_target() -> None:
    verdict = feed(handshake_of(PROXY), TINYPROXY_403)
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason == (
        "The proxy at 127.0.0.1:8888 refused to connect to vpn.example.com:443 (HTTP 403 Access violation): "
        "check that the proxy allows connections to this server and port."
    )
    bad_gateway = feed(ConnectExchange(PROXY, *TARGET, basic_authorization(PROXY)), b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(bad_gateway, Refused) and "(HTTP 502 Bad Gateway)" in bad_gateway.failure.reason


def test_unsupported_scheme() -> None:
    reply = (
        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
        b'Proxy-Authenticate: Digest realm="x", nonce="y"\r\nProxy-Authenticate: Bearer\r\nProxy-Authenticate: Bearer realm="z"\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    verdict = feed(handshake_of(PROXY), reply)
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason == (
        "The proxy at 127.0.0.1:8888 asks for Digest or Bearer authentication, which SSTP VPN does not support: ask the proxy's "
        "administrator to allow Negotiate (Kerberos), NTLM or Basic authentication, or use another proxy."
    )


def test_basic_among_other_schemes_is_used() -> None:
    reply = b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Digest, Basic realm="a, b"\r\nContent-Length: 0\r\n\r\n'
    step = feed(handshake_of(PROXY), reply)
    assert isinstance(step, SendRequest) and not step.new_connection and b"Proxy-Authorization: Basic " in step.data


def test_closed_without_reply() -> None:
    verdict = feed(handshake_of(PROXY), b"")
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason == (
        "The proxy at 127.0.0.1:8888 closed the connection without answering the CONNECT request: check that it is an HTTP proxy."
    )


def test_malformed_reply() -> None:
    verdict = feed(ConnectExchange(PROXY, *TARGET), b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason.startswith("The proxy at 127.0.0.1:8888 sent a malformed reply to the CONNECT request (")
    assert verdict.failure.reason.endswith("): check that it is an HTTP proxy.")


def test_scheme_names() -> None:
    headers = [
        (b"proxy-authenticate", b'Basic realm="a, b", NTLM'),
        (b"proxy-authenticate", b"ntlm"),
        (b"www-authenticate", b"Digest realm=x, nonce=y"),
        (b"server", b"Basic"),
    ]
    assert scheme_names(auth_challenges(headers)) == ["Basic", "NTLM", "ntlm", "Digest"]


def test_auth_challenges_carry_tokens() -> None:
    headers = [
        (b"proxy-authenticate", b"NTLM TlRMTVNTUAACAAAADAAMADgAAAA="),
        (b"proxy-authenticate", b'Negotiate oYG3MIG0oAMKAQChCwYJKoZIgvcSAQICooGf, Basic realm="x=y"'),
        (b"proxy-authenticate", b"Negotiate"),
        (b"proxy-authenticate", b"Bearer realm=abc"),
    ]
    assert auth_challenges(headers) == [
        Offer("NTLM", "TlRMTVNTUAACAAAADAAMADgAAAA="),
        Offer("Negotiate", "oYG3MIG0oAMKAQChCwYJKoZIgvcSAQICooGf"),
        Offer("Basic"),
        Offer("Negotiate"),
        Offer("Bearer"),
    ]


@given(st.binary(max_size=300), st.sampled_from([None, "Basic YWxpY2U6cw==", "NTLM TlRMTVNTUAABAAAAB4IIog=="]))
def test_any_reply_gives_a_verdict_or_waits_never_an_exception(data: bytes, authorization: str | None) -> None:
    exchange = ConnectExchange(PROXY, *TARGET, authorization)
    verdict = exchange.receive(data)
    if verdict is None:
        verdict = exchange.receive(b"")
    assert verdict is None or isinstance(verdict, (TunnelOpen, Refused, Challenge))
    if isinstance(verdict, Refused):
        assert SECRET not in verdict.failure.reason


def no_ticket(scheme: AuthScheme, proxy: ProxySettings) -> AuthContext:
    raise AuthUnavailable(Unavailable.NO_TICKET)


@given(st.binary(max_size=300))
def test_any_reply_to_the_handshake_gives_a_step_or_waits(data: bytes) -> None:
    handshake = handshake_of(PROXY, no_ticket)
    step = handshake.receive(data)
    if step is None:
        step = handshake.receive(b"")
    assert step is None or isinstance(step, (TunnelOpen, Refused, SendRequest))
    if isinstance(step, Refused):
        assert SECRET not in step.failure.reason
