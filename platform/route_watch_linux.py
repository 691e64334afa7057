"""Linux: is there a usable route to the VPN server, and tell me when that may have changed.

A daemon thread listens to the kernel's rtnetlink multicast groups (links, IPv4/IPv6 addresses
and routes). Events only mean "look again": after a short quiet spell (debounce, since one cable
pull brings a burst of messages) the thread asks the kernel's routing table (RTM_GETROUTE, a
lookup that sends no packet) and calls `on_change(usable)` when the answer differs from the last,
or when the path the system would take to the target without our tunnel and without host routes
to the target (`path_without_tunnel`: the gateway and interface of the best route in the main
table) moved: Wi-Fi -> cable, a new gateway. The session then asks its configurator to move the
server's host route along (roaming).

The event socket is a plain AF_NETLINK socket watched by `select` together with a wake-up pipe,
so the thread sleeps until the kernel or `close()` wakes it (it never spins) and stops at once
from any thread; the lookups use pyroute2. Everything happens in the network namespace of the
thread that created the watcher.

Usable: the route's output interface is up with a carrier and is not our own tunnel (a full
tunnel covers the server's address too, but only through itself).
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE, RTMGRP_LINK

log = logging.getLogger(__name__)

GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE
IFF_UP = 0x1
IFF_LOWER_UP = 0x10000  # the carrier is there
RTNH_F_DEAD = 0x1  # a next hop the kernel no longer uses
RTNH_F_LINKDOWN = 0x10  # a route whose next hop's link is down (kept by the kernel, unusable)
MAIN_TABLE = 254
UNICAST, LOCAL = 1, 2  # rtm_type values that deliver to a host
DEBOUNCE_SECONDS = 0.3

IpAddress = IPv4Address | IPv6Address


@dataclass(frozen=True)
class Path:
    """One next hop of a route to a target: the gateway (None: on the link), the output
    interface's index and the prefix length of the route it belongs to."""

    gateway: str | None
    index: int
    prefixlen: int


def path_without_tunnel(
    routes: IPRoute, target: IpAddress, exclude_index: int | None, leave_out: Callable[[Path], bool] = lambda _path: False
) -> Path | None:
    """The path the system would choose to `target` from the main table if the interface
    `exclude_index` (our tunnel) and the paths `leave_out` names (our host route) were not there:
    the longest prefix, then the lowest metric, through an interface that is up with a carrier.
    None: no such route. Policy rules other than the main table's are not looked at."""
    family = socket.AF_INET if target.version == 4 else socket.AF_INET6
    links = {link["index"]: link["flags"] for link in routes.get_links()}
    best: tuple[tuple[int, int], Path] | None = None
    for route in routes.get_routes(family=family, table=MAIN_TABLE):
        if route.get_attr("RTA_TABLE", route["table"]) != MAIN_TABLE or route["type"] != UNICAST:
            continue
        prefixlen = route["dst_len"]
        if prefixlen:
            destination = route.get_attr("RTA_DST")
            if destination is None or target not in ip_network(f"{destination}/{prefixlen}", strict=False):
                continue
        hops = [(route.get_attr("RTA_GATEWAY"), route.get_attr("RTA_OIF"), route["flags"])]
        multipath = route.get_attr("RTA_MULTIPATH")
        if multipath:
            hops = [(hop.get_attr("RTA_GATEWAY"), hop["oif"], hop["flags"]) for hop in multipath]
        key = (-prefixlen, route.get_attr("RTA_PRIORITY") or 0)
        if best is not None and best[0] <= key:
            continue
        for gateway, index, flags in hops:
            link_flags = links.get(index, 0)
            if index is None or index == exclude_index or flags & (RTNH_F_DEAD | RTNH_F_LINKDOWN):
                continue
            if not (link_flags & IFF_UP and link_flags & IFF_LOWER_UP):
                continue
            path = Path(None if gateway is None else gateway.split("%")[0], index, prefixlen)
            if not leave_out(path):
                best = (key, path)
                break
    return None if best is None else best[1]


def interface_usable(routes: IPRoute, address: IpAddress) -> bool:
    """Whether `address` (a connection's source address) is still on an interface that is up
    with a carrier: after a network change, a TCP connection from an address that is gone or
    on a dead link cannot get its answers any more."""
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    links = {link["index"]: link["flags"] for link in routes.get_links()}
    for message in routes.get_addr(family=family):
        local = message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS")
        if local is not None and ip_address(local.split("%")[0]) == address:
            flags = links.get(message["index"], 0)
            return bool(flags & IFF_UP and flags & IFF_LOWER_UP)
    return False


