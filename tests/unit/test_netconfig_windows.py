"""netconfig_windows driven against a recorded iphlpapi/kernel32 (tests/recorded_windows.py): the
exact IP Helper calls a plan makes, the byte layout of the rows passed, the undo order, and crash
repair. Windows itself is not involved."""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import struct
from ipaddress import IPv4Address, IPv6Address

import pytest

from sstpvpn.client.core.types import NetworkPlan
from sstpvpn.platform import netconfig_windows, winapi
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.netconfig_windows import NetConfigurator, repair_from_journal
from tests.recorded_commands import RecordedCommands
from tests.recorded_windows import LUID, Interface, RecordedWindows

AF_INET, AF_INET6 = winapi.AF_INET, winapi.AF_INET6
SERVER = "203.0.113.5"
GATEWAY_LUID = 0x0006_0000_0200_0000
GUID = bytes(range(16))
PLAN = NetworkPlan(
    address=IPv4Address("198.18.30.10"), peer=IPv4Address("198.18.30.1"), dns=(IPv4Address("198.18.30.53"), IPv4Address("198.18.30.54")), mtu=1400
)
IP_HELPER_CHANGES = (
    "SetIpInterfaceEntry",
    "CreateUnicastIpAddressEntry",
    "DeleteUnicastIpAddressEntry",
    "CreateIpForwardEntry2",
    "DeleteIpForwardEntry2",
    "SetInterfaceDnsSettings",
    "GetBestRoute2",
)


@pytest.fixture
def windows():
    windows = RecordedWindows()
    windows.kernel32.processes[os.getpid()] = (0x01DA_0000_0000_1234, True)
    return windows


def configurator(windows, tmp_path, full_tunnel=True, server=SERVER, commands=None):
    return NetConfigurator(
        "SSTP VPN",
        server,
        full_tunnel,
        tmp_path / "journal.json",
        iphlpapi=windows.iphlpapi,
        kernel32=windows.kernel32,
        run_command=commands or RecordedCommands(),
    )


def changes(windows):
    return windows.calls_named(*IP_HELPER_CHANGES)


def snapshot(windows):
    helper = windows.iphlpapi
    return (set(helper.addresses), set(helper.routes), dict(helper.dns), {key: vars(value).copy() for key, value in helper.interfaces.items()})


def test_full_tunnel_makes_exactly_these_ip_helper_calls_in_this_order(windows, tmp_path):
    config = configurator(windows, tmp_path)
    config.apply(PLAN)
    assert changes(windows) == [
        ("SetIpInterfaceEntry", LUID, AF_INET, 1400, 0, 0),  # MTU; metric 0, automatic metric off
        ("SetIpInterfaceEntry", LUID, AF_INET6, 1400, 0, 0),
        ("CreateUnicastIpAddressEntry", "198.18.30.10/32"),
        ("GetBestRoute2", None, 0, None, SERVER, 0),  # any interface, any source, before our routes
        ("CreateIpForwardEntry2", f"{SERVER}/32", "192.0.2.1", GATEWAY_LUID),
        ("CreateIpForwardEntry2", "0.0.0.0/1", "0.0.0.0", LUID),
        ("CreateIpForwardEntry2", "128.0.0.0/1", "0.0.0.0", LUID),
        ("CreateIpForwardEntry2", "::/1", "::", LUID),
        ("CreateIpForwardEntry2", "8000::/1", "::", LUID),
        ("SetInterfaceDnsSettings", GUID, 1, 0x6, "198.18.30.53,198.18.30.54", ""),
    ]
    assert windows.calls_named("ConvertInterfaceAliasToLuid") == [("ConvertInterfaceAliasToLuid", "SSTP VPN")]
    steps = json.loads((tmp_path / "journal.json").read_text())["steps"]
    assert [step["op"] for step in steps] == ["interface", "interface", "address", "server_route"] + ["tunnel_route"] * 4 + ["dns"]
    assert steps[0] == {"op": "interface", "luid": LUID, "family": AF_INET, "mtu": 65535, "automatic_metric": 1, "metric": 25}


