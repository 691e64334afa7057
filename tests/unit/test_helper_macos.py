"""The macOS privileged helper, run on Linux against recorded stand-ins: the kernel's peer
credentials (struct xucred, checked against sys/ucred.h), libSystem (launch_activate_socket,
mbr_check_membership), the utun kernel control and the network tools (tests/recorded_macos.py).
Also the stream framing both ends use on macOS, the launchd plist the installer writes, and the
client's macOS wiring. None of this has run on a Mac: real launchd, LOCAL_PEERCRED, utun and
scutil behaviour are unverified."""

from __future__ import annotations

import ctypes
import errno
import os
import plistlib
import socket
import struct
import subprocess
import sys
import threading
from functools import partial
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from sstpvpn.client.core.types import NetworkPlan
from sstpvpn.platform import current, helper_client, helper_devices, helper_macos, helper_protocol, helper_transport, netconfig_macos, tun_macos
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.helper_client import HelperChannel, PrivilegedNetwork
from sstpvpn.platform.helper_macos import Launchd, Membership, Settings
from sstpvpn.platform.helper_protocol import MAX_MESSAGE_BYTES, OpenTun, Reply
from sstpvpn.platform.helper_session import Peer
from sstpvpn.platform.helper_transport import LENGTH_PREFIX, BrokenFraming, receive_message, send_message
from tests.recorded_macos import RecordedDarwin, ScutilStore, mac_commands

INSTALLER = Path(__file__).resolve().parents[2] / "installer" / "macos"
SERVER = "203.0.113.5"  # recorded only: nothing is sent anywhere
SERVICE = "8F1C2B3A-1111-2222-3333-444455556666"
SETUP_DNS = f"Setup:/Network/Service/{SERVICE}/DNS"
STARTED = "Mon Jan  1 10:00:00 2024"
PLAN = NetworkPlan(address=IPv4Address("198.18.30.10"), peer=IPv4Address("198.18.30.1"), dns=(IPv4Address("198.18.30.53"),), mtu=1400)
ADMIN_GID = 80
STAFF_GID = 20
IPV4_PACKET = bytes.fromhex("4500001c00000000400100000a0000010a000002") + bytes(8)


# -- struct xucred and the peer check -------------------------------------------------------------


class HeaderXucred(ctypes.Structure):
    """struct xucred exactly as macOS's sys/ucred.h declares it (u_int, uid_t, short, gid_t[NGROUPS])."""

    _fields_ = [("cr_version", ctypes.c_uint), ("cr_uid", ctypes.c_uint32), ("cr_ngroups", ctypes.c_short), ("cr_groups", ctypes.c_uint32 * 16)]


def xucred(uid: int, groups: list[int], version: int = 0, count: int | None = None) -> bytes:
    record = HeaderXucred(version, uid, len(groups) if count is None else count)
    for index, gid in enumerate(groups):
        record.cr_groups[index] = gid
    return bytes(record)


def test_the_xucred_layout_matches_sys_ucred_h():
    assert helper_macos.XUCRED.size == ctypes.sizeof(HeaderXucred) == 76
    assert HeaderXucred.cr_uid.offset == 4 and HeaderXucred.cr_ngroups.offset == 8
    assert HeaderXucred.cr_groups.offset == 12  # two bytes of padding after the short
    assert helper_macos.parse_xucred(xucred(501, [STAFF_GID, ADMIN_GID, 12])) == (501, (STAFF_GID, ADMIN_GID, 12))
    # sys/un.h: SOL_LOCAL 0, LOCAL_PEERCRED 0x001, LOCAL_PEERPID 0x002; NGROUPS 16, XUCRED_VERSION 0.
    assert (helper_macos.SOL_LOCAL, helper_macos.LOCAL_PEERCRED, helper_macos.LOCAL_PEERPID) == (0, 1, 2)
    assert (helper_macos.NGROUPS, helper_macos.XUCRED_VERSION) == (16, 0)
    if hasattr(socket, "LOCAL_PEERCRED"):  # only on a Mac
        assert socket.LOCAL_PEERCRED == helper_macos.LOCAL_PEERCRED


