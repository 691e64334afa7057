"""EngineRunner: one thread that drives the sans-IO engine over real I/O.

One `selectors` loop over the TLS socket, the tunnel device and a wake-up socket pair. After each
wake-up it does four steps in order: flush output, deliver packets, handle events, re-arm the
timer. Commands come in through `submit()`; immutable `Status` snapshots go out to a listener.
The command line and the tray app both use it.
"""

from __future__ import annotations

import logging
import queue
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Network, IPv6Network, ip_address

from sstpvpn.platform import current
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.interfaces import NetConfigurator, TunDevice
from sstpvpn.platform.route_watch import source_address_usable

from .core.dhcpv6 import Dhcpv6Info
from .core.engine import Engine, EngineSettings
from .core.events import (
    Dhcpv6Answered,
    Disconnected,
    LinkConfigured,
    LogRecord,
    NetworkPushed,
    PasswordRetryRequested,
    RouterAdvertisedDns,
    StateChanged,
)
from .core.i18n import _
from .core.types import Failure, FailureKind, KillSwitchMode, Layer, NetworkPlan, PushedSettings, State, Status
from .sleep_watch import SLEEP_CHECK_SECONDS, SleepWatch, slept_failure
from .transport import TlsConnection, TransportError, TransportSettings, open_connection

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024  # one TLS read takes many SSTP packets at once
TUN_BATCH = 256  # packets read from the device per wake-up
MAX_PENDING = 4 * 1024 * 1024  # stop reading the device while this much waits for the socket
FINAL_FLUSH_SECONDS = 2.0
ROAMING_PROBE_SECONDS = 15.0  # after a network change: keepalives and a short TCP user timeout ...
ROAMING_USER_TIMEOUT_MS = 4000  # ... so a connection that lost its path ends within seconds


@dataclass(frozen=True)
class NetworkOptions:
    full_tunnel: bool = True
    ifname: str | None = None
    extra_routes: tuple[IPv4Network | IPv6Network, ...] = ()  # through the tunnel as well
    use_vpn_dns: bool = True
    kill_switch: KillSwitchMode = KillSwitchMode.OFF  # carried out by SessionDriver, not the runner
    kill_switch_allow_lan: bool = False


@dataclass(frozen=True)
class Connect:
    transport: TransportSettings
    engine: EngineSettings
    network: NetworkOptions = field(default_factory=NetworkOptions)


@dataclass(frozen=True)
class Disconnect:
    pass


@dataclass(frozen=True)
class Shutdown:
    pass


@dataclass(frozen=True)
class FollowRoute:
    """The network changed while connected (roaming): move the host route to the server along,
    end the session at once if the connection's source address is gone, else watch the TCP
    connection closely for a while (ROAMING_PROBE_SECONDS) so that a dead one ends soon."""


@dataclass(frozen=True)
class RetryPassword:
    """The answer to `on_password_retry`: a new password, or None to give up."""

    password: str | None = field(repr=False)


Command = Connect | Disconnect | Shutdown | RetryPassword | FollowRoute


