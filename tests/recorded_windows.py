"""Recorded stand-ins for wintun.dll, kernel32.dll and iphlpapi.dll, so that tun_windows and
netconfig_windows run on Linux.

Each stand-in has the DLL's export names and takes the same arguments our code passes to the real
functions (ctypes objects, `byref(...)` references), behaves as the documentation says (Wintun's
README and wintun.h, the IP Helper reference) and records every call in `calls`, with the raw
bytes of every structure passed by reference, so tests can assert exact calls, arguments and byte
layouts. `last_error()` is per thread, like GetLastError().

Handles are small integers; a Wintun packet pointer is the address of a ctypes buffer owned by
the stand-in. Nothing here talks to any network.
"""

from __future__ import annotations

import collections
import ctypes
import ipaddress
import struct
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from sstpvpn.platform import winapi
from sstpvpn.platform.winapi import ERROR_BUFFER_OVERFLOW, ERROR_HANDLE_EOF, ERROR_NO_MORE_ITEMS, ERROR_NOT_FOUND, NO_ERROR

ADAPTER = 0xADA
SESSION = 0x5E5
READ_EVENT = 0xE1
LUID = 0x0006_0000_0100_0000  # an IF_TYPE_PROP_VIRTUAL-looking LUID
WAIT_FAILED = 0xFFFFFFFF


def referenced(argument: Any) -> Any:
    """The ctypes object behind `byref(x)` (or x itself)."""
    return getattr(argument, "_obj", argument)


class _LastError(threading.local):
    code = 0


