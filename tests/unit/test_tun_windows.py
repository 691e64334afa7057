"""tun_windows driven against recorded stand-ins of wintun.dll, kernel32 and iphlpapi
(tests/recorded_windows.py): exact calls and arguments, the GUID layout, the reader thread and
its socketpair, batching, back-pressure, drops, and the close order. Windows itself is not
involved: this proves the logic, not the DLL."""

from __future__ import annotations

import ctypes
import selectors
import struct
import time
import types
import uuid
from ctypes import c_uint32, c_uint64, c_void_p

import pytest

from sstpvpn.platform import tun_windows, winapi
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.tun_windows import TunDevice
from tests.recorded_windows import ADAPTER, LUID, READ_EVENT, SESSION, RecordedWindows

IPV4_PACKET = bytes.fromhex("4500001c00000000400100000a0000010a000002") + b"\x08\x00\xf7\xff\x00\x00\x00\x00"
IPV6_PACKET = bytes.fromhex("6000000000083a40") + bytes(16) + bytes(15) + b"\x01" + b"\x80\x00\x7f\xff\x00\x00\x00\x00"


@pytest.fixture
def windows():
    return RecordedWindows()


@pytest.fixture
def device(windows):
    device = TunDevice.open(**windows.libraries())
    yield device
    device.close()


def wait_until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_open_creates_the_adapter_with_its_fixed_guid_and_starts_a_4_mib_session(windows, device):
    guid = uuid.UUID("83d563d4-700a-5390-b4ee-443965827b30")  # uuid5(namespace, "sstp vpn"), pinned
    assert windows.calls[:5] == [
        ("WintunCreateAdapter", "SSTP VPN", "SSTP VPN", guid.bytes_le),
        ("WintunGetAdapterLUID", ADAPTER),
        ("ConvertInterfaceLuidToAlias", LUID, 257),
        ("WintunStartSession", ADAPTER, 0x400000),
        ("CreateEventW", True, False),  # the manual-reset quit event
    ]
    assert ("WintunGetReadWaitEvent", SESSION) in windows.calls
    assert device.name == "SSTP VPN" and device.luid == LUID and not device.closed


def test_the_guid_struct_holds_the_textual_guid_in_windows_byte_order():
    guid = tun_windows.adapter_guid("SSTP VPN")
    # {83d563d4-700a-5390-b4ee-443965827b30}: Data1..Data3 little-endian, Data4 as written.
    assert bytes(guid) == bytes.fromhex("d463d5830a709053b4ee443965827b30")
    assert (guid.Data1, guid.Data2, guid.Data3) == (0x83D563D4, 0x700A, 0x5390)
    assert bytes(tun_windows.adapter_guid("sstp vpn")) == bytes(guid)  # Windows names ignore case
    assert bytes(tun_windows.adapter_guid("Office")) != bytes(guid)


def test_the_ring_capacity_is_a_power_of_two_wintun_accepts():
    capacity = tun_windows.RING_CAPACITY
    assert capacity & (capacity - 1) == 0
    assert tun_windows.MIN_RING_CAPACITY <= capacity <= tun_windows.MAX_RING_CAPACITY


def test_the_name_windows_gave_the_adapter_becomes_the_device_name():
    windows = RecordedWindows(aliases={"SSTP VPN 2": LUID})  # "SSTP VPN" was taken
    with TunDevice.open(**windows.libraries()) as device:
        assert device.name == "SSTP VPN 2"


@pytest.mark.parametrize("name", ["", "   ", "x" * 128, "line\nbreak"])
def test_an_impossible_adapter_name_is_refused_before_any_call(windows, name):
    with pytest.raises(PlatformError, match="cannot be a tunnel adapter name: use 1 to 127 characters"):
        TunDevice.open(name, **windows.libraries())
    assert windows.calls == []


def test_access_denied_asks_for_administrator_rights(windows):
    windows.wintun.create_error = winapi.ERROR_ACCESS_DENIED
    with pytest.raises(PlatformError) as caught:
        TunDevice.open(**windows.libraries())
    assert caught.value.sentence == tun_windows.admin_sentence()
    assert [call[0] for call in windows.calls] == ["WintunCreateAdapter"]


@pytest.mark.parametrize(("code", "reason"), [(1450, "(error 1450"), (0, "(Wintun's reason is in the log)")])
def test_a_failed_creation_says_why_or_where_to_look(windows, code, reason):
    windows.wintun.create_error = code
    with pytest.raises(PlatformError) as caught:
        TunDevice.open(**windows.libraries())
    assert caught.value.sentence.startswith(f"Windows could not create the tunnel adapter SSTP VPN {reason}")
    assert "error 0" not in caught.value.sentence


