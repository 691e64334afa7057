"""kill_switch_windows driven against a recorded fwpuclnt.dll (tests/recorded_windows.RecordedWfp),
which reads every structure back from its raw bytes at the x64 offsets of the SDK headers: the
exact WFP call sequence of set, replace and remove, the filters each KillSwitchRules field makes,
the rollback of a failed transaction, and the sentences for Windows' errors. Windows itself is
not involved (the module is untested on Windows)."""

from __future__ import annotations

import ctypes
import ipaddress
from ipaddress import IPv4Address, IPv6Address

import pytest

from sstpvpn.platform import kill_switch_windows as wfp
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.kill_switch import AllowedEndpoint, KillSwitchRules
from tests.recorded_windows import ENGINE, FWP_E_ALREADY_EXISTS, LUID, RecordedIpHelper, RecordedWfp

SERVER = AllowedEndpoint(IPv4Address("203.0.113.5"), 443)
RULES = KillSwitchRules(endpoints=(SERVER,), tunnels=("SSTP VPN",))
SUBLAYER = wfp.SUBLAYER_KEY
PERMIT, BLOCK = 0x1002, 0x1001
EQUAL, ALL_SET = 0, 6
BOTH_LAYERS = ("connect_v4", "accept_v4", "connect_v6", "accept_v6")


@pytest.fixture
def world():
    return RecordedWfp()


def kill_switch(world, **aliases):
    helper = RecordedIpHelper(aliases=aliases or {"SSTP VPN": LUID})
    return wfp.WindowsKillSwitch(fwpuclnt=world, iphlpapi=helper)


def added(world):
    return [call[2] for call in world.calls if call[0] == "FwpmFilterAdd0"]


def shape(filters):
    """(layer, weight, action, conditions) of each decoded filter."""
    return [(item.layer, item.weight, item.action, item.conditions) for item in filters]


def udp(local, remote):
    return (("protocol", EQUAL, ("uint8", 17)), ("local_port", EQUAL, ("uint16", local)), ("remote_port", EQUAL, ("uint16", remote)))


def expected_filters(endpoints=((SERVER.address, 443),), luids=(LUID,), lan=False):
    loopback = (("flags", ALL_SET, ("uint32", 1)),)
    result = [(layer, ("uint8", 15), PERMIT, loopback) for layer in BOTH_LAYERS]
    for luid in luids:
        result += [(layer, ("uint8", 15), PERMIT, (("local_interface", EQUAL, ("uint64", luid)),)) for layer in BOTH_LAYERS]
    for address, port in endpoints:
        value = ("uint32", int(address)) if address.version == 4 else ("bytes16", address)
        layer = "connect_v4" if address.version == 4 else "connect_v6"
        result.append(
            (
                layer,
                ("uint8", 14),
                PERMIT,
                (("protocol", EQUAL, ("uint8", 6)), ("remote_address", EQUAL, value), ("remote_port", EQUAL, ("uint16", port))),
            )
        )
    icmp = ("protocol", EQUAL, ("uint8", 58))
    result += [
        ("connect_v4", ("uint8", 13), PERMIT, udp(68, 67)),
        ("accept_v4", ("uint8", 13), PERMIT, udp(68, 67)),
        ("connect_v6", ("uint8", 13), PERMIT, udp(546, 547)),
        ("accept_v6", ("uint8", 13), PERMIT, udp(546, 547)),
        ("connect_v6", ("uint8", 13), PERMIT, (icmp, *(("local_port", EQUAL, ("uint16", t)) for t in (133, 135, 136)))),
        ("accept_v6", ("uint8", 13), PERMIT, (icmp, *(("local_port", EQUAL, ("uint16", t)) for t in (134, 135, 136)))),
        ("connect_v4", ("uint8", 12), BLOCK, (("remote_port", EQUAL, ("uint16", 53)),)),
        ("connect_v6", ("uint8", 12), BLOCK, (("remote_port", EQUAL, ("uint16", 53)),)),
    ]
    if lan:
        v4 = tuple(
            ("remote_address", EQUAL, ("v4mask", ipaddress.IPv4Network(n)))
            for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32")
        )
        v6 = tuple(("remote_address", EQUAL, ("v6mask", ipaddress.IPv6Network(n))) for n in ("fe80::/10", "fc00::/7", "ff00::/8"))
        result += [(layer, ("uint8", 11), PERMIT, v4) for layer in ("connect_v4", "accept_v4")]
        result += [(layer, ("uint8", 11), PERMIT, v6) for layer in ("connect_v6", "accept_v6")]
    result += [(layer, ("uint8", 0), BLOCK, ()) for layer in BOTH_LAYERS]
    return result


