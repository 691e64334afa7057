"""route_safety: no route into the tunnel may capture a local network or the gateway (issue 12)."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from sstpvpn.client.core.types import NetworkPlan
from sstpvpn.platform import routing_policy
from sstpvpn.platform.route_safety import Attached, Destination, Gateway, Kind, Snapshot, first_problem

# A home network: 192.0.2.0/24 and 2001:db8:1::/64 on eth0, IPv6 default via the router's
# link-local address. (The kernel's connected routes repeat the address networks.)
HOME = Snapshot(
    attached=(
        Attached(ip_network("127.0.0.0/8"), "lo"),
        Attached(ip_network("::1/128"), "lo"),
        Attached(ip_network("192.0.2.0/24"), "eth0"),
        Attached(ip_network("2001:db8:1::/64"), "eth0"),
        Attached(ip_network("fe80::/64"), "eth0"),
    ),
    gateways=(Gateway(ip_address("192.0.2.1"), "eth0"), Gateway(ip_address("fe80::1"), "eth0")),
)

# A cloud VM: a /32 address, an onlink /32 route to the gateway, default via that gateway.
CLOUD = Snapshot(
    attached=(
        Attached(ip_network("10.128.0.5/32"), "ens4"),
        Attached(ip_network("10.128.0.1/32"), "ens4"),
        Attached(ip_network("fe80::/64"), "ens4"),
    ),
    gateways=(Gateway(ip_address("10.128.0.1"), "ens4"), Gateway(ip_address("fe80::1"), "ens4")),
)


def check(
    snapshot: Snapshot, *, full_tunnel: bool, extra: tuple[str, ...] = (), address: str = "198.51.100.10", peer: str | None = "198.51.100.1"
) -> str | None:
    """What the Linux configurator checks: the address, the peer, its routes (halves or the derived
    /24, then extras), as the routing policy makes them."""
    plan = NetworkPlan(address=ip_address(address), peer=None if peer is None else ip_address(peer), mtu=1400)
    options = routing_policy.Options(ip_address("203.0.113.5"), full_tunnel, tuple(ip_network(n) for n in extra))
    return first_problem(snapshot, routing_policy.destinations(routing_policy.steps(plan, options)))


# -- accepted ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("snapshot", [HOME, CLOUD], ids=["home", "cloud-vm"])
def test_the_full_tunnel_is_accepted_on_ordinary_machines(snapshot):
    # Also IPv6: the default route's gateway fe80::1 lies in 8000::/1, but fe80::/64 is more specific.
    assert check(snapshot, full_tunnel=True) is None
    assert check(snapshot, full_tunnel=False) is None


def test_a_strict_supernet_of_the_local_network_is_accepted():
    # A corporate 10.0.0.0/8 while at home on 10.1.2.0/24: the LAN's own route still wins.
    at_home = Snapshot(attached=(Attached(ip_network("10.1.2.0/24"), "wlan0"),), gateways=(Gateway(ip_address("10.1.2.1"), "wlan0"),))
    assert check(at_home, full_tunnel=True, extra=("10.0.0.0/8",)) is None
    assert check(at_home, full_tunnel=False, extra=("10.0.0.0/8",)) is None
    assert check(HOME, full_tunnel=False, extra=("192.0.0.0/16", "2001:db8::/32")) is None


def test_networks_beside_the_local_one_are_accepted():
    assert check(HOME, full_tunnel=False, extra=("192.0.3.0/24", "198.51.100.0/24", "2001:db8:2::/64")) is None


# -- refused: part of a local network -----------------------------------------------------------------


def test_an_extra_route_inside_the_local_network_is_refused():
    assert check(HOME, full_tunnel=False, extra=("192.0.2.0/25",)) == (
        "The extra route 192.0.2.0/25 lies inside the local network 192.0.2.0/24 (interface eth0), so traffic "
        "for those local hosts would go into the VPN; remove the route from the profile (or --route), or ask "
        "the VPN administrator for routes outside 192.0.2.0/24."
    )
    assert check(HOME, full_tunnel=True, extra=("2001:db8:1::/80",)) == (
        "The extra route 2001:db8:1::/80 lies inside the local network 2001:db8:1::/64 (interface eth0), so "
        "traffic for those local hosts would go into the VPN; remove the route from the profile (or --route), "
        "or ask the VPN administrator for routes outside 2001:db8:1::/64."
    )


@pytest.mark.parametrize("network", ["192.0.2.0/24", "2001:db8:1::/64"])
def test_an_extra_route_equal_to_the_local_network_is_refused(network):
    assert check(HOME, full_tunnel=True, extra=(network,)) == (
        f"The extra route {network} is the local network {network} (interface eth0), so traffic for those "
        "local hosts would go into the VPN; remove the route from the profile (or --route), or ask the VPN "
        f"administrator for routes outside {network}."
    )


def test_a_host_on_the_local_network_is_refused():
    problem = check(HOME, full_tunnel=True, extra=("192.0.2.77/32",))
    assert problem is not None and problem.startswith("The extra route 192.0.2.77/32 lies inside the local network 192.0.2.0/24 (interface eth0)")


def test_a_peer_on_the_local_network_is_refused():
    assert check(HOME, full_tunnel=True, peer="192.0.2.7") == (
        "The VPN server gave its end of the tunnel the address 192.0.2.7, which is on the local network "
        "192.0.2.0/24 (interface eth0), so traffic for that host would go into the VPN; ask the VPN "
        "administrator for an address pool outside 192.0.2.0/24."
    )


@pytest.mark.parametrize("full_tunnel", [True, False])
def test_an_address_on_the_local_network_is_refused(full_tunnel):
    # In split mode the derived 192.0.2.0/24 would be refused too; the address says more.
    assert check(HOME, full_tunnel=full_tunnel, address="192.0.2.9", peer=None) == (
        "The VPN server gave this computer the address 192.0.2.9, which is on the local network 192.0.2.0/24 "
        "(interface eth0), so traffic for that host would go into the VPN; ask the VPN administrator for an "
        "address pool outside 192.0.2.0/24."
    )


def test_the_split_networks_24_equal_to_the_local_network_is_refused():
    derived = Destination(ip_network("192.0.2.0/24"), Kind.SPLIT)
    assert first_problem(HOME, [derived]) == (
        "The VPN server gave this computer an address in 192.0.2.0/24, which is on the local network "
        "192.0.2.0/24 (interface eth0), so traffic for the local network would go into the VPN; ask the VPN "
        "administrator for an address pool outside 192.0.2.0/24."
    )


def test_a_point_to_point_peer_of_another_interface_counts_as_local():
    with_ppp = Snapshot(attached=(*HOME.attached, Attached(ip_network("203.0.113.9/32"), "ppp0")), gateways=HOME.gateways)
    problem = check(with_ppp, full_tunnel=True, extra=("203.0.113.9/32",))
    assert problem is not None and "is the local network 203.0.113.9/32 (interface ppp0)" in problem


def test_another_vpns_half_route_is_not_taken():
    other_vpn = Snapshot(attached=(*HOME.attached, Attached(ip_network("0.0.0.0/1"), "tun9")), gateways=HOME.gateways)
    assert check(other_vpn, full_tunnel=True) == (
        "Routing all traffic through the VPN needs the route 0.0.0.0/1, which lies inside 0.0.0.0/1, a network "
        "reached directly through tun9 (most likely another VPN's), so that traffic would be taken from it; "
        "disconnect that connection first, or use a split tunnel."
    )


# -- refused: the gateway -------------------------------------------------------------------------------


def test_a_host_route_to_the_gateway_is_refused():
    assert check(HOME, full_tunnel=True, extra=("192.0.2.1/32",)) == (
        "The extra route 192.0.2.1/32 holds this computer's gateway 192.0.2.1 (interface eth0), so traffic to "
        "the gateway would go into the VPN; remove the route from the profile (or --route)."
    )
    # On the cloud VM the gateway's /32 is an attached network: equal, so refused as well.
    assert check(CLOUD, full_tunnel=False, extra=("10.128.0.1/32",)) == (
        "The extra route 10.128.0.1/32 holds this computer's gateway 10.128.0.1 (interface ens4), so traffic to "
        "the gateway would go into the VPN; remove the route from the profile (or --route)."
    )
    assert check(CLOUD, full_tunnel=False, extra=("10.128.0.0/20",)) is None  # the onlink /32 is more specific


def test_a_peer_that_is_the_gateway_is_refused():
    assert check(HOME, full_tunnel=False, peer="192.0.2.1") == (
        "The VPN server gave its end of the tunnel the address 192.0.2.1, which is this computer's gateway "
        "192.0.2.1 (interface eth0), so traffic to the gateway would go into the VPN; ask the VPN "
        "administrator for an address pool without 192.0.2.1."
    )


def test_an_onlink_gateway_outside_every_attached_network():
    # default via 10.128.0.1 dev ens4 onlink, without the /32 route: nothing local covers the gateway.
    bare = Snapshot(attached=(Attached(ip_network("10.128.0.5/32"), "ens4"),), gateways=CLOUD.gateways[:1])
    assert check(bare, full_tunnel=True) == (
        "Routing all traffic through the VPN would also send traffic to this computer's gateway 10.128.0.1 "
        "(interface ens4) into the VPN (the route 0.0.0.0/1 covers it and no local network route is more "
        "specific); give the gateway a route of its own on its interface, or use a split tunnel."
    )
    assert check(bare, full_tunnel=False, extra=("10.0.0.0/8",)) == (
        "The extra route 10.0.0.0/8 holds this computer's gateway 10.128.0.1 (interface ens4), so traffic to "
        "the gateway would go into the VPN; remove the route from the profile (or --route)."
    )
    assert check(bare, full_tunnel=False, address="10.128.0.77", peer=None) == (
        "The VPN server gave this computer an address in 10.128.0.0/24, which holds this computer's gateway "
        "10.128.0.1 (interface ens4), so traffic to the gateway would go into the VPN; ask the VPN administrator "
        "for an address pool outside 10.128.0.0/24."
    )


def test_an_ipv6_route_over_the_link_local_gateway_is_refused():
    problem = check(HOME, full_tunnel=True, extra=("fe80::/64",))
    assert problem is not None and "is the local network fe80::/64 (interface eth0)" in problem
    no_link_local = Snapshot(attached=(Attached(ip_network("2001:db8:1::/64"), "eth0"),), gateways=(Gateway(ip_address("fe80::1"), "eth0"),))
    assert check(no_link_local, full_tunnel=True) is not None  # 8000::/1 would take the gateway
