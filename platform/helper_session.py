"""What the Linux and the macOS network helpers do alike: serve one client connection as one
session (helper_protocol's requests, carried out with the OS's own tunnel device and network
configurator), answer a refused peer, and run one forked process per connection.

Why a process per connection, on both systems: the undo journal names its owner by process id
and start time (netconfig_linux, journal_replay). Each session in its own process keeps that
true: a second connection is refused while the first one's network is configured, and a session
that crashed is recognised as dead and repaired by the next one. Threads would share one process
id, so one session would see the other's changes as its own. A crash in one session also takes
no other session with it.
"""

from __future__ import annotations

import grp
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from sstpvpn.platform import helper_protocol as protocol
from sstpvpn.platform import helper_transport as transport
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.helper_protocol import ApplyPlan, OpenTun, Reply, RequestRefused, Restore, SetMtu

log = logging.getLogger("sstp-vpn-helper")


def allowed_gid(group: str, create_command: str) -> int | None:
    """The group whose members may use the helper; None (only root may) when it does not exist."""
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        log.warning("The group %s does not exist, so only root may use the helper; create it with '%s'.",
                    group, create_command)
        return None

REFUSAL_READ_SECONDS = 10.0
CHILDREN_STOP_SECONDS = 15.0  # launchd's ExitTimeOut and systemd's TimeoutStopSec are 20 s or more


@dataclass(frozen=True)
class Peer:
    """The connecting process, as the kernel recorded it at connect()."""

    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    def __str__(self) -> str:
        return f"uid {self.uid} (pid {self.pid})"


class TunnelDevice(Protocol):
    name: str

    def fileno(self) -> int: ...
    def set_mtu(self, mtu: int) -> None: ...
    def close(self) -> None: ...


# (ifname, server, full_tunnel=, extra_routes=, use_vpn_dns=, journal_path=) -> an object with
# apply(plan), restore(), ifname
ConfiguratorFactory = Callable[..., Any]


@dataclass
class HelperSession:
    """Serves one client connection from the first request until the connection closes."""

    connection: socket.socket
    peer: Peer
    journal_path: Path
    create_tun: Callable[[str | None], TunnelDevice]
    make_configurator: ConfiguratorFactory
    rules: protocol.SessionRules = field(default_factory=protocol.SessionRules)
    tun: TunnelDevice | None = None
    configurator: Any = None

    def serve(self) -> None:
        try:
            while (data := self._receive()) is not None:
                self._send(*self._handle(data))
        finally:
            if threading.current_thread() is threading.main_thread():  # signals are the main thread's
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second stop must not cut the restore short
            self.end()

    def end(self) -> None:
        """Restore whatever this session changed, then remove its interface. Runs once."""
        if self.configurator is not None:
            try:
                for note in self.configurator.restore():
                    log.warning("%s: %s", self.peer, note)
                if self.rules.network_applied:
                    log.info("%s: restored the network of %s as the session ended", self.peer, self.configurator.ifname)
            except PlatformError as error:
                log.error("%s: restoring the network failed (the journal keeps the rest): %s",
                          self.peer, error.sentence)
            self.configurator = None
        if self.tun is not None:
            log.info("%s: closed %s", self.peer, self.tun.name)
            self.tun.close()
            self.tun = None

    def _handle(self, data: bytes) -> tuple[Reply, int | None]:
        try:
            request = protocol.parse_request(data)
            if not self.rules.admit(request):
                return Reply(True), None
            return self._carry_out(request)
        except RequestRefused as refusal:
            log.warning("%s: refused a request: %s", self.peer, refusal.sentence)
            return Reply(False, error=refusal.sentence), None
        except PlatformError as error:
            log.warning("%s: %s", self.peer, error.sentence)
            return Reply(False, error=error.sentence), None

    def _carry_out(self, request: protocol.Request) -> tuple[Reply, int | None]:
        if isinstance(request, OpenTun):
            self.tun = self.create_tun(request.ifname)
            self.rules.opened(self.tun.name)
            log.info("%s: created %s", self.peer, self.tun.name)
            return Reply(True, ifname=self.tun.name), self.tun.fileno()
        assert self.tun is not None  # the rules admit nothing else before "open"
        if isinstance(request, SetMtu):
            self.tun.set_mtu(request.mtu)
            return Reply(True), None
        if isinstance(request, ApplyPlan):
            if self.configurator is None:
                self.configurator = self.make_configurator(self.tun.name, request.server,
                                                           full_tunnel=request.full_tunnel,
                                                           extra_routes=request.extra_routes,
                                                           use_vpn_dns=request.use_vpn_dns,
                                                           journal_path=self.journal_path)
            self.configurator.apply(request.plan)  # undoes its own steps when it fails
            self.rules.network_changed(True)
            log.info("%s: applied %s to %s (server %s, %s)", self.peer, request.plan.address, self.tun.name,
                     request.server, "full tunnel" if request.full_tunnel else "split tunnel")
            return Reply(True), None
        assert isinstance(request, Restore)
        notes = self.configurator.restore() if self.configurator is not None else []
        self.rules.network_changed(False)
        log.info("%s: restored the network of %s", self.peer, self.tun.name)
        return Reply(True, notes=tuple(notes)), None

    def _receive(self) -> bytes | None:
        """The next request, or None when the client has closed the connection."""
        try:
            # No room for ancillary data: descriptors a client sends are discarded by the kernel.
            received = transport.receive_message(self.connection)
        except transport.BrokenFraming as error:
            log.warning("%s: %s", self.peer, error.sentence)
            self._send(Reply(False, error=error.sentence), None)
            return None  # a stream that lost its framing cannot go on
        # On Linux an oversized message arrives cut to MAX_MESSAGE_BYTES + 1; parse_request refuses it.
        return None if received is None else received[0]

    def _send(self, reply: Reply, fd: int | None) -> None:
        try:
            transport.send_message(self.connection, protocol.encode_reply(reply), () if fd is None else (fd,))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client is gone; the next receive sees the end and the session ends


