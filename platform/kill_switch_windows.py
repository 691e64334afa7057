"""The kill switch on Windows: Windows Filtering Platform (WFP) filters through fwpuclnt.dll with ctypes.

UNTESTED ON WINDOWS: written against the Microsoft documentation of the WFP management API
(fwpmu.h, fwpmtypes.h, fwptypes.h: FwpmEngineOpen0, FwpmSubLayerAdd0, FwpmFilterAdd0, the
transaction functions) and the filter set wireguard-windows (tunnel/firewall) puts in place, as
summarised in the platform note (§5), and unit-tested on Linux with a recorded fwpuclnt.dll
(tests/recorded_windows.py) that reads every structure back from its raw bytes at the SDK's x64
offsets. Nothing here has run on a real Windows system yet.

How (kill_switch.py says what passes):
- One engine session per kill switch, opened with FWPM_SESSION_FLAG_DYNAMIC: every object added
  through it goes when its handle closes, also when the process dies. So a crash of the network
  service opens the network again (fails open); there is nothing to journal or repair.
- A sublayer of our own (a fixed GUID, the highest sublayer weight) holds all our filters. Within
  it the filter with the highest weight that matches decides: permits from weight 15 down, the
  block of everything else at weight 0. Other sublayers (the Windows firewall) still judge
  what we permit; a block in ours wins over their permits.
- The filters sit at the ALE connect and receive/accept layers, IPv4 and IPv6, as wireguard-
  windows': they judge each new connection or flow; replies to a permitted one pass with it.
  * 15: loopback (the IS_LOOPBACK flag) and each tunnel adapter (its LUID), both directions;
  * 14: TCP out to each endpoint (address and port);
  * 13: DHCPv4 (UDP 68 <-> 67), DHCPv6 (UDP 546 <-> 547), ICMPv6 router solicitation out,
    router advertisement in, neighbour solicitation and advertisement both ways;
  * 12: block port 53 (DNS) out, so that a LAN permit below does not let DNS leak to the
    local network's servers; DNS through the tunnel is permitted above;
  * 11: with allow_lan, the local networks (kill_switch.LAN_NETWORKS) both ways;
  * 0: block everything else, both directions and both families.
- `set` runs in one WFP transaction: the first one adds the sublayer, a later one deletes the
  filters of the one before; then the new filters; then commit. Any failure aborts the
  transaction, which leaves exactly the filters that were in place before (none the first time).
- `remove` deletes our filters and the sublayer in a transaction, then closes the engine handle;
  closing alone would remove them too (dynamic session), so a failed deletion is only logged.
- Tunnels are named by adapter alias and let through by LUID, looked up at each `set`; a name
  with no adapter now (between two connections) is simply not let through. A new adapter may
  get a new LUID, so the network service sets the rules in place again whenever it creates one
  (helper_windows.Service.refresh_kill_switches).
"""

from __future__ import annotations

import ctypes
import ipaddress
import logging
import uuid
from collections.abc import Sequence
from ctypes import POINTER, Structure, Union, byref, c_int32, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p, c_wchar_p
from dataclasses import dataclass
from typing import Any

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import winapi
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.kill_switch import LAN_NETWORKS, KillSwitchRules, busy_sentence
from sstpvpn.platform.netconfig_windows import admin_sentence
from sstpvpn.platform.winapi import ERROR_ACCESS_DENIED, GUID, NO_ERROR, Library, describe_error

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# -- fwptypes.h / fwpmtypes.h values ----------------------------------------------------------

FWPM_SESSION_FLAG_DYNAMIC = 0x00000001
RPC_C_AUTHN_DEFAULT = 0xFFFFFFFF  # rpcdce.h: let RPC choose (local, so NTLM/Kerberos unused)

# FWP_DATA_TYPE
FWP_EMPTY = 0
FWP_UINT8 = 1
FWP_UINT16 = 2
FWP_UINT32 = 3
FWP_UINT64 = 4  # by pointer
FWP_BYTE_ARRAY16_TYPE = 11  # by pointer
FWP_V4_ADDR_MASK = 0x100  # by pointer
FWP_V6_ADDR_MASK = 0x101  # by pointer

