"""Windows network configuration for the tunnel: interface MTU and metric, address, routes and
DNS through the IP Helper API (iphlpapi.dll) with ctypes, each change journaled before it is made.

UNTESTED ON WINDOWS: written against the Microsoft documentation of the functions named below,
wireguard-windows (tunnel/addressconfig.go, tunnel/winipcfg) and OpenVPN (route.c, interactive.c)
as summarised in the platform note, and unit-tested on Linux with recorded fakes
(tests/recorded_windows.py). Nothing here has run on a real Windows system yet.

The routing policy is routing_policy's; how each of its steps is made here:
- The link: MTU per address family (IPv6 only when bound to the adapter, and only from 1280 up),
  and in a full tunnel the interface metric 0 with automatic metric off (SetIpInterfaceEntry), as
  wireguard-windows does when it carries default routes: Windows adds the interface metric to the
  route metric, and the tunnel must win.
- Addresses: CreateUnicastIpAddressEntry, without duplicate address detection. Steps of an
  address family the adapter does not have (IPv6 unbound) are skipped.
- Routes: CreateIpForwardEntry2 through the adapter with an unspecified next hop (on-link, it is
  a point-to-point link). The host route to the server goes through the route Windows uses for
  it now (GetBestRoute2: its next hop and interface); none when that has no next hop.
- DNS: the VPN's IPv4 servers on the adapter with SetInterfaceDnsSettings (Windows 10 2004+; a
  missing export means an older Windows, then `netsh interface ipv4 set/add dnsservers`).
Known leak, not handled yet: Windows' "smart multi-homed name resolution" may also ask the other
interfaces' DNS servers. Closing it needs an NRPT catch-all rule ("." -> the VPN's servers, one
registry subkey under ...\\Dnscache\\Parameters\\DnsPolicyConfig, which survives reboots and so
must be journaled) or a WFP filter blocking port 53 elsewhere (wireguard-windows).

Undo (configurator, journal_replay): newest step first. The steps tied to the adapter (its settings, address,
routes, DNS) are undone only by the process that holds the adapter: after a crash the adapter is
gone, and they with it. The host route to the server stays until deleted, so it is always undone.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import pathlib
from collections.abc import Iterator, Sequence
from ctypes import byref, c_uint32, c_uint64
from dataclasses import dataclass

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import journal_replay, winapi
from sstpvpn.platform import routing_policy as policy
from sstpvpn.platform.commands import CommandRunner, run_command
from sstpvpn.platform.configurator import AlreadyThere, StepConfigurator
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal_steps import JournalStep, StepCatalog
from sstpvpn.platform.winapi import (
    AF_INET,
    AF_INET6,
    ERROR_ACCESS_DENIED,
    ERROR_FILE_NOT_FOUND,
    ERROR_NOT_FOUND,
    ERROR_OBJECT_ALREADY_EXISTS,
    GUID,
    NO_ERROR,
    Library,
    describe_error,
)

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

IPV6_MIN_MTU = 1280
TUNNEL_METRIC = 0  # interface metric in full-tunnel mode, and the metric of every route we add
_GONE = {ERROR_NOT_FOUND, ERROR_FILE_NOT_FOUND}  # undoing something already gone is fine


def admin_sentence() -> str:
    return _(
        "Configuring the network for the VPN needs administrator rights, which the SSTP VPN network service has: "
        "check in Services (services.msc) that it runs as Local System, or reinstall SSTP VPN."
    )


def default_journal_path(name: str = "network") -> pathlib.Path:
    """%ProgramData%\\SSTP VPN\\service\\: the network service (helper_windows) makes the changes,
    and the journal must outlive a crash and a reboot (the host route to the server is not tied
    to the adapter). The folder is the service's own (SYSTEM and Administrators only)."""
    return pathlib.Path(winapi.program_data()) / "SSTP VPN" / "service" / f"{name}-journal.json"


def repair_from_journal(
    journal_path: pathlib.Path, *, iphlpapi: Library | None = None, kernel32: Library | None = None, run_command: CommandRunner | None = None
) -> bool:
    """Undo what a client that died left behind. True if there was something to undo."""
    return journal_replay.repair(journal_path, _Windows(iphlpapi, kernel32, run_command).replay())


