"""ctypes declarations of the Windows API the platform layer calls: IP Helper (iphlpapi.dll)
structures and functions, and the few kernel32 functions for events and processes.

Importable everywhere: the structures are plain ctypes and use fixed-width types only (never
c_long/c_ulong, which are 8 bytes on 64-bit Linux and 4 on Windows), so their 64-bit layout can be
checked on Linux against the sizes and offsets of the Windows SDK headers (netioapi.h, ws2ipdef.h,
as also asserted by wireguard-windows' tunnel/winipcfg/types_test.go). Only `load()` needs
Windows: ctypes.WinDLL does not exist elsewhere.

Every function gets explicit argtypes and restype: without them ctypes passes and returns C ints,
which truncates pointers and handles on 64-bit Windows.
"""

from __future__ import annotations

import ctypes
import ipaddress
import ntpath
import os
import sys
import uuid
from ctypes import POINTER, Structure, Union, c_int32, c_size_t, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p, c_wchar_p
from typing import Any

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.errors import PlatformError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Windows' values (ws2def.h, winerror.h, ...), not the host's: AF_INET6 is 23 on Windows.
AF_INET = 2
AF_INET6 = 23

NO_ERROR = 0
ERROR_FILE_NOT_FOUND = 2
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_DATA = 13
ERROR_HANDLE_EOF = 38
ERROR_INVALID_PARAMETER = 87
ERROR_BUFFER_OVERFLOW = 111
ERROR_PROC_NOT_FOUND = 127
ERROR_NO_MORE_ITEMS = 259
ERROR_NOT_FOUND = 1168
ERROR_OBJECT_ALREADY_EXISTS = 5010
ERROR_ELEVATION_REQUIRED = 740

WAIT_OBJECT_0 = 0
INFINITE = 0xFFFFFFFF
STILL_ACTIVE = 259
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000

IP_DAD_STATE_PREFERRED = 4  # NL_DAD_STATE IpDadStatePreferred
INFINITE_LIFETIME = 0xFFFFFFFF
NDIS_IF_MAX_STRING_SIZE = 256  # an interface alias has at most this many characters

# DNS_INTERFACE_SETTINGS (netioapi.h, Windows 10 2004+)
DNS_INTERFACE_SETTINGS_VERSION1 = 1
DNS_SETTING_IPV6 = 0x0001
DNS_SETTING_NAMESERVER = 0x0002
DNS_SETTING_SEARCHLIST = 0x0004

NET_LUID = c_uint64  # a union whose only stored member is a ULONG64


class GUID(Structure):
    _fields_ = [("Data1", c_uint32), ("Data2", c_uint16), ("Data3", c_uint16), ("Data4", c_uint8 * 8)]


class SOCKADDR_IN(Structure):
    _fields_ = [("sin_family", c_uint16), ("sin_port", c_uint16), ("sin_addr", c_uint8 * 4), ("sin_zero", c_uint8 * 8)]


class SOCKADDR_IN6(Structure):
    _fields_ = [
        ("sin6_family", c_uint16),
        ("sin6_port", c_uint16),
        ("sin6_flowinfo", c_uint32),
        ("sin6_addr", c_uint8 * 16),
        ("sin6_scope_id", c_uint32),
    ]


class SOCKADDR_INET(Union):  # 28 bytes
    _fields_ = [("Ipv4", SOCKADDR_IN), ("Ipv6", SOCKADDR_IN6), ("si_family", c_uint16)]


class IP_ADDRESS_PREFIX(Structure):  # 32 bytes: PrefixLength at 28, then padding
    _fields_ = [("Prefix", SOCKADDR_INET), ("PrefixLength", c_uint8)]


