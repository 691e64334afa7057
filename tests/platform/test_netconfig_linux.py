"""The Linux platform layer against a real kernel, inside network namespaces the tests create
(the client network is described in client_network.py). The code under test runs in the client
namespace through tests/platform/ns_agent.py; the test looks at the namespace from outside.
"""

from __future__ import annotations

import json
import os
import signal

from tests.platform.client_network import (
    GATEWAY,
    RESOLV_CONF,
    SERVER_BEHIND_GATEWAY,
    SERVER_ON_LINK,
    Agent,
    ip_json,
    route,
    run_agent,
    snapshot,
    without_qdisc,
)
from tests.realparts import require_program


def test_full_tunnel_applies_routes_and_dns_and_restores_exactly(client_ns, tmp_path):
    journal = tmp_path / "journal.json"
    before = snapshot(client_ns)
    resolv_inode = os.stat(client_ns.etc / "resolv.conf").st_ino
    agent = Agent(client_ns, "session", "--server", SERVER_BEHIND_GATEWAY, "--journal", str(journal))
    tun = agent.next()["ifname"]
    assert tun.startswith("sstp")
    opened = snapshot(client_ns)

    applied = agent.go()
    assert applied["event"] == "applied", applied
    assert applied["mtu"] == 1400
    during = snapshot(client_ns)
    routes = ip_json(client_ns, "-4", "route", "show", "table", "main")
    assert route(routes, SERVER_BEHIND_GATEWAY) == {
        "dst": SERVER_BEHIND_GATEWAY,
        "gateway": GATEWAY,
        "dev": client_ns.veth,
        "protocol": "static",
        "flags": [],
    }
    assert route(routes, "0.0.0.0/1")["dev"] == tun
    assert route(routes, "128.0.0.0/1")["dev"] == tun
    assert route(routes, "default") == {"dst": "default", "gateway": GATEWAY, "dev": client_ns.veth, "flags": []}
    routes6 = ip_json(client_ns, "-6", "route", "show", "table", "main")
    assert route(routes6, "::/1")["dev"] == tun and route(routes6, "8000::/1")["dev"] == tun
    tun_link = next(link for link in during["addresses"] if link["ifname"] == tun)
    assert tun_link["mtu"] == 1400 and "UP" in tun_link["flags"]
    inet = [a for a in tun_link["addr_info"] if a["family"] == "inet"]
    assert inet == [{**inet[0], "local": "198.18.30.10", "address": "198.18.30.1", "prefixlen": 32}]
    # Traffic to the server keeps using the physical path; everything else enters the tunnel.
    assert ip_json(client_ns, "route", "get", SERVER_BEHIND_GATEWAY)[0]["dev"] == client_ns.veth
    assert ip_json(client_ns, "route", "get", "198.18.99.1")[0]["dev"] == tun
    resolv = during["resolv.conf"].decode()
    assert [line for line in resolv.splitlines() if line.startswith("nameserver")] == ["nameserver 198.18.30.1"]
    assert "search home.test" in resolv and "options edns0" in resolv
    assert os.stat(client_ns.etc / "resolv.conf").st_ino == resolv_inode  # written in place
    assert json.loads(journal.read_text())["steps"]

    restored = agent.go()
    assert restored["event"] == "restored"
    assert restored["notes"] == [] and restored["second_notes"] == []
    assert restored["mtu"] == 1500 and not restored["journal_exists"]
    assert without_qdisc(snapshot(client_ns)) == without_qdisc(opened)

    assert agent.go()["event"] == "closed"
    assert snapshot(client_ns) == before
    assert os.stat(client_ns.etc / "resolv.conf").st_ino == resolv_inode
    print(f"apply {applied['seconds'] * 1000:.1f} ms, restore {restored['seconds'] * 1000:.1f} ms")


