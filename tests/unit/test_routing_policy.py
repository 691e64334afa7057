"""routing_policy: the one routing policy every NetConfigurator applies, as typed steps (pure)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

from sstpvpn.client.core.types import NetworkPlan, PushedSettings
from sstpvpn.platform import routing_policy as policy
from sstpvpn.platform.route_safety import Destination, Kind
from sstpvpn.platform.routing_policy import AcceptRouterAdvertisements, AddAddress, AddRoute, HostRouteToServer, Options, SetDns, SetLink

SERVER = ip_address("203.0.113.5")
PLAN = NetworkPlan(
    address=IPv4Address("198.18.30.10"), peer=IPv4Address("198.18.30.1"), dns=(IPv4Address("198.18.30.53"), IPv4Address("198.18.30.54")), mtu=1400
)
HALVES = [AddRoute(ip_network(n), Kind.FULL) for n in ("0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1")]


def test_full_tunnel_link_address_server_route_half_routes_then_dns():
    assert policy.steps(PLAN, Options(SERVER)) == [
        SetLink(1400),
        AddAddress(PLAN.address, PLAN.peer, 32),
        HostRouteToServer(SERVER),
        *HALVES,
        SetDns(PLAN.dns, all_names=True),
    ]


def test_split_tunnel_routes_the_24_around_the_address_and_no_server_route_outside_it():
    assert policy.steps(PLAN, Options(SERVER, full_tunnel=False)) == [
        SetLink(1400),
        AddAddress(PLAN.address, PLAN.peer, 32),
        AddRoute(ip_network("198.18.30.0/24"), Kind.SPLIT),
        SetDns(PLAN.dns, all_names=False),
    ]


def test_a_server_inside_a_tunnel_route_gets_its_host_route_first():
    inside = ip_address("198.18.30.200")
    steps = policy.steps(PLAN, Options(inside, full_tunnel=False))
    assert steps[2:4] == [HostRouteToServer(inside), AddRoute(ip_network("198.18.30.0/24"), Kind.SPLIT)]
    extra = ip_network("203.0.113.0/24")  # an extra route holding the server
    steps = policy.steps(PLAN, Options(SERVER, full_tunnel=False, extra_routes=(extra,)))
    assert steps[2:] == [
        HostRouteToServer(SERVER),
        AddRoute(ip_network("198.18.30.0/24"), Kind.SPLIT),
        AddRoute(extra, Kind.EXTRA),
        SetDns(PLAN.dns, all_names=False),
    ]


def test_an_ipv6_server_gets_its_host_route_from_the_ipv6_half_routes():
    server = ip_address("2001:db8::5")
    assert HostRouteToServer(server) in policy.steps(PLAN, Options(server))
    assert HostRouteToServer(server) not in policy.steps(PLAN, Options(server, full_tunnel=False))


def test_extra_routes_follow_and_the_vpn_dns_can_be_left_out():
    extras = (ip_network("10.20.0.0/16"), ip_network("fd00:1::/64"))
    steps = policy.steps(PLAN, Options(SERVER, extra_routes=extras, use_vpn_dns=False))
    assert steps[-2:] == [AddRoute(extras[0], Kind.EXTRA), AddRoute(extras[1], Kind.EXTRA)]
    assert not any(isinstance(step, SetDns) for step in steps)
    no_dns = NetworkPlan(address=PLAN.address, peer=PLAN.peer, mtu=1400)
    assert not any(isinstance(step, SetDns) for step in policy.steps(no_dns, Options(SERVER)))


def test_the_ipv6_identifier_becomes_the_link_local_address_and_no_peer_means_our_own():
    plan = NetworkPlan(address=PLAN.address, peer=None, mtu=1280, ipv6_identifier=bytes.fromhex("0211223344556677"))
    link_local = IPv6Address("fe80::211:2233:4455:6677")
    assert policy.steps(plan, Options(SERVER))[:4] == [
        SetLink(1280),
        AddAddress(PLAN.address, PLAN.address, 32),
        AcceptRouterAdvertisements(),
        AddAddress(link_local, link_local, 64),
    ]


def test_a_late_ipv6_link_takes_router_advertisements_before_its_link_local_address():
    # Before: the kernel solicits an advertisement as soon as the address is there.
    link_local = IPv6Address("fe80::211:2233:4455:6677")
    assert policy.ipv6_link_steps(bytes.fromhex("0211223344556677")) == [AcceptRouterAdvertisements(), AddAddress(link_local, link_local, 64)]


def test_a_link_local_address_is_no_destination_for_route_safety():
    # fe80::/64 is attached to every other interface too; the address is on the tunnel's link only.
    assert policy.destinations(policy.ipv6_link_steps(bytes.fromhex("0211223344556677"))) == []
    plan = NetworkPlan(address=PLAN.address, peer=PLAN.peer, mtu=1400, ipv6_identifier=bytes.fromhex("0211223344556677"))
    found = policy.destinations(policy.steps(plan, Options(SERVER)))
    assert [d.network for d in found[:2]] == [ip_network(f"{PLAN.address}/32"), ip_network(f"{PLAN.peer}/32")]


def test_destinations_come_in_route_safety_order_with_their_kinds():
    extra = ip_network("10.20.0.0/16")
    found = policy.destinations(policy.steps(PLAN, Options(SERVER, extra_routes=(extra,))))
    assert found == [
        Destination(ip_network("198.18.30.10/32"), Kind.ADDRESS),
        Destination(ip_network("198.18.30.1/32"), Kind.PEER),
        *(Destination(route.network, Kind.FULL) for route in HALVES),
        Destination(extra, Kind.EXTRA),
    ]
    assert policy.known_routes(False, [extra]) == [Destination(extra, Kind.EXTRA)]
    assert policy.known_routes(True, [])[0] == Destination(ip_network("0.0.0.0/1"), Kind.FULL)


def test_pushed_routes_only_in_a_split_tunnel_and_never_one_holding_the_server():
    pushed = PushedSettings(
        routes=(ip_network("10.1.0.0/16"), ip_network("203.0.113.0/24")), domain="corp.example", search=("corp.example", "lab.example")
    )
    assert policy.pushed_routes(pushed, Options(SERVER)) == []
    split = Options(SERVER, full_tunnel=False)
    routes = policy.pushed_routes(pushed, split)
    assert routes == [AddRoute(ip_network("10.1.0.0/16"), Kind.PUSHED), AddRoute(ip_network("203.0.113.0/24"), Kind.PUSHED)]
    assert policy.pushed_route_problem(routes[0].network, split) is None
    assert "holds the VPN server 203.0.113.5 itself" in policy.pushed_route_problem(routes[1].network, split)
    assert policy.pushed_domains(pushed) == ["corp.example", "lab.example"]
