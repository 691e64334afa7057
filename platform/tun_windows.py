"""The Windows tunnel interface: a Wintun adapter, driven through wintun.dll with ctypes.

UNTESTED ON WINDOWS: written against wintun.h / the Wintun README (0.14), the Wintun example
(example/example.c) and the IP Helper documentation, and unit-tested on Linux with recorded fakes
of the DLL (tests/recorded_windows.py). Nothing here has run on a real Windows system yet.

Why it looks the way it does:
- wintun.dll is the official, signed, unmodified DLL from wintun.net, shipped beside this module as
  wintun/<arch>/wintun.dll with its LICENSE.txt (see wintun/README.md). It is loaded by absolute
  path only, so no other folder on the DLL search path can supply a look-alike, and only when a
  tunnel is opened: importing this module works everywhere.
- The adapter gets a GUID derived from its name, the same on every connect: Windows keys its
  network-location (firewall profile) identity on it, so a random GUID would make a new "network"
  every time.
- Wintun sessions need an elevated administrator (or SYSTEM), and the packet rings are mapped into
  the process that opened the session: this runs in the SSTP VPN network service (helper_windows,
  LocalSystem), which relays the packets to the unprivileged engine (packet_relay).
- Wintun signals arriving packets through a Win32 event, which a selectors loop cannot wait on.
  A reader thread waits on it (WaitForMultipleObjects on the read event and our quit event; ctypes
  releases the GIL during the wait), copies packets out in batches and hands them to a PacketInbox
  (packet_inbox.py), whose socketpair is `fileno()`, so the runner's selector wakes up exactly as
  it does for a Linux TUN descriptor. The queue is bounded: while the engine is behind, the thread
  stops taking packets and Wintun's ring fills and drops, as a kernel queue would.
- The adapter, its addresses and routes disappear when the adapter handle is closed, also when
  the process dies (Wintun 0.14 adapters are SwDevice-based).
"""

from __future__ import annotations

import ctypes
import logging
import sysconfig
import threading
import uuid
from contextlib import ExitStack
from ctypes import POINTER, byref, c_int32, c_uint32, c_uint64, c_void_p, c_wchar_p
from pathlib import Path
from typing import Any

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import winapi
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.packet_inbox import PacketInbox
from sstpvpn.platform.winapi import (
    AF_INET,
    AF_INET6,
    ERROR_ACCESS_DENIED,
    ERROR_BUFFER_OVERFLOW,
    ERROR_HANDLE_EOF,
    ERROR_NO_MORE_ITEMS,
    ERROR_NOT_FOUND,
    GUID,
    INFINITE,
    NO_ERROR,
    WAIT_OBJECT_0,
    Library,
    describe_error,
)

log = logging.getLogger(__name__)

DEFAULT_ADAPTER_NAME = "SSTP VPN"
TUNNEL_TYPE = "SSTP VPN"  # shown by Windows as the adapter's type
MAX_ADAPTER_NAME = 128  # wintun.h: names are at most MAX_ADAPTER_NAME - 1 characters

# The session's ring: a power of two between WINTUN_MIN_RING_CAPACITY (128 KiB) and
# WINTUN_MAX_RING_CAPACITY (64 MiB). 4 MiB, as Wintun's example uses, holds ~2800 full-size
# packets: far more than a Python engine needs to ride out a pause.
RING_CAPACITY = 0x400000
MIN_RING_CAPACITY = 0x20000
MAX_RING_CAPACITY = 0x4000000
MAX_PACKET = 0xFFFF  # WINTUN_MAX_IP_PACKET_SIZE
READ_BATCH = 64  # packets the reader copies out before handing them over
MAX_QUEUED_PACKETS = 1024  # packets waiting for the engine before the reader pauses
IPV6_MIN_MTU = 1280

# Fixed forever: changing it would give every adapter a new GUID, and so a new network identity.
ADAPTER_GUID_NAMESPACE = uuid.UUID("d4713858-b9ad-4cbf-bf3d-751760bac01d")

# sysconfig platform of the running Python -> Wintun's folder name. The Python process decides,
# not the OS: a 32-bit Python on 64-bit Windows needs the x86 DLL.
ARCHITECTURES = {"win-amd64": "amd64", "win-arm64": "arm64", "win32": "x86", "win-arm32": "arm"}

