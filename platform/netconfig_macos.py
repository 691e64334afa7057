"""macOS network configuration for the tunnel: address, routes and DNS through the system's own
tools (ifconfig, route, scutil), each change journaled before it is made.

UNTESTED ON macOS: the commands follow OpenVPN (tun.c: the utun ifconfig line; FreeBSD's -alias
undo), wg-quick's darwin.bash (route -q -n add -inet ... -interface / -gateway) and OpenVPN's
macos-dns-updown.sh (scutil on the primary service's Setup: DNS key), as summarised in the
platform note, and are unit-tested on Linux with a recorded command runner
(tests/recorded_macos.py). Nothing here has run on a real Mac yet.

Every program is run by absolute path with an argv list, never through a shell (commands.py);
values reach scutil on its stdin only after being parsed as addresses or checked against a
strict pattern, so nothing from the network or the journal can inject a command.

The routing policy is routing_policy's; how each of its steps is made here: the MTU goes with the
IPv4 address in one ifconfig call (as OpenVPN configures a utun), the link-local address is an
inet6 alias, routes are `route -n add ... -interface utunN`, and the host route to the server
goes through the gateway `route -n get` reports for it now (none when it has no gateway: on-link
or local). A refused IPv6 route is a note, not a failure.

DNS:
- Full tunnel: the VPN's servers become the ServerAddresses of the *primary* network service
  (State:/Network/Global/IPv4 PrimaryService), in its Setup:/Network/Service/<id>/DNS entry,
  which overrides the DHCP-supplied (State:) servers property by property. Only that one
  property is changed (scutil `get`, `d.add ServerAddresses`, `set`), so the other properties
  keep their exact values and types, and restore puts back exactly the old ServerAddresses (or
  removes the property, or the key when we created it). The journal keeps the old value on disk:
  Setup: entries may outlive a crash.
  Restore leaves the entry alone (with a note) if someone else changed its servers meanwhile.
- Split tunnel: DNS is left alone. PPP names no domains, and a supplemental resolver without
  match domains would never be asked.

Undo (configurator, journal_replay): newest first. Steps tied to the utun (its address, its routes) are undone
only by the process holding it; after a crash the utun is gone and they with it. The server host
route and the DNS change are always undone.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import pathlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import journal_replay
from sstpvpn.platform import routing_policy as policy
from sstpvpn.platform.commands import CommandResult, CommandRunner, run_command
from sstpvpn.platform.configurator import AlreadyThere, StepConfigurator
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal_steps import JournalStep, StepCatalog

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

IFCONFIG = "/sbin/ifconfig"
ROUTE = "/sbin/route"
SCUTIL = "/usr/sbin/scutil"
DSCACHEUTIL = "/usr/bin/dscacheutil"
PS = "/bin/ps"

GLOBAL_IPV4_KEY = "State:/Network/Global/IPv4"
_SERVICE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_DNS_KEY = re.compile(r"Setup:/Network/Service/[A-Za-z0-9-]{1,64}/DNS")
_UTUN = re.compile(r"utun[0-9]{1,3}")


def admin_sentence() -> str:
    return _("Configuring the network for the VPN needs administrator rights: run sstp-vpn as root.")


def default_journal_path(name: str = "network") -> pathlib.Path:
    """As root /var/db/sstp-vpn/ (on disk: the DNS change and the server route outlive a crash),
    otherwise the user's state folder."""
    filename = f"{name}-journal.json"
    if os.geteuid() == 0:
        return pathlib.Path("/var/db/sstp-vpn") / filename
    import platformdirs

    return platformdirs.user_state_path("sstp-vpn") / filename


def repair_from_journal(journal_path: pathlib.Path, *, run_command: CommandRunner | None = None) -> bool:
    """Undo what a client that died left behind. True if there was something to undo."""
    return journal_replay.repair(journal_path, _Tools(run_command).replay())


# -- journal steps: what was changed, with what undoes it ------------------------------------


@dataclass(frozen=True)
class AddressAdded(JournalStep):
    OP = "address"
    ifname: str
    local: str


@dataclass(frozen=True)
class Address6Added(JournalStep):
    OP = "address6"
    ifname: str
    local: str  # with its prefix length


@dataclass(frozen=True)
class ServerRouteAdded(JournalStep):
    OP = "server_route"
    family: str  # -inet or -inet6
    dst: str
    gateway: str