class Events:
    """Win32 events: auto-reset (Wintun's read event) or manual-reset (our quit event)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._state: dict[int, bool] = {}
        self._manual: dict[int, bool] = {}
        self._next = 0x100

    def create(self, manual_reset: bool, handle: int | None = None) -> int:
        with self._changed:
            if handle is None:
                handle, self._next = self._next, self._next + 1
            self._state[handle], self._manual[handle] = False, manual_reset
        return handle

    def set(self, handle: int) -> bool:
        with self._changed:
            if handle not in self._state:
                return False
            self._state[handle] = True
            self._changed.notify_all()
        return True

    def forget(self, handle: int) -> bool:
        with self._changed:
            return self._state.pop(handle, None) is not None

    def wait_any(self, handles: list[int], timeout: float | None) -> int | None:
        """Index of the first signalled handle (resetting it if auto-reset); None on timeout."""
        with self._changed:

            def signalled() -> int | None:
                for index, handle in enumerate(handles):
                    if self._state.get(handle):
                        if not self._manual[handle]:
                            self._state[handle] = False
                        return index
                return None

            found = signalled()
            while found is None:
                if not self._changed.wait(timeout):
                    return None
                found = signalled()
            return found


class RecordedKernel32:
    def __init__(self, events: Events, calls: list[tuple[Any, ...]]) -> None:
        self.events = events
        self.calls = calls
        self.closed_handles: list[int] = []
        # pid -> (creation FILETIME ticks, still running)
        self.processes: dict[int, tuple[int, bool]] = {}
        self._error = _LastError()
        self._process_handles: dict[int, int] = {}

    def last_error(self) -> int:
        return self._error.code

    def CreateEventW(self, attributes: Any, manual_reset: bool, initial_state: bool, name: Any) -> int:
        assert attributes is None and name is None and not initial_state
        handle = self.events.create(bool(manual_reset))
        self.calls.append(("CreateEventW", bool(manual_reset), bool(initial_state)))
        return handle

    def SetEvent(self, handle: int) -> int:
        self.calls.append(("SetEvent", handle))
        return int(self.events.set(handle))

    def CloseHandle(self, handle: int) -> int:
        self.calls.append(("CloseHandle", handle))
        self.closed_handles.append(handle)
        if handle in self._process_handles:
            del self._process_handles[handle]
            return 1
        return int(self.events.forget(handle))

    def WaitForMultipleObjects(self, count: int, handles: Any, wait_all: bool, milliseconds: int) -> int:
        assert not wait_all and milliseconds == winapi.INFINITE
        listed = [handles[index] for index in range(count)]
        self.calls.append(("WaitForMultipleObjects", tuple(listed)))
        index = self.events.wait_any(listed, timeout=10)
        if index is None:  # a test that forgot to stop the reader: fail loudly, do not hang
            self._error.code = 1460  # ERROR_TIMEOUT
            return WAIT_FAILED
        return index

    def OpenProcess(self, access: int, inherit: bool, pid: int) -> int | None:
        self.calls.append(("OpenProcess", access, bool(inherit), pid))
        if pid not in self.processes:
            self._error.code = 87
            return None
        handle = 0x9000 + pid
        self._process_handles[handle] = pid
        return handle

    def GetExitCodeProcess(self, handle: int, code: Any) -> int:
        pid = self._process_handles[handle]
        referenced(code).value = winapi.STILL_ACTIVE if self.processes[pid][1] else 0
        return 1

    def GetProcessTimes(self, handle: int, creation: Any, exit_: Any, kernel: Any, user: Any) -> int:
        ticks = self.processes[self._process_handles[handle]][0]
        referenced(creation).dwLowDateTime = ticks & 0xFFFFFFFF
        referenced(creation).dwHighDateTime = ticks >> 32
        return 1


class RecordedWintun:
    """wintun.dll: one adapter, one session; `arrive()` puts packets into the adapter as the
    system would, `sent` collects what was given to WintunSendPacket."""

    def __init__(self, events: Events, calls: list[tuple[Any, ...]]) -> None:
        self.events = events
        self.calls = calls
        self.sent: list[bytes] = []
        self.create_error: int | None = None  # GetLastError of a failing WintunCreateAdapter
        self.session_error: int | None = None
        self.send_ring_free = 1 << 30  # bytes the send ring takes before ERROR_BUFFER_OVERFLOW
        self.outstanding: dict[int, ctypes.Array] = {}  # received packets not yet released
        self._inbound: collections.deque[bytes] = collections.deque()
        self._terminated = False
        self._lock = threading.Lock()
        self._allocated: dict[int, ctypes.Array] = {}
        self._error = _LastError()

    def last_error(self) -> int:
        return self._error.code

    # -- what the system does ------------------------------------------------------------

    def arrive(self, *packets: bytes) -> None:
        with self._lock:
            self._inbound.extend(packets)
        self.events.set(READ_EVENT)

    def terminate(self) -> None:
        """The adapter goes away under the session (ERROR_HANDLE_EOF)."""
        self._terminated = True
        self.events.set(READ_EVENT)

    # -- exports -------------------------------------------------------------------------

    def WintunCreateAdapter(self, name: str, tunnel_type: str, guid: Any) -> int | None:
        self.calls.append(("WintunCreateAdapter", name, tunnel_type, bytes(referenced(guid))))
        if self.create_error is not None:
            self._error.code = self.create_error
            return None
        return ADAPTER

    def WintunGetAdapterLUID(self, adapter: int, luid: Any) -> None:
        assert adapter == ADAPTER
        self.calls.append(("WintunGetAdapterLUID", adapter))
        referenced(luid).value = LUID

    def WintunStartSession(self, adapter: int, capacity: int) -> int | None:
        self.calls.append(("WintunStartSession", adapter, capacity))
        if self.session_error is not None:
            self._error.code = self.session_error
            return None
        self.events.create(manual_reset=False, handle=READ_EVENT)
        return SESSION

    def WintunGetReadWaitEvent(self, session: int) -> int:
        self.calls.append(("WintunGetReadWaitEvent", session))
        return READ_EVENT

    def WintunReceivePacket(self, session: int, size: Any) -> int | None:
        assert session == SESSION
        with self._lock:
            if self._terminated:
                self._error.code = ERROR_HANDLE_EOF
                return None
            if not self._inbound:
                self._error.code = ERROR_NO_MORE_ITEMS
                return None
            packet = self._inbound.popleft()
            buffer = ctypes.create_string_buffer(packet, len(packet))
            address = ctypes.addressof(buffer)
            self.outstanding[address] = buffer
        referenced(size).value = len(packet)
        return address

    def WintunReleaseReceivePacket(self, session: int, packet: int) -> None:
        with self._lock:
            assert packet in self.outstanding, "released a packet that was not received"
            del self.outstanding[packet]

    def WintunAllocateSendPacket(self, session: int, size: int) -> int | None:
        assert session == SESSION
        if self._terminated:
            self._error.code = ERROR_HANDLE_EOF
            return None
        if size > self.send_ring_free:
            self._error.code = ERROR_BUFFER_OVERFLOW
            return None
        self.send_ring_free -= size
        buffer = ctypes.create_string_buffer(size)
        self._allocated[ctypes.addressof(buffer)] = buffer
        return ctypes.addressof(buffer)

    def WintunSendPacket(self, session: int, packet: int) -> None:
        buffer = self._allocated.pop(packet)
        self.sent.append(bytes(buffer))

    def WintunEndSession(self, session: int) -> None:
        self.calls.append(("WintunEndSession", session))
        self.events.forget(READ_EVENT)

    def WintunCloseAdapter(self, adapter: int) -> None:
        self.calls.append(("WintunCloseAdapter", adapter))


@dataclass
class Interface:
    """One IP interface (one address family of one adapter) as GetIpInterfaceEntry reports it."""

    mtu: int = 65535  # Wintun reports its maximum until told otherwise
    automatic_metric: int = 1
    metric: int = 25
    site_prefix_length: int = 64  # what Get may return; Set for IPv4 must see 0


@dataclass
class RecordedIpHelper:
    """iphlpapi.dll with a small routing world: interfaces, addresses and routes by LUID."""

    aliases: dict[str, int] = field(default_factory=lambda: {"SSTP VPN": LUID})
    guids: dict[int, bytes] = field(default_factory=lambda: {LUID: bytes(range(16))})
    indexes: dict[int, int] = field(default_factory=lambda: {LUID: 17})
    interfaces: dict[tuple[int, int], Interface] = field(
        default_factory=lambda: {(LUID, winapi.AF_INET): Interface(), (LUID, winapi.AF_INET6): Interface()}
    )
    best_route: tuple[str, int] | None = ("192.0.2.1", 0x0006_0000_0200_0000)  # (next hop, LUID)
    addresses: set[tuple[int, str, int]] = field(default_factory=set)
    routes: set[tuple[int, str, str]] = field(default_factory=set)  # (LUID, "dst/len", next hop)
    # export -> the error codes its next calls return (None: succeed), or one code for the next call
    refuse: dict[str, Any] = field(default_factory=dict)
    has_dns_settings: bool = True
    dns: dict[bytes, str] = field(default_factory=dict)  # GUID bytes -> NameServer
    # per SetInterfaceDnsSettings call: the wide strings the pointers at offsets 16, 24, 32, 56
    # (Domain, NameServer, SearchList, ProfileNameServer) point to, read from the raw bytes
    dns_strings: list[tuple[str | None, ...]] = field(default_factory=list)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    raw: list[tuple[str, bytes]] = field(default_factory=list)  # (export, bytes of the row passed)

    def __post_init__(self) -> None:
        if not self.has_dns_settings:
            self.SetInterfaceDnsSettings = None  # an older Windows: the export is missing

    def _refused(self, name: str) -> int | None:
        planned = self.refuse.get(name)
        if isinstance(planned, list):
            return planned.pop(0) if planned else None
        return self.refuse.pop(name, None)

    # -- names ---------------------------------------------------------------------------

    def ConvertInterfaceAliasToLuid(self, alias: str, luid: Any) -> int:
        self.calls.append(("ConvertInterfaceAliasToLuid", alias))
        if alias not in self.aliases:
            return winapi.ERROR_INVALID_PARAMETER  # what the documentation gives for an unknown alias
        referenced(luid).value = self.aliases[alias]
        return NO_ERROR

    def ConvertInterfaceLuidToAlias(self, luid: Any, buffer: Any, length: int) -> int:
        value = referenced(luid).value
        self.calls.append(("ConvertInterfaceLuidToAlias", value, length))
        names = [alias for alias, known in self.aliases.items() if known == value]
        if not names:
            return ERROR_NOT_FOUND
        buffer.value = names[0]
        return NO_ERROR

    def ConvertInterfaceLuidToGuid(self, luid: Any, guid: Any) -> int:
        value = referenced(luid).value
        self.calls.append(("ConvertInterfaceLuidToGuid", value))
        ctypes.memmove(ctypes.addressof(referenced(guid)), self.guids[value], 16)
        return NO_ERROR

    def ConvertInterfaceLuidToIndex(self, luid: Any, index: Any) -> int:
        value = referenced(luid).value
        self.calls.append(("ConvertInterfaceLuidToIndex", value))
        referenced(index).value = self.indexes[value]
        return NO_ERROR

    # -- interfaces ----------------------------------------------------------------------

    def InitializeIpInterfaceEntry(self, row: Any) -> None:
        # Documented: Family AF_UNSPEC, InterfaceLuid unspecified, everything else zero.
        ctypes.memset(ctypes.addressof(referenced(row)), 0, ctypes.sizeof(winapi.MIB_IPINTERFACE_ROW))

    def GetIpInterfaceEntry(self, row: Any) -> int:
        entry = referenced(row)
        self.calls.append(("GetIpInterfaceEntry", entry.InterfaceLuid, entry.Family))
        interface = self.interfaces.get((entry.InterfaceLuid, entry.Family))
        if interface is None:
            return ERROR_NOT_FOUND
        entry.NlMtu, entry.Metric = interface.mtu, interface.metric
        entry.UseAutomaticMetric, entry.SitePrefixLength = interface.automatic_metric, interface.site_prefix_length
        entry.Connected = 1
        return NO_ERROR

    def SetIpInterfaceEntry(self, row: Any) -> int:
        entry = referenced(row)
        self.raw.append(("SetIpInterfaceEntry", bytes(entry)))
        self.calls.append(("SetIpInterfaceEntry", entry.InterfaceLuid, entry.Family, entry.NlMtu, entry.UseAutomaticMetric, entry.Metric))
        refused = self._refused("SetIpInterfaceEntry")
        if refused is not None:
            return refused
        interface = self.interfaces.get((entry.InterfaceLuid, entry.Family))
        if interface is None:
            return ERROR_NOT_FOUND
        if entry.Family == winapi.AF_INET and entry.SitePrefixLength != 0:
            return winapi.ERROR_INVALID_PARAMETER
        interface.mtu, interface.metric = entry.NlMtu, entry.Metric
        interface.automatic_metric = entry.UseAutomaticMetric
        return NO_ERROR

    # -- addresses -----------------------------------------------------------------------

    def InitializeUnicastIpAddressEntry(self, row: Any) -> None:
        # Documented defaults: origins "unchanged", lifetimes infinite, prefix length 255 (unset).
        entry = referenced(row)
        ctypes.memset(ctypes.addressof(entry), 0, ctypes.sizeof(winapi.MIB_UNICASTIPADDRESS_ROW))
        entry.PrefixOrigin = entry.SuffixOrigin = 16  # IpPrefixOriginUnchanged, IpSuffixOriginUnchanged
        entry.ValidLifetime = entry.PreferredLifetime = winapi.INFINITE_LIFETIME
        entry.OnLinkPrefixLength = 255

    def CreateUnicastIpAddressEntry(self, row: Any) -> int:
        entry = referenced(row)
        self.raw.append(("CreateUnicastIpAddressEntry", bytes(entry)))
        key = (entry.InterfaceLuid, str(winapi.address_of(entry.Address)), entry.OnLinkPrefixLength)
        self.calls.append(("CreateUnicastIpAddressEntry", f"{key[1]}/{key[2]}"))
        refused = self._refused("CreateUnicastIpAddressEntry")
        if refused is not None:
            return refused
        if key in self.addresses:
            return winapi.ERROR_OBJECT_ALREADY_EXISTS
        self.addresses.add(key)
        return NO_ERROR

    def DeleteUnicastIpAddressEntry(self, row: Any) -> int:
        entry = referenced(row)
        address = str(winapi.address_of(entry.Address))
        self.calls.append(("DeleteUnicastIpAddressEntry", address))
        matches = {key for key in self.addresses if key[:2] == (entry.InterfaceLuid, address)}
        if not matches:
            return ERROR_NOT_FOUND
        self.addresses -= matches
        return NO_ERROR

    # -- routes --------------------------------------------------------------------------

    def InitializeIpForwardEntry(self, row: Any) -> None:
        # Documented: lifetimes infinite; Loopback, AutoconfigureAddress, Publish, Immortal TRUE;
        # SitePrefixLength, Metric and Protocol "illegal values"; everything else zero.
        entry = referenced(row)
        ctypes.memset(ctypes.addressof(entry), 0, ctypes.sizeof(winapi.MIB_IPFORWARD_ROW2))
        entry.ValidLifetime = entry.PreferredLifetime = winapi.INFINITE_LIFETIME
        entry.Loopback = entry.AutoconfigureAddress = entry.Publish = entry.Immortal = 1
        entry.SitePrefixLength, entry.Metric, entry.Protocol = 255, 0xFFFFFFFF, -1

    @staticmethod
    def _route_key(entry: winapi.MIB_IPFORWARD_ROW2) -> tuple[int, str, str]:
        destination = f"{winapi.address_of(entry.DestinationPrefix.Prefix)}/{entry.DestinationPrefix.PrefixLength}"
        return entry.InterfaceLuid, destination, str(winapi.address_of(entry.NextHop))

    def CreateIpForwardEntry2(self, row: Any) -> int:
        entry = referenced(row)
        self.raw.append(("CreateIpForwardEntry2", bytes(entry)))
        key = self._route_key(entry)
        self.calls.append(("CreateIpForwardEntry2", key[1], key[2], entry.InterfaceLuid))
        refused = self._refused("CreateIpForwardEntry2")
        if refused is not None:
            return refused
        if key in self.routes:
            return winapi.ERROR_OBJECT_ALREADY_EXISTS
        self.routes.add(key)
        return NO_ERROR

    def DeleteIpForwardEntry2(self, row: Any) -> int:
        key = self._route_key(referenced(row))
        self.calls.append(("DeleteIpForwardEntry2", key[1], key[2], key[0]))
        if key not in self.routes:
            return ERROR_NOT_FOUND
        self.routes.remove(key)
        return NO_ERROR

    def GetBestRoute2(self, luid: Any, index: int, source: Any, destination: Any, options: int, best: Any, best_source: Any) -> int:
        target = winapi.address_of(referenced(destination))
        self.calls.append(("GetBestRoute2", luid, index, source, str(target), options))
        if self.best_route is None:
            return winapi.ERROR_NOT_FOUND
        next_hop, interface = self.best_route
        row = referenced(best)
        row.InterfaceLuid = interface
        row.NextHop = winapi.sockaddr_inet(ipaddress.ip_address(next_hop))
        row.DestinationPrefix.Prefix = winapi.sockaddr_inet(ipaddress.ip_address("0.0.0.0"))
        return NO_ERROR

    # -- DNS -----------------------------------------------------------------------------

    def SetInterfaceDnsSettings(self, guid: Any, settings: Any) -> int:
        value = referenced(settings)
        raw = bytes(value)
        self.raw.append(("SetInterfaceDnsSettings", raw))
        pointers = [int.from_bytes(raw[offset : offset + 8], "little") for offset in (16, 24, 32, 56)]
        self.dns_strings.append(tuple(ctypes.wstring_at(pointer) if pointer else None for pointer in pointers))
        self.calls.append(("SetInterfaceDnsSettings", bytes(guid), value.Version, value.Flags, value.NameServer, value.SearchList))
        refused = self._refused("SetInterfaceDnsSettings")
        if refused is not None:
            return refused
        self.dns[bytes(guid)] = value.NameServer
        return NO_ERROR


class RecordedWindows:
    """The three DLLs, sharing one set of events and one call log (so tests see the order of
    calls across DLLs)."""

    def __init__(self, **ip_helper: Any) -> None:
        self.events = Events()
        self.calls: list[tuple[Any, ...]] = []
        self.kernel32 = RecordedKernel32(self.events, self.calls)
        self.wintun = RecordedWintun(self.events, self.calls)
        self.iphlpapi = RecordedIpHelper(calls=self.calls, **ip_helper)

    def libraries(self) -> dict[str, Any]:
        """Keyword arguments for TunDevice.open()."""
        return {"wintun": self.wintun, "kernel32": self.kernel32, "iphlpapi": self.iphlpapi}

    def calls_named(self, *names: str) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] in names]


# -- fwpuclnt.dll (the kill switch's Windows Filtering Platform) ------------------------------------

# The GUIDs of fwpmu.h, written out here again (not taken from the module under test) so that a
# wrong GUID or byte order there shows up as an unknown name.
WFP_NAMES = {
    "c38d57d1-05a7-4c33-904f-7fbceee60e82": "connect_v4",
    "4a72393b-319f-44bc-84c3-ba54dcb3b6b4": "connect_v6",
    "e1cd9fe7-f4b5-4273-96c0-592e487b8650": "accept_v4",
    "a3b42c97-9f04-4672-b87e-cee9c483257f": "accept_v6",
    "632ce23b-5167-435c-86d7-e903684aa80c": "flags",
    "4cd62a49-59c3-4969-b7f3-bda5d32890a4": "local_interface",
    "3971ef2b-623e-4f9a-8cb1-6e79b806b9a7": "protocol",
    "b235ae9a-1d64-49b8-a44c-5ff3d9095045": "remote_address",
    "0c1ba1af-5765-453f-af22-a8f791ac775b": "local_port",
    "c35a604d-d22b-4e1a-91b4-68f674ee674b": "remote_port",
}
ENGINE = 0xE9E
FWP_E_ALREADY_EXISTS = 0x80320009
FWP_E_FILTER_NOT_FOUND = 0x80320003
FWP_E_SUBLAYER_NOT_FOUND = 0x80320007
FWP_E_NO_TXN_IN_PROGRESS = 0x8032000D
FWP_E_TXN_IN_PROGRESS = 0x8032000E


def _guid_at(raw: bytes, offset: int) -> str:
    text = str(uuid.UUID(bytes_le=raw[offset : offset + 16]))
    return WFP_NAMES.get(text, text)


def _wide_at(raw: bytes, offset: int) -> str | None:
    pointer = int.from_bytes(raw[offset : offset + 8], "little")
    return ctypes.wstring_at(pointer) if pointer else None


def decode_value(raw: bytes) -> tuple[str, Any]:
    """An FWP_VALUE0 / FWP_CONDITION_VALUE0 (16 bytes: type at 0, union at 8), read as fwptypes.h
    lays it out: small integers in place, the rest behind a pointer."""
    kind = int.from_bytes(raw[0:4], "little")
    inline = raw[8:16]
    pointer = int.from_bytes(inline, "little")
    if kind == 0:
        return "empty", None
    if kind == 1:
        return "uint8", inline[0]
    if kind == 2:
        return "uint16", int.from_bytes(inline[:2], "little")
    if kind == 3:
        return "uint32", int.from_bytes(inline[:4], "little")
    if kind == 4:
        return "uint64", int.from_bytes(ctypes.string_at(pointer, 8), "little")
    if kind == 11:
        return "bytes16", ipaddress.IPv6Address(ctypes.string_at(pointer, 16))
    if kind == 0x100:  # FWP_V4_ADDR_AND_MASK: addr, mask as host-order UINT32
        addr, mask = struct.unpack("<II", ctypes.string_at(pointer, 8))
        return "v4mask", ipaddress.IPv4Network((addr, bin(mask).count("1")))
    if kind == 0x101:  # FWP_V6_ADDR_AND_MASK: 16 bytes, prefix length
        raw6 = ctypes.string_at(pointer, 17)
        return "v6mask", ipaddress.IPv6Network((raw6[:16], raw6[16]))
    raise AssertionError(f"a value type the kill switch does not use: {kind:#x}")


@dataclass(frozen=True)
class DecodedFilter:
    """An FWPM_FILTER0 read from its 200 bytes at the x64 offsets of fwpmtypes.h."""

    name: str | None
    layer: str
    sublayer: str
    weight: tuple[str, Any]
    action: int
    conditions: tuple[tuple[str, int, tuple[str, Any]], ...]  # (field, match type, value)
    flags: int
    provider_key: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> DecodedFilter:
        assert len(raw) == 200, len(raw)
        count = int.from_bytes(raw[112:116], "little")
        pointer = int.from_bytes(raw[120:128], "little")
        conditions = []
        if count:
            block = ctypes.string_at(pointer, 40 * count)  # FWPM_FILTER_CONDITION0: 40 bytes each
            for index in range(count):
                item = block[40 * index : 40 * (index + 1)]
                conditions.append((_guid_at(item, 0), int.from_bytes(item[16:20], "little"), decode_value(item[24:40])))
        return cls(
            name=_wide_at(raw, 16),
            layer=_guid_at(raw, 64),
            sublayer=_guid_at(raw, 80),
            weight=decode_value(raw[96:112]),
            action=int.from_bytes(raw[128:132], "little"),
            conditions=tuple(conditions),
            flags=int.from_bytes(raw[32:36], "little"),
            provider_key=int.from_bytes(raw[40:48], "little"),
        )


@dataclass
class RecordedWfp:
    """fwpuclnt.dll with a small filter engine: sublayers and filters per engine handle, and
    transactions that commit or abort (abort restores what was there at begin). Dynamic
    sessions lose everything at FwpmEngineClose0, as Windows documents."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    raw: list[tuple[str, bytes]] = field(default_factory=list)
    sublayers: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # key -> (weight, name)
    filters: dict[int, DecodedFilter] = field(default_factory=dict)  # committed or pending, by id
    refuse: dict[str, Any] = field(default_factory=dict)  # export -> code, or a list of codes (None: succeed)
    open_engines: set[int] = field(default_factory=set)
    dynamic: bool = False
    _saved: tuple[dict[str, Any], dict[int, DecodedFilter]] | None = None
    _next_id: int = 1000

    def _refused(self, name: str) -> int | None:
        planned = self.refuse.get(name)
        if isinstance(planned, list):
            return planned.pop(0) if planned else None
        return self.refuse.pop(name, None)

    def FwpmEngineOpen0(self, server: Any, authn: int, identity: Any, session: Any, handle: Any) -> int:
        raw = bytes(referenced(session))
        assert len(raw) == 72  # FWPM_SESSION0
        self.raw.append(("FwpmEngineOpen0", raw))
        flags = int.from_bytes(raw[32:36], "little")
        self.calls.append(("FwpmEngineOpen0", server, authn, identity, flags, _wide_at(raw, 16)))
        refused = self._refused("FwpmEngineOpen0")
        if refused is not None:
            return refused
        self.dynamic = bool(flags & 1)
        self.open_engines.add(ENGINE)
        referenced(handle).value = ENGINE
        return NO_ERROR

    def FwpmEngineClose0(self, engine: int) -> int:
        self.calls.append(("FwpmEngineClose0", engine))
        assert self._saved is None, "closed with a transaction open"
        self.open_engines.discard(engine)
        if self.dynamic:
            self.sublayers.clear()
            self.filters.clear()
        return NO_ERROR

    def FwpmTransactionBegin0(self, engine: int, flags: int) -> int:
        self.calls.append(("FwpmTransactionBegin0", engine, flags))
        assert engine in self.open_engines
        if self._saved is not None:
            return FWP_E_TXN_IN_PROGRESS
        refused = self._refused("FwpmTransactionBegin0")
        if refused is not None:
            return refused
        self._saved = (dict(self.sublayers), dict(self.filters))
        return NO_ERROR

    def FwpmTransactionCommit0(self, engine: int) -> int:
        self.calls.append(("FwpmTransactionCommit0", engine))
        if self._saved is None:
            return FWP_E_NO_TXN_IN_PROGRESS
        refused = self._refused("FwpmTransactionCommit0")
        if refused is not None:
            return refused  # the transaction stays open: the caller must abort
        self._saved = None
        return NO_ERROR

    def FwpmTransactionAbort0(self, engine: int) -> int:
        self.calls.append(("FwpmTransactionAbort0", engine))
        if self._saved is None:
            return FWP_E_NO_TXN_IN_PROGRESS
        self.sublayers, self.filters = self._saved[0], self._saved[1]
        self._saved = None
        return NO_ERROR

    def FwpmSubLayerAdd0(self, engine: int, sublayer: Any, descriptor: Any) -> int:
        raw = bytes(referenced(sublayer))
        assert len(raw) == 72  # FWPM_SUBLAYER0
        self.raw.append(("FwpmSubLayerAdd0", raw))
        key, weight = _guid_at(raw, 0), int.from_bytes(raw[64:66], "little")
        self.calls.append(("FwpmSubLayerAdd0", engine, key, weight, descriptor))
        assert self._saved is not None, "outside a transaction"
        refused = self._refused("FwpmSubLayerAdd0")
        if refused is not None:
            return refused
        if key in self.sublayers:
            return FWP_E_ALREADY_EXISTS
        self.sublayers[key] = (weight, _wide_at(raw, 16))
        return NO_ERROR

    def FwpmSubLayerDeleteByKey0(self, engine: int, key: Any) -> int:
        text = _guid_at(bytes(referenced(key)), 0)
        self.calls.append(("FwpmSubLayerDeleteByKey0", engine, text))
        if text not in self.sublayers:
            return FWP_E_SUBLAYER_NOT_FOUND
        del self.sublayers[text]
        return NO_ERROR

    def FwpmFilterAdd0(self, engine: int, filter_: Any, descriptor: Any, filter_id: Any) -> int:
        raw = bytes(referenced(filter_))
        self.raw.append(("FwpmFilterAdd0", raw))
        decoded = DecodedFilter.from_bytes(raw)
        self.calls.append(("FwpmFilterAdd0", engine, decoded))
        assert self._saved is not None, "outside a transaction"
        refused = self._refused("FwpmFilterAdd0")
        if refused is not None:
            return refused
        if decoded.sublayer not in self.sublayers:
            return FWP_E_SUBLAYER_NOT_FOUND
        self.filters[self._next_id] = decoded
        referenced(filter_id).value = self._next_id
        self._next_id += 1
        return NO_ERROR

    def FwpmFilterDeleteById0(self, engine: int, filter_id: int) -> int:
        self.calls.append(("FwpmFilterDeleteById0", engine, filter_id))
        refused = self._refused("FwpmFilterDeleteById0")
        if refused is not None:
            return refused
        if filter_id not in self.filters:
            return FWP_E_FILTER_NOT_FOUND
        del self.filters[filter_id]
        return NO_ERROR

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]