# -- journal steps: what was changed, with what undoes it ------------------------------------


@dataclass(frozen=True)
class InterfaceChanged(JournalStep):
    """The adapter's settings for one address family, as they were before."""

    OP = "interface"
    luid: int
    family: int
    mtu: int
    automatic_metric: int
    metric: int


@dataclass(frozen=True)
class AddressAdded(JournalStep):
    OP = "address"
    luid: int
    address: str
    prefixlen: int


@dataclass(frozen=True)
class ServerRouteAdded(JournalStep):
    """The host route to the VPN server; not tied to the adapter, so it outlives a crash."""

    OP = "server_route"
    luid: int
    dst: str
    prefixlen: int
    next_hop: str


@dataclass(frozen=True)
class TunnelRouteAdded(JournalStep):
    OP = "tunnel_route"
    luid: int
    dst: str
    prefixlen: int
    next_hop: str


@dataclass(frozen=True)
class DnsSet(JournalStep):
    """The adapter's DNS servers, set through the API (by GUID) or netsh (by interface index)."""

    OP = "dns"
    method: str  # "api" or "netsh"
    luid: int
    guid: str | None = None  # hex
    index: int | None = None


CATALOG = StepCatalog(InterfaceChanged, AddressAdded, ServerRouteAdded, TunnelRouteAdded, DnsSet)
RouteAdded = ServerRouteAdded | TunnelRouteAdded


