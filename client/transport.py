"""The way to the SSTP server: DNS, TCP, an optional HTTP proxy tunnel, then TLS.

`open_connection()` is blocking and uses `settings.timeout` for each step (TCP connect, proxy
reply, TLS handshake); name resolution uses the system resolver, which has its own timeouts.
Every failure is a `TransportError` whose `failure.reason` is one sentence for the user.

The host name is resolved once; the addresses are tried in the resolver's order (IPv6 and IPv4).
With a proxy only the proxy's name is resolved here: the proxy resolves the VPN server's name.
`TlsConnection.route_target` is the address our TCP connection actually goes to (the server, or
the proxy), which is the one that needs a host route outside the tunnel.

With a proxy auto-config (`settings.pac`, client/pac.py) the PAC file gives an ordered list of
candidates, proxies and DIRECT, tried in that order: one that is dead (its name does not resolve,
the connection is refused or not answered within `settings.timeout`) passes the turn to the next;
one that answers, even with a refusal (407, 403), has given its answer and ends the attempt.

SNI and host-name check: the name sent (SNI) and the name checked are `sni` when given, else the
host. An IP-literal host sends no SNI (RFC 6066 forbids addresses there) and is checked against
the certificate's IP addresses. `sni=""` sends no SNI and checks the host.

On Windows and macOS a self-signed server certificate given as the CA file is trusted when the
server presents exactly it (`verified_handshake`, `trust.leaf_anchors`), as OpenSSL does on Linux.
On every system a pinned certificate is trusted when the server presents exactly it, whoever
issued it (a private CA nobody trusts here), and only then.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from . import head_start, trust
from .core.i18n import _
from .core.types import Failure, FailureKind, Layer
from .endpoint import format_endpoint, is_ip_address
from .pac import PacError, PacSource, ProxyDecision, candidate_label, decide
from .pac import describe as describe_decision
from .profiles import Revocation
from .proxy import ProxyError, ProxySettings, authority, duration, open_tunnel
from .revocation import RevocationResult, check_connection, trusted_authorities

__all__ = ["ProxySettings", "TransportSettings", "TransportError", "TlsConnection", "open_connection"]

log = logging.getLogger(__name__)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class TransportSettings:
    host: str
    port: int = 443
    sni: str | None = None  # None: the host (no SNI for an IP literal); "": send none
    ca_file: Path | None = None  # extra CA certificates (PEM) trusted besides the OS store
    pin_sha256: str | None = None  # hex SHA-256 of the leaf certificate, colons allowed
    revocation: Revocation = Revocation.SOFT  # a revocation check that cannot be done: connect (soft) or refuse (hard)
    proxy: ProxySettings | None = None
    timeout: float = 15.0  # seconds, for each step
    pac: PacSource | None = None  # proxy auto-config: its candidates are tried in order (`proxy` is then unused)
    # The addresses of the host (with `proxy`: of the proxy) looked up before a kill switch went on,
    # which blocks DNS: when given, the connection goes to these and the name is never looked up.
    resolved: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.ca_file is not None and not isinstance(self.ca_file, Path):
            object.__setattr__(self, "ca_file", Path(self.ca_file))
        if self.pin_sha256 is not None:
            trust.parse_pin(self.pin_sha256)  # ValueError with a sentence, before any connection

    @property
    def pin(self) -> bytes | None:
        return None if self.pin_sha256 is None else trust.parse_pin(self.pin_sha256)

    @property
    def expected_name(self) -> str:
        """The name the certificate must carry."""
        return self.sni or self.host

    @property
    def sni_to_send(self) -> str | None:
        name = self.host if self.sni is None else self.sni
        if not name or is_ip_address(name.strip("[]").split("%", 1)[0]):  # as trust.reference_identity reads it
            return None
        return trust.sni_name(name)  # the A-label form that is checked (ssl would use IDNA 2003)

    @property
    def server(self) -> str:
        """host:port as the user wrote it (brackets around IPv6)."""
        return authority(self.host, self.port)

    @property
    def http_host(self) -> str:
        """The HTTP Host header for the SSTP request: the name we connected to, port if not 443."""
        return format_endpoint(self.host, self.port)


class TransportError(Exception):
    connect_kind = ""  # a TCP connection that failed: "refused", "timeout", "unreachable", "other"; "resolve"

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


class CertificateRejected(TransportError):
    """The trust store rejected the server's chain during the handshake."""