# wintun.h; every export is WINAPI (stdcall on x86), hence WinDLL. Handles are opaque pointers.
WINTUN_PROTOTYPES: dict[str, winapi.Prototype] = {
    # (Name, TunnelType, RequestedGUID or NULL) -> WINTUN_ADAPTER_HANDLE or NULL
    "WintunCreateAdapter": (c_void_p, [c_wchar_p, c_wchar_p, POINTER(GUID)]),
    "WintunCloseAdapter": (None, [c_void_p]),
    "WintunGetAdapterLUID": (None, [c_void_p, POINTER(c_uint64)]),
    "WintunSetLogger": (None, [c_void_p]),  # a WINTUN_LOGGER_CALLBACK function pointer, or NULL
    # (Adapter, Capacity) -> WINTUN_SESSION_HANDLE or NULL
    "WintunStartSession": (c_void_p, [c_void_p, c_uint32]),
    "WintunEndSession": (None, [c_void_p]),
    "WintunGetReadWaitEvent": (c_void_p, [c_void_p]),  # owned by the session: never CloseHandle it
    # (Session, *PacketSize out) -> BYTE* or NULL (GetLastError: ERROR_NO_MORE_ITEMS, ERROR_HANDLE_EOF, ...)
    "WintunReceivePacket": (c_void_p, [c_void_p, POINTER(c_uint32)]),
    "WintunReleaseReceivePacket": (None, [c_void_p, c_void_p]),
    # (Session, PacketSize) -> BYTE* or NULL (GetLastError: ERROR_BUFFER_OVERFLOW when the ring is full)
    "WintunAllocateSendPacket": (c_void_p, [c_void_p, c_uint32]),
    "WintunSendPacket": (None, [c_void_p, c_void_p]),
}


_logger_callback: Any = None  # Wintun keeps calling it: it must live as long as the process


def admin_sentence() -> str:
    return _(
        "Creating the tunnel adapter needs administrator rights, which the SSTP VPN network service has: "
        "check in Services (services.msc) that it runs as Local System, or reinstall SSTP VPN."
    )


def wintun_dll_path(python_platform: str | None = None) -> Path:
    """Where our copy of wintun.dll for this Python's architecture lives."""
    platform_tag = python_platform or sysconfig.get_platform()
    architecture = ARCHITECTURES.get(platform_tag)
    if architecture is None:
        raise PlatformError(_("SSTP VPN has no Wintun driver for this processor ({platform}).").format(platform=platform_tag))
    # Relative to this file, which also holds inside a PyInstaller bundle (sys._MEIPASS/sstpvpn/platform/).
    return Path(__file__).resolve().parent / "wintun" / architecture / "wintun.dll"


def load_wintun(path: Path | None = None) -> Library:
    """Load wintun.dll by absolute path, with every export's prototype declared."""
    path = wintun_dll_path() if path is None else path
    if not path.is_file():
        raise PlatformError(
            _(
                "The Wintun driver library is missing: SSTP VPN needs the official signed wintun.dll "
                "from wintun.net at {path}. Reinstall SSTP VPN (the file and its license come with it)."
            ).format(path=path)
        )
    library = winapi.load(str(path), WINTUN_PROTOTYPES)
    _install_logger(library)
    return library


def adapter_guid(name: str) -> GUID:
    """The adapter's GUID: the same for the same name, on every machine, forever."""
    identifier = uuid.uuid5(ADAPTER_GUID_NAMESPACE, name.casefold())
    return GUID.from_buffer_copy(identifier.bytes_le)  # GUID's first three fields are little-endian


def check_adapter_name(name: str) -> None:
    if not name or not name.strip() or len(name) >= MAX_ADAPTER_NAME or not name.isprintable():
        raise PlatformError(
            _("{name} cannot be a tunnel adapter name: use 1 to {maximum} characters, without control characters.").format(
                name=repr(name), maximum=MAX_ADAPTER_NAME - 1
            )
        )


