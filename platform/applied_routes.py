"""Which routes the system has through an interface, for the status window ("0.0.0.0/1,
128.0.0.0/1, 10.20.0.0/16"), and the interface's IPv6 addresses (the link-local one IPV6CP gives,
a global one from SLAAC or DHCPv6).

Linux answers from the kernel's main routing table over netlink (a read-only dump that needs no
privileges and sends no packet). Windows and macOS have no reader yet: `not_shown` answers None
there, which the window shows as "not shown on this system".
"""

from __future__ import annotations

import ipaddress
import socket

MAIN_TABLE = 254


def routes_through_linux(ifname: str | None) -> list[str] | None:
    """Destinations routed through `ifname` in the main table, IPv4 first, without link-local and
    multicast ones (the kernel adds those to every interface); None when they cannot be read,
    e.g. because the interface has just gone."""
    if not ifname:
        return None
    from pyroute2 import IPRoute, NetlinkError

    found: list[str] = []
    try:
        with IPRoute() as netlink:
            indexes = netlink.link_lookup(ifname=ifname)
            if not indexes:
                return None
            for family, anywhere in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                for route in netlink.get_routes(family=family, oif=indexes[0], table=MAIN_TABLE):
                    network = ipaddress.ip_network(f"{route.get_attr('RTA_DST') or anywhere}/{route['dst_len']}", strict=False)
                    if not (network.is_link_local or network.is_multicast):
                        found.append(str(network))
    except (OSError, NetlinkError):
        return None
    return found


def ipv6_addresses_linux(ifname: str | None) -> list[str] | None:
    """The IPv6 addresses on `ifname`, global ones first; None when they cannot be read."""
    if not ifname:
        return None
    from pyroute2 import IPRoute, NetlinkError

    try:
        with IPRoute() as netlink:
            indexes = netlink.link_lookup(ifname=ifname)
            if not indexes:
                return None
            found = [ipaddress.IPv6Address(entry.get_attr("IFA_ADDRESS")) for entry in netlink.get_addr(family=socket.AF_INET6, index=indexes[0])]
    except (OSError, NetlinkError):
        return None
    return [str(address) for address in sorted(found, key=lambda address: address.is_link_local)]


def not_shown(ifname: str | None) -> None:
    """Systems without a reader of the routing table (or of the addresses)."""
    return None
