"""The Linux kill switch (kill_switch_linux): the ruleset it builds, and the real table in network
namespaces this test creates, proven with real traffic between them.

The client namespace has a "physical" veth to an upstream namespace (the gateway, a DNS server's
address, a LAN address, the VPN server behind the gateway) and a "tunnel" veth called sstp0 to a
VPN peer namespace. Listeners on the far sides report every TCP connection and datagram that
arrives, so "dropped" means that nothing arrived, not merely that the client saw an error.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from sstpvpn.platform import kill_switch_linux as nft
from sstpvpn.platform.kill_switch import AllowedEndpoint, KillSwitchRules
from tests.netns import Namespace, veth_pair
from tests.realparts import require_program, require_root

AGENT = str(Path(__file__).with_name("kill_switch_agent.py"))
REPO = str(Path(__file__).resolve().parents[2])
SERVER = "198.18.21.1"  # behind the gateway, on the upstream namespace's loopback
GATEWAY = "198.18.20.1"
LOCAL_DNS = "198.18.20.53"
GATEWAY6 = "2001:db8:20::1"
LAN_HOST = "192.168.77.1"
PEER = "198.18.30.1"  # the VPN's end of the tunnel


def _endpoint(address: str, port: int) -> AllowedEndpoint:
    import ipaddress

    return AllowedEndpoint(ipaddress.ip_address(address), port)


# -- the ruleset (pure) ---------------------------------------------------------------------------


def _rules_of(document: dict) -> list[tuple[str, list]]:
    return [(item["add"]["rule"]["chain"], item["add"]["rule"]["expr"]) for item in document["nftables"] if "rule" in item.get("add", {})]


def test_the_ruleset_replaces_the_whole_table_in_one_document():
    document = nft.ruleset(KillSwitchRules((_endpoint(SERVER, 443),), ("sstp0",)))
    commands = document["nftables"]
    table = {"family": "inet", "name": "sstpvpn"}
    # The table and chains where missing, the old rules flushed, the new ones added: one transaction,
    # and the chains (with their hooks and policy) never go away while the rules are replaced.
    assert commands[1] == {"add": {"table": table}} and commands[5] == {"flush": {"table": table}}
    assert not any("delete" in item for item in commands)
    chains = [item["add"]["chain"] for item in commands[2:5]]
    assert [(c["name"], c["hook"], c["policy"], c["family"]) for c in chains] == [
        ("output", "output", "drop", "inet"),
        ("input", "input", "drop", "inet"),
        ("forward", "forward", "drop", "inet"),
    ]
    assert all(expr[-1] == {"accept": None} for _chain, expr in _rules_of(document))  # accepts only: the policy drops
    json.dumps(document)  # plain JSON for nft -j


def test_the_ruleset_lets_through_exactly_the_tunnels_loopback_endpoints_dhcp_and_nd():
    rules = KillSwitchRules((_endpoint(SERVER, 443), _endpoint("2001:db8::5", 8443)), ("sstp0", "sstp1"))
    accepted = _rules_of(nft.ruleset(rules))
    matches = [(chain, [json.dumps(e["match"], sort_keys=True) for e in expr if "match" in e]) for chain, expr in accepted]
    text = json.dumps(accepted)
    assert (
        "output",
        [json.dumps({"left": {"meta": {"key": "oifname"}}, "op": "==", "right": {"set": ["lo", "sstp0", "sstp1"]}}, sort_keys=True)],
    ) in matches
    assert (
        "input",
        [json.dumps({"left": {"meta": {"key": "iifname"}}, "op": "==", "right": {"set": ["lo", "sstp0", "sstp1"]}}, sort_keys=True)],
    ) in matches
    ipv4_out = [m for c, m in matches if c == "output" and '"daddr"' in " ".join(m) and SERVER in " ".join(m)]
    assert len(ipv4_out) == 1 and '"protocol": "ip"' in ipv4_out[0][0] and '"right": 443' in ipv4_out[0][1]
    ipv6_in = [m for c, m in matches if c == "input" and "2001:db8::5" in " ".join(m)]
    assert len(ipv6_in) == 1 and '"protocol": "ip6"' in ipv6_in[0][0] and '"sport"' in ipv6_in[0][1] and "established" in ipv6_in[0][2]
    for client, server in ((68, 67), (546, 547)):
        assert any(c == "output" and f'"right": {client}' in m[0] and f'"right": {server}' in m[1] for c, m in matches)
        assert any(c == "input" and f'"right": {server}' in m[0] and f'"right": {client}' in m[1] for c, m in matches)
    assert text.count("[133, 134, 135, 136]") == 2  # ND both ways
    # Nothing else: no LAN, no port 53, no other address.
    assert "10.0.0.0" not in text and "fe80::" not in text and '"right": 53' not in text
    # What the machine routes for others: only into or out of a tunnel.
    assert (
        "forward",
        [json.dumps({"left": {"meta": {"key": "iifname"}}, "op": "==", "right": {"set": ["sstp0", "sstp1"]}}, sort_keys=True)],
    ) in matches
    assert (
        "forward",
        [json.dumps({"left": {"meta": {"key": "oifname"}}, "op": "==", "right": {"set": ["sstp0", "sstp1"]}}, sort_keys=True)],
    ) in matches
    assert len(accepted) == 2 + 2 + 2 * 2 + 2 * 2 + 2 + 1


def test_allow_lan_drops_dns_then_adds_the_local_ranges_of_both_families():
    without = _rules_of(nft.ruleset(KillSwitchRules(())))
    with_lan = _rules_of(nft.ruleset(KillSwitchRules((), allow_lan=True)))
    added = [rule for rule in with_lan if rule not in without]
    assert with_lan[: len(without)] == without  # after the tunnels, endpoints, DHCP and ND
    # DNS first (a resolver on the LAN would see every name), then the LAN: out, in, and routed to it.
    assert [(chain, expr[-1]) for chain, expr in added[:2]] == [("output", {"drop": None}), ("forward", {"drop": None})]
    assert all('"right": 53' in json.dumps(expr) for _chain, expr in added[:2])
    assert [chain for chain, _ in added[2:]] == ["output", "input", "forward"] * 2
    assert all(expr[-1] == {"accept": None} for _chain, expr in added[2:])
    assert all('"daddr"' in json.dumps(expr) for chain, expr in added[2:] if chain == "forward")  # never by a source address
    text = json.dumps(added)
    for network in ("10.0.0.0", "172.16.0.0", "192.168.0.0", "169.254.0.0", "224.0.0.0", "fc00::", "fe80::", "ff00::"):
        assert text.count(f'"addr": "{network}"') == 3
    assert text.count('"255.255.255.255"') == 3


def test_no_endpoints_and_no_tunnel_leaves_loopback_only():
    accepted = _rules_of(nft.ruleset(KillSwitchRules(())))
    assert accepted[0] == ("output", [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "lo"}}, {"accept": None}])
    assert "tcp" not in json.dumps(accepted)


def test_removal_deletes_the_table_whether_it_is_there_or_not():
    table = {"family": "inet", "name": "sstpvpn"}
    assert nft.removal()["nftables"][1:] == [{"add": {"table": table}}, {"delete": {"table": table}}]


def test_a_missing_nft_is_one_sentence_saying_what_to_install(monkeypatch):
    monkeypatch.setattr(nft.shutil, "which", lambda _name: None)
    monkeypatch.setattr(nft.os, "access", lambda _path, _mode: False)
    with pytest.raises(nft.PlatformError) as missing:
        nft.NftKillSwitch(Path("/nonexistent/journal.json")).set(KillSwitchRules(()))
    assert missing.value.sentence == nft.nft_missing_sentence()
    assert "install the package nftables" in missing.value.sentence


# -- the real table -----------------------------------------------------------------------------------


@dataclass
class Network:
    client: Namespace
    upstream: Namespace
    peer: Namespace
    journal: Path
    heard: dict[str, Path]  # namespace name -> the listener's event file

    def events(self, where: str) -> list[dict]:
        return [json.loads(line) for line in self.heard[where].read_text().splitlines() if line.strip()]


def _agent(ns: Namespace, *arguments: str, **options) -> subprocess.Popen:
    options.setdefault("stdout", subprocess.PIPE)
    options.setdefault("stderr", subprocess.PIPE)
    return ns.popen(sys.executable, AGENT, *arguments, text=True, cwd=REPO, **options)


def _line(proc: subprocess.Popen) -> dict:
    line = proc.stdout.readline()
    if not line:
        proc.wait(10)
        raise AssertionError(f"the agent ended early: {proc.stderr.read()}")
    return json.loads(line)


def probe(ns: Namespace, *targets: str) -> dict:
    arguments = []
    for target in targets:
        kind, address = target.split(" ", 1)
        arguments += [f"--{kind}", address]
    result = ns.run(sys.executable, AGENT, "probe", *arguments, cwd=REPO, timeout=60)
    return json.loads(result.stdout.splitlines()[-1])


def tables(ns: Namespace) -> list[str]:
    listing = json.loads(ns.run("nft", "-j", "list", "tables").stdout)["nftables"]
    return [f"{item['table']['family']} {item['table']['name']}" for item in listing if "table" in item]


def ruleset_text(ns: Namespace) -> str:
    return ns.run("nft", "list", "ruleset").stdout


def _wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come within {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def network(tmp_path):
    require_root("network namespaces and nftables")
    require_program("ip", "apt-get install iproute2")
    require_program("nft", "apt-get install nftables")
    with Namespace("sstpks") as client, Namespace("sstpks") as upstream, Namespace("sstpks") as peer:
        for ns in (client, upstream, peer):
            ns.run("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
        client_if, upstream_if = veth_pair(client, "198.18.20.2", upstream, GATEWAY)
        client.run("ip", "addr", "add", "192.168.77.2/24", "dev", client_if)
        upstream.run("ip", "addr", "add", f"{LAN_HOST}/24", "dev", upstream_if)
        upstream.run("ip", "addr", "add", f"{LOCAL_DNS}/24", "dev", upstream_if)
        client.run("ip", "-6", "addr", "add", "2001:db8:20::2/64", "dev", client_if, "nodad")
        upstream.run("ip", "-6", "addr", "add", f"{GATEWAY6}/64", "dev", upstream_if, "nodad")
        upstream.run("ip", "addr", "add", f"{SERVER}/32", "dev", "lo")
        client.run("ip", "route", "add", "default", "via", GATEWAY)
        # The "tunnel": a veth named like ours, to the VPN peer.
        subprocess.run(
            ["ip", "link", "add", "sstp0", "netns", client.name, "type", "veth", "peer", "name", "vpnpeer0", "netns", peer.name], check=True
        )
        client.run("ip", "addr", "add", "198.18.30.10/24", "dev", "sstp0")
        peer.run("ip", "addr", "add", f"{PEER}/24", "dev", "vpnpeer0")
        client.run("ip", "link", "set", "sstp0", "up")
        peer.run("ip", "link", "set", "vpnpeer0", "up")
        heard = {}
        for name, ns in (("upstream", upstream), ("peer", peer)):
            heard[name] = tmp_path / f"{name}.events"
            with open(heard[name], "w") as events:
                listener = _agent(ns, "listen", "--tcp", "443", "--tcp", "80", *(f"--udp={port}" for port in (53, 9, 67, 547, 5353)), stdout=events)
            _wait_for(lambda path=heard[name], process=listener: path.read_text().strip() or process.poll() is not None, f"the {name} listener")
            assert listener.poll() is None, listener.stderr.read()
        yield Network(client, upstream, peer, tmp_path / "journal-kill-switch.json", heard)
        client.run("nft", "flush", "ruleset", check=False)


ALL_TARGETS = (
    f"tcp {SERVER}:443",  # the VPN server: allowed
    f"tcp {SERVER}:80",  # the server's address, another port
    f"tcp {GATEWAY}:80",
    f"tcp [{GATEWAY6}]:443",  # an IPv6 endpoint on the link (needs neighbour discovery)
    f"tcp [{GATEWAY6}]:80",
    f"tcp {LAN_HOST}:80",
    f"tcp {PEER}:443",  # through the tunnel
    f"udp {LOCAL_DNS}:53",  # DNS to the local network's server
    f"udp {PEER}:53",  # DNS through the tunnel
    f"udp 68>{GATEWAY}:67",  # DHCPv4, client to server: allowed
    f"udp [{GATEWAY6}]:547",  # DHCPv6's server port, but not from the client port
    f"udp 546>[{GATEWAY6}]:547",  # DHCPv6, client to server: allowed
    f"udp {GATEWAY}:5353",  # any other UDP on the link
)


def _own(network: Network, *extra: str) -> subprocess.Popen:
    return _agent(
        network.client,
        "own",
        "--journal",
        str(network.journal),
        "--endpoint",
        f"{SERVER}:443",
        "--endpoint",
        f"[{GATEWAY6}]:443",
        "--tunnel",
        "sstp0",
        *extra,
        stdin=subprocess.PIPE,
    )


def test_only_the_endpoints_the_tunnel_and_loopback_pass(network):
    before = probe(network.client, *ALL_TARGETS)
    assert set(before.values()) <= {"connected", "sent"}, before  # without the kill switch all of it goes out
    _wait_for(lambda: sum(e["event"] == "udp" for e in network.events("upstream")) == 5, "the datagrams")
    heard_before = len(network.events("upstream"))

    owner = _own(network)
    assert _line(owner) == {"event": "set"}
    assert tables(network.client) == ["inet sstpvpn"]
    network.client.run("ip", "-6", "neigh", "flush", "all")  # IPv6 must find its neighbour anew, through the rules
    during = probe(network.client, *ALL_TARGETS)
    assert during[f"tcp {SERVER}:443"] == "connected"
    assert during[f"tcp [{GATEWAY6}]:443"] == "connected"
    assert during[f"tcp {PEER}:443"] == "connected"
    assert during[f"udp {PEER}:53"] == "sent"
    for blocked in (f"tcp {SERVER}:80", f"tcp {GATEWAY}:80", f"tcp [{GATEWAY6}]:80", f"tcp {LAN_HOST}:80"):
        assert during[blocked] != "connected", (blocked, during)
    assert during[f"udp {LOCAL_DNS}:53"] == "PermissionError"
    assert during[f"udp [{GATEWAY6}]:547"] == during[f"udp {GATEWAY}:5353"] == "PermissionError"
    assert during[f"udp 68>{GATEWAY}:67"] == during[f"udp 546>[{GATEWAY6}]:547"] == "sent"
    time.sleep(0.5)  # anything that did leak has arrived by now
    arrived = network.events("upstream")[heard_before:]
    assert sorted((e["event"], e["port"], e.get("local", e["peer"])) for e in arrived) == sorted(
        [("tcp", 443, GATEWAY6), ("tcp", 443, SERVER), ("udp", 67, "198.18.20.2"), ("udp", 547, "2001:db8:20::2")]
    )
    assert [(e["event"], e["port"]) for e in network.events("peer")[-2:]] == [("tcp", 443), ("udp", 53)]

    owner.stdin.write("remove\n")
    owner.stdin.flush()
    assert _line(owner) == {"event": "removed"}
    owner.wait(10)
    assert tables(network.client) == [] and ruleset_text(network.client).strip() == ""
    assert not network.journal.exists()
    assert set(probe(network.client, f"tcp {GATEWAY}:80", f"udp {LOCAL_DNS}:53").values()) == {"connected", "sent"}


def test_allow_lan_lets_the_local_network_through_and_nothing_more(network):
    owner = _own(network, "--allow-lan")
    assert _line(owner) == {"event": "set"}
    during = probe(network.client, f"tcp {LAN_HOST}:80", f"tcp {GATEWAY}:80", f"udp {LOCAL_DNS}:53", f"udp {LAN_HOST}:53", f"udp {PEER}:53")
    assert during == {
        f"tcp {LAN_HOST}:80": "connected",
        f"tcp {GATEWAY}:80": "TimeoutError",
        f"udp {LOCAL_DNS}:53": "PermissionError",
        f"udp {LAN_HOST}:53": "PermissionError",  # a resolver on the LAN: still no DNS outside the VPN
        f"udp {PEER}:53": "sent",  # through the tunnel
    }
    owner.stdin.close()
    assert _line(owner) == {"event": "removed"}


def test_replacing_the_rules_never_lets_a_packet_through(network):
    owner = _own(network)
    assert _line(owner) == {"event": "set"}
    flood = _agent(network.client, "flood", "--udp-target", f"{LOCAL_DNS}:9", "--seconds", "4")
    assert _line(flood) == {"event": "flooding"}
    owner.stdin.write("replace 40\n")
    owner.stdin.flush()
    assert _line(owner) == {"event": "replaced", "count": 40}
    flooded = _line(flood)
    assert flooded["refused"] > 1000 and flooded["sent"] == 0, flooded  # the whole time, every datagram was dropped
    time.sleep(0.3)
    assert [e for e in network.events("upstream") if e.get("port") == 9] == []
    owner.stdin.close()
    assert _line(owner) == {"event": "removed"}
    assert tables(network.client) == []


def _repair_in(ns: Namespace, journal: Path) -> list[str]:
    code = (
        "import json; from pathlib import Path; from sstpvpn.platform.kill_switch_linux import repair_kill_switch; "
        f"print(json.dumps(repair_kill_switch(Path({str(journal)!r}))))"
    )
    return json.loads(ns.run(sys.executable, "-c", code, cwd=REPO, timeout=60).stdout)


def test_a_crashed_owner_leaves_the_table_blocking_until_repair_and_a_live_one_is_left_alone(network):
    owner = _own(network)
    assert _line(owner) == {"event": "set"}
    second = _own(network)
    failed = _line(second)
    assert failed == {"event": "failed", "sentence": nft.busy_sentence()}
    assert _repair_in(network.client, network.journal) == []  # a live session's kill switch
    assert tables(network.client) == ["inet sstpvpn"]

    os.kill(owner.pid, signal.SIGKILL)  # ip netns exec execs the agent: this is its process
    owner.wait(10)
    assert tables(network.client) == ["inet sstpvpn"]  # fail closed
    assert probe(network.client, f"udp {LOCAL_DNS}:53") == {f"udp {LOCAL_DNS}:53": "PermissionError"}
    assert json.loads(network.journal.read_text())["steps"] == [{"op": "nft_table", "family": "inet", "name": "sstpvpn"}]

    assert _repair_in(network.client, network.journal) == [nft.removed_sentence()]
    assert tables(network.client) == [] and not network.journal.exists()
    assert _repair_in(network.client, network.journal) == []


def test_repair_removes_a_table_no_journal_speaks_of(network):
    nft_document = json.dumps(nft.ruleset(KillSwitchRules(())))
    network.client.run("nft", "-j", "-f", "-", input=nft_document)
    assert tables(network.client) == ["inet sstpvpn"]
    assert _repair_in(network.client, network.journal) == [nft.removed_sentence()]
    assert tables(network.client) == []


def test_a_new_owner_replaces_a_dead_owners_table(network):
    owner = _own(network)
    assert _line(owner) == {"event": "set"}
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait(10)
    successor = _own(network, "--allow-lan")
    assert _line(successor) == {"event": "set"}
    assert "192.168.0.0/16" in ruleset_text(network.client)
    successor.stdin.close()
    assert _line(successor) == {"event": "removed"}
    assert tables(network.client) == [] and not network.journal.exists()


def test_repair_everything_as_root_removes_a_leftover_table_and_a_tunnel_nobody_holds(network):
    network.client.run("nft", "-j", "-f", "-", input=json.dumps(nft.ruleset(KillSwitchRules(()))))
    network.client.run("ip", "tuntap", "add", "dev", "sstp7", "mode", "tun")  # persistent, held by no process
    network.client.run("ip", "tuntap", "add", "dev", "other7", "mode", "tun")  # not named like ours
    code = "import json; from sstpvpn.platform import current; print(json.dumps(current.repair_everything()))"
    notes = json.loads(network.client.run(sys.executable, "-c", code, cwd=REPO, timeout=60).stdout)
    assert notes == [nft.removed_sentence(), "Removed the tunnel interface sstp7 that an ended sstp-vpn left."]
    assert tables(network.client) == []
    links = network.client.run("ip", "-br", "link").stdout
    assert "sstp7" not in links and "other7" in links and "sstp0" in links  # a veth of that name is no TUN
    assert json.loads(network.client.run(sys.executable, "-c", code, cwd=REPO, timeout=60).stdout) == []
    # The lock file root's repair took in /var/lib/sstp-vpn for this namespace: the test's own.
    where = "from sstpvpn.platform.journal import kill_switch_journal_path; print(kill_switch_journal_path())"
    journal = Path(network.client.run(sys.executable, "-c", where, cwd=REPO, timeout=60).stdout.strip())
    assert not journal.exists()
    journal.with_name(journal.name + ".lock").unlink(missing_ok=True)


def test_open_kill_switch_is_this_process_as_root_and_the_helper_otherwise(monkeypatch):
    from sstpvpn.platform import current
    from sstpvpn.platform.helper_client import HelperKillSwitch

    monkeypatch.setattr(current, "uses_network_helper", lambda: False)
    assert isinstance(current.open_kill_switch(), nft.NftKillSwitch)
    monkeypatch.setattr(current, "uses_network_helper", lambda: True)
    assert isinstance(current.open_kill_switch(), HelperKillSwitch)  # connects at its first set()