@dataclass
class TlsConnection:
    sock: ssl.SSLSocket
    route_target: IpAddress  # where our TCP connection goes: the server, or the proxy
    peer_certificate_der: bytes = field(repr=False)  # the leaf, for the crypto binding
    tls_version: str  # e.g. "TLSv1.3"
    cipher: str
    proxy: ProxySettings | None = None  # the proxy the connection goes through (with a PAC: the candidate that worked)
    proxy_decision: str = ""  # with a PAC: pac.describe()'s line, e.g. "PAC http://… → PROXY b:3128 (PROXY a:3128: refused the connection)"
    revocation: RevocationResult | None = None  # the chain's revocation check (revocation.py)


def open_connection(settings: TransportSettings) -> TlsConnection:
    """DNS, TCP, proxy tunnel, TLS handshake and certificate checks. Raises TransportError.
    The socket is left blocking with `settings.timeout`; the runner changes that."""
    context = make_context(settings)
    stream = open_candidates(settings)
    raw, route_target = stream.sock, stream.address
    chosen = dataclasses.replace(settings, proxy=stream.proxy, pac=None)  # a second connection takes the same way

    def reopen() -> socket.socket:
        nonlocal route_target
        sock, route_target = open_stream(chosen)
        return sock

    tls = verified_handshake(raw, settings, context, reopen)
    try:
        leaf = tls.getpeercert(binary_form=True)
        problem = certificate_problem(leaf, settings)
        if problem is not None:
            raise TransportError(Failure(Layer.TLS, problem, FailureKind.TRUST))
        assert leaf is not None  # certificate_problem refuses a server without a certificate
        checked = revocation_check(tls, settings)
        cipher = tls.cipher()
        return TlsConnection(
            tls,
            route_target,
            leaf,
            tls.version() or "",
            cipher[0] if cipher else "",
            proxy=stream.proxy,
            proxy_decision=stream.describe(),
            revocation=checked,
        )
    except BaseException:
        tls.close()
        raise


# ---------------------------------------------------------------------------------------------
# Steps (also used one by one by `diagnose`)


@dataclass(frozen=True)
class Endpoint:
    """A host we open TCP to, and how sentences name it."""

    role: str  # "server" or "proxy"
    host: str
    port: int

    @property
    def label(self) -> str:
        return authority(self.host, self.port)

    def resolve_failed(self) -> TransportError:
        if self.role == "proxy":
            reason = _("Cannot resolve the proxy {host}: check the proxy settings and your network.").format(host=self.host)
        else:
            reason = _("Cannot resolve {host}: check the server name and your network.").format(host=self.host)
        error = TransportError(Failure(Layer.PROXY if self.role == "proxy" else Layer.DNS, reason, FailureKind.UNREACHABLE))
        error.connect_kind = "resolve"
        return error

    def connect_failed(self, error: OSError, timeout: float) -> TransportError:
        kind = _connect_error_kind(error)
        reason = error.strerror or str(error) or type(error).__name__
        label, waited = self.label, duration(timeout)
        if self.role == "proxy":
            sentences = {
                "refused": _("The proxy at {proxy} refused the connection: check the proxy address and port, and that the proxy is running.").format(
                    proxy=label
                ),
                "timeout": _("The proxy at {proxy} did not answer within {duration}: check the proxy address and any firewall in between.").format(
                    proxy=label, duration=waited
                ),
                "unreachable": _(
                    "The proxy at {proxy} cannot be reached from this network ({reason}): check your network connection and the proxy settings."
                ).format(proxy=label, reason=reason),
                "other": _("Cannot connect to the proxy at {proxy} ({reason}): check the proxy settings and your network.").format(
                    proxy=label, reason=reason
                ),
            }
        else:
            sentences = {
                "refused": _("The server {server} refused the connection: check the port and that the SSTP server is running.").format(server=label),
                "timeout": _(
                    "The server {server} did not answer within {duration}: check the server name, the port and any firewall in between."
                ).format(server=label, duration=waited),
                "unreachable": _("The server {server} cannot be reached from this network ({reason}): check your network connection.").format(
                    server=label, reason=reason
                ),
                "other": _("Cannot connect to the server {server} ({reason}): check your network connection.").format(server=label, reason=reason),
            }
        failed = TransportError(Failure(Layer.PROXY if self.role == "proxy" else Layer.TCP, sentences[kind], FailureKind.UNREACHABLE))
        failed.connect_kind = kind
        return failed