def test_restore_undoes_every_call_in_reverse_and_leaves_the_world_as_it_was(windows, tmp_path):
    before = snapshot(windows)
    config = configurator(windows, tmp_path)
    config.apply(PLAN)
    windows.calls.clear()
    assert config.restore() == []
    assert changes(windows) == [
        ("SetInterfaceDnsSettings", GUID, 1, 0x6, "", ""),
        ("DeleteIpForwardEntry2", "8000::/1", "::", LUID),
        ("DeleteIpForwardEntry2", "::/1", "::", LUID),
        ("DeleteIpForwardEntry2", "128.0.0.0/1", "0.0.0.0", LUID),
        ("DeleteIpForwardEntry2", "0.0.0.0/1", "0.0.0.0", LUID),
        ("DeleteIpForwardEntry2", f"{SERVER}/32", "192.0.2.1", GATEWAY_LUID),
        ("DeleteUnicastIpAddressEntry", "198.18.30.10"),
        ("SetIpInterfaceEntry", LUID, AF_INET6, 65535, 1, 25),
        ("SetIpInterfaceEntry", LUID, AF_INET, 65535, 1, 25),
    ]
    after = snapshot(windows)
    assert after[:2] == before[:2] and after[3] == before[3]
    assert after[2] == {GUID: ""}  # per-GUID DNS overwritten with nothing, as documented
    assert not (tmp_path / "journal.json").exists()
    assert config.restore() == []  # twice is fine


def test_the_route_rows_have_the_netioapi_layout(windows, tmp_path):
    configurator(windows, tmp_path).apply(PLAN)
    rows = [raw for name, raw in windows.iphlpapi.raw if name == "CreateIpForwardEntry2"]
    server, half, v6 = rows[0], rows[1], rows[3]
    assert len(server) == 104  # sizeof(MIB_IPFORWARD_ROW2)
    assert struct.unpack_from("<Q", server, 0)[0] == GATEWAY_LUID  # InterfaceLuid
    assert struct.unpack_from("<H", server, 12)[0] == 2  # DestinationPrefix.Prefix.si_family AF_INET
    assert server[16:20] == bytes([203, 0, 113, 5])  # ...sin_addr
    assert server[40] == 32  # DestinationPrefix.PrefixLength
    assert struct.unpack_from("<H", server, 44)[0] == 2  # NextHop family
    assert server[48:52] == bytes([192, 0, 2, 1])  # NextHop address
    assert struct.unpack_from("<III", server, 76) == (0xFFFFFFFF, 0xFFFFFFFF, 0)  # lifetimes, Metric 0
    assert struct.unpack_from("<Q", half, 0)[0] == LUID and half[40] == 1 and half[48:52] == bytes(4)
    assert struct.unpack_from("<H", v6, 12)[0] == 23  # AF_INET6 is 23 on Windows
    assert v6[20:36] == bytes(16) and v6[40] == 1  # ::/1 (sin6_addr at +8 in SOCKADDR_IN6)
    assert struct.unpack_from("<H", v6, 44)[0] == 23 and v6[52:68] == bytes(16)  # next hop ::


def test_the_address_row_has_the_netioapi_layout(windows, tmp_path):
    configurator(windows, tmp_path).apply(PLAN)
    [row] = [raw for name, raw in windows.iphlpapi.raw if name == "CreateUnicastIpAddressEntry"]
    assert len(row) == 80  # sizeof(MIB_UNICASTIPADDRESS_ROW)
    assert struct.unpack_from("<H", row, 0)[0] == 2 and row[4:8] == bytes([198, 18, 30, 10])
    assert struct.unpack_from("<Q", row, 32)[0] == LUID
    assert struct.unpack_from("<II", row, 52) == (0xFFFFFFFF, 0xFFFFFFFF)  # Valid/PreferredLifetime
    assert row[60] == 32  # OnLinkPrefixLength
    assert struct.unpack_from("<i", row, 64)[0] == 4  # DadState IpDadStatePreferred


def test_the_interface_row_keeps_site_prefix_length_0_for_ipv4(windows, tmp_path):
    configurator(windows, tmp_path).apply(PLAN)
    ipv4, ipv6 = [raw for name, raw in windows.iphlpapi.raw if name == "SetIpInterfaceEntry"][:2]
    assert struct.unpack_from("<I", ipv4, 144)[0] == 0  # SitePrefixLength, required 0 for IPv4
    assert ipv4[44] == 0 and struct.unpack_from("<II", ipv4, 148) == (0, 1400)  # UseAutomaticMetric, Metric, NlMtu
    assert struct.unpack_from("<I", ipv6, 144)[0] == 64  # left as Get returned it for IPv6