class TunDevice:
    """An open Wintun adapter and session. Close it (or leave the `with` block) to remove the adapter."""

    def __init__(
        self, name: str, luid: int, *, adapter: int, session: int, quit_event: int, wintun: Library, kernel32: Library, iphlpapi: Library
    ) -> None:
        self.name = name  # the interface alias Windows gave the adapter ("SSTP VPN", or "SSTP VPN 2" when taken)
        self.luid = luid
        self.dropped_packets = 0  # packets write_packets() dropped because Wintun's ring was full
        self._adapter, self._session, self._quit_event = adapter, session, quit_event
        self._wintun, self._kernel32, self._iphlpapi = wintun, kernel32, iphlpapi
        self._closed = False
        self._inbox = PacketInbox(MAX_QUEUED_PACKETS)
        self._read_event = wintun.WintunGetReadWaitEvent(session)
        self._reader = threading.Thread(target=self._read_loop, name=f"Wintun reader ({name})", daemon=True)
        self._reader.start()

    @classmethod
    def open(
        cls, name: str | None = None, *, wintun: Library | None = None, kernel32: Library | None = None, iphlpapi: Library | None = None
    ) -> TunDevice:
        """Create the adapter and start its session. `name` None gives "SSTP VPN"."""
        requested = DEFAULT_ADAPTER_NAME if name is None else name
        check_adapter_name(requested)
        wintun = load_wintun() if wintun is None else wintun
        kernel32 = winapi.kernel32() if kernel32 is None else kernel32
        iphlpapi = winapi.iphlpapi() if iphlpapi is None else iphlpapi
        guid = adapter_guid(requested)
        with ExitStack() as undo:  # on any failure, release what was made so far, newest first
            adapter = wintun.WintunCreateAdapter(requested, TUNNEL_TYPE, byref(guid))
            if not adapter:
                raise _create_error(wintun.last_error(), requested)
            undo.callback(wintun.WintunCloseAdapter, adapter)
            luid = c_uint64()
            wintun.WintunGetAdapterLUID(adapter, byref(luid))
            alias = _interface_alias(iphlpapi, luid.value, requested)
            session = wintun.WintunStartSession(adapter, RING_CAPACITY)
            if not session:
                raise _session_error(wintun.last_error(), alias)
            undo.callback(wintun.WintunEndSession, session)
            # Manual-reset, initially unset: once set, every later wait returns at once.
            quit_event = kernel32.CreateEventW(None, True, False, None)
            if not quit_event:
                raise PlatformError(_("Windows could not create an event ({reason}).").format(reason=describe_error(kernel32.last_error())))
            undo.callback(kernel32.CloseHandle, quit_event)
            device = cls(
                alias, luid.value, adapter=adapter, session=session, quit_event=quit_event, wintun=wintun, kernel32=kernel32, iphlpapi=iphlpapi
            )
            undo.pop_all()
        return device

    def fileno(self) -> int:
        """A socket that is readable while packets are waiting (or the reader has failed)."""
        if self._closed:
            raise PlatformError(_("The tunnel interface {name} is already closed.").format(name=self.name))
        return self._inbox.fileno()

    @property
    def closed(self) -> bool:
        return self._closed

    def read_packets(self, max_count: int = 64) -> list[bytes]:
        """The packets waiting, at most `max_count`; [] if none."""
        self.fileno()
        return self._inbox.take(max_count)

    def write_packets(self, packets: list[bytes]) -> None:
        """Send packets into the system through Wintun's send ring: allocate, copy, send. A full
        ring (ERROR_BUFFER_OVERFLOW) drops the packet, counted in `dropped_packets`."""
        self.fileno()
        wintun = self._wintun
        for packet in packets:
            size = len(packet)
            if not 0 < size <= MAX_PACKET:
                self.dropped_packets += 1
                continue
            buffer = wintun.WintunAllocateSendPacket(self._session, size)
            if not buffer:
                error = wintun.last_error()
                if error == ERROR_BUFFER_OVERFLOW:
                    self.dropped_packets += 1
                    continue
                if error == ERROR_HANDLE_EOF:
                    raise PlatformError(_("The tunnel adapter {name} was removed; reconnect to create it anew.").format(name=self.name))
                raise PlatformError(
                    _("Sending into the tunnel adapter {name} failed ({reason}); reconnect to create it anew.").format(
                        name=self.name, reason=describe_error(error)
                    )
                )
            ctypes.memmove(buffer, packet, size)
            wintun.WintunSendPacket(self._session, buffer)

    @property
    def mtu(self) -> int:
        self.fileno()
        code, row = winapi.read_interface(self._iphlpapi, self.luid, AF_INET)
        if code != NO_ERROR:
            raise PlatformError(
                _("Could not read the MTU of the tunnel adapter {name} ({reason}).").format(name=self.name, reason=describe_error(code))
            )
        return int(row.NlMtu)

    def set_mtu(self, mtu: int) -> None:
        """The IP MTU for IPv4 and, when it is at least IPv6's minimum of 1280, for IPv6."""
        if not 68 <= mtu <= MAX_PACKET:
            raise PlatformError(_("An MTU of {mtu} bytes is not possible: it must be between 68 and {maximum}.").format(mtu=mtu, maximum=MAX_PACKET))
        self.fileno()
        for family in (AF_INET, AF_INET6):
            code, row = winapi.read_interface(self._iphlpapi, self.luid, family)
            if family == AF_INET6 and (code == ERROR_NOT_FOUND or mtu < IPV6_MIN_MTU):
                continue  # IPv6 is off on this adapter, or cannot run at this MTU
            if code == NO_ERROR:
                row.NlMtu = mtu
                code = winapi.write_interface(self._iphlpapi, row)
            if code != NO_ERROR:
                raise PlatformError(
                    _("Windows refused an MTU of {mtu} bytes on the tunnel adapter {name} ({reason}).").format(
                        mtu=mtu, name=self.name, reason=describe_error(code)
                    )
                )

    def close(self) -> None:
        """Stop the reader, end the session and close the adapter (which removes it). Safe twice."""
        if self._closed:
            return
        self._closed = True
        self._inbox.stop()
        self._kernel32.SetEvent(self._quit_event)
        self._reader.join()  # it must be out of Wintun's calls before the session ends
        self._wintun.WintunEndSession(self._session)
        self._kernel32.CloseHandle(self._quit_event)
        self._wintun.WintunCloseAdapter(self._adapter)
        self._inbox.close()

    def __enter__(self) -> TunDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TunDevice {self.name} {'closed' if self._closed else 'open'}>"

    # -- the reader thread ---------------------------------------------------------------

    def _read_loop(self) -> None:
        wintun, session = self._wintun, self._session
        handles = (c_void_p * 2)(self._read_event, self._quit_event)
        size = c_uint32()
        while not self._inbox.stopping:
            batch: list[bytes] = []
            error = ERROR_NO_MORE_ITEMS
            while len(batch) < READ_BATCH:
                packet = wintun.WintunReceivePacket(session, byref(size))
                if not packet:
                    error = wintun.last_error()
                    break
                batch.append(ctypes.string_at(packet, size.value))
                wintun.WintunReleaseReceivePacket(session, packet)
            if batch:
                self._inbox.hand_over(batch)
                continue
            if error == ERROR_NO_MORE_ITEMS:
                result = self._kernel32.WaitForMultipleObjects(2, handles, False, INFINITE)
                if result == WAIT_OBJECT_0:
                    continue  # packets arrived
                if result == WAIT_OBJECT_0 + 1:
                    return  # close() asked us to stop
                self._inbox.fail(
                    _("Waiting for packets from the tunnel adapter {name} failed ({reason}); reconnect.").format(
                        name=self.name, reason=describe_error(self._kernel32.last_error())
                    )
                )
            elif error == ERROR_HANDLE_EOF:
                self._inbox.fail(_("The tunnel adapter {name} was removed; reconnect to create it anew.").format(name=self.name))
            else:
                self._inbox.fail(
                    _("Reading from the tunnel adapter {name} failed ({reason}); reconnect to create it anew.").format(
                        name=self.name, reason=describe_error(error)
                    )
                )
            return