_ERROR_RANK = {"refused": 0, "timeout": 1, "unreachable": 2, "other": 3}


def _connect_error_kind(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, TimeoutError):
        return "timeout"
    if error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN, errno.EHOSTDOWN):
        return "unreachable"
    return "other"


def resolve(endpoint: Endpoint) -> list[tuple[int, tuple]]:
    """(family, sockaddr) for each address, in the resolver's order, without repeats."""
    try:
        infos = head_start.getaddrinfo(endpoint.host, endpoint.port)  # the command line's head start, or the resolver now
    except (socket.gaierror, UnicodeError):
        raise endpoint.resolve_failed() from None
    seen: set[tuple] = set()
    addresses: list[tuple[int, tuple]] = []
    for family, _type, _protocol, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr not in seen:
            seen.add(sockaddr)
            addresses.append((family, sockaddr))
    if not addresses:
        raise endpoint.resolve_failed()
    return addresses


def pinned_addresses(endpoint: Endpoint, resolved: tuple[str, ...]) -> list[tuple[int, tuple]]:
    """`resolve`'s answer from addresses looked up earlier (TransportSettings.resolved), without a look-up."""
    addresses: list[tuple[int, tuple]] = []
    for text in resolved:
        address = ipaddress.ip_address(text)
        if address.version == 4:
            addresses.append((socket.AF_INET, (text, endpoint.port)))
        else:
            addresses.append((socket.AF_INET6, (text, endpoint.port, 0, 0)))
    return addresses


def connect_first(
    endpoint: Endpoint, addresses: list[tuple[int, tuple]], timeout: float, head_start_allowed: bool = True
) -> tuple[socket.socket, IpAddress]:
    """TCP to the first address that accepts; each attempt may take `timeout`. Without
    `head_start_allowed` (pinned addresses: a kill switch is on) always a new connection."""
    errors: list[OSError] = []
    for family, sockaddr in addresses:
        try:
            opener = head_start.connect if head_start_allowed else head_start.new_connection  # the command line's head start, or a new connection
            sock = opener(family, sockaddr, timeout)
        except OSError as error:
            errors.append(error)
            continue
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # SSTP frames are latency-bound
            return sock, ipaddress.ip_address(sockaddr[0])
        except OSError as error:
            sock.close()
            errors.append(error)
    # Several addresses: name the failure that tells the user most (refused beats timed out, ...).
    most_telling = min(errors, key=lambda e: _ERROR_RANK[_connect_error_kind(e)])
    raise endpoint.connect_failed(most_telling, timeout)


def open_stream(settings: TransportSettings) -> tuple[socket.socket, IpAddress]:
    """A byte stream to the server (direct TCP, or a proxy tunnel) and the address our TCP goes to."""
    stream = open_candidates(settings)
    return stream.sock, stream.address


