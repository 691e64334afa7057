"""A late IPv6 link on Linux against a real kernel, inside a namespace the test creates: IPV6CP
opens after the tunnel is configured (SoftEther's case), the configurator adds the link-local
address from the negotiated identifier and lets the kernel take the VPN's router advertisements
(SLAAC); restore() removes all of it. The VPN's router is played through the TUN device by
tests/platform/ipv6_agent.py. ULA prefixes only, only inside the namespace.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.platform.client_network import RESOLV_CONF, Agent, ip_json, snapshot, without_qdisc

AGENT = str(Path(__file__).with_name("ipv6_agent.py"))
IDENTIFIER = "0211223344556677"
LINK_LOCAL = "fe80::211:2233:4455:6677"
PREFIX = "fd18:30::/64"
SLAAC = "fd18:30::211:2233:4455:6677"  # the prefix and the identifier IPV6CP agreed on


def sysctls(ns, ifname: str) -> dict[str, str]:
    names = ("addr_gen_mode", "accept_ra", "accept_ra_defrtr", "accept_ra_pinfo", "autoconf")
    return {name: ns.run("cat", f"/proc/sys/net/ipv6/conf/{ifname}/{name}").stdout.strip() for name in names}


def tunnel_addresses(ns, ifname: str) -> set[tuple[str, int]]:
    return {(a["local"], a["prefixlen"]) for link in ip_json(ns, "-6", "addr", "show", "dev", ifname) for a in link.get("addr_info", [])}


@pytest.mark.parametrize("mode", ["split", "full"])
def test_a_late_ipv6_link_gets_link_local_and_slaac_addresses_and_restore_removes_them(client_ns, tmp_path, mode):
    journal = tmp_path / "journal.json"
    before = snapshot(client_ns)
    dhcpv6 = ("--dns", "fd18:30::53", "--search", "corp.example")
    agent = Agent(client_ns, "--journal", str(journal), "--identifier", IDENTIFIER, "--prefix", PREFIX, "--mode", mode, *dhcpv6, script=AGENT)
    tun = agent.next()["ifname"]
    untouched = sysctls(client_ns, tun)
    opened = without_qdisc(snapshot(client_ns))
    assert agent.go() == {"event": "applied", "notes": []}
    # No link-local address of the kernel's own (it would make a random one when the link came up).
    assert tunnel_addresses(client_ns, tun) == set()

    ipv6 = agent.go()
    assert ipv6["event"] == "ipv6", ipv6
    # Router advertisements were taken before the address came: the kernel solicited one at once, from it.
    assert ipv6["solicitation"] is not None and ipv6["solicitation"]["src"] == LINK_LOCAL and ipv6["solicitation"]["dst"] == "ff02::2"
    # A multicast neighbour solicitation (how a server bridging PPP to Ethernet passes its hub's on) is answered.
    assert ipv6["advertisement"] is not None and ipv6["advertisement"]["target"] == LINK_LOCAL
    # What the VPN's DHCPv6 server named: a full tunnel asks its DNS servers for every name; a
    # split tunnel over a plain resolv.conf cannot ask them beside the local ones (as for IPv4).
    resolv = (client_ns.etc / "resolv.conf").read_bytes()
    if mode == "full":
        assert resolv.startswith(b"# ") and b"\nnameserver fd18:30::53\nsearch corp.example home.test\n" in resolv, resolv
        assert b"198.18.20.53" not in resolv
    else:
        assert resolv == RESOLV_CONF
    assert ipv6["dns_notes"] == []
    addresses = set()
    for _ in range(50):
        addresses = tunnel_addresses(client_ns, tun)
        if (SLAAC, 64) in addresses:
            break
        time.sleep(0.1)
    assert addresses == {(LINK_LOCAL, 64), (SLAAC, 64)}
    assert sysctls(client_ns, tun) == {
        **untouched,
        "addr_gen_mode": "1",
        "accept_ra": "2",
        "accept_ra_defrtr": "0",
        "accept_ra_pinfo": "1",
        "autoconf": "1",
    }
    routes6 = ip_json(client_ns, "-6", "route", "show", "table", "main")
    assert any(r["dst"] == PREFIX and r.get("dev") == tun for r in routes6), routes6
    assert not any(r["dst"] == "default" and r.get("dev") == tun for r in routes6), routes6  # never the advertised default route
    steps = [step["op"] for step in json.loads(journal.read_text())["steps"]]
    # Journaled before made; a setting already as wanted (accept_ra_pinfo, autoconf) is left out.
    dns_steps = ["resolv_conf", "resolv_conf"] if mode == "full" else []  # the servers, then the domain
    assert steps[steps.index("router_advertisements") :] == ["router_advertisements", "ipv6_sysctl", "ipv6_sysctl", "address", *dns_steps]

    restored = agent.go()
    assert restored == {"event": "restored", "notes": [], "journal_exists": False}
    assert sysctls(client_ns, tun) == untouched
    assert without_qdisc(snapshot(client_ns)) == opened  # the SLAAC address and its prefix route too
    assert agent.go()["event"] == "closed"
    assert snapshot(client_ns) == before


def test_ipv6_switched_off_on_the_tunnel_is_one_sentence_and_ipv4_stays(client_ns, tmp_path):
    journal = tmp_path / "journal.json"
    before = snapshot(client_ns)
    agent = Agent(client_ns, "--journal", str(journal), "--identifier", IDENTIFIER, "--prefix", PREFIX, "--ipv6-off", script=AGENT)
    tun = agent.next()["ifname"]
    assert agent.go()["event"] == "applied"
    refused = agent.go()
    assert refused == {"event": "refused", "sentence": f"IPv6 is switched off on {tun}, so the VPN's IPv6 is not used; IPv4 works as before."}
    assert ip_json(client_ns, "route", "get", "198.18.30.1")[0]["dev"] == tun  # IPv4 as before
    assert agent.go() == {"event": "restored", "notes": [], "journal_exists": False}
    assert agent.go()["event"] == "closed"
    assert snapshot(client_ns) == before


def test_an_ipv6_server_behind_the_gateway_gets_a_host_route_out_of_the_full_tunnel(client_ns, tmp_path):
    """SSTP over IPv6: ::/1 and 8000::/1 would take the server's own address into the tunnel; its
    /128 goes through the IPv6 gateway the system uses now, and goes again at restore()."""
    before = snapshot(client_ns)
    server = "2001:db8:21::1"
    agent = Agent(client_ns, "session", "--server", server, "--journal", str(tmp_path / "journal.json"))
    tun = agent.next()["ifname"]
    assert agent.go()["event"] == "applied"
    routes6 = ip_json(client_ns, "-6", "route", "show", "table", "main")
    host = next(r for r in routes6 if r["dst"] == server)
    assert (host["gateway"], host["dev"]) == ("2001:db8:20::1", client_ns.veth)
    assert ip_json(client_ns, "-6", "route", "get", server)[0]["dev"] == client_ns.veth
    assert ip_json(client_ns, "-6", "route", "get", "2001:db8:99::1")[0]["dev"] == tun  # everything else: the tunnel
    assert agent.go()["notes"] == []
    assert not any(r["dst"] == server for r in ip_json(client_ns, "-6", "route", "show", "table", "main"))
    assert agent.go()["event"] == "closed"
    assert snapshot(client_ns) == before


def test_a_read_only_proc_sys_costs_the_ipv6_settings_not_the_tunnel(client_ns, tmp_path):
    """In a container /proc/sys is often read-only: the tunnel comes up all the same, with a note
    per setting it could not make, and its IPv6 link still gets the link-local address."""
    read_only = 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"'
    prefix = ("unshare", "--mount", "--propagation", "private", "sh", "-c", read_only, "sh")
    before = snapshot(client_ns)
    agent = Agent(client_ns, "--journal", str(tmp_path / "journal.json"), "--identifier", IDENTIFIER, "--prefix", PREFIX, prefix=prefix, script=AGENT)
    tun = agent.next()["ifname"]
    applied = agent.go()
    assert applied["event"] == "applied"
    assert applied["notes"] == [f"Could not change the IPv6 setting addr_gen_mode of {tun} (Read-only file system)."]
    assert ip_json(client_ns, "route", "get", "198.18.30.1")[0]["dev"] == tun  # IPv4 as always
    ipv6 = agent.go()
    assert ipv6["event"] == "ipv6"
    assert (LINK_LOCAL, 64) in tunnel_addresses(client_ns, tun)
    assert sysctls(client_ns, tun)["accept_ra_defrtr"] == "1"  # the kernel's default stays: not ours to set here
    assert agent.go()["event"] == "restored"
    assert agent.go()["event"] == "closed"
    assert snapshot(client_ns) == before
