"""HTTP proxy tunnel: `CONNECT host:port` through h11, with Basic, NTLM or Negotiate (Kerberos)
authentication.

Without I/O: `ConnectExchange` is one request and the proxy's reply (bytes in, verdict out);
`ProxyHandshake` is the whole conversation: the first CONNECT without credentials, then, after a
407, the scheme chosen from the proxy's offers and as many rounds as that scheme needs.
`open_tunnel` drives it over a blocking socket. Credentials are sent only after the proxy asks.

The scheme is the first of Negotiate > NTLM > Basic that the proxy offers (Proxy-Authenticate)
and that we can use:
- Negotiate (SPNEGO, RFC 4559): Kerberos with the user's ticket cache, no password needed; NTLM
  inside it when there is no ticket (or the proxy picks NTLM) and the profile has a proxy user
  name and password.
- NTLM: the profile's proxy user name (DOMAIN\\user or user) and its password.
- Basic: user name and password readable by anyone between us and the proxy: never sent when the
  profile forbids it (`ProxySettings.allow_basic` False).
A scheme we cannot use (no ticket, no password, Basic forbidden) passes the turn to the next one
offered; when none is left the sentence says why the most preferred one could not be used.

NTLM and Negotiate authenticate the TCP connection, not a request: the proxy's challenge (a 407
carrying a token) and our answer travel over ONE kept-alive connection. Only the very first token
may start on a fresh connection (after a 407 with `Connection: close`); a proxy that closes the
connection in the middle of the handshake is refused with a sentence. The tokens come from an
`AuthContext` made by a `ContextFactory` (proxy_auth.py, pyspnego): pure computation for NTLM;
for Kerberos it reads the ticket cache and asks the KDC for the proxy's service ticket, which is
I/O at the edge, passed in, so the handshake is tested with canned replies.

What real proxies do after a 407 (checked against tinyproxy 1.11.1 and squid 5.7):
- tinyproxy answers `HTTP/1.0 407` with `Connection: close` and closes, so the retry needs a fresh
  TCP connection; a wrong password gets `401 Unauthorized` + `WWW-Authenticate` (tinyproxy bug
  #532), which is treated like a 407.
- squid answers `HTTP/1.1 407` with a Content-Length body and keeps the connection open; the retry
  goes over the same connection once h11 has read that body. During NTLM it answers the first
  token with `407` + `Proxy-Authenticate: NTLM <challenge>`, the connection kept open; with
  Negotiate (negotiate_kerberos_auth) a good ticket is answered `200` at once.
A 2xx after Negotiate may carry the proxy's last token (mutual authentication); it is not checked:
the proxy only relays bytes, and the VPN server is authenticated by TLS inside the tunnel.
h11 decides whether the connection can be reused: when both sides are DONE after the body it is,
otherwise (MUST_CLOSE, or the body does not end) a new one is opened for Basic or the first token.

After a 2xx, h11 hands back any bytes the proxy sent past the reply (`trailing_data`). The TLS
server speaks only after our ClientHello, so there should be none; if there are, the tunnel is
refused with a sentence rather than fed to TLS, since they cannot come from the VPN server.

The proxy password never appears in a repr, a sentence or a log line.
"""

from __future__ import annotations

import base64
import binascii
import enum
import socket
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import h11

from .core.i18n import _, ngettext
from .core.types import Failure, FailureKind, Layer

MAX_REPLY_BYTES = 64 * 1024  # a CONNECT reply (with its error page) is far smaller
MAX_TOKENS = 4  # NTLM sends 2 tokens, Kerberos 1 (2 with a retry); more means the proxy loops
_READ_SIZE = 16 * 1024


@dataclass(frozen=True)
class ProxySettings:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    allow_basic: bool = True  # False: never send the password with Basic (readable on the way to the proxy)

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


class AuthScheme(enum.StrEnum):
    """The schemes we answer, as HTTP spells them."""

    NEGOTIATE = "Negotiate"
    NTLM = "NTLM"
    BASIC = "Basic"


PREFERENCE = (AuthScheme.NEGOTIATE, AuthScheme.NTLM, AuthScheme.BASIC)