@pytest.mark.parametrize(
    "raw, reason",
    [
        (xucred(501, [STAFF_GID])[:40], "40 bytes"),
        (xucred(501, [STAFF_GID], version=1), "version 1"),
        (xucred(501, [STAFF_GID], count=17), "17 groups"),
        (xucred(501, [STAFF_GID], count=-1), "-1 groups"),
    ],
)
def test_credentials_of_another_layout_are_refused(raw, reason):
    with pytest.raises(PlatformError, match=reason):
        helper_macos.parse_xucred(raw)


class CredentialSocket:
    """The getsockopt calls peer_of makes, answered like XNU would."""

    def __init__(self, credentials: bytes, pid: int | None) -> None:
        self.credentials = credentials
        self.pid = pid
        self.calls: list[tuple[int, int, int]] = []

    def getsockopt(self, level: int, option: int, size: int) -> bytes:
        self.calls.append((level, option, size))
        if option == helper_macos.LOCAL_PEERCRED:
            return self.credentials
        if self.pid is None:
            raise OSError(errno.EINVAL, "Invalid argument")
        return struct.pack("=i", self.pid)


def test_peer_of_reads_local_peercred_and_local_peerpid():
    connection = CredentialSocket(xucred(501, [STAFF_GID, ADMIN_GID]), pid=4321)
    assert helper_macos.peer_of(connection) == Peer(pid=4321, uid=501, gid=STAFF_GID, groups=(STAFF_GID, ADMIN_GID))
    assert connection.calls == [(0, 1, 76), (0, 2, 4)]
    # The pid is only for the log: without it the check still works.
    assert helper_macos.peer_of(CredentialSocket(xucred(501, [STAFF_GID]), pid=None)).pid == -1


class RecordedMembershipLibc:
    """mbr_uid_to_uuid / mbr_gid_to_uuid / mbr_check_membership (membership.h) over a small directory."""

    def __init__(self, members: dict[int, set[int]], failing: bool = False) -> None:
        self.members = members  # gid -> uids
        self.failing = failing
        self.calls: list[str] = []

    def mbr_uid_to_uuid(self, uid: int, uuid) -> int:
        self.calls.append("mbr_uid_to_uuid")
        uuid[:] = list(b"U" + struct.pack("=I", uid) + bytes(11))
        return errno.EIO if self.failing else 0

    def mbr_gid_to_uuid(self, gid: int, uuid) -> int:
        self.calls.append("mbr_gid_to_uuid")
        uuid[:] = list(b"G" + struct.pack("=I", gid) + bytes(11))
        return 0

    def mbr_check_membership(self, user, group, answer) -> int:
        self.calls.append("mbr_check_membership")
        uid = struct.unpack("=I", bytes(user)[1:5])[0]
        gid = struct.unpack("=I", bytes(group)[1:5])[0]
        answer[0] = 1 if uid in self.members.get(gid, set()) else 0
        return 0


def test_root_and_group_members_may_connect_and_others_get_the_sentence():
    libc = RecordedMembershipLibc({ADMIN_GID: {502}})
    membership = Membership(libc)
    check = partial(helper_macos.authorization_problem, allowed_gid=ADMIN_GID, group_name="admin", membership=membership)
    assert check(Peer(1, 0, 0, (0,))) is None  # root
    assert check(Peer(2, 501, STAFF_GID, (STAFF_GID, ADMIN_GID))) is None  # in the kernel's 16 groups
    assert libc.calls == []  # ... so the directory was not asked
    assert check(Peer(3, 502, STAFF_GID, (STAFF_GID,))) is None  # beyond them: the directory says yes
    refused = check(Peer(4, 503, STAFF_GID, (STAFF_GID,)))
    assert refused == (
        "Only administrators may use the SSTP VPN network helper: make the account an administrator "
        "in System Settings > Users & Groups, or run sstp-vpn with sudo."
    )
    other = helper_macos.authorization_problem(Peer(4, 503, STAFF_GID, (STAFF_GID,)), 700, "vpnusers", membership)
    assert other == (
        "Only members of the group vpnusers may use the SSTP VPN network helper: add the user with "
        "'sudo dseditgroup -o edit -a USER -t user vpnusers'."
    )
    # A directory that cannot answer refuses; a missing group leaves only root.
    assert helper_macos.authorization_problem(
        Peer(3, 502, STAFF_GID, (STAFF_GID,)), ADMIN_GID, "admin", Membership(RecordedMembershipLibc({ADMIN_GID: {502}}, failing=True))
    )
    assert helper_macos.authorization_problem(Peer(2, 501, STAFF_GID, (ADMIN_GID,)), None, "admin", membership)