class MIB_UNICASTIPADDRESS_ROW(Structure):  # 80 bytes
    _fields_ = [
        ("Address", SOCKADDR_INET),  # 0
        ("InterfaceLuid", NET_LUID),  # 32
        ("InterfaceIndex", c_uint32),  # 40
        ("PrefixOrigin", c_int32),  # 44
        ("SuffixOrigin", c_int32),  # 48
        ("ValidLifetime", c_uint32),  # 52
        ("PreferredLifetime", c_uint32),  # 56
        ("OnLinkPrefixLength", c_uint8),  # 60
        ("SkipAsSource", c_uint8),  # 61
        ("DadState", c_int32),  # 64
        ("ScopeId", c_uint32),  # 68
        ("CreationTimeStamp", c_uint64),  # 72
    ]


class MIB_IPFORWARD_ROW2(Structure):  # 104 bytes
    _fields_ = [
        ("InterfaceLuid", NET_LUID),  # 0
        ("InterfaceIndex", c_uint32),  # 8
        ("DestinationPrefix", IP_ADDRESS_PREFIX),  # 12
        ("NextHop", SOCKADDR_INET),  # 44
        ("SitePrefixLength", c_uint8),  # 72
        ("ValidLifetime", c_uint32),  # 76
        ("PreferredLifetime", c_uint32),  # 80
        ("Metric", c_uint32),  # 84
        ("Protocol", c_int32),  # 88
        ("Loopback", c_uint8),  # 92
        ("AutoconfigureAddress", c_uint8),  # 93
        ("Publish", c_uint8),  # 94
        ("Immortal", c_uint8),  # 95
        ("Age", c_uint32),  # 96
        ("Origin", c_int32),  # 100
    ]


class MIB_IPINTERFACE_ROW(Structure):  # 168 bytes
    _fields_ = [
        ("Family", c_uint16),  # 0
        ("InterfaceLuid", NET_LUID),  # 8
        ("InterfaceIndex", c_uint32),  # 16
        ("MaxReassemblySize", c_uint32),  # 20
        ("InterfaceIdentifier", c_uint64),  # 24
        ("MinRouterAdvertisementInterval", c_uint32),  # 32
        ("MaxRouterAdvertisementInterval", c_uint32),  # 36
        ("AdvertisingEnabled", c_uint8),  # 40
        ("ForwardingEnabled", c_uint8),  # 41
        ("WeakHostSend", c_uint8),  # 42
        ("WeakHostReceive", c_uint8),  # 43
        ("UseAutomaticMetric", c_uint8),  # 44
        ("UseNeighborUnreachabilityDetection", c_uint8),  # 45
        ("ManagedAddressConfigurationSupported", c_uint8),  # 46
        ("OtherStatefulConfigurationSupported", c_uint8),  # 47
        ("AdvertiseDefaultRoute", c_uint8),  # 48
        ("RouterDiscoveryBehavior", c_int32),  # 52
        ("DadTransmits", c_uint32),  # 56
        ("BaseReachableTime", c_uint32),  # 60
        ("RetransmitTime", c_uint32),  # 64
        ("PathMtuDiscoveryTimeout", c_uint32),  # 68
        ("LinkLocalAddressBehavior", c_int32),  # 72
        ("LinkLocalAddressTimeout", c_uint32),  # 76
        ("ZoneIndices", c_uint32 * 16),  # 80 (ScopeLevelCount = 16)
        ("SitePrefixLength", c_uint32),  # 144
        ("Metric", c_uint32),  # 148
        ("NlMtu", c_uint32),  # 152
        ("Connected", c_uint8),  # 156
        ("SupportsWakeUpPatterns", c_uint8),  # 157
        ("SupportsNeighborDiscovery", c_uint8),  # 158
        ("SupportsRouterDiscovery", c_uint8),  # 159
        ("ReachableTime", c_uint32),  # 160
        ("TransmitOffload", c_uint8),  # 164 (a byte of 1-bit flags)
        ("ReceiveOffload", c_uint8),  # 165
        ("DisableDefaultRoutes", c_uint8),  # 166
    ]