@dataclass
class Stream:
    """A byte stream to the server and how it was reached."""

    sock: socket.socket
    address: IpAddress  # where our TCP connection goes: the route target
    proxy: ProxySettings | None  # the proxy it goes through, None: directly
    decision: ProxyDecision | None = None  # the PAC's decision, when there is one
    passed_over: list[tuple[ProxySettings | None, str]] = field(default_factory=list)  # dead candidates before it, and why

    def describe(self) -> str:
        """pac.describe()'s line for the way taken; "" without a PAC."""
        return "" if self.decision is None else describe_decision(self.decision, self.proxy, self.passed_over)


def proxy_candidates(settings: TransportSettings) -> tuple[list[ProxySettings | None], ProxyDecision | None]:
    """The ways to try in order (None: directly) and the PAC's decision (None without a PAC).
    Fetching and running the PAC file is time-boxed by `settings.pac.timeout`. Raises TransportError."""
    if settings.pac is None:
        return [settings.proxy], None
    try:
        decision = decide(settings.pac, settings.host, settings.port)
    except PacError as error:
        raise TransportError(Failure(Layer.PROXY, str(error), FailureKind.UNREACHABLE)) from None
    return list(decision.candidates), decision


def _dead_phrase(error: TransportError, timeout: float) -> str:
    """Why a candidate was passed over, as a short phrase after its name ("PROXY a:3128: …")."""
    phrases = {
        "resolve": _("its name does not resolve"),
        "refused": _("refused the connection"),
        "timeout": _("did not answer within {duration}").format(duration=duration(timeout)),
        "unreachable": _("cannot be reached from this network"),
    }
    return phrases.get(error.connect_kind, _("cannot be connected to"))


def open_candidates(settings: TransportSettings) -> Stream:
    """`open_stream` that tells which way worked. A candidate whose name does not resolve or whose
    TCP connection fails passes the turn to the next; an answer from a proxy (a tunnel, or a refusal
    such as 407 or 403) ends the search. When every candidate is dead the sentence names them all."""
    ways, decision = proxy_candidates(settings)
    way, (sock, address), passed_over = first_live_way(settings, ways, decision, lambda way: _open_way(settings, way))
    return Stream(sock, address, way, decision, passed_over)


T = TypeVar("T")


def first_live_way(
    settings: TransportSettings, ways: list[ProxySettings | None], decision: ProxyDecision | None, open_way: Callable[[ProxySettings | None], T]
) -> tuple[ProxySettings | None, T, list[tuple[ProxySettings | None, str]]]:
    """(the first of `ways` that `open_way` opens, what it gave, the dead ones before it and why).
    `open_way` raises DeadWay for a way that cannot be reached, which passes the turn to the next.
    Raises TransportError: the only way's own, or one sentence naming every way tried."""
    passed_over: list[tuple[ProxySettings | None, str]] = []
    for way in ways:
        try:
            return way, open_way(way), passed_over
        except DeadWay as dead:
            if len(ways) == 1:
                raise dead.error from None
            passed_over.append((way, _dead_phrase(dead.error, settings.timeout)))
            log.info("%s: %s", candidate_label(way), dead.error.failure.reason)
    assert decision is not None  # several ways come only from a PAC
    attempts = "; ".join(f"{candidate_label(way)}: {why}" for way, why in passed_over)
    raise TransportError(
        Failure(
            Layer.PROXY,
            _(
                "No way to {server} that the proxy auto-config file {url} gives could be opened ({attempts}): check your network "
                "connection, or ask the administrator of the proxy auto-config file."
            ).format(server=settings.server, url=decision.pac_url, attempts=attempts),
            FailureKind.UNREACHABLE,
        )
    )


class DeadWay(Exception):
    """A candidate that could not be reached (its name or its TCP connection)."""

    def __init__(self, error: TransportError) -> None:
        super().__init__(error.failure.reason)
        self.error = error


