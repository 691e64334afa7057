"""Linux network configuration for the tunnel: link, addresses, routes and DNS, each change
journaled before it is made so that it can be undone exactly, also after a crash.

The routing policy is routing_policy's; the sequencing and the journal's life are configurator's
and journal_replay's. Here: how each step is made with netlink (pyroute2) and the resolver
(resolver_linux: systemd-resolved per link, or /etc/resolv.conf), and how it is undone. Before
anything changes, a plan that would route a local network or the gateway into the tunnel is
refused (route_safety, with route_snapshot_linux's reading of this namespace). The VPN's DHCP
server's routes and domains are added after apply() (add_pushed).

Undo: something already gone is skipped (a dead client's TUN device took its addresses and
routes along). A step names its interface by index *and* name, so a new client's TUN device that
got the same name is never touched. Kernel steps from an earlier boot or another network
namespace are skipped; a rewritten resolv.conf is restored across reboots (the reason the root
journal lives under /var/lib, not /run).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import logging
import os
import pathlib
import socket
import struct
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyroute2 import IPRoute, NetlinkError

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import journal_replay, route_safety
from sstpvpn.platform import resolver_linux as resolver
from sstpvpn.platform import routing_policy as policy
from sstpvpn.platform.configurator import AlreadyThere, NothingChanged, StepConfigurator
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal import linux_journal_path
from sstpvpn.platform.journal_steps import JournalStep, StepCatalog
from sstpvpn.platform.netlink_linux import Failed, admin_sentence, call, netlink, netlink_error
from sstpvpn.platform.owners_linux import LinuxOwners

# route_problem_before_connecting: platform.current takes it from here.
from sstpvpn.platform.route_snapshot_linux import read_route_snapshot, route_problem_before_connecting
from sstpvpn.platform.route_watch_linux import Path, path_without_tunnel

if TYPE_CHECKING:
    from sstpvpn.client.core.types import PushedSettings

__all__ = ["NetConfigurator", "admin_sentence", "default_journal_path", "repair_from_journal", "route_problem_before_connecting"]

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAIN_TABLE = 254
RTN_LOCAL = 2
IFF_UP = 0x1
IPV4_PRIORITY = 0  # the kernel's default metric for IPv4 routes
IPV6_PRIORITY = 1024  # ... and for IPv6 routes

# Undoing something that is already gone is not an error: when the process died its TUN device
# vanished and took its addresses and routes along.
_GONE = {errno.ESRCH, errno.ENODEV, errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENXIO}
# The kernel refuses IPv6 routes where IPv6 is switched off; then there is nothing to leak.
_NO_IPV6 = {errno.EACCES, errno.EAFNOSUPPORT, errno.EOPNOTSUPP, errno.EPROTONOSUPPORT}


def earlier_run_note() -> str:
    return _(
        "The routes and addresses of an earlier sstp-vpn run belong to an earlier boot or another "
        "network namespace; they are gone or not ours to touch, so they were left alone."
    )


def default_journal_path(name: str = "network") -> pathlib.Path:
    """Where the undo journal lives (journal.linux_journal_path: one per network namespace, under
    /var/lib/sstp-vpn as root, else the user's state folder)."""
    return linux_journal_path(name)


def repair_from_journal(journal_path: pathlib.Path) -> bool:
    """Undo what a client that died left behind. True if there was something to undo.

    A journal whose lock a live session holds (or whose owner is still running) belongs to a live
    connection and is left alone. A damaged journal is moved aside (so it does not block every
    later start) and reported.
    """
    return journal_replay.repair(journal_path, REPLAY)


# -- journal steps: what was changed, with what undoes it ------------------------------------


@dataclass(frozen=True)
class LinkChanged(JournalStep):
    """The tunnel interface's MTU and state, as they were before."""

    OP = "link"
    ifname: str
    index: int
    mtu: int
    up: bool


@dataclass(frozen=True)
class AddressAdded(JournalStep):
    OP = "address"
    ifname: str
    index: int
    family: int
    local: str
    address: str  # the peer
    prefixlen: int


@dataclass(frozen=True)
class RouteAdded(JournalStep):
    OP = "route"
    family: int
    dst: str
    prefixlen: int
    gateway: str | None
    ifname: str
    index: int
    table: int
    priority: int

    def keys(self) -> dict[str, Any]:
        """The route as pyroute2's route("add"/"del") takes it."""
        keys = {"dst": f"{self.dst}/{self.prefixlen}", "family": self.family, "oif": self.index, "table": self.table, "priority": self.priority}
        if self.gateway is not None:
            keys["gateway"] = self.gateway
        return keys


@dataclass(frozen=True)
class ResolvedLinkSet(JournalStep):
    """DNS settings of the tunnel's link in systemd-resolved."""

    OP = "resolved_link"
    ifname: str
    index: int


@dataclass(frozen=True)
class ResolvConfWritten(JournalStep):
    """resolv.conf rewritten: its content before (None: it did not exist) and ours (latin-1)."""

    OP = "resolv_conf"
    path: str
    backup: str | None
    ours: str


@dataclass(frozen=True)
class Ipv6SysctlChanged(JournalStep):
    """One of the tunnel's IPv6 settings (/proc/sys/net/ipv6/conf/IFNAME/NAME) and its value before."""

    OP = "ipv6_sysctl"
    ifname: str
    index: int
    name: str
    before: str


@dataclass(frozen=True)
class RouterAdvertisementsTaken(JournalStep):
    """The kernel may add addresses and routes to the tunnel from the VPN's router advertisements
    (SLAAC): undone by removing those (not permanent: the kernel's) from the interface."""

    OP = "router_advertisements"
    ifname: str
    index: int


CATALOG = StepCatalog(LinkChanged, AddressAdded, RouteAdded, ResolvedLinkSet, ResolvConfWritten, Ipv6SysctlChanged, RouterAdvertisementsTaken)

IPV6_CONF = pathlib.Path("/proc/sys/net/ipv6/conf")
# The per-interface IPv6 settings we change, and only these (also when undoing a journal).
ADDR_GEN_MODE_NONE = "1"  # no link-local of the kernel's own: only the one IPV6CP agreed on
ROUTER_ADVERTISEMENT_SYSCTLS = (
    ("accept_ra_defrtr", "0"),  # never the advertised default route: the tunnel routes decide
    ("accept_ra_pinfo", "1"),  # the advertised prefixes: on-link routes and ...
    ("autoconf", "1"),  # ... an address in each (prefix + the link-local's identifier)
    ("accept_ra", "2"),  # last: advertisements taken (also where this system forwards)
)
_IPV6_SYSCTLS = frozenset({"addr_gen_mode", *(name for name, _value in ROUTER_ADVERTISEMENT_SYSCTLS)})
IFA_F_PERMANENT = 0x80
RTPROT_RA = 9


class NetConfigurator(StepConfigurator):
    """Applies a NetworkPlan to one tunnel interface and undoes it again."""

    _system_name = "Linux"

    def __init__(
        self,
        ifname: str,
        server_address: IPAddress | str,
        full_tunnel: bool = True,
        journal_path: pathlib.Path | None = None,
        *,
        extra_routes: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
        use_vpn_dns: bool = True,
    ) -> None:
        super().__init__(
            ifname,
            server_address,
            full_tunnel,
            journal_path if journal_path is not None else default_journal_path(),
            extra_routes=extra_routes,
            use_vpn_dns=use_vpn_dns,
        )
        self._replay = REPLAY
        self.resolv_conf = resolver.RESOLV_CONF
        self._dns_applied = False  # the VPN's DNS servers are in use (add_pushed adds domains then)
        self._vpn_dns: list[IPAddress] = []  # the VPN's DNS servers set last, and its domains
        self._domains: list[str] = []
        self._ipr: IPRoute | None = None  # while steps are applied
        self._index = 0
        self._solicited_node: socket.socket | None = None  # see _join_solicited_node_group
        self._server_route: RouteAdded | None = None  # our host route to the server, while it is ours
        self._covers_server = False  # a tunnel route covers the server: its host route is wanted

    def add_pushed(self, pushed: PushedSettings) -> list[str]:
        """Add what the VPN's DHCP server sent after apply() (dhcp_inform): in a split tunnel its
        routes (each checked like an extra route; one that would capture a local network or the
        gateway is left out), and its domain and search list as the tunnel's DNS domains. Journaled
        like apply(); restore() undoes it too. Returns sentences about what was left out."""
        if not self.journal.held:
            raise PlatformError(_("The network is not configured for this connection; nothing to add to."))
        notes: list[str] = []
        routes = policy.pushed_routes(pushed, self.options)
        if routes:
            with self._netlink_open():
                snapshot = read_route_snapshot(self._kernel, exclude_index=self._index)
                for route in routes:
                    problem = route_safety.first_problem(
                        snapshot, [route_safety.Destination(route.network, route.kind)]
                    ) or policy.pushed_route_problem(route.network, self.options)
                    if problem is None:
                        try:
                            self._apply_policy_step(route)
                        except PlatformError as error:
                            problem = _("Left out the route {network} that the VPN's DHCP server sent: {problem}").format(
                                network=route.network, problem=error.sentence
                            )
                    if problem is not None:
                        notes.append(problem)
        names = policy.pushed_domains(pushed)
        if names and self.use_vpn_dns and self._dns_applied:
            self._add_search_domains(names)
        for note in notes:
            log.warning("%s", note)
        return notes

    def add_ipv6_dns(self, servers: Sequence[ipaddress.IPv6Address], search: Sequence[str]) -> list[str]:
        """What the VPN's DHCPv6 server named after add_ipv6_link (client/core/dhcpv6): its DNS
        servers join the VPN's IPv4 ones (three at most, as resolv.conf reads), its domains the
        tunnel's DNS domains, as with add_pushed. Journaled; restore() undoes it."""
        if not self.journal.held:
            raise PlatformError(_("The network is not configured for this connection; nothing to add to."))
        if not self.use_vpn_dns:
            return []
        with self._netlink_open():
            if servers:
                self._set_dns(list(dict.fromkeys([*self._vpn_dns, *servers]))[:3], self.full_tunnel)
                if self._domains:
                    self._add_search_domains([])  # setting the servers again set the domains too
            if search and self._dns_applied:
                self._add_search_domains(list(search))
        return []

    def follow_server_route(self) -> str | None:
        """After a network change: move our host route to the server to where the system would
        route it now without the tunnel's routes and ours (roaming). Journaled: the new route is
        recorded before it replaces the old one (in one kernel call), the old one forgotten
        after. A sentence saying where it goes now, None when nothing changed; PlatformError when
        there is no route to the server at all."""
        if not self.journal.held or not self._covers_server:
            return None  # not configured, or the tunnel does not cover the server
        server = self.server_address
        full = 32 if server.version == 4 else 128
        with self._netlink_open():
            ipr, ours = self._kernel, self._server_route

            def is_ours(path: Path) -> bool:
                return ours is not None and path.prefixlen == full and (path.gateway, path.index) == (ours.gateway, ours.index)

            found = call(
                lambda: path_without_tunnel(ipr, server, self._index, is_ours),
                lambda reason: _("Could not read the routing table ({reason}).").format(reason=reason),
            )
            if found is None:
                raise PlatformError(policy.no_route_to_server_sentence(server, os.strerror(errno.ENETUNREACH)))
            if found.prefixlen == full and not is_ours(found):
                return None  # a host route of someone else's: the system keeps it
            if found.gateway is None:  # on a local link now: no host route needed
                if ours is None:
                    return None
                _undo_call(lambda: ipr.route("del", **ours.keys()), self._server_route_failed)
                self.journal.forget(self._replay.catalog.to_json(ours))
                self._server_route = None
                return _("The VPN server {server} is on a local network now; its own route was removed.").format(server=server)
            name = call(
                lambda: ipr.link("get", index=found.index)[0].get_attr("IFLA_IFNAME"),
                lambda reason: _("Could not read an interface name ({reason}).").format(reason=reason),
            )
            route = _route(server, full, found.gateway, name, found.index)
            if route == ours and _route_present(ipr, route):
                return None
            replace = _kernel_change(lambda: ipr.route("replace", **route.keys()), self._server_route_failed)
            if route == ours:
                replace()  # gone with its link and back: journaled already
            else:
                self._change(route, replace)
                if ours is not None:
                    self.journal.forget(self._replay.catalog.to_json(ours))
            self._server_route = route
        return _("The route to the VPN server {server} now goes through {gateway} on {interface}.").format(
            server=server, gateway=found.gateway, interface=name
        )

    def restore(self) -> list[str]:
        self._server_route, self._covers_server = None, False
        self._leave_solicited_node_group()
        return super().restore()

    def _server_route_failed(self, reason: str) -> str:
        return _("Could not add a route to the VPN server {server} ({reason}).").format(server=self.server_address, reason=reason)

    # -- applying one policy step ----------------------------------------------------------

    @contextlib.contextmanager
    def _applying(self, steps: list[policy.Step]) -> Iterator[None]:
        # Under the journal's lock (so no other session's tunnel shows up half-made), and before
        # anything is journaled or changed: no route may capture a local network or the gateway.
        # One netlink socket and one look-up of the interface for the check and the steps.
        with netlink() as ipr:
            indexes = call(lambda: ipr.link_lookup(ifname=self.ifname), self._find_failed)
            snapshot = read_route_snapshot(ipr, exclude_index=indexes[0] if indexes else None)
            problem = route_safety.first_problem(snapshot, policy.destinations(steps))
            if problem is not None:
                raise PlatformError(problem)
            with self._netlink_using(ipr, indexes):
                yield

    @contextlib.contextmanager
    def _netlink_open(self) -> Iterator[None]:
        with netlink() as ipr:
            indexes = call(lambda: ipr.link_lookup(ifname=self.ifname), self._find_failed)
            with self._netlink_using(ipr, indexes):
                yield

    @contextlib.contextmanager
    def _netlink_using(self, ipr: IPRoute, indexes: list[int]) -> Iterator[None]:
        if not indexes:
            raise PlatformError(_("The tunnel interface {name} does not exist (any more); reconnect.").format(name=self.ifname))
        self._ipr, self._index = ipr, indexes[0]
        try:
            yield
        finally:
            self._ipr = None

    def _find_failed(self, reason: str) -> str:
        return _("Could not find the interface {name} ({reason}).").format(name=self.ifname, reason=reason)

    @property
    def _kernel(self) -> IPRoute:
        assert self._ipr is not None, "only while steps are applied"
        return self._ipr

    def _apply_step(self, step: policy.Step) -> None:
        ipr, index = self._kernel, self._index
        match step:
            case policy.SetLink(mtu=mtu):
                link = call(
                    lambda: ipr.link("get", index=index)[0],
                    lambda reason: _("Could not read the interface {name} ({reason}).").format(name=self.ifname, reason=reason),
                )
                failed = functools.partial(_bring_up_failed, self.ifname, mtu)
                self._change(
                    LinkChanged(self.ifname, index, link.get_attr("IFLA_MTU"), bool(link["flags"] & IFF_UP)),
                    _kernel_change(lambda: ipr.link("set", index=index, mtu=mtu), failed),
                )
                # No IPv6 link-local address of the kernel's own making: only IPV6CP's. Set before
                # "up" (which would make one) and undone before "down" (which removes the one that
                # putting the setting back makes).
                self._set_ipv6_sysctl("addr_gen_mode", ADDR_GEN_MODE_NONE)
                _kernel_change(lambda: ipr.link("set", index=index, state="up"), failed)()
            case policy.AddAddress(local=local, peer=peer, prefixlen=prefixlen):
                try:
                    self._change(
                        AddressAdded(self.ifname, index, _family(local), str(local), str(peer), prefixlen),
                        _kernel_change(
                            lambda: ipr.addr("add", index=index, local=str(local), address=str(peer), prefixlen=prefixlen),
                            lambda reason: _("Could not give the interface {name} the address {address} ({reason}).").format(
                                name=self.ifname, address=local, reason=reason
                            ),
                            tolerate=_NO_IPV6 if local.version == 6 else (),
                        ),
                    )
                except _IPv6Off as error:
                    raise PlatformError(
                        _("IPv6 is switched off on {name}, so the VPN's IPv6 is not used; IPv4 works as before.").format(name=self.ifname)
                    ) from error
                if local.version == 6 and local.is_link_local:
                    self._join_solicited_node_group(local, index)
            case policy.HostRouteToServer(server=server):
                self._add_server_route(server)
            case policy.AddRoute(network=network):
                route = _route(network.network_address, network.prefixlen, None, self.ifname, index)
                # Where IPv6 is switched off the kernel refuses IPv6 routes, and there is nothing to leak.
                with contextlib.suppress(_IPv6Off):
                    self._change(
                        route,
                        _kernel_change(
                            lambda: ipr.route("add", **route.keys()),
                            lambda reason: _("Could not add the route {network} ({reason}).").format(network=network, reason=reason),
                            tolerate=_NO_IPV6 if network.version == 6 else (),
                        ),
                    )
            case policy.SetDns(servers=servers, all_names=all_names):
                self._set_dns(list(servers), all_names)
            case policy.AcceptRouterAdvertisements():
                if _sysctl_path(self.ifname, "accept_ra").exists():  # else IPv6 is switched off here
                    self._record(RouterAdvertisementsTaken(self.ifname, index))
                    for name, value in ROUTER_ADVERTISEMENT_SYSCTLS:
                        self._set_ipv6_sysctl(name, value)

    def _join_solicited_node_group(self, link_local: ipaddress.IPv6Address, index: int) -> None:
        """Listen on the tunnel for neighbour solicitations to our addresses' solicited-node group
        (ff02::1:ffXX:XXXX of the identifier, which the SLAAC address shares). The kernel joins it
        on no IFF_NOARP interface, so a multicast solicitation would go unanswered; a server that
        bridges the PPP link to Ethernet (SoftEther) passes its hub's solicitations through, and
        without an answer no host there can send to us. Held by a socket while the tunnel is
        configured: it goes with the process, nothing to undo after a crash."""
        self._leave_solicited_node_group()
        group = ipaddress.IPv6Address(b"\xff\x02" + bytes(9) + b"\x01\xff" + link_local.packed[13:])
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group.packed + struct.pack("@I", index))
        except OSError as error:
            sock.close()
            raise PlatformError(
                _("Could not listen for IPv6 neighbour solicitations on {name} ({reason}).").format(name=self.ifname, reason=error.strerror or error)
            ) from error
        self._solicited_node = sock

    def _leave_solicited_node_group(self) -> None:
        if self._solicited_node is not None:
            self._solicited_node.close()
            self._solicited_node = None

    def _set_ipv6_sysctl(self, name: str, value: str) -> None:
        """Set one of the tunnel's IPv6 settings, journaled; nothing where IPv6 is switched off.
        Where the system refuses (a read-only /proc/sys in a container) the tunnel works without
        it: the refusal becomes a note and the log's warning, never the connection's failure."""
        path = _sysctl_path(self.ifname, name)
        try:
            before = path.read_text().strip()
        except FileNotFoundError:
            return
        except OSError as error:
            self._sysctl_refused(_sysctl_failed(self.ifname, name, error))
            return
        if before == value:
            return
        try:
            self._change(Ipv6SysctlChanged(self.ifname, self._index, name, before), lambda: _write_sysctl(path, self.ifname, value))
        except PlatformError as error:
            self._sysctl_refused(error.sentence)

    def _sysctl_refused(self, sentence: str) -> None:
        log.warning("%s", sentence)
        if sentence not in self.notes:
            self.notes.append(sentence)

    def _add_server_route(self, server: IPAddress) -> None:
        ipr = self._kernel
        self._covers_server = True
        try:
            current = ipr.route("get", dst=str(server))[0]
        except NetlinkError as error:
            if error.code == errno.EPERM:
                raise PlatformError(admin_sentence()) from error
            raise PlatformError(policy.no_route_to_server_sentence(server, os.strerror(error.code))) from error
        gateway = current.get_attr("RTA_GATEWAY")
        if current["type"] == RTN_LOCAL or gateway is None:
            return  # on this machine or on a local link: the tunnel routes cannot capture it
        oif = current.get_attr("RTA_OIF")
        oif_name = call(
            lambda: ipr.link("get", index=oif)[0].get_attr("IFLA_IFNAME"),
            lambda reason: _("Could not read an interface name ({reason}).").format(reason=reason),
        )
        route = _route(server, 32 if server.version == 4 else 128, gateway, oif_name, oif)
        self._change(route, _kernel_change(lambda: ipr.route("add", **route.keys()), self._server_route_failed))
        self._server_route = route

    def _set_dns(self, servers: list[IPAddress], all_names: bool) -> None:
        # _dns_applied: the VPN's servers are in use, so they also get the domains its DHCP server
        # may send later (add_pushed); a split tunnel over a plain resolv.conf leaves the file
        # alone, and so its domains too.
        self._vpn_dns = list(servers)
        if resolver.resolved_manages(self.resolv_conf):
            self._record(ResolvedLinkSet(self.ifname, self._index))
            resolver.resolvectl("dns", self.ifname, *map(str, servers))
            if all_names:
                resolver.resolvectl("domain", self.ifname, "~.")
            # Full tunnel: every name the other links' domains do not claim goes to the VPN.
            # Split: only the VPN's domains (pushed later) do; the local servers keep the rest.
            resolver.resolvectl("default-route", self.ifname, "true" if all_names else "false")
            self._dns_applied = True
            return
        if not all_names:
            return  # see resolver_linux: a plain file cannot do split DNS
        self._write_resolv_conf(lambda original: resolver.render_resolv_conf(original, servers))
        self._dns_applied = True

    def _add_search_domains(self, names: list[str]) -> None:
        self._domains = list(dict.fromkeys([*self._domains, *names]))  # the DHCP and DHCPv6 servers' both
        if resolver.resolved_manages(self.resolv_conf):
            # Routing and search domains of the tunnel's link; in a full tunnel "~." stays first.
            resolver.resolvectl("domain", self.ifname, *(["~."] if self.full_tunnel else []), *self._domains)
            return
        self._write_resolv_conf(lambda current: None if current is None else resolver.with_search_domains(current, names))

    def _write_resolv_conf(self, render: Callable[[bytes | None], bytes | None]) -> None:
        """Rewrite resolv.conf (where its symlink points) with `render(old content)`; None: leave it."""
        path = pathlib.Path(os.path.realpath(self.resolv_conf))
        original = resolver.read_file(path)
        ours = render(original)
        if ours is None:
            return
        self._record(ResolvConfWritten(str(path), _encode(original), ours.decode("latin-1")))
        resolver.write_in_place(path, ours)


