"""Linux network configuration for the tunnel: link, addresses, routes and DNS, each change
journaled before it is made so that it can be undone exactly, also after a crash.

Routing policy (why):
- Full tunnel adds two half-default routes, 0.0.0.0/1 and 128.0.0.0/1, through the tunnel
  instead of touching the default route. They win over any default by prefix length, the
  user's default route is never deleted or changed, and restoring is just deleting our two
  routes. IPv6 gets ::/1 and 8000::/1 into the tunnel too, so IPv6 traffic cannot leave beside
  the VPN when the server offers no IPv6 (the engine drops it).
- Before that, a host route to the SSTP server through the route it is reached by now (the old
  gateway and interface), or the VPN's own TLS connection would be routed into the tunnel. None
  is needed when the server is on this machine or on a local link.
- Split tunnel routes only the /24 around the address the server assigned us (plus the peer,
  which the point-to-point address already routes). IPCP tells us no network, and a /24 is what
  VPN address pools almost always are: 198.18.30.10 gives 198.18.30.0/24. It mirrors what
  Windows' own SSTP client does without "use default gateway" (it adds the address's class
  network), without the surprise of a whole 10.0.0.0/8. The default route stays untouched.
  (Should the server itself lie inside that /24, it gets the host route as in full tunnel.)
DNS policy: see resolver_linux.

Undo: every step is written to the journal before the change; restore() and
repair_from_journal() undo newest first. Something already gone is skipped (a dead client's TUN
device took its addresses and routes along). A step names its interface by index *and* name, so
a new client's TUN device that got the same name is never touched. Kernel steps from an earlier
boot or another network namespace are skipped; a rewritten resolv.conf is restored across reboots
(the reason the root journal lives under /var/lib, not /run).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import pathlib
from dataclasses import dataclass
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable

from pyroute2 import IPRoute, NetlinkError

from sstpvpn.platform import journal_replay
from sstpvpn.platform import resolver_linux as resolver
from sstpvpn.platform import route_safety
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal import Step, UndoJournal

if TYPE_CHECKING:
    from sstpvpn.client.core.types import PushedSettings
    from sstpvpn.client.core.types import NetworkPlan

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAIN_TABLE = 254
RTN_LOCAL = 2
IFF_UP = 0x1
SPLIT_PREFIX_LENGTH = 24
IPV4_PRIORITY = 0  # the kernel's default metric for IPv4 routes
IPV6_PRIORITY = 1024  # ... and for IPv6 routes
FULL_TUNNEL_ROUTES = [("0.0.0.0", 1), ("128.0.0.0", 1)]
FULL_TUNNEL_ROUTES_V6 = [("::", 1), ("8000::", 1)]

# Undoing something that is already gone is not an error: when the process died its TUN device
# vanished and took its addresses and routes along.
_GONE = {errno.ESRCH, errno.ENODEV, errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENXIO}
# The kernel refuses IPv6 routes where IPv6 is switched off; then there is nothing to leak.
_NO_IPV6 = {errno.EACCES, errno.EAFNOSUPPORT, errno.EOPNOTSUPP, errno.EPROTONOSUPPORT}

ADMIN_SENTENCE = ("Configuring the network for the VPN needs administrator rights: run sstp-vpn "
                  "as root (or give it CAP_NET_ADMIN).")


def default_journal_path(name: str = "network") -> pathlib.Path:
    """Where the undo journal lives: one per network namespace, so clients in different
    namespaces (containers, tests) never share one.

    As root: /var/lib/sstp-vpn/, on disk rather than in /run, because one change outlives a
    reboot (a rewritten /etc/resolv.conf); kernel changes made in an earlier boot are skipped on
    repair (the journal records the boot). Otherwise the user's state folder (platformdirs).
    """
    filename = f"{name}-journal-netns{os.stat('/proc/self/ns/net').st_ino}.json"
    if os.geteuid() == 0:
        return pathlib.Path("/var/lib/sstp-vpn") / filename
    import platformdirs

    return platformdirs.user_state_path("sstp-vpn") / filename


def repair_from_journal(journal_path: pathlib.Path) -> bool:
    """Undo what a client that died left behind. True if there was something to undo.

    A journal whose lock a live session holds (or whose owner is still running) belongs to a live
    connection and is left alone. A damaged journal is moved aside (so it does not block every
    later start) and reported.
    """
    return journal_replay.repair(journal_path, _repair_held)


def _repair_held(journal: UndoJournal) -> bool:
    stale = journal_replay.load_stale(journal, _owner_is_running)
    if stale is None:
        return False
    for note in _undo_all(stale, stale.owner):
        log.warning("%s", note)
    return True


class NetConfigurator:
    """Applies a NetworkPlan to one tunnel interface and undoes it again."""

    def __init__(self, ifname: str, server_address: IPAddress | str, full_tunnel: bool = True,
                 journal_path: pathlib.Path | None = None, *,
                 extra_routes: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
                 use_vpn_dns: bool = True) -> None:
        self.ifname = ifname
        self.server_address = ipaddress.ip_address(server_address)
        self.full_tunnel = full_tunnel
        self.extra_routes = tuple(extra_routes)
        self.use_vpn_dns = use_vpn_dns
        self.journal = UndoJournal(journal_path if journal_path is not None else default_journal_path())
        self.resolv_conf = resolver.RESOLV_CONF
        self.notes: list[str] = []  # sentences about things restore() deliberately left alone
        self._dns_applied = False  # the VPN's DNS servers are in use (add_pushed adds domains then)

    # -- public --------------------------------------------------------------------------

    def apply(self, plan: "NetworkPlan") -> None:
        """Configure link, address, routes and DNS. On failure everything done so far is undone
        and a PlatformError says why."""
        self._start_journal()
        try:
            # Under the journal's lock (so no other session's tunnel shows up half-made), and
            # before anything is journaled or changed.
            _refuse_capturing_routes(self, plan)
            with _netlink() as ipr:
                index = self._link_index(ipr)
                self._configure_link(ipr, index, plan.mtu)
                self._add_addresses(ipr, index, plan)
                routes = self._tunnel_routes(plan)
                if any(self.server_address in network for network in routes):
                    self._add_server_route(ipr)
                for network in routes:
                    self._add_tunnel_route(ipr, index, network)
            self._apply_dns(plan)
        except BaseException:
            try:
                self.restore()
            except PlatformError as undo_error:
                log.warning("%s", undo_error.sentence)
            raise

    def add_pushed(self, pushed: "PushedSettings") -> list[str]:
        """Add what the VPN's DHCP server sent after apply() (dhcp_inform): in a split tunnel its
        routes (each checked like an extra route; one that would capture a local network or the
        gateway is left out), and its domain and search list as the tunnel's DNS domains. Journaled
        like apply(); restore() undoes it too. Returns sentences about what was left out."""
        if not self.journal.held:
            raise PlatformError("The network is not configured for this connection; nothing to add to.")
        notes: list[str] = []
        if not self.full_tunnel and pushed.routes:
            with _netlink() as ipr:
                index = self._link_index(ipr)
                snapshot = read_route_snapshot(ipr, exclude_index=index)
                for network in pushed.routes:
                    problem = route_safety.first_problem(snapshot, [route_safety.Destination(network, route_safety.Kind.PUSHED)])
                    if problem is None and self.server_address in network:
                        problem = (f"Left out the route {network} that the VPN's DHCP server sent: it holds the VPN "
                                   f"server {self.server_address} itself, and the connection would run into its own tunnel.")
                    if problem is None:
                        try:
                            self._add_tunnel_route(ipr, index, network)
                        except PlatformError as error:
                            problem = f"Left out the route {network} that the VPN's DHCP server sent: {error.sentence}"
                    if problem is not None:
                        notes.append(problem)
        names = [name for name in (pushed.domain, *pushed.search) if name]
        if names and self.use_vpn_dns and self._dns_applied:
            self._add_search_domains(list(dict.fromkeys(names)))
        for note in notes:
            log.warning("%s", note)
        return notes

    def _add_search_domains(self, names: list[str]) -> None:
        if resolver.resolved_manages(self.resolv_conf):
            # Routing and search domains of the tunnel's link; in a full tunnel "~." stays first.
            resolver.resolvectl("domain", self.ifname, *(["~."] if self.full_tunnel else []), *names)
            return
        path = pathlib.Path(os.path.realpath(self.resolv_conf))
        current = resolver.read_file(path)
        if current is None:
            return
        ours = resolver.with_search_domains(current, names)
        step = {"op": "resolv_conf", "path": str(path), "backup": _encode(current), "ours": _encode(ours)}
        self.journal.record(step)
        resolver.write_in_place(path, ours)

    def restore(self) -> list[str]:
        """Undo exactly what apply() did, in reverse order. Safe to call again, and when apply()
        was never called. Returns sentences about anything deliberately left alone."""
        if not self.journal.exists():
            self.journal.release()
            return []
        contents = self.journal.load()
        if contents.owner != _owner() and _owner_is_running(contents.owner):
            note = (f"The network configuration belongs to another sstp-vpn (process "
                    f"{contents.owner.get('pid')}); it was left alone.")
            log.warning("%s", note)
            return [note]
        notes = _undo_all(self.journal, contents.owner)  # a step it cannot undo keeps the lock
        self.journal.release()
        self.notes.extend(notes)
        for note in notes:
            log.warning("%s", note)
        return notes

    # -- apply steps ---------------------------------------------------------------------

    def _start_journal(self) -> None:
        """Take the journal's lock, repair what a dead session left, begin our journal. The
        lock is held until restore() has emptied the journal (journal_replay explains why)."""
        journal_replay.begin(self.journal, _OWNERS, _repair_held)

    def _link_index_now(self) -> int:
        with _netlink() as ipr:
            return self._link_index(ipr)

    def _link_index(self, ipr: IPRoute) -> int:
        indexes = _call(lambda: ipr.link_lookup(ifname=self.ifname), f"find the interface {self.ifname}")
        if not indexes:
            raise PlatformError(f"The tunnel interface {self.ifname} does not exist (any more); reconnect.")
        return indexes[0]

    def _configure_link(self, ipr: IPRoute, index: int, mtu: int) -> None:
        link = _call(lambda: ipr.link("get", index=index)[0], f"read the interface {self.ifname}")
        step = {"op": "link", "ifname": self.ifname, "index": index,
                "mtu": link.get_attr("IFLA_MTU"), "up": bool(link["flags"] & IFF_UP)}
        self._change(step, lambda: ipr.link("set", index=index, mtu=mtu, state="up"),
                     f"bring up the interface {self.ifname} with an MTU of {mtu}")

    def _add_addresses(self, ipr: IPRoute, index: int, plan: "NetworkPlan") -> None:
        local = ipaddress.ip_address(plan.address)
        peer = ipaddress.ip_address(plan.peer) if plan.peer is not None else local
        self._add_address(ipr, index, local, peer, 32)
        if plan.ipv6_identifier is not None:
            # The link-local address built from the identifier IPV6CP negotiated; the peer
            # expects neighbour and router messages from this one.
            link_local = ipaddress.IPv6Address(b"\xfe\x80" + b"\0" * 6 + bytes(plan.ipv6_identifier))
            self._add_address(ipr, index, link_local, link_local, 64)

    def _add_address(self, ipr: IPRoute, index: int, local: IPAddress, peer: IPAddress, prefixlen: int) -> None:
        step = {"op": "address", "ifname": self.ifname, "index": index, "family": _family(local),
                "local": str(local), "address": str(peer), "prefixlen": prefixlen}
        self._change(step, lambda: ipr.addr("add", index=index, local=str(local), address=str(peer),
                                            prefixlen=prefixlen),
                     f"give the interface {self.ifname} the address {local}")

    def _tunnel_routes(self, plan: "NetworkPlan") -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        if self.full_tunnel:
            return [ipaddress.ip_network(f"{dst}/{length}")
                    for dst, length in FULL_TUNNEL_ROUTES + FULL_TUNNEL_ROUTES_V6] + list(self.extra_routes)
        return [ipaddress.ip_network(f"{plan.address}/{SPLIT_PREFIX_LENGTH}", strict=False), *self.extra_routes]

    def _add_server_route(self, ipr: IPRoute) -> None:
        server = self.server_address
        try:
            current = ipr.route("get", dst=str(server))[0]
        except NetlinkError as error:
            if error.code == errno.EPERM:
                raise PlatformError(ADMIN_SENTENCE) from error
            raise PlatformError(f"This computer has no route to the VPN server {server} "
                                f"({os.strerror(error.code)}); check the network connection.") from error
        gateway = current.get_attr("RTA_GATEWAY")
        if current["type"] == RTN_LOCAL or gateway is None:
            return  # on this machine or on a local link: the tunnel routes cannot capture it
        oif = current.get_attr("RTA_OIF")
        oif_name = _interface_name(ipr, oif)
        prefixlen = 32 if server.version == 4 else 128
        step = _route_step(str(server), prefixlen, _family(server), gateway, oif_name, oif)
        try:
            self._change(step, lambda: ipr.route("add", **_route_keys(step)),
                         f"add a route to the VPN server {server}")
        except _AlreadyThere:
            pass  # a host route to the server exists already (and `route get` used it): keep it

    def _add_tunnel_route(self, ipr: IPRoute, index: int,
                          network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
        step = _route_step(str(network.network_address), network.prefixlen, _family(network.network_address),
                           None, self.ifname, index)
        # Where IPv6 is switched off the kernel refuses IPv6 routes, and there is nothing to leak.
        tolerate = _NO_IPV6 if network.version == 6 else set()
        try:
            self._change(step, lambda: ipr.route("add", **_route_keys(step)), f"add the route {network}", tolerate)
        except _AlreadyThere as error:
            if self.full_tunnel:
                raise PlatformError(f"Another VPN already routes all traffic (the route {network} "
                                    "exists); disconnect it first.") from error
            raise PlatformError(f"The VPN's network {network} is already routed elsewhere (often the "
                                "local network uses the same addresses), so the VPN cannot use it.") from error

    def _apply_dns(self, plan: "NetworkPlan") -> None:
        servers = [ipaddress.ip_address(server) for server in plan.dns]
        if not servers or not self.use_vpn_dns:
            return
        # _dns_applied: the VPN's servers are in use, so they also get the domains its DHCP server
        # may send later (add_pushed); a split tunnel over a plain resolv.conf leaves the file
        # alone, and so its domains too.
        if resolver.resolved_manages(self.resolv_conf):
            step = {"op": "resolved_link", "ifname": self.ifname, "index": self._link_index_now()}
            self.journal.record(step)
            resolver.resolvectl("dns", self.ifname, *map(str, servers))
            if self.full_tunnel:
                resolver.resolvectl("domain", self.ifname, "~.")
                resolver.resolvectl("default-route", self.ifname, "true")
            self._dns_applied = True
            return
        if not self.full_tunnel:
            return  # see resolver_linux: a plain file cannot do split DNS
        path = pathlib.Path(os.path.realpath(self.resolv_conf))
        original = resolver.read_file(path)
        ours = resolver.render_resolv_conf(original, servers)
        step = {"op": "resolv_conf", "path": str(path), "backup": _encode(original), "ours": _encode(ours)}
        self.journal.record(step)
        resolver.write_in_place(path, ours)
        self._dns_applied = True

    def _change(self, step: Step, action: Callable[[], Any], what: str,
                tolerate: set[int] = frozenset()) -> None:
        """Journal `step`, then make the change. When the kernel refuses, the step leaves the
        journal again; a change that exists already (not ours to undo) raises _AlreadyThere."""
        self.journal.record(step)
        try:
            action()
        except NetlinkError as error:
            self.journal.forget(step)  # the kernel made no change
            if error.code == errno.EEXIST:
                raise _AlreadyThere() from error
            if error.code in tolerate:
                return
            raise _netlink_error(error, what) from error


class _AlreadyThere(Exception):
    pass


# -- undo --------------------------------------------------------------------------------


def _undo_all(journal: UndoJournal, owner: dict[str, Any]) -> list[str]:
    """Undo the journal's steps newest first, dropping each from the journal once undone.
    Steps that fail stay in the journal; the first failure is raised after trying them all."""
    notes: list[str] = []
    failures: list[PlatformError] = []
    same_kernel_state = _same_boot_and_namespace(owner)
    if not same_kernel_state and any(step.get("op") != "resolv_conf" for step in journal.steps):
        notes.append("The routes and addresses of an earlier sstp-vpn run belong to an earlier boot "
                     "or another network namespace; they are gone or not ours to touch, so they "
                     "were left alone.")
    with _netlink() as ipr:
        for step in reversed(journal.steps):
            try:
                if step.get("op") == "resolv_conf":
                    note = _undo_resolv_conf(step)
                    if note:
                        notes.append(note)
                elif same_kernel_state:
                    _undo_kernel_step(ipr, step)
            except PlatformError as error:
                failures.append(error)
                continue
            try:
                journal.forget(step)
            except PlatformError:
                # The disk is full (or the folder unwritable): keep undoing. An undone step left
                # in the file is harmless, undoing it again finds it gone.
                pass
    if failures:
        raise failures[0]
    journal.discard()
    return notes


def _undo_kernel_step(ipr: IPRoute, step: Step) -> None:
    op = step.get("op")
    if op == "link":
        if _index_still_names(ipr, step["index"], step["ifname"]):
            _undo_call(lambda: ipr.link("set", index=step["index"], mtu=step["mtu"],
                                        state="up" if step["up"] else "down"),
                       f"restore the interface {step['ifname']}")
    elif op == "address":
        if _index_still_names(ipr, step["index"], step["ifname"]):
            _undo_call(lambda: ipr.addr("del", index=step["index"], local=step["local"], address=step["address"],
                                        prefixlen=step["prefixlen"], family=step["family"]),
                       f"remove the address {step['local']} from {step['ifname']}")
    elif op == "route":
        if _index_still_names(ipr, step["index"], step["ifname"]):
            _undo_call(lambda: ipr.route("del", **_route_keys(step)),
                       f"remove the route {step['dst']}/{step['prefixlen']}")
    elif op == "resolved_link":
        # resolved forgets a link's settings when the link goes, so only a live one is reverted.
        if _index_still_names(ipr, step["index"], step["ifname"]):
            resolver.resolvectl("revert", step["ifname"])
    else:
        raise PlatformError(f"The network undo journal has a step this version does not know "
                            f"({op!r}); undo it by hand.")


def _undo_resolv_conf(step: Step) -> str | None:
    path = pathlib.Path(step["path"])
    backup, ours = _decode(step["backup"]), _decode(step["ours"])
    current = resolver.read_file(path)
    if current == backup:
        return None  # never written, or already restored
    if current != ours:
        return (f"{path} was changed by another program while the VPN was connected; it was left "
                "as that program wrote it.")
    if backup is None:
        resolver.remove_file(path)
    else:
        resolver.write_in_place(path, backup)
    return None


def _undo_call(action: Callable[[], Any], what: str) -> None:
    try:
        action()
    except NetlinkError as error:
        if error.code in _GONE:
            return
        raise _netlink_error(error, what) from error


def _index_still_names(ipr: IPRoute, index: int, ifname: str) -> bool:
    """Whether the interface we changed still exists. Its name alone is not enough: a new
    client's TUN device may be called sstp0 again, with a new index."""
    try:
        link = ipr.link("get", index=index)[0]
    except NetlinkError as error:
        if error.code in _GONE:
            return False
        raise _netlink_error(error, f"look up the interface {ifname}") from error
    return link.get_attr("IFLA_IFNAME") == ifname


