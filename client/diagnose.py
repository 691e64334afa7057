"""`sstp-vpn diagnose`: walk every step to the server, and say how each went; with credentials,
sign in and out again (the Sign-in step, below).

Steps, each timed: Proxy choice (with a PAC file, or where the system's proxy comes from), DNS,
TCP, Proxy (when one is used), TLS, Certificate chain, Name, Trust, Revocation, SSTP.
The chain is shown even when the server is not trusted: then a second connection is opened with
verification switched off, ONLY to read the certificates; nothing but close_notify is ever sent on
it. On Windows and macOS that second connection is the only way to see the chain: truststore
closes the rejected one. Python 3.11 has no public API for the peer chain (3.13 adds
get_verified_chain / get_unverified_chain); the same methods exist on the internal `_sslobj` and
are used through `trust.peer_chain`, falling back to the leaf alone if they are missing. The TLS
step connects as a session does (`transport.verified_handshake`), so a self-signed certificate
given as the CA file is trusted on Windows and macOS as it is on Linux.

The SSTP step sends the SSTP_DUPLEX_POST request (no credentials) and reads the reply's headers
through sstp_http, which judges them as a session does. It runs only over a connection that passed
every check, like a real session would.

Proxy choice: with a proxy auto-config (`settings.pac`) the PAC file is fetched (or found by WPAD)
and run, and its candidates are tried in order as a connection does (transport.open_candidates: one
whose name does not resolve or whose TCP connection fails passes the turn to the next); the steps
after it go the way found. `proxy_origin` (system_proxy.SystemProxy.describe) says where the
system's proxy setting came from.

Revocation: the verified chain's revocation check (revocation.py: OCSP, then the CRL) as a session
makes it, with the profile's policy: a revoked certificate fails the step, and so does "cannot
tell" with `revocation` hard; with soft, the step passes with the warning.

With credentials (`sign_in_as`, from `--user` or the editor's user name and password) a Sign-in
step follows a passed SSTP step: a new connection signs in (SSTP + PPP authentication and the
crypto binding) and disconnects cleanly before IPCP (sign_in.py), so nothing changes on the machine.
"""

from __future__ import annotations

import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import TextIO

from . import trust
from .core.engine import EngineSettings
from .core.i18n import _
from .core.sstp_http import HttpRefused, HttpReply, ReplyReader, build_request
from .core.types import Failure, FailureKind, Layer
from .pac import describe as describe_decision
from .profiles import Revocation
from .proxy import ProxyError, ProxySettings, authority, duration, open_tunnel
from .revocation import check_connection, trusted_authorities
from .sign_in import sign_in
from .system_proxy import SystemProxyError, system_proxy_for
from .transport import (
    CertificateRejected,
    Endpoint,
    TransportError,
    TransportSettings,
    connect_first,
    first_live_way,
    make_context,
    proxy_candidates,
    reach_way,
    resolve,
    tls_handshake,
    verified_handshake,
)

SIGN_IN = "Sign-in"  # the steps' names are identifiers; step_title() is what the user reads
PROXY_CHOICE = "Proxy choice"
REVOCATION = "Revocation"
SstpProbe = Callable[[ssl.SSLSocket, str], HttpReply]  # raises sstp_http.HttpRefused


@dataclass(frozen=True)
class DiagnoseStep:
    name: str
    ok: bool
    details: tuple[str, ...]
    seconds: float
    failure: Failure | None = None  # set when not ok
    summary: str = ""  # the Result sentence of a passed Sign-in step


@dataclass(frozen=True)
class DiagnoseReport:
    server: str
    steps: tuple[DiagnoseStep, ...]

    @property
    def would_connect(self) -> bool:
        """True only if every step passed, up to and including the SSTP request."""
        return any(step.name == "SSTP" for step in self.steps) and all(step.ok for step in self.steps)

    @property
    def signed_in(self) -> DiagnoseStep | None:
        """The Sign-in step when it passed (credentials were given and the server accepted them)."""
        return next((step for step in self.steps if step.name == SIGN_IN and step.ok), None)

    @property
    def failure(self) -> Failure | None:
        return next((step.failure for step in self.steps if not step.ok), None)

    @property
    def failure_kind(self) -> FailureKind | None:
        failure = self.failure
        return failure.kind if failure is not None else None


