"""What the Linux and the macOS network helpers do alike: serve one client connection as one
session (helper_protocol's requests, carried out with the OS's own tunnel device and network
configurator), answer a refused peer, and run one forked process per connection.

Why a process per connection, on both systems: the undo journal names its owner by process id
and start time (owners_linux, journal_replay). Each session in its own process keeps that
true: a second connection is refused while the first one's network is configured, and a session
that crashed is recognised as dead and repaired by the next one. Threads would share one process
id, so one session would see the other's changes as its own. A crash in one session also takes
no other session with it.

Limits, so that a member of the group cannot tie up root's resources: at most
MAX_SESSIONS_PER_USER sessions per user at once (slot locks in the state folder, so they hold
for systemd's one-process-per-connection as well as for --listen, whose parent also counts its
children before it forks), a connection must ask for its interface within IDLE_SECONDS
(helper_conversation), and
the log is rate-limited across all helper processes (SharedLogBudget).
"""

from __future__ import annotations

import fcntl
import grp
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sstpvpn.client.core.i18n import _, ngettext
from sstpvpn.platform import helper_protocol as protocol
from sstpvpn.platform import helper_transport as transport
from sstpvpn.platform.helper_conversation import ConfiguratorFactory, HelperSession, TunnelDevice, refuse
from sstpvpn.platform.helper_protocol import Reply
from sstpvpn.platform.kill_switch import KillSwitch

log = logging.getLogger("sstp-vpn-helper")


def allowed_gid(group: str, create_command: str) -> int | None:
    """The group whose members may use the helper; None (only root may) when it does not exist."""
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        log.warning(
            "The group %s does not exist, so only root may use the helper; create it with '%s'.",  # not translated: the helper's log
            group,
            create_command,
        )
        return None


CHILDREN_STOP_SECONDS = 15.0  # launchd's ExitTimeOut and systemd's TimeoutStopSec are 20 s or more
MAX_SESSIONS_PER_USER = 4  # a tray app and a CLI with a reconnect in flight need 2-3
MAX_CHILDREN = 64  # --listen: all users together (systemd's unit says MaxConnections=)
LOG_BURST = 200  # log lines per LOG_WINDOW_SECONDS, all helper processes together
LOG_WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Peer:
    """The connecting process, as the kernel recorded it at connect()."""

    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    def __str__(self) -> str:
        return f"uid {self.uid} (pid {self.pid})"


class SocketChannel:
    """A client's Unix-socket connection as a helper_conversation.Channel (helper_transport's framing)."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection

    def receive(self, max_handles: int, timeout: float | None) -> tuple[bytes, list[int]] | None:
        self.connection.settimeout(timeout)
        # On Linux an oversized message arrives cut to MAX_MESSAGE_BYTES + 1; parse_request refuses it.
        return transport.receive_message(self.connection, max_fds=max_handles)

    def send(self, data: bytes, handles: Sequence[int]) -> None:
        try:
            transport.send_message(self.connection, data, handles)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client is gone; the next receive sees the end and the session ends


def serve_session(
    connection: socket.socket,
    peer: Peer,
    journal_path: Path,
    create_tun: Callable[[str | None], TunnelDevice],
    make_configurator: ConfiguratorFactory,
    check_open: Callable[[list[int]], str | None] = lambda _fds: None,
    kill_switch_factory: Callable[[], KillSwitch] | None = None,
    repair: Callable[[], list[str]] | None = None,
) -> None:
    """Serve one client connection as one session (helper_conversation) until it closes."""
    channel = SocketChannel(connection)
    HelperSession(
        channel,
        peer,
        journal_path,
        create_tun,
        make_configurator,
        check_open=check_open,
        close_handles=_close_all,
        kill_switch_factory=kill_switch_factory,
        repair=repair,
    ).serve()


def refuse_connection(connection: socket.socket, peer: Peer, sentence: str) -> None:
    """Answer the first request with `sentence`, then close (the client learns why)."""
    refuse(SocketChannel(connection), peer, sentence)


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


# -- limits -------------------------------------------------------------------------------------


def too_many_sessions_sentence(limit: int = MAX_SESSIONS_PER_USER) -> str:
    return ngettext(
        "You have {limit} connection to the SSTP VPN network helper already, the most one user "
        "may have; disconnect it (or end the program that holds it), then connect again.",
        "You have {limit} connections to the SSTP VPN network helper already, the most one user "
        "may have; disconnect one (or end the program that holds it), then connect again.",
        limit,
    ).format(limit=limit)


def hold_user_slot(folder: Path, uid: int, limit: int = MAX_SESSIONS_PER_USER) -> int | None:
    """One of `uid`'s `limit` session slots, held (flock) until this process ends: the descriptor
    to keep open. None when all are taken. `folder` is root's own (the journal's folder)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for slot in range(limit):
        fd = os.open(folder / f"uid-{uid}.{slot}", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd
    return None


class SharedLogBudget(logging.Filter):
    """At most `burst` log records per `window` seconds, counted across every helper process
    (systemd starts one per connection) in a small state file; the first record let through
    after a quiet spell says how many were dropped. Once a process serves one user (serve_as),
    its lines count against that user's own budget, so one member's flood of bad requests never
    hides another member's sessions from the log."""

    def __init__(self, path: Path, burst: int = LOG_BURST, window: float = LOG_WINDOW_SECONDS) -> None:
        super().__init__()
        self.path = path
        self.burst = burst
        self.window = window

    def serve_as(self, uid: int) -> None:
        self.path = self.path.with_name(f"log-budget-uid-{uid}")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return self._count(record)
        except Exception:  # noqa: BLE001 - logging must never fail the session: without a budget, let it through
            return True

    def _count(self, record: logging.LogRecord) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:
            return True  # no state folder (yet): never lose a line for that
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            state = self._read(fd)
            now = time.monotonic()  # one clock for every process of this boot
            if not 0 <= now - state["start"] < self.window:
                dropped = state["dropped"]
                state = {"start": now, "count": 0, "dropped": 0}
                if dropped:
                    record.msg = f"({dropped} log lines of the network helper were dropped) {record.msg}"
            allowed = state["count"] < self.burst
            state["count" if allowed else "dropped"] += 1
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(state).encode())
            return allowed
        finally:
            os.close(fd)  # also drops the lock

    @staticmethod
    def _read(fd: int) -> dict[str, Any]:
        try:
            state = json.loads(os.read(fd, 4096) or b"{}")
            if isinstance(state, dict) and all(isinstance(state.get(key), (int, float)) for key in ("start", "count", "dropped")):
                return state
        except ValueError:
            pass
        return {"start": -1.0, "count": 0, "dropped": 0}


