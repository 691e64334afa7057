"""The netlink route watcher in a namespace of its own: a link going down takes the route away,
the link and a route coming back bring it back, our own tunnel's route does not count."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.netns import Namespace, veth_pair
from tests.realparts import require_program, require_root

AGENT = Path(__file__).with_name("route_watch_agent.py")
LOCAL, GATEWAY = "198.18.40.2", "198.18.40.1"
SERVER = "198.18.41.1"  # behind the gateway; never sent anything (route lookups only)


class Agent:
    def __init__(self, ns: Namespace, target: str) -> None:
        self.process = ns.popen(sys.executable, str(AGENT), target, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def send(self, line: str) -> None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def next_event(self, timeout: float = 3.0) -> dict | None:
        if not select.select([self.process.stdout], [], [], timeout)[0]:
            return None
        line = self.process.stdout.readline()
        assert line, f"the agent exited ({self.process.wait()})"
        return json.loads(line)


@pytest.fixture
def network():
    require_root("network namespaces")
    require_program("ip", "apt-get install iproute2")
    with Namespace("sstprw") as here, Namespace("sstprw") as there:
        local_if, _ = veth_pair(here, LOCAL, there, GATEWAY)
        here.run("ip", "route", "add", "198.18.41.0/24", "via", GATEWAY)
        yield here, local_if


def test_link_down_and_back_with_its_route(network):
    ns, link = network
    agent = Agent(ns, SERVER)
    assert agent.next_event() == {"event": "ready", "usable": True}
    agent.send("idle")
    cpu = agent.next_event()
    assert cpu["event"] == "cpu" and cpu["seconds"] < 0.05  # asleep in select, not spinning

    ns.run("ip", "link", "set", link, "down")
    event = agent.next_event()
    assert event["event"] == "changed" and event["usable"] is False

    ns.run("ip", "link", "set", link, "up")  # the on-link route comes back, the route to SERVER does not
    assert agent.next_event(1.5) is None
    started = time.monotonic()
    ns.run("ip", "route", "add", "198.18.41.0/24", "via", GATEWAY)
    event = agent.next_event()
    assert event["event"] == "changed" and event["usable"] is True
    assert time.monotonic() - started < 1.5  # debounced by 0.2 s, not polled

    agent.send("close")
    closed = agent.next_event()
    assert closed["event"] == "closed" and not closed["alive"] and closed["seconds"] < 1.0
    assert agent.process.wait(5) == 0


def test_a_route_through_our_own_tunnel_does_not_count(network):
    ns, link = network
    # a veth pair stands in for the tunnel: up, with a carrier, so only its name can exclude it
    ns.run("ip", "link", "add", "sstpfake0", "type", "veth", "peer", "name", "sstpfake1")
    for name in ("sstpfake0", "sstpfake1"):
        ns.run("ip", "link", "set", name, "up")
    ns.run("ip", "route", "add", f"{SERVER}/32", "dev", "sstpfake0")
    agent = Agent(ns, SERVER)
    assert agent.next_event() == {"event": "ready", "usable": True}
    agent.send(f"target {SERVER} sstpfake0")
    event = agent.next_event()
    assert event["event"] == "changed" and event["usable"] is False
    ns.run("ip", "route", "del", f"{SERVER}/32", "dev", "sstpfake0")  # the route via the gateway is used again
    event = agent.next_event()
    assert event["event"] == "changed" and event["usable"] is True
    agent.send("close")
    assert agent.next_event()["event"] == "closed"


def test_a_route_that_moves_to_another_gateway_is_reported_and_a_host_route_is_not(network):
    ns, link = network
    agent = Agent(ns, SERVER)
    assert agent.next_event() == {"event": "ready", "usable": True}
    ns.run("ip", "route", "add", f"{SERVER}/32", "via", GATEWAY)  # our host route: not a move
    assert agent.next_event(1.0) is None
    ns.run("ip", "link", "add", "sstpcable0", "type", "veth", "peer", "name", "sstpcable1")
    ns.run("ip", "addr", "add", "198.18.42.2/24", "dev", "sstpcable0")
    for name in ("sstpcable0", "sstpcable1"):
        ns.run("ip", "link", "set", name, "up")
    assert agent.next_event(1.0) is None  # a new link and its network: the route to SERVER stays
    started = time.monotonic()
    ns.run("ip", "route", "replace", "198.18.41.0/24", "via", "198.18.42.1", "dev", "sstpcable0")  # cable in
    event = agent.next_event()
    assert event["event"] == "changed" and event["usable"] is True  # usable all along: a move
    print(f"move reported after {time.monotonic() - started:.2f} s")
    assert agent.next_event(1.0) is None  # once
    agent.send("close")
    assert agent.next_event()["event"] == "closed"