def reach_way(settings: TransportSettings, way: ProxySettings | None) -> tuple[socket.socket, IpAddress, list[tuple[int, tuple]]]:
    """TCP to the server (way None) or to the proxy `way`: (socket, its address, the addresses the
    name resolved to). Raises DeadWay when the name does not resolve or no address accepts."""
    endpoint = Endpoint("server", settings.host, settings.port) if way is None else Endpoint("proxy", way.host, way.port)
    pinned = bool(settings.resolved) and settings.pac is None and way == settings.proxy
    try:
        addresses = pinned_addresses(endpoint, settings.resolved) if pinned else resolve(endpoint)
        sock, address = connect_first(endpoint, addresses, settings.timeout, head_start_allowed=not pinned)
    except TransportError as error:
        raise DeadWay(error) from None
    return sock, address, addresses


def _open_way(settings: TransportSettings, proxy: ProxySettings | None) -> tuple[socket.socket, IpAddress]:
    """A byte stream to the server directly (proxy None) or through `proxy`. Raises DeadWay when
    the server or proxy cannot be reached, TransportError when the proxy refuses."""
    sock, address, addresses = reach_way(settings, proxy)
    if proxy is None:
        return sock, address
    endpoint = Endpoint("proxy", proxy.host, proxy.port)
    # A retry after "407, Connection: close" goes to the same proxy address, without resolving again.
    same_address = [entry for entry in addresses if ipaddress.ip_address(entry[1][0]) == address]

    def reconnect() -> socket.socket:
        return connect_first(endpoint, same_address, settings.timeout, head_start_allowed=not settings.resolved)[0]

    try:
        tunnel = open_tunnel(sock, reconnect, proxy, settings.host, settings.port, settings.timeout)
    except ProxyError as error:
        raise TransportError(error.failure) from None
    return tunnel.sock, address


def make_context(settings: TransportSettings) -> ssl.SSLContext:
    try:
        return trust.verifying_context(settings.ca_file)
    except ssl.SSLError:
        # Translators: why a CA file cannot be read, in "Cannot read the CA certificate file {path} ({reason}): ..."
        why = _("it holds no PEM certificate")
    except OSError as error:
        why = error.strerror or str(error)
    raise TransportError(
        Failure(
            Layer.TLS,
            _("Cannot read the CA certificate file {path} ({reason}): check the CA file in the profile (--ca-file).").format(
                path=settings.ca_file, reason=why
            ),
            FailureKind.TRUST,
        )
    )


_NOT_TLS = {"WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE", "HTTP_REQUEST", "UNKNOWN_PROTOCOL"}
_OLD_TLS = {"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE"}