# -- layout ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "structure, size, offsets",
    [
        # the x64 sizes and offsets of fwpmtypes.h / fwptypes.h (as wireguard-windows' types_windows_64.go asserts them)
        (
            wfp.FWPM_FILTER0,
            200,
            {
                "displayData": 16,
                "flags": 32,
                "providerKey": 40,
                "providerData": 48,
                "layerKey": 64,
                "subLayerKey": 80,
                "weight": 96,
                "numFilterConditions": 112,
                "filterCondition": 120,
                "action": 128,
                "context": 152,
                "reserved": 168,
                "filterId": 176,
                "effectiveWeight": 184,
            },
        ),
        (wfp.FWPM_FILTER_CONDITION0, 40, {"matchType": 16, "conditionValue": 24}),
        (wfp.FWP_VALUE0, 16, {"value": 8}),
        (wfp.FWPM_ACTION0, 20, {"filterType": 4}),
        (wfp.FWPM_SUBLAYER0, 72, {"displayData": 16, "flags": 32, "providerKey": 40, "providerData": 48, "weight": 64}),
        (
            wfp.FWPM_SESSION0,
            72,
            {"displayData": 16, "flags": 32, "txnWaitTimeoutInMSec": 36, "processId": 40, "sid": 48, "username": 56, "kernelMode": 64},
        ),
        (wfp.FWP_BYTE_BLOB, 16, {"data": 8}),
        (wfp.FWPM_DISPLAY_DATA0, 16, {"description": 8}),
        (wfp.FWP_V4_ADDR_AND_MASK, 8, {"mask": 4}),
        (wfp.FWP_V6_ADDR_AND_MASK, 17, {"prefixLength": 16}),
    ],
)
def test_the_structures_have_the_sdk_x64_layout(structure, size, offsets):
    assert ctypes.sizeof(structure) == size
    assert {name: getattr(structure, name).offset for name in offsets} == offsets


def test_the_guids_are_written_in_windows_byte_order(world):
    kill_switch(world).set(RULES)
    _, raw = next(item for item in world.raw if item[0] == "FwpmSubLayerAdd0")
    # Data1..Data3 little-endian, Data4 as is: {5d4b1c52-36f0-4f6b-9d0e-3a8c2f7e4b19}
    assert raw[:16] == bytes.fromhex("521c4b5df0366b4f9d0e3a8c2f7e4b19")
    first = next(raw for name, raw in world.raw if name == "FwpmFilterAdd0")
    assert first[64:80] == bytes.fromhex("d1578dc3a705334c904f7fbceee60e82")  # FWPM_LAYER_ALE_AUTH_CONNECT_V4


# -- set, replace, remove ------------------------------------------------------------------------


def test_the_first_set_opens_a_dynamic_session_and_adds_sublayer_and_filters_in_one_transaction(world):
    switch = kill_switch(world)
    switch.set(RULES)
    filters = expected_filters()
    assert world.names() == ["FwpmEngineOpen0", "FwpmTransactionBegin0", "FwpmSubLayerAdd0"] + ["FwpmFilterAdd0"] * len(filters) + [
        "FwpmTransactionCommit0"
    ]
    # this machine, RPC's default authentication, no identity; FWPM_SESSION_FLAG_DYNAMIC
    assert world.calls[0] == ("FwpmEngineOpen0", None, 0xFFFFFFFF, None, 1, "SSTP VPN kill switch")
    assert world.calls[1] == ("FwpmTransactionBegin0", ENGINE, 0)
    assert world.calls[2] == ("FwpmSubLayerAdd0", ENGINE, SUBLAYER, 0xFFFF, None)
    assert shape(added(world)) == filters
    assert all(item.sublayer == SUBLAYER and item.flags == 0 and item.provider_key == 0 and item.name for item in added(world))
    assert shape(world.filters.values()) == filters
    assert switch.filter_ids == list(world.filters)