class _IPv6Off(NothingChanged):
    """The kernel refused an IPv6 change because IPv6 is switched off."""


def _kernel_change(action: Callable[[], Any], failed: Failed, tolerate: Collection[int] = ()) -> Callable[[], None]:
    """`action` with the kernel's refusal as the configurator's exceptions."""

    def change() -> None:
        try:
            action()
        except NetlinkError as error:
            if error.code == errno.EEXIST:
                raise AlreadyThere() from error
            if error.code in tolerate:
                raise _IPv6Off() from error
            raise netlink_error(error, failed) from error

    return change


# -- undo --------------------------------------------------------------------------------


def _undo_step(step: JournalStep, same_boot_and_namespace: bool) -> str | None:
    if isinstance(step, ResolvConfWritten):
        return _undo_resolv_conf(step)
    if not same_boot_and_namespace:
        return earlier_run_note()
    assert isinstance(step, LinkChanged | AddressAdded | RouteAdded | ResolvedLinkSet | Ipv6SysctlChanged | RouterAdvertisementsTaken)
    with netlink() as ipr:
        # Each kernel step only on the very interface it changed (and resolved forgets a link's
        # settings when the link goes, so only a live one is reverted).
        if not _index_still_names(ipr, step.index, step.ifname):
            return None
        match step:
            case LinkChanged():
                _undo_call(
                    lambda: ipr.link("set", index=step.index, mtu=step.mtu, state="up" if step.up else "down"),
                    lambda reason: _("Could not restore the interface {name} ({reason}).").format(name=step.ifname, reason=reason),
                )
            case AddressAdded():
                _undo_call(
                    lambda: ipr.addr("del", index=step.index, local=step.local, address=step.address, prefixlen=step.prefixlen, family=step.family),
                    lambda reason: _("Could not remove the address {address} from {name} ({reason}).").format(
                        address=step.local, name=step.ifname, reason=reason
                    ),
                )
            case RouteAdded():
                _undo_call(
                    lambda: ipr.route("del", **step.keys()),
                    lambda reason: _("Could not remove the route {network} ({reason}).").format(
                        network=f"{step.dst}/{step.prefixlen}", reason=reason
                    ),
                )
            case ResolvedLinkSet():
                resolver.resolvectl("revert", step.ifname)
            case Ipv6SysctlChanged():
                if step.name not in _IPV6_SYSCTLS or not step.before.lstrip("-").isdigit():
                    raise ValueError(f"not an IPv6 setting of ours: {step.name}={step.before!r}")
                _write_sysctl(_sysctl_path(step.ifname, step.name), step.ifname, step.before, gone_ok=True)
            case RouterAdvertisementsTaken():
                _remove_advertised(ipr, step.index, step.ifname)
    return None