def test_full_tunnel_to_a_server_on_the_local_link_adds_no_host_route(client_ns, tmp_path):
    before = snapshot(client_ns)
    agent = Agent(client_ns, "session", "--server", SERVER_ON_LINK, "--journal", str(tmp_path / "j.json"))
    tun = agent.next()["ifname"]
    assert agent.go()["event"] == "applied"
    routes = ip_json(client_ns, "-4", "route", "show", "table", "main")
    assert route(routes, SERVER_ON_LINK) is None
    assert route(routes, "0.0.0.0/1")["dev"] == tun
    assert ip_json(client_ns, "route", "get", SERVER_ON_LINK)[0]["dev"] == client_ns.veth
    assert agent.go()["event"] == "restored"
    assert agent.go()["event"] == "closed"
    assert snapshot(client_ns) == before


def test_split_tunnel_routes_only_the_vpn_network(client_ns, tmp_path):
    before = snapshot(client_ns)
    agent = Agent(client_ns, "session", "--mode", "split", "--journal", str(tmp_path / "j.json"))
    tun = agent.next()["ifname"]
    assert agent.go()["event"] == "applied"
    during = snapshot(client_ns)
    routes = ip_json(client_ns, "-4", "route", "show", "table", "main")
    assert route(routes, "198.18.30.0/24")["dev"] == tun
    assert route(routes, "0.0.0.0/1") is None and route(routes, "128.0.0.0/1") is None
    assert route(routes, SERVER_BEHIND_GATEWAY) is None  # not captured by the tunnel: no host route
    assert route(routes, "default") == {"dst": "default", "gateway": GATEWAY, "dev": client_ns.veth, "flags": []}
    # Into the tunnel over IPv6 only the kernel's own link-local routes.
    assert {r.get("protocol") for r in during["routes6"] if r.get("dev") == tun} == {"kernel"}
    assert during["resolv.conf"] == RESOLV_CONF  # a plain file cannot do split DNS: left alone
    assert ip_json(client_ns, "route", "get", "198.18.30.77")[0]["dev"] == tun
    assert ip_json(client_ns, "route", "get", "198.18.99.1")[0]["dev"] == client_ns.veth
    assert agent.go()["event"] == "restored"
    assert agent.go()["event"] == "closed"
    assert snapshot(client_ns) == before


def test_extra_routes_enter_the_tunnel_and_the_vpn_dns_can_be_left_out(client_ns, tmp_path):
    before = snapshot(client_ns)
    agent = Agent(
        client_ns,
        "session",
        "--mode",
        "split",
        "--route",
        "198.18.99.0/24",
        "--route",
        "fd00:1::/64",
        "--no-vpn-dns",
        "--journal",
        str(tmp_path / "j.json"),
    )
    tun = agent.next()["ifname"]
    assert agent.go()["event"] == "applied"
    during = snapshot(client_ns)
    assert route(ip_json(client_ns, "-4", "route", "show", "table", "main"), "198.18.99.0/24")["dev"] == tun
    assert route(ip_json(client_ns, "-6", "route", "show", "table", "main"), "fd00:1::/64")["dev"] == tun
    assert ip_json(client_ns, "route", "get", "198.18.99.1")[0]["dev"] == tun
    assert ip_json(client_ns, "route", "get", "198.18.98.1")[0]["dev"] == client_ns.veth
    assert during["resolv.conf"] == RESOLV_CONF  # this machine's DNS kept, as asked
    assert agent.go()["event"] == "restored"
    assert agent.go()["event"] == "closed"
    assert snapshot(client_ns) == before


def test_full_tunnel_without_the_vpn_dns_keeps_resolv_conf(client_ns, tmp_path):
    agent = Agent(client_ns, "session", "--server", SERVER_BEHIND_GATEWAY, "--no-vpn-dns", "--journal", str(tmp_path / "j.json"))
    tun = agent.next()["ifname"]
    assert agent.go()["event"] == "applied"
    assert route(ip_json(client_ns, "-4", "route", "show", "table", "main"), "0.0.0.0/1")["dev"] == tun
    assert snapshot(client_ns)["resolv.conf"] == RESOLV_CONF
    assert agent.go()["event"] == "restored"
    assert agent.go()["event"] == "closed"