def test_a_second_set_replaces_the_filters_in_one_transaction_without_a_gap(world):
    switch = kill_switch(world)
    switch.set(KillSwitchRules(endpoints=(SERVER,)))
    old_ids = switch.filter_ids
    world.calls.clear()
    switch.set(RULES)
    assert world.names() == ["FwpmTransactionBegin0"] + ["FwpmFilterDeleteById0"] * len(old_ids) + ["FwpmFilterAdd0"] * len(expected_filters()) + [
        "FwpmTransactionCommit0"
    ]
    assert [call[2] for call in world.calls if call[0] == "FwpmFilterDeleteById0"] == old_ids
    assert shape(world.filters.values()) == expected_filters()
    assert set(switch.filter_ids).isdisjoint(old_ids)


def test_remove_deletes_filters_and_sublayer_then_closes_the_engine_and_may_be_called_again(world):
    switch = kill_switch(world)
    switch.set(RULES)
    ids = switch.filter_ids
    world.calls.clear()
    switch.remove()
    assert world.calls == [
        ("FwpmTransactionBegin0", ENGINE, 0),
        *(("FwpmFilterDeleteById0", ENGINE, filter_id) for filter_id in ids),
        ("FwpmSubLayerDeleteByKey0", ENGINE, SUBLAYER),
        ("FwpmTransactionCommit0", ENGINE),
        ("FwpmEngineClose0", ENGINE),
    ]
    assert world.filters == {} and world.sublayers == {} and world.open_engines == set()
    world.calls.clear()
    switch.remove()
    assert world.calls == []


def test_set_after_remove_starts_a_new_session(world):
    switch = kill_switch(world)
    switch.set(RULES)
    switch.remove()
    world.calls.clear()
    switch.set(RULES)
    assert world.names()[:3] == ["FwpmEngineOpen0", "FwpmTransactionBegin0", "FwpmSubLayerAdd0"]
    assert shape(world.filters.values()) == expected_filters()


def test_remove_before_any_set_does_nothing(world):
    kill_switch(world).remove()
    assert world.calls == []


# -- failures -------------------------------------------------------------------------------------


def test_a_failure_in_the_middle_of_a_replace_rolls_back_to_the_filters_in_place(world):
    switch = kill_switch(world)
    switch.set(RULES)
    before, ids = dict(world.filters), switch.filter_ids
    world.refuse["FwpmFilterAdd0"] = [None, None, 0x80320025]  # FWP_E_INVALID_WEIGHT at the third
    world.calls.clear()
    lan = KillSwitchRules(endpoints=(SERVER,), tunnels=("SSTP VPN",), allow_lan=True)
    with pytest.raises(PlatformError) as raised:
        switch.set(lan)
    assert world.names()[-2:] == ["FwpmFilterAdd0", "FwpmTransactionAbort0"]
    assert "FwpmTransactionCommit0" not in world.names() and "FwpmEngineClose0" not in world.names()
    assert world.filters == before and switch.filter_ids == ids  # the old rules still hold
    assert raised.value.sentence.startswith("Windows refused the kill switch's firewall filters (error 2150760485")
    world.calls.clear()
    switch.remove()  # and they are removed exactly
    assert [call[2] for call in world.calls if call[0] == "FwpmFilterDeleteById0"] == ids
    assert world.filters == {}


def test_a_failed_commit_aborts(world):
    switch = kill_switch(world)
    switch.set(RULES)
    before = dict(world.filters)
    world.refuse["FwpmTransactionCommit0"] = 0x80320013  # FWP_E_TIMEOUT
    with pytest.raises(PlatformError):
        switch.set(KillSwitchRules(endpoints=(SERVER,)))
    assert world.names()[-2:] == ["FwpmTransactionCommit0", "FwpmTransactionAbort0"]
    assert world.filters == before


def test_a_failed_first_set_leaves_nothing_and_closes_the_engine(world):
    switch = kill_switch(world)
    world.refuse["FwpmFilterAdd0"] = [None] * 5 + [0x80320025]
    with pytest.raises(PlatformError):
        switch.set(RULES)
    assert world.names()[-2:] == ["FwpmTransactionAbort0", "FwpmEngineClose0"]
    assert world.filters == {} and world.sublayers == {} and world.open_engines == set()
    world.calls.clear()
    switch.remove()
    assert world.calls == []
    switch.set(RULES)  # and it can be tried again
    assert shape(world.filters.values()) == expected_filters()