def _remove_advertised(ipr: IPRoute, index: int, ifname: str) -> None:
    """What the kernel made on the tunnel from router advertisements: its (non-permanent) global
    IPv6 addresses and the routes with a lifetime or from an advertisement."""
    for address in call(lambda: ipr.get_addr(family=10, index=index), _lookup_failed(ifname)):
        if address["scope"] == 0 and not (address.get_attr("IFA_FLAGS", address["flags"]) & IFA_F_PERMANENT):
            local, prefixlen = address.get_attr("IFA_ADDRESS"), address["prefixlen"]
            _undo_call(
                functools.partial(ipr.addr, "del", index=index, address=local, prefixlen=prefixlen, family=10),
                functools.partial(_address_removal_failed, local, ifname),
            )
    for route in call(lambda: ipr.get_routes(family=10, oif=index, table=MAIN_TABLE), _lookup_failed(ifname)):
        if route["proto"] == RTPROT_RA or route.get_attr("RTA_EXPIRES") is not None:
            dst = f"{route.get_attr('RTA_DST') or '::'}/{route['dst_len']}"
            keys: dict[str, Any] = {"dst": dst, "family": 10, "oif": index, "table": MAIN_TABLE}
            if route.get_attr("RTA_PRIORITY") is not None:
                keys["priority"] = route.get_attr("RTA_PRIORITY")
            _undo_call(functools.partial(ipr.route, "del", **keys), functools.partial(_route_removal_failed, dst))