def limit_logging(state_folder: Path) -> None:
    """Rate-limit this process's helper log (see SharedLogBudget)."""
    state_folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    budget = SharedLogBudget(state_folder / "log-budget")
    for handler in logging.getLogger().handlers:
        handler.addFilter(budget)


def log_as_user(uid: int) -> None:
    """From now on this process's log lines count against `uid`'s own budget."""
    for handler in logging.getLogger().handlers:
        for budget in handler.filters:
            if isinstance(budget, SharedLogBudget):
                budget.serve_as(uid)


# -- process life -----------------------------------------------------------------------------


def stop_on_signal(signum: int, _frame: object) -> None:
    # SystemExit unwinds through HelperSession.serve(), whose `finally` restores the network.
    raise SystemExit(128 + signum)


def serve_forking(listener: socket.socket, serve_one: Callable[[socket.socket], None], peer_uid: Callable[[socket.socket], int]) -> None:
    """Accept connections on `listener` until SIGTERM/SIGINT and serve each in a child process;
    on the way out, stop the children (each restores its session's network) and wait for them.
    A user with MAX_SESSIONS_PER_USER children already, or a connection beyond MAX_CHILDREN, is
    answered with a sentence and closed without a new process."""
    children: dict[int, int] = {}  # pid -> the peer's uid
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
            problem = _over_limit(connection, children, peer_uid)
            if problem is not None:
                _refuse_at_once(connection, problem)
                continue
            uid = peer_uid(connection)
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
            children[pid] = uid
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


def _over_limit(connection: socket.socket, children: dict[int, int], peer_uid: Callable[[socket.socket], int]) -> str | None:
    try:
        uid = peer_uid(connection)
    except OSError:
        return _("The network helper cannot tell who connected; connect again.")
    if len(children) >= MAX_CHILDREN:
        log.warning(
            "uid %s: refused a connection: %d sessions are running, the most the helper serves",  # not translated: the helper's log
            uid,
            MAX_CHILDREN,
        )
        return _("The SSTP VPN network helper is serving as many connections as it may; try again later.")
    if sum(1 for owner in children.values() if owner == uid) >= MAX_SESSIONS_PER_USER:
        log.warning("uid %s: refused a connection: %d sessions already", uid, MAX_SESSIONS_PER_USER)  # not translated: the helper's log
        return too_many_sessions_sentence()
    return None


def _refuse_at_once(connection: socket.socket, sentence: str) -> None:
    """Answer before the request comes (the client reads it after its own send) and close; the
    listener never waits on this connection."""
    try:
        connection.setblocking(False)
        transport.send_message(connection, protocol.encode_reply(Reply(False, error=sentence)))
    except OSError:
        pass
    finally:
        connection.close()


def _reap(children: dict[int, int]) -> None:
    for pid in list(children):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            del children[pid]
