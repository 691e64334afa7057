"""netconfig_macos driven against a recorded command runner and dynamic store
(tests/recorded_macos.py): the exact ifconfig/route/scutil commands a plan makes, the exact undo
order, DNS restored property by property, and crash repair. macOS itself is not involved."""

from __future__ import annotations

import ipaddress
import json
import os
from ipaddress import IPv4Address

import pytest

from sstpvpn.client.core.types import NetworkPlan
from sstpvpn.platform import netconfig_macos
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.netconfig_macos import NetConfigurator, gateway_of, parse_scutil_dictionary, repair_from_journal
from tests.recorded_macos import ScutilStore, mac_commands, route_get_output

SERVER = "203.0.113.5"
SERVICE = "8F1C2B3A-1111-2222-3333-444455556666"
GLOBAL = "State:/Network/Global/IPv4"
SETUP_DNS = f"Setup:/Network/Service/{SERVICE}/DNS"
STARTED = "Mon Jan  1 10:00:00 2024"
PLAN = NetworkPlan(
    address=IPv4Address("198.18.30.10"), peer=IPv4Address("198.18.30.1"), dns=(IPv4Address("198.18.30.53"), IPv4Address("198.18.30.54")), mtu=1400
)
PS_ME = ("/bin/ps", "-o", "lstart=", "-p", str(os.getpid()))


def a_mac(setup_dns=None, **options):
    keys = {
        GLOBAL: {"PrimaryInterface": "en0", "PrimaryService": SERVICE, "Router": "192.0.2.1"},
        f"State:/Network/Service/{SERVICE}/DNS": {"ServerAddresses": ["192.0.2.53"]},
    }
    if setup_dns is not None:
        keys[SETUP_DNS] = setup_dns
    store = ScutilStore(keys)
    commands = mac_commands(store, processes={os.getpid(): STARTED, **options.pop("processes", {})}, **options)
    return store, commands


def configurator(commands, tmp_path, full_tunnel=True, server=SERVER):
    return NetConfigurator("utun7", server, full_tunnel, tmp_path / "journal.json", run_command=commands)


def tools_run(commands):
    """The commands other than ps (owner checks) and scutil (checked through the store)."""
    return [argv for argv in commands.argvs() if argv[0] not in ("/bin/ps", "/usr/sbin/scutil")]


def test_full_tunnel_runs_exactly_these_commands(tmp_path):
    store, commands = a_mac()
    configurator(commands, tmp_path).apply(PLAN)
    assert commands.argvs()[0] == PS_ME  # who owns the journal
    assert tools_run(commands) == [
        ("/sbin/ifconfig", "utun7", "inet", "198.18.30.10", "198.18.30.1", "mtu", "1400", "netmask", "255.255.255.255", "up"),
        ("/sbin/route", "-n", "get", "-inet", SERVER),
        ("/sbin/route", "-n", "add", "-inet", f"{SERVER}/32", "-gateway", "192.0.2.1"),
        ("/sbin/route", "-n", "add", "-inet", "0.0.0.0/1", "-interface", "utun7"),
        ("/sbin/route", "-n", "add", "-inet", "128.0.0.0/1", "-interface", "utun7"),
        ("/sbin/route", "-n", "add", "-inet6", "::/1", "-interface", "utun7"),
        ("/sbin/route", "-n", "add", "-inet6", "8000::/1", "-interface", "utun7"),
        ("/usr/bin/dscacheutil", "-flushcache"),
    ]
    assert store.sessions == [
        f"show {GLOBAL}\n",
        f"show {SETUP_DNS}\n",
        f"d.init\nd.add ServerAddresses * 198.18.30.53 198.18.30.54\nset {SETUP_DNS}\n",
        f"show {SETUP_DNS}\n",  # read back: scutil does not report failures in its exit status
    ]
    assert store.keys[SETUP_DNS] == {"ServerAddresses": ["198.18.30.53", "198.18.30.54"]}
    steps = json.loads((tmp_path / "journal.json").read_text())["steps"]
    assert [step["op"] for step in steps] == ["address", "server_route"] + ["tunnel_route"] * 4 + ["dns"]
    assert steps[-1] == {"op": "dns", "key": SETUP_DNS, "existed": False, "servers": None, "ours": ["198.18.30.53", "198.18.30.54"]}