class DNS_INTERFACE_SETTINGS(Structure):  # version 1; 64 bytes on 64-bit
    _fields_ = [
        ("Version", c_uint32),  # 0 (then 4 bytes of padding)
        ("Flags", c_uint64),  # 8
        ("Domain", c_wchar_p),  # 16
        ("NameServer", c_wchar_p),  # 24
        ("SearchList", c_wchar_p),  # 32
        ("RegistrationEnabled", c_uint32),  # 40
        ("RegisterAdapterName", c_uint32),  # 44
        ("EnableLLMNR", c_uint32),  # 48
        ("QueryAdapterName", c_uint32),  # 52
        ("ProfileNameServer", c_wchar_p),  # 56
    ]


class FILETIME(Structure):
    _fields_ = [("dwLowDateTime", c_uint32), ("dwHighDateTime", c_uint32)]


# -- addresses ---------------------------------------------------------------------------


def sockaddr_inet(address: IPAddress) -> SOCKADDR_INET:
    """The SOCKADDR_INET for an address; port, flow info and scope stay 0."""
    value = SOCKADDR_INET()
    if address.version == 4:
        value.Ipv4.sin_family = AF_INET
        value.Ipv4.sin_addr[:] = list(address.packed)
    else:
        value.Ipv6.sin6_family = AF_INET6
        value.Ipv6.sin6_addr[:] = list(address.packed)
    return value


def address_of(value: SOCKADDR_INET) -> IPAddress | None:
    """The address a SOCKADDR_INET holds, None for another family."""
    if value.si_family == AF_INET:
        return ipaddress.IPv4Address(bytes(value.Ipv4.sin_addr))
    if value.si_family == AF_INET6:
        return ipaddress.IPv6Address(bytes(value.Ipv6.sin6_addr))
    return None


def family_of(address: IPAddress) -> int:
    return AF_INET if address.version == 4 else AF_INET6


# -- interface rows (used for the MTU by tun_windows and for the metric by netconfig_windows) --


def read_interface(iphlpapi: Any, luid: int, family: int) -> tuple[int, MIB_IPINTERFACE_ROW]:
    """GetIpInterfaceEntry for one address family: (error code, row)."""
    row = MIB_IPINTERFACE_ROW()
    iphlpapi.InitializeIpInterfaceEntry(ctypes.byref(row))
    row.Family = family
    row.InterfaceLuid = luid
    return iphlpapi.GetIpInterfaceEntry(ctypes.byref(row)), row


def write_interface(iphlpapi: Any, row: MIB_IPINTERFACE_ROW) -> int:
    """SetIpInterfaceEntry with a row read by read_interface(); the error code."""
    if row.Family == AF_INET:
        # The SetIpInterfaceEntry documentation requires SitePrefixLength 0 for IPv4 (OpenVPN's
        # interactive service does the same); GetIpInterfaceEntry may have filled it in.
        row.SitePrefixLength = 0
    return iphlpapi.SetIpInterfaceEntry(ctypes.byref(row))


# -- prototypes --------------------------------------------------------------------------

Prototype = tuple[Any, list[Any]]  # (restype, argtypes)