# FWP_MATCH_TYPE
FWP_MATCH_EQUAL = 0
FWP_MATCH_FLAGS_ALL_SET = 6

# FWP_ACTION_TYPE
FWP_ACTION_FLAG_TERMINATING = 0x00001000
FWP_ACTION_BLOCK = 0x00000001 | FWP_ACTION_FLAG_TERMINATING
FWP_ACTION_PERMIT = 0x00000002 | FWP_ACTION_FLAG_TERMINATING

FWP_CONDITION_FLAG_IS_LOOPBACK = 0x00000001
IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6 = 6, 17, 58

# winerror.h: FWP_E_* and the RPC errors of a stopped Base Filtering Engine
FWP_E_FILTER_NOT_FOUND = 0x80320003
FWP_E_SUBLAYER_NOT_FOUND = 0x80320007
FWP_E_NOT_FOUND = 0x80320008
FWP_E_ALREADY_EXISTS = 0x80320009
EPT_S_NOT_REGISTERED = 1753
RPC_S_SERVER_UNAVAILABLE = 1722
_GONE = {FWP_E_FILTER_NOT_FOUND, FWP_E_SUBLAYER_NOT_FOUND, FWP_E_NOT_FOUND}


def _guid(text: str) -> GUID:
    return GUID.from_buffer_copy(uuid.UUID(text).bytes_le)


# fwpmu.h
LAYER_CONNECT_V4 = "c38d57d1-05a7-4c33-904f-7fbceee60e82"  # FWPM_LAYER_ALE_AUTH_CONNECT_V4
LAYER_CONNECT_V6 = "4a72393b-319f-44bc-84c3-ba54dcb3b6b4"  # FWPM_LAYER_ALE_AUTH_CONNECT_V6
LAYER_ACCEPT_V4 = "e1cd9fe7-f4b5-4273-96c0-592e487b8650"  # FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V4
LAYER_ACCEPT_V6 = "a3b42c97-9f04-4672-b87e-cee9c483257f"  # FWPM_LAYER_ALE_AUTH_RECV_ACCEPT_V6
CONDITION_FLAGS = "632ce23b-5167-435c-86d7-e903684aa80c"  # FWPM_CONDITION_FLAGS
CONDITION_LOCAL_INTERFACE = "4cd62a49-59c3-4969-b7f3-bda5d32890a4"  # FWPM_CONDITION_IP_LOCAL_INTERFACE
CONDITION_PROTOCOL = "3971ef2b-623e-4f9a-8cb1-6e79b806b9a7"  # FWPM_CONDITION_IP_PROTOCOL
CONDITION_REMOTE_ADDRESS = "b235ae9a-1d64-49b8-a44c-5ff3d9095045"  # FWPM_CONDITION_IP_REMOTE_ADDRESS
CONDITION_LOCAL_PORT = "0c1ba1af-5765-453f-af22-a8f791ac775b"  # FWPM_CONDITION_IP_LOCAL_PORT (= ICMP_TYPE)
CONDITION_REMOTE_PORT = "c35a604d-d22b-4e1a-91b4-68f674ee674b"  # FWPM_CONDITION_IP_REMOTE_PORT
CONDITION_ICMP_TYPE = CONDITION_LOCAL_PORT  # for ICMP the "local port" field carries the type

# Ours: the sublayer every filter of ours sits in (fixed, so that it can be told apart).
SUBLAYER_KEY = "5d4b1c52-36f0-4f6b-9d0e-3a8c2f7e4b19"
SUBLAYER_WEIGHT = 0xFFFF

WEIGHT_ALWAYS = 15  # loopback and the tunnels
WEIGHT_ENDPOINTS = 14
WEIGHT_LINK = 13  # DHCP, DHCPv6, neighbour and router discovery
WEIGHT_BLOCK_DNS = 12
WEIGHT_LAN = 11
WEIGHT_BLOCK_ALL = 0