def step_title(name: str) -> str:
    """A step's name as the report shows it (protocol names stay as they are)."""
    titles = {
        # Translators: a diagnose step: reading the CA certificate file
        "CA file": _("CA file"),
        # Translators: a diagnose step: the HTTP proxy
        "Proxy": _("Proxy"),
        # Translators: a diagnose step: the server's certificates
        "Certificate chain": _("Certificate chain"),
        # Translators: a diagnose step: the server's name against its certificate
        "Name": _("Name"),
        # Translators: a diagnose step: whether the certificate is trusted
        "Trust": _("Trust"),
        # Translators: a diagnose step: signing in with the user name and password
        SIGN_IN: _("Sign-in"),
        # Translators: a diagnose step: which proxy (or none) the proxy auto-config file or the system's settings give
        PROXY_CHOICE: _("Proxy choice"),
        # Translators: a diagnose step: whether the server's certificates were revoked (CRL, OCSP)
        REVOCATION: _("Revocation"),
    }
    return titles.get(name, name)


def sstp_reply(sock: ssl.SSLSocket, host: str) -> HttpReply:
    """Send the SSTP HTTP request ([MS-SSTP] 3.2.4.1) and read the reply's headers. Raises
    HttpRefused for anything a session would not accept."""
    connection, request = build_request(host, uuid.uuid4())
    reader = ReplyReader(connection, host)
    sock.sendall(request)
    while (reply := reader.feed(sock.recv(4096))) is None:
        pass
    return reply


class _Clock:
    """Times one step at a time."""

    def __init__(self) -> None:
        self.steps: list[DiagnoseStep] = []
        self._started = time.monotonic()

    def start(self) -> None:
        self._started = time.monotonic()

    def passed(self, name: str, *details: str) -> None:
        self.steps.append(DiagnoseStep(name, True, tuple(details), time.monotonic() - self._started))

    def failed(self, name: str, failure: Failure, *details: str) -> None:
        self.steps.append(DiagnoseStep(name, False, tuple(details) + (failure.reason,), time.monotonic() - self._started, failure))


def diagnose(
    settings: TransportSettings, sstp_probe: SstpProbe | None = None, sign_in_as: EngineSettings | None = None, proxy_origin: str = ""
) -> DiagnoseReport:
    """Every step to the server; with `sign_in_as`, then the Sign-in step (only after the SSTP
    step passed: signing in to a server that failed a check would send it the credentials).
    `proxy_origin`: the sentence saying where the system's proxy setting came from, if it did."""
    clock = _Clock()
    sockets: list[socket.socket] = []
    try:
        chosen = _proxy_choice(settings, proxy_origin, clock)
        if chosen is not None:
            _run(chosen, sstp_probe or sstp_reply, clock, sockets)
    finally:
        for sock in sockets:
            sock.close()
    if sign_in_as is not None and clock.steps and clock.steps[-1].name == "SSTP" and all(step.ok for step in clock.steps):
        _sign_in_step(settings, sign_in_as, clock)
    return DiagnoseReport(settings.server, tuple(clock.steps))


def _sign_in_step(settings: TransportSettings, engine: EngineSettings, clock: _Clock) -> None:
    clock.start()
    result = sign_in(settings, engine)
    if result.signed_in is None:
        assert result.failure is not None
        return clock.failed(SIGN_IN, result.failure, _("user: {user}").format(user=engine.credentials.username))
    clock.passed(
        SIGN_IN,
        _("the server accepted {user} with {method}; crypto binding sent").format(user=result.signed_in.username, method=result.signed_in.method),
        _("disconnected before IPv4 configuration (IPCP): no address, route or DNS server was set"),
    )
    clock.steps[-1] = replace(clock.steps[-1], summary=result.sentence)


