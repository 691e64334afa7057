"""The routing policy, once for every operating system: which changes a NetworkPlan makes, in
which order. Pure: it turns the plan and the profile's options into typed steps; each
NetConfigurator applies them with its own system's tools (and may skip what its system cannot do).

Why this policy:
- Full tunnel adds two half-default routes, 0.0.0.0/1 and 128.0.0.0/1, through the tunnel
  instead of touching the default route. They win over any default by prefix length, the user's
  default route is never deleted or changed, and restoring is just deleting our two routes. IPv6
  gets ::/1 and 8000::/1 into the tunnel too, so IPv6 traffic cannot leave beside the VPN when the
  server offers no IPv6 (the engine drops it). OpenVPN calls this def1; wg-quick on macOS does it.
- Before the tunnel routes, a host route to the SSTP server through the route it is reached by now
  (the old gateway and interface), or the VPN's own TLS connection would be routed into the
  tunnel. Only when a tunnel route covers the server; none is added when the server is on this
  machine or on a local link (the configurator finds no gateway).
- Split tunnel routes only the /24 around the address the server assigned us (plus the peer,
  which the point-to-point address already routes). IPCP tells us no network, and a /24 is what
  VPN address pools almost always are: 198.18.30.10 gives 198.18.30.0/24. It mirrors what
  Windows' own SSTP client does without "use default gateway" (it adds the address's class
  network), without the surprise of a whole 10.0.0.0/8. The default route stays untouched.
- The IPv6 link-local address is built from the interface identifier IPV6CP negotiated; the peer
  expects neighbour and router messages from this one. Before it, the tunnel interface is told to
  take the VPN's router advertisements (AcceptRouterAdvertisements), so that the system asks for
  them as soon as the address is there and forms its global address from the advertised prefix
  and the same identifier (SLAAC). Never the advertised default route: a full tunnel has ::/1 and
  8000::/1 already, and a split tunnel routes only the VPN's prefixes. IPV6CP may open after the
  tunnel is up (SoftEther answers only once it has asked its hub for a router: 2 x 2 s when none
  answers), so these steps also come on their own (ipv6_link_steps), after apply().
- DNS: the VPN's servers when the profile wants them and the server named any. In a full tunnel
  they answer every name; in a split tunnel they are asked beside the local ones where the system
  can do that (systemd-resolved), and left out where it cannot (a plain resolv.conf, macOS
  without match domains).

Order (platform note, "Order (up)"): link, addresses, server host route, tunnel routes, DNS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.route_safety import Destination, Kind

if TYPE_CHECKING:
    from sstpvpn.client.core.types import NetworkPlan, PushedSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SPLIT_PREFIX_LENGTH = 24
FULL_TUNNEL_ROUTES: tuple[IPNetwork, ...] = (ipaddress.ip_network("0.0.0.0/1"), ipaddress.ip_network("128.0.0.0/1"))
FULL_TUNNEL_ROUTES_V6: tuple[IPNetwork, ...] = (ipaddress.ip_network("::/1"), ipaddress.ip_network("8000::/1"))
LINK_LOCAL_PREFIX_LENGTH = 64


@dataclass(frozen=True)
class Options:
    """What the profile says about routing, and where the VPN server (or the proxy) is."""

    server: IPAddress
    full_tunnel: bool = True
    extra_routes: tuple[IPNetwork, ...] = ()
    use_vpn_dns: bool = True


# -- the steps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetLink:
    """Set the tunnel interface's MTU and bring it up."""

    mtu: int


@dataclass(frozen=True)
class AddAddress:
    """Give the tunnel interface `local`, with `peer` at the other end (`local` when unknown)."""

    local: IPAddress
    peer: IPAddress
    prefixlen: int


@dataclass(frozen=True)
class HostRouteToServer:
    """A host route to the VPN server through the gateway the system uses for it now."""

    server: IPAddress


@dataclass(frozen=True)
class AddRoute:
    """Route `network` into the tunnel; `kind` says why (and picks the sentences)."""

    network: IPNetwork
    kind: Kind


@dataclass(frozen=True)
class SetDns:
    """Use the VPN's DNS servers; `all_names`: for every name (full tunnel), else beside the
    local servers where the system can ask several."""

    servers: tuple[IPAddress, ...]
    all_names: bool


@dataclass(frozen=True)
class AcceptRouterAdvertisements:
    """Let the system configure the tunnel interface from the VPN's router advertisements: an
    address from each advertised prefix (SLAAC) and its on-link route, no default route."""


Step = SetLink | AddAddress | HostRouteToServer | AddRoute | SetDns | AcceptRouterAdvertisements


