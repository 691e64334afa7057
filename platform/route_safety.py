"""Which networks the tunnel may not take: a route into the tunnel must never capture a local
network or the gateway. Pure and OS-independent: the caller reads the snapshot from its system.

Why: sstp-vpn-helper runs as root for members of a group, and the client fully controls the plan
it sends (address, peer, extra routes, full or split tunnel). A route such as half of the local
network, the gateway as a /32, or a peer on the local network would send root's (and everyone
else's) traffic for those hosts into that member's tunnel. The configurator therefore refuses such
a plan before it changes anything (Linux: NetConfigurator.apply, as root or in the helper); on
Linux the engine runner also checks the routes it knows before connecting (the full tunnel's, the
extra routes), for an early sentence.

The rule:

- Attached networks: for every interface other than the tunnel interface being configured, the
  network of each of its addresses (address/prefixlen, IPv4 and IPv6; for a point-to-point address
  also the peer as a /32 or /128), plus every route in the main table that has no gateway and link
  scope (a connected route) on such an interface, with a prefix length > 0. (Linux records no scope
  for IPv6 routes, every one reads "global": for IPv6 each unicast route without a gateway on such
  an interface counts as connected.)
- Gateways: the gateway of every default route (prefix length 0) in the main table.
- Tunnel destinations: every network the configurator would route into the tunnel: the full
  tunnel's half routes (0.0.0.0/1, 128.0.0.0/1, ::/1, 8000::/1) or, in split mode, the /24 it
  derives from the assigned address; the extra routes; the peer as /32; the tunnel's own address
  as /32.
- A tunnel destination N is refused when
  (a) N lies inside or equals an attached network P (same IP version, N.subnet_of(P)): it would
      take part of a local network. When N is a strict supernet of P, P's more specific connected
      route still wins, so N is fine: a corporate 10.0.0.0/8 while at home on 192.168.1.0/24, or
      even on 10.1.2.0/24, still works;
  (b) a gateway G lies inside N and no attached network containing G is more specific than N:
      longest prefix match would send traffic to the gateway into the tunnel (a /32 route to the
      gateway, or an onlink gateway outside every attached network).
  So the full tunnel's half routes pass on ordinary machines: the local network's route is more
  specific than a /1, also on a cloud VM with a /32 address and an onlink /32 route to its
  gateway, and with an IPv6 default route via a link-local gateway (fe80::1, attached fe80::/64).

Destinations are checked in order (address, peer, then the routes as the configurator adds them:
routing_policy.destinations); the first refusal is one sentence naming the route, what it would capture and what to do.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from sstpvpn.client.core.i18n import _

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Attached:
    """A network this computer reaches directly, and the interface it is on."""

    network: IPNetwork
    interface: str


@dataclass(frozen=True)
class Gateway:
    """The gateway of a default route, and the interface it is reached on (None: unknown)."""

    address: IPAddress
    interface: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """What the rule needs to know about this computer's network (the tunnel interface excluded)."""

    attached: tuple[Attached, ...] = ()
    gateways: tuple[Gateway, ...] = ()


class Kind(enum.Enum):
    """Why a network would enter the tunnel; it picks the sentence."""

    ADDRESS = "address"  # the tunnel's own address, as a /32
    PEER = "peer"  # the server's end of the tunnel, as a /32
    FULL = "full"  # a half route of the full tunnel
    SPLIT = "split"  # the /24 around the address (split tunnel)
    EXTRA = "extra"  # an extra route of the profile
    PUSHED = "pushed"  # a route the VPN's DHCP server sent (DHCPINFORM); left out, not fatal


@dataclass(frozen=True)
class Destination:
    network: IPNetwork
    kind: Kind


def first_problem(snapshot: Snapshot, wanted: Iterable[Destination]) -> str | None:
    """The sentence refusing the first destination that would capture a local network or the
    gateway, or None when every one is safe."""
    for destination in wanted:
        problem = _problem(snapshot, destination)
        if problem is not None:
            return problem
    return None


def _problem(snapshot: Snapshot, destination: Destination) -> str | None:
    network = destination.network
    same_version = [a for a in snapshot.attached if a.network.version == network.version]
    # (a) inside or equal to an attached network (the most specific one is named).
    inside = [a for a in same_version if network.subnet_of(a.network)]  # type: ignore[arg-type]  # same version
    local = max(inside, key=lambda a: a.network.prefixlen) if inside else None
    # (b) a gateway inside it, with no more specific attached network to keep it local.
    captured = next(
        (
            gateway
            for gateway in snapshot.gateways
            if gateway.address.version == network.version
            and gateway.address in network
            and not any(gateway.address in a.network and a.network.prefixlen > network.prefixlen for a in same_version)
        ),
        None,
    )
    # Both may hold; the sentence names the gateway when the destination is that one host.
    if captured is not None and (local is None or network.num_addresses == 1):
        return _captures_gateway(destination, captured)
    return None if local is None else _captures_network(destination, local)