@dataclass(frozen=True)
class TunnelRouteAdded(JournalStep):
    OP = "tunnel_route"
    ifname: str
    family: str
    dst: str


@dataclass(frozen=True)
class DnsChanged(JournalStep):
    """The primary service's DNS servers: whether the entry existed, its old servers (None: the
    property was absent), and ours."""

    OP = "dns"
    key: str
    existed: bool
    servers: tuple[str, ...] | None
    ours: tuple[str, ...]


CATALOG = StepCatalog(AddressAdded, Address6Added, ServerRouteAdded, TunnelRouteAdded, DnsChanged)
INTERFACE_STEPS = (AddressAdded, Address6Added, TunnelRouteAdded)  # die with the utun


class NetConfigurator(StepConfigurator):
    """Applies a NetworkPlan to one utun interface and undoes it again."""

    _system_name = "macOS"

    def __init__(
        self,
        ifname: str,
        server_address: IPAddress | str,
        full_tunnel: bool = True,
        journal_path: pathlib.Path | None = None,
        *,
        extra_routes: Sequence[IPNetwork] = (),
        use_vpn_dns: bool = True,
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
        self._tools = _Tools(run_command)
        self._replay = self._tools.replay()
        self._mtu = 0

    # -- applying one policy step ----------------------------------------------------------

    def _refuse_before_journal(self) -> None:
        if _UTUN.fullmatch(self.ifname) is None:
            raise PlatformError(_("{name} is not a macOS tunnel interface (utunN).").format(name=repr(self.ifname)))

    def _apply_step(self, step: policy.Step) -> None:
        match step:
            case policy.SetLink(mtu=mtu):
                self._mtu = mtu  # set with the address, in the same ifconfig call
            case policy.AddAddress(local=ipaddress.IPv4Address() as local, peer=peer):
                # Point-to-point: our address, the peer's, a host netmask; with the MTU and up in
                # the same call, as OpenVPN configures a utun.
                self._run_change(
                    AddressAdded(self.ifname, str(local)),
                    [IFCONFIG, self.ifname, "inet", str(local), str(peer), "mtu", str(self._mtu), "netmask", "255.255.255.255", "up"],
                    _("Could not give the tunnel interface {name} the address {address} ({reason})."),
                    name=self.ifname,
                    address=local,
                )
            case policy.AddAddress(local=local, prefixlen=prefixlen):
                self._run_change(
                    Address6Added(self.ifname, f"{local}/{prefixlen}"),
                    [IFCONFIG, self.ifname, "inet6", f"{local}/{prefixlen}", "alias"],
                    _("Could not give the tunnel interface {name} the address {address} ({reason})."),
                    name=self.ifname,
                    address=local,
                )
            case policy.HostRouteToServer(server=server):
                self._add_server_route(server)
            case policy.AddRoute(network=network):
                self._add_tunnel_route(network)
            case policy.SetDns(servers=servers, all_names=True):
                # A split tunnel leaves DNS alone: PPP names no domains, and a supplemental
                # resolver without match domains would never be asked.
                self._apply_dns([str(server) for server in servers])

    def _add_server_route(self, server: IPAddress) -> None:
        family = _family_flag(server)
        result = self._tools.run([ROUTE, "-n", "get", family, str(server)], None)
        if not result.ok:
            # Translators: "route get" is the command that was run
            raise PlatformError(policy.no_route_to_server_sentence(server, result.output or _("route get failed")))
        gateway = gateway_of(result.stdout)
        if gateway is None:
            return  # on this machine or on a local link: the tunnel routes cannot capture it
        destination = f"{server}/{32 if server.version == 4 else 128}"
        self._run_change(
            ServerRouteAdded(family, destination, gateway),
            [ROUTE, "-n", "add", family, destination, "-gateway", gateway],
            _("Could not add a route to the VPN server {server} ({reason})."),
            already_there_ok=True,
            server=server,
        )

    def _add_tunnel_route(self, network: IPNetwork) -> None:
        family = _family_flag(network.network_address)
        try:
            self._run_change(
                TunnelRouteAdded(self.ifname, family, str(network)),
                [ROUTE, "-n", "add", family, str(network), "-interface", self.ifname],
                _("Could not add the route {route} ({reason})."),
                already_there_ok=True,
                route=network,
            )
        except PlatformError as error:
            if network.version == 4:
                raise
            # Without IPv6 on the tunnel, macOS may refuse IPv6 routes into it; then IPv6 traffic
            # keeps its old path. Said, not fatal (as Linux tolerates IPv6 being switched off).
            note = _("IPv6 traffic is not routed into the tunnel: {problem}").format(problem=error.sentence)
            log.warning("%s", note)
            self.notes.append(note)

    def _apply_dns(self, servers: list[str]) -> None:
        service = self._tools.primary_service()
        if service is None:
            note = _("macOS reports no primary network service, so the VPN's DNS servers were not set.")
            log.warning("%s", note)
            self.notes.append(note)
            return
        key = f"Setup:/Network/Service/{service}/DNS"
        current = self._tools.read_key(key)
        old_servers = current.get("ServerAddresses") if current is not None else None
        self._record(DnsChanged(key, current is not None, tuple(old_servers) if isinstance(old_servers, list) else None, tuple(servers)))
        load = f"get {key}\n" if current is not None else "d.init\n"
        self._tools.scutil(f"{load}d.add ServerAddresses * {' '.join(servers)}\nset {key}\n")
        now = self._tools.read_key(key)
        if now is None or now.get("ServerAddresses") != servers:
            raise PlatformError(_("macOS did not take the VPN's DNS servers (scutil); check that sstp-vpn runs as root."))
        self._tools.flush_dns_cache()

    def _run_change(self, step: JournalStep, argv: list[str], failure: str, already_there_ok: bool = False, **values: object) -> None:
        """Journal `step`, then run `argv` (configurator._change); `failure` as in _command_error."""

        def run() -> None:
            result = self._tools.run(argv, None)
            if result.ok:
                return
            if already_there_ok and "File exists" in result.output:
                raise AlreadyThere()
            raise _command_error(result, failure, **values)

        self._change(step, run)


# -- the tools, and undo -----------------------------------------------------------------


class _Tools:
    def __init__(self, run: CommandRunner | None) -> None:
        self.run = run_command if run is None else run

    def replay(self) -> journal_replay.Replay:
        return journal_replay.Replay(_owners(self), CATALOG, self.undo)

    def primary_service(self) -> str | None:
        value = (self.read_key(GLOBAL_IPV4_KEY) or {}).get("PrimaryService")
        if not isinstance(value, str) or _SERVICE_ID.fullmatch(value) is None:
            return None
        return value

    def read_key(self, key: str) -> dict[str, Any] | None:
        """A dynamic-store dictionary (top level), None if the key does not exist."""
        result = self.scutil(f"show {key}\n")
        return parse_scutil_dictionary(result.stdout)

    def scutil(self, commands: str) -> CommandResult:
        result = self.run([SCUTIL], commands)
        if not result.ok:
            raise _command_error(result, _("Could not change the DNS settings ({reason})."))
        return result

    def flush_dns_cache(self) -> None:
        result = self.run([DSCACHEUTIL, "-flushcache"], None)
        if not result.ok:
            log.info("dscacheutil -flushcache failed (%s); cached names expire on their own.", result.output)

    def undo(self, step: JournalStep, interface_is_ours: bool) -> str | None:
        if isinstance(step, INTERFACE_STEPS):
            if not interface_is_ours or _UTUN.fullmatch(str(step.ifname)) is None:
                return None  # went with the utun of the process that made it
            match step:
                case TunnelRouteAdded():
                    # By destination only, as wg-quick deletes its routes; a route we added is ours.
                    argv = [ROUTE, "-n", "delete", _checked_family(step.family), str(ipaddress.ip_network(step.dst))]
                case AddressAdded():
                    argv = [IFCONFIG, step.ifname, "inet", str(ipaddress.IPv4Address(step.local)), "-alias"]
                case _:
                    argv = [IFCONFIG, step.ifname, "inet6", str(ipaddress.IPv6Interface(step.local)), "-alias"]
            result = self.run(argv, None)
            if not result.ok:
                # The utun is closed right after restore() and takes this along; not worth a failure.
                log.info("Undoing %s on %s failed (%s); it goes with the interface.", step.OP, step.ifname, result.output)
            return None
        match step:
            case ServerRouteAdded():
                destination = ipaddress.ip_network(step.dst)
                result = self.run([ROUTE, "-n", "delete", _checked_family(step.family), str(destination)], None)
                if not result.ok and "not in table" not in result.output:
                    raise _command_error(result, _("Could not remove the route to the VPN server {server} ({reason})."), server=destination)
            case DnsChanged():
                return self._undo_dns(step)
        return None

    def _undo_dns(self, step: DnsChanged) -> str | None:
        key = step.key
        if _DNS_KEY.fullmatch(key) is None:
            raise PlatformError(
                _("The network undo journal names an unexpected DNS entry ({key}); check the DNS settings by hand.").format(key=repr(key))
            )
        ours = [str(ipaddress.ip_address(server)) for server in step.ours]
        old = None if step.servers is None else [str(ipaddress.ip_address(server)) for server in step.servers]
        current = self.read_key(key)
        servers_now = current.get("ServerAddresses") if current is not None else None
        if (current is not None) == step.existed and servers_now == old:
            return None  # never changed, or already restored
        if current is None or servers_now != ours:
            return _(
                "The DNS servers of the network service ({key}) were changed by another program "
                "while the VPN was connected; they were left as that program set them."
            ).format(key=key)
        if not step.existed and set(current) == {"ServerAddresses"}:
            commands = f"remove {key}\n"  # we created the entry: take it away again
        elif old is None:
            commands = f"get {key}\nd.remove ServerAddresses\nset {key}\n"
        else:
            commands = f"get {key}\nd.add ServerAddresses * {' '.join(old)}\nset {key}\n"
        self.scutil(commands)
        self.flush_dns_cache()
        return None


def _owners(tools: _Tools) -> journal_replay.ProcessOwners:
    """Who made the changes: process id and its start time as ps reports it (ids are reused)."""

    def started(pid: int) -> str | None:
        result = tools.run([PS, "-o", "lstart=", "-p", str(pid)], None)
        text = result.stdout.strip()
        return text if result.ok and text else None

    return journal_replay.ProcessOwners("started", started)


# -- parsing -----------------------------------------------------------------------------


def parse_scutil_dictionary(text: str) -> dict[str, Any] | None:
    """The top level of what `scutil` prints for `show <key>`:

        <dictionary> {
          PrimaryService : 5B3F...
          ServerAddresses : <array> {
            0 : 192.0.2.1
          }
        }

    Scalars become str, arrays of scalars list[str], nested dictionaries {} (we never need
    their content). None when the key does not exist ("No such key")."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != "<dictionary> {":
        return None
    result: dict[str, Any] = {}
    position = 1
    while position < len(lines) and lines[position] != "}":
        name, _, value = lines[position].partition(" : ")
        position += 1
        if value == "<array> {":
            items: list[str] = []
            while position < len(lines) and lines[position] != "}":
                items.append(lines[position].partition(" : ")[2])
                position += 1
            position += 1
            result[name] = items
        elif value == "<dictionary> {":
            depth = 1
            while position < len(lines) and depth:
                depth += lines[position].endswith("{") - (lines[position] == "}")
                position += 1
            result[name] = {}
        else:
            result[name] = value
    return result


def gateway_of(route_get_output: str) -> str | None:
    """The gateway address in `route -n get` output, or None when the route has none (the
    destination is on a local link or this machine: no GATEWAY flag, or a link#N gateway)."""
    fields = {}
    for line in route_get_output.splitlines():
        name, separator, value = line.strip().partition(":")
        if separator:
            fields[name.strip()] = value.strip()
    if "GATEWAY" not in fields.get("flags", ""):
        return None
    gateway = fields.get("gateway", "")
    try:
        ipaddress.ip_address(gateway.split("%", 1)[0])
    except ValueError:
        return None
    return gateway


def _family_flag(address: IPAddress) -> str:
    return "-inet" if address.version == 4 else "-inet6"


def _checked_family(family: str) -> str:
    if family not in ("-inet", "-inet6"):
        raise PlatformError(_("The network undo journal has a route of unknown family ({family}); undo it by hand.").format(family=repr(family)))
    return family


def _command_error(result: CommandResult, failure: str, **values: object) -> PlatformError:
    """`failure` is the sentence for a failed command, with {reason} (its output) and `values` to fill in."""
    output = result.output
    if "ermission denied" in output or "Operation not permitted" in output or "must be root" in output:
        return PlatformError(admin_sentence())
    return PlatformError(failure.format(reason=output or _("exit status {status}").format(status=result.returncode), **values))
