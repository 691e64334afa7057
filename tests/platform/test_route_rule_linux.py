"""The route rule (platform/route_safety.py) against a real kernel: in the client network of
client_network.py (LAN 198.18.20.0/24 on a veth, gateway 198.18.20.1, server 198.18.21.1 behind
it, tunnel network 198.18.30.0/24) a plan whose routes, peer or address would capture part of the
LAN or the gateway is refused with one sentence before anything is changed (and no journal is
left), by NetConfigurator as root and by sstp-vpn-helper for an ordinary user, and the command
line refuses such an extra route before it connects; a corporate 10.0.0.0/8 beside a LAN on
10.1.2.0/24 is accepted and restored exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.netns import Namespace
from tests.platform.client_network import REPO, Agent, ip_json, route, snapshot, without_qdisc
from tests.platform.test_helper_linux import PLAN, UnprivilegedAgent, _wait_for_state, apply, helper, request, socket_folder  # noqa: F401
from tests.unprivileged import as_nobody

RULE_AGENT = str(Path(__file__).with_name("route_rule_agent.py"))


def rule_agent(ns: Namespace, *arguments: str) -> Agent:
    """route_rule_agent.py in the namespace, driven line by line."""
    return Agent(ns, *arguments, script=RULE_AGENT)


def extra_inside_lan(veth: str) -> str:
    return (
        "The extra route 198.18.20.0/25 lies inside the local network 198.18.20.0/24 (interface "
        f"{veth}), so traffic for those local hosts would go into the VPN; remove the route from the "
        "profile (or --route), or ask the VPN administrator for routes outside 198.18.20.0/24."
    )


def extra_gateway(veth: str) -> str:
    return (
        f"The extra route 198.18.20.1/32 holds this computer's gateway 198.18.20.1 (interface {veth}), so "
        "traffic to the gateway would go into the VPN; remove the route from the profile (or --route)."
    )


def peer_on_lan(veth: str) -> str:
    return (
        "The VPN server gave its end of the tunnel the address 198.18.20.7, which is on the local network "
        f"198.18.20.0/24 (interface {veth}), so traffic for that host would go into the VPN; ask the VPN "
        "administrator for an address pool outside 198.18.20.0/24."
    )


def address_on_lan(veth: str) -> str:
    return (
        "The VPN server gave this computer the address 198.18.20.9, which is on the local network "
        f"198.18.20.0/24 (interface {veth}), so traffic for that host would go into the VPN; ask the VPN "
        "administrator for an address pool outside 198.18.20.0/24."
    )


@pytest.mark.parametrize(
    "arguments, sentence",
    [
        (("--mode", "split", "--route", "198.18.20.0/25"), extra_inside_lan),
        (("--route", "198.18.20.1/32"), extra_gateway),
        (("--peer", "198.18.20.7"), peer_on_lan),
        (("--mode", "split", "--address", "198.18.20.9"), address_on_lan),
    ],
    ids=["extra-half-of-the-lan", "extra-gateway-32", "peer-on-the-lan", "split-address-on-the-lan"],
)
def test_a_plan_that_captures_the_lan_or_the_gateway_is_refused_and_changes_nothing(client_ns, tmp_path, arguments, sentence):
    journal = tmp_path / "journal.json"
    before = snapshot(client_ns)
    agent = rule_agent(client_ns, "--journal", str(journal), *arguments)
    assert agent.next()["event"] == "opened"
    opened = snapshot(client_ns)
    failed = agent.go()
    assert failed == {"event": "failed", "sentence": sentence(client_ns.veth), "journal_exists": False}
    assert snapshot(client_ns) == opened  # not even the link was touched
    assert agent.go() == {"event": "closed"}
    assert snapshot(client_ns) == before


def test_a_corporate_supernet_beside_the_lan_and_the_full_tunnel_are_accepted(client_ns, tmp_path):
    client_ns.run("ip", "addr", "add", "10.1.2.2/24", "dev", client_ns.veth)  # at home on 10.1.2.0/24 too
    journal = tmp_path / "journal.json"
    before = snapshot(client_ns)
    agent = rule_agent(client_ns, "--journal", str(journal), "--route", "10.0.0.0/8")
    tun = agent.next()["ifname"]
    opened = snapshot(client_ns)
    assert agent.go() == {"event": "applied"}
    routes = ip_json(client_ns, "-4", "route", "show", "table", "main")
    assert route(routes, "10.0.0.0/8")["dev"] == tun and route(routes, "0.0.0.0/1")["dev"] == tun
    # The LAN's more specific routes still win: the LANs and the gateway stay local.
    for local in ("10.1.2.7", "198.18.20.7", "198.18.20.1"):
        assert ip_json(client_ns, "route", "get", local)[0]["dev"] == client_ns.veth, local
    assert ip_json(client_ns, "route", "get", "10.9.9.9")[0]["dev"] == tun
    assert json.loads(journal.read_text())["steps"]
    restored = agent.go()
    assert restored == {"event": "restored", "notes": [], "journal_exists": False}
    assert without_qdisc(snapshot(client_ns)) == without_qdisc(opened)
    assert agent.go() == {"event": "closed"}
    assert snapshot(client_ns) == before


def test_the_snapshot_holds_the_attached_networks_and_the_default_gateways(client_ns, tmp_path):
    veth = client_ns.veth
    client_ns.run("ip", "route", "add", "203.0.113.5/32", "dev", veth)  # connected: no gateway, link scope
    client_ns.run("ip", "route", "add", "203.0.113.0/24", "via", "198.18.20.1")  # has a gateway: not attached
    client_ns.run("ip", "-6", "route", "add", "fd00:5::/64", "dev", veth)  # IPv6 routes carry no scope
    agent = rule_agent(client_ns, "--journal", str(tmp_path / "journal.json"))
    opened = agent.next()
    # Each once, though the kernel's connected routes repeat the address networks.
    assert sorted(opened["attached"]) == sorted(
        [
            "127.0.0.0/8 lo",
            "::1/128 lo",
            f"198.18.20.0/24 {veth}",
            f"2001:db8:20::/64 {veth}",
            f"fe80::/64 {veth}",
            f"203.0.113.5/32 {veth}",
            f"fd00:5::/64 {veth}",
        ]
    )
    assert sorted(opened["gateways"]) == [f"198.18.20.1 {veth}", f"2001:db8:20::1 {veth}"]
    agent.proc.stdin.close()
    agent.proc.wait(10)


def test_the_command_line_says_so_before_connecting(client_ns):
    """The runner checks the routes it knows (here the extra route) before it connects, so the user
    reads the sentence without the server ever being contacted (as nobody: nothing else happens)."""
    cli = [
        sys.executable,
        "-m",
        "sstpvpn.client.cli",
        "connect",
        "198.18.21.1",
        "--user",
        "alice",
        "--password-stdin",
        "--no-default-route",
        "--route",
        "198.18.20.0/25",
    ]
    result = client_ns.run(*as_nobody(cli), input="pw\n", check=False, cwd=REPO, timeout=60)
    assert result.returncode == 1, result
    assert result.stderr == f"sstp-vpn: {extra_inside_lan(client_ns.veth)}\n"
    assert "Connecting to" not in result.stdout


# -- through sstp-vpn-helper, as an ordinary user ------------------------------------------------------


@pytest.mark.parametrize(
    "fields, sentence",
    [
        (dict(full_tunnel=False, plan=PLAN, extra_routes=["198.18.20.1/32"]), extra_gateway),
        (dict(full_tunnel=True, plan={**PLAN, "peer": "198.18.20.7"}), peer_on_lan),
        (dict(full_tunnel=False, plan={**PLAN, "address": "198.18.20.9"}), address_on_lan),
    ],
    ids=["extra-gateway-32", "peer-on-the-lan", "split-address-on-the-lan"],
)
def test_the_helper_refuses_a_capturing_plan_and_changes_nothing(client_ns, helper, fields, sentence):
    before = snapshot(client_ns)
    agent = UnprivilegedAgent(client_ns, "raw", "--socket", helper.socket)
    agent.send(request(request="open", ifname=None))
    opened = agent.next()
    assert opened["reply"]["ok"] is True and opened["fds"] == 1, opened
    state = snapshot(client_ns)
    agent.send(apply(ifname=opened["reply"]["ifname"], server="198.18.21.1", **fields))
    assert agent.next() == {"reply": {"ok": False, "error": sentence(client_ns.veth)}, "fds": 0}
    assert snapshot(client_ns) == state
    assert not helper.journal.exists()
    agent.finish()
    _wait_for_state(client_ns, before)


CLIENT = """
import ipaddress, sys
from sstpvpn.client.core.events import NetworkPlan
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.helper_client import PrivilegedNetwork
network = PrivilegedNetwork(sys.argv[1])
tun = network.open_tun()
config = network.configurator(tun.name, ipaddress.ip_address("198.18.21.1"), full_tunnel=False,
                              extra_routes=(ipaddress.ip_network("198.18.20.0/25"),))
try:
    config.apply(NetworkPlan(address=ipaddress.IPv4Address("198.18.30.10"), peer=None, mtu=1400))
except PlatformError as error:
    print(error.sentence)
tun.close()
"""


def test_the_helpers_sentence_reaches_the_user_unchanged(client_ns, helper):
    before = snapshot(client_ns)
    result = client_ns.run(*as_nobody([sys.executable, "-c", CLIENT, helper.socket]), cwd=REPO, timeout=60)
    assert result.stdout.strip() == extra_inside_lan(client_ns.veth), result.stderr
    _wait_for_state(client_ns, before)