class Unavailable(enum.Enum):
    """Why a scheme the proxy offers cannot be used here."""

    NO_CREDENTIALS = "no-credentials"  # NTLM and Basic need the proxy user name and password
    BASIC_FORBIDDEN = "basic-forbidden"  # the profile forbids Basic
    NO_TICKET = "no-ticket"  # no Kerberos ticket in the cache (and no password for NTLM inside Negotiate)
    TICKET_EXPIRED = "ticket-expired"
    NOT_INSTALLED = "not-installed"  # pyspnego (or gssapi for Kerberos) is missing: the detail names it
    FAILED = "failed"  # the first token could not be made: the detail says why


class AuthUnavailable(Exception):
    """The context factory cannot make a context for this scheme (`why`)."""

    def __init__(self, why: Unavailable, detail: str = "") -> None:
        super().__init__(detail or why.value)
        self.why, self.detail = why, detail


class AuthFailed(Exception):
    """The context could not compute a token; the message is the library's own words (e.g. Kerberos
    cannot get a ticket for the proxy), quoted inside our sentence."""


class AuthContext(Protocol):
    """One NTLM or Negotiate security context (proxy_auth.SpnegoContext; fakes in the tests)."""

    def step(self, token: bytes | None) -> bytes | None:
        """The next token to send, from the proxy's last one (None at the start). Raises AuthFailed."""
        ...

    @property
    def mechanism(self) -> str:
        """ "kerberos" or "ntlm": what the context uses (Negotiate picks one at the first step)."""
        ...

    @property
    def user(self) -> str | None:
        """Who signs in: the Kerberos principal or the NTLM user name, when known."""
        ...


ContextFactory = Callable[[AuthScheme, "ProxySettings"], AuthContext]  # raises AuthUnavailable


def default_contexts(scheme: AuthScheme, proxy: ProxySettings) -> AuthContext:
    """pyspnego's contexts (imported when a proxy first asks for NTLM or Negotiate)."""
    from .proxy_auth import spnego_context

    return spnego_context(scheme, proxy)


# ---------------------------------------------------------------------------------------------
# Verdicts of one exchange


@dataclass(frozen=True)
class Offer:
    """One challenge in Proxy-Authenticate: the scheme as the proxy spelled it, and its token68
    (the NTLM or Negotiate challenge, base64) when it carries one."""

    scheme: str
    token: str | None = None


@dataclass(frozen=True)
class TunnelOpen:
    status: int
    reason: str


@dataclass(frozen=True)
class Challenge:
    """A 401/407 was read to its end (or the connection ended): what the proxy offers."""

    offers: tuple[Offer, ...]
    reuse_connection: bool  # False: the proxy closes (or would close) this connection


@dataclass(frozen=True)
class Refused:
    failure: Failure


Verdict = TunnelOpen | Challenge | Refused