def test_restore_undoes_every_command_in_reverse(tmp_path):
    store, commands = a_mac()
    config = configurator(commands, tmp_path)
    config.apply(PLAN)
    commands.calls.clear()
    store.sessions.clear()
    assert config.restore() == []
    assert tools_run(commands) == [
        ("/usr/bin/dscacheutil", "-flushcache"),
        ("/sbin/route", "-n", "delete", "-inet6", "8000::/1"),
        ("/sbin/route", "-n", "delete", "-inet6", "::/1"),
        ("/sbin/route", "-n", "delete", "-inet", "128.0.0.0/1"),
        ("/sbin/route", "-n", "delete", "-inet", "0.0.0.0/1"),
        ("/sbin/route", "-n", "delete", "-inet", f"{SERVER}/32"),
        ("/sbin/ifconfig", "utun7", "inet", "198.18.30.10", "-alias"),
    ]
    assert store.sessions == [f"show {SETUP_DNS}\n", f"remove {SETUP_DNS}\n"]  # we created it: gone again
    assert SETUP_DNS not in store.keys
    assert not (tmp_path / "journal.json").exists()


def test_an_existing_dns_entry_gets_exactly_its_old_servers_back_and_keeps_the_rest(tmp_path):
    original = {"ServerAddresses": ["192.0.2.53", "2001:db8::53"], "SearchDomains": ["home.example"]}
    store, commands = a_mac(setup_dns=original)
    config = configurator(commands, tmp_path)
    config.apply(PLAN)
    assert store.sessions[2] == f"get {SETUP_DNS}\nd.add ServerAddresses * 198.18.30.53 198.18.30.54\nset {SETUP_DNS}\n"
    assert store.keys[SETUP_DNS] == {"ServerAddresses": ["198.18.30.53", "198.18.30.54"], "SearchDomains": ["home.example"]}
    config.restore()
    assert store.sessions[-1] == f"get {SETUP_DNS}\nd.add ServerAddresses * 192.0.2.53 2001:db8::53\nset {SETUP_DNS}\n"
    assert store.keys[SETUP_DNS] == original


def test_an_entry_without_servers_loses_only_the_servers_again(tmp_path):
    store, commands = a_mac(setup_dns={"SearchDomains": ["home.example"]})
    config = configurator(commands, tmp_path)
    config.apply(PLAN)
    config.restore()
    assert store.sessions[-1] == f"get {SETUP_DNS}\nd.remove ServerAddresses\nset {SETUP_DNS}\n"
    assert store.keys[SETUP_DNS] == {"SearchDomains": ["home.example"]}


def test_servers_changed_by_someone_else_are_left_alone_with_a_note(tmp_path):
    store, commands = a_mac(setup_dns={"ServerAddresses": ["192.0.2.53"]})
    config = configurator(commands, tmp_path)
    config.apply(PLAN)
    store.keys[SETUP_DNS]["ServerAddresses"] = ["192.0.2.99"]  # the user, in System Settings
    assert config.restore() == [
        f"The DNS servers of the network service ({SETUP_DNS}) were changed by another program while "
        "the VPN was connected; they were left as that program set them."
    ]
    assert store.keys[SETUP_DNS] == {"ServerAddresses": ["192.0.2.99"]}
    assert ("/sbin/route", "-n", "delete", "-inet", f"{SERVER}/32") in commands.argvs()  # the rest is undone
    assert config.notes and not (tmp_path / "journal.json").exists()


def test_split_tunnel_routes_the_vpn_network_and_leaves_dns_alone(tmp_path):
    store, commands = a_mac()
    configurator(commands, tmp_path, full_tunnel=False).apply(PLAN)
    assert tools_run(commands) == [
        ("/sbin/ifconfig", "utun7", "inet", "198.18.30.10", "198.18.30.1", "mtu", "1400", "netmask", "255.255.255.255", "up"),
        ("/sbin/route", "-n", "add", "-inet", "198.18.30.0/24", "-interface", "utun7"),
    ]
    assert store.sessions == []


def test_extra_routes_go_through_the_tunnel_and_the_vpn_dns_can_be_left_out(tmp_path):
    store, commands = a_mac()
    NetConfigurator(
        "utun7",
        SERVER,
        True,
        tmp_path / "journal.json",
        run_command=commands,
        extra_routes=(ipaddress.ip_network("10.20.0.0/16"), ipaddress.ip_network("fd00:1::/64")),
        use_vpn_dns=False,
    ).apply(PLAN)
    assert tools_run(commands)[-2:] == [
        ("/sbin/route", "-n", "add", "-inet", "10.20.0.0/16", "-interface", "utun7"),
        ("/sbin/route", "-n", "add", "-inet6", "fd00:1::/64", "-interface", "utun7"),
    ]
    assert store.sessions == []  # the Mac's own DNS settings stay as they are