def system_proxy_origin(host: str, port: int = 443, environ: Mapping[str, str] | None = None) -> str:
    """Where the system's proxy setting for https://host:port comes from, for the Proxy choice step
    of a profile (or `diagnose --proxy system`) that uses the system's proxy."""
    try:
        return system_proxy_for(host, port, environ=environ).describe(host)
    except SystemProxyError as error:
        return str(error)


def _proxy_choice(settings: TransportSettings, proxy_origin: str, clock: _Clock) -> TransportSettings | None:
    """The Proxy choice step: the settings to go on with (the PAC's candidate that answers, as
    `proxy`), or None when the step failed."""
    if settings.pac is None and not proxy_origin:
        return settings
    clock.start()
    details = [proxy_origin] if proxy_origin else []
    if settings.pac is None:
        clock.passed(PROXY_CHOICE, *details)
        return settings
    try:
        ways, decision = proxy_candidates(settings)  # fetches (or finds) and runs the PAC file, time-boxed
    except TransportError as error:
        clock.failed(PROXY_CHOICE, error.failure, *details)
        return None
    assert decision is not None

    def tcp_only(way: ProxySettings | None) -> None:  # the later steps open their own connection
        reach_way(settings, way)[0].close()

    try:
        way, _reached, passed_over = first_live_way(settings, ways, decision, tcp_only)  # as a connection tries them
    except TransportError as error:
        clock.failed(PROXY_CHOICE, error.failure, *details, describe_decision(decision))
        return None
    clock.passed(PROXY_CHOICE, *details, describe_decision(decision, way, passed_over))
    return replace(settings, proxy=way, pac=None)


