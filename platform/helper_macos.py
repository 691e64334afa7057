"""sstp-vpn-helper on macOS: the small root part of SSTP VPN, started by launchd.

UNTESTED ON macOS: written against the macOS headers (sys/ucred.h, sys/un.h, launch.h,
membership.h) and launchd.plist(5), and unit-tested on Linux with recorded stand-ins for the
kernel, libSystem and the network tools (tests/unit/test_helper_macos.py). Nothing here has run
on a real Mac yet.

The tray app and `sstp-vpn connect` run as the user; the SSTP engine and TLS never run as root.
This helper does only what needs root, for one client connection at a time (one connection =
one session, served by helper_session exactly as on Linux):

1. create a utun interface (tun_macos) and hand its kernel-control socket to the client
   (SCM_RIGHTS); packets then flow between the client and the kernel directly;
2. apply the session's network plan (ifconfig, route, scutil: netconfig_macos), whose undo
   journal in /var/db/sstp-vpn/ survives a crash of the helper itself;
3. restore the network, on request or as soon as the client's connection closes (the client
   exited, crashed or was killed), then close its copy of the utun socket; the interface goes
   when the client's copy is closed too.

How it is started: /Library/LaunchDaemons/org.sstp-vpn.helper.plist (installer/macos/) declares
one Unix stream socket under Sockets > Listener. launchd creates it (root-owned, mode 0660, group
as installed) and starts this helper as root on the first connection; the helper takes the
listening socket with launch_activate_socket("Listener") and accepts connections itself, forking
one process per connection (helper_session explains why a process and not a thread). Forking
without exec is safe here because the helper loads no Objective-C or CoreFoundation framework
(only libSystem, through ctypes), which is what makes fork() unsafe on macOS. It stays until
launchd stops it (SIGTERM: every session restores its network first, within launchd's 20 s).

Who may connect: root, and members of one group, by default "admin" (gid 80 on every Mac): the
users macOS itself lets change network settings, so the helper grants nothing an administrator
lacks, needs no group to be created, and nobody must log in again. `--group` names another group
(install-helper.sh --group creates it). The socket file's group and mode enforce it, and the
helper checks again from the peer's credentials (LOCAL_PEERCRED), which the kernel records at
connect() time; a group beyond the 16 the kernel keeps there is looked up in the directory.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import logging
import os
import socket
import stat
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import kill_switch_macos, netconfig_macos, tun_macos
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.helper_session import (
    Peer,
    allowed_gid,
    hold_user_slot,
    refuse_connection,
    serve_forking,
    serve_session,
    too_many_sessions_sentence,
)

log = logging.getLogger("sstp-vpn-helper")

LABEL = "org.sstp-vpn.helper"  # the launchd job, and the plist's file name
PLIST_PATH = f"/Library/LaunchDaemons/{LABEL}.plist"
LAUNCHD_SOCKET_NAME = "Listener"  # the key under Sockets in the plist
DEFAULT_SOCKET = "/var/run/sstp-vpn-helper.sock"  # the plist's SockPathName
DEFAULT_GROUP = "admin"
LIBSYSTEM = "/usr/lib/libSystem.B.dylib"

# sys/un.h
SOL_LOCAL = 0
LOCAL_PEERCRED = 1
LOCAL_PEERPID = 2
# sys/ucred.h: struct xucred { u_int cr_version; uid_t cr_uid; short cr_ngroups;
# gid_t cr_groups[NGROUPS]; }: 4 + 4 + 2 (+ 2 padding before the 4-aligned array) + 16 * 4 = 76.
NGROUPS = 16
XUCRED_VERSION = 0
XUCRED = struct.Struct("=IIh2x16I")
PID = struct.Struct("=i")  # pid_t
UUID_BYTES = 16  # uuid_t: unsigned char[16]


# -- who is connecting --------------------------------------------------------------------------


def parse_xucred(raw: bytes) -> tuple[int, tuple[int, ...]]:
    """(uid, groups) from a struct xucred; PlatformError when it is not one."""
    if len(raw) < XUCRED.size:
        raise PlatformError(
            _(
                "The kernel gave {size} bytes of peer credentials, not the {expected} of a struct xucred; this macOS is not supported by the helper."
            ).format(size=len(raw), expected=XUCRED.size)
        )
    version, uid, count, *groups = XUCRED.unpack_from(raw)
    if version != XUCRED_VERSION or not 0 <= count <= NGROUPS:
        raise PlatformError(
            _(
                "The kernel's peer credentials have an unknown layout (version {version}, {count} groups); this macOS is not supported by the helper."
            ).format(version=version, count=count)
        )
    return uid, tuple(groups[:count])


def peer_of(connection: socket.socket) -> Peer:
    """The peer's uid and groups (LOCAL_PEERCRED) and, for the log, its pid (LOCAL_PEERPID)."""
    uid, groups = parse_xucred(connection.getsockopt(SOL_LOCAL, LOCAL_PEERCRED, XUCRED.size))
    try:
        (pid,) = PID.unpack(connection.getsockopt(SOL_LOCAL, LOCAL_PEERPID, PID.size))
    except (OSError, struct.error):
        pid = -1  # only for the log
    # cr_groups[0] is the effective gid (BSD credentials keep it first).
    return Peer(pid=pid, uid=uid, gid=groups[0] if groups else -1, groups=groups)