def tls_handshake(sock: socket.socket, settings: TransportSettings, context: ssl.SSLContext) -> ssl.SSLSocket:
    """Wrap `sock` and complete the handshake; the chain is verified by `context`. Raises
    TransportError (and closes the socket) on failure."""
    server = settings.server
    tls = context.wrap_socket(sock, server_hostname=settings.sni_to_send, do_handshake_on_connect=False)
    try:
        tls.settimeout(settings.timeout)
        tls.do_handshake()
        return tls
    except ssl.SSLCertVerificationError as error:
        # On Linux OpenSSL keeps the peer chain after a failed verification; it lets the sentence
        # name the expired certificate and its date. On Windows and macOS truststore has already
        # closed the socket: the chain is [] and the sentence quotes the OS's own message.
        reason = trust.verification_sentence(error, trust.peer_chain(tls))
        tls.close()
        raise CertificateRejected(Failure(Layer.TLS, reason, FailureKind.TRUST)) from None
    except ssl.SSLError as error:
        code = error.reason or ""
        words = code.lower().replace("_", " ")  # OpenSSL's reason, not translated
        if isinstance(error, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            reason = _("The connection to {server} was closed during the TLS handshake: check that the port is the server's HTTPS port.").format(
                server=server
            )
        elif code in _NOT_TLS:
            reason = _("The server {server} did not answer with TLS ({reason}): check that the port is the server's HTTPS port.").format(
                server=server, reason=words
            )
        elif code in _OLD_TLS:
            reason = _("The server {server} does not offer TLS 1.2 or 1.3 ({reason}): ask its administrator to enable TLS 1.2 or later.").format(
                server=server, reason=words
            )
        else:
            reason = _("The TLS handshake with {server} failed ({reason}): check that the port is the server's HTTPS port.").format(
                server=server, reason=words or error
            )
        raise _tls_failure(tls, reason, FailureKind.TRUST) from None
    except TimeoutError:
        raise _tls_failure(
            tls,
            _("The server {server} did not complete the TLS handshake within {duration}: check that the port is the server's HTTPS port.").format(
                server=server, duration=duration(settings.timeout)
            ),
            FailureKind.UNREACHABLE,
        ) from None
    except OSError as error:
        raise _tls_failure(
            tls,
            _("The connection to {server} failed during the TLS handshake ({reason}): check your network connection.").format(
                server=server, reason=error.strerror or error
            ),
            FailureKind.UNREACHABLE,
        ) from None
    except BaseException:
        tls.close()
        raise


def verified_handshake(
    sock: socket.socket, settings: TransportSettings, context: ssl.SSLContext, reopen: Callable[[], socket.socket]
) -> ssl.SSLSocket:
    """The handshake a session makes: `tls_handshake` with the verifying `context`, except with a
    pin, or where the CA file holds self-signed server certificates the system verifier never sees
    (`trust.leaf_anchors`: Windows and macOS). Then the handshake runs with verification off first:
    if the server presents exactly the pinned certificate or one of those, that connection stands,
    whoever issued it (its dates are checked here, the name, usage and pin by the caller, before
    anything is sent). A pinned profile whose server presents another certificate is refused at once
    with the pin's sentence (the certificate changed). Otherwise the look-only connection is closed,
    having carried nothing but the handshake, and a new stream from `reopen` is verified by `context`.
    Raises TransportError (CertificateRejected for a refused certificate)."""
    anchors = trust.leaf_anchors(settings.ca_file)
    pin = settings.pin
    if anchors or pin is not None:
        tls = tls_handshake(sock, settings, trust.inspecting_context())
        presented = trust.peer_chain(tls)[:1]
        if presented and (presented[0] in anchors or trust.leaf_matches_pin(presented[0], pin)):
            problem = trust.anchored_leaf_problem(presented[0])
            if problem is None:
                return tls
            tls.close()
            raise CertificateRejected(Failure(Layer.TLS, problem, FailureKind.TRUST))
        tls.close()
        changed = trust.pin_problem(presented[0], pin) if presented else None
        if changed is not None:
            raise CertificateRejected(Failure(Layer.TLS, changed, FailureKind.TRUST))
        sock = reopen()
    return tls_handshake(sock, settings, context)


def _tls_failure(tls: ssl.SSLSocket, reason: str, kind: FailureKind) -> TransportError:
    tls.close()
    return TransportError(Failure(Layer.TLS, reason, kind))


def revocation_check(tls: ssl.SSLSocket, settings: TransportSettings) -> RevocationResult:
    """The chain's revocation check (OCSP, then the CRL: revocation.py), after every other check and
    before anything is sent. Raises TransportError when the certificate is revoked, or when the
    check cannot be done and the profile's revocation setting is hard."""
    chain, presented = trust.peer_chain(tls, verified=True), trust.peer_chain(tls)
    result = check_connection(chain, presented, settings.revocation, authorities=trusted_authorities(settings.ca_file) if len(chain) < 2 else ())
    if result.refusal is not None:
        raise TransportError(Failure(Layer.TLS, result.refusal, FailureKind.TRUST))
    return result


def certificate_problem(leaf_der: bytes | None, settings: TransportSettings) -> str | None:
    """Checks after the chain is trusted: the name, the server-auth usage, the pin."""
    if not leaf_der:
        return _("The server sent no certificate: it cannot prove who it is. Check the server address.")
    cert = trust.load_certificate(leaf_der)
    return trust.server_name_problem(cert, settings.expected_name) or trust.usage_problem(cert) or trust.pin_problem(leaf_der, settings.pin)
