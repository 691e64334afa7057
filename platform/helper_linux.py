"""sstp-vpn-helper: the small privileged part of SSTP VPN on Linux.

The tray app and `sstp-vpn connect` run as the user; the SSTP engine and TLS never run as root.
This helper, run as root, does only what needs CAP_NET_ADMIN, for one client connection at a
time (one connection = one session):

1. create a TUN interface and hand its file descriptor to the client (SCM_RIGHTS);
2. apply the session's network plan (addresses, routes, DNS) through NetConfigurator, whose undo
   journal survives a crash of the helper itself;
3. restore the network, on request or as soon as the client's connection closes (the client
   exited, crashed or was killed), then close its copy of the TUN, which removes the interface.

Requests are plain data (helper_protocol), validated field by field; nothing reaches a shell.

Who may connect: root, and members of one group (`--group`, "sstp-vpn" when installed). Membership
lets a user route this machine's traffic through a tunnel the user controls, nothing more; that
is the same trust NetworkManager gives to users who may start VPNs. The socket's permissions
enforce it (systemd: SocketGroup=, SocketMode=0660), and the helper checks again from the peer's
credentials (SO_PEERCRED, SO_PEERGROUPS), which the kernel records at connect() time. The client
must live in the helper's network namespace, since that is where the interface and routes go.

How it is started (see installer/linux/): systemd socket activation with Accept=yes, one helper
process per connection, the connected socket passed as file descriptor 3 (LISTEN_FDS). Without
systemd, `sstp-vpn-helper --listen PATH` listens itself and forks one process per connection.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import grp
import logging
import os
import signal
import socket
import stat
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sstpvpn.platform import helper_protocol as protocol
from sstpvpn.platform import netconfig_linux, tun_linux
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.helper_protocol import ApplyPlan, OpenTun, Reply, RequestRefused, Restore, SetMtu
from sstpvpn.platform.netconfig_linux import NetConfigurator
from sstpvpn.platform.tun_linux import TunDevice

log = logging.getLogger("sstp-vpn-helper")

DEFAULT_SOCKET = "/run/sstp-vpn/helper.sock"
DEFAULT_GROUP = "sstp-vpn"
SD_LISTEN_FDS_START = 3
SO_PEERGROUPS = 59  # asm-generic/socket.h; not in the socket module
IFF_TUN_EXCL = 0x8000  # fail if the interface exists: never attach to someone else's persistent TUN
REFUSAL_READ_SECONDS = 10.0


@dataclass(frozen=True)
class Peer:
    """The connecting process, as the kernel recorded it at connect()."""

    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    def __str__(self) -> str:
        return f"uid {self.uid} (pid {self.pid})"


def peer_of(connection: socket.socket) -> Peer:
    pid, uid, gid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                               struct.calcsize("3i")))
    try:
        raw = connection.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 1024)
        groups = struct.unpack(f"{len(raw) // 4}I", raw)
    except OSError:
        groups = ()  # more than 256 groups, or an old kernel: only the primary group counts
    return Peer(pid, uid, gid, tuple(groups))


def authorization_problem(peer: Peer, allowed_gid: int | None, group_name: str) -> str | None:
    """None when `peer` may use the helper; else the sentence it gets."""
    if peer.uid == 0:
        return None
    if allowed_gid is not None and (peer.gid == allowed_gid or allowed_gid in peer.groups):
        return None
    return (f"Only members of the group {group_name} may use the SSTP VPN network helper: "
            f"add the user with 'sudo adduser USER {group_name}' and log in again.")


def namespace_problem(peer: Peer) -> str | None:
    try:
        theirs = os.stat(f"/proc/{peer.pid}/ns/net").st_ino
    except OSError:
        return "The process that connected to the network helper is gone."
    if theirs != os.stat("/proc/self/ns/net").st_ino:
        return ("sstp-vpn runs in another network namespace (a container?) than its network helper; "
                "run the helper in the same one, or run sstp-vpn as root there.")
    return None


def create_tun(ifname: str | None) -> TunDevice:
    """A new, non-persistent TUN interface. Unlike TunDevice.open, refuses to attach to an
    interface that exists already (IFF_TUN_EXCL): a client may only get a fresh one."""
    requested = tun_linux.DEFAULT_NAME_PATTERN if ifname is None else ifname
    try:
        fd = os.open(tun_linux.CLONE_DEVICE, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise PlatformError(f"The network helper cannot open {tun_linux.CLONE_DEVICE} ({error.strerror}); "
                            "load the kernel module with 'modprobe tun'.") from error
    try:
        request = struct.pack("16sH22x", requested.encode(),
                              tun_linux.IFF_TUN | tun_linux.IFF_NO_PI | IFF_TUN_EXCL)
        reply = fcntl.ioctl(fd, tun_linux.TUNSETIFF, request)
    except OSError as error:
        os.close(fd)
        if error.errno == errno.EBUSY:
            raise PlatformError(f"An interface named {requested} exists already; choose another name or "
                                "disconnect the other tunnel.") from error
        if error.errno == errno.EINVAL:
            raise PlatformError(f"The kernel refused to create a tunnel interface named {requested!r}; "
                                "another kind of interface may have that name.") from error
        raise PlatformError(f"Creating the tunnel interface {requested} failed ({error.strerror}).") from error
    return TunDevice(fd, reply[:tun_linux.IFNAMSIZ].split(b"\0", 1)[0].decode())


@dataclass
class HelperSession:
    """Serves one client connection from the first request until the connection closes."""

    connection: socket.socket
    peer: Peer
    journal_path: Path
    rules: protocol.SessionRules = field(default_factory=protocol.SessionRules)
    tun: TunDevice | None = None
    configurator: NetConfigurator | None = None

    def serve(self) -> None:
        try:
            while (data := self._receive()) is not None:
                self._send(*self._handle(data))
        finally:
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
            self.tun = create_tun(request.ifname)
            self.rules.opened(self.tun.name)
            log.info("%s: created %s", self.peer, self.tun.name)
            return Reply(True, ifname=self.tun.name), self.tun.fileno()
        assert self.tun is not None  # the rules admit nothing else before "open"
        if isinstance(request, SetMtu):
            self.tun.set_mtu(request.mtu)
            return Reply(True), None
        if isinstance(request, ApplyPlan):
            if self.configurator is None:
                self.configurator = NetConfigurator(self.tun.name, request.server, full_tunnel=request.full_tunnel,
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
        while True:
            try:
                # No room for ancillary data: descriptors a client sends are discarded by the kernel.
                data, _ancillary, flags, _address = self.connection.recvmsg(protocol.MAX_MESSAGE_BYTES + 1)
            except InterruptedError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return None
            if not data and not flags & socket.MSG_TRUNC:
                return None  # SOCK_SEQPACKET: a zero-length read is the end of the connection
            # An oversized message arrives cut to MAX_MESSAGE_BYTES + 1 bytes; parse_request refuses it.
            return data

    def _send(self, reply: Reply, fd: int | None) -> None:
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))] if fd is not None else []
        try:
            self.connection.sendmsg([protocol.encode_reply(reply)], ancillary)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client is gone; the next receive sees the end and the session ends


def refuse_connection(connection: socket.socket, peer: Peer, sentence: str) -> None:
    """Answer the first request with `sentence`, then close (the client learns why)."""
    log.warning("%s: refused: %s", peer, sentence)
    connection.settimeout(REFUSAL_READ_SECONDS)
    try:
        connection.recv(protocol.MAX_MESSAGE_BYTES + 1)
        connection.send(protocol.encode_reply(Reply(False, error=sentence)))
    except OSError:
        pass


def serve_connection(connection: socket.socket, settings: "Settings") -> None:
    peer = peer_of(connection)
    problem = (authorization_problem(peer, settings.allowed_gid, settings.group_name)
               or namespace_problem(peer))
    if problem is not None:
        refuse_connection(connection, peer, problem)
        return
    log.info("%s: session started", peer)
    HelperSession(connection, peer, settings.journal_path).serve()
    log.info("%s: session ended", peer)


@dataclass(frozen=True)
class Settings:
    group_name: str
    allowed_gid: int | None
    journal_path: Path


# -- process life -----------------------------------------------------------------------------


def _stop_on_signal(signum: int, _frame: object) -> None:
    # SystemExit unwinds through HelperSession.serve(), whose `finally` restores the network.
    raise SystemExit(128 + signum)


def serve_activated_socket(settings: Settings) -> int:
    """systemd Accept=yes: the connected socket is file descriptor 3."""
    connection = socket.socket(fileno=SD_LISTEN_FDS_START)
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)  # not for any program the helper might start (resolvectl)
    if connection.type != socket.SOCK_SEQPACKET or connection.family != socket.AF_UNIX:
        log.error("The socket from systemd is not an AF_UNIX SOCK_SEQPACKET socket; check the .socket unit.")
        return 1
    with connection:
        serve_connection(connection, settings)
    return 0


def listen_and_fork(path: Path, settings: Settings) -> int:
    """Without systemd: listen on `path` and serve each connection in a child process."""
    listener = _listening_socket(path, settings.allowed_gid)
    children: set[int] = set()
    stopping = []

    def stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    listener.settimeout(0.5)  # also the pace at which finished children are reaped
    log.info("listening on %s", path)
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
                signal.signal(signal.SIGTERM, _stop_on_signal)
                signal.signal(signal.SIGINT, _stop_on_signal)
                status = 1
                try:
                    connection.settimeout(None)
                    serve_connection(connection, settings)
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
        path.unlink(missing_ok=True)
        for pid in children:  # each restores its session's network on SIGTERM
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 15
        while children and time.monotonic() < deadline:
            _reap(children)
            time.sleep(0.05)
    return 0


def _listening_socket(path: Path, gid: int | None) -> socket.socket:
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise PlatformError(f"{path} exists and is not a socket; the network helper will not replace it.")
        path.unlink()  # left behind by a helper that was killed
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    old_umask = os.umask(0o177)  # nobody may connect before the permissions below are set
    try:
        listener.bind(str(path))
    finally:
        os.umask(old_umask)
    os.chown(path, 0, 0 if gid is None else gid)
    os.chmod(path, 0o660)
    listener.listen(16)
    return listener


def _reap(children: set[int]) -> None:
    for pid in list(children):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.discard(pid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sstp-vpn-helper",
        description="The privileged network helper of SSTP VPN: creates the tunnel interface and "
                    "sets routes and DNS for sstp-vpn running as an ordinary user. Started by "
                    "systemd (sstp-vpn-helper.socket), or with --listen.")
    parser.add_argument("--listen", metavar="PATH", type=Path,
                        help=f"listen on this socket and fork per connection (without systemd; "
                             f"the usual path is {DEFAULT_SOCKET})")
    parser.add_argument("--group", default=DEFAULT_GROUP,
                        help=f"the group whose members may use the helper (default {DEFAULT_GROUP})")
    parser.add_argument("--journal", type=Path, default=None,
                        help="the undo journal (default: /var/lib/sstp-vpn/, one per network namespace)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="sstp-vpn-helper: %(message)s")
    if os.geteuid() != 0:
        log.error("sstp-vpn-helper must run as root (systemd starts it from sstp-vpn-helper.socket).")
        return 1
    try:
        allowed_gid: int | None = grp.getgrnam(args.group).gr_gid
    except KeyError:
        log.warning("The group %s does not exist, so only root may use the helper; "
                    "create it with 'sudo addgroup --system %s'.", args.group, args.group)
        allowed_gid = None
    journal = args.journal if args.journal is not None else netconfig_linux.default_journal_path()
    settings = Settings(args.group, allowed_gid, journal)
    try:
        if args.listen is not None:
            return listen_and_fork(args.listen, settings)
        if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1":
            signal.signal(signal.SIGTERM, _stop_on_signal)
            return serve_activated_socket(settings)
    except PlatformError as error:
        log.error("%s", error.sentence)
        return 1
    parser.error("no socket: start it through sstp-vpn-helper.socket (systemd) or give --listen PATH")
    return 2


if __name__ == "__main__":
    sys.exit(main())