# -- framing ----------------------------------------------------------------------------------------


@pytest.fixture
def stream_pair():
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    right.settimeout(5)
    yield left, right
    left.close()
    right.close()


def test_stream_messages_round_trip_with_a_length_prefix(stream_pair):
    left, right = stream_pair
    send_message(left, b'{"ok":true}')
    send_message(left, b"")
    send_message(left, b"x" * MAX_MESSAGE_BYTES)
    assert receive_message(right) == (b'{"ok":true}', [])
    assert receive_message(right) == (b"", [])
    assert receive_message(right) == (b"x" * MAX_MESSAGE_BYTES, [])
    left.sendall(b"\0\0\0\x02hi")
    assert receive_message(right) == (b"hi", [])


def test_a_message_arriving_a_byte_at_a_time_is_put_together(stream_pair):
    left, right = stream_pair
    framed = LENGTH_PREFIX.pack(11) + b'{"ok":true}'

    def trickle():
        for byte in framed:
            left.send(bytes([byte]))

    sender = threading.Thread(target=trickle)
    sender.start()
    assert receive_message(right) == (b'{"ok":true}', [])
    sender.join()


def test_descriptors_travel_with_their_own_message_only(stream_pair, tmp_path):
    left, right = stream_pair
    with open(tmp_path / "a", "w") as first, open(tmp_path / "b", "w") as second:
        send_message(left, b"one", [first.fileno()])
        send_message(left, b"two", [second.fileno()])
    one, fds_one = receive_message(right, max_fds=4)
    two, fds_two = receive_message(right, max_fds=4)
    try:
        assert (one, two) == (b"one", b"two") and len(fds_one) == len(fds_two) == 1
        assert os.readlink(f"/proc/self/fd/{fds_one[0]}") == str(tmp_path / "a")
        assert os.readlink(f"/proc/self/fd/{fds_two[0]}") == str(tmp_path / "b")
        assert not os.get_inheritable(fds_one[0])
    finally:
        for fd in fds_one + fds_two:
            os.close(fd)


def test_an_oversized_length_breaks_the_framing(stream_pair):
    left, right = stream_pair
    left.sendall(LENGTH_PREFIX.pack(MAX_MESSAGE_BYTES + 1) + b"{")
    with pytest.raises(BrokenFraming, match="longer than the network helper accepts"):
        receive_message(right)


@pytest.mark.parametrize("sent", [b"", b"\0\0", LENGTH_PREFIX.pack(10) + b"short"])
def test_a_connection_closed_at_or_inside_a_message_is_the_end(stream_pair, sent):
    left, right = stream_pair
    left.sendall(sent)
    left.close()
    assert receive_message(right) is None


def test_seqpacket_keeps_the_linux_behaviour():
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with left, right:
        send_message(left, b"hello")
        left.send(b"y" * (MAX_MESSAGE_BYTES + 100))  # cut to MAX + 1: the parser refuses it, the session goes on
        send_message(left, b"after")
        assert receive_message(right) == (b"hello", [])
        assert receive_message(right) == (b"y" * (MAX_MESSAGE_BYTES + 1), [])
        assert receive_message(right) == (b"after", [])
        left.close()
        assert receive_message(right) is None
    assert helper_transport.socket_type_for("linux") == socket.SOCK_SEQPACKET
    assert helper_transport.socket_type_for("darwin") == socket.SOCK_STREAM


# -- a whole session: client (as on macOS) -> helper -> recorded utun and tools --------------------------