def _bring_up_failed(ifname: str, mtu: int, reason: str) -> str:
    return _("Could not bring up the interface {name} with an MTU of {mtu} ({reason}).").format(name=ifname, mtu=mtu, reason=reason)


def _address_removal_failed(address: str, ifname: str, reason: str) -> str:
    return _("Could not remove the address {address} from {name} ({reason}).").format(address=address, name=ifname, reason=reason)


def _route_removal_failed(network: str, reason: str) -> str:
    return _("Could not remove the route {network} ({reason}).").format(network=network, reason=reason)


def _lookup_failed(ifname: str) -> Failed:
    return lambda reason: _("Could not look up the interface {name} ({reason}).").format(name=ifname, reason=reason)


def _sysctl_path(ifname: str, name: str) -> pathlib.Path:
    """The setting `name` of the interface `ifname`; never the system-wide "all" or "default"."""
    if name not in _IPV6_SYSCTLS or "/" in ifname or ifname in ("", ".", "..", "all", "default"):
        raise PlatformError(_("Could not change the IPv6 setting {setting} of {name} ({reason}).").format(setting=name, name=ifname, reason="EINVAL"))
    return IPV6_CONF / ifname / name


def _write_sysctl(path: pathlib.Path, ifname: str, value: str, gone_ok: bool = False) -> None:
    try:
        path.write_text(value)
    except FileNotFoundError as error:
        if not gone_ok:  # undoing: the interface (or IPv6) is gone, and the setting with it
            raise PlatformError(_("The tunnel interface disappeared while it was being configured; reconnect.")) from error
    except OSError as error:
        raise PlatformError(_sysctl_failed(ifname, path.name, error)) from error


