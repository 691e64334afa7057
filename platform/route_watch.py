"""The route watcher for this OS: Linux listens to netlink; elsewhere (not written yet) the
network always counts as usable, so reconnecting falls back to plain backoff, and no network
change is seen while connected (no roaming: a connection that breaks reconnects after its
timeouts)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class RouteWatch(Protocol):
    @property
    def usable(self) -> bool: ...

    def set_target(self, target: str | None, exclude_interface: str | None = None) -> None: ...

    def close(self) -> None: ...


class AlwaysUsable:
    usable = True

    def set_target(self, target: str | None, exclude_interface: str | None = None) -> None:
        pass

    def close(self) -> None:
        pass


def start_route_watch(on_change: Callable[[bool], None]) -> RouteWatch:
    """A started watcher that calls `on_change(usable)` on its own thread when the answer changes
    or the route to the target moved to another gateway or interface (`usable` unchanged then)."""
    if sys.platform == "linux":
        from .route_watch_linux import RouteWatcher

        try:
            return RouteWatcher(on_change).start()
        except OSError as error:  # no netlink here (a sandbox): reconnect without it
            log.warning("cannot watch the routing table (%s); reconnecting without it", error)  # not translated: program log, not the Log window
    return AlwaysUsable()


def load_watcher() -> None:
    """Import this OS's watcher now (on Linux pyroute2, 0.1-0.3 s of imports), e.g. on a worker
    thread while the tray app waits for its first click, so that connection does not wait for it."""
    if sys.platform == "linux":
        from . import route_watch_linux  # noqa: F401


def source_address_usable(address: str) -> bool:
    """Whether a connection's source address is still on an interface that is up with a
    carrier (Linux); elsewhere, and when it cannot be told, True."""
    if sys.platform != "linux":
        return True
    from ipaddress import ip_address

    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    from .route_watch_linux import interface_usable

    try:
        with IPRoute() as routes:
            return interface_usable(routes, ip_address(address.split("%")[0]))
    except (NetlinkError, OSError, ValueError) as error:
        log.debug("cannot tell whether %s is still usable: %s", address, error)
        return True