class RecordedMac:
    """A Mac as the helper sees it: utun kernel control, scutil store, ifconfig/route/ps."""

    def __init__(self, tmp_path: Path) -> None:
        self.darwin = RecordedDarwin()
        self.store = ScutilStore(
            {
                "State:/Network/Global/IPv4": {"PrimaryInterface": "en0", "PrimaryService": SERVICE, "Router": "192.0.2.1"},
                SETUP_DNS: {"ServerAddresses": ["192.0.2.53"], "SearchDomains": ["home.example"]},
            }
        )
        self.original_keys = {key: dict(value) for key, value in self.store.keys.items()}
        self.commands = mac_commands(self.store, server=SERVER, processes={os.getpid(): STARTED})
        self.journal = tmp_path / "journal.json"

    def settings(self, peer: Peer, members: dict[int, set[int]] | None = None) -> Settings:
        return Settings(
            "admin",
            ADMIN_GID,
            self.journal,
            peer_of=lambda _connection: peer,
            membership=Membership(RecordedMembershipLibc(members or {})),
            create_tun=lambda ifname: tun_macos.TunDevice.open(ifname, darwin=self.darwin),
            make_configurator=partial(netconfig_macos.NetConfigurator, run_command=self.commands),
        )

    def tools(self) -> list[tuple[str, ...]]:
        return [argv for argv in self.commands.argvs() if argv[0] in ("/sbin/ifconfig", "/sbin/route")]


class HelperThread:
    """helper_macos.serve_connection for one connection on a real Unix stream socket."""

    def __init__(self, path: Path, settings: Settings) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.thread = threading.Thread(target=self._serve, args=(settings,), daemon=True)
        self.thread.start()

    def _serve(self, settings: Settings) -> None:
        connection, _ = self.listener.accept()
        with connection:
            helper_macos.serve_connection(connection, settings)

    def join(self) -> None:
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.listener.close()


UP = [
    ("/sbin/ifconfig", "utun7", "inet", "198.18.30.10", "198.18.30.1", "mtu", "1400", "netmask", "255.255.255.255", "up"),
    ("/sbin/route", "-n", "get", "-inet", SERVER),
    ("/sbin/route", "-n", "add", "-inet", f"{SERVER}/32", "-gateway", "192.0.2.1"),
    ("/sbin/route", "-n", "add", "-inet", "0.0.0.0/1", "-interface", "utun7"),
    ("/sbin/route", "-n", "add", "-inet", "128.0.0.0/1", "-interface", "utun7"),
    ("/sbin/route", "-n", "add", "-inet6", "::/1", "-interface", "utun7"),
    ("/sbin/route", "-n", "add", "-inet6", "8000::/1", "-interface", "utun7"),
]
DOWN = [
    ("/sbin/route", "-n", "delete", "-inet6", "8000::/1"),
    ("/sbin/route", "-n", "delete", "-inet6", "::/1"),
    ("/sbin/route", "-n", "delete", "-inet", "128.0.0.0/1"),
    ("/sbin/route", "-n", "delete", "-inet", "0.0.0.0/1"),
    ("/sbin/route", "-n", "delete", "-inet", f"{SERVER}/32"),
    ("/sbin/ifconfig", "utun7", "inet", "198.18.30.10", "-alias"),
]


def test_a_session_opens_passes_the_utun_applies_and_restores(tmp_path):
    mac = RecordedMac(tmp_path)
    helper = HelperThread(tmp_path / "helper.sock", mac.settings(Peer(4321, 501, STAFF_GID, (STAFF_GID, ADMIN_GID))))
    network = PrivilegedNetwork(str(tmp_path / "helper.sock"), timeout=10, platform_name="darwin")
    tun = network.open_tun(None)
    assert isinstance(tun, helper_devices.HelperUtunDevice) and tun.name == "utun7"
    # The descriptor that came over SCM_RIGHTS is the helper's utun socket: a packet written
    # here reaches the (recorded) kernel behind its 4-byte AF_INET header.
    tun.write_packets([IPV4_PACKET])
    assert mac.darwin.kernel_side.recv(4096) == b"\0\0\0\x02" + IPV4_PACKET
    mac.darwin.kernel_side.send(b"\0\0\0\x02" + IPV4_PACKET)
    assert _read_soon(tun) == [IPV4_PACKET]

    tun.set_mtu(1400)  # SIOCSIFMTU needs root: done by the helper
    assert mac.darwin.mtu == 1400
    configurator = network.configurator(tun.name, SERVER, full_tunnel=True)
    configurator.apply(PLAN)
    assert mac.tools() == UP
    assert mac.store.keys[SETUP_DNS] == {"ServerAddresses": ["198.18.30.53"], "SearchDomains": ["home.example"]}
    assert configurator.restore() == []
    assert mac.tools() == UP + DOWN
    assert mac.store.keys == mac.original_keys
    tun.close()
    helper.join()
    assert mac.darwin.calls[-1] == ("close",)  # the helper's copy of the utun socket is closed
    assert not mac.journal.exists()