def _captures_network(destination: Destination, local: Attached) -> str:
    network, kind = destination.network, destination.kind
    values = {"network": network, "address": network.network_address, "local": local.network, "interface": local.interface}
    if kind is Kind.ADDRESS:
        sentence = _(
            "The VPN server gave this computer the address {address}, which is on the local network {local} (interface {interface}), "
            "so traffic for that host would go into the VPN; ask the VPN administrator for an address pool outside {local}."
        )
    elif kind is Kind.PEER:
        sentence = _(
            "The VPN server gave its end of the tunnel the address {address}, which is on the local network {local} (interface {interface}), "
            "so traffic for that host would go into the VPN; ask the VPN administrator for an address pool outside {local}."
        )
    elif kind is Kind.SPLIT:
        sentence = _(
            "The VPN server gave this computer an address in {network}, which is on the local network {local} (interface {interface}), "
            "so traffic for the local network would go into the VPN; ask the VPN administrator for an address pool outside {local}."
        )
    elif kind is Kind.FULL:
        sentence = _(
            "Routing all traffic through the VPN needs the route {network}, which lies inside {local}, a network reached directly "
            "through {interface} (most likely another VPN's), so that traffic would be taken from it; disconnect that connection "
            "first, or use a split tunnel."
        )
    elif kind is Kind.PUSHED and network == local.network:
        sentence = _(
            "Left out the route {network} that the VPN's DHCP server sent: it is the local network {local} (interface {interface}), "
            "so traffic for those local hosts would go into the VPN."
        )
    elif kind is Kind.PUSHED:
        sentence = _(
            "Left out the route {network} that the VPN's DHCP server sent: it lies inside the local network {local} "
            "(interface {interface}), so traffic for those local hosts would go into the VPN."
        )
    elif network == local.network:
        sentence = _(
            "The extra route {network} is the local network {local} (interface {interface}), so traffic for those local hosts would "
            "go into the VPN; remove the route from the profile (or --route), or ask the VPN administrator for routes outside {local}."
        )
    else:
        sentence = _(
            "The extra route {network} lies inside the local network {local} (interface {interface}), so traffic for those local "
            "hosts would go into the VPN; remove the route from the profile (or --route), or ask the VPN administrator for routes "
            "outside {local}."
        )
    return sentence.format(**values)


def _captures_gateway(destination: Destination, gateway: Gateway) -> str:
    network, kind = destination.network, destination.kind
    if gateway.interface:
        # Translators: {gateway} in the sentences about a route that would capture this computer's gateway
        described = _("{address} (interface {interface})").format(address=gateway.address, interface=gateway.interface)
    else:
        described = str(gateway.address)
    values = {"network": network, "address": network.network_address, "gateway": described, "gateway_address": gateway.address}
    if kind is Kind.ADDRESS:
        sentence = _(
            "The VPN server gave this computer the address {address}, which is this computer's gateway {gateway}, so traffic to the "
            "gateway would go into the VPN; ask the VPN administrator for an address pool without {gateway_address}."
        )
    elif kind is Kind.PEER:
        sentence = _(
            "The VPN server gave its end of the tunnel the address {address}, which is this computer's gateway {gateway}, so traffic "
            "to the gateway would go into the VPN; ask the VPN administrator for an address pool without {gateway_address}."
        )
    elif kind is Kind.SPLIT:
        sentence = _(
            "The VPN server gave this computer an address in {network}, which holds this computer's gateway {gateway}, so traffic to "
            "the gateway would go into the VPN; ask the VPN administrator for an address pool outside {network}."
        )
    elif kind is Kind.FULL:
        sentence = _(
            "Routing all traffic through the VPN would also send traffic to this computer's gateway {gateway} into the VPN (the route "
            "{network} covers it and no local network route is more specific); give the gateway a route of its own on its interface, "
            "or use a split tunnel."
        )
    elif kind is Kind.PUSHED:
        sentence = _(
            "Left out the route {network} that the VPN's DHCP server sent: it holds this computer's gateway {gateway}, so traffic to "
            "the gateway would go into the VPN."
        )
    else:
        sentence = _(
            "The extra route {network} holds this computer's gateway {gateway}, so traffic to the gateway would go into the VPN; remove "
            "the route from the profile (or --route)."
        )
    return sentence.format(**values)