class ConnectExchange:
    """One CONNECT request and the proxy's reply, without I/O.

    Feed received bytes to `receive()` (b"" for end of stream) until it returns a verdict.
    `authorization` is the Proxy-Authorization header's value, if any.
    """

    def __init__(
        self, proxy: ProxySettings, target_host: str, target_port: int, authorization: str | None = None, connection: h11.Connection | None = None
    ) -> None:
        self.proxy = proxy
        self._target_host, self._target_port = target_host, target_port
        self.target = authority(target_host, target_port)
        self.authorization = authorization
        self._h11 = connection or h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_REPLY_BYTES)
        headers = [("Host", self.target)]
        if authorization is not None:
            headers.append(("Proxy-Authorization", authorization))
        self._request = self._h11.send(h11.Request(method="CONNECT", target=self.target, headers=headers))
        self._request += self._h11.send(h11.EndOfMessage())
        self._offers: tuple[Offer, ...] | None = None  # a 401/407 was read; its body is being skipped
        self._body_bytes = 0

    def request_bytes(self) -> bytes:
        return self._request

    def receive(self, data: bytes) -> Verdict | None:
        self._h11.receive_data(data)
        try:
            return self._next_verdict()
        except h11.RemoteProtocolError as error:
            if self._offers is not None:  # the 407 itself was fine; just do not reuse this connection
                return Challenge(self._offers, reuse_connection=False)
            if not data:  # h11 calls an end of stream before the reply a protocol error
                return Refused(_closed(self.proxy))
            return Refused(
                _failure(
                    _("The proxy at {proxy} sent a malformed reply to the CONNECT request ({error}): check that it is an HTTP proxy.").format(
                        proxy=self.proxy.address, error=error
                    )
                )
            )

    def stalled(self) -> Challenge | None:
        """The proxy stopped sending: after a 407's head that is its challenge, on a connection
        that cannot be reused; before one, None (the caller says the proxy did not answer)."""
        return None if self._offers is None else Challenge(self._offers, reuse_connection=False)

    def follow_up(self, authorization: str) -> ConnectExchange:
        """The next request over the same connection (after Challenge(reuse_connection=True))."""
        self._h11.start_next_cycle()
        return ConnectExchange(self.proxy, self._target_host, self._target_port, authorization, self._h11)

    @property
    def skipping_challenge_body(self) -> bool:
        """A 407 was read and its body is being skipped."""
        return self._offers is not None

    def _next_verdict(self) -> Verdict | None:
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA:
                if self._offers is not None and self._body_bytes > MAX_REPLY_BYTES:
                    return Challenge(self._offers, reuse_connection=False)
                return None
            if event is h11.PAUSED:  # switched protocol after a 2xx; handled with the Response
                return None
            if isinstance(event, h11.ConnectionClosed):
                if self._offers is not None:
                    return Challenge(self._offers, reuse_connection=False)
                return Refused(_closed(self.proxy))
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                verdict = self._judge(event)
                if verdict is not None:
                    return verdict
                self._offers = tuple(auth_challenges(event.headers))
                continue
            if isinstance(event, h11.Data):
                self._body_bytes += len(event.data)
                continue
            if isinstance(event, h11.EndOfMessage):
                assert self._offers is not None  # only a 401/407 has a body we read
                reusable = self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE
                return Challenge(self._offers, reuse_connection=reusable)

    def _judge(self, response: h11.Response) -> Verdict | None:
        """A verdict, or None for a 401/407 (its challenge is judged once its body is read)."""
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
            return None
        return Refused(
            _failure(
                _(
                    "The proxy at {proxy} refused to connect to {target} (HTTP {status} {reason}): "
                    "check that the proxy allows connections to this server and port."
                ).format(proxy=self.proxy.address, target=self.target, status=status, reason=reason)
            )
        )


# ---------------------------------------------------------------------------------------------
# The whole conversation


@dataclass(frozen=True)
class SendRequest:
    """Send `data` (the next CONNECT, with its Proxy-Authorization) and feed the reply back."""

    data: bytes = field(repr=False)  # may hold the Basic password
    new_connection: bool  # True: close this connection and send on a new one to the same proxy


Step = SendRequest | TunnelOpen | Refused