def test_remove_closes_the_engine_even_when_deleting_fails(world):
    switch = kill_switch(world)
    switch.set(RULES)
    world.refuse["FwpmFilterDeleteById0"] = 0x80320013
    switch.remove()  # the dynamic session takes the filters with it
    assert world.names()[-2:] == ["FwpmTransactionAbort0", "FwpmEngineClose0"]
    assert world.filters == {} and world.open_engines == set()


def test_filters_already_gone_do_not_stop_remove(world):
    switch = kill_switch(world)
    switch.set(RULES)
    world.filters.clear()
    world.sublayers.clear()
    switch.remove()
    assert world.names()[-2:] == ["FwpmTransactionCommit0", "FwpmEngineClose0"]


@pytest.mark.parametrize(
    "export, code, sentence",
    [
        (
            "FwpmEngineOpen0",
            1753,  # EPT_S_NOT_REGISTERED: the Base Filtering Engine is stopped
            "The kill switch needs the Windows service Base Filtering Engine, which is not running: start it in Services (services.msc).",
        ),
        ("FwpmEngineOpen0", 5, "Configuring the network for the VPN needs administrator rights"),
        ("FwpmTransactionBegin0", 5, "Configuring the network for the VPN needs administrator rights"),
        (
            "FwpmSubLayerAdd0",
            FWP_E_ALREADY_EXISTS,
            "The kill switch of another VPN connection on this computer is on; disconnect that connection first, then connect again.",
        ),
    ],
)
def test_windows_errors_become_one_sentence(world, export, code, sentence):
    world.refuse[export] = code
    with pytest.raises(PlatformError) as raised:
        kill_switch(world).set(RULES)
    assert raised.value.sentence.startswith(sentence)
    assert world.filters == {} and world.open_engines == set()


def test_a_tunnel_without_an_adapter_now_is_not_let_through(world):
    switch = kill_switch(world)
    switch.set(KillSwitchRules(endpoints=(SERVER,), tunnels=("gone", "SSTP VPN")))
    assert shape(world.filters.values()) == expected_filters()  # only the adapter that exists


# -- what each field of the rules makes ------------------------------------------------------------


def test_without_tunnels_only_loopback_endpoints_and_the_link_pass(world):
    kill_switch(world).set(KillSwitchRules(endpoints=(SERVER,)))
    assert shape(world.filters.values()) == expected_filters(luids=())
    assert not any(field == "local_interface" for item in world.filters.values() for field, _match, _value in item.conditions)


def test_each_tunnel_is_permitted_by_its_luid_both_ways_and_both_families(world):
    other = 0x0006_0000_0300_0000
    switch = kill_switch(world, **{"SSTP VPN": LUID, "SSTP VPN 2": other})
    switch.set(KillSwitchRules(endpoints=(SERVER,), tunnels=("SSTP VPN", "SSTP VPN 2")))
    assert shape(world.filters.values()) == expected_filters(luids=(LUID, other))


def test_each_endpoint_is_permitted_for_tcp_to_its_address_and_port_ipv4_and_ipv6(world):
    proxy = AllowedEndpoint(IPv6Address("2001:db8::8"), 3128)
    kill_switch(world).set(KillSwitchRules(endpoints=(SERVER, proxy), tunnels=("SSTP VPN",)))
    assert shape(world.filters.values()) == expected_filters(endpoints=((SERVER.address, 443), (proxy.address, 3128)))
    v4 = next(item for item in world.filters.values() if item.weight == ("uint8", 14) and item.layer == "connect_v4")
    assert v4.conditions[1][2] == ("uint32", 0xCB007105)  # 203.0.113.5 in host byte order, as FWP_UINT32 wants