def test_the_dns_settings_have_the_version_1_layout(windows, tmp_path):
    configurator(windows, tmp_path).apply(PLAN)
    [raw] = [raw for name, raw in windows.iphlpapi.raw if name == "SetInterfaceDnsSettings"]
    assert len(raw) == 64
    assert struct.unpack_from("<I", raw, 0)[0] == 1  # Version 1
    assert struct.unpack_from("<Q", raw, 8)[0] == 0x2 | 0x4  # NAMESERVER | SEARCHLIST, not IPV6
    # Domain, NameServer, SearchList, ProfileNameServer: only the flagged ones are set.
    assert windows.iphlpapi.dns_strings == [(None, "198.18.30.53,198.18.30.54", "", None)]
    assert struct.unpack_from("<IIII", raw, 40) == (0, 0, 0, 0)


def test_split_tunnel_routes_only_the_vpn_network_and_keeps_the_metric(windows, tmp_path):
    configurator(windows, tmp_path, full_tunnel=False).apply(PLAN)
    assert changes(windows) == [
        ("SetIpInterfaceEntry", LUID, AF_INET, 1400, 1, 25),
        ("SetIpInterfaceEntry", LUID, AF_INET6, 1400, 1, 25),
        ("CreateUnicastIpAddressEntry", "198.18.30.10/32"),
        ("CreateIpForwardEntry2", "198.18.30.0/24", "0.0.0.0", LUID),
        ("SetInterfaceDnsSettings", GUID, 1, 0x6, "198.18.30.53,198.18.30.54", ""),
    ]


def test_extra_routes_go_through_the_tunnel_and_the_vpn_dns_can_be_left_out(windows, tmp_path):
    config = NetConfigurator(
        "SSTP VPN",
        SERVER,
        False,
        tmp_path / "journal.json",
        iphlpapi=windows.iphlpapi,
        kernel32=windows.kernel32,
        run_command=RecordedCommands(),
        extra_routes=(ipaddress.ip_network("10.20.0.0/16"),),
        use_vpn_dns=False,
    )
    before = snapshot(windows)
    config.apply(PLAN)
    assert changes(windows) == [
        ("SetIpInterfaceEntry", LUID, AF_INET, 1400, 1, 25),
        ("SetIpInterfaceEntry", LUID, AF_INET6, 1400, 1, 25),
        ("CreateUnicastIpAddressEntry", "198.18.30.10/32"),
        ("CreateIpForwardEntry2", "198.18.30.0/24", "0.0.0.0", LUID),
        ("CreateIpForwardEntry2", "10.20.0.0/16", "0.0.0.0", LUID),
    ]
    config.restore()
    assert snapshot(windows) == before


def test_a_server_inside_the_split_network_still_gets_its_host_route(windows, tmp_path):
    configurator(windows, tmp_path, full_tunnel=False, server="198.18.30.200").apply(PLAN)
    assert ("CreateIpForwardEntry2", "198.18.30.200/32", "192.0.2.1", GATEWAY_LUID) in changes(windows)


def test_no_host_route_when_the_server_is_on_link(tmp_path):
    windows = RecordedWindows(best_route=("0.0.0.0", GATEWAY_LUID))
    windows.kernel32.processes[os.getpid()] = (1, True)
    configurator(windows, tmp_path).apply(PLAN)
    assert [call[1] for call in windows.calls_named("CreateIpForwardEntry2")] == ["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"]


def test_without_ipv6_on_the_adapter_only_ipv4_is_configured(tmp_path):
    windows = RecordedWindows(interfaces={(LUID, AF_INET): Interface()})
    windows.kernel32.processes[os.getpid()] = (1, True)
    configurator(windows, tmp_path).apply(NetworkPlan(address=PLAN.address, peer=PLAN.peer, mtu=1400, ipv6_identifier=bytes(range(8))))
    assert [call[2] for call in windows.calls_named("SetIpInterfaceEntry")] == [AF_INET]
    assert [call[1] for call in windows.calls_named("CreateIpForwardEntry2")] == [f"{SERVER}/32", "0.0.0.0/1", "128.0.0.0/1"]
    assert windows.calls_named("CreateUnicastIpAddressEntry") == [("CreateUnicastIpAddressEntry", "198.18.30.10/32")]
    assert windows.calls_named("SetInterfaceDnsSettings") == []  # no DNS offered


