"""HTTP proxy tunnel: `CONNECT host:port` through h11, with Basic authentication.

`ConnectExchange` is the sans-IO part (bytes in, verdict out); `open_tunnel` drives it over a
blocking socket. Credentials are sent only after the proxy asks for them (407).

What real proxies do after a 407 (checked against tinyproxy 1.11.1 and squid 5.7):
- tinyproxy answers `HTTP/1.0 407` with `Connection: close` and closes, so the retry needs a fresh
  TCP connection; a wrong password gets `401 Unauthorized` + `WWW-Authenticate` (tinyproxy bug
  #532), which is treated like a 407.
- squid answers `HTTP/1.1 407` with a Content-Length body and keeps the connection open; the retry
  goes over the same connection once h11 has read that body.
h11 decides which case applies: when both sides are DONE after the body the connection is reused,
otherwise (MUST_CLOSE, or the body does not end) a new one is opened.

After a 2xx, h11 hands back any bytes the proxy sent past the reply (`trailing_data`). The TLS
server speaks only after our ClientHello, so there should be none; if there are, the tunnel is
refused with a sentence rather than fed to TLS, since they cannot come from the VPN server.

The proxy password never appears in a repr, a sentence or a log line.
"""

from __future__ import annotations

import base64
import socket
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import h11

from .core.i18n import _, ngettext
from .core.types import Failure, FailureKind, Layer

MAX_REPLY_BYTES = 64 * 1024  # a CONNECT reply (with its error page) is far smaller
_READ_SIZE = 16 * 1024


@dataclass(frozen=True)
class ProxySettings:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> ProxySettings:
        """`http://[user[:password]@]host:port`, percent-decoded. Raises ValueError with a sentence
        that never repeats the URL (it may hold a password)."""
        text = url.strip()
        if not text:
            raise ValueError(_("The proxy URL is empty: write http://host:port."))
        if "://" not in text:
            text = "http://" + text
        parts = urllib.parse.urlsplit(text)
        if parts.scheme.lower() != "http":
            raise ValueError(_("Only HTTP proxies are supported: write the proxy as http://host:port."))
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(_("The proxy URL must not have a path or query: write http://host:port."))
        host = parts.hostname
        if not host:
            raise ValueError(_("The proxy URL has no host name: write http://host:port."))
        try:
            port = parts.port
        except ValueError:
            raise ValueError(_("The port in the proxy URL must be a number from 1 to 65535.")) from None
        if port is None:
            raise ValueError(_("The proxy URL has no port: write http://host:port, e.g. http://proxy.example.com:3128."))
        if not 0 < port < 65536:
            raise ValueError(_("The port in the proxy URL must be a number from 1 to 65535."))
        username = urllib.parse.unquote(parts.username) if parts.username is not None else None
        password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        if password is not None and not username:
            raise ValueError(_("The proxy URL has a password but no user name: write http://user:password@host:port."))
        if username is not None and ":" in username:
            raise ValueError(_("The proxy user name cannot contain a colon: Basic authentication does not allow it."))
        return cls(host, port, username or None, password)

    @property
    def address(self) -> str:
        """host:port, with brackets around an IPv6 literal."""
        return f"{authority(self.host, self.port)}"

    @property
    def has_credentials(self) -> bool:
        return self.username is not None and self.password is not None


def duration(seconds: float) -> str:
    """ "1 second", "1.5 seconds", "15 seconds" (for sentences about time-outs)."""
    count = int(seconds) if float(seconds).is_integer() else 2  # a fraction takes the plural: "1.5 seconds"
    return ngettext("{seconds:g} second", "{seconds:g} seconds", count).format(seconds=seconds)


def authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ProxyError(Exception):
    """The tunnel could not be opened; `failure.reason` is the sentence for the user."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def _failure(reason: str) -> Failure:
    return Failure(Layer.PROXY, reason, FailureKind.UNREACHABLE)


def _refused_credentials(proxy: ProxySettings) -> str:
    return _("The proxy at {proxy} refused the user name or password: check them in the proxy settings.").format(proxy=proxy.address)


def _either(schemes: list[str]) -> str:
    """ "NTLM or Negotiate": authentication scheme names (not translated), joined by a translated "or"."""
    text = schemes[0]
    for scheme in schemes[1:]:
        # Translators: two authentication scheme names: "NTLM or Negotiate"
        text = _("{first} or {second}").format(first=text, second=scheme)
    return text


def _closed(proxy: ProxySettings) -> Failure:
    return _failure(
        _("The proxy at {proxy} closed the connection without answering the CONNECT request: check that it is an HTTP proxy.").format(
            proxy=proxy.address
        )
    )


# ---------------------------------------------------------------------------------------------
# Verdicts of one exchange


@dataclass(frozen=True)
class TunnelOpen:
    status: int
    reason: str


@dataclass(frozen=True)
class RetryWithCredentials:
    reuse_connection: bool  # False: the proxy closes (or would close) this connection


@dataclass(frozen=True)
class Refused:
    failure: Failure


Verdict = TunnelOpen | RetryWithCredentials | Refused


class ConnectExchange:
    """One CONNECT request and the proxy's reply, without I/O.

    Feed received bytes to `receive()` (b"" for end of stream) until it returns a verdict.
    """

    def __init__(
        self, proxy: ProxySettings, target_host: str, target_port: int, with_credentials: bool, connection: h11.Connection | None = None
    ) -> None:
        self.proxy = proxy
        self._target_host, self._target_port = target_host, target_port
        self.target = authority(target_host, target_port)
        self.with_credentials = with_credentials
        self._h11 = connection or h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_REPLY_BYTES)
        headers = [("Host", self.target)]
        if with_credentials:
            headers.append(("Proxy-Authorization", basic_authorization(proxy)))
        self._request = self._h11.send(h11.Request(method="CONNECT", target=self.target, headers=headers))
        self._request += self._h11.send(h11.EndOfMessage())
        self._retry_pending = False  # a 407 was read; its body is being skipped
        self._body_bytes = 0

    def request_bytes(self) -> bytes:
        return self._request

    def receive(self, data: bytes) -> Verdict | None:
        self._h11.receive_data(data)
        try:
            return self._next_verdict()
        except h11.RemoteProtocolError as error:
            if self._retry_pending:  # the 407 itself was fine; just do not reuse this connection
                return RetryWithCredentials(reuse_connection=False)
            if not data:  # h11 calls an end of stream before the reply a protocol error
                return Refused(_closed(self.proxy))
            return Refused(
                _failure(
                    _("The proxy at {proxy} sent a malformed reply to the CONNECT request ({error}): check that it is an HTTP proxy.").format(
                        proxy=self.proxy.address, error=error
                    )
                )
            )

    def follow_up(self) -> ConnectExchange:
        """The retry with credentials over the same connection (after RetryWithCredentials(True))."""
        self._h11.start_next_cycle()
        return ConnectExchange(self.proxy, self._target_host, self._target_port, True, self._h11)

    @property
    def skipping_challenge_body(self) -> bool:
        """A 407 was read and its body is being skipped before the retry."""
        return self._retry_pending

    def _next_verdict(self) -> Verdict | None:
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA:
                if self._retry_pending and self._body_bytes > MAX_REPLY_BYTES:
                    return RetryWithCredentials(reuse_connection=False)
                return None
            if event is h11.PAUSED:  # switched protocol after a 2xx; handled with the Response
                return None
            if isinstance(event, h11.ConnectionClosed):
                if self._retry_pending:
                    return RetryWithCredentials(reuse_connection=False)
                return Refused(_closed(self.proxy))
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                verdict = self._judge(event)
                if verdict is not None:
                    return verdict
                self._retry_pending = True
                continue
            if isinstance(event, h11.Data):
                self._body_bytes += len(event.data)
                continue
            if isinstance(event, h11.EndOfMessage):
                reusable = self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE
                return RetryWithCredentials(reuse_connection=reusable)

    def _judge(self, response: h11.Response) -> Verdict | None:
        """A verdict, or None when the reply asks for credentials we have and have not sent yet."""
        reason = response.reason.decode("latin-1", "replace")
        status = response.status_code
        if 200 <= status < 300:
            trailing, _closed_after = self._h11.trailing_data
            if trailing:
                return Refused(
                    _failure(
                        _(
                            "The proxy at {proxy} sent data of its own after opening the tunnel to "
                            "{target}: it may be intercepting the connection; try without the proxy or ask its administrator."
                        ).format(proxy=self.proxy.address, target=self.target)
                    )
                )
            return TunnelOpen(status, reason)
        if status in (401, 407):  # tinyproxy 1.11.1 answers a wrong password with 401
            schemes = auth_schemes(response.headers)
            if self.with_credentials:
                return Refused(_failure(_refused_credentials(self.proxy)))
            if schemes and "basic" not in (s.lower() for s in schemes):
                return Refused(
                    _failure(
                        _(
                            "The proxy at {proxy} asks for {schemes} authentication, which "
                            "SSTP VPN does not support: use a proxy that accepts Basic authentication."
                        ).format(proxy=self.proxy.address, schemes=_either(schemes))
                    )
                )
            if not self.proxy.has_credentials:
                return Refused(
                    _failure(
                        _("The proxy at {proxy} requires a user name and password: add them to the proxy settings.").format(proxy=self.proxy.address)
                    )
                )
            return None
        return Refused(
            _failure(
                _(
                    "The proxy at {proxy} refused to connect to {target} (HTTP {status} {reason}): "
                    "check that the proxy allows connections to this server and port."
                ).format(proxy=self.proxy.address, target=self.target, status=status, reason=reason)
            )
        )


def basic_authorization(proxy: ProxySettings) -> str:
    """RFC 7617 Basic credentials, UTF-8."""
    token = f"{proxy.username or ''}:{proxy.password or ''}".encode()
    return "Basic " + base64.b64encode(token).decode("ascii")


def auth_schemes(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """Scheme names offered in Proxy-Authenticate / WWW-Authenticate, in order, without repeats."""
    schemes: list[str] = []
    for name, value in headers:
        if name.lower() not in (b"proxy-authenticate", b"www-authenticate"):
            continue
        for part in value.decode("latin-1").split(","):
            words = part.split()
            # A challenge starts with a bare token; "realm=..." continues the previous one.
            if words and "=" not in words[0] and '"' not in words[0] and words[0] not in schemes:
                schemes.append(words[0])
    return schemes


# ---------------------------------------------------------------------------------------------
# Blocking driver


@dataclass
class Tunnel:
    sock: socket.socket  # the connection to the proxy, now a byte pipe to the target
    status_line: str  # e.g. "200 Connection established"
    authenticated: bool  # credentials were sent (and accepted)


def open_tunnel(
    sock: socket.socket, reconnect: Callable[[], socket.socket], proxy: ProxySettings, target_host: str, target_port: int, timeout: float
) -> Tunnel:
    """Ask the proxy on `sock` for a tunnel; `reconnect()` opens a fresh connection to the same
    proxy when the retry with credentials cannot reuse `sock`. Raises ProxyError."""
    exchange = ConnectExchange(proxy, target_host, target_port, with_credentials=False)
    try:
        verdict = _exchange(sock, exchange, timeout)
        if isinstance(verdict, RetryWithCredentials):
            if verdict.reuse_connection:
                exchange = exchange.follow_up()
            else:
                sock.close()
                sock = reconnect()
                exchange = ConnectExchange(proxy, target_host, target_port, with_credentials=True)
            verdict = _exchange(sock, exchange, timeout)
        if isinstance(verdict, TunnelOpen):
            return Tunnel(sock, f"{verdict.status} {verdict.reason}", exchange.with_credentials)
        if isinstance(verdict, RetryWithCredentials):  # cannot happen: credentials were sent
            raise ProxyError(_failure(_refused_credentials(proxy)))
        raise ProxyError(verdict.failure)
    except BaseException:
        sock.close()
        raise


def _exchange(sock: socket.socket, exchange: ConnectExchange, timeout: float) -> Verdict:
    address = exchange.proxy.address
    try:
        sock.sendall(exchange.request_bytes())
        while True:
            try:
                data = sock.recv(_READ_SIZE)
            except ConnectionResetError:
                data = b""
            verdict = exchange.receive(data)
            if verdict is not None:
                return verdict
            if not data:  # h11 saw the end of stream and still wants data: treat as closed
                return Refused(_closed(exchange.proxy))
    except TimeoutError:
        if exchange.skipping_challenge_body:  # the 407 body never ended: retry on a new connection
            return RetryWithCredentials(reuse_connection=False)
        raise ProxyError(
            _failure(
                _("The proxy at {proxy} did not answer the CONNECT request within {duration}: check the proxy settings.").format(
                    proxy=address, duration=duration(timeout)
                )
            )
        ) from None
    except OSError as error:
        raise ProxyError(
            _failure(
                _(
                    "The connection to the proxy at {proxy} failed during the CONNECT request ({reason}): check the proxy settings and your network."
                ).format(proxy=address, reason=error.strerror or error)
            )
        ) from None