def _interface_alias(iphlpapi: Library, luid: int, requested: str) -> str:
    """The name Windows gave the adapter's interface: Wintun appends " 2", " 3", ... when the
    requested name is taken, and the network configuration finds the interface by this name."""
    buffer = ctypes.create_unicode_buffer(winapi.NDIS_IF_MAX_STRING_SIZE + 1)
    code = iphlpapi.ConvertInterfaceLuidToAlias(byref(c_uint64(luid)), buffer, len(buffer))
    if code != NO_ERROR:
        raise PlatformError(
            _("Windows created the tunnel adapter {name} but cannot name its interface ({reason}); reconnect.").format(
                name=requested, reason=describe_error(code)
            )
        )
    return buffer.value


def _create_error(code: int, name: str) -> PlatformError:
    if code in (ERROR_ACCESS_DENIED, winapi.ERROR_ELEVATION_REQUIRED):
        return PlatformError(admin_sentence())
    # Wintun may fail without setting an error code (seen under Wine); its reason is then only in its log.
    reason = describe_error(code) if code else _("Wintun's reason is in the log")
    return PlatformError(
        _("Windows could not create the tunnel adapter {name} ({reason}); if another SSTP VPN connection is up, disconnect it first.").format(
            name=name, reason=reason
        )
    )


def _session_error(code: int, name: str) -> PlatformError:
    if code in (ERROR_ACCESS_DENIED, winapi.ERROR_ELEVATION_REQUIRED):
        return PlatformError(admin_sentence())
    return PlatformError(_("Windows could not start the tunnel adapter {name} ({reason}).").format(name=name, reason=describe_error(code)))


def _install_logger(library: Library) -> None:
    """Send Wintun's own log lines (why an adapter could not be created, ...) to our log."""
    global _logger_callback
    callback_type = getattr(ctypes, "WINFUNCTYPE", None)  # Windows only
    if callback_type is None or _logger_callback is not None:
        return
    levels = {0: logging.DEBUG, 1: logging.WARNING, 2: logging.ERROR}  # WINTUN_LOG_INFO, _WARN, _ERR

    # May be called from several threads at once (Wintun's README); logging is thread-safe.
    def log_line(level: int, _timestamp: int, message: str | None) -> None:
        log.log(levels.get(level, logging.ERROR), "Wintun: %s", message)

    _logger_callback = callback_type(None, c_int32, c_uint64, c_wchar_p)(log_line)
    library.WintunSetLogger(_logger_callback)