class NetConfigurator(StepConfigurator):
    """Applies a NetworkPlan to one Wintun adapter, found by its interface alias, and undoes it."""

    _system_name = "Windows"

    def __init__(
        self,
        ifname: str,
        server_address: IPAddress | str,
        full_tunnel: bool = True,
        journal_path: pathlib.Path | None = None,
        *,
        extra_routes: Sequence[IPNetwork] = (),
        use_vpn_dns: bool = True,
        iphlpapi: Library | None = None,
        kernel32: Library | None = None,
        run_command: CommandRunner | None = None,
    ) -> None:
        super().__init__(
            ifname,
            server_address,
            full_tunnel,
            journal_path if journal_path is not None else default_journal_path(),
            extra_routes=extra_routes,
            use_vpn_dns=use_vpn_dns,
        )
        self._windows = _Windows(iphlpapi, kernel32, run_command)
        self._replay = self._windows.replay()
        self._luid = 0
        self._families: list[int] = []

    # -- applying one policy step ----------------------------------------------------------

    @contextlib.contextmanager
    def _applying(self, steps: list[policy.Step]) -> Iterator[None]:
        self._luid = self._find_luid()
        self._families = [AF_INET] + ([AF_INET6] if self._has_ipv6(self._luid) else [])
        yield

    def _apply_step(self, step: policy.Step) -> None:
        match step:
            case policy.SetLink(mtu=mtu):
                for family in self._families:
                    self._configure_interface(family, mtu)
            case policy.AddAddress(local=local, prefixlen=prefixlen) if self._has_family(local):
                self._add_address(local, prefixlen)
            case policy.HostRouteToServer(server=server) if self._has_family(server):
                self._add_server_route(server)
            case policy.AddRoute(network=network) if self._has_family(network.network_address):
                self._add_tunnel_route(network)
            case policy.SetDns(servers=servers):
                self._set_dns([server for server in servers if server.version == 4])

    def _has_family(self, address: IPAddress) -> bool:
        return winapi.family_of(address) in self._families  # IPv6 may be unbound from the adapter

    def _find_luid(self) -> int:
        luid = c_uint64()
        code = self._windows.iphlpapi.ConvertInterfaceAliasToLuid(self.ifname, byref(luid))
        if code != NO_ERROR:
            raise PlatformError(
                _("The tunnel adapter {name} does not exist (any more) ({reason}); reconnect.").format(name=self.ifname, reason=describe_error(code))
            )
        return luid.value

    def _has_ipv6(self, luid: int) -> bool:
        code, _row = winapi.read_interface(self._windows.iphlpapi, luid, AF_INET6)
        return code == NO_ERROR  # ERROR_NOT_FOUND: IPv6 is not bound to the adapter

    def _configure_interface(self, family: int, mtu: int) -> None:
        api = self._windows.iphlpapi
        code, row = winapi.read_interface(api, self._luid, family)
        if code != NO_ERROR:
            raise _api_error(code, _("Could not read the settings of the tunnel adapter {name} ({reason})."), name=self.ifname)
        step = InterfaceChanged(self._luid, family, row.NlMtu, row.UseAutomaticMetric, row.Metric)
        if family == AF_INET or mtu >= IPV6_MIN_MTU:
            row.NlMtu = mtu
        if self.full_tunnel:
            row.UseAutomaticMetric = 0
            row.Metric = TUNNEL_METRIC
        self._change(
            step,
            lambda: _check(
                winapi.write_interface(api, row),
                _("Could not set an MTU of {mtu} and the metric on the tunnel adapter {name} ({reason})."),
                mtu=mtu,
                name=self.ifname,
            ),
        )

    def _add_address(self, address: IPAddress, prefixlen: int) -> None:
        api = self._windows.iphlpapi
        row = _address_row(api, self._luid, address, prefixlen)
        # No duplicate address detection on a point-to-point link: usable at once (Wintun's example).
        row.DadState = winapi.IP_DAD_STATE_PREFERRED
        row.ValidLifetime = row.PreferredLifetime = winapi.INFINITE_LIFETIME
        self._change(
            AddressAdded(self._luid, str(address), prefixlen),
            lambda: _check(
                api.CreateUnicastIpAddressEntry(byref(row)),
                _("Could not give the tunnel adapter {name} the address {address} ({reason})."),
                name=self.ifname,
                address=address,
            ),
        )

    def _add_server_route(self, server: IPAddress) -> None:
        api = self._windows.iphlpapi
        destination = winapi.sockaddr_inet(server)
        best, source = winapi.MIB_IPFORWARD_ROW2(), winapi.SOCKADDR_INET()
        # Any interface (no LUID, index 0), any source address, default sort options.
        code = api.GetBestRoute2(None, 0, None, byref(destination), 0, byref(best), byref(source))
        if code != NO_ERROR:
            if code == ERROR_ACCESS_DENIED:
                raise PlatformError(admin_sentence())
            raise PlatformError(policy.no_route_to_server_sentence(server, describe_error(code)))
        gateway = winapi.address_of(best.NextHop)
        if gateway is None or gateway.is_unspecified:
            return  # on this machine or on a local link: the tunnel routes cannot capture it
        step = ServerRouteAdded(best.InterfaceLuid, str(server), 32 if server.version == 4 else 128, str(gateway))
        self._change(
            step,
            lambda: _check(
                api.CreateIpForwardEntry2(byref(_route_row(api, step))),
                _("Could not add a route to the VPN server {server} ({reason})."),
                server=server,
            ),
        )

    def _add_tunnel_route(self, network: IPNetwork) -> None:
        api = self._windows.iphlpapi
        unspecified = "0.0.0.0" if network.version == 4 else "::"
        step = TunnelRouteAdded(self._luid, str(network.network_address), network.prefixlen, unspecified)
        self._change(
            step,
            lambda: _check(api.CreateIpForwardEntry2(byref(_route_row(api, step))), _("Could not add the route {route} ({reason})."), route=network),
        )

    def _set_dns(self, servers: list[IPAddress]) -> None:
        if not servers:
            return
        windows = self._windows
        if windows.iphlpapi.SetInterfaceDnsSettings is not None:
            guid = _guid(windows.iphlpapi, self._luid)
            self._change(
                DnsSet("api", self._luid, guid=bytes(guid).hex()),
                lambda: _check(
                    _set_dns(windows.iphlpapi, guid, ",".join(map(str, servers))),
                    _("Could not set the DNS servers of the tunnel adapter {name} ({reason})."),
                    name=self.ifname,
                ),
            )
            return
        index = _index(windows.iphlpapi, self._luid)
        self._record(DnsSet("netsh", self._luid, index=index))
        for position, server in enumerate(servers):
            if position == 0:
                argv = [
                    _netsh(),
                    "interface",
                    "ipv4",
                    "set",
                    "dnsservers",
                    f"name={index}",
                    "source=static",
                    f"address={server}",
                    "register=none",
                    "validate=no",
                ]
            else:
                argv = [
                    _netsh(),
                    "interface",
                    "ipv4",
                    "add",
                    "dnsservers",
                    f"name={index}",
                    f"address={server}",
                    f"index={position + 1}",
                    "validate=no",
                ]
            result = windows.run(argv, None)
            if not result.ok:
                raise PlatformError(
                    # Translators: netsh is the Windows program that was run; {output} is what it said
                    _("Windows refused the VPN's DNS server {server} on the tunnel adapter {name} (netsh: {output}).").format(
                        server=server, name=self.ifname, output=result.output or result.returncode
                    )
                )


