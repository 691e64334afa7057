"""Roaming in the configurator, against a real kernel in namespaces the test creates: the client
has two uplinks to the same upstream namespace (the VPN server sits on its loopback, behind
either gateway). When the default route moves to the second uplink, follow_server_route moves
the server's host route along, journaled so that the undo (also after a crash) removes the new
route and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.netns import Namespace, veth_pair
from tests.platform.client_network import REPO, ip_json, route
from tests.realparts import require_program, require_root

AGENT = str(Path(__file__).with_name("route_follow_agent.py"))
NS_AGENT = str(Path(__file__).with_name("ns_agent.py"))
SERVER = "198.18.21.1"  # on the upstream namespace's loopback
FIRST_GATEWAY, SECOND_GATEWAY = "198.18.22.1", "198.18.23.1"


class Network:
    def __init__(self, client: Namespace, first: str, second: str) -> None:
        self.client, self.first, self.second = client, first, second

    def host_route(self) -> dict | None:
        return route(ip_json(self.client, "-4", "route", "show", "table", "main"), SERVER)

    def routes(self) -> list[dict]:
        return ip_json(self.client, "-4", "route", "show", "table", "all")


@pytest.fixture
def network():
    require_root("network namespaces and TUN devices")
    require_program("ip", "apt-get install iproute2")
    with Namespace("sstproam") as client, Namespace("sstproam") as upstream:
        first, _ = veth_pair(client, "198.18.22.2", upstream, FIRST_GATEWAY)
        second, _ = veth_pair(client, "198.18.23.2", upstream, SECOND_GATEWAY)
        upstream.run("ip", "addr", "add", f"{SERVER}/32", "dev", "lo")
        client.run("ip", "route", "add", "default", "via", FIRST_GATEWAY, "dev", first)
        yield Network(client, first, second)


class Agent:
    def __init__(self, ns: Namespace, journal: Path) -> None:
        self.proc = ns.popen(
            sys.executable, AGENT, SERVER, str(journal), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
        )
        self.ifname = self.next()["ifname"]

    def next(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, f"the agent ended early: {self.proc.stderr.read()}"
        return json.loads(line)

    def ask(self, command: str) -> dict:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.next()

    def close(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(10) == 0, self.proc.stderr.read()


def journal_routes(journal: Path) -> list[tuple[str, str | None, str]]:
    steps = json.loads(journal.read_text())["steps"]
    return [(step["dst"], step["gateway"], step["ifname"]) for step in steps if step["op"] == "route" and step["dst"] == SERVER]


def test_the_host_route_follows_the_default_route_and_the_undo_removes_the_new_one(network, tmp_path):
    ns, journal = network.client, tmp_path / "journal.json"
    before = network.routes()
    agent = Agent(ns, journal)
    assert network.host_route()["gateway"] == FIRST_GATEWAY
    assert agent.ask("follow") == {"event": "followed", "sentence": None, "seconds": pytest.approx(0, abs=1)}  # nothing moved

    ns.run("ip", "route", "replace", "default", "via", SECOND_GATEWAY, "dev", network.second)  # cable in, Wi-Fi still up
    followed = agent.ask("follow")
    assert followed["event"] == "followed" and SECOND_GATEWAY in followed["sentence"] and network.second in followed["sentence"]
    print(f"follow: {followed['seconds'] * 1000:.1f} ms")
    assert network.host_route() == {"dst": SERVER, "gateway": SECOND_GATEWAY, "dev": network.second, "protocol": "static", "flags": []}
    assert ip_json(ns, "route", "get", SERVER)[0]["dev"] == network.second
    assert journal_routes(journal) == [(SERVER, SECOND_GATEWAY, network.second)]  # the old one forgotten
    assert agent.ask("follow")["sentence"] is None  # settled

    restored = agent.ask("restore")
    assert restored == {"event": "restored", "notes": [], "journal_exists": False}
    assert network.host_route() is None
    agent.close()
    ns.run("ip", "route", "replace", "default", "via", FIRST_GATEWAY, "dev", network.first)
    assert network.routes() == before


def test_a_host_route_gone_with_its_link_comes_back_on_the_other_one(network, tmp_path):
    ns, journal = network.client, tmp_path / "journal.json"
    agent = Agent(ns, journal)
    ns.run("ip", "-batch", "-", input=f"route replace default via {SECOND_GATEWAY} dev {network.second}\nlink set {network.first} down\n")
    assert network.host_route() is None  # the kernel flushed it with its link: the server goes into the tunnel
    assert ip_json(ns, "route", "get", SERVER)[0]["dev"] == agent.ifname
    followed = agent.ask("follow")
    assert followed["event"] == "followed" and SECOND_GATEWAY in followed["sentence"]
    assert network.host_route()["gateway"] == SECOND_GATEWAY
    assert journal_routes(journal) == [(SERVER, SECOND_GATEWAY, network.second)]
    assert agent.ask("restore")["notes"] == []
    assert network.host_route() is None
    agent.close()


def test_no_route_at_all_is_one_sentence_and_changes_nothing(network, tmp_path):
    ns, journal = network.client, tmp_path / "journal.json"
    agent = Agent(ns, journal)
    ns.run("ip", "route", "del", "default")
    ns.run("ip", "link", "set", network.first, "down")
    steps = json.loads(journal.read_text())["steps"]
    failed = agent.ask("follow")
    assert failed["event"] == "failed" and SERVER in failed["sentence"] and "no route" in failed["sentence"]
    assert json.loads(journal.read_text())["steps"] == steps
    assert agent.ask("restore")["notes"] == []
    agent.close()


def test_a_client_killed_after_following_is_repaired_to_nothing_of_ours(network, tmp_path):
    ns, journal = network.client, tmp_path / "journal.json"
    agent = Agent(ns, journal)
    ns.run("ip", "route", "replace", "default", "via", SECOND_GATEWAY, "dev", network.second)
    assert SECOND_GATEWAY in agent.ask("follow")["sentence"]
    assert agent.ask("exit")["event"] == "exiting"
    assert agent.proc.wait(10) == 0
    # the TUN device went with the process (and its routes); the host route is ours to remove
    assert network.host_route()["gateway"] == SECOND_GATEWAY
    result = ns.run(sys.executable, NS_AGENT, "repair", "--journal", str(journal), cwd=REPO, check=False)
    assert json.loads(result.stdout.splitlines()[-1])["repaired"] is True, result.stderr
    assert network.host_route() is None
    assert not journal.exists()