# All NETIOAPI_API functions return a Win32 error code (DWORD, NO_ERROR = 0); the Initialize*
# ones return nothing.
IPHLPAPI_PROTOTYPES: dict[str, Prototype] = {
    "ConvertInterfaceAliasToLuid": (c_uint32, [c_wchar_p, POINTER(NET_LUID)]),
    "ConvertInterfaceLuidToAlias": (c_uint32, [POINTER(NET_LUID), c_wchar_p, c_size_t]),
    "ConvertInterfaceLuidToGuid": (c_uint32, [POINTER(NET_LUID), POINTER(GUID)]),
    "ConvertInterfaceLuidToIndex": (c_uint32, [POINTER(NET_LUID), POINTER(c_uint32)]),
    "InitializeIpInterfaceEntry": (None, [POINTER(MIB_IPINTERFACE_ROW)]),
    "GetIpInterfaceEntry": (c_uint32, [POINTER(MIB_IPINTERFACE_ROW)]),
    "SetIpInterfaceEntry": (c_uint32, [POINTER(MIB_IPINTERFACE_ROW)]),
    "InitializeUnicastIpAddressEntry": (None, [POINTER(MIB_UNICASTIPADDRESS_ROW)]),
    "CreateUnicastIpAddressEntry": (c_uint32, [POINTER(MIB_UNICASTIPADDRESS_ROW)]),
    "DeleteUnicastIpAddressEntry": (c_uint32, [POINTER(MIB_UNICASTIPADDRESS_ROW)]),
    "InitializeIpForwardEntry": (None, [POINTER(MIB_IPFORWARD_ROW2)]),
    "CreateIpForwardEntry2": (c_uint32, [POINTER(MIB_IPFORWARD_ROW2)]),
    "DeleteIpForwardEntry2": (c_uint32, [POINTER(MIB_IPFORWARD_ROW2)]),
    # (InterfaceLuid optional, InterfaceIndex, SourceAddress optional, DestinationAddress,
    #  AddressSortOptions, BestRoute out, BestSourceAddress out)
    "GetBestRoute2": (
        c_uint32,
        [POINTER(NET_LUID), c_uint32, POINTER(SOCKADDR_INET), POINTER(SOCKADDR_INET), c_uint32, POINTER(MIB_IPFORWARD_ROW2), POINTER(SOCKADDR_INET)],
    ),
}
# Exported from Windows 10 2004 (build 19041) on; older systems fall back to netsh. The GUID
# goes by value, as in the C prototype.
IPHLPAPI_OPTIONAL_PROTOTYPES: dict[str, Prototype] = {
    "SetInterfaceDnsSettings": (c_uint32, [GUID, POINTER(DNS_INTERFACE_SETTINGS)]),
}

KERNEL32_PROTOTYPES: dict[str, Prototype] = {
    # (lpEventAttributes, bManualReset, bInitialState, lpName) -> HANDLE
    "CreateEventW": (c_void_p, [c_void_p, c_int32, c_int32, c_wchar_p]),
    "SetEvent": (c_int32, [c_void_p]),
    "CloseHandle": (c_int32, [c_void_p]),
    # (nCount, lpHandles, bWaitAll, dwMilliseconds) -> index or WAIT_FAILED
    "WaitForMultipleObjects": (c_uint32, [c_uint32, POINTER(c_void_p), c_int32, c_uint32]),
    # (dwDesiredAccess, bInheritHandle, dwProcessId) -> HANDLE or NULL
    "OpenProcess": (c_void_p, [c_uint32, c_int32, c_uint32]),
    # (hProcess, lpCreationTime, lpExitTime, lpKernelTime, lpUserTime) -> BOOL
    "GetProcessTimes": (c_int32, [c_void_p] + [POINTER(FILETIME)] * 4),
    "GetExitCodeProcess": (c_int32, [c_void_p, POINTER(c_uint32)]),
}


class Library:
    """A DLL's functions, each with its declared prototype, as attributes; optional exports the
    DLL lacks are None. `last_error()` is the calling thread's GetLastError() as ctypes saved
    it right after the last foreign call (use_last_error=True)."""

    def __init__(self, dll: Any, prototypes: dict[str, Prototype], optional: dict[str, Prototype] | None = None) -> None:
        for name, prototype in prototypes.items():
            setattr(self, name, _declare(getattr(dll, name), prototype))
        for name, prototype in (optional or {}).items():
            try:
                function = getattr(dll, name)
            except AttributeError:
                setattr(self, name, None)
            else:
                setattr(self, name, _declare(function, prototype))

    @staticmethod
    def last_error() -> int:
        return ctypes.get_last_error()

    def __getattr__(self, name: str) -> Any:
        """Only for the type checker: the functions are set per DLL in __init__, so a name that
        gets here is not one of them."""
        raise AttributeError(name)