# -- structures (x64 layout; offsets and sizes as in the SDK, asserted in the unit tests) --------


class FWPM_DISPLAY_DATA0(Structure):  # 16 bytes
    _fields_ = [("name", c_wchar_p), ("description", c_wchar_p)]


class FWP_BYTE_BLOB(Structure):  # 16 bytes
    _fields_ = [("size", c_uint32), ("data", c_void_p)]


class FWP_V4_ADDR_AND_MASK(Structure):  # 8 bytes; both in host byte order
    _fields_ = [("addr", c_uint32), ("mask", c_uint32)]


class FWP_V6_ADDR_AND_MASK(Structure):  # 17 bytes
    _fields_ = [("addr", c_uint8 * 16), ("prefixLength", c_uint8)]


class FWP_BYTE_ARRAY16(Structure):
    _fields_ = [("byteArray16", c_uint8 * 16)]


class _VALUE(Union):  # 8 bytes: small integers in place, everything else by pointer
    _fields_ = [("uint8", c_uint8), ("uint16", c_uint16), ("uint32", c_uint32), ("pointer", c_void_p)]


class FWP_VALUE0(Structure):  # 16 bytes: type at 0, the value at 8
    _fields_ = [("type", c_uint32), ("value", _VALUE)]


FWP_CONDITION_VALUE0 = FWP_VALUE0  # the same layout; its union has more pointer members


class FWPM_FILTER_CONDITION0(Structure):  # 40 bytes
    _fields_ = [("fieldKey", GUID), ("matchType", c_uint32), ("conditionValue", FWP_CONDITION_VALUE0)]


class FWPM_ACTION0(Structure):  # 20 bytes, 4-aligned
    _fields_ = [("type", c_uint32), ("filterType", GUID)]  # filterType or calloutKey


class _PROVIDER_CONTEXT(Union):  # 16 bytes, 8-aligned
    _fields_ = [("rawContext", c_uint64), ("providerContextKey", GUID)]


class FWPM_FILTER0(Structure):  # 200 bytes
    _fields_ = [
        ("filterKey", GUID),  # 0
        ("displayData", FWPM_DISPLAY_DATA0),  # 16
        ("flags", c_uint32),  # 32
        ("providerKey", POINTER(GUID)),  # 40
        ("providerData", FWP_BYTE_BLOB),  # 48
        ("layerKey", GUID),  # 64
        ("subLayerKey", GUID),  # 80
        ("weight", FWP_VALUE0),  # 96
        ("numFilterConditions", c_uint32),  # 112
        ("filterCondition", POINTER(FWPM_FILTER_CONDITION0)),  # 120
        ("action", FWPM_ACTION0),  # 128
        ("context", _PROVIDER_CONTEXT),  # 152
        ("reserved", POINTER(GUID)),  # 168
        ("filterId", c_uint64),  # 176
        ("effectiveWeight", FWP_VALUE0),  # 184
    ]


class FWPM_SUBLAYER0(Structure):  # 72 bytes
    _fields_ = [
        ("subLayerKey", GUID),  # 0
        ("displayData", FWPM_DISPLAY_DATA0),  # 16
        ("flags", c_uint32),  # 32
        ("providerKey", POINTER(GUID)),  # 40
        ("providerData", FWP_BYTE_BLOB),  # 48
        ("weight", c_uint16),  # 64
    ]


class FWPM_SESSION0(Structure):  # 72 bytes
    _fields_ = [
        ("sessionKey", GUID),  # 0
        ("displayData", FWPM_DISPLAY_DATA0),  # 16
        ("flags", c_uint32),  # 32
        ("txnWaitTimeoutInMSec", c_uint32),  # 36
        ("processId", c_uint32),  # 40
        ("sid", c_void_p),  # 48
        ("username", c_wchar_p),  # 56
        ("kernelMode", c_int32),  # 64 (BOOL)
    ]