class RouteWatcher:
    """Call `start()`, then read `usable` or wait for `on_change(usable)` (called on the watcher's
    thread: hand it over to your own thread) when the answer changed or the path to the target
    moved (`usable` unchanged then). `close()` from any thread."""

    def __init__(self, on_change: Callable[[bool], None], debounce: float = DEBOUNCE_SECONDS) -> None:
        self._on_change = on_change
        self._debounce = debounce
        self._lock = threading.Lock()
        self._target: IpAddress | None = None  # None: any default route will do
        self._exclude: str | None = None  # our tunnel interface
        self._usable = True  # until the first look says otherwise
        self._path: Path | None = None  # the path to the target without our tunnel, at the last look
        self._looked_at: tuple[IpAddress | None, str | None] | None = None  # the target of that look
        self._events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        self._events.bind((0, GROUPS))
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._closed = False
        self._released = False
        self._thread = threading.Thread(target=self._run, name="sstp-route-watch", daemon=True)

    @property
    def usable(self) -> bool:
        return self._usable

    def start(self) -> RouteWatcher:
        self._thread.start()
        return self

    def set_target(self, target: str | IpAddress | None, exclude_interface: str | None = None) -> None:
        """The address our connection goes to (server or proxy) and our tunnel's name; looks again."""
        with self._lock:
            self._target = ip_address(target) if isinstance(target, str) else target
            self._exclude = exclude_interface
        self._wake()

    def close(self, timeout: float = 2.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._release()

    # -- the watcher's thread ----------------------------------------------------------------

    def _wake(self) -> None:
        if self._released:
            return  # the descriptor number may belong to someone else by now
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError):
            pass  # already woken, or closed

    def _run(self) -> None:
        try:
            with IPRoute() as routes:
                self._look(routes)
                due: float | None = None  # when the debounced look is due
                while not self._closed:
                    timeout = None if due is None else max(0.0, due - time.monotonic())
                    readable, _, _ = select.select([self._events.fileno(), self._wake_r], [], [], timeout)
                    if self._wake_r in readable:
                        self._drain_wake()
                        due = time.monotonic()  # a new target: look now
                    if self._events.fileno() in readable and self._drain_events() and due is None:
                        due = time.monotonic() + self._debounce
                    if due is not None and time.monotonic() >= due and not self._closed:
                        due = None
                        self._look(routes)
        except Exception:  # our own bug: keep the app going, and say reconnecting may be blind now
            log.exception("the route watcher stopped")

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _drain_events(self) -> bool:
        """Read every queued message; True if there was anything (or messages were lost)."""
        seen = False
        while True:
            try:
                if not self._events.recv(65536):
                    return seen
                seen = True
            except BlockingIOError:
                return seen
            except OSError as error:
                if error.errno == errno.ENOBUFS:  # the kernel dropped messages: look anyway
                    seen = True
                    continue
                raise

    def _look(self, routes: IPRoute) -> None:
        with self._lock:
            target, exclude = self._target, self._exclude
        try:
            usable = self._route_usable(routes, target, exclude)
            path = self._path_to(routes, target, exclude)
        except (NetlinkError, OSError) as error:
            log.debug("route lookup failed: %s", error)
            usable, path = True, self._path  # never block reconnecting on our own lookup
        # A moved path counts only for the same target as the last look (a new target is no move).
        moved = path != self._path and self._looked_at == (target, exclude)
        self._path, self._looked_at = path, (target, exclude)
        if usable != self._usable or moved:
            self._usable = usable
            if not self._closed:
                self._on_change(usable)

    @staticmethod
    def _path_to(routes: IPRoute, target: IpAddress | None, exclude: str | None) -> Path | None:
        """Where the target's traffic would go without our tunnel and our host route to it."""
        if target is None:
            return None
        excluded = routes.link_lookup(ifname=exclude) if exclude is not None else []
        full = 32 if target.version == 4 else 128
        return path_without_tunnel(routes, target, excluded[0] if excluded else None, lambda path: path.prefixlen == full)

    def _route_usable(self, routes: IPRoute, target: IpAddress | None, exclude: str | None) -> bool:
        if target is None:
            candidates = [
                route
                for route in routes.route("dump")
                if route["dst_len"] == 0 and route.get("RTA_TABLE", route["table"]) == MAIN_TABLE and route["type"] == UNICAST
            ]
        else:
            try:
                candidates = list(routes.route("get", dst=str(target)))
            except NetlinkError as error:
                if error.code in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EINVAL):
                    return False
                raise
        return any(self._through_usable_link(routes, route, exclude) for route in candidates)

    @staticmethod
    def _through_usable_link(routes: IPRoute, route, exclude: str | None) -> bool:
        if route["type"] not in (UNICAST, LOCAL) or route["flags"] & RTNH_F_LINKDOWN:
            return False
        index = route.get("RTA_OIF")
        if index is None:
            return True  # a multipath route: trust the kernel's choice
        try:
            (link,) = routes.link("get", index=index)
        except NetlinkError:
            return False  # gone meanwhile
        if exclude is not None and link.get("IFLA_IFNAME") == exclude:
            return False
        return bool(link["flags"] & IFF_UP) and bool(link["flags"] & IFF_LOWER_UP)

    def _release(self) -> None:
        self._released = True
        self._events.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