def test_a_killed_client_is_repaired_on_the_next_start(client_ns, tmp_path):
    journal = tmp_path / "journal.json"
    before = snapshot(client_ns)
    agent = Agent(client_ns, "session", "--journal", str(journal))
    agent.next()
    assert agent.go()["event"] == "applied"
    assert snapshot(client_ns)["resolv.conf"] != RESOLV_CONF
    os.kill(agent.proc.pid, signal.SIGKILL)
    agent.proc.wait(10)
    left = snapshot(client_ns)
    assert route(left["routes"], SERVER_BEHIND_GATEWAY) is not None  # the TUN took only its own routes

    repaired = run_agent(client_ns, "repair", "--journal", str(journal))
    assert repaired["repaired"] is True
    assert snapshot(client_ns) == before
    assert not journal.exists()
    assert run_agent(client_ns, "repair", "--journal", str(journal))["repaired"] is False
    print(f"repair {repaired['seconds'] * 1000:.1f} ms")


def test_a_new_client_with_the_same_interface_name_repairs_only_the_old_changes(client_ns, tmp_path):
    journal = tmp_path / "journal.json"
    before = snapshot(client_ns)
    first = Agent(client_ns, "session", "--ifname", "sstp7", "--journal", str(journal))
    first.next()
    assert first.go()["event"] == "applied"
    os.kill(first.proc.pid, signal.SIGKILL)
    first.proc.wait(10)

    # The next client gets the same name, applies (which repairs the stale journal first) and
    # must end up with a working configuration, then a clean restore.
    second = Agent(client_ns, "session", "--ifname", "sstp7", "--journal", str(journal))
    assert second.next()["ifname"] == "sstp7"
    assert second.go()["event"] == "applied"
    routes = ip_json(client_ns, "-4", "route", "show", "table", "main")
    assert route(routes, "0.0.0.0/1")["dev"] == "sstp7"
    assert route(routes, SERVER_BEHIND_GATEWAY)["gateway"] == GATEWAY
    assert [line for line in (client_ns.etc / "resolv.conf").read_text().splitlines() if line.startswith("nameserver")] == ["nameserver 198.18.30.1"]
    assert second.go()["notes"] == []
    assert second.go()["event"] == "closed"
    assert snapshot(client_ns) == before


def test_resolv_conf_changed_by_another_program_is_left_alone(client_ns, tmp_path):
    agent = Agent(client_ns, "session", "--journal", str(tmp_path / "j.json"))
    agent.next()
    assert agent.go()["event"] == "applied"
    theirs = b"nameserver 198.18.20.99\n"
    (client_ns.etc / "resolv.conf").write_bytes(theirs)
    restored = agent.go()
    assert restored["notes"] == ["/etc/resolv.conf was changed by another program while the VPN was connected; it was left as that program wrote it."]
    assert (client_ns.etc / "resolv.conf").read_bytes() == theirs
    assert route(ip_json(client_ns, "-4", "route", "show"), "0.0.0.0/1") is None
    agent.go()


def test_packets_flow_through_the_tunnel_in_both_directions(client_ns, tmp_path):
    before = snapshot(client_ns)
    result = run_agent(client_ns, "packets", "--journal", str(tmp_path / "j.json"))
    single = {p["payload"]: p for p in result["single"]}
    assert single["to-peer"]["dst"] == "198.18.30.1" and single["to-peer"]["src"] == "198.18.30.10"
    assert single["to-peer"]["dport"] == 9 and single["to-peer"]["checksum_ok"]
    assert single["to-elsewhere"]["dst"] == "198.18.99.1"
    assert result["received"] == {"payload": "from-peer", "source": ["198.18.30.1", 9]}
    assert result["batch_read"] == list(range(10000, 10100))
    assert result["batch_written"] == [f"batch-{i}" for i in range(100)]
    assert result["dropped"] == 0
    assert result["dropped_after_garbage"] == 1 and result["after_garbage"] == "after"
    assert result["empty_read"] == 0
    assert snapshot(client_ns) == before
    print(f"100 packets read in {result['batch_read_seconds'] * 1000:.1f} ms, written and received in {result['batch_write_seconds'] * 1000:.1f} ms")


