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
import ipaddress
import logging
import os
import pathlib
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


CATALOG = StepCatalog(LinkChanged, AddressAdded, RouteAdded, ResolvedLinkSet, ResolvConfWritten)


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
        self._ipr: IPRoute | None = None  # while steps are applied
        self._index = 0

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
                self._change(
                    LinkChanged(self.ifname, index, link.get_attr("IFLA_MTU"), bool(link["flags"] & IFF_UP)),
                    _kernel_change(
                        lambda: ipr.link("set", index=index, mtu=mtu, state="up"),
                        lambda reason: _("Could not bring up the interface {name} with an MTU of {mtu} ({reason}).").format(
                            name=self.ifname, mtu=mtu, reason=reason
                        ),
                    ),
                )
            case policy.AddAddress(local=local, peer=peer, prefixlen=prefixlen):
                self._change(
                    AddressAdded(self.ifname, index, _family(local), str(local), str(peer), prefixlen),
                    _kernel_change(
                        lambda: ipr.addr("add", index=index, local=str(local), address=str(peer), prefixlen=prefixlen),
                        lambda reason: _("Could not give the interface {name} the address {address} ({reason}).").format(
                            name=self.ifname, address=local, reason=reason
                        ),
                    ),
                )
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

    def _add_server_route(self, server: IPAddress) -> None:
        ipr = self._kernel
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
        self._change(
            route,
            _kernel_change(
                lambda: ipr.route("add", **route.keys()),
                lambda reason: _("Could not add a route to the VPN server {server} ({reason}).").format(server=server, reason=reason),
            ),
        )

    def _set_dns(self, servers: list[IPAddress], all_names: bool) -> None:
        # _dns_applied: the VPN's servers are in use, so they also get the domains its DHCP server
        # may send later (add_pushed); a split tunnel over a plain resolv.conf leaves the file
        # alone, and so its domains too.
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
        if resolver.resolved_manages(self.resolv_conf):
            # Routing and search domains of the tunnel's link; in a full tunnel "~." stays first.
            resolver.resolvectl("domain", self.ifname, *(["~."] if self.full_tunnel else []), *names)
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
    assert isinstance(step, LinkChanged | AddressAdded | RouteAdded | ResolvedLinkSet)
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
    return None


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