# -- the system, and undo ----------------------------------------------------------------


class _Windows:
    """The DLLs and tools, loaded on first use; tests pass recorded stand-ins."""

    def __init__(self, iphlpapi: Library | None, kernel32: Library | None, run: CommandRunner | None) -> None:
        self._iphlpapi, self._kernel32 = iphlpapi, kernel32
        self.run = run_command if run is None else run

    @property
    def iphlpapi(self) -> Library:
        if self._iphlpapi is None:
            self._iphlpapi = winapi.iphlpapi()
        return self._iphlpapi

    @property
    def kernel32(self) -> Library:
        if self._kernel32 is None:
            self._kernel32 = winapi.kernel32()
        return self._kernel32

    def replay(self) -> journal_replay.Replay:
        return journal_replay.Replay(_owners(self), CATALOG, self.undo)

    def undo(self, step: JournalStep, interface_is_ours: bool) -> str | None:
        if not isinstance(step, ServerRouteAdded) and not interface_is_ours:
            return None  # went with the adapter of the process that made it
        api = self.iphlpapi
        match step:
            case ServerRouteAdded() | TunnelRouteAdded():
                _tolerate_gone(
                    api.DeleteIpForwardEntry2(byref(_route_row(api, step))),
                    _("Could not remove the route {route} ({reason})."),
                    route=f"{step.dst}/{step.prefixlen}",
                )
            case AddressAdded():
                address = _address_row(api, step.luid, ipaddress.ip_address(step.address), step.prefixlen)
                _tolerate_gone(
                    api.DeleteUnicastIpAddressEntry(byref(address)), _("Could not remove the address {address} ({reason})."), address=step.address
                )
            case InterfaceChanged():
                code, row = winapi.read_interface(api, step.luid, step.family)
                if code in _GONE:
                    return None
                if code == NO_ERROR:
                    row.NlMtu, row.UseAutomaticMetric, row.Metric = step.mtu, step.automatic_metric, step.metric
                    code = winapi.write_interface(api, row)
                _tolerate_gone(code, _("Could not restore the settings of the tunnel adapter ({reason})."))
            case DnsSet(method="api"):
                _tolerate_gone(
                    _set_dns(api, GUID.from_buffer_copy(bytes.fromhex(str(step.guid))), ""),
                    _("Could not remove the DNS servers of the tunnel adapter ({reason})."),
                )
            case DnsSet():
                argv = [_netsh(), "interface", "ipv4", "set", "dnsservers", f"name={step.index}", "source=dhcp"]
                result = self.run(argv, None)
                if not result.ok:
                    log.info(
                        "netsh could not reset the tunnel adapter's DNS servers (%s); the adapter is removed on disconnect anyway.", result.output
                    )
        return None