class EngineRunner(threading.Thread):
    def __init__(
        self,
        on_status: Callable[[Status], None],
        on_log: Callable[[LogRecord], None] = lambda record: None,
        on_password_retry: Callable[[str], None] | None = None,
    ) -> None:
        """`on_password_retry(reason)` is called (on the runner thread; it must not block) when
        the server refused the password but allows another try; answer with
        `submit(RetryPassword(...))`. Without it such a refusal ends the session at once."""
        super().__init__(name="sstp-engine", daemon=True)
        self._on_status = on_status
        self._on_log = on_log
        self._on_password_retry = on_password_retry
        self._commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._status = Status(State.IDLE)
        self._told: set[str] = set()  # the warnings and errors logged in this session

    # -- any thread ------------------------------------------------------------------------

    def submit(self, command: Command) -> None:
        self._commands.put(command)
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # the runner has finished

    # -- runner thread ---------------------------------------------------------------------

    def run(self) -> None:
        try:
            while True:
                command = self._commands.get()
                if isinstance(command, Shutdown):
                    return
                if isinstance(command, Connect):
                    self._session(command)
        finally:
            self._wake_r.close()
            self._wake_w.close()

    def _publish(self, **changes) -> None:
        self._status = replace(self._status, **changes)
        failure = self._status.failure
        if self._status.state is State.DISCONNECTED and failure is not None and failure.reason not in self._told:
            # Every session ends here with its Failure: its sentence goes to the log once (ERROR)
            # unless the engine or the runner logged it already, so the tray's Log window and the
            # recent log hold every failure (TCP, TLS, certificate ones too). The command line
            # prints only log lines below WARNING and tells the failure itself at the end.
            self._emit_log(logging.ERROR, failure.reason)
        self._on_status(self._status)

    def _emit_log(self, level: int, message: str) -> None:
        self._forward_log(LogRecord(level, message))

    def _forward_log(self, record: LogRecord) -> None:
        if record.level >= logging.WARNING:
            self._told.add(record.message)
        self._on_log(record)

    def _session(self, command: Connect) -> None:
        self._told = set()
        server = f"{command.transport.host}:{command.transport.port}"
        self._status = Status(State.HANDSHAKE, server=server)
        self._publish()
        # Routes that would capture a local network or the gateway (route_safety): say so before
        # connecting. The configurator checks again, with the address and peer, before any change.
        problem = current.route_problem_before_connecting(command.network.full_tunnel, command.network.extra_routes)
        if problem is not None:
            self._publish(state=State.DISCONNECTED, failure=Failure(Layer.NETWORK, problem, FailureKind.OTHER))
            return
        proxy = command.transport.proxy
        if proxy:
            connecting = _("Connecting to {server} through the proxy {proxy}.").format(server=server, proxy=f"{proxy.host}:{proxy.port}")
        else:
            connecting = _("Connecting to {server}.").format(server=server)
        self._emit_log(logging.INFO, connecting)
        try:
            connection = open_connection(command.transport)
        except TransportError as error:
            self._publish(state=State.DISCONNECTED, failure=error.failure)
            return
        if connection.proxy_decision:  # a proxy auto-config: which of its ways was taken
            self._emit_log(logging.INFO, connection.proxy_decision)
        self._emit_log(logging.INFO, _("TLS is up ({version}, {cipher}).").format(version=connection.tls_version, cipher=connection.cipher))
        self._status = replace(self._status, tls=f"{connection.tls_version}, {connection.cipher}")
        if connection.revocation is not None:
            checked = connection.revocation
            # Translators: a log line; {summary} is e.g. "good (OCSP, http://ocsp.example.com)" or "not checked: ..."
            self._emit_log(logging.INFO, checked.warning or _("Certificate revocation: {summary}.").format(summary=checked.summary))
            self._status = replace(self._status, revocation=checked.summary)
        session = _Session(self, command, connection)
        try:
            failure = session.run()
        except Exception as error:  # our own bug: still restore the network and report it
            log.exception("engine runner failed")
            failure = Failure(
                Layer.RUNNER,
                _("SSTP VPN hit an internal error ({error}); please report it.").format(error=f"{type(error).__name__}: {error}"),
                FailureKind.OTHER,
            )
        finally:
            session.cleanup()
        self._publish(state=State.DISCONNECTED, failure=failure, connected_at=None)


def _tls_broken(server: str, error: ssl.SSLError) -> Failure:
    return Failure(
        Layer.TLS,
        _(
            "The encrypted connection to {server} broke ({reason}): data was changed on "
            "the way, by a faulty network device or a program that intercepts HTTPS. Connect again; if it keeps "
            "happening, try another network."
        ).format(server=server, reason=error.reason or error),
        FailureKind.PROTOCOL,
    )