def _run(settings: TransportSettings, probe: SstpProbe, clock: _Clock, sockets: list[socket.socket]) -> None:
    proxy = settings.proxy
    if settings.ca_file is not None:
        clock.start()
        try:
            context = make_context(settings)
        except TransportError as error:
            return clock.failed("CA file", error.failure)
        clock.passed("CA file", _("also trusting the CA certificates in {path}").format(path=settings.ca_file))
    else:
        context = make_context(settings)

    # DNS: with a proxy, only the proxy's name is resolved here.
    endpoint = Endpoint("proxy", proxy.host, proxy.port) if proxy else Endpoint("server", settings.host, settings.port)
    clock.start()
    try:
        addresses = resolve(endpoint)
    except TransportError as error:
        return clock.failed("DNS", error.failure)
    details = [f"{endpoint.host}: {', '.join(str(sockaddr[0]) for _family, sockaddr in addresses)}"]
    if proxy:
        details.append(_("{host} is resolved by the proxy").format(host=settings.host))
    clock.passed("DNS", *details)

    def tcp() -> tuple[socket.socket, object]:
        sock, address = connect_first(endpoint, addresses, settings.timeout)
        sockets.append(sock)
        return sock, address

    clock.start()
    try:
        raw, address = tcp()
    except TransportError as error:
        return clock.failed("TCP", error.failure)
    where = authority(str(address), endpoint.port)
    if proxy:
        clock.passed("TCP", _("connected to {address} (the proxy)").format(address=where))
    else:
        clock.passed("TCP", _("connected to {address}").format(address=where))

    def tunnel(sock: socket.socket) -> tuple[socket.socket, str, str]:
        if proxy is None:
            return sock, "", ""
        opened = open_tunnel(sock, lambda: tcp()[0], proxy, settings.host, settings.port, settings.timeout)
        sockets.append(opened.sock)
        if not opened.authenticated:
            return opened.sock, opened.status_line, _("no authentication was needed")
        # Translators: {method} is "Basic", "NTLM", "Negotiate (Kerberos)" or "Negotiate (NTLM)"
        return opened.sock, opened.status_line, _("authenticated as {user} with {method}").format(user=opened.user, method=opened.method)

    if proxy:
        clock.start()
        try:
            raw, status_line, who = tunnel(raw)
        except (ProxyError, TransportError) as error:
            return clock.failed("Proxy", error.failure)
        clock.passed(
            "Proxy",
            f"CONNECT {settings.server}: {status_line}",  # not translated: the HTTP request and the proxy's reply
            who,
        )

    # TLS with full verification, the way a session connects.
    clock.start()
    trust_failure: Failure | None = None
    verified: ssl.SSLSocket | None = None
    anchors = trust.leaf_anchors(settings.ca_file)  # only on Windows/macOS: see trust.leaf_anchors
    try:
        verified = verified_handshake(raw, settings, context, lambda: tunnel(tcp()[0])[0])
        sockets.append(verified)
        shown = verified
        chain = trust.peer_chain(verified, verified=True) or trust.peer_chain(verified)
    except CertificateRejected as error:
        trust_failure = error.failure
        try:  # a look-only second connection, to show what the server presents
            inspect_raw, _address = tcp()
            inspect_raw, _status, _who = tunnel(inspect_raw)
            shown = tls_handshake(inspect_raw, settings, trust.inspecting_context())
            sockets.append(shown)
            chain = trust.peer_chain(shown)
        except (TransportError, ProxyError):
            return clock.failed("TLS", trust_failure)
    except (TransportError, ProxyError) as error:
        return clock.failed("TLS", error.failure)
    cipher = shown.cipher()
    clock.passed(
        "TLS",
        f"{shown.version()}, {cipher[0] if cipher else _('unknown cipher')}",
        _("server name sent (SNI): {name}").format(name=settings.sni_to_send or _("(none)")),
    )
    if shown is not verified:
        shown.close()  # only close_notify goes over the look-only connection

    clock.start()
    if not chain:
        return clock.failed(
            "Certificate chain",
            Failure(Layer.TLS, _("The server sent no certificate: it cannot prove who it is. Check the server address."), FailureKind.TRUST),
        )
    clock.passed("Certificate chain", *_chain_lines(chain))

    clock.start()
    leaf = trust.load_certificate(chain[0])
    names = trust.certificate_names(leaf).presented()
    name_details = (
        _("expected: {name}").format(name=settings.expected_name),
        _("certificate names: {names}").format(names=", ".join(names) or _("(none)")),
    )
    problem = trust.server_name_problem(leaf, settings.expected_name)
    if problem:
        clock.failed("Name", Failure(Layer.TLS, problem, FailureKind.TRUST), *name_details)
    else:
        clock.passed("Name", *name_details)

    clock.start()
    trust_details = []
    if trust_failure is None:
        if chain[0] in anchors:
            trust_details.append(_("the server presented exactly the self-signed certificate in {path}").format(path=settings.ca_file))
        elif trust.leaf_matches_pin(chain[0], settings.pin):  # trusted as it stands: transport.verified_handshake
            trust_details.append(_("the server presented exactly the pinned certificate"))
        elif settings.ca_file:
            trust_details.append(_("the chain leads to an authority trusted by the system trust store or {path}").format(path=settings.ca_file))
        else:
            trust_details.append(_("the chain leads to an authority trusted by the system trust store"))
        trust_problem = trust.usage_problem(leaf)
        if trust_problem is None:
            trust_details.append(_("the certificate may identify a TLS server"))
            trust_problem = trust.pin_problem(chain[0], settings.pin)
            if trust_problem is None:
                trust_details.append(_("its SHA-256 fingerprint matches the pin") if settings.pin else _("no fingerprint is pinned"))
        if trust_problem:
            trust_failure = Failure(Layer.TLS, trust_problem, FailureKind.TRUST)
    if trust_failure is not None:
        return clock.failed("Trust", trust_failure, *trust_details)
    clock.passed("Trust", *trust_details)
    if problem or verified is None:
        return

    clock.start()  # as a session does: after every other check, before anything is sent
    verified_chain, presented = trust.peer_chain(verified, verified=True), trust.peer_chain(verified)
    authorities = trusted_authorities(settings.ca_file) if len(verified_chain) < 2 else ()  # as transport.revocation_check
    checked = check_connection(verified_chain, presented, settings.revocation, authorities=authorities)
    if settings.revocation is Revocation.HARD:
        policy = _("if revocation cannot be checked: refuse to connect (hard)")
    else:
        policy = _("if revocation cannot be checked: connect and warn (soft)")
    if checked.refusal is not None:
        return clock.failed(REVOCATION, Failure(Layer.TLS, checked.refusal, FailureKind.TRUST), *checked.lines(), policy)
    clock.passed(REVOCATION, *checked.lines(), policy, *([checked.warning] if checked.warning else []))

    clock.start()
    try:
        reply = probe(verified, settings.http_host)
    except HttpRefused as refusal:
        if refusal.reply is None:  # no reply, or not one a session could use
            return clock.failed("SSTP", Failure(Layer.HTTP, str(refusal), FailureKind.PROTOCOL))
        line = refusal.reply.status_line
        return clock.failed(
            "SSTP",
            Failure(
                Layer.HTTP,
                _(
                    'The server {server} answered the SSTP request with "{reply}": '
                    "check that SSTP is enabled on the server and that the port is right."
                ).format(server=settings.server, reply=line),
                FailureKind.PROTOCOL,
            ),
            _("reply: {reply}").format(reply=line),
        )
    except TimeoutError:
        return clock.failed(
            "SSTP",
            Failure(
                Layer.HTTP,
                _("The server {server} did not answer the SSTP request within {duration}: it may not be an SSTP server.").format(
                    server=settings.server, duration=duration(settings.timeout)
                ),
                FailureKind.PROTOCOL,
            ),
        )
    except (OSError, ssl.SSLError) as error:
        return clock.failed(
            "SSTP",
            Failure(
                Layer.HTTP,
                _("The connection to {server} failed during the SSTP request ({reason}): check the server and your network.").format(
                    server=settings.server, reason=error.strerror or error
                ),
                FailureKind.PROTOCOL,
            ),
        )
    clock.passed("SSTP", _("reply: {reply}").format(reply=reply.status_line))