def steps(plan: NetworkPlan, options: Options) -> list[Step]:
    """The changes `plan` makes, in the order they are made."""
    local = ipaddress.ip_address(plan.address)
    made: list[Step] = [SetLink(plan.mtu), AddAddress(local, ipaddress.ip_address(plan.peer) if plan.peer is not None else local, 32)]
    if plan.ipv6_identifier is not None:
        made += ipv6_link_steps(bytes(plan.ipv6_identifier))
    routes = tunnel_routes(local, options)
    if any(options.server in route.network for route in routes):
        made.append(HostRouteToServer(options.server))
    made += routes
    servers = tuple(ipaddress.ip_address(server) for server in plan.dns)
    if servers and options.use_vpn_dns:
        made.append(SetDns(servers, all_names=options.full_tunnel))
    return made


def ipv6_link_steps(identifier: bytes) -> list[Step]:
    """The IPv6 link's changes once IPV6CP is up with our interface identifier `identifier`:
    router advertisements first, so the system solicits one when the link-local address comes."""
    link_local = link_local_address(identifier)
    return [AcceptRouterAdvertisements(), AddAddress(link_local, link_local, LINK_LOCAL_PREFIX_LENGTH)]


def tunnel_routes(address: IPAddress, options: Options) -> list[AddRoute]:
    """The routes into the tunnel, in the order they are added: the full tunnel's half routes or
    the split tunnel's /24 around `address`, then the extra routes."""
    if options.full_tunnel:
        routes = [AddRoute(network, Kind.FULL) for network in FULL_TUNNEL_ROUTES + FULL_TUNNEL_ROUTES_V6]
    else:
        routes = [AddRoute(ipaddress.ip_network(f"{address}/{SPLIT_PREFIX_LENGTH}", strict=False), Kind.SPLIT)]
    return routes + [AddRoute(network, Kind.EXTRA) for network in options.extra_routes]


def known_routes(full_tunnel: bool, extra_routes: Sequence[IPNetwork]) -> list[Destination]:
    """The tunnel destinations known before the server assigns an address (for an early check)."""
    halves = FULL_TUNNEL_ROUTES + FULL_TUNNEL_ROUTES_V6 if full_tunnel else ()
    return [Destination(network, Kind.FULL) for network in halves] + [Destination(network, Kind.EXTRA) for network in extra_routes]


def destinations(made: Sequence[Step]) -> list[Destination]:
    """What route_safety checks for these steps, in its order: our address, the peer, then the
    routes as they are added (none for a link-local address)."""
    # A link-local address (IPv6) belongs to its own link alone: it captures nothing elsewhere.
    address = next((step for step in made if isinstance(step, AddAddress) and not step.local.is_link_local), None)
    found = [] if address is None else [Destination(ipaddress.ip_network(address.local), Kind.ADDRESS)]
    if address is not None and address.peer != address.local:
        found.append(Destination(ipaddress.ip_network(address.peer), Kind.PEER))
    return found + [Destination(step.network, step.kind) for step in made if isinstance(step, AddRoute)]


def pushed_routes(pushed: PushedSettings, options: Options) -> list[AddRoute]:
    """The routes the VPN's DHCP server sent, as steps: only in a split tunnel (a full tunnel
    routes everything already). Each is still checked (pushed_route_problem, route_safety)."""
    return [] if options.full_tunnel else [AddRoute(network, Kind.PUSHED) for network in pushed.routes]


def pushed_route_problem(network: IPNetwork, options: Options) -> str | None:
    """The sentence leaving out a pushed route that holds the VPN server itself, or None."""
    if options.server not in network:
        return None
    return _(
        "Left out the route {network} that the VPN's DHCP server sent: it holds the VPN server "
        "{server} itself, and the connection would run into its own tunnel."
    ).format(network=network, server=options.server)


def pushed_domains(pushed: PushedSettings) -> list[str]:
    """The DNS domain and search list the VPN's DHCP server sent, once each, in order."""
    return list(dict.fromkeys(name for name in (pushed.domain, *pushed.search) if name))


def link_local_address(identifier: bytes) -> ipaddress.IPv6Address:
    """fe80::/64 with the 8-byte interface identifier IPV6CP negotiated."""
    return ipaddress.IPv6Address(b"\xfe\x80" + b"\0" * 6 + identifier)


# -- sentences every system says the same way -----------------------------------------------


def route_exists_sentence(network: IPNetwork, full_tunnel: bool) -> str:
    if full_tunnel:
        return _("Another VPN already routes all traffic (the route {network} exists); disconnect it first.").format(network=network)
    return _(
        "The VPN's network {network} is already routed elsewhere (often the local network uses the same addresses), so the VPN cannot use it."
    ).format(network=network)


def address_in_use_sentence(address: IPAddress) -> str:
    return _(
        "The address {address} is already in use on another network adapter (often one a VPN left behind); remove it there and reconnect."
    ).format(address=address)


def no_route_to_server_sentence(server: IPAddress, reason: str) -> str:
    return _("This computer has no route to the VPN server {server} ({reason}); check the network connection.").format(server=server, reason=reason)
