"""What route_safety needs to know about this Linux network namespace: its attached networks and
default gateways, read with read-only netlink dumps (which need no privileges), and the early
check the engine runner makes before it connects.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from pyroute2 import IPRoute

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import route_safety, routing_policy
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.netlink_linux import call, netlink

log = logging.getLogger(__name__)

MAIN_TABLE = 254
RT_SCOPE_LINK = 253
RTN_UNICAST = 1


def read_route_snapshot(ipr: IPRoute, exclude_index: int | None = None) -> route_safety.Snapshot:
    """This namespace's attached networks and default gateways, as route_safety defines them,
    leaving out the interface `exclude_index` (the tunnel being configured)."""
    names = {
        link["index"]: link.get_attr("IFLA_IFNAME")
        for link in call(ipr.get_links, lambda reason: _("Could not read the network interfaces ({reason}).").format(reason=reason))
    }
    attached: list[route_safety.Attached] = []
    gateways: list[route_safety.Gateway] = []

    def attach(address: str, prefixlen: int, index: int) -> None:
        network = ipaddress.ip_network(f"{address.split('%')[0]}/{prefixlen}", strict=False)
        entry = route_safety.Attached(network, names.get(index) or f"#{index}")
        if entry not in attached:
            attached.append(entry)

    for message in call(ipr.get_addr, lambda reason: _("Could not read the network addresses ({reason}).").format(reason=reason)):
        index = message["index"]
        if index == exclude_index:
            continue
        address, local = message.get_attr("IFA_ADDRESS"), message.get_attr("IFA_LOCAL")
        if address is None and local is None:
            continue
        attach(local or address, message["prefixlen"], index)
        if local is not None and address is not None and local != address:  # point-to-point: the peer
            attach(address, 128 if ":" in address else 32, index)
    for message in call(
        lambda: ipr.get_routes(table=MAIN_TABLE), lambda reason: _("Could not read the routing table ({reason}).").format(reason=reason)
    ):
        if message.get_attr("RTA_TABLE", message["table"]) != MAIN_TABLE or message["type"] != RTN_UNICAST:
            continue
        hops = [(message.get_attr("RTA_GATEWAY"), message.get_attr("RTA_VIA"), message.get_attr("RTA_OIF"))]
        hops += [(hop.get_attr("RTA_GATEWAY"), hop.get_attr("RTA_VIA"), hop.get("oif")) for hop in message.get_attr("RTA_MULTIPATH") or []]
        if message["dst_len"] == 0:
            for gateway, via, index in hops:
                for address in (gateway, via.get("addr") if isinstance(via, dict) else None):
                    if address is not None:
                        gateways.append(route_safety.Gateway(ipaddress.ip_address(address.split("%")[0]), names.get(index)))
            continue
        gateway, via, index = hops[0]
        connected = message["family"] == 10 or message["scope"] == RT_SCOPE_LINK  # IPv6 routes have no scope
        if (
            connected
            and len(hops) == 1
            and gateway is None
            and via is None
            and index is not None
            and index != exclude_index
            and message.get_attr("RTA_DST") is not None
        ):
            attach(message.get_attr("RTA_DST"), message["dst_len"], index)
    return route_safety.Snapshot(tuple(attached), tuple(gateways))


def route_problem_before_connecting(full_tunnel: bool, extra_routes: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str | None:
    """For the engine runner, before it connects: the sentence refusing the routes known already
    (the full tunnel's half routes, the extra routes), or None. The address, the peer and the
    split network come from the server later; the configurator checks them (as root, or in the
    helper). None, too, when the routing table cannot be read: the configurator still checks."""
    wanted = routing_policy.known_routes(full_tunnel, extra_routes)
    try:
        with netlink() as ipr:
            snapshot = read_route_snapshot(ipr)
    except PlatformError as error:
        log.debug("route check skipped: %s", error.sentence)
        return None
    return route_safety.first_problem(snapshot, wanted)