def test_a_client_that_vanishes_gets_its_network_restored(tmp_path):
    mac = RecordedMac(tmp_path)
    helper = HelperThread(tmp_path / "helper.sock", mac.settings(Peer(4321, 0, 0, (0,))))
    network = PrivilegedNetwork(str(tmp_path / "helper.sock"), timeout=10, platform_name="darwin")
    tun = network.open_tun("utun7")
    network.configurator(tun.name, SERVER).apply(PLAN)
    assert mac.store.keys != mac.original_keys
    tun._sock.close()  # as if the process died: both descriptors go, no restore is asked for
    network._channel._sock.close()
    helper.join()
    assert mac.tools() == UP + DOWN
    assert mac.store.keys == mac.original_keys
    assert ("connect", (0x2A, 8)) in mac.darwin.calls  # utun7 was asked for as unit 8


def test_an_outsider_is_refused_with_the_sentence_and_nothing_is_created(tmp_path):
    mac = RecordedMac(tmp_path)
    helper = HelperThread(tmp_path / "helper.sock", mac.settings(Peer(4321, 503, STAFF_GID, (STAFF_GID,))))
    network = PrivilegedNetwork(str(tmp_path / "helper.sock"), timeout=10, platform_name="darwin")
    with pytest.raises(PlatformError, match="^Only administrators may use the SSTP VPN network helper"):
        network.open_tun(None)
    helper.join()
    assert mac.darwin.calls == [] and mac.commands.calls == []


def test_a_request_the_rules_refuse_gets_a_sentence_and_the_session_goes_on(tmp_path):
    mac = RecordedMac(tmp_path)
    helper = HelperThread(tmp_path / "helper.sock", mac.settings(Peer(4321, 0, 0, (0,))))
    channel = HelperChannel(str(tmp_path / "helper.sock"), 10, platform_name="darwin")
    with pytest.raises(PlatformError, match="cannot be a tunnel interface name on macOS"):
        channel.request(OpenTun("sstp0"))  # valid for the protocol, not a utun name
    reply, fds = channel.request(OpenTun(None))
    assert reply.ifname == "utun7" and len(fds) == 1
    os.close(fds[0])
    with pytest.raises(PlatformError, match="already has its tunnel interface utun7"):
        channel.request(OpenTun(None))
    channel.close()
    helper.join()


def test_an_oversized_request_is_refused_and_the_connection_ends(tmp_path):
    mac = RecordedMac(tmp_path)
    helper = HelperThread(tmp_path / "helper.sock", mac.settings(Peer(4321, 0, 0, (0,))))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(str(tmp_path / "helper.sock"))
        client.sendall(LENGTH_PREFIX.pack(1 << 30) + b"{")
        message, _fds = receive_message(client)
        assert helper_protocol.parse_reply(message) == Reply(
            False, error=f"The message is longer than the network helper accepts ({MAX_MESSAGE_BYTES} bytes)."
        )
        assert receive_message(client) is None
    helper.join()


def _read_soon(tun) -> list[bytes]:
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(tun.fileno(), selectors.EVENT_READ)
        assert selector.select(5)
    return tun.read_packets()


# -- launch_activate_socket ---------------------------------------------------------------------------


class RecordedLaunchLibc:
    """launch_activate_socket(name, int **fds, size_t *count) and free() as libSystem has them."""

    def __init__(self, fds: list[int], error: int = 0) -> None:
        self.fds = fds
        self.error = error
        self.calls: list[tuple] = []
        self._array = (ctypes.c_int * max(len(fds), 1))(*fds)

    def launch_activate_socket(self, name: bytes, fds_out, count_out) -> int:
        self.calls.append(("launch_activate_socket", name))
        if self.error:
            return self.error
        fds_out[0] = ctypes.cast(self._array, ctypes.POINTER(ctypes.c_int))
        count_out[0] = len(self.fds)
        return 0

    def free(self, pointer) -> None:
        self.calls.append(("free", ctypes.addressof(pointer.contents) == ctypes.addressof(self._array)))