def test_the_negotiated_ipv6_identifier_becomes_the_link_local_address(windows, tmp_path):
    plan = NetworkPlan(address=PLAN.address, peer=PLAN.peer, mtu=1400, ipv6_identifier=bytes.fromhex("0211223344556677"))
    configurator(windows, tmp_path).apply(plan)
    assert windows.calls_named("CreateUnicastIpAddressEntry") == [
        ("CreateUnicastIpAddressEntry", "198.18.30.10/32"),
        ("CreateUnicastIpAddressEntry", "fe80::211:2233:4455:6677/64"),
    ]


def test_a_refused_route_undoes_everything_done_before_and_says_why(windows, tmp_path):
    before = snapshot(windows)
    windows.iphlpapi.refuse["CreateIpForwardEntry2"] = [None, None, 1234]  # the third: 128.0.0.0/1
    config = configurator(windows, tmp_path)
    with pytest.raises(PlatformError, match=r"Could not add the route 128.0.0.0/1 \(error 1234\)"):
        config.apply(PLAN)
    assert windows.calls_named("DeleteIpForwardEntry2") == [
        ("DeleteIpForwardEntry2", "0.0.0.0/1", "0.0.0.0", LUID),
        ("DeleteIpForwardEntry2", f"{SERVER}/32", "192.0.2.1", GATEWAY_LUID),
    ]
    assert snapshot(windows) == before
    assert not (tmp_path / "journal.json").exists()


def test_an_existing_half_default_route_means_another_vpn(windows, tmp_path):
    windows.iphlpapi.routes.add((LUID, "0.0.0.0/1", "0.0.0.0"))
    with pytest.raises(PlatformError, match=r"Another VPN already routes all traffic \(the route 0.0.0.0/1 exists\)"):
        configurator(windows, tmp_path).apply(PLAN)
    assert windows.iphlpapi.routes == {(LUID, "0.0.0.0/1", "0.0.0.0")}  # not ours: left in place


def test_a_host_route_that_exists_already_is_kept_and_not_journaled(windows, tmp_path):
    windows.iphlpapi.routes.add((GATEWAY_LUID, f"{SERVER}/32", "192.0.2.1"))
    config = configurator(windows, tmp_path)
    config.apply(PLAN)
    config.restore()
    assert windows.iphlpapi.routes == {(GATEWAY_LUID, f"{SERVER}/32", "192.0.2.1")}


def test_access_denied_asks_for_administrator_rights(windows, tmp_path):
    windows.iphlpapi.refuse["SetIpInterfaceEntry"] = winapi.ERROR_ACCESS_DENIED
    with pytest.raises(PlatformError) as caught:
        configurator(windows, tmp_path).apply(PLAN)
    assert caught.value.sentence == netconfig_windows.admin_sentence()


def test_an_unknown_adapter_is_a_sentence(windows, tmp_path):
    config = NetConfigurator("Nope", SERVER, journal_path=tmp_path / "j.json", iphlpapi=windows.iphlpapi, kernel32=windows.kernel32)
    with pytest.raises(PlatformError, match="The tunnel adapter Nope does not exist"):
        config.apply(PLAN)


def test_older_windows_without_setinterfacednssettings_uses_netsh(tmp_path, monkeypatch):
    monkeypatch.setenv("SystemRoot", "C:\\Windows")
    windows = RecordedWindows(has_dns_settings=False)
    windows.kernel32.processes[os.getpid()] = (1, True)
    commands = RecordedCommands()
    config = configurator(windows, tmp_path, commands=commands)
    config.apply(PLAN)
    netsh = "C:\\Windows\\System32\\netsh.exe"
    assert commands.argvs() == [
        (netsh, "interface", "ipv4", "set", "dnsservers", "name=17", "source=static", "address=198.18.30.53", "register=none", "validate=no"),
        (netsh, "interface", "ipv4", "add", "dnsservers", "name=17", "address=198.18.30.54", "index=2", "validate=no"),
    ]
    config.restore()
    assert commands.argvs()[2:] == [(netsh, "interface", "ipv4", "set", "dnsservers", "name=17", "source=dhcp")]


def write_owner(path, owner):
    document = json.loads(path.read_text())
    document["owner"] = owner
    path.write_text(json.dumps(document))


