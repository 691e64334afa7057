"""Proxy URL parsing and the CONNECT exchange as pure logic: canned proxy replies (the exact bytes
tinyproxy 1.11.1 and squid 5.7 send) in, verdicts and sentences out."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sstpvpn.client.core.types import FailureKind
from sstpvpn.client.proxy import ConnectExchange, ProxySettings, Refused, RetryWithCredentials, TunnelOpen, auth_schemes

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
    exchange = ConnectExchange(PROXY, *TARGET, with_credentials=False)
    assert exchange.request_bytes() == b"CONNECT vpn.example.com:443 HTTP/1.1\r\nHost: vpn.example.com:443\r\n\r\n"


def test_request_with_credentials() -> None:
    exchange = ConnectExchange(PROXY, "2001:db8::5", 4443, with_credentials=True)
    token = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert exchange.request_bytes() == (
        b"CONNECT [2001:db8::5]:4443 HTTP/1.1\r\nHost: [2001:db8::5]:4443\r\n" + f"Proxy-Authorization: Basic {token}\r\n\r\n".encode()
    )


# --- replies ---------------------------------------------------------------------------------------


def test_tunnel_opens_on_200() -> None:
    exchange = ConnectExchange(ANONYMOUS, *TARGET, with_credentials=False)
    assert feed(exchange, TINYPROXY_200) == TunnelOpen(200, "Connection established")
    assert feed_bytewise(ConnectExchange(ANONYMOUS, *TARGET, with_credentials=False), TINYPROXY_200) == TunnelOpen(200, "Connection established")


def test_bytes_after_200_are_refused() -> None:
    verdict = feed(ConnectExchange(ANONYMOUS, *TARGET, with_credentials=False), TINYPROXY_200 + b"\x16\x03\x01")
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason == (
        "The proxy at 127.0.0.1:8888 sent data of its own after opening the tunnel to vpn.example.com:443: it may be "
        "intercepting the connection; try without the proxy or ask its administrator."
    )
    assert verdict.failure.kind is FailureKind.UNREACHABLE


def test_407_without_credentials() -> None:
    verdict = feed(ConnectExchange(ANONYMOUS, *TARGET, with_credentials=False), TINYPROXY_407)
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason == ("The proxy at 127.0.0.1:8888 requires a user name and password: add them to the proxy settings.")
    assert verdict.failure.kind is FailureKind.UNREACHABLE


def test_407_with_a_user_name_but_no_password_is_not_usable() -> None:
    verdict = feed(ConnectExchange(ProxySettings("127.0.0.1", 8888, "alice"), *TARGET, with_credentials=False), TINYPROXY_407)
    assert isinstance(verdict, Refused) and "requires a user name and password" in verdict.failure.reason


def test_tinyproxy_407_closes_so_the_retry_needs_a_new_connection() -> None:
    exchange = ConnectExchange(PROXY, *TARGET, with_credentials=False)
    assert exchange.receive(TINYPROXY_407) is None  # the body runs until the proxy closes
    assert exchange.receive(b"") == RetryWithCredentials(reuse_connection=False)
    assert feed_bytewise(ConnectExchange(PROXY, *TARGET, with_credentials=False), TINYPROXY_407, then_eof=True) == RetryWithCredentials(
        reuse_connection=False
    )


def test_squid_407_keeps_the_connection_for_the_retry() -> None:
    exchange = ConnectExchange(PROXY, *TARGET, with_credentials=False)
    assert exchange.receive(SQUID_407[:-10]) is None
    assert exchange.receive(SQUID_407[-10:]) == RetryWithCredentials(reuse_connection=True)
    retry = exchange.follow_up()
    token = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    assert retry.request_bytes() == (
        b"CONNECT vpn.example.com:443 HTTP/1.1\r\nHost: vpn.example.com:443\r\n" + f"Proxy-Authorization: Basic {token}\r\n\r\n".encode()
    )
    assert retry.receive(SQUID_200) == TunnelOpen(200, "Connection established")


def test_endless_407_body_means_a_new_connection() -> None:
    exchange = ConnectExchange(PROXY, *TARGET, with_credentials=False)
    head = SQUID_407.split(b"\r\n\r\n")[0].replace(b"3045", b"10000000") + b"\r\n\r\n"
    assert exchange.receive(head) is None
    assert exchange.receive(b"x" * 70000) == RetryWithCredentials(reuse_connection=False)


@pytest.mark.parametrize("reply", [TINYPROXY_401, SQUID_407], ids=["tinyproxy-401", "squid-407"])
def test_wrong_password(reply: bytes) -> None:
    verdict = feed(ConnectExchange(PROXY, *TARGET, with_credentials=True), reply)
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason == ("The proxy at 127.0.0.1:8888 refused the user name or password: check them in the proxy settings.")
    assert SECRET not in verdict.failure.reason


def test_other_status_refuses_the_target() -> None:
    verdict = feed(ConnectExchange(PROXY, *TARGET, with_credentials=False), TINYPROXY_403)
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason == (
        "The proxy at 127.0.0.1:8888 refused to connect to vpn.example.com:443 (HTTP 403 Access violation): "
        "check that the proxy allows connections to this server and port."
    )
    bad_gateway = feed(ConnectExchange(PROXY, *TARGET, with_credentials=True), b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(bad_gateway, Refused) and "(HTTP 502 Bad Gateway)" in bad_gateway.failure.reason


def test_unsupported_scheme() -> None:
    reply = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM\r\nProxy-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n"
    verdict = feed(ConnectExchange(PROXY, *TARGET, with_credentials=False), reply)
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason == (
        "The proxy at 127.0.0.1:8888 asks for NTLM or Negotiate authentication, which SSTP VPN does not support: "
        "use a proxy that accepts Basic authentication."
    )


def test_basic_among_other_schemes_is_used() -> None:
    reply = b'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate, Basic realm="a, b"\r\nContent-Length: 0\r\n\r\n'
    assert feed(ConnectExchange(PROXY, *TARGET, with_credentials=False), reply) == RetryWithCredentials(True)


def test_closed_without_reply() -> None:
    verdict = feed(ConnectExchange(PROXY, *TARGET, with_credentials=False), b"")
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason == (
        "The proxy at 127.0.0.1:8888 closed the connection without answering the CONNECT request: check that it is an HTTP proxy."
    )


def test_malformed_reply() -> None:
    verdict = feed(ConnectExchange(PROXY, *TARGET, with_credentials=False), b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    assert isinstance(verdict, Refused)
    assert verdict.failure.reason.startswith("The proxy at 127.0.0.1:8888 sent a malformed reply to the CONNECT request (")
    assert verdict.failure.reason.endswith("): check that it is an HTTP proxy.")


def test_auth_schemes() -> None:
    headers = [
        (b"proxy-authenticate", b'Basic realm="a, b", NTLM'),
        (b"proxy-authenticate", b"ntlm"),
        (b"www-authenticate", b"Digest realm=x, nonce=y"),
        (b"server", b"Basic"),
    ]
    assert auth_schemes(headers) == ["Basic", "NTLM", "ntlm", "Digest"]


@given(st.binary(max_size=300), st.booleans())
def test_any_reply_gives_a_verdict_or_waits_never_an_exception(data: bytes, with_credentials: bool) -> None:
    exchange = ConnectExchange(PROXY, *TARGET, with_credentials=with_credentials)
    verdict = exchange.receive(data)
    if verdict is None:
        verdict = exchange.receive(b"")
    assert verdict is None or isinstance(verdict, (TunnelOpen, Refused, RetryWithCredentials))
    if isinstance(verdict, Refused):
        assert SECRET not in verdict.failure.reason