class Membership:
    """The directory's answer (libSystem's mbr_* calls, membership.h): is a user in a group,
    nested groups included? Needed because the kernel keeps only 16 groups per credential."""

    def __init__(self, libc: Any = None) -> None:
        self._libc = libc

    def _library(self) -> Any:
        if self._libc is None:
            libc = ctypes.CDLL(LIBSYSTEM, use_errno=True)
            uuid = ctypes.c_ubyte * UUID_BYTES
            libc.mbr_uid_to_uuid.argtypes = [ctypes.c_uint32, uuid]
            libc.mbr_gid_to_uuid.argtypes = [ctypes.c_uint32, uuid]
            libc.mbr_check_membership.argtypes = [uuid, uuid, ctypes.POINTER(ctypes.c_int)]
            for function in (libc.mbr_uid_to_uuid, libc.mbr_gid_to_uuid, libc.mbr_check_membership):
                function.restype = ctypes.c_int
            self._libc = libc
        return self._libc

    def is_member(self, uid: int, gid: int) -> bool:
        """False also when the directory cannot answer: refusing is the safe side."""
        libc = self._library()
        user = (ctypes.c_ubyte * UUID_BYTES)()
        group = (ctypes.c_ubyte * UUID_BYTES)()
        answer = ctypes.c_int(0)
        if libc.mbr_uid_to_uuid(uid, user) != 0 or libc.mbr_gid_to_uuid(gid, group) != 0:
            return False
        if libc.mbr_check_membership(user, group, ctypes.pointer(answer)) != 0:
            return False
        return answer.value != 0


def not_allowed_sentence(group_name: str) -> str:
    if group_name == DEFAULT_GROUP:
        return _(
            "Only administrators may use the SSTP VPN network helper: make the account an administrator "
            "in System Settings > Users & Groups, or run sstp-vpn with sudo."
        )
    # Translators: keep the command in quotes as it is; USER stands for the account's name
    return _(
        "Only members of the group {group} may use the SSTP VPN network helper: add the user with 'sudo dseditgroup -o edit -a USER -t user {group}'."
    ).format(group=group_name)


def authorization_problem(peer: Peer, allowed_gid: int | None, group_name: str, membership: Membership) -> str | None:
    """None when `peer` may use the helper; else the sentence it gets."""
    if peer.uid == 0:
        return None
    if allowed_gid is not None and (allowed_gid in peer.groups or membership.is_member(peer.uid, allowed_gid)):
        return None
    return not_allowed_sentence(group_name)


# -- the listening socket from launchd -----------------------------------------------------------


