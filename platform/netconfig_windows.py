"""Windows network configuration for the tunnel: interface MTU and metric, address, routes and
DNS through the IP Helper API (iphlpapi.dll) with ctypes, each change journaled before it is made.

UNTESTED ON WINDOWS: written against the Microsoft documentation of the functions named below,
wireguard-windows (tunnel/addressconfig.go, tunnel/winipcfg) and OpenVPN (route.c, interactive.c)
as summarised in the platform note, and unit-tested on Linux with recorded fakes
(tests/recorded_windows.py). Nothing here has run on a real Windows system yet.

Routing policy, the same as on Linux (see netconfig_linux):
- Full tunnel: the half-default routes 0.0.0.0/1 and 128.0.0.0/1 (and ::/1, 8000::/1 when IPv6 is
  on for the adapter) through the adapter with an unspecified next hop (on-link, it is a
  point-to-point link), CreateIpForwardEntry2. The system default route is never touched. The
  adapter's interface metric is set to 0 with automatic metric off (SetIpInterfaceEntry), as
  wireguard-windows does when it carries default routes: Windows adds the interface metric to the
  route metric, and the tunnel must win.
- Before that, a /32 (/128) host route to the SSTP server through the route Windows uses for it
  now (GetBestRoute2: its next hop and interface), or the TLS connection would be routed into its
  own tunnel. None when the server is on-link or on this machine (an unspecified next hop).
- Split tunnel: only the /24 around our address.
DNS: the VPN's servers on the adapter with SetInterfaceDnsSettings (Windows 10 2004+; a missing
export means an older Windows, then `netsh interface ipv4 set/add dnsservers`).
Known leak, not handled yet: Windows' "smart multi-homed name resolution" may also ask the other
interfaces' DNS servers. Closing it needs an NRPT catch-all rule ("." -> the VPN's servers, one
registry subkey under ...\\Dnscache\\Parameters\\DnsPolicyConfig, which survives reboots and so
must be journaled) or a WFP filter blocking port 53 elsewhere (wireguard-windows).

Undo (journal_replay): newest step first. The steps tied to the adapter (its settings, address,
routes, DNS) are undone only by the process that holds the adapter: after a crash the adapter is
gone, and they with it. The host route to the server stays until deleted, so it is always undone.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import pathlib
from ctypes import byref, c_uint32, c_uint64
from collections.abc import Sequence
from typing import TYPE_CHECKING, Callable

from sstpvpn.platform import journal_replay, winapi
from sstpvpn.platform.commands import CommandRunner, run_command
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal import Step, UndoJournal
from sstpvpn.platform.winapi import (AF_INET, AF_INET6, ERROR_ACCESS_DENIED, ERROR_FILE_NOT_FOUND, ERROR_NOT_FOUND,
                                     ERROR_OBJECT_ALREADY_EXISTS, GUID, NO_ERROR, Library, describe_error)

if TYPE_CHECKING:
    from sstpvpn.client.core.types import PushedSettings
    from sstpvpn.client.core.types import NetworkPlan

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SPLIT_PREFIX_LENGTH = 24
IPV6_MIN_MTU = 1280
TUNNEL_METRIC = 0  # interface metric in full-tunnel mode, and the metric of every route we add
FULL_TUNNEL_ROUTES = [ipaddress.ip_network("0.0.0.0/1"), ipaddress.ip_network("128.0.0.0/1")]
FULL_TUNNEL_ROUTES_V6 = [ipaddress.ip_network("::/1"), ipaddress.ip_network("8000::/1")]
ADAPTER_STEPS = {"interface", "address", "tunnel_route", "dns"}  # die with the adapter
_GONE = {ERROR_NOT_FOUND, ERROR_FILE_NOT_FOUND}  # undoing something already gone is fine

ADMIN_SENTENCE = ("Configuring the network for the VPN needs administrator rights: start SSTP VPN "
                  "as administrator.")


def default_journal_path(name: str = "network") -> pathlib.Path:
    """%ProgramData%\\SSTP VPN\\: the engine runs elevated on Windows (Wintun needs it), and the
    journal must outlive a crash and a reboot (the host route to the server is not tied to the
    adapter)."""
    program_data = os.environ.get("ProgramData") or r"C:\ProgramData"
    return pathlib.Path(program_data) / "SSTP VPN" / f"{name}-journal.json"


def repair_from_journal(journal_path: pathlib.Path, *, iphlpapi: Library | None = None,
                        kernel32: Library | None = None, run_command: CommandRunner | None = None) -> bool:
    """Undo what a client that died left behind. True if there was something to undo."""
    windows = _Windows(iphlpapi, kernel32, run_command)
    return journal_replay.repair(journal_path, functools.partial(journal_replay.repair_held, owners=_owners(windows),
                                                                   undo_step=windows.undo))


class NetConfigurator:
    """Applies a NetworkPlan to one Wintun adapter, found by its interface alias, and undoes it."""

    def __init__(self, ifname: str, server_address: IPAddress | str, full_tunnel: bool = True,
                 journal_path: pathlib.Path | None = None, *, extra_routes: Sequence[IPNetwork] = (),
                 use_vpn_dns: bool = True, iphlpapi: Library | None = None,
                 kernel32: Library | None = None, run_command: CommandRunner | None = None) -> None:
        self.ifname = ifname
        self.server_address = ipaddress.ip_address(server_address)
        self.full_tunnel = full_tunnel
        self.extra_routes = tuple(extra_routes)
        self.use_vpn_dns = use_vpn_dns
        self.journal = UndoJournal(journal_path if journal_path is not None else default_journal_path())
        self.notes: list[str] = []  # sentences about things restore() deliberately left alone
        self._windows = _Windows(iphlpapi, kernel32, run_command)
        self._owners = _owners(self._windows)

    # -- public --------------------------------------------------------------------------

    def apply(self, plan: "NetworkPlan") -> None:
        """Configure the adapter, routes and DNS. On failure everything done so far is undone
        and a PlatformError says why."""
        journal_replay.begin(self.journal, self._owners,
                             functools.partial(journal_replay.repair_held, owners=self._owners, undo_step=self._windows.undo))
        try:
            luid = self._luid()
            families = [AF_INET] + ([AF_INET6] if self._has_ipv6(luid) else [])
            for family in families:
                self._configure_interface(luid, family, plan.mtu)
            self._add_address(luid, ipaddress.ip_address(plan.address), 32)
            if plan.ipv6_identifier is not None and AF_INET6 in families:
                # The link-local address from the identifier IPV6CP negotiated (as on Linux).
                link_local = ipaddress.IPv6Address(b"\xfe\x80" + b"\0" * 6 + bytes(plan.ipv6_identifier))
                self._add_address(luid, link_local, 64)
            routes = [network for network in self._tunnel_routes(plan)
                      if winapi.family_of(network.network_address) in families]
            if any(self.server_address in network for network in routes):
                self._add_server_route()
            for network in routes:
                self._add_tunnel_route(luid, network)
            self._apply_dns(luid, plan)
        except BaseException:
            try:
                self.restore()
            except PlatformError as undo_error:
                log.warning("%s", undo_error.sentence)
            raise

    def add_pushed(self, pushed: "PushedSettings") -> list[str]:
        """What the VPN's DHCP server sent (routes, DNS domains): not added on Windows yet, said
        in a note; the connection works as set up by apply()."""
        if not pushed:
            return []
        return ["This version cannot add the routes and DNS domains the VPN's DHCP server sent on "
                "Windows yet; ask for them as extra routes in the profile if you need them."]

    def restore(self) -> list[str]:
        """Undo exactly what apply() did, in reverse order. Safe to call again, and when apply()
        was never called. Returns sentences about anything deliberately left alone."""
        notes = journal_replay.restore(self.journal, self._owners, self._windows.undo)
        self.notes.extend(notes)
        return notes

    # -- apply steps ---------------------------------------------------------------------

    def _luid(self) -> int:
        luid = c_uint64()
        code = self._windows.iphlpapi.ConvertInterfaceAliasToLuid(self.ifname, byref(luid))
        if code != NO_ERROR:
            raise PlatformError(f"The tunnel adapter {self.ifname} does not exist (any more) "
                                f"({describe_error(code)}); reconnect.")
        return luid.value

    def _has_ipv6(self, luid: int) -> bool:
        code, _row = winapi.read_interface(self._windows.iphlpapi, luid, AF_INET6)
        return code == NO_ERROR  # ERROR_NOT_FOUND: IPv6 is not bound to the adapter

    def _configure_interface(self, luid: int, family: int, mtu: int) -> None:
        api = self._windows.iphlpapi
        code, row = winapi.read_interface(api, luid, family)
        if code != NO_ERROR:
            raise _api_error(code, f"read the settings of the tunnel adapter {self.ifname}")
        step = {"op": "interface", "luid": luid, "family": family, "mtu": row.NlMtu,
                "automatic_metric": row.UseAutomaticMetric, "metric": row.Metric}
        if family == AF_INET or mtu >= IPV6_MIN_MTU:
            row.NlMtu = mtu
        if self.full_tunnel:
            row.UseAutomaticMetric = 0
            row.Metric = TUNNEL_METRIC
        self._change(step, lambda: winapi.write_interface(api, row),
                     f"set an MTU of {mtu} and the metric on the tunnel adapter {self.ifname}")

    def _add_address(self, luid: int, address: IPAddress, prefixlen: int) -> None:
        api = self._windows.iphlpapi
        row = _address_row(api, luid, address, prefixlen)
        # No duplicate address detection on a point-to-point link: usable at once (Wintun's example).
        row.DadState = winapi.IP_DAD_STATE_PREFERRED
        row.ValidLifetime = row.PreferredLifetime = winapi.INFINITE_LIFETIME
        step = {"op": "address", "luid": luid, "address": str(address), "prefixlen": prefixlen}
        code = self._change(step, lambda: api.CreateUnicastIpAddressEntry(byref(row)),
                            f"give the tunnel adapter {self.ifname} the address {address}")
        if code == ERROR_OBJECT_ALREADY_EXISTS:
            raise PlatformError(f"The address {address} is already in use on another network adapter "
                                "(often one a VPN left behind); remove it there and reconnect.")

    def _tunnel_routes(self, plan: "NetworkPlan") -> list[IPNetwork]:
        if self.full_tunnel:
            return FULL_TUNNEL_ROUTES + FULL_TUNNEL_ROUTES_V6 + list(self.extra_routes)
        return [ipaddress.ip_network(f"{plan.address}/{SPLIT_PREFIX_LENGTH}", strict=False), *self.extra_routes]

    def _add_server_route(self) -> None:
        api = self._windows.iphlpapi
        server = self.server_address
        destination = winapi.sockaddr_inet(server)
        best, source = winapi.MIB_IPFORWARD_ROW2(), winapi.SOCKADDR_INET()
        # Any interface (no LUID, index 0), any source address, default sort options.
        code = api.GetBestRoute2(None, 0, None, byref(destination), 0, byref(best), byref(source))
        if code != NO_ERROR:
            if code == ERROR_ACCESS_DENIED:
                raise PlatformError(ADMIN_SENTENCE)
            raise PlatformError(f"This computer has no route to the VPN server {server} "
                                f"({describe_error(code)}); check the network connection.")
        gateway = winapi.address_of(best.NextHop)
        if gateway is None or gateway.is_unspecified:
            return  # on this machine or on a local link: the tunnel routes cannot capture it
        prefixlen = 32 if server.version == 4 else 128
        step = {"op": "server_route", "luid": best.InterfaceLuid, "dst": str(server), "prefixlen": prefixlen,
                "next_hop": str(gateway)}
        self._change(step, lambda: api.CreateIpForwardEntry2(byref(_route_row(api, step))),
                     f"add a route to the VPN server {server}")
        # ERROR_OBJECT_ALREADY_EXISTS: a host route to the server exists already (and GetBestRoute2
        # chose it): keep it, it is not ours to undo.

    def _add_tunnel_route(self, luid: int, network: IPNetwork) -> None:
        api = self._windows.iphlpapi
        unspecified = "0.0.0.0" if network.version == 4 else "::"
        step = {"op": "tunnel_route", "luid": luid, "dst": str(network.network_address),
                "prefixlen": network.prefixlen, "next_hop": unspecified}
        code = self._change(step, lambda: api.CreateIpForwardEntry2(byref(_route_row(api, step))),
                            f"add the route {network}")
        if code == ERROR_OBJECT_ALREADY_EXISTS:
            if self.full_tunnel:
                raise PlatformError(f"Another VPN already routes all traffic (the route {network} "
                                    "exists); disconnect it first.")
            raise PlatformError(f"The VPN's network {network} is already routed elsewhere (often the "
                                "local network uses the same addresses), so the VPN cannot use it.")

    def _apply_dns(self, luid: int, plan: "NetworkPlan") -> None:
        servers = [ipaddress.ip_address(server) for server in plan.dns if ipaddress.ip_address(server).version == 4]
        if not servers or not self.use_vpn_dns:
            return
        windows = self._windows
        if windows.iphlpapi.SetInterfaceDnsSettings is not None:
            guid = _guid(windows.iphlpapi, luid)
            step = {"op": "dns", "method": "api", "luid": luid, "guid": bytes(guid).hex()}
            self._change(step, lambda: _set_dns(windows.iphlpapi, guid, ",".join(map(str, servers))),
                         f"set the DNS servers of the tunnel adapter {self.ifname}")
            return
        index = _index(windows.iphlpapi, luid)
        step = {"op": "dns", "method": "netsh", "luid": luid, "index": index}
        self.journal.record(step)
        for position, server in enumerate(servers):
            if position == 0:
                argv = [_netsh(), "interface", "ipv4", "set", "dnsservers", f"name={index}", "source=static",
                        f"address={server}", "register=none", "validate=no"]
            else:
                argv = [_netsh(), "interface", "ipv4", "add", "dnsservers", f"name={index}",
                        f"address={server}", f"index={position + 1}", "validate=no"]
            result = windows.run(argv, None)
            if not result.ok:
                raise PlatformError(f"Windows refused the VPN's DNS server {server} on the tunnel adapter "
                                    f"{self.ifname} (netsh: {result.output or result.returncode}).")

    def _change(self, step: Step, call: Callable[[], int], what: str) -> int:
        """Journal `step`, then make the change. When Windows refuses, the step leaves the journal
        again (nothing changed); ERROR_OBJECT_ALREADY_EXISTS is returned for the caller to judge."""
        self.journal.record(step)
        code = call()
        if code != NO_ERROR:
            self.journal.forget(step)
            if code != ERROR_OBJECT_ALREADY_EXISTS:
                raise _api_error(code, what)
        return code


# -- undo --------------------------------------------------------------------------------


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

    def undo(self, step: Step, interface_is_ours: bool) -> str | None:
        op = step.get("op")
        if op in ADAPTER_STEPS and not interface_is_ours:
            return None  # went with the adapter of the process that made it
        api = self.iphlpapi
        if op in ("server_route", "tunnel_route"):
            _tolerate_gone(api.DeleteIpForwardEntry2(byref(_route_row(api, step))),
                           f"remove the route {step['dst']}/{step['prefixlen']}")
        elif op == "address":
            row = _address_row(api, step["luid"], ipaddress.ip_address(step["address"]), step["prefixlen"])
            _tolerate_gone(api.DeleteUnicastIpAddressEntry(byref(row)), f"remove the address {step['address']}")
        elif op == "interface":
            code, row = winapi.read_interface(api, step["luid"], step["family"])
            if code in _GONE:
                return None
            if code == NO_ERROR:
                row.NlMtu, row.UseAutomaticMetric, row.Metric = step["mtu"], step["automatic_metric"], step["metric"]
                code = winapi.write_interface(api, row)
            _tolerate_gone(code, "restore the settings of the tunnel adapter")
        elif op == "dns" and step.get("method") == "api":
            guid = GUID.from_buffer_copy(bytes.fromhex(step["guid"]))
            _tolerate_gone(_set_dns(api, guid, ""), "remove the DNS servers of the tunnel adapter")
        elif op == "dns":
            argv = [_netsh(), "interface", "ipv4", "set", "dnsservers", f"name={step['index']}", "source=dhcp"]
            result = self.run(argv, None)
            if not result.ok:
                log.info("netsh could not reset the tunnel adapter's DNS servers (%s); the adapter is "
                         "removed on disconnect anyway.", result.output)
        else:
            raise journal_replay.unknown_step(step)
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


def _route_row(api: Library, step: Step) -> winapi.MIB_IPFORWARD_ROW2:
    """The row CreateIpForwardEntry2 and DeleteIpForwardEntry2 take: the key is the interface,
    the destination prefix and the next hop."""
    row = winapi.MIB_IPFORWARD_ROW2()
    api.InitializeIpForwardEntry(byref(row))  # lifetimes infinite, protocol and the rest defaults
    row.InterfaceLuid = step["luid"]
    row.DestinationPrefix.Prefix = winapi.sockaddr_inet(ipaddress.ip_address(step["dst"]))
    row.DestinationPrefix.PrefixLength = step["prefixlen"]
    row.NextHop = winapi.sockaddr_inet(ipaddress.ip_address(step["next_hop"]))
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
        raise _api_error(code, "find the tunnel adapter's GUID")
    return guid


def _index(api: Library, luid: int) -> int:
    index = c_uint32()
    code = api.ConvertInterfaceLuidToIndex(byref(c_uint64(luid)), byref(index))
    if code != NO_ERROR:
        raise _api_error(code, "find the tunnel adapter's interface index")
    return index.value


def _netsh() -> str:
    # By absolute path: we run elevated, and PATH is not ours to trust.
    return winapi.system32_path("netsh.exe")


def _tolerate_gone(code: int, what: str) -> None:
    if code != NO_ERROR and code not in _GONE:
        raise _api_error(code, what)


def _api_error(code: int, what: str) -> PlatformError:
    if code == ERROR_ACCESS_DENIED:
        return PlatformError(ADMIN_SENTENCE)
    if code in _GONE:
        return PlatformError("The tunnel adapter disappeared while it was being configured; reconnect.")
    return PlatformError(f"Could not {what} ({describe_error(code)}).")