def test_a_failed_session_closes_the_adapter_again(windows):
    windows.wintun.session_error = 1450  # ERROR_NO_SYSTEM_RESOURCES
    with pytest.raises(PlatformError, match="Windows could not start the tunnel adapter SSTP VPN"):
        TunDevice.open(**windows.libraries())
    assert [call[0] for call in windows.calls] == [
        "WintunCreateAdapter",
        "WintunGetAdapterLUID",
        "ConvertInterfaceLuidToAlias",
        "WintunStartSession",
        "WintunCloseAdapter",
    ]


def test_arriving_packets_wake_the_selector_and_are_read_in_batches(windows, device):
    packets = [IPV4_PACKET, IPV6_PACKET, IPV4_PACKET[:-1] + b"\x01"]
    with selectors.DefaultSelector() as selector:
        selector.register(device, selectors.EVENT_READ)
        assert selector.select(0.05) == []
        windows.wintun.arrive(*packets)
        assert len(selector.select(5)) == 1
        wait_until(lambda: not windows.wintun._inbound)
        wait_until(lambda: len(device._inbox) == 3)
        assert device.read_packets(2) == packets[:2]
        assert len(selector.select(0)) == 1  # one more waits: still readable
        assert device.read_packets() == packets[2:]
        assert device.read_packets() == []
        assert selector.select(0.05) == []
    assert windows.wintun.outstanding == {}  # every received packet was released


def test_the_reader_waits_on_the_read_event_and_the_quit_event(windows, device):
    wait_until(lambda: windows.calls_named("WaitForMultipleObjects"))
    quit_event = device._quit_event
    assert windows.calls_named("WaitForMultipleObjects")[0] == ("WaitForMultipleObjects", (READ_EVENT, quit_event))


def test_close_stops_the_reader_then_ends_the_session_then_closes_the_adapter(windows, device):
    wait_until(lambda: windows.calls_named("WaitForMultipleObjects"))
    quit_event = device._quit_event
    device.close()
    assert windows.calls_named("SetEvent", "WintunEndSession", "CloseHandle", "WintunCloseAdapter") == [
        ("SetEvent", quit_event),
        ("WintunEndSession", SESSION),
        ("CloseHandle", quit_event),
        ("WintunCloseAdapter", ADAPTER),
    ]
    assert not device._reader.is_alive()
    assert device.closed
    device.close()  # twice is fine
    with pytest.raises(PlatformError, match="already closed"):
        device.fileno()
    with pytest.raises(PlatformError, match="already closed"):
        device.read_packets()
    with pytest.raises(PlatformError, match="already closed"):
        device.write_packets([IPV4_PACKET])


def test_write_packets_allocates_copies_and_sends_each_packet(windows, device):
    device.write_packets([IPV4_PACKET, IPV6_PACKET])
    assert windows.wintun.sent == [IPV4_PACKET, IPV6_PACKET]
    assert device.dropped_packets == 0


def test_a_full_send_ring_drops_the_packet_and_counts_it(windows, device):
    windows.wintun.send_ring_free = len(IPV4_PACKET) + 10
    device.write_packets([IPV4_PACKET, IPV6_PACKET, b"", b"\x45" * 0x10000])
    assert windows.wintun.sent == [IPV4_PACKET]
    assert device.dropped_packets == 3  # ring full (ERROR_BUFFER_OVERFLOW), empty, over 0xFFFF


def test_a_removed_adapter_is_a_sentence_for_reader_and_writer(windows, device):
    with selectors.DefaultSelector() as selector:
        selector.register(device, selectors.EVENT_READ)
        windows.wintun.terminate()
        assert len(selector.select(5)) == 1
        wait_until(lambda: not device._reader.is_alive())
    with pytest.raises(PlatformError, match="The tunnel adapter SSTP VPN was removed; reconnect"):
        device.read_packets()
    with pytest.raises(PlatformError, match="The tunnel adapter SSTP VPN was removed; reconnect"):
        device.write_packets([IPV4_PACKET])


def test_while_the_engine_is_behind_the_reader_leaves_packets_in_wintuns_ring(windows, monkeypatch):
    monkeypatch.setattr(tun_windows, "MAX_QUEUED_PACKETS", 4)
    monkeypatch.setattr(tun_windows, "READ_BATCH", 2)
    packets = [IPV4_PACKET[:-1] + bytes([n]) for n in range(10)]
    with TunDevice.open(**windows.libraries()) as device:
        windows.wintun.arrive(*packets)
        wait_until(lambda: len(device._inbox) == 4 and len(windows.wintun._inbound) == 4)
        time.sleep(0.05)
        assert len(windows.wintun._inbound) == 4  # the reader holds one batch and waits for room
        received = device.read_packets(64)
        # Room again: the held batch goes in, one more batch, then the reader holds the last one.
        wait_until(lambda: len(device._inbox) == 4 and not windows.wintun._inbound)
        received += device.read_packets(64)
        wait_until(lambda: len(device._inbox) == 2)
        received += device.read_packets(64)
        assert received == packets