def _declare(function: Any, prototype: Prototype) -> Any:
    function.restype, function.argtypes = prototype
    return function


def load(path: str, prototypes: dict[str, Prototype], optional: dict[str, Prototype] | None = None) -> Library:
    """Load a DLL (a system DLL by name, our own by absolute path) with its prototypes."""
    if sys.platform != "win32":
        raise PlatformError(_("{path} is a Windows library; this system is {system}.").format(path=path, system=sys.platform))
    try:
        dll = ctypes.WinDLL(path, use_last_error=True)
    except OSError as error:
        raise PlatformError(_("Windows could not load {path} ({error}).").format(path=path, error=error)) from error
    try:
        return Library(dll, prototypes, optional)
    except AttributeError as error:
        raise PlatformError(
            _("{path} lacks a function SSTP VPN needs ({error}); this Windows version may be too old.").format(path=path, error=error)
        ) from error


def system32_path(name: str) -> str:
    """A system program or DLL by absolute path: the network service runs as SYSTEM, and no other folder may supply it. (A
    32-bit Python is redirected to SysWOW64 by Windows itself.)"""
    return ntpath.join(os.environ.get("SystemRoot") or r"C:\Windows", "System32", name)


# FOLDERID_ProgramData (KnownFolders.h): %ProgramData%, C:\ProgramData. Asked of Windows, not read
# from the environment: a service's environment need not have it (Wine's services get another).
FOLDERID_PROGRAM_DATA = "62AB5D82-FDC1-4DC3-A9DD-070D1D495D97"
SHELL_PROTOTYPES: dict[str, Prototype] = {
    # (rfid, dwFlags, hToken, *ppszPath out) -> HRESULT; the path is freed with CoTaskMemFree
    "SHGetKnownFolderPath": (c_int32, [POINTER(GUID), c_uint32, c_void_p, POINTER(c_void_p)]),
}
OLE_PROTOTYPES: dict[str, Prototype] = {"CoTaskMemFree": (None, [c_void_p])}


def program_data() -> str:
    """The machine-wide application data folder (C:\\ProgramData). Off Windows (tests): the
    environment's ProgramData, as on Windows."""
    if sys.platform != "win32":
        return os.environ.get("ProgramData") or r"C:\ProgramData"
    shell32 = load(system32_path("shell32.dll"), SHELL_PROTOTYPES)
    ole32 = load(system32_path("ole32.dll"), OLE_PROTOTYPES)
    folder_id = GUID.from_buffer_copy(uuid.UUID(FOLDERID_PROGRAM_DATA).bytes_le)
    path = c_void_p()
    result = shell32.SHGetKnownFolderPath(ctypes.byref(folder_id), 0, None, ctypes.byref(path))
    try:
        if result != 0 or not path.value:
            raise PlatformError(_("Windows did not say where its ProgramData folder is (HRESULT {result:#010x}).").format(result=result & 0xFFFFFFFF))
        return ctypes.wstring_at(path.value)
    finally:
        ole32.CoTaskMemFree(path)


def iphlpapi() -> Library:
    return load(system32_path("iphlpapi.dll"), IPHLPAPI_PROTOTYPES, IPHLPAPI_OPTIONAL_PROTOTYPES)


def kernel32() -> Library:
    return load(system32_path("kernel32.dll"), KERNEL32_PROTOTYPES)


def describe_error(code: int) -> str:
    """'error 5: Access is denied.' on Windows, 'error 5' elsewhere."""
    format_error = getattr(ctypes, "FormatError", None)  # Windows only
    text = format_error(code).strip() if format_error is not None else ""
    # Translators: a Windows error number, then Windows' own text for it (already in the system's language)
    return _("error {code}: {text}").format(code=code, text=text) if text else _("error {code}").format(code=code)