# Every function returns a Win32 error code or an FWP_E_* HRESULT as a DWORD (0: success).
FWPUCLNT_PROTOTYPES: dict[str, winapi.Prototype] = {
    # (serverName NULL: this machine, authnService, authIdentity, session, *engineHandle)
    "FwpmEngineOpen0": (c_uint32, [c_wchar_p, c_uint32, c_void_p, POINTER(FWPM_SESSION0), POINTER(c_void_p)]),
    "FwpmEngineClose0": (c_uint32, [c_void_p]),
    "FwpmTransactionBegin0": (c_uint32, [c_void_p, c_uint32]),
    "FwpmTransactionCommit0": (c_uint32, [c_void_p]),
    "FwpmTransactionAbort0": (c_uint32, [c_void_p]),
    # (engine, subLayer, security descriptor NULL)
    "FwpmSubLayerAdd0": (c_uint32, [c_void_p, POINTER(FWPM_SUBLAYER0), c_void_p]),
    "FwpmSubLayerDeleteByKey0": (c_uint32, [c_void_p, POINTER(GUID)]),
    # (engine, filter, security descriptor NULL, *id)
    "FwpmFilterAdd0": (c_uint32, [c_void_p, POINTER(FWPM_FILTER0), c_void_p, POINTER(c_uint64)]),
    "FwpmFilterDeleteById0": (c_uint32, [c_void_p, c_uint64]),
}


def fwpuclnt() -> Library:
    return winapi.load(winapi.system32_path("fwpuclnt.dll"), FWPUCLNT_PROTOTYPES)


