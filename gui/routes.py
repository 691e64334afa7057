"""The routes the kernel has through the tunnel interface, for the status window. Linux reads them
over netlink (a quick local query); other systems get them when their platform layer does, until
then `routes_through` returns None."""

from __future__ import annotations

import ipaddress
import socket
import sys

MAIN_TABLE = 254


def routes_through(ifname: str | None) -> list[str] | None:
    """Destinations routed through `ifname` in the main table, e.g. ["0.0.0.0/1", "128.0.0.0/1"];
    None when they cannot be read."""
    if not ifname or not sys.platform.startswith("linux"):
        return None
    from pyroute2 import IPRoute, NetlinkError

    found: list[str] = []
    try:
        with IPRoute() as netlink:
            indexes = netlink.link_lookup(ifname=ifname)
            if not indexes:
                return None  # gone: the session has just ended
            for family, anywhere in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                for route in netlink.get_routes(family=family, oif=indexes[0], table=MAIN_TABLE):
                    network = ipaddress.ip_network(f"{route.get_attr('RTA_DST') or anywhere}/{route['dst_len']}",
                                                   strict=False)
                    if not (network.is_link_local or network.is_multicast):
                        found.append(str(network))
    except (OSError, NetlinkError):
        return None
    return found