class ProxyHandshake:
    """CONNECT through a proxy, authenticating as its 407s ask, without I/O.

    Send `request_bytes()`, then feed the replies to `receive()` (b"" for end of stream) until it
    returns a step: `SendRequest` (send it, on a new connection if it says so, and go on feeding),
    `TunnelOpen` or `Refused`. When the proxy stops sending, `stalled()` gives the step, or None if
    it never answered at all.
    """

    def __init__(self, proxy: ProxySettings, target_host: str, target_port: int, contexts: ContextFactory = default_contexts) -> None:
        self.proxy = proxy
        self._target = (target_host, target_port)
        self._contexts = contexts
        self._exchange = ConnectExchange(proxy, target_host, target_port)
        self.scheme: AuthScheme | None = None  # the scheme whose credentials were sent
        self._context: AuthContext | None = None
        self._tokens = 0  # tokens sent (NTLM, Negotiate)

    def request_bytes(self) -> bytes:
        """The first request (no credentials)."""
        return self._exchange.request_bytes()

    @property
    def target(self) -> str:
        return self._exchange.target

    @property
    def user(self) -> str | None:
        """Who was authenticated (or tried to be): the proxy user name, or the Kerberos principal."""
        if self._context is not None:
            return self._context.user or self.proxy.username
        return self.proxy.username if self.scheme is not None else None

    @property
    def method(self) -> str | None:
        """How we authenticated: "Basic", "NTLM", "Negotiate (Kerberos)" or "Negotiate (NTLM)"."""
        if self.scheme is None:
            return None
        if self.scheme is AuthScheme.NEGOTIATE and self._context is not None:
            return f"{self.scheme} ({'Kerberos' if self._context.mechanism == 'kerberos' else 'NTLM'})"
        return str(self.scheme)

    def receive(self, data: bytes) -> Step | None:
        verdict = self._exchange.receive(data)
        return None if verdict is None else self._after(verdict)

    def stalled(self) -> Step | None:
        verdict = self._exchange.stalled()
        return None if verdict is None else self._after(verdict)

    def _after(self, verdict: Verdict) -> Step:
        if not isinstance(verdict, Challenge):
            return verdict
        if self.scheme is None:
            return self._start(verdict)
        if self.scheme is AuthScheme.BASIC:
            return Refused(_failure(_refused_credentials(self.proxy)))
        return self._continue(verdict)

    def _send(self, authorization: str, reuse_connection: bool) -> SendRequest:
        if reuse_connection:
            self._exchange = self._exchange.follow_up(authorization)
        else:
            self._exchange = ConnectExchange(self.proxy, *self._target, authorization)
        return SendRequest(self._exchange.request_bytes(), new_connection=not reuse_connection)

    def _start(self, challenge: Challenge, after: AuthScheme | None = None) -> Step:
        """The first 407: the most preferred scheme the proxy offers and we can use (after a
        refused Kerberos ticket: one that comes after `after`)."""
        offered = scheme_names(challenge.offers) or ["Basic"]  # a 407 that names no scheme: the one every proxy has
        wanted = {scheme.lower() for scheme in offered}
        obstacles: list[tuple[AuthScheme, Unavailable, str]] = []  # in the order of preference
        candidates = PREFERENCE if after is None else PREFERENCE[PREFERENCE.index(after) + 1 :]
        for scheme in candidates:
            if scheme.lower() not in wanted:
                continue
            if scheme is AuthScheme.BASIC:
                if not self.proxy.has_credentials:
                    obstacles.append((scheme, Unavailable.NO_CREDENTIALS, ""))
                elif not self.proxy.allow_basic:
                    obstacles.append((scheme, Unavailable.BASIC_FORBIDDEN, ""))
                else:
                    self.scheme = scheme
                    return self._send(basic_authorization(self.proxy), challenge.reuse_connection)
                continue
            if scheme is AuthScheme.NTLM and not self.proxy.has_credentials:
                obstacles.append((scheme, Unavailable.NO_CREDENTIALS, ""))
                continue
            try:
                context = self._contexts(scheme, self.proxy)
                token = context.step(None)
            except AuthUnavailable as error:
                obstacles.append((scheme, error.why, error.detail))
                continue
            except AuthFailed as error:
                obstacles.append((scheme, Unavailable.FAILED, str(error) or type(error).__name__))
                continue
            if not token:
                obstacles.append((scheme, Unavailable.FAILED, _("no token was made")))
                continue
            self.scheme, self._context = scheme, context
            self._tokens = 1
            return self._send(f"{scheme} {base64.b64encode(token).decode('ascii')}", challenge.reuse_connection)
        return Refused(_failure(self._unusable(offered, obstacles)))

    def _continue(self, challenge: Challenge) -> Step:
        """A 407 after our NTLM or Negotiate token: the next challenge, or a refusal."""
        assert self.scheme is not None and self._context is not None
        token = next((offer.token for offer in challenge.offers if offer.scheme.lower() == self.scheme.lower()), None)
        if token is None or self._tokens >= MAX_TOKENS:
            refusal = Refused(_failure(self._refused()))
            if token is None and self._context.mechanism == "kerberos" and self.proxy.has_credentials:
                # The ticket was refused (e.g. the proxy's keytab is out of date), not a password:
                # NTLM or Basic with the password may still do, as browsers fall back. Never after a
                # refused password, which would only count one more failed sign-in against the account.
                # On a new connection: squid keeps this one bound to the failed Negotiate and answers
                # any other scheme on it with a 407 without asking its helper.
                scheme, self.scheme, self._context, self._tokens = self.scheme, None, None, 0
                step = self._start(Challenge(challenge.offers, reuse_connection=False), after=scheme)
                return step if isinstance(step, SendRequest) else refusal
            return refusal
        if not challenge.reuse_connection:
            return Refused(
                _failure(
                    _(
                        "The proxy at {proxy} closed the connection in the middle of {scheme} authentication, which needs one "
                        "connection kept open from start to end: check that nothing between you and the proxy closes "
                        "connections, or ask the proxy's administrator."
                    ).format(proxy=self.proxy.address, scheme=self.scheme.value)
                )
            )
        try:
            answer = self._context.step(base64.b64decode(token, validate=True))
        except (binascii.Error, ValueError, AuthFailed) as error:
            return Refused(
                _failure(
                    _("The {scheme} challenge of the proxy at {proxy} cannot be answered ({reason}): ask the proxy's administrator.").format(
                        scheme=self.scheme.value, proxy=self.proxy.address, reason=str(error) or type(error).__name__
                    )
                )
            )
        if not answer:  # our side is finished, yet the proxy asks again
            return Refused(_failure(self._refused()))
        self._tokens += 1
        return self._send(f"{self.scheme} {base64.b64encode(answer).decode('ascii')}", True)

    def _refused(self) -> str:
        """The sentence for a proxy that answered our last token with a 407 and no challenge."""
        assert self._context is not None
        proxy = self.proxy.address
        if self._context.mechanism == "kerberos":
            return _(
                "The proxy at {proxy} refused the Kerberos sign-in as {user}: sign in to the domain again (or run kinit) and "
                "check that the proxy's name is the one it has in the domain; if it goes on, ask the proxy's administrator."
            ).format(proxy=proxy, user=self.user or "?")
        if self.scheme is AuthScheme.NEGOTIATE:
            return _(
                "The proxy at {proxy} refused the NTLM sign-in (inside Negotiate) as {user}: check the proxy user name "
                "(DOMAIN\\user or user) and password in the proxy settings, or sign in to the domain (or run kinit) to use Kerberos."
            ).format(proxy=proxy, user=self.user or "?")
        return _(
            "The proxy at {proxy} refused the NTLM sign-in as {user}: check the proxy user name (DOMAIN\\user or user) "
            "and password in the proxy settings."
        ).format(proxy=proxy, user=self.user or "?")

    def _unusable(self, offered: list[str], obstacles: list[tuple[AuthScheme, Unavailable, str]]) -> str:
        """Why none of the offered schemes could be used: the most preferred one's reason."""
        proxy = self.proxy.address
        if not obstacles:
            return _(
                "The proxy at {proxy} asks for {schemes} authentication, which SSTP VPN does not support: ask the proxy's "
                "administrator to allow Negotiate (Kerberos), NTLM or Basic authentication, or use another proxy."
            ).format(proxy=proxy, schemes=_either(offered))
        scheme, why, detail = obstacles[0]
        if why in (Unavailable.NO_TICKET, Unavailable.TICKET_EXPIRED):
            if why is Unavailable.TICKET_EXPIRED:
                problem = _("The proxy at {proxy} asks for Kerberos (Negotiate) sign-in, and your Kerberos ticket has expired").format(proxy=proxy)
            elif detail == "sudo":  # proxy_auth.SUDO
                return _(
                    "The proxy at {proxy} asks for Kerberos (Negotiate) sign-in, and root has no Kerberos ticket: sudo does not pass "
                    "yours on. Connect as yourself (the tray app, or sstp-vpn without sudo through the network helper), or run kinit as root."
                ).format(proxy=proxy)
            else:
                problem = _("The proxy at {proxy} asks for Kerberos (Negotiate) sign-in, and you have no Kerberos ticket").format(proxy=proxy)
            if any(later is Unavailable.NO_CREDENTIALS for _scheme, later, _detail in obstacles[1:]):
                return _("{problem}: sign in to the domain (or run kinit), or enter the proxy user name and password in the proxy settings.").format(
                    problem=problem
                )
            return _("{problem}: sign in to the domain (or run kinit), then connect again.").format(problem=problem)
        if why is Unavailable.NO_CREDENTIALS:
            return _("The proxy at {proxy} requires a user name and password: add them to the proxy settings.").format(proxy=proxy)
        if why is Unavailable.BASIC_FORBIDDEN:
            return _(
                "The proxy at {proxy} accepts only Basic authentication, which sends the password readable by anyone on the way "
                "to the proxy, and the proxy settings forbid it: allow Basic in the proxy settings if you trust this network, "
                "or ask the proxy's administrator for NTLM or Negotiate."
            ).format(proxy=proxy)
        if why is Unavailable.NOT_INSTALLED:
            return _(
                "The proxy at {proxy} asks for {scheme} authentication, but this installation of SSTP VPN lacks the Python "
                "package for it ({package}): reinstall SSTP VPN."
            ).format(proxy=proxy, scheme=scheme.value, package=detail)
        if scheme is AuthScheme.NEGOTIATE:
            return _(
                "Kerberos could not sign in to the proxy at {proxy} ({reason}): check that the proxy's name is the one it has "
                "in the domain (its service HTTP/{host}) and that you are signed in to the domain (or ran kinit)."
            ).format(proxy=proxy, reason=detail, host=self.proxy.host)
        return _("The {scheme} sign-in to the proxy at {proxy} could not start ({reason}): check the proxy user name in the proxy settings.").format(
            scheme=scheme.value, proxy=proxy, reason=detail
        )