def test_repair_after_a_crash_removes_only_the_host_route(windows, tmp_path):
    configurator(windows, tmp_path).apply(PLAN)
    write_owner(tmp_path / "journal.json", {"pid": 4242, "created": 7})  # a process that is gone
    windows.calls.clear()
    assert repair_from_journal(tmp_path / "journal.json", iphlpapi=windows.iphlpapi, kernel32=windows.kernel32)
    # The adapter's own steps died with that process' adapter; only the host route outlives it.
    assert changes(windows) == [("DeleteIpForwardEntry2", f"{SERVER}/32", "192.0.2.1", GATEWAY_LUID)]
    assert not (tmp_path / "journal.json").exists()
    assert not repair_from_journal(tmp_path / "journal.json", iphlpapi=windows.iphlpapi, kernel32=windows.kernel32)


def test_a_live_owner_keeps_its_configuration(windows, tmp_path):
    configurator(windows, tmp_path).apply(PLAN)
    write_owner(tmp_path / "journal.json", {"pid": 4242, "created": 7})
    windows.kernel32.processes[4242] = (7, True)
    windows.calls.clear()
    assert not repair_from_journal(tmp_path / "journal.json", iphlpapi=windows.iphlpapi, kernel32=windows.kernel32)
    assert configurator(windows, tmp_path).restore() == ["The network configuration belongs to another sstp-vpn (process 4242); it was left alone."]
    with pytest.raises(PlatformError, match=r"Another sstp-vpn \(process 4242\) has the network configured"):
        configurator(windows, tmp_path).apply(PLAN)
    assert changes(windows) == []


def test_a_reused_process_id_is_not_the_owner(windows, tmp_path):
    configurator(windows, tmp_path).apply(PLAN)
    write_owner(tmp_path / "journal.json", {"pid": 4242, "created": 7})
    windows.kernel32.processes[4242] = (8, True)  # same id, started later: another program
    assert repair_from_journal(tmp_path / "journal.json", iphlpapi=windows.iphlpapi, kernel32=windows.kernel32)


def test_the_owner_is_the_process_id_and_its_creation_time(windows, tmp_path):
    configurator(windows, tmp_path).apply(PLAN)
    owner = json.loads((tmp_path / "journal.json").read_text())["owner"]
    assert owner == {"pid": os.getpid(), "created": 0x01DA_0000_0000_1234}
    assert ("OpenProcess", winapi.PROCESS_QUERY_LIMITED_INFORMATION, False, os.getpid()) in windows.calls
    opened = [call for call in windows.calls if call[0] == "OpenProcess"]
    closed = [call for call in windows.calls if call[0] == "CloseHandle"]
    assert len(opened) == len(closed)  # every process handle is closed again


def test_restore_without_apply_does_nothing(windows, tmp_path):
    assert configurator(windows, tmp_path).restore() == []
    assert windows.calls == []


def test_the_journal_lives_in_the_network_services_folder_under_programdata(monkeypatch):
    monkeypatch.setenv("ProgramData", "D:\\Data")
    path = netconfig_windows.default_journal_path()
    assert path.name == "network-journal.json" and path.parent.name == "service" and path.parent.parent.name == "SSTP VPN"
    assert str(path).startswith("D:\\Data")


def test_a_damaged_step_is_a_sentence_and_stays_in_the_journal(windows, tmp_path):
    configurator(windows, tmp_path).apply(PLAN)
    path = tmp_path / "journal.json"
    document = json.loads(path.read_text())
    document["owner"] = {"pid": 4242, "created": 7}
    del document["steps"][3]["luid"]  # the server route
    path.write_text(json.dumps(document))
    with pytest.raises(PlatformError, match=r"has a damaged step \('server_route': KeyError\('luid'\)\); undo it by hand"):
        repair_from_journal(path, iphlpapi=windows.iphlpapi, kernel32=windows.kernel32)
    assert [step["op"] for step in json.loads(path.read_text())["steps"]] == ["server_route"]