class Launchd:
    """launch_activate_socket() from libSystem (launch.h): the descriptors launchd opened for one
    Sockets entry of this job's plist. Tests pass a recorded libc with the same two functions."""

    def __init__(self, libc: Any = None) -> None:
        self._libc = libc

    def _library(self) -> Any:
        if self._libc is None:
            libc = ctypes.CDLL(LIBSYSTEM, use_errno=True)
            libc.launch_activate_socket.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_int)), ctypes.POINTER(ctypes.c_size_t)]
            libc.launch_activate_socket.restype = ctypes.c_int
            libc.free.argtypes = [ctypes.c_void_p]
            libc.free.restype = None
            self._libc = libc
        return self._libc

    def activate_socket(self, name: str) -> list[int]:
        libc = self._library()
        fds = ctypes.POINTER(ctypes.c_int)()
        count = ctypes.c_size_t(0)
        # It returns the error number itself (0 = success), not -1 and errno.
        error = libc.launch_activate_socket(name.encode(), ctypes.pointer(fds), ctypes.pointer(count))
        if error:
            raise PlatformError(_activation_sentence(error, name))
        try:
            return [fds[index] for index in range(count.value)]
        finally:
            if fds:
                libc.free(fds)  # the array is malloc()ed by libSystem; the descriptors are ours


def _activation_sentence(error: int, name: str) -> str:
    if error == errno.ESRCH:
        return _(
            "sstp-vpn-helper was not started by launchd. Install it with install-helper.sh (installer/macos/), "
            "which loads /Library/LaunchDaemons/org.sstp-vpn.helper.plist; for a test by hand, give --listen PATH."
        )
    if error == errno.ENOENT:
        return _(
            "The launchd job of sstp-vpn-helper declares no socket named {name}; {plist} is not the "
            "one this version installs: run install-helper.sh again."
        ).format(name=name, plist=PLIST_PATH)
    if error == errno.EALREADY:
        return _("The launchd socket {name} was taken already by this process.").format(name=name)
    return _("launchd did not hand over the helper's socket {name} ({reason}).").format(name=name, reason=os.strerror(error))


def launchd_listener(launchd: Launchd) -> socket.socket:
    """The one listening Unix stream socket the plist declares."""
    fds = launchd.activate_socket(LAUNCHD_SOCKET_NAME)
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise PlatformError(
            _(
                "launchd handed over {count} sockets for {name}, not one; {plist} is not the one this version installs: run install-helper.sh again."
            ).format(count=len(fds), name=LAUNCHD_SOCKET_NAME, plist=PLIST_PATH)
        )
    listener = socket.socket(fileno=fds[0])
    if listener.family != socket.AF_UNIX or listener.type != socket.SOCK_STREAM:
        listener.close()
        raise PlatformError(
            _("The socket launchd handed over is not a Unix stream socket; check SockFamily and SockType in {plist}.").format(plist=PLIST_PATH)
        )
    return listener


# -- one connection -------------------------------------------------------------------------------


def create_tun(ifname: str | None) -> tun_macos.TunDevice:
    """A new utun (None: the kernel picks the first free one). Unlike Linux there is no
    persistent utun to attach to: every open creates one, and an existing name is EBUSY."""
    return tun_macos.TunDevice.open(ifname)


@dataclass(frozen=True)
class Settings:
    group_name: str
    allowed_gid: int | None
    journal_path: Path
    # The system calls below; tests pass recorded ones.
    peer_of: Callable[[socket.socket], Peer] = peer_of
    membership: Membership = field(default_factory=Membership)
    create_tun: Callable[[str | None], Any] = create_tun
    make_configurator: Callable[..., Any] = netconfig_macos.NetConfigurator
    make_kill_switch: Callable[[Path], Any] = kill_switch_macos.MacKillSwitch  # a pf anchor, by its journal

    @property
    def kill_switch_journal_path(self) -> Path:
        return kill_switch_macos.kill_switch_journal_path(self.journal_path)


def repair_leftovers(settings: Settings) -> list[str]:
    """What "repair" does, and what each session start does for the kill switch: undo what dead
    sessions left (the network's journal, a kill switch no live session holds). The sentences of
    what was removed."""
    notes = []
    if netconfig_macos.repair_from_journal(settings.journal_path):
        notes.append(_("Restored the routes and DNS that an ended sstp-vpn left changed."))
    return notes + kill_switch_macos.repair_kill_switch(settings.kill_switch_journal_path)