class _Session:
    """One connection: the loop between engine, socket and tunnel device."""

    def __init__(self, runner: EngineRunner, command: Connect, connection: TlsConnection) -> None:
        self.runner = runner
        self.command = command
        self.connection = connection
        self.sock: ssl.SSLSocket = connection.sock
        proxy = command.transport.proxy
        self.engine = Engine(replace(command.engine, proxy=f"{proxy.host}:{proxy.port}") if proxy else command.engine)
        self.selector = selectors.DefaultSelector()
        self.pending = bytearray()
        self.tun: TunDevice | None = None
        self.configurator: NetConfigurator | None = None
        self.failure: Failure | None = None
        # Why the session ended when the engine only saw the effect: the network could not be set up,
        # the tunnel device vanished, TLS records were corrupted.
        self.cause: Failure | None = None
        self.finished = False
        self.tun_paused = False
        self.tun_lost = False  # the device failed (removed under us); the session is ending
        self.probe_until: float | None = None  # FollowRoute: the TCP connection is watched closely until then

    def run(self) -> Failure | None:
        engine = self.engine
        now = time.monotonic()
        engine.set_peer_certificate(self.connection.peer_certificate_der)
        engine.connect(now)
        self.sock.setblocking(False)
        self.selector.register(self.sock, selectors.EVENT_READ, "sock")
        self.selector.register(self.runner._wake_r, selectors.EVENT_READ, "wake")
        sleep_watch = SleepWatch()  # after a suspend the TLS connection is gone: do not wait for the echo timers
        sleep_failure: Failure | None = None
        while not self.finished:
            self._after_input()
            if self.finished:
                break
            deadline = engine.get_timer()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            timeout = SLEEP_CHECK_SECONDS if timeout is None else min(timeout, SLEEP_CHECK_SECONDS)
            if self.probe_until is not None:
                timeout = max(0.0, min(timeout, self.probe_until - time.monotonic()))
            for key, mask in self.selector.select(timeout):
                now = time.monotonic()
                if key.data == "sock":
                    if mask & selectors.EVENT_WRITE:
                        self._write_pending()
                    if mask & selectors.EVENT_READ:
                        self._read_socket(now)
                elif key.data == "tun" and self.tun is not None:
                    try:
                        packets = self.tun.read_packets(TUN_BATCH)
                    except PlatformError as error:  # e.g. the interface was deleted under us
                        self._tun_lost(error, now)
                        continue
                    if packets:
                        engine.receive_ip_packets(packets, now)
                elif key.data == "wake":
                    self._read_commands(now)
            slept = sleep_watch.slept()
            if slept is not None and sleep_failure is None:
                sleep_failure = slept_failure(slept)
                self.runner._emit_log(logging.WARNING, sleep_failure.reason)
                engine.connection_lost(time.monotonic())
            now = time.monotonic()
            if self.probe_until is not None and now >= self.probe_until:
                self.probe_until = None  # the connection survived the network change
                self._probe(0, keepalive=False)
            deadline = engine.get_timer()
            if deadline is not None and now >= deadline:
                engine.handle_timer(now)
        self._final_flush()
        return sleep_failure or self.failure

    def _after_input(self) -> None:
        engine = self.engine
        # 1. flush output
        data = engine.data_to_send()
        if data:
            self.pending += data
            self._write_pending()
        # 2. deliver packets
        packets = engine.packets_to_deliver()
        if packets and self.tun is not None and not self.tun_lost:
            try:
                self.tun.write_packets(packets)
            except PlatformError as error:
                self._tun_lost(error, time.monotonic())
        # 3. handle events
        answered = False  # the engine was given input here: its output must go out now
        while (event := engine.next_event()) is not None:
            if isinstance(event, LogRecord):
                self.runner._forward_log(event)
            elif isinstance(event, StateChanged):
                # CONNECTED is published once the network is set, DISCONNECTED once it is
                # restored and the failure is known (EngineRunner._session).
                if event.state not in (State.CONNECTED, State.DISCONNECTED):
                    self.runner._publish(state=event.state)
            elif isinstance(event, LinkConfigured):
                self._configure(event.plan)
            elif isinstance(event, NetworkPushed):
                self._add_pushed(event.settings)
            elif isinstance(event, Dhcpv6Answered | RouterAdvertisedDns):
                self._add_ipv6_dns(event.info, from_router=isinstance(event, RouterAdvertisedDns))
            elif isinstance(event, PasswordRetryRequested):
                if self.runner._on_password_retry is None:
                    engine.retry_password(None, time.monotonic())  # nobody to ask: the refusal stands
                    answered = True
                else:
                    self.runner._on_password_retry(event.reason)
            elif isinstance(event, Disconnected):
                self.failure = self.cause or event.failure
                self.finished = True
        # back-pressure: while the socket is behind, leave packets in the device's queue
        if self.tun is not None and not self.tun_lost:
            should_pause = len(self.pending) > MAX_PENDING
            if should_pause != self.tun_paused:
                self.tun_paused = should_pause
                if should_pause:
                    self.selector.unregister(self.tun)
                else:
                    self.selector.register(self.tun, selectors.EVENT_READ, "tun")
        if answered and not self.finished:
            self._after_input()

    def _configure(self, plan: NetworkPlan) -> None:
        if self.tun is not None:
            self._update_link(plan)
            return
        self.runner._emit_log(logging.DEBUG, f"IPCP is up: address {plan.address}.")  # before the tunnel's set-up (bench/connect_time.py)
        options = self.command.network
        if plan.address == ip_address(self.connection.route_target):
            # Routing it into the tunnel would cut the very connection the tunnel runs over.
            self.cause = Failure(
                Layer.IPCP,
                _(
                    "The server assigned this computer the address {address}, which is where "
                    "the VPN connection itself goes, so it cannot be used. Ask the server's administrator "
                    "to check the address pool."
                ).format(address=plan.address),
                FailureKind.PROTOCOL,
            )
            self.runner._emit_log(logging.ERROR, self.cause.reason)
            self.engine.disconnect(time.monotonic())
            return
        try:
            self.tun, make_configurator = current.open_tunnel(options.ifname)
            self.tun.set_mtu(plan.mtu)
            self.configurator = make_configurator(
                self.tun.name,
                ip_address(self.connection.route_target),
                full_tunnel=options.full_tunnel,
                extra_routes=options.extra_routes,
                use_vpn_dns=options.use_vpn_dns,
            )
            self.configurator.apply(plan)
        except PlatformError as error:  # tear the session down politely; cleanup() restores
            self.cause = error.to_failure()
            self.engine.disconnect(time.monotonic())
            self.runner._emit_log(logging.ERROR, error.sentence)
            return
        self.selector.register(self.tun, selectors.EVENT_READ, "tun")
        # Translators: in "DNS {dns}" of the "Tunnel ... is up" line, when the server offered no DNS server
        dns = ", ".join(map(str, plan.dns)) or _("none offered")
        # Translators: the {mode} of the "Tunnel ... is up" line: "routing all traffic" / "routing the VPN's network only"
        mode = _("all traffic") if options.full_tunnel else _("the VPN's network only")
        self.runner._emit_log(
            logging.INFO,
            _("Tunnel {interface} is up: address {address}, MTU {mtu}, DNS {dns}, routing {mode}.").format(
                interface=self.tun.name, address=plan.address, mtu=plan.mtu, dns=dns, mode=mode
            ),
        )
        self.runner._publish(
            state=State.CONNECTED,
            plan=plan,
            interface=self.tun.name,
            connected_at=time.monotonic(),
            route_target=str(self.connection.route_target),
            security=self.engine.security,
        )

    def _update_link(self, plan: NetworkPlan) -> None:
        """A new plan while the tunnel is up: IPV6CP opened late (SoftEther's comes seconds after
        IPCP) gives the tunnel its IPv6 link; anything else is only logged."""
        applied = self.runner._status.plan
        if plan.ipv6_identifier is None or applied is None or applied.ipv6_identifier is not None or self.configurator is None or self.tun_lost:
            self.runner._emit_log(logging.INFO, _("Link update: {plan}.").format(plan=plan))
            return
        try:
            self.configurator.add_ipv6_link(plan.ipv6_identifier)
        except PlatformError as error:  # IPv4 goes on: a note, not a failure
            self.runner._emit_log(logging.WARNING, error.sentence)
            return
        from sstpvpn.platform.routing_policy import link_local_address  # late: nothing before the first SYN imports it

        link_local = link_local_address(bytes(plan.ipv6_identifier))
        # Translators: {address} is the tunnel's IPv6 link-local address (fe80::...)
        self.runner._emit_log(
            logging.INFO, _("IPv6 is up: link-local address {address}; a global one comes from the VPN's router.").format(address=link_local)
        )
        self.runner._publish(plan=plan)

    def _add_ipv6_dns(self, info: Dhcpv6Info, from_router: bool = False) -> None:
        """What the VPN's DHCPv6 server or router advertisement named, added to the running tunnel
        like _add_pushed."""
        # Translators: stands for an empty list of servers or domains
        nothing = _("none")
        servers, domains = ", ".join(map(str, info.dns)) or nothing, ", ".join(info.search) or nothing
        if from_router:
            told = _("The VPN's router advertised the DNS servers {servers} and DNS domains {domains}.")
        else:
            told = _("The VPN's DHCPv6 server named the DNS servers {servers} and DNS domains {domains}.")
        self.runner._emit_log(logging.INFO, told.format(servers=servers, domains=domains))
        if self.tun_lost or self.configurator is None or not info:
            return
        try:
            notes = self.configurator.add_ipv6_dns(info.dns, info.search)
        except PlatformError as error:
            notes = [error.sentence]
        for note in notes:
            self.runner._emit_log(logging.INFO, note)

    def _add_pushed(self, pushed: PushedSettings) -> None:
        """What the VPN's DHCP server sent, added to the running tunnel; a problem is logged, the
        connection stays (it works as it did before the answer came)."""
        # Translators: stands for an empty list of routes or DNS domains in "sent routes none and DNS domains none"
        nothing = _("none")
        routes = ", ".join(map(str, pushed.routes)) or nothing
        names = ", ".join(name for name in (pushed.domain, *pushed.search) if name) or nothing
        self.runner._emit_log(
            logging.INFO, _("The VPN's DHCP server sent routes {routes} and DNS domains {domains}.").format(routes=routes, domains=names)
        )
        if self.tun_lost or self.configurator is None:
            return
        if self.command.network.full_tunnel and pushed.routes:
            self.runner._emit_log(logging.INFO, _("All traffic goes through the VPN already, so its routes add nothing."))
        try:
            notes = self.configurator.add_pushed(pushed)
        except PlatformError as error:
            notes = [error.sentence]
        for note in notes:  # the connection goes on: a note, not a failure (printed by the CLI)
            self.runner._emit_log(logging.INFO, note)

    def _tun_lost(self, error: PlatformError, now: float) -> None:
        """The tunnel device failed for good: stop polling it (a detached TUN descriptor polls as
        an error forever), say why, and end the session politely; cleanup() restores the rest."""
        if self.tun_lost:
            return
        self.tun_lost = True
        try:
            if self.tun is not None:
                self.selector.unregister(self.tun)
        except KeyError:
            pass  # paused by back-pressure, or never registered
        self.cause = self.cause or error.to_failure()
        self.runner._emit_log(logging.ERROR, error.sentence)
        self.engine.disconnect(now)

    def _read_socket(self, now: float) -> None:
        engine = self.engine
        while True:
            try:
                data = self.sock.recv(READ_SIZE)
            except (ssl.SSLWantReadError, BlockingIOError):
                return
            except ssl.SSLWantWriteError:
                return
            except (OSError, ssl.SSLError) as error:
                self.runner._emit_log(logging.DEBUG, f"TLS read failed: {error}.")
                if isinstance(error, ssl.SSLError) and not isinstance(error, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
                    self.cause = self.cause or _tls_broken(self.command.engine.host, error)
                engine.connection_lost(now)
                return
            if not data:
                engine.connection_lost(now)
                return
            engine.receive_stream_data(data, now)
            if engine.closed:
                return

    def _write_pending(self) -> None:
        sock = self.sock
        while self.pending:
            try:
                # One call encrypts as much as the socket takes, one write() per 16 KiB TLS record.
                sent = sock.send(self.pending)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                break
            except (OSError, ssl.SSLError) as error:
                self.runner._emit_log(logging.DEBUG, f"TLS write failed: {error}.")
                self.pending.clear()
                self.engine.connection_lost(time.monotonic())
                return
            del self.pending[:sent]
        wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.pending else 0)
        if self.selector.get_key(sock).events != wanted:
            self.selector.modify(sock, wanted, "sock")

    def _read_commands(self, now: float) -> None:
        try:
            while self.runner._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                command = self.runner._commands.get_nowait()
            except queue.Empty:
                return
            if isinstance(command, RetryPassword):
                self.engine.retry_password(command.password, now)
            elif isinstance(command, FollowRoute):
                self._follow_route(now)
            elif isinstance(command, (Disconnect, Shutdown)):
                self.engine.disconnect(now)
                if isinstance(command, Shutdown):
                    self.runner._commands.put(command)  # seen again by run() after this session

    def _follow_route(self, now: float) -> None:
        if self.configurator is None or self.tun_lost or self.finished or self.engine.closed:
            return
        try:
            sentence = self.configurator.follow_server_route()
        except PlatformError as error:
            sentence = error.sentence
        if sentence is not None:
            self.runner._emit_log(logging.INFO, sentence)
        try:
            source = self.sock.getsockname()[0]
        except OSError:  # closed meanwhile: its read says so
            return
        if not source_address_usable(source):
            self.cause = self.cause or Failure(
                Layer.TCP,
                _("The network changed and the connection to the VPN server went with it (its address {address} is gone).").format(address=source),
                FailureKind.UNREACHABLE,
            )
            self.runner._emit_log(logging.WARNING, self.cause.reason)
            self.engine.connection_lost(now)
            return
        self._probe(ROAMING_USER_TIMEOUT_MS, keepalive=True)
        self.probe_until = now + ROAMING_PROBE_SECONDS

    def _probe(self, user_timeout_ms: int, keepalive: bool) -> None:
        """Keepalives every second and a TCP user timeout (Linux), or back to the defaults."""
        options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, int(keepalive))]
        for name, value in (("TCP_KEEPIDLE", 1), ("TCP_KEEPINTVL", 1), ("TCP_KEEPCNT", 3), ("TCP_USER_TIMEOUT", user_timeout_ms)):
            if hasattr(socket, name) and (keepalive or name == "TCP_USER_TIMEOUT"):
                options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
        try:
            for level, option, value in options:
                self.sock.setsockopt(level, option, value)
        except OSError as error:  # the socket is gone already: its read says so
            self.runner._emit_log(logging.DEBUG, f"TCP probe options not set: {error}.")

    def _final_flush(self) -> None:
        """Send what the engine queued last (Call Disconnect Ack, Abort), briefly."""
        self.pending += self.engine.data_to_send()
        end = time.monotonic() + FINAL_FLUSH_SECONDS
        while self.pending and time.monotonic() < end:
            self._write_pending()
            if self.pending:
                self.selector.select(0.05)

    def cleanup(self) -> None:
        """Restore the network exactly and release everything, whatever happened."""
        if self.configurator is not None:
            try:
                self.configurator.restore()
            except PlatformError as error:
                self.runner._emit_log(logging.ERROR, error.sentence)
        if self.tun is not None:
            self.tun.close()
        self.selector.close()
        try:
            self.sock.close()
        except OSError:
            pass