def _owners(windows: _Windows) -> journal_replay.ProcessOwners:
    """Who made the changes: process id and creation time (ids are reused), via kernel32."""

    def created(pid: int) -> int | None:
        """The process' creation time (FILETIME ticks) while it runs, else None."""
        kernel32 = windows.kernel32
        handle = kernel32.OpenProcess(winapi.PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not handle:
            return None  # no such process (or not ours to see)
        try:
            exit_code = c_uint32()
            if not kernel32.GetExitCodeProcess(handle, byref(exit_code)) or exit_code.value != winapi.STILL_ACTIVE:
                return None
            times = [winapi.FILETIME() for _ in range(4)]  # creation, exit, kernel, user
            if not kernel32.GetProcessTimes(handle, *(byref(time) for time in times)):
                return None
            return (times[0].dwHighDateTime << 32) | times[0].dwLowDateTime
        finally:
            kernel32.CloseHandle(handle)

    return journal_replay.ProcessOwners("created", created)


# -- small pieces ------------------------------------------------------------------------


def _route_row(api: Library, step: RouteAdded) -> winapi.MIB_IPFORWARD_ROW2:
    """The row CreateIpForwardEntry2 and DeleteIpForwardEntry2 take: the key is the interface,
    the destination prefix and the next hop."""
    row = winapi.MIB_IPFORWARD_ROW2()
    api.InitializeIpForwardEntry(byref(row))  # lifetimes infinite, protocol and the rest defaults
    row.InterfaceLuid = step.luid
    row.DestinationPrefix.Prefix = winapi.sockaddr_inet(ipaddress.ip_address(step.dst))
    row.DestinationPrefix.PrefixLength = step.prefixlen
    row.NextHop = winapi.sockaddr_inet(ipaddress.ip_address(step.next_hop))
    row.Metric = TUNNEL_METRIC
    return row


def _address_row(api: Library, luid: int, address: IPAddress, prefixlen: int) -> winapi.MIB_UNICASTIPADDRESS_ROW:
    row = winapi.MIB_UNICASTIPADDRESS_ROW()
    api.InitializeUnicastIpAddressEntry(byref(row))
    row.InterfaceLuid = luid
    row.Address = winapi.sockaddr_inet(address)
    row.OnLinkPrefixLength = prefixlen
    return row


def _set_dns(api: Library, guid: GUID, name_servers: str) -> int:
    """SetInterfaceDnsSettings for IPv4: `name_servers` comma-separated, "" to remove them. The
    search list is set (to empty) too, as wireguard-windows does: the settings are stored per
    GUID and our GUID is the same on every connect, so nothing stale may survive."""
    settings = winapi.DNS_INTERFACE_SETTINGS()
    settings.Version = winapi.DNS_INTERFACE_SETTINGS_VERSION1
    settings.Flags = winapi.DNS_SETTING_NAMESERVER | winapi.DNS_SETTING_SEARCHLIST
    settings.NameServer = name_servers
    settings.SearchList = ""
    return api.SetInterfaceDnsSettings(guid, byref(settings))


def _guid(api: Library, luid: int) -> GUID:
    guid = GUID()
    code = api.ConvertInterfaceLuidToGuid(byref(c_uint64(luid)), byref(guid))
    if code != NO_ERROR:
        raise _api_error(code, _("Could not find the tunnel adapter's GUID ({reason})."))
    return guid


def _index(api: Library, luid: int) -> int:
    index = c_uint32()
    code = api.ConvertInterfaceLuidToIndex(byref(c_uint64(luid)), byref(index))
    if code != NO_ERROR:
        raise _api_error(code, _("Could not find the tunnel adapter's interface index ({reason})."))
    return index.value


def _netsh() -> str:
    # By absolute path: the network service runs as SYSTEM, and PATH is not ours to trust.
    return winapi.system32_path("netsh.exe")


def _check(code: int, failure: str, **values: object) -> None:
    """A change's result code as the configurator's exceptions (`failure` as in _api_error)."""
    if code == ERROR_OBJECT_ALREADY_EXISTS:
        raise AlreadyThere()
    if code != NO_ERROR:
        raise _api_error(code, failure, **values)


def _tolerate_gone(code: int, failure: str, **values: object) -> None:
    if code != NO_ERROR and code not in _GONE:
        raise _api_error(code, failure, **values)


def _api_error(code: int, failure: str, **values: object) -> PlatformError:
    """`failure` is the sentence for a failed call, with {reason} (Windows' error) and `values` to fill in."""
    if code == ERROR_ACCESS_DENIED:
        return PlatformError(admin_sentence())
    if code in _GONE:
        return PlatformError(_("The tunnel adapter disappeared while it was being configured; reconnect."))
    return PlatformError(failure.format(reason=describe_error(code), **values))