def serve_connection(connection: socket.socket, settings: Settings) -> None:
    try:
        peer = settings.peer_of(connection)
    except (OSError, PlatformError) as error:
        sentence = getattr(error, "sentence", None) or _("The peer's credentials cannot be read ({error}).").format(error=error)
        refuse_connection(connection, Peer(-1, -1, -1), sentence)
        return
    problem = authorization_problem(peer, settings.allowed_gid, settings.group_name, settings.membership)
    if problem is not None:
        refuse_connection(connection, peer, problem)
        return
    slot = hold_user_slot(settings.journal_path.parent / "helper-state", peer.uid)  # held until this process ends
    if slot is None:
        refuse_connection(connection, peer, too_many_sessions_sentence())
        return
    log.info("%s: session started", peer)
    if settings.kill_switch_journal_path.exists():  # a dead session's pf rules: the machine is cut off
        try:
            for note in kill_switch_macos.repair_kill_switch(settings.kill_switch_journal_path):
                log.warning("%s: %s", peer, note)  # not translated: the helper's log
        except PlatformError as error:
            log.error("%s: %s", peer, error.sentence)  # not translated: the helper's log
    serve_session(
        connection,
        peer,
        settings.journal_path,
        settings.create_tun,
        settings.make_configurator,
        kill_switch_factory=lambda: settings.make_kill_switch(settings.kill_switch_journal_path),
        repair=lambda: repair_leftovers(settings),
    )
    log.info("%s: session ended", peer)


# -- process life -----------------------------------------------------------------------------


def serve_launchd(settings: Settings, launchd: Launchd | None = None) -> int:
    listener = launchd_listener(launchd or Launchd())
    log.info("serving the socket launchd opened (%s)", LAUNCHD_SOCKET_NAME)
    serve_forking(listener, lambda connection: serve_connection(connection, settings), lambda connection: settings.peer_of(connection).uid)
    return 0


def listen_and_fork(path: Path, settings: Settings) -> int:
    """For a test by hand, without launchd: listen on `path` (mode 0660, the group's)."""
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise PlatformError(_("{path} exists and is not a socket; the network helper will not replace it.").format(path=path))
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # nobody may connect before the permissions below are set
    try:
        listener.bind(str(path))
    finally:
        os.umask(old_umask)
    os.chown(path, 0, 0 if settings.allowed_gid is None else settings.allowed_gid)
    os.chmod(path, 0o660)
    listener.listen(16)
    log.info("listening on %s", path)
    try:
        serve_forking(listener, lambda connection: serve_connection(connection, settings), lambda connection: settings.peer_of(connection).uid)
    finally:
        path.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sstp-vpn-helper",
        description=_(
            "The privileged network helper of SSTP VPN on macOS: creates the utun interface and "
            "sets routes and DNS for sstp-vpn running as an ordinary user. Started by launchd "
            "({plist}), or with --listen for a test by hand."
        ).format(plist=PLIST_PATH),
    )
    parser.add_argument(
        "--listen",
        metavar="PATH",
        type=Path,
        help=_("listen on this socket yourself (without launchd; launchd's is {socket})").format(socket=DEFAULT_SOCKET),
    )
    parser.add_argument(
        "--group", default=DEFAULT_GROUP, help=_("the group whose members may use the helper (default {group})").format(group=DEFAULT_GROUP)
    )
    parser.add_argument("--journal", type=Path, default=None, help=_("the undo journal (default /var/db/sstp-vpn/network-journal.json)"))
    args = parser.parse_args(argv)
    # launchd sends stderr to StandardErrorPath (/var/log/sstp-vpn-helper.log).
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s sstp-vpn-helper: %(message)s")
    if os.geteuid() != 0:
        log.error("sstp-vpn-helper must run as root (launchd starts it from %s).", PLIST_PATH)
        return 1
    journal = args.journal if args.journal is not None else netconfig_macos.default_journal_path()
    settings = Settings(args.group, allowed_gid(args.group, f"sudo dseditgroup -o create {args.group}"), journal)
    try:
        if args.listen is not None:
            return listen_and_fork(args.listen, settings)
        return serve_launchd(settings)
    except PlatformError as error:
        log.error("%s", error.sentence)
        return 1


if __name__ == "__main__":
    sys.exit(main())
