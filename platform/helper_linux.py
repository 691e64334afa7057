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
must live in the helper's network namespace, since that is where the interface and routes go: it
proves that by sending a descriptor of its namespace (/proc/self/ns/net) with "open", which the
helper compares with its own (no CAP_SYS_PTRACE needed to look into another user's process).

What a member cannot do (each refused with a sentence; see README "Running as an ordinary user"):
- keep an interface beyond the session: at the end the helper deletes the interface it created,
  by index, whatever the user did to the descriptor (TUNSETPERSIST, TUNSETOWNER);
- name it freely: only sstp0, sstp1, ... or names the administrator lists in the config file;
- route a local network, the gateway or a LAN host into the tunnel (netconfig_linux's route rule);
- change routes or DNS while another session has them changed (the journal's lock);
- hold more than MAX_SESSIONS_PER_USER sessions, or an idle connection (helper_session).

How it is started (see installer/linux/): systemd socket activation with Accept=yes, one helper
process per connection, the connected socket passed as file descriptor 3 (LISTEN_FDS). Without
systemd, `sstp-vpn-helper --listen PATH` listens itself and forks one process per connection.
"""

from __future__ import annotations

import argparse
import errno
import fcntl
import logging
import os
import re
import signal
import socket
import stat
import struct
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRoute, NetlinkError

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import kill_switch_linux, netconfig_linux, resolver_linux, tun_linux
from sstpvpn.platform.capabilities_linux import keep_only_net_admin
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.helper_protocol import RequestRefused, interface_name
from sstpvpn.platform.helper_session import (
    Peer,
    allowed_gid,
    hold_user_slot,
    limit_logging,
    log_as_user,
    refuse_connection,
    serve_forking,
    serve_session,
    stop_on_signal,
    too_many_sessions_sentence,
)
from sstpvpn.platform.journal import private_folder_problem
from sstpvpn.platform.kill_switch import KillSwitchRules
from sstpvpn.platform.netconfig_linux import NetConfigurator
from sstpvpn.platform.tun_linux import TunDevice

log = logging.getLogger("sstp-vpn-helper")

DEFAULT_SOCKET = "/run/sstp-vpn/helper.sock"
DEFAULT_GROUP = "sstp-vpn"
DEFAULT_CONFIG = Path("/etc/sstp-vpn/helper.toml")
SD_LISTEN_FDS_START = 3
SO_PEERGROUPS = 59  # asm-generic/socket.h; not in the socket module
IFF_TUN_EXCL = 0x8000  # fail if the interface exists: never attach to someone else's persistent TUN
NS_GET_NSTYPE = 0xB703  # linux/nsfs.h: _IO(0xb7, 0x3)
CLONE_NEWNET = 0x40000000
OUR_NAMES = re.compile(r"sstp[0-9]{1,4}")  # what the helper names interfaces without a config file


def peer_of(connection: socket.socket) -> Peer:
    pid, uid, gid = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
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
    return _(
        "Only members of the group {group} may use the SSTP VPN network helper: add the user with 'sudo adduser USER {group}' and log in again."
    ).format(group=group_name)


def namespace_problem(fds: list[int]) -> str | None:
    """None when the one descriptor the client sent with "open" is its network namespace and
    that is the helper's own."""
    wrong_version = _(
        "The program asking the network helper for an interface did not say which network "
        "namespace it runs in; install the same version of sstp-vpn and its helper."
    )
    if len(fds) != 1:
        return wrong_version
    try:
        theirs, ours = os.fstat(fds[0]), os.stat("/proc/self/ns/net")
        # The same namespace file as ours needs nothing more; otherwise ask what kind it is (the
        # ioctl only ever reaches the nsfs file system, never a file of the user's choosing).
        if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
            return None
        if theirs.st_dev != ours.st_dev or fcntl.ioctl(fds[0], NS_GET_NSTYPE) != CLONE_NEWNET:
            return wrong_version
    except OSError:
        return wrong_version  # not a namespace descriptor at all
    return _(
        "sstp-vpn runs in another network namespace (a container?) than its network helper; "
        "run the helper in the same one, or run sstp-vpn as root there."
    )


class SessionTun(TunDevice):
    """The interface one session created. Closing it deletes the interface by its index before
    closing the descriptor, so nothing the user did to the descriptor (TUNSETPERSIST,
    TUNSETOWNER) keeps it, and no gap remains in which the user could attach to it again."""

    def __init__(self, fd: int, name: str, index: int) -> None:
        super().__init__(fd, name)
        self.index = index

    def close(self) -> None:
        if not self.closed:
            try:
                delete_interface(self.index, self.name)
            finally:
                super().close()


def delete_interface(index: int, name: str) -> None:
    """Delete the TUN interface `index` if it is still the one called `name`."""
    try:
        with IPRoute() as ipr:
            link = ipr.link("get", index=index)[0]
            if link.get_attr("IFLA_IFNAME") == name and link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "tun":
                ipr.link("del", index=index)
    except NetlinkError as error:
        if error.code not in (errno.ENODEV, errno.ENOENT):  # gone already: nothing to do
            log.error("deleting the interface %s (index %d) failed: %s", name, index, os.strerror(error.code))


@dataclass(frozen=True)
class InterfaceNames:
    """Which names a client may ask for: ours (sstp + digits) and those the administrator allows."""

    allowed: frozenset[str] = frozenset()
    config_path: Path = DEFAULT_CONFIG

    def check(self, ifname: str | None) -> None:
        if ifname is None or OUR_NAMES.fullmatch(ifname) or ifname in self.allowed:
            return
        raise RequestRefused(
            _(
                "The network helper creates only interfaces named sstp0, sstp1, ... or names the "
                "administrator lists in {path} (allowed_interface_names); "
                "{name!r} is neither."
            ).format(path=self.config_path, name=ifname)
        )


def load_config(path: Path) -> InterfaceNames:
    """The helper's config file (TOML), if there is one: root's own, else it is refused."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return InterfaceNames(config_path=path)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PlatformError(_("{path} must be a file owned by root that only root may change.").format(path=path))
    problem = private_folder_problem(path.parent)
    if problem is not None:
        raise PlatformError(problem)
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PlatformError(_("{path} cannot be read as TOML ({reason}).").format(path=path, reason=error)) from error
    unknown = set(document) - {"allowed_interface_names"}
    names = document.get("allowed_interface_names", [])
    if unknown or not isinstance(names, list):
        raise PlatformError(_('{path} may only hold allowed_interface_names = ["name", ...].').format(path=path))
    try:
        return InterfaceNames(frozenset(interface_name(name) for name in names), path)
    except RequestRefused as refusal:
        raise PlatformError(f"{path}: {refusal.sentence}") from refusal


def tun_creator(names: InterfaceNames):  # -> Callable[[str | None], SessionTun]
    def create(ifname: str | None) -> SessionTun:
        names.check(ifname)
        return create_tun(ifname)

    return create


def create_tun(ifname: str | None) -> SessionTun:
    """A new, non-persistent TUN interface. Unlike TunDevice.open, refuses to attach to an
    interface that exists already (IFF_TUN_EXCL): a client may only get a fresh one."""
    requested = tun_linux.DEFAULT_NAME_PATTERN if ifname is None else ifname
    try:
        fd = os.open(tun_linux.CLONE_DEVICE, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise PlatformError(
            _("The network helper cannot open {device} ({reason}); load the kernel module with 'modprobe tun'.").format(
                device=tun_linux.CLONE_DEVICE, reason=error.strerror
            )
        ) from error
    try:
        request = struct.pack("16sH22x", requested.encode(), tun_linux.IFF_TUN | tun_linux.IFF_NO_PI | IFF_TUN_EXCL)
        reply = fcntl.ioctl(fd, tun_linux.TUNSETIFF, request)
    except OSError as error:
        os.close(fd)
        if error.errno == errno.EBUSY:
            raise PlatformError(
                _("An interface named {name} exists already; choose another name or disconnect the other tunnel.").format(name=requested)
            ) from error
        if error.errno == errno.EINVAL:
            raise PlatformError(
                _("The kernel refused to create a tunnel interface named {name!r}; another kind of interface may have that name.").format(
                    name=requested
                )
            ) from error
        raise PlatformError(_("Creating the tunnel interface {name} failed ({reason}).").format(name=requested, reason=error.strerror)) from error
    name = reply[: tun_linux.IFNAMSIZ].split(b"\0", 1)[0].decode()
    try:
        index = socket.if_nametoindex(name)  # nobody but us can rename it in between (CAP_NET_ADMIN)
    except OSError as error:
        os.close(fd)
        raise PlatformError(_("The new tunnel interface {name} vanished at once; connect again.").format(name=name)) from error
    return SessionTun(fd, name, index)


class SessionKillSwitch:
    """The kill switch of one session: the table inet sstpvpn (kill_switch_linux), letting
    through only tunnels with names the helper would create (never "lo" or the physical link)."""

    def __init__(self, settings: Settings) -> None:
        self.names = settings.names
        self.nft = kill_switch_linux.NftKillSwitch(settings.kill_switch_journal_path)

    def set(self, rules: KillSwitchRules) -> None:
        for name in rules.tunnels:
            self.names.check(name)
        self.nft.set(rules)

    def remove(self) -> None:
        self.nft.remove()


def repair_leftovers(settings: Settings) -> list[str]:
    """What "repair" does, and what each session start does: undo what dead sessions left (the
    network's journal, a kill switch no live session holds). The sentences of what was removed."""
    notes = []
    if netconfig_linux.repair_from_journal(settings.journal_path):
        notes.append(_("Restored the routes and DNS that an ended sstp-vpn left changed."))
    return notes + kill_switch_linux.repair_kill_switch(settings.kill_switch_journal_path)


def serve_connection(connection: socket.socket, settings: Settings) -> None:
    peer = peer_of(connection)
    log_as_user(peer.uid)
    problem = authorization_problem(peer, settings.allowed_gid, settings.group_name)
    if problem is not None:
        refuse_connection(connection, peer, problem)
        return
    slot = hold_user_slot(settings.state_folder, peer.uid)  # held until this process ends
    if slot is None:
        refuse_connection(connection, peer, too_many_sessions_sentence())
        return
    log.info("%s: session started", peer)
    if settings.kill_switch_journal_path.exists():  # a dead session's kill switch: the machine is cut off
        try:
            for note in kill_switch_linux.repair_kill_switch(settings.kill_switch_journal_path):
                log.warning("%s: %s", peer, note)
        except PlatformError as error:
            log.error("%s: %s", peer, error.sentence)
    serve_session(
        connection,
        peer,
        settings.journal_path,
        tun_creator(settings.names),
        NetConfigurator,
        check_open=namespace_problem,
        kill_switch_factory=lambda: SessionKillSwitch(settings),
        repair=lambda: repair_leftovers(settings),
    )
    log.info("%s: session ended", peer)


def peer_uid(connection: socket.socket) -> int:
    return peer_of(connection).uid


@dataclass(frozen=True)
class Settings:
    group_name: str
    allowed_gid: int | None
    journal_path: Path
    names: InterfaceNames = field(default_factory=InterfaceNames)

    @property
    def kill_switch_journal_path(self) -> Path:
        return kill_switch_linux.kill_switch_journal_path(self.journal_path)

    @property
    def state_folder(self) -> Path:
        """Root's folder for the per-user session slots and the log budget."""
        return self.journal_path.parent / "helper-state"


# -- process life -----------------------------------------------------------------------------


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
    resolver_linux.remember_namespace()  # needs CAP_SYS_PTRACE, which goes now:
    keep_only_net_admin()  # the socket is chowned; from here on only the network is the helper's
    log.info("listening on %s (capabilities: CAP_NET_ADMIN only)", path)
    try:
        serve_forking(listener, lambda connection: serve_connection(connection, settings), peer_uid)
    finally:
        path.unlink(missing_ok=True)
    return 0


def _listening_socket(path: Path, gid: int | None) -> socket.socket:
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise PlatformError(_("{path} exists and is not a socket; the network helper will not replace it.").format(path=path))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sstp-vpn-helper",
        description=_(
            "The privileged network helper of SSTP VPN: creates the tunnel interface and "
            "sets routes and DNS for sstp-vpn running as an ordinary user. Started by "
            "systemd (sstp-vpn-helper.socket), or with --listen."
        ),
    )
    parser.add_argument(
        "--listen",
        metavar="PATH",
        type=Path,
        help=_("listen on this socket and fork per connection (without systemd; the usual path is {path})").format(path=DEFAULT_SOCKET),
    )
    parser.add_argument(
        "--group", default=DEFAULT_GROUP, help=_("the group whose members may use the helper (default {group})").format(group=DEFAULT_GROUP)
    )
    parser.add_argument(
        "--journal",
        type=Path,
        default=None,
        help=_("the undo journal (default: /var/lib/sstp-vpn/, one per network namespace); its folder must be root's and writable by nobody else"),
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=_('the administrator\'s settings (default {path}; optional): allowed_interface_names = ["name", ...]').format(path=DEFAULT_CONFIG),
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="sstp-vpn-helper: %(message)s")
    if os.geteuid() != 0:
        log.error("sstp-vpn-helper must run as root (systemd starts it from sstp-vpn-helper.socket).")
        return 1
    journal = args.journal if args.journal is not None else netconfig_linux.default_journal_path()
    try:
        journal.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        problem = private_folder_problem(journal.parent)
        if problem is not None:
            raise PlatformError(problem)
        settings = Settings(args.group, allowed_gid(args.group, f"sudo addgroup --system {args.group}"), journal, load_config(args.config))
        limit_logging(settings.state_folder)
        if args.listen is not None:
            return listen_and_fork(args.listen, settings)
        if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1":
            signal.signal(signal.SIGTERM, stop_on_signal)
            return serve_activated_socket(settings)
    except PlatformError as error:
        log.error("%s", error.sentence)
        return 1
    parser.error(_("no socket: start it through sstp-vpn-helper.socket (systemd) or give --listen PATH"))
    return 2


if __name__ == "__main__":
    sys.exit(main())