def basic_authorization(proxy: ProxySettings) -> str:
    """RFC 7617 Basic credentials, UTF-8."""
    token = f"{proxy.username or ''}:{proxy.password or ''}".encode()
    return "Basic " + base64.b64encode(token).decode("ascii")


def _is_token68(word: str) -> bool:
    """RFC 7235 token68: letters, digits and -._~+/, then only '=' padding."""
    body = word.rstrip("=")
    return bool(body) and body.isascii() and all(c.isalnum() or c in "-._~+/" for c in body)


def auth_challenges(headers: Iterable[tuple[bytes, bytes]]) -> list[Offer]:
    """The challenges in Proxy-Authenticate / WWW-Authenticate, in order: "NTLM <token>" gives
    Offer("NTLM", "<token>"), 'Basic realm="x"' gives Offer("Basic")."""
    offers: list[Offer] = []
    for name, value in headers:
        if name.lower() not in (b"proxy-authenticate", b"www-authenticate"):
            continue
        for part in value.decode("latin-1").split(","):
            words = part.split()
            # A challenge starts with a bare token; "realm=..." continues the previous one.
            if words and "=" not in words[0] and '"' not in words[0]:
                token = words[1] if len(words) == 2 and _is_token68(words[1]) else None
                offers.append(Offer(words[0], token))
    return offers