def test_without_net_admin_the_user_reads_one_sentence(client_ns, tmp_path):
    require_program("setpriv", "apt-get install util-linux")
    drop = ("setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin")
    opened = run_agent(client_ns, "open-tun", prefix=drop)
    assert opened == {"error": "Creating the tunnel interface needs administrator rights: run sstp-vpn as root (or give it CAP_NET_ADMIN)."}
    journal = tmp_path / "j.json"
    before = snapshot(client_ns)
    configured = run_agent(client_ns, "configure", "--ifname", "lo", "--journal", str(journal), prefix=drop)
    assert configured == {
        "error": "Configuring the network for the VPN needs administrator rights: run sstp-vpn as root (or give it CAP_NET_ADMIN).",
        "journal_exists": False,
    }
    assert snapshot(client_ns) == before


def test_a_missing_tun_device_is_one_sentence(client_ns, tmp_path):
    result = run_agent(client_ns, "open-tun", "--device", str(tmp_path / "no-such-tun"))
    assert result == {
        "error": f"{tmp_path / 'no-such-tun'} is missing, so no tunnel interface can be "
        "created: load the kernel module with 'modprobe tun' (in a container, "
        "pass the device in)."
    }


def test_a_vanished_interface_is_one_sentence(client_ns, tmp_path):
    result = run_agent(client_ns, "configure", "--ifname", "sstp-gone", "--journal", str(tmp_path / "j.json"))
    assert result == {"error": "The tunnel interface sstp-gone does not exist (any more); reconnect.", "journal_exists": False}


def test_a_second_vpn_owning_the_half_defaults_is_refused_and_nothing_is_left(client_ns, tmp_path):
    client_ns.run("ip", "route", "add", "128.0.0.0/1", "via", GATEWAY)  # what another VPN's would look like
    before = snapshot(client_ns)
    agent = Agent(client_ns, "session", "--journal", str(tmp_path / "j.json"))
    agent.next()
    before_apply = snapshot(client_ns)
    failed = agent.go()
    assert failed == {"event": "failed", "sentence": "Another VPN already routes all traffic (the route 128.0.0.0/1 exists); disconnect it first."}
    assert without_qdisc(snapshot(client_ns)) == without_qdisc(before_apply)  # rolled back
    agent.proc.wait(10)
    assert snapshot(client_ns) == before


def test_an_ipv6_identifier_gives_the_link_local_address_and_no_peer_still_routes(client_ns, tmp_path):
    before = snapshot(client_ns)
    agent = Agent(client_ns, "session", "--ipv6-identifier", "0211223344556677", "--no-peer", "--journal", str(tmp_path / "j.json"))
    tun = agent.next()["ifname"]
    opened = snapshot(client_ns)
    assert agent.go()["event"] == "applied"
    link = ip_json(client_ns, "addr", "show", "dev", tun)[0]
    assert {(a["local"], a["prefixlen"]) for a in link["addr_info"]} >= {("198.18.30.10", 32), ("fe80::211:2233:4455:6677", 64)}
    assert all("address" not in a for a in link["addr_info"] if a["family"] == "inet")  # no peer
    assert ip_json(client_ns, "route", "get", "198.18.99.1")[0]["dev"] == tun
    assert agent.go()["notes"] == []
    assert without_qdisc(snapshot(client_ns)) == without_qdisc(opened)
    assert agent.go()["event"] == "closed"
    assert snapshot(client_ns) == before