def test_no_host_route_when_the_server_has_no_gateway(tmp_path):
    store, commands = a_mac(gateway=None)
    configurator(commands, tmp_path).apply(PLAN)
    routes = [argv[4] for argv in tools_run(commands) if argv[0] == "/sbin/route" and argv[2] == "add"]
    assert routes == ["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"]


def test_the_negotiated_ipv6_identifier_becomes_the_link_local_address(tmp_path):
    store, commands = a_mac()
    config = configurator(commands, tmp_path, full_tunnel=False)
    config.apply(NetworkPlan(address=PLAN.address, peer=None, mtu=1400, ipv6_identifier=bytes.fromhex("0211223344556677")))
    assert tools_run(commands)[:2] == [
        (
            "/sbin/ifconfig",
            "utun7",
            "inet",
            "198.18.30.10",
            "198.18.30.10",
            "mtu",
            "1400",
            "netmask",
            "255.255.255.255",
            "up",
        ),  # no peer known: our own address, as on Linux
        ("/sbin/ifconfig", "utun7", "inet6", "fe80::211:2233:4455:6677/64", "alias"),
    ]
    commands.calls.clear()
    config.restore()
    assert tools_run(commands)[1:] == [
        ("/sbin/ifconfig", "utun7", "inet6", "fe80::211:2233:4455:6677/64", "-alias"),
        ("/sbin/ifconfig", "utun7", "inet", "198.18.30.10", "-alias"),
    ]


def test_an_existing_half_default_route_means_another_vpn_and_undoes_the_rest(tmp_path):
    store, commands = a_mac()
    commands.answer(
        "/sbin/route",
        "-n",
        "add",
        "-inet",
        "0.0.0.0/1",
        returncode=1,
        stderr="route: writing to routing socket: File exists\nadd net 0.0.0.0: gateway utun7: File exists",
    )
    with pytest.raises(PlatformError, match=r"Another VPN already routes all traffic \(the route 0.0.0.0/1 exists\)"):
        configurator(commands, tmp_path).apply(PLAN)
    assert tools_run(commands)[-2:] == [
        ("/sbin/route", "-n", "delete", "-inet", f"{SERVER}/32"),
        ("/sbin/ifconfig", "utun7", "inet", "198.18.30.10", "-alias"),
    ]
    assert not (tmp_path / "journal.json").exists()


def test_a_refused_ipv6_route_is_a_note_not_a_failure(tmp_path):
    store, commands = a_mac()
    commands.answer("/sbin/route", "-n", "add", "-inet6", returncode=1, stderr="route: writing to routing socket: Network is unreachable")
    config = configurator(commands, tmp_path)
    config.apply(PLAN)
    assert config.notes == [
        "IPv6 traffic is not routed into the tunnel: Could not add the route ::/1 (route: writing to routing socket: Network is unreachable).",
        "IPv6 traffic is not routed into the tunnel: Could not add the route 8000::/1 (route: writing to routing socket: Network is unreachable).",
    ]
    steps = json.loads((tmp_path / "journal.json").read_text())["steps"]
    assert [step["dst"] for step in steps if step["op"] == "tunnel_route"] == ["0.0.0.0/1", "128.0.0.0/1"]


def test_no_rights_is_the_root_sentence(tmp_path):
    store, commands = a_mac()
    commands.answer("/sbin/ifconfig", returncode=1, stderr="ifconfig: ioctl (SIOCAIFADDR): Operation not permitted")
    with pytest.raises(PlatformError) as caught:
        configurator(commands, tmp_path).apply(PLAN)
    assert caught.value.sentence == netconfig_macos.admin_sentence()


def test_an_interface_that_is_not_a_utun_is_refused(tmp_path):
    store, commands = a_mac()
    config = NetConfigurator("en0; reboot", SERVER, journal_path=tmp_path / "j.json", run_command=commands)
    with pytest.raises(PlatformError, match="is not a macOS tunnel interface"):
        config.apply(PLAN)
    assert commands.calls == []


def test_a_strange_primary_service_id_never_reaches_scutil(tmp_path):
    store, commands = a_mac()
    store.keys[GLOBAL]["PrimaryService"] = "x/DNS\nremove State:/Network/Global/IPv4"
    config = configurator(commands, tmp_path)
    config.apply(PLAN)
    assert store.sessions == [f"show {GLOBAL}\n"]
    assert config.notes == ["macOS reports no primary network service, so the VPN's DNS servers were not set."]