def scheme_names(offers: Iterable[Offer]) -> list[str]:
    """The scheme names of `offers`, in order, without repeats ("Negotiate" with and without a token is one)."""
    schemes: list[str] = []
    for offer in offers:
        if offer.scheme not in schemes:
            schemes.append(offer.scheme)
    return schemes


# ---------------------------------------------------------------------------------------------
# Blocking driver


@dataclass
class Tunnel:
    sock: socket.socket  # the connection to the proxy, now a byte pipe to the target
    status_line: str  # e.g. "200 Connection established"
    scheme: AuthScheme | None = None  # the scheme that authenticated us, None if none was asked for
    user: str | None = None  # who: the proxy user name or the Kerberos principal
    method: str | None = None  # "Basic", "NTLM", "Negotiate (Kerberos)" or "Negotiate (NTLM)" (ProxyHandshake.method)

    @property
    def authenticated(self) -> bool:
        return self.scheme is not None


def open_tunnel(
    sock: socket.socket,
    reconnect: Callable[[], socket.socket],
    proxy: ProxySettings,
    target_host: str,
    target_port: int,
    timeout: float,
    contexts: ContextFactory = default_contexts,
) -> Tunnel:
    """Ask the proxy on `sock` for a tunnel; `reconnect()` opens a fresh connection to the same
    proxy when the next request cannot reuse `sock`. Raises ProxyError."""
    handshake = ProxyHandshake(proxy, target_host, target_port, contexts)
    try:
        data = handshake.request_bytes()
        while True:  # ends: the handshake sends at most 1 + 2 * MAX_TOKENS requests (Kerberos, then NTLM)
            step = _exchange(sock, handshake, data, timeout)
            if isinstance(step, SendRequest):
                if step.new_connection:
                    sock.close()
                    sock = reconnect()
                data = step.data
                continue
            if isinstance(step, TunnelOpen):
                return Tunnel(sock, f"{step.status} {step.reason}", handshake.scheme, handshake.user, handshake.method)
            raise ProxyError(step.failure)
    except BaseException:
        sock.close()
        raise


def _exchange(sock: socket.socket, handshake: ProxyHandshake, request: bytes, timeout: float) -> Step:
    address = handshake.proxy.address
    try:
        sock.sendall(request)
        while True:
            try:
                data = sock.recv(_READ_SIZE)
            except ConnectionResetError:
                data = b""
            step = handshake.receive(data)
            if step is not None:
                return step
            if not data:  # h11 saw the end of stream and still wants data: treat as closed
                return Refused(_closed(handshake.proxy))
    except TimeoutError:
        step = handshake.stalled()  # a 407 whose body never ended
        if step is not None:
            return step
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