def test_allow_lan_permits_the_local_networks_but_never_dns_to_them(world):
    kill_switch(world).set(KillSwitchRules(endpoints=(SERVER,), tunnels=("SSTP VPN",), allow_lan=True))
    filters = list(world.filters.values())
    assert shape(filters) == expected_filters(lan=True)
    dns_block = max(item.weight[1] for item in filters if item.action == BLOCK)
    lan_permit = max(item.weight[1] for item in filters if item.weight == ("uint8", 11))
    assert dns_block > lan_permit  # the higher weight decides within our sublayer


def test_everything_else_is_blocked_at_the_lowest_weight_in_all_four_layers(world):
    kill_switch(world).set(RULES)
    filters = list(world.filters.values())
    blocks = [item for item in filters if item.action == BLOCK and not item.conditions]
    assert sorted(item.layer for item in blocks) == sorted(BOTH_LAYERS)
    assert all(item.weight == ("uint8", 0) for item in blocks)
    assert all(item.weight[1] > 0 for item in filters if item.action == PERMIT)


# -- the network service's side ---------------------------------------------------------------------


def test_the_service_lets_through_no_adapter_but_its_own(world):
    from sstpvpn.platform import helper_windows
    from sstpvpn.platform.helper_protocol import RequestRefused

    session = helper_windows.SessionKillSwitch(lambda: kill_switch(world, **{"SSTP VPN": LUID, "Ethernet": 0x0006_0000_0200_0000}))
    with pytest.raises(RequestRefused):
        session.set(KillSwitchRules(endpoints=(SERVER,), tunnels=("Ethernet",)))
    assert world.calls == []
    session.set(RULES)
    assert shape(world.filters.values()) == expected_filters()
    session.remove()
    assert world.filters == {} and world.open_engines == set()


def test_a_helper_session_sets_replaces_and_at_its_end_removes_the_wfp_filters(world):
    import json
    import socket

    from sstpvpn.platform import helper_protocol, helper_windows
    from sstpvpn.platform.helper_conversation import HelperSession
    from sstpvpn.platform.helper_session import Peer, SocketChannel

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    session = HelperSession(
        SocketChannel(ours),
        Peer(1, 2, 3),
        None,
        create_tun=None,
        make_configurator=None,
        kill_switch_factory=lambda: helper_windows.SessionKillSwitch(lambda: kill_switch(world)),
    )

    def ask(tunnels, allow_lan=False):
        request = {
            "version": 1,
            "request": "kill_switch",
            "endpoints": [{"address": "203.0.113.5", "port": 443}],
            "tunnels": tunnels,
            "allow_lan": allow_lan,
        }
        session._send(*session._handle(json.dumps(request).encode(), []))
        return helper_protocol.parse_reply(theirs.recv(helper_protocol.MAX_MESSAGE_BYTES + 1))

    try:
        assert ask([]).ok
        assert shape(world.filters.values()) == expected_filters(luids=())
        assert ask(["SSTP VPN"], allow_lan=True).ok
        assert shape(world.filters.values()) == expected_filters(lan=True)
        refused = ask(["Ethernet"])
        assert not refused.ok and "names its adapter 'SSTP VPN' itself" in refused.error
        assert shape(world.filters.values()) == expected_filters(lan=True)  # the rules before still hold
        session.end()
        assert world.filters == {} and world.sublayers == {} and world.open_engines == set()
    finally:
        ours.close()
        theirs.close()


def test_a_new_adapter_is_let_through_again_by_every_kill_switch_in_place(world):
    from sstpvpn.platform import helper_windows

    helper = RecordedIpHelper(aliases={"SSTP VPN": LUID})
    service = helper_windows.Service(
        "S-1-5-32-545",
        None,
        create_device=None,
        make_configurator=None,
        make_kill_switch=lambda: helper_windows.SessionKillSwitch(lambda: wfp.WindowsKillSwitch(fwpuclnt=world, iphlpapi=helper)),
    )
    switch = service._make_kill_switch()
    switch.set(RULES)
    service.refresh_kill_switches()  # the same LUID: the same filters again
    assert shape(world.filters.values()) == expected_filters()
    helper.aliases["SSTP VPN"] = new = 0x0006_0000_0700_0000  # the adapter came back with another LUID
    service.refresh_kill_switches()
    assert shape(world.filters.values()) == expected_filters(luids=(new,))
    switch.remove()
    world.calls.clear()
    service.refresh_kill_switches()  # nothing in place: nothing to do
    assert world.calls == []