# -- owner identity ----------------------------------------------------------------------


def _owner(pid: int | None = None) -> dict[str, Any]:
    """Who is making the changes: process, its start time (PIDs are reused), boot, namespace."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "start_time": _start_time(pid), "boot_id": _boot_id(), "netns": _netns()}


def _owner_is_running(owner: dict[str, Any]) -> bool:
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid == os.getpid() or owner.get("boot_id") != _boot_id():
        return False
    start_time = _start_time(pid)
    return start_time is not None and start_time == owner.get("start_time")


class _Owners:
    """journal_replay's view of this module's owners (process, start time, boot, namespace)."""

    @staticmethod
    def current() -> dict[str, Any]:
        return _owner()

    @staticmethod
    def is_running(owner: dict[str, Any]) -> bool:
        return _owner_is_running(owner)


_OWNERS = _Owners()


def _same_boot_and_namespace(owner: dict[str, Any]) -> bool:
    return owner.get("boot_id") == _boot_id() and owner.get("netns") == _netns()


def _start_time(pid: int) -> int | None:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces and parentheses.
    return int(stat.rsplit(")", 1)[1].split()[19])


def _boot_id() -> str:
    return pathlib.Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _netns() -> int:
    return os.stat("/proc/self/ns/net").st_ino


# -- small pieces ------------------------------------------------------------------------


@dataclass
class _Netlink:
    ipr: IPRoute | None = None

    def __enter__(self) -> IPRoute:
        try:
            self.ipr = IPRoute()
        except OSError as error:
            raise PlatformError(f"The kernel's routing interface cannot be opened ({error.strerror}).") from error
        return self.ipr

    def __exit__(self, *exc: object) -> None:
        if self.ipr is not None:
            self.ipr.close()


def _netlink() -> _Netlink:
    return _Netlink()


def _route_step(dst: str, prefixlen: int, family: int, gateway: str | None, ifname: str, index: int) -> Step:
    return {"op": "route", "family": family, "dst": dst, "prefixlen": prefixlen, "gateway": gateway,
            "ifname": ifname, "index": index, "table": MAIN_TABLE,
            "priority": IPV4_PRIORITY if family == 2 else IPV6_PRIORITY}


def _route_keys(step: Step) -> dict[str, Any]:
    keys = {"dst": f"{step['dst']}/{step['prefixlen']}", "family": step["family"], "oif": step["index"],
            "table": step["table"], "priority": step["priority"]}
    if step["gateway"] is not None:
        keys["gateway"] = step["gateway"]
    return keys


def _interface_name(ipr: IPRoute, index: int) -> str:
    return _call(lambda: ipr.link("get", index=index)[0].get_attr("IFLA_IFNAME"), "read an interface name")


def _family(address: IPAddress) -> int:
    return 2 if address.version == 4 else 10  # AF_INET, AF_INET6


def _call(action: Callable[[], Any], what: str) -> Any:
    try:
        return action()
    except NetlinkError as error:
        raise _netlink_error(error, what) from error


def _netlink_error(error: NetlinkError, what: str) -> PlatformError:
    if error.code in (errno.EPERM, errno.EACCES):
        return PlatformError(ADMIN_SENTENCE)
    if error.code == errno.ENODEV:
        return PlatformError("The tunnel interface disappeared while it was being configured; reconnect.")
    return PlatformError(f"Could not {what} ({os.strerror(error.code)}).")


def _encode(data: bytes | None) -> str | None:
    return None if data is None else data.decode("latin-1")


def _decode(text: str | None) -> bytes | None:
    return None if text is None else text.encode("latin-1")


# -- route safety: no route into the tunnel may capture a local network or the gateway -----------
# The rule and why: route_safety. Read-only netlink dumps, which need no privileges.

RT_SCOPE_LINK = 253
RTN_UNICAST = 1


def read_route_snapshot(ipr: IPRoute, exclude_index: int | None = None) -> route_safety.Snapshot:
    """This namespace's attached networks and default gateways, as route_safety defines them,
    leaving out the interface `exclude_index` (the tunnel being configured)."""
    names = {link["index"]: link.get_attr("IFLA_IFNAME")
             for link in _call(ipr.get_links, "read the network interfaces")}
    attached: list[route_safety.Attached] = []
    gateways: list[route_safety.Gateway] = []

    def attach(address: str, prefixlen: int, index: int) -> None:
        network = ipaddress.ip_network(f"{address.split('%')[0]}/{prefixlen}", strict=False)
        entry = route_safety.Attached(network, names.get(index) or f"#{index}")
        if entry not in attached:
            attached.append(entry)

    for message in _call(ipr.get_addr, "read the network addresses"):
        index = message["index"]
        if index == exclude_index:
            continue
        address, local = message.get_attr("IFA_ADDRESS"), message.get_attr("IFA_LOCAL")
        if address is None and local is None:
            continue
        attach(local or address, message["prefixlen"], index)
        if local is not None and address is not None and local != address:  # point-to-point: the peer
            attach(address, 128 if ":" in address else 32, index)
    for message in _call(lambda: ipr.get_routes(table=MAIN_TABLE), "read the routing table"):
        if message.get_attr("RTA_TABLE", message["table"]) != MAIN_TABLE or message["type"] != RTN_UNICAST:
            continue
        hops = [(message.get_attr("RTA_GATEWAY"), message.get_attr("RTA_VIA"), message.get_attr("RTA_OIF"))]
        hops += [(hop.get_attr("RTA_GATEWAY"), hop.get_attr("RTA_VIA"), hop.get("oif"))
                 for hop in message.get_attr("RTA_MULTIPATH") or []]
        if message["dst_len"] == 0:
            for gateway, via, index in hops:
                for address in (gateway, via.get("addr") if isinstance(via, dict) else None):
                    if address is not None:
                        gateways.append(route_safety.Gateway(ipaddress.ip_address(address.split("%")[0]),
                                                             names.get(index)))
            continue
        gateway, via, index = hops[0]
        connected = message["family"] == 10 or message["scope"] == RT_SCOPE_LINK  # IPv6 routes have no scope
        if (connected and len(hops) == 1 and gateway is None and via is None and index is not None
                and index != exclude_index and message.get_attr("RTA_DST") is not None):
            attach(message.get_attr("RTA_DST"), message["dst_len"], index)
    return route_safety.Snapshot(tuple(attached), tuple(gateways))


def route_problem_before_connecting(full_tunnel: bool,
                                    extra_routes: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str | None:
    """For the engine runner, before it connects: the sentence refusing the routes known already
    (the full tunnel's half routes, the extra routes), or None. The address, the peer and the
    split network come from the server later; the configurator checks them (as root, or in the
    helper). None, too, when the routing table cannot be read: the configurator still checks."""
    halves = FULL_TUNNEL_ROUTES + FULL_TUNNEL_ROUTES_V6 if full_tunnel else []
    routes = [ipaddress.ip_network(f"{dst}/{length}") for dst, length in halves]
    wanted = route_safety.destinations([*routes, *extra_routes], full_tunnel=full_tunnel, extra_routes=extra_routes)
    try:
        with _netlink() as ipr:
            snapshot = read_route_snapshot(ipr)
    except PlatformError as error:
        log.debug("route check skipped: %s", error.sentence)
        return None
    return route_safety.first_problem(snapshot, wanted)


def _refuse_capturing_routes(config: NetConfigurator, plan: "NetworkPlan") -> None:
    """PlatformError with route_safety's sentence when the plan would route a local network or the
    gateway into the tunnel. Changes nothing."""
    wanted = route_safety.destinations(config._tunnel_routes(plan), full_tunnel=config.full_tunnel,
                                       extra_routes=config.extra_routes, address=ipaddress.ip_address(plan.address),
                                       peer=None if plan.peer is None else ipaddress.ip_address(plan.peer))
    with _netlink() as ipr:
        indexes = _call(lambda: ipr.link_lookup(ifname=config.ifname), f"find the interface {config.ifname}")
        snapshot = read_route_snapshot(ipr, exclude_index=indexes[0] if indexes else None)
    problem = route_safety.first_problem(snapshot, wanted)
    if problem is not None:
        raise PlatformError(problem)