def _sysctl_failed(ifname: str, name: str, error: OSError) -> str:
    if error.errno in (errno.EPERM, errno.EACCES):
        return admin_sentence()
    return _("Could not change the IPv6 setting {setting} of {name} ({reason}).").format(setting=name, name=ifname, reason=error.strerror or error)


REPLAY = journal_replay.Replay(LinuxOwners(), CATALOG, _undo_step)


def _undo_resolv_conf(step: ResolvConfWritten) -> str | None:
    path = pathlib.Path(step.path)
    backup, ours = _decode(step.backup), _decode(step.ours)
    current = resolver.read_file(path)
    if current == backup:
        return None  # never written, or already restored
    if current != ours:
        return _("{path} was changed by another program while the VPN was connected; it was left as that program wrote it.").format(path=path)
    if backup is None:
        resolver.remove_file(path)
    else:
        resolver.write_in_place(path, backup)
    return None


def _undo_call(action: Callable[[], Any], failed: Failed) -> None:
    try:
        action()
    except NetlinkError as error:
        if error.code in _GONE:
            return
        raise netlink_error(error, failed) from error


def _route_present(ipr: IPRoute, route: RouteAdded) -> bool:
    """Whether the kernel still has `route` (a link going down takes its routes along)."""
    for message in ipr.get_routes(family=route.family, table=route.table):
        if (
            message["dst_len"] == route.prefixlen
            and message.get_attr("RTA_DST") == route.dst
            and message.get_attr("RTA_OIF") == route.index
            and message.get_attr("RTA_GATEWAY") == route.gateway
            and (message.get_attr("RTA_PRIORITY") or 0) == route.priority
        ):
            return True
    return False


def _index_still_names(ipr: IPRoute, index: int, ifname: str) -> bool:
    """Whether the interface we changed still exists. Its name alone is not enough: a new
    client's TUN device may be called sstp0 again, with a new index."""
    try:
        link = ipr.link("get", index=index)[0]
    except NetlinkError as error:
        if error.code in _GONE:
            return False
        raise netlink_error(
            error, lambda reason: _("Could not look up the interface {name} ({reason}).").format(name=ifname, reason=reason)
        ) from error
    return link.get_attr("IFLA_IFNAME") == ifname


# -- small pieces ------------------------------------------------------------------------


def _route(dst: IPAddress, prefixlen: int, gateway: str | None, ifname: str, index: int) -> RouteAdded:
    family = _family(dst)
    return RouteAdded(family, str(dst), prefixlen, gateway, ifname, index, MAIN_TABLE, IPV4_PRIORITY if family == 2 else IPV6_PRIORITY)


def _family(address: IPAddress) -> int:
    return 2 if address.version == 4 else 10  # AF_INET, AF_INET6


def _encode(data: bytes | None) -> str | None:
    return None if data is None else data.decode("latin-1")


def _decode(text: str | None) -> bytes | None:
    return None if text is None else text.encode("latin-1")