def _chain_lines(chain: list[bytes]) -> Iterator[str]:
    for position, der in enumerate(chain):
        if position == 0:
            yield _("certificate {number} (server):").format(number=position + 1)
        else:
            yield _("certificate {number} (issuer):").format(number=position + 1)
        try:
            facts = trust.describe_certificate(der)
        except ValueError as error:
            yield "  " + _("unreadable ({reason})").format(reason=error)
            continue
        for line in facts.lines():
            yield "  " + line


def print_report(report: DiagnoseReport, stream: TextIO) -> None:
    """Plain-text rendering for the command line (the CLI may replace it with its own)."""
    for step in report.steps:
        # Translators: diagnose, the state of a step (right-aligned in six columns)
        state = _("ok") if step.ok else _("FAILED")
        milliseconds = f"{step.seconds * 1000:.0f} ms"  # not translated: a number and its unit
        print(f"{state:>6}  {step_title(step.name)} ({milliseconds})", file=stream)
        for line in step.details:
            print(f"        {line}", file=stream)
    signed_in = report.signed_in
    if report.would_connect and signed_in is not None:
        print(_("Result: {result}").format(result=signed_in.summary), file=stream)
    elif report.would_connect:
        print(_("Result: SSTP VPN can reach the SSTP service at {server}.").format(server=report.server), file=stream)
    elif report.failure is not None:
        print(_("Result: {result}").format(result=report.failure.reason), file=stream)
