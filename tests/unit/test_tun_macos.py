"""tun_macos driven against a recorded kernel (tests/recorded_macos.py): the open sequence with
its exact arguments and struct bytes, the 4-byte address-family header both ways, MTU ioctls,
drops and errors. macOS itself is not involved."""

from __future__ import annotations

import errno
import selectors
import struct

import pytest

from sstpvpn.platform import tun_macos
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.tun_macos import TunDevice
from tests.recorded_macos import UTUN_CONTROL_ID, RecordedDarwin

IPV4_PACKET = bytes.fromhex("4500001c00000000400100000a0000010a000002") + bytes(8)
IPV6_PACKET = bytes.fromhex("6000000000083a40") + bytes(32) + bytes(8)


@pytest.fixture
def darwin():
    return RecordedDarwin()


@pytest.fixture
def device(darwin):
    with TunDevice.open(darwin=darwin) as device:
        yield device


def test_open_asks_the_kernel_for_a_utun_in_this_exact_sequence(darwin, device):
    ctl_info = struct.pack("=I", 0) + b"com.apple.net.utun_control" + bytes(96 - 26)
    assert darwin.calls == [
        ("socket", 32, 2, 2),  # PF_SYSTEM, SOCK_DGRAM, SYSPROTO_CONTROL
        ("ioctl", 0xC0644E03, ctl_info),  # CTLIOCGINFO with struct ctl_info
        ("connect", (UTUN_CONTROL_ID, 0)),  # (sc_id, sc_unit 0: the kernel picks the unit)
        ("getsockopt", 2, 2, 32),  # SYSPROTO_CONTROL, UTUN_OPT_IFNAME
        ("setblocking", False),
    ]
    assert device.name == "utun7"


def test_the_struct_layouts_and_ioctl_numbers_match_the_darwin_headers():
    assert tun_macos.CTL_INFO.size == 100  # u32 ctl_id + char ctl_name[MAX_KCTL_NAME = 96]
    # _IOWR(g, n, t) = 0xC0000000 | sizeof(t) << 16 | g << 8 | n; _IOW uses 0x80000000.
    assert 0xC0000000 | 100 << 16 | ord("N") << 8 | 3 == tun_macos.CTLIOCGINFO
    assert tun_macos.IFREQ_MTU.size == 32  # struct ifreq: char[16] + a 16-byte union
    assert 0xC0000000 | 32 << 16 | ord("i") << 8 | 51 == tun_macos.SIOCGIFMTU
    assert 0x80000000 | 32 << 16 | ord("i") << 8 | 52 == tun_macos.SIOCSIFMTU


@pytest.mark.parametrize("name, unit", [(None, 0), ("utun0", 1), ("utun5", 6), ("utun254", 255)])
def test_utun_n_is_asked_for_as_unit_n_plus_1(darwin, name, unit):
    with TunDevice.open(name, darwin=darwin) as device:
        assert ("connect", (UTUN_CONTROL_ID, unit)) in darwin.calls
        assert device.name == (name or "utun7")


@pytest.mark.parametrize("name", ["", "sstp0", "utun", "utun-1", "utun01", "utun255", "en0"])
def test_other_names_are_a_sentence_before_any_call(darwin, name):
    with pytest.raises(PlatformError, match="cannot be a tunnel interface name on macOS: macOS names them utun0"):
        TunDevice.open(name, darwin=darwin)
    assert darwin.calls == []


def test_a_packet_from_the_kernel_loses_its_family_header(darwin, device):
    with selectors.DefaultSelector() as selector:
        selector.register(device, selectors.EVENT_READ)
        assert selector.select(0.01) == []
        darwin.kernel_side.send(b"\x00\x00\x00\x02" + IPV4_PACKET)
        darwin.kernel_side.send(b"\x00\x00\x00\x1e" + IPV6_PACKET)
        assert len(selector.select(1)) == 1
        assert device.read_packets() == [IPV4_PACKET, IPV6_PACKET]
        assert device.read_packets() == []


def test_read_packets_stops_at_max_count(darwin, device):
    for _ in range(3):
        darwin.kernel_side.send(b"\x00\x00\x00\x02" + IPV4_PACKET)
    assert len(device.read_packets(2)) == 2
    assert len(device.read_packets(2)) == 1


def test_every_packet_to_the_kernel_gets_its_family_header(darwin, device):
    device.write_packets([IPV4_PACKET, IPV6_PACKET])
    assert darwin.kernel_side.recv(2000) == bytes([0, 0, 0, 2]) + IPV4_PACKET  # AF_INET
    assert darwin.kernel_side.recv(2000) == bytes([0, 0, 0, 0x1E]) + IPV6_PACKET  # AF_INET6 = 30 on Darwin


def test_a_packet_that_is_not_ip_is_dropped_and_counted(darwin, device):
    device.write_packets([b"", b"\x10junk", IPV4_PACKET])
    assert darwin.kernel_side.recv(2000) == b"\x00\x00\x00\x02" + IPV4_PACKET
    assert device.dropped_packets == 2


def test_a_full_kernel_queue_drops_but_another_error_is_a_sentence(darwin, device):
    darwin.send_error = OSError(errno.ENOBUFS, "No buffer space available")
    device.write_packets([IPV4_PACKET])
    assert device.dropped_packets == 1
    darwin.send_error = OSError(errno.ENXIO, "Device not configured")
    with pytest.raises(PlatformError, match="Writing to the tunnel interface utun7 failed"):
        device.write_packets([IPV4_PACKET])


def test_the_mtu_goes_through_siocsifmtu_and_siocgifmtu(darwin, device):
    darwin.calls.clear()
    device.set_mtu(1400)
    assert device.mtu == 1400
    name = b"utun7" + bytes(11)
    assert darwin.calls == [
        ("interface_ioctl", 0x80206934, name + struct.pack("=i", 1400) + bytes(12)),
        ("interface_ioctl", 0xC0206933, name + struct.pack("=i", 0) + bytes(12)),
    ]


@pytest.mark.parametrize("mtu", [0, 67, 65536])
def test_an_impossible_mtu_is_a_sentence(device, mtu):
    with pytest.raises(PlatformError, match=f"An MTU of {mtu} bytes is not possible"):
        device.set_mtu(mtu)


def test_an_mtu_refused_for_rights_asks_for_root(darwin, device):
    darwin.interface_error = OSError(errno.EPERM, "Operation not permitted")
    with pytest.raises(PlatformError, match="needs administrator rights: run sstp-vpn as root"):
        device.set_mtu(1400)


def test_connect_without_root_asks_for_root_and_closes_the_socket(darwin):
    darwin.connect_error = PermissionError(errno.EPERM, "Operation not permitted")
    with pytest.raises(PlatformError, match="Creating the tunnel interface needs administrator rights"):
        TunDevice.open(darwin=darwin)
    assert darwin.calls[-1] == ("close",)


def test_a_taken_unit_is_a_sentence(darwin):
    darwin.connect_error = OSError(errno.EBUSY, "Resource busy")
    with pytest.raises(PlatformError, match="The interface utun3 is already in use by another program"):
        TunDevice.open("utun3", darwin=darwin)


def test_close_closes_the_control_socket_once(darwin):
    device = TunDevice.open(darwin=darwin)
    device.close()
    device.close()
    assert darwin.calls.count(("close",)) == 1
    assert device.closed
    with pytest.raises(PlatformError, match="already closed"):
        device.fileno()
    with pytest.raises(PlatformError, match="already closed"):
        device.write_packets([IPV4_PACKET])