def test_the_listening_socket_comes_from_launch_activate_socket(tmp_path):
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(str(tmp_path / "launchd.sock"))
    listening.listen(1)
    libc = RecordedLaunchLibc([listening.detach()])
    listener = helper_macos.launchd_listener(Launchd(libc))
    with listener:
        assert libc.calls == [("launch_activate_socket", b"Listener"), ("free", True)]
        assert listener.getsockname() == str(tmp_path / "launchd.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(tmp_path / "launchd.sock"))
            listener.accept()[0].close()


@pytest.mark.parametrize(
    "error, sentence",
    [
        (errno.ESRCH, "sstp-vpn-helper was not started by launchd"),
        (errno.ENOENT, "declares no socket named Listener"),
        (errno.EALREADY, "was taken already"),
    ],
)
def test_launch_activate_socket_errors_become_sentences(error, sentence):
    libc = RecordedLaunchLibc([], error=error)
    with pytest.raises(PlatformError, match=sentence):
        helper_macos.launchd_listener(Launchd(libc))
    assert libc.calls == [("launch_activate_socket", b"Listener")]  # nothing to free


def test_a_plist_with_other_sockets_is_refused_and_the_descriptors_closed():
    first, second = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fds = [first.detach(), second.detach()]
    with pytest.raises(PlatformError, match="handed over 2 sockets"):
        helper_macos.launchd_listener(Launchd(RecordedLaunchLibc(fds)))
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)
    datagram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    fd = datagram.detach()
    with pytest.raises(PlatformError, match="not a Unix stream socket"):
        helper_macos.launchd_listener(Launchd(RecordedLaunchLibc([fd])))
    with pytest.raises(OSError):
        os.fstat(fd)


# -- installer and client wiring ------------------------------------------------------------------------


def render_plist(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(INSTALLER / "install-helper.sh"), "plist", *arguments], capture_output=True, text=True, check=False)


def test_the_installed_plist_matches_what_helper_and_client_expect():
    program = "/Library/PrivilegedHelperTools/org.sstp-vpn.helper/SSTP VPN.app/Contents/MacOS/sstp-vpn-helper"
    rendered = render_plist("--program", program, "--group", "admin", "--gid", "80")
    assert rendered.returncode == 0, rendered.stderr
    plist = plistlib.loads(rendered.stdout.encode())
    assert plist["Label"] == helper_macos.LABEL
    assert Path(helper_macos.PLIST_PATH).name == f"{helper_macos.LABEL}.plist"
    assert plist["ProgramArguments"] == [program, "--group", "admin"]
    listener = plist["Sockets"][helper_macos.LAUNCHD_SOCKET_NAME]
    assert listener == {
        "SockFamily": "Unix",
        "SockType": "stream",
        "SockPathName": helper_macos.DEFAULT_SOCKET,
        "SockPathOwner": 0,
        "SockPathGroup": 80,
        "SockPathMode": 0o660,
    }
    assert helper_client.default_socket_path("darwin") == helper_macos.DEFAULT_SOCKET == helper_client.MACOS_SOCKET
    assert "RunAtLoad" not in plist and "KeepAlive" not in plist  # started by the first connection
    assert plist["ExitTimeOut"] > 15  # the sessions' time to restore (helper_session)


def test_the_plist_escapes_paths_and_refuses_odd_group_names_and_ids():
    rendered = render_plist("--program", "/opt/A&B <x>/helper", "--group", "vpn_users", "--gid", "701")
    assert plistlib.loads(rendered.stdout.encode())["ProgramArguments"][0] == "/opt/A&B <x>/helper"
    assert render_plist("--program", "/x", "--group", "-rf", "--gid", "80").returncode == 1
    assert render_plist("--program", "/x", "--group", "a b", "--gid", "80").returncode == 1
    assert render_plist("--program", "/x", "--group", "admin", "--gid", "80; x").returncode == 1


def test_the_client_goes_through_the_helper_as_a_macos_user(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 501)
    for platform_name, expected in [("darwin", True), ("linux", True), ("win32", True)]:
        monkeypatch.setattr(sys, "platform", platform_name)
        assert current.uses_network_helper() is expected
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert current.uses_network_helper() is False
    monkeypatch.undo()
    assert helper_client.default_socket_path("linux") == "/run/sstp-vpn/helper.sock"


def test_the_client_explains_a_missing_helper_the_macos_way(tmp_path):
    with pytest.raises(PlatformError, match=r"install it once with sudo .*install-helper.sh\" install"):
        PrivilegedNetwork(str(tmp_path / "none.sock"), platform_name="darwin").open_tun(None)