def test_repair_after_a_crash_undoes_dns_and_the_host_route_only(tmp_path):
    original = {"ServerAddresses": ["192.0.2.53"]}
    store, commands = a_mac(setup_dns=original)
    configurator(commands, tmp_path).apply(PLAN)
    document = json.loads((tmp_path / "journal.json").read_text())
    document["owner"] = {"pid": 4242, "started": "Sun Dec 31 09:00:00 2023"}  # a process that is gone
    (tmp_path / "journal.json").write_text(json.dumps(document))
    commands.calls.clear()
    assert repair_from_journal(tmp_path / "journal.json", run_command=commands)
    # The utun died with that process, and its address and routes with it.
    assert tools_run(commands) == [("/usr/bin/dscacheutil", "-flushcache"), ("/sbin/route", "-n", "delete", "-inet", f"{SERVER}/32")]
    assert store.keys[SETUP_DNS] == original
    assert not (tmp_path / "journal.json").exists()


def test_a_live_owner_keeps_its_configuration(tmp_path):
    store, commands = a_mac(processes={4242: "Sun Dec 31 09:00:00 2023"})
    configurator(commands, tmp_path).apply(PLAN)
    document = json.loads((tmp_path / "journal.json").read_text())
    document["owner"] = {"pid": 4242, "started": "Sun Dec 31 09:00:00 2023"}
    (tmp_path / "journal.json").write_text(json.dumps(document))
    commands.calls.clear()
    assert not repair_from_journal(tmp_path / "journal.json", run_command=commands)
    with pytest.raises(PlatformError, match=r"Another sstp-vpn \(process 4242\) has the network configured"):
        configurator(commands, tmp_path).apply(PLAN)
    assert tools_run(commands) == []


def test_a_tampered_dns_key_in_the_journal_is_refused(tmp_path):
    store, commands = a_mac()
    configurator(commands, tmp_path).apply(PLAN)
    document = json.loads((tmp_path / "journal.json").read_text())
    document["steps"][-1]["key"] = f"{SETUP_DNS}\nremove {GLOBAL}"
    document["owner"]["pid"] = 4242
    (tmp_path / "journal.json").write_text(json.dumps(document))
    with pytest.raises(PlatformError, match="names an unexpected DNS entry"):
        repair_from_journal(tmp_path / "journal.json", run_command=commands)
    assert GLOBAL in store.keys
    assert json.loads((tmp_path / "journal.json").read_text())["steps"][-1]["op"] == "dns"  # kept for a retry


def test_scutil_show_output_is_parsed_to_its_top_level():
    text = (
        "<dictionary> {\n  DomainName : home.example\n  ServerAddresses : <array> {\n    0 : 192.0.2.53\n"
        "    1 : fe80::1%en0\n  }\n  __CONFIGURATION_ID__ : Default: 0\n  Options : <dictionary> {\n"
        "    Inner : <array> {\n      0 : x\n    }\n  }\n  SearchOrder : 5000\n}\n"
    )
    assert parse_scutil_dictionary(text) == {
        "DomainName": "home.example",
        "ServerAddresses": ["192.0.2.53", "fe80::1%en0"],
        "__CONFIGURATION_ID__": "Default: 0",
        "Options": {},
        "SearchOrder": "5000",
    }
    assert parse_scutil_dictionary("  No such key\n") is None
    assert parse_scutil_dictionary("") is None


def test_the_gateway_is_read_from_route_get():
    assert gateway_of(route_get_output(SERVER, "192.0.2.1")) == "192.0.2.1"
    assert gateway_of(route_get_output("2001:db8::5", "fe80::1%en0")) == "fe80::1%en0"
    assert gateway_of(route_get_output(SERVER, None)) is None  # on-link
    assert gateway_of(route_get_output(SERVER, "link#5")) is None


def test_the_journal_of_root_lives_in_var_db(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert str(netconfig_macos.default_journal_path()) == "/var/db/sstp-vpn/network-journal.json"


def test_an_ipv6cp_that_opens_late_adds_the_link_local_address_and_restore_removes_it(tmp_path):
    # Untested on a real Mac: the router advertisements are macOS's own business (no step here).
    store, commands = a_mac()
    config = configurator(commands, tmp_path, full_tunnel=False)
    config.apply(NetworkPlan(address=PLAN.address, peer=PLAN.peer, mtu=1400))
    commands.calls.clear()
    config.add_ipv6_link(bytes.fromhex("0211223344556677"))
    assert tools_run(commands) == [("/sbin/ifconfig", "utun7", "inet6", "fe80::211:2233:4455:6677/64", "alias")]
    assert config.add_ipv6_dns([], []) == []
    commands.calls.clear()
    config.restore()
    assert tools_run(commands)[0] == ("/sbin/ifconfig", "utun7", "inet6", "fe80::211:2233:4455:6677/64", "-alias")