def test_the_mtu_is_set_for_ipv4_and_ipv6_with_site_prefix_length_0_for_ipv4(windows, device):
    windows.calls.clear()
    device.set_mtu(1400)
    assert windows.calls_named("SetIpInterfaceEntry") == [
        ("SetIpInterfaceEntry", LUID, winapi.AF_INET, 1400, 1, 25),
        ("SetIpInterfaceEntry", LUID, winapi.AF_INET6, 1400, 1, 25),
    ]
    row_v4 = windows.iphlpapi.raw[0][1]
    assert len(row_v4) == 168
    assert struct.unpack_from("<H", row_v4, 0)[0] == 2  # Family AF_INET
    assert struct.unpack_from("<Q", row_v4, 8)[0] == LUID  # InterfaceLuid
    assert struct.unpack_from("<I", row_v4, 144)[0] == 0  # SitePrefixLength
    assert struct.unpack_from("<I", row_v4, 152)[0] == 1400  # NlMtu
    assert device.mtu == 1400


def test_an_mtu_below_1280_leaves_ipv6_alone(windows, device):
    windows.calls.clear()
    device.set_mtu(1000)
    assert [call[2] for call in windows.calls_named("SetIpInterfaceEntry")] == [winapi.AF_INET]


@pytest.mark.parametrize("mtu", [0, 67, 65536])
def test_an_impossible_mtu_is_a_sentence(device, mtu):
    with pytest.raises(PlatformError, match=f"An MTU of {mtu} bytes is not possible"):
        device.set_mtu(mtu)


def test_a_refused_mtu_is_a_sentence(windows, device):
    windows.iphlpapi.refuse["SetIpInterfaceEntry"] = winapi.ERROR_INVALID_PARAMETER
    with pytest.raises(PlatformError, match="Windows refused an MTU of 500 bytes on the tunnel adapter SSTP VPN"):
        device.set_mtu(500)


def test_the_dll_is_found_beside_the_module_by_the_pythons_architecture():
    folder = tun_windows.wintun_dll_path("win-amd64").parent
    assert tun_windows.wintun_dll_path("win-amd64").parts[-4:] == ("platform", "wintun", "amd64", "wintun.dll")
    assert tun_windows.wintun_dll_path("win32") == folder.parent / "x86" / "wintun.dll"
    assert tun_windows.wintun_dll_path("win-arm64") == folder.parent / "arm64" / "wintun.dll"
    with pytest.raises(PlatformError, match=r"no Wintun driver for this processor \(linux-x86_64\)"):
        tun_windows.wintun_dll_path("linux-x86_64")


def test_a_missing_dll_is_a_sentence_naming_where_it_belongs(tmp_path):
    path = tmp_path / "wintun.dll"
    with pytest.raises(PlatformError) as caught:
        tun_windows.load_wintun(path)
    assert caught.value.sentence == (
        f"The Wintun driver library is missing: SSTP VPN needs the official signed wintun.dll from "
        f"wintun.net at {path}. Reinstall SSTP VPN (the file and its license come with it)."
    )


def test_loading_a_dll_off_windows_is_a_sentence_not_an_attribute_error(tmp_path):
    path = tmp_path / "wintun.dll"
    path.write_bytes(b"MZ")
    with pytest.raises(PlatformError, match="is a Windows library; this system is linux"):
        tun_windows.load_wintun(path)


def test_every_export_gets_the_prototype_from_wintun_h():
    # wintun.h: handles and BYTE* are pointers (never the default C int), sizes are DWORD.
    expected = {
        "WintunCreateAdapter": (c_void_p, [ctypes.c_wchar_p, ctypes.c_wchar_p, ctypes.POINTER(winapi.GUID)]),
        "WintunCloseAdapter": (None, [c_void_p]),
        "WintunGetAdapterLUID": (None, [c_void_p, ctypes.POINTER(c_uint64)]),
        "WintunSetLogger": (None, [c_void_p]),
        "WintunStartSession": (c_void_p, [c_void_p, c_uint32]),
        "WintunEndSession": (None, [c_void_p]),
        "WintunGetReadWaitEvent": (c_void_p, [c_void_p]),
        "WintunReceivePacket": (c_void_p, [c_void_p, ctypes.POINTER(c_uint32)]),
        "WintunReleaseReceivePacket": (None, [c_void_p, c_void_p]),
        "WintunAllocateSendPacket": (c_void_p, [c_void_p, c_uint32]),
        "WintunSendPacket": (None, [c_void_p, c_void_p]),
    }
    assert expected == tun_windows.WINTUN_PROTOTYPES
    dll = types.SimpleNamespace(**{name: types.SimpleNamespace() for name in expected})
    library = winapi.Library(dll, tun_windows.WINTUN_PROTOTYPES)
    assert library.WintunReceivePacket.restype is c_void_p
    assert library.WintunReceivePacket.argtypes == [c_void_p, ctypes.POINTER(c_uint32)]
    with pytest.raises(AttributeError):
        winapi.Library(types.SimpleNamespace(), tun_windows.WINTUN_PROTOTYPES)