# -- the filters as data ------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One FWPM_FILTER_CONDITION0. Conditions with the same field are ORed, different ones ANDed.
    `value`: an int for the integer types, an address, a network (FWP_V4/V6_ADDR_MASK)."""

    field: str  # a CONDITION_* GUID
    value_type: int
    value: int | IPAddress | IPNetwork
    match: int = FWP_MATCH_EQUAL


@dataclass(frozen=True)
class Filter:
    name: str
    layer: str  # a LAYER_* GUID
    weight: int
    action: int
    conditions: tuple[Condition, ...] = ()


BOTH_DIRECTIONS = {4: (LAYER_CONNECT_V4, LAYER_ACCEPT_V4), 6: (LAYER_CONNECT_V6, LAYER_ACCEPT_V6)}
ALL_LAYERS = (LAYER_CONNECT_V4, LAYER_ACCEPT_V4, LAYER_CONNECT_V6, LAYER_ACCEPT_V6)


def _udp(local: int, remote: int) -> tuple[Condition, ...]:
    return (
        Condition(CONDITION_PROTOCOL, FWP_UINT8, IPPROTO_UDP),
        Condition(CONDITION_LOCAL_PORT, FWP_UINT16, local),
        Condition(CONDITION_REMOTE_PORT, FWP_UINT16, remote),
    )


def _icmpv6(*types: int) -> tuple[Condition, ...]:
    return (Condition(CONDITION_PROTOCOL, FWP_UINT8, IPPROTO_ICMPV6),) + tuple(
        Condition(CONDITION_ICMP_TYPE, FWP_UINT16, icmp_type) for icmp_type in types
    )


def filters_for(rules: KillSwitchRules, tunnel_luids: Sequence[int]) -> list[Filter]:
    """The filters for `rules`, the tunnels given by LUID, in the order they are added."""
    result = [Filter("SSTP VPN: permit loopback", layer, WEIGHT_ALWAYS, FWP_ACTION_PERMIT, (_loopback(),)) for layer in ALL_LAYERS]
    for luid in tunnel_luids:
        condition = Condition(CONDITION_LOCAL_INTERFACE, FWP_UINT64, luid)
        result += [Filter("SSTP VPN: permit the tunnel", layer, WEIGHT_ALWAYS, FWP_ACTION_PERMIT, (condition,)) for layer in ALL_LAYERS]
    for endpoint in rules.endpoints:
        address = endpoint.address
        address_condition = (
            Condition(CONDITION_REMOTE_ADDRESS, FWP_UINT32, int(address))
            if address.version == 4
            else Condition(CONDITION_REMOTE_ADDRESS, FWP_BYTE_ARRAY16_TYPE, address)
        )
        result.append(
            Filter(
                "SSTP VPN: permit the VPN server",
                LAYER_CONNECT_V4 if address.version == 4 else LAYER_CONNECT_V6,
                WEIGHT_ENDPOINTS,
                FWP_ACTION_PERMIT,
                (
                    Condition(CONDITION_PROTOCOL, FWP_UINT8, IPPROTO_TCP),
                    address_condition,
                    Condition(CONDITION_REMOTE_PORT, FWP_UINT16, endpoint.port),
                ),
            )
        )
    result += [
        Filter("SSTP VPN: permit DHCP", LAYER_CONNECT_V4, WEIGHT_LINK, FWP_ACTION_PERMIT, _udp(68, 67)),
        Filter("SSTP VPN: permit DHCP", LAYER_ACCEPT_V4, WEIGHT_LINK, FWP_ACTION_PERMIT, _udp(68, 67)),
        Filter("SSTP VPN: permit DHCPv6", LAYER_CONNECT_V6, WEIGHT_LINK, FWP_ACTION_PERMIT, _udp(546, 547)),
        Filter("SSTP VPN: permit DHCPv6", LAYER_ACCEPT_V6, WEIGHT_LINK, FWP_ACTION_PERMIT, _udp(546, 547)),
        # router solicitation, neighbour solicitation and advertisement out; the answers in
        Filter("SSTP VPN: permit neighbour discovery", LAYER_CONNECT_V6, WEIGHT_LINK, FWP_ACTION_PERMIT, _icmpv6(133, 135, 136)),
        Filter("SSTP VPN: permit neighbour discovery", LAYER_ACCEPT_V6, WEIGHT_LINK, FWP_ACTION_PERMIT, _icmpv6(134, 135, 136)),
    ]
    dns = (Condition(CONDITION_REMOTE_PORT, FWP_UINT16, 53),)
    result += [
        Filter("SSTP VPN: block DNS outside the tunnel", layer, WEIGHT_BLOCK_DNS, FWP_ACTION_BLOCK, dns)
        for layer in (LAYER_CONNECT_V4, LAYER_CONNECT_V6)
    ]
    if rules.allow_lan:
        for version, layers in BOTH_DIRECTIONS.items():
            lan = tuple(
                Condition(CONDITION_REMOTE_ADDRESS, FWP_V4_ADDR_MASK if version == 4 else FWP_V6_ADDR_MASK, network)
                for network in LAN_NETWORKS
                if network.version == version
            )
            result += [Filter("SSTP VPN: permit the local network", layer, WEIGHT_LAN, FWP_ACTION_PERMIT, lan) for layer in layers]
    result += [Filter("SSTP VPN: block everything else", layer, WEIGHT_BLOCK_ALL, FWP_ACTION_BLOCK) for layer in ALL_LAYERS]
    return result


def _loopback() -> Condition:
    return Condition(CONDITION_FLAGS, FWP_UINT32, FWP_CONDITION_FLAG_IS_LOOPBACK, FWP_MATCH_FLAGS_ALL_SET)


# -- the filters as structures ------------------------------------------------------------------


class _Built:
    """One FWPM_FILTER0 and everything its pointers point to, kept alive while it is in use."""

    def __init__(self, spec: Filter, sublayer: GUID) -> None:
        self._keep: list[Any] = []
        self.filter = filter_ = FWPM_FILTER0()
        filter_.displayData.name = spec.name
        filter_.layerKey = _guid(spec.layer)
        filter_.subLayerKey = sublayer
        filter_.weight.type = FWP_UINT8  # an index 0-15 in the sublayer's weight range
        filter_.weight.value.uint8 = spec.weight
        filter_.action.type = spec.action
        if spec.conditions:
            conditions = (FWPM_FILTER_CONDITION0 * len(spec.conditions))()
            for slot, condition in zip(conditions, spec.conditions, strict=True):
                slot.fieldKey = _guid(condition.field)
                slot.matchType = condition.match
                self._set_value(slot.conditionValue, condition)
            self._keep.append(conditions)
            filter_.numFilterConditions = len(spec.conditions)
            filter_.filterCondition = ctypes.cast(conditions, POINTER(FWPM_FILTER_CONDITION0))

    def _set_value(self, target: FWP_VALUE0, condition: Condition) -> None:
        target.type = kind = condition.value_type
        value = condition.value
        if kind == FWP_UINT8 and isinstance(value, int):
            target.value.uint8 = value
        elif kind == FWP_UINT16 and isinstance(value, int):
            target.value.uint16 = value
        elif kind == FWP_UINT32 and isinstance(value, int):
            target.value.uint32 = value
        elif kind == FWP_UINT64 and isinstance(value, int):
            target.value.pointer = self._point_to(c_uint64(value))
        elif kind == FWP_BYTE_ARRAY16_TYPE and isinstance(value, ipaddress.IPv6Address):
            target.value.pointer = self._point_to(FWP_BYTE_ARRAY16.from_buffer_copy(value.packed))
        elif kind == FWP_V4_ADDR_MASK and isinstance(value, ipaddress.IPv4Network):
            target.value.pointer = self._point_to(FWP_V4_ADDR_AND_MASK(int(value.network_address), int(value.netmask)))
        elif kind == FWP_V6_ADDR_MASK and isinstance(value, ipaddress.IPv6Network):
            masked = FWP_V6_ADDR_AND_MASK()
            masked.addr[:] = list(value.network_address.packed)
            masked.prefixLength = value.prefixlen
            target.value.pointer = self._point_to(masked)
        else:
            raise ValueError(f"no FWP value of type {kind:#x} for {value!r}")

    def _point_to(self, value: Any) -> int:
        self._keep.append(value)
        return ctypes.addressof(value)


# -- the kill switch ------------------------------------------------------------------------------


class WindowsKillSwitch:
    """kill_switch.KillSwitch with WFP. `fwpuclnt` and `iphlpapi` are loaded on first use; tests
    pass recorded ones."""

    def __init__(self, *, fwpuclnt: Library | None = None, iphlpapi: Library | None = None) -> None:
        self._fwpuclnt, self._iphlpapi = fwpuclnt, iphlpapi
        self._engine: int | None = None
        self._sublayer_added = False
        self._filter_ids: list[int] = []

    @property
    def api(self) -> Library:
        if self._fwpuclnt is None:
            self._fwpuclnt = fwpuclnt()
        return self._fwpuclnt

    @property
    def iphlpapi(self) -> Library:
        if self._iphlpapi is None:
            self._iphlpapi = winapi.iphlpapi()
        return self._iphlpapi

    @property
    def filter_ids(self) -> list[int]:
        return list(self._filter_ids)

    def set(self, rules: KillSwitchRules) -> None:
        luids = [luid for luid in map(self._luid, rules.tunnels) if luid is not None]
        built = [_Built(spec, _guid(SUBLAYER_KEY)) for spec in filters_for(rules, luids)]
        first = self._engine is None
        engine = self._open() if first else self._engine
        assert engine is not None
        try:
            self._replace(engine, built)
        except BaseException:
            if first:  # nothing of ours was in place, and nothing is now
                try:
                    self._close()
                except PlatformError as error:
                    log.warning("kill switch: %s", error.sentence)  # not translated: the log
            raise
        log.info("kill switch: %d WFP filters in place", len(self._filter_ids))  # not translated: the log

    def _replace(self, engine: int, built: list[_Built]) -> None:
        """One transaction: the sublayer (the first time), the old filters out, the new ones in."""
        api = self.api
        _check(api.FwpmTransactionBegin0(engine, 0))
        new_ids: list[int] = []
        try:
            if not self._sublayer_added:
                sublayer = FWPM_SUBLAYER0()
                sublayer.subLayerKey = _guid(SUBLAYER_KEY)
                sublayer.displayData.name = "SSTP VPN kill switch"
                sublayer.weight = SUBLAYER_WEIGHT
                _check(api.FwpmSubLayerAdd0(engine, byref(sublayer), None))
            for filter_id in self._filter_ids:
                _check(api.FwpmFilterDeleteById0(engine, filter_id), tolerate_gone=True)
            for item in built:
                new_id = c_uint64()
                _check(api.FwpmFilterAdd0(engine, byref(item.filter), None, byref(new_id)))
                new_ids.append(new_id.value)
            _check(api.FwpmTransactionCommit0(engine))
        except BaseException:
            code = api.FwpmTransactionAbort0(engine)
            if code != NO_ERROR:
                log.warning("FwpmTransactionAbort0 failed: %s", describe_error(code))  # not translated: the log
            raise
        self._sublayer_added = True
        self._filter_ids = new_ids

    def remove(self) -> None:
        engine = self._engine
        if engine is None:
            return
        api = self.api
        try:
            _check(api.FwpmTransactionBegin0(engine, 0))
            try:
                for filter_id in self._filter_ids:
                    _check(api.FwpmFilterDeleteById0(engine, filter_id), tolerate_gone=True)
                if self._sublayer_added:
                    _check(api.FwpmSubLayerDeleteByKey0(engine, byref(_guid(SUBLAYER_KEY))), tolerate_gone=True)
                _check(api.FwpmTransactionCommit0(engine))
            except BaseException:
                api.FwpmTransactionAbort0(engine)
                raise
        except PlatformError as error:
            # Closing the dynamic session below removes them all the same.
            log.warning("kill switch: deleting the WFP filters failed (%s)", error.sentence)  # not translated: the log
        self._filter_ids, self._sublayer_added = [], False
        self._close()

    # -- pieces --------------------------------------------------------------------------

    def _open(self) -> int:
        session = FWPM_SESSION0()
        session.displayData.name = "SSTP VPN kill switch"
        session.flags = FWPM_SESSION_FLAG_DYNAMIC
        handle = c_void_p()
        code = self.api.FwpmEngineOpen0(None, RPC_C_AUTHN_DEFAULT, None, byref(session), byref(handle))
        if code in (EPT_S_NOT_REGISTERED, RPC_S_SERVER_UNAVAILABLE):
            raise PlatformError(
                _("The kill switch needs the Windows service Base Filtering Engine, which is not running: start it in Services (services.msc).")
            )
        _check(code)
        assert handle.value is not None
        self._engine = handle.value
        return handle.value

    def _close(self) -> None:
        engine, self._engine = self._engine, None
        self._sublayer_added = False
        if engine is None:
            return
        code = self.api.FwpmEngineClose0(engine)
        if code != NO_ERROR:
            raise PlatformError(
                _("Windows could not close the kill switch's filter session ({reason}); restart the SSTP VPN network service.").format(
                    reason=describe_error(code)
                )
            )

    def _luid(self, name: str) -> int | None:
        """The adapter's LUID; None when there is no adapter of that name now (between two
        connections): its traffic is blocked like any other until a set names it again."""
        luid = c_uint64()
        code = self.iphlpapi.ConvertInterfaceAliasToLuid(name, byref(luid))
        if code != NO_ERROR:
            log.info("kill switch: no adapter %s now (%s); not let through", name, describe_error(code))  # not translated: the log
            return None
        return luid.value


def _check(code: int, *, tolerate_gone: bool = False) -> None:
    if code == NO_ERROR or (tolerate_gone and code in _GONE):
        return
    if code == ERROR_ACCESS_DENIED:
        raise PlatformError(admin_sentence())
    if code == FWP_E_ALREADY_EXISTS:
        raise PlatformError(busy_sentence())
    raise PlatformError(
        _("Windows refused the kill switch's firewall filters ({reason}); disconnect and connect again.").format(reason=describe_error(code))
    )