def refuse_connection(connection: socket.socket, peer: Peer, sentence: str) -> None:
    """Answer the first request with `sentence`, then close (the client learns why)."""
    log.warning("%s: refused: %s", peer, sentence)
    connection.settimeout(REFUSAL_READ_SECONDS)
    try:
        transport.receive_message(connection)
        transport.send_message(connection, protocol.encode_reply(Reply(False, error=sentence)))
    except (OSError, transport.BrokenFraming):
        pass


# -- process life -----------------------------------------------------------------------------


def stop_on_signal(signum: int, _frame: object) -> None:
    # SystemExit unwinds through HelperSession.serve(), whose `finally` restores the network.
    raise SystemExit(128 + signum)


def serve_forking(listener: socket.socket, serve_one: Callable[[socket.socket], None]) -> None:
    """Accept connections on `listener` until SIGTERM/SIGINT and serve each in a child process;
    on the way out, stop the children (each restores its session's network) and wait for them."""
    children: set[int] = set()
    stopping = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    listener.settimeout(0.5)  # also the pace at which finished children are reaped
    try:
        while not stopping:
            _reap(children)
            try:
                connection, _ = listener.accept()
            except (TimeoutError, InterruptedError):
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                signal.signal(signal.SIGTERM, stop_on_signal)
                signal.signal(signal.SIGINT, stop_on_signal)
                status = 1
                try:
                    connection.settimeout(None)
                    serve_one(connection)
                    status = 0
                except SystemExit as stop_signal:
                    status = stop_signal.code if isinstance(stop_signal.code, int) else 1
                except BaseException:
                    log.exception("the session failed")
                finally:
                    logging.shutdown()
                    os._exit(status)
            children.add(pid)
            connection.close()
    finally:
        listener.close()
        for pid in children:  # each restores its session's network on SIGTERM
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + CHILDREN_STOP_SECONDS
        while children and time.monotonic() < deadline:
            _reap(children)
            time.sleep(0.05)


def _reap(children: set[int]) -> None:
    for pid in list(children):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.discard(pid)
