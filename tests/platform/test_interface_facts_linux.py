"""The Linux answers behind the status window, read from a real kernel in a namespace the test
creates: an interface's traffic counters move with traffic, and the routes through it are listed
(its own, not another interface's, not the local table's, no link-local ones)."""

from __future__ import annotations

import json
import sys

import pytest

from tests.netns import Namespace, veth_pair
from tests.realparts import require_program, require_root

LOCAL, PEER = "198.18.50.2", "198.18.50.1"

# Runs inside the namespace (`ip netns exec` also shows that namespace's /sys/class/net).
READ = """
import dataclasses, json, sys
from sstpvpn.platform import current
counters = current.read_traffic_counters(sys.argv[1])
print(json.dumps({"counters": counters and dataclasses.asdict(counters), "routes": current.routes_through(sys.argv[1])}))
"""


@pytest.fixture
def linked():
    require_root("network namespaces")
    require_program("ip", "apt-get install iproute2")
    with Namespace("sstpif") as here, Namespace("sstpif") as there:
        link, _ = veth_pair(here, LOCAL, there, PEER)
        other, _ = veth_pair(here, "198.18.51.2", there, "198.18.51.1")
        yield here, link, other


def read(ns: Namespace, ifname: str) -> dict:
    return json.loads(ns.run(sys.executable, "-c", READ, ifname).stdout)


def test_the_counters_move_with_traffic(linked):
    require_program("ping", "apt-get install iputils-ping")
    ns, link, _ = linked
    before = read(ns, link)["counters"]
    ns.run("ping", "-c", "3", "-i", "0.2", "-s", "1000", "-W", "2", PEER)
    after = read(ns, link)["counters"]
    assert after["sent"] >= before["sent"] + 3 * 1000
    assert after["received"] >= before["received"] + 3 * 1000


def test_the_routes_through_the_interface_are_listed(linked):
    ns, link, other = linked
    for route in ("0.0.0.0/1", "128.0.0.0/1"):
        ns.run("ip", "route", "add", route, "via", PEER, "dev", link)
    ns.run("ip", "route", "add", "10.20.0.0/16", "dev", link)
    ns.run("ip", "-6", "addr", "add", "2001:db8:50::2/64", "dev", link, "nodad")
    ns.run("ip", "-6", "route", "add", "2001:db8:60::/48", "dev", link)
    ns.run("ip", "route", "add", "10.99.0.0/16", "dev", other)

    routes = read(ns, link)["routes"]
    assert sorted(routes[:4]) == sorted(["0.0.0.0/1", "128.0.0.0/1", "10.20.0.0/16", "198.18.50.0/24"])  # IPv4 first
    assert sorted(routes[4:]) == ["2001:db8:50::/64", "2001:db8:60::/48"]  # no fe80::/64, nothing of the other's
    assert sorted(read(ns, other)["routes"]) == ["10.99.0.0/16", "198.18.51.0/24"]
    assert read(ns, "lo")["routes"] == []  # loopback's routes live in the local table


def test_a_gone_interface_has_neither(linked):
    ns, link, _ = linked
    ns.run("ip", "link", "del", link)
    assert read(ns, link) == {"counters": None, "routes": None}