def test_struct_sizes_and_offsets_match_the_windows_headers():
    # Sizes: the platform note's table; offsets: netioapi.h, as wireguard-windows'
    # tunnel/winipcfg/types_test.go asserts them for 64-bit Windows.
    sizes = {
        winapi.SOCKADDR_INET: 28,
        winapi.IP_ADDRESS_PREFIX: 32,
        winapi.MIB_UNICASTIPADDRESS_ROW: 80,
        winapi.MIB_IPFORWARD_ROW2: 104,
        winapi.MIB_IPINTERFACE_ROW: 168,
        winapi.DNS_INTERFACE_SETTINGS: 64,
        winapi.GUID: 16,
    }
    assert {cls: ctypes.sizeof(cls) for cls in sizes} == sizes
    offsets = {
        winapi.IP_ADDRESS_PREFIX: {"PrefixLength": 28},
        winapi.MIB_UNICASTIPADDRESS_ROW: {
            "InterfaceLuid": 32,
            "InterfaceIndex": 40,
            "PrefixOrigin": 44,
            "SuffixOrigin": 48,
            "ValidLifetime": 52,
            "PreferredLifetime": 56,
            "OnLinkPrefixLength": 60,
            "SkipAsSource": 61,
            "DadState": 64,
            "ScopeId": 68,
            "CreationTimeStamp": 72,
        },
        winapi.MIB_IPFORWARD_ROW2: {
            "InterfaceIndex": 8,
            "DestinationPrefix": 12,
            "NextHop": 44,
            "SitePrefixLength": 72,
            "ValidLifetime": 76,
            "PreferredLifetime": 80,
            "Metric": 84,
            "Protocol": 88,
            "Loopback": 92,
            "AutoconfigureAddress": 93,
            "Publish": 94,
            "Immortal": 95,
            "Age": 96,
            "Origin": 100,
        },
        winapi.MIB_IPINTERFACE_ROW: {
            "InterfaceLuid": 8,
            "InterfaceIndex": 16,
            "InterfaceIdentifier": 24,
            "UseAutomaticMetric": 44,
            "RouterDiscoveryBehavior": 52,
            "DadTransmits": 56,
            "ZoneIndices": 80,
            "SitePrefixLength": 144,
            "Metric": 148,
            "NlMtu": 152,
            "Connected": 156,
            "ReachableTime": 160,
            "TransmitOffload": 164,
            "DisableDefaultRoutes": 166,
        },
        winapi.DNS_INTERFACE_SETTINGS: {
            "Flags": 8,
            "Domain": 16,
            "NameServer": 24,
            "SearchList": 32,
            "RegistrationEnabled": 40,
            "QueryAdapterName": 52,
            "ProfileNameServer": 56,
        },
    }
    for cls, fields in offsets.items():
        assert {name: getattr(cls, name).offset for name in fields} == fields, cls.__name__


def test_every_ip_helper_function_returns_a_win32_error_code_and_takes_pointers():
    for name, (restype, _argtypes) in winapi.IPHLPAPI_PROTOTYPES.items():
        assert restype is (None if name.startswith("Initialize") else ctypes.c_uint32), name
    assert winapi.IPHLPAPI_PROTOTYPES["GetBestRoute2"][1] == [
        ctypes.POINTER(ctypes.c_uint64),
        ctypes.c_uint32,
        ctypes.POINTER(winapi.SOCKADDR_INET),
        ctypes.POINTER(winapi.SOCKADDR_INET),
        ctypes.c_uint32,
        ctypes.POINTER(winapi.MIB_IPFORWARD_ROW2),
        ctypes.POINTER(winapi.SOCKADDR_INET),
    ]
    # The GUID goes by value (netioapi.h: SetInterfaceDnsSettings(GUID Interface, ...)).
    assert winapi.IPHLPAPI_OPTIONAL_PROTOTYPES["SetInterfaceDnsSettings"][1][0] is winapi.GUID


def test_an_ipv6cp_that_opens_late_adds_the_link_local_address(windows, tmp_path):
    # Untested on real Windows: the adapter's router discovery is Windows' own business (no step here).
    config = configurator(windows, tmp_path)
    config.apply(NetworkPlan(address=PLAN.address, peer=PLAN.peer, mtu=1400))
    config.add_ipv6_link(bytes.fromhex("0211223344556677"))
    assert windows.calls_named("CreateUnicastIpAddressEntry")[-1] == ("CreateUnicastIpAddressEntry", "fe80::211:2233:4455:6677/64")
    notes = config.add_ipv6_dns([IPv6Address("fd18:30::53")], [])
    assert notes == ["This version cannot add the IPv6 DNS servers the VPN's DHCPv6 server named on Windows yet."]
