"""The privileged helper's request schema and session rules: every hostile or malformed request
is refused with a sentence (never an exception of another kind), and a session cannot reach
outside its own interface and plan."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, ip_address, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sstpvpn.client.core.types import NetworkPlan
from sstpvpn.platform import helper_protocol as protocol
from sstpvpn.platform.helper_protocol import (
    ApplyPlan,
    OpenTun,
    Reply,
    RequestRefused,
    Restore,
    SessionRules,
    SetMtu,
    encode_request,
    parse_reply,
    parse_request,
)

PLAN = {"address": "198.18.30.10", "peer": "198.18.30.1", "dns": ["198.18.30.1"], "mtu": 1400, "ipv6_identifier": "0123456789abcdef"}
APPLY = {
    "version": 1,
    "request": "apply",
    "ifname": "sstp0",
    "server": "198.18.20.1",
    "full_tunnel": True,
    "plan": PLAN,
    "extra_routes": [],
    "use_vpn_dns": True,
}


def raw(message: object) -> bytes:
    return json.dumps(message).encode()


def with_fields(base: dict, **changes: object) -> dict:
    message = dict(base)
    for key, value in changes.items():
        if value is _REMOVED:
            del message[key]
        else:
            message[key] = value
    return message


def apply_with_plan(**changes: object) -> dict:
    return with_fields(APPLY, plan=with_fields(PLAN, **changes))


_REMOVED = object()


# -- well-formed requests ------------------------------------------------------------------------


def test_each_request_survives_the_round_trip():
    plan = NetworkPlan(
        address=IPv4Address("198.18.30.10"), peer=None, dns=(IPv4Address("198.18.30.1"),), mtu=1400, ipv6_identifier=bytes.fromhex("0123456789abcdef")
    )
    requests = [
        OpenTun(None),
        OpenTun("sstp0"),
        SetMtu("sstp0", 1400),
        Restore("vpn-work.1"),
        ApplyPlan("sstp0", ip_address("2001:db8::1"), False, plan),
        ApplyPlan("sstp0", ip_address("198.18.20.1"), False, plan, (ip_network("10.20.0.0/16"), ip_network("fd00:1::/64")), use_vpn_dns=False),
    ]
    for request in requests:
        data = encode_request(request)
        assert len(data) <= protocol.MAX_MESSAGE_BYTES
        assert parse_request(data) == request


def test_the_example_apply_request_parses_to_its_plan():
    request = parse_request(raw(APPLY))
    assert request == ApplyPlan(
        "sstp0",
        ip_address("198.18.20.1"),
        True,
        NetworkPlan(
            address=IPv4Address("198.18.30.10"),
            peer=IPv4Address("198.18.30.1"),
            dns=(IPv4Address("198.18.30.1"),),
            mtu=1400,
            ipv6_identifier=bytes.fromhex("0123456789abcdef"),
        ),
    )


def test_three_dns_servers_of_both_families_and_no_peer_are_fine():
    request = parse_request(raw(apply_with_plan(peer=None, dns=["198.18.30.1", "2001:db8::53", "198.18.30.2"], ipv6_identifier=None)))
    assert [str(server) for server in request.plan.dns] == ["198.18.30.1", "2001:db8::53", "198.18.30.2"]
    assert request.plan.peer is None and request.plan.ipv6_identifier is None


# -- hostile or malformed requests ------------------------------------------------------------------

HOSTILE_MESSAGES = {
    "not json": b"open sstp0",
    "not utf-8": b'{"version": 1, "request": "open", "ifname": "\xff"}',
    "a json array": raw(["open", "sstp0"]),
    "a json string": raw("open"),
    "deep nesting": b"[" * 3000 + b"]" * 3000,
    "too long": raw({**APPLY, "padding": "x" * protocol.MAX_MESSAGE_BYTES}),
    "empty": b"",
    "duplicate field": b'{"version": 1, "request": "open", "ifname": "sstp0", "ifname": "eth0"}',
    "NaN": b'{"version": 1, "request": "set_mtu", "ifname": "sstp0", "mtu": NaN}',
    "no version": raw({"request": "open", "ifname": None}),
    "version 2": raw({"version": 2, "request": "open", "ifname": None}),
    "version as text": raw({"version": "1", "request": "open", "ifname": None}),
    "version as bool": raw({"version": True, "request": "open", "ifname": None}),
    "version as float": raw({"version": 1.0, "request": "open", "ifname": None}),
    "unknown request": raw({"version": 1, "request": "route", "ifname": "sstp0", "dst": "0.0.0.0/0"}),
    "shell request": raw({"version": 1, "request": "exec", "command": "id"}),
    "request not text": raw({"version": 1, "request": ["open"], "ifname": None}),
    "unknown field": raw({"version": 1, "request": "open", "ifname": None, "command": "rm -rf /"}),
    "routes in apply": raw({**APPLY, "routes": ["0.0.0.0/0"]}),
    "missing field": raw({"version": 1, "request": "set_mtu", "ifname": "sstp0"}),
    "plan not an object": raw({**APPLY, "plan": "198.18.30.10"}),
    "unknown plan field": raw(apply_with_plan(routes=[{"dst": "10.0.0.0", "prefixlen": 8}])),
    "missing plan field": raw(apply_with_plan(dns=_REMOVED)),
    "full_tunnel as text": raw({**APPLY, "full_tunnel": "true"}),
    "full_tunnel as number": raw({**APPLY, "full_tunnel": 1}),
    "full_tunnel null": raw({**APPLY, "full_tunnel": None}),
    "use_vpn_dns as text": raw({**APPLY, "use_vpn_dns": "false"}),
    "no use_vpn_dns": raw({k: v for k, v in APPLY.items() if k != "use_vpn_dns"}),
    "no extra_routes": raw({k: v for k, v in APPLY.items() if k != "extra_routes"}),
}

BAD_INTERFACE_NAMES = [
    "../etc",
    "a/b",
    "sstp0; rm -rf /",
    "$(reboot)",
    "`id`",
    "sstp0|sh",
    "-x",
    ".",
    "..",
    "",
    "a" * 16,
    "sstp%d",
    "eth0\n",
    "sstp 0",
    "ssṫp0",
    "sstp0\x00",
    "*",
    5,
    ["sstp0"],
    {"a": 1},
]
BAD_MTUS = [67, 65536, -1, 0, "1400", 1400.0, True, None, 10**30]
BAD_SERVERS = [
    "999.1.1.1",
    "1.2.3",
    "01.2.3.4",
    "fe80::1%eth0",
    "FE80::1",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "vpn.example.com",
    "198.18.20.1; reboot",
    " 198.18.20.1",
    "198.18.20.1/32",
    3323335681,
    None,
    "1" * 100,
]
BAD_TUNNEL_ADDRESSES = [
    "127.0.0.1",
    "0.0.0.0",
    "0.1.2.3",
    "255.255.255.255",
    "240.0.0.1",
    "224.0.0.5",
    "2001:db8::1",
    "198.18.30.010",
    "198.18.30.10 ",
    5,
    None,
]
BAD_DNS_LISTS = [
    ["198.18.30.1"] * 4,
    "198.18.30.1",
    None,
    [None],
    [5],
    ["0.0.0.0"],
    ["ff02::1"],
    ["dns.example"],
    ["198.18.30.1", "1.1.1.1; reboot"],
    {"0": "198.18.30.1"},
]
BAD_EXTRA_ROUTES = [
    "10.20.0.0/16",
    None,
    [None],
    [5],
    ["10.20.0.1/16"],
    ["10.20.0.0/016"],
    ["0.0.0.0/0"],
    ["::/0"],
    ["127.0.0.0/8"],
    ["0.0.0.0/1"],
    ["169.254.0.0/16"],
    ["224.0.0.0/8"],
    ["fe80::/64"],
    ["ff00::/12"],
    ["10.20.0.0/16; reboot"],
    ["10.0.0.0/8"] * 33,
    [["10.0.0.0/8"]],
    ["FD00:1::/64"],
    ["10.20.0.0/16 "],
]
BAD_IDENTIFIERS = ["00" * 8, "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0", "xyz3456789abcdef", 123, ["01"], ""]


def _cases() -> list[tuple[str, bytes]]:
    cases = list(HOSTILE_MESSAGES.items())
    for name in BAD_INTERFACE_NAMES:
        cases += [
            (f"open {name!r}", raw({"version": 1, "request": "open", "ifname": name})),
            (f"restore {name!r}", raw({"version": 1, "request": "restore", "ifname": name})),
            (f"apply on {name!r}", raw({**APPLY, "ifname": name})),
        ]
    cases += [("restore of no interface", raw({"version": 1, "request": "restore", "ifname": None}))]
    for value in BAD_MTUS:
        cases += [
            (f"set_mtu {value!r}", raw({"version": 1, "request": "set_mtu", "ifname": "sstp0", "mtu": value})),
            (f"plan mtu {value!r}", raw(apply_with_plan(mtu=value))),
        ]
    cases += [(f"server {value!r}", raw({**APPLY, "server": value})) for value in BAD_SERVERS]
    for value in BAD_TUNNEL_ADDRESSES:
        cases += [(f"address {value!r}", raw(apply_with_plan(address=value)))]
        if value is not None:  # no peer is fine
            cases += [(f"peer {value!r}", raw(apply_with_plan(peer=value)))]
    cases += [(f"dns {value!r}", raw(apply_with_plan(dns=value))) for value in BAD_DNS_LISTS]
    cases += [(f"identifier {value!r}", raw(apply_with_plan(ipv6_identifier=value))) for value in BAD_IDENTIFIERS]
    cases += [(f"extra routes {str(value)[:40]}", raw({**APPLY, "extra_routes": value})) for value in BAD_EXTRA_ROUTES]
    return cases


@pytest.mark.parametrize(("case", "data"), _cases(), ids=[case for case, _ in _cases()])
def test_hostile_request_is_refused_with_a_sentence(case, data):
    with pytest.raises(RequestRefused) as refused:
        parse_request(data)
    sentence = refused.value.sentence
    assert sentence.endswith(".") and "Traceback" not in sentence, sentence
    assert len(sentence) < 300  # a hostile field is never echoed back at length


def test_unknown_field_names_are_shown_cut_short():
    with pytest.raises(RequestRefused) as refused:
        parse_request(raw({"version": 1, "request": "open", "ifname": None, "x" * 1000: 1}))
    assert "x" * 41 not in refused.value.sentence


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused(data):
    try:
        parse_request(data)
    except RequestRefused:
        pass


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(
    st.sampled_from(["open", "set_mtu", "apply", "restore"]),
    st.dictionaries(st.sampled_from(["ifname", "mtu", "server", "full_tunnel", "plan", "extra"]), _json, max_size=5),
)
def test_any_json_fields_parse_or_are_refused(kind, fields):
    try:
        parse_request(raw({"version": 1, "request": kind, **fields}))
    except RequestRefused:
        pass


# -- the session's rules --------------------------------------------------------------------------


def apply_request(**changes: object) -> ApplyPlan:
    return parse_request(raw({**APPLY, **changes}))


SAME_PLAN = apply_request()
OTHER_ADDRESS = parse_request(raw(apply_with_plan(address="198.18.30.11")))
OTHER_DNS = parse_request(raw(apply_with_plan(dns=["198.18.99.53"])))
OTHER_SERVER = apply_request(server="198.18.20.99")
SPLIT = apply_request(full_tunnel=False)

# Each case: the requests that went before (all admitted), then the one under test.
OUT_OF_SESSION = {
    "set_mtu before open": ([], SetMtu("sstp0", 1400), "Open the tunnel interface first"),
    "apply before open": ([], SAME_PLAN, "Open the tunnel interface first"),
    "restore before open": ([], Restore("sstp0"), "Open the tunnel interface first"),
    "second open": ([OpenTun(None)], OpenTun("sstp1"), "already has its tunnel interface sstp0"),
    "restore of another interface": ([OpenTun(None)], Restore("eth0"), "was not created by this connection"),
    "apply to another interface": ([OpenTun(None)], apply_request(ifname="eth0"), "was not created by this connection"),
    "set_mtu of another interface": ([OpenTun(None)], SetMtu("lo", 1400), "was not created by this connection"),
    "second apply, other address": ([OpenTun(None), SAME_PLAN], OTHER_ADDRESS, "plan is set already"),
    "second apply, other DNS": ([OpenTun(None), SAME_PLAN], OTHER_DNS, "plan is set already"),
    "second apply, other server": ([OpenTun(None), SAME_PLAN], OTHER_SERVER, "plan is set already"),
    "second apply, split instead of full": ([OpenTun(None), SAME_PLAN], SPLIT, "plan is set already"),
    "other plan after restore": ([OpenTun(None), SAME_PLAN, Restore("sstp0")], OTHER_ADDRESS, "plan is set already"),
    "MTU outside the plan": ([OpenTun(None), SAME_PLAN], SetMtu("sstp0", 9000), "outside it"),
}


@pytest.mark.parametrize(("before", "request_", "fragment"), OUT_OF_SESSION.values(), ids=OUT_OF_SESSION.keys())
def test_request_outside_the_session_is_refused(before, request_, fragment):
    rules = _rules_after(before)
    state = (rules.ifname, rules.plan, rules.network_applied)
    with pytest.raises(RequestRefused) as refused:
        rules.admit(request_)
    assert fragment in refused.value.sentence
    assert (rules.ifname, rules.plan, rules.network_applied) == state  # a refusal changes nothing


WITHIN_SESSION = {
    "open": ([], OpenTun(None), True),
    "set_mtu before the plan": ([OpenTun(None)], SetMtu("sstp0", 1280), True),
    "first apply": ([OpenTun(None)], SAME_PLAN, True),
    "the plan's MTU after apply": ([OpenTun(None), SAME_PLAN], SetMtu("sstp0", 1400), True),
    "the same plan again while applied": ([OpenTun(None), SAME_PLAN], SAME_PLAN, False),
    "the same plan after a restore": ([OpenTun(None), SAME_PLAN, Restore("sstp0")], SAME_PLAN, True),
    "restore": ([OpenTun(None), SAME_PLAN], Restore("sstp0"), True),
    "restore with nothing applied": ([OpenTun(None)], Restore("sstp0"), True),
}


@pytest.mark.parametrize(("before", "request_", "act"), WITHIN_SESSION.values(), ids=WITHIN_SESSION.keys())
def test_request_within_the_session_is_admitted(before, request_, act):
    assert _rules_after(before).admit(request_) is act


def _rules_after(requests: list) -> SessionRules:
    """Rules as the helper leaves them after carrying out `requests` (the interface is sstp0)."""
    rules = SessionRules()
    for request in requests:
        assert rules.admit(request) is True
        if isinstance(request, OpenTun):
            rules.opened(request.ifname or "sstp0")
        elif isinstance(request, ApplyPlan):
            rules.network_changed(True)
        elif isinstance(request, Restore):
            rules.network_changed(False)
    return rules


# -- replies ------------------------------------------------------------------------------------


def test_replies_survive_the_round_trip():
    for reply in [
        Reply(True),
        Reply(True, ifname="sstp3"),
        Reply(True, ifname="SSTP VPN 2", relay="0123456789abcdef0123456789abcdef"),  # Windows: the Wintun alias and the packet pipe
        Reply(True, notes=("left alone.",)),
        Reply(False, error="The interface eth0 was not created by this connection."),
    ]:
        assert parse_reply(protocol.encode_reply(reply)) == reply


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"ok",
        raw([]),
        raw({"ok": "yes"}),
        raw({"ok": True, "ifname": 5}),
        raw({"ok": True, "ifname": "../x"}),
        raw({"ok": True, "notes": "x"}),
        raw({"ok": True, "notes": [1]}),
        raw({"ok": True, "relay": "..\\..\\pipe\\other"}),
        raw({"ok": True, "relay": "0123456789ABCDEF0123456789ABCDEF"}),
        raw({"ok": True, "relay": 5}),
        raw({"ok": True, "ifname": "SSTP VPN 0"}),
        raw({"ok": True, "ifname": "SSTP VPN x"}),
    ],
)
def test_a_malformed_reply_is_a_sentence_too(data):
    with pytest.raises(RequestRefused):
        parse_reply(data)


# -- what the VPN's DHCP server sent ("push") -----------------------------------------------------


def _push(**fields: object) -> bytes:
    return raw(
        {
            "version": 1,
            "request": "push",
            "ifname": "sstp0",
            "routes": ["10.20.0.0/16"],
            "domain": "corp.example",
            "search": ["corp.example", "lab.corp.example"],
            **fields,
        }
    )


def test_a_push_round_trips():
    from sstpvpn.client.core.types import PushedSettings
    from sstpvpn.platform.helper_protocol import PushSettings

    request = PushSettings("sstp0", PushedSettings((ip_network("10.20.0.0/16"),), "corp.example", ("corp.example",)))
    assert protocol.parse_request(protocol.encode_request(request)) == request
    assert protocol.parse_request(_push()).settings.search == ("corp.example", "lab.corp.example")


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"routes": ["0.0.0.0/0"]}, "cannot be routed through the tunnel"),
        ({"routes": ["127.0.0.0/8"]}, "cannot be routed through the tunnel"),
        ({"routes": ["2001:db8::/32"]}, "are IPv4 networks"),
        ({"routes": ["10.20.0.1/16"]}, "written like"),
        ({"routes": [f"10.{n}.0.0/16" for n in range(33)]}, "At most 32"),
        ({"domain": "corp.example; reboot"}, "not a domain name"),
        ({"domain": "-x.example"}, "not a domain name"),
        ({"domain": "CORP.example"}, "not a domain name"),  # lower case only, as the client writes it
        ({"domain": "com"}, "not a domain name"),  # a whole top-level domain
        ({"search": ["a.example"] * 7}, "at most 6"),
        ({"search": "corp.example"}, "at most 6"),
        ({"search": ["x\ny"]}, "not a domain name"),
    ],
)
def test_a_hostile_push_is_refused(fields, fragment):
    with pytest.raises(RequestRefused, match=fragment):
        protocol.parse_request(_push(**fields))


def test_a_push_comes_once_and_only_after_the_plan():
    rules = SessionRules()
    push = protocol.parse_request(_push())
    rules.admit(OpenTun(None))
    rules.opened("sstp0")
    with pytest.raises(RequestRefused, match="Apply the network plan before"):
        rules.admit(push)
    rules.network_changed(True)
    assert rules.admit(push) is True
    assert rules.admit(push) is True  # not carried out (refused or failed): it may come again
    rules.pushed_added()
    with pytest.raises(RequestRefused, match="once per connection"):
        rules.admit(push)


def test_a_reply_with_more_notes_than_a_message_holds_still_goes_out(tmp_path):
    """A VPN server can push 32 routes that are all left out, each with a long note: the session
    answers (the notes go to the helper's log) instead of failing."""
    import socket

    from sstpvpn.client.core.types import PushedSettings
    from sstpvpn.platform.helper_conversation import HelperSession
    from sstpvpn.platform.helper_session import Peer, SocketChannel

    class Configurator:
        ifname = "sstp0"

        def add_pushed(self, pushed: PushedSettings) -> list[str]:
            return [f"Left out the route {network} that the VPN's DHCP server sent: " + "x" * 150 for network in pushed.routes]

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    session = HelperSession(SocketChannel(ours), Peer(1, 2, 3), tmp_path / "j.json", create_tun=None, make_configurator=None)
    session.rules.opened("sstp0")
    session.rules.network_changed(True)
    session.tun, session.configurator = type("Tun", (), {"name": "sstp0"})(), Configurator()
    request = _push(routes=[f"10.{n}.0.0/16" for n in range(32)])
    session._send(*session._handle(request, []))
    answer = protocol.parse_reply(theirs.recv(protocol.MAX_MESSAGE_BYTES + 1))
    assert answer.ok and answer.notes == ("32 notes; the helper's log has them.",)
    assert session.rules.pushed  # carried out: a second push is refused
    session.tun = None
    ours.close()
    theirs.close()


# -- the kill switch and repair --------------------------------------------------------------------

KILL_SWITCH = {
    "version": 1,
    "request": "kill_switch",
    "endpoints": [{"address": "198.18.20.1", "port": 443}, {"address": "2001:db8::1", "port": 8443}],
    "tunnels": ["sstp0"],
    "allow_lan": False,
}


def test_kill_switch_and_repair_survive_the_round_trip():
    from sstpvpn.platform.helper_protocol import Repair, SetKillSwitch
    from sstpvpn.platform.kill_switch import AllowedEndpoint, KillSwitchRules

    endpoints = tuple(AllowedEndpoint(ip_address(f"198.18.20.{n}"), 65535 - n) for n in range(1, 9))
    for request in (
        SetKillSwitch(KillSwitchRules(endpoints, ("sstp0", "sstp1", "vpn-work.1", "sstp3"), True)),
        SetKillSwitch(KillSwitchRules((AllowedEndpoint(ip_address("2001:db8::1"), 1),))),
        SetKillSwitch(KillSwitchRules(())),
        Repair(),
    ):
        data = encode_request(request)
        assert len(data) <= protocol.MAX_MESSAGE_BYTES
        assert parse_request(data) == request
    assert parse_request(raw(KILL_SWITCH)).rules.endpoints[1] == AllowedEndpoint(ip_address("2001:db8::1"), 8443)


def _endpoints(*pairs: tuple[object, object]) -> list[dict]:
    return [{"address": address, "port": port} for address, port in pairs]


HOSTILE_KILL_SWITCH = {
    "non-canonical IPv6": (dict(endpoints=_endpoints(("2001:DB8::1", 443))), "written the usual way"),
    "IPv6 with zeros": (dict(endpoints=_endpoints(("2001:db8:0:0::1", 443))), "written the usual way"),
    "leading zeros": (dict(endpoints=_endpoints(("198.18.020.1", 443))), "written the usual way"),
    "zone suffix": (dict(endpoints=_endpoints(("fe80::1%eth0", 443))), "written the usual way"),
    "a name": (dict(endpoints=_endpoints(("vpn.example", 443))), "written the usual way"),
    "a network": (dict(endpoints=_endpoints(("198.18.20.0/24", 443))), "written the usual way"),
    "unspecified": (dict(endpoints=_endpoints(("0.0.0.0", 443))), "not the address of one server"),
    "unspecified IPv6": (dict(endpoints=_endpoints(("::", 443))), "not the address of one server"),
    "multicast": (dict(endpoints=_endpoints(("224.0.0.1", 443))), "not the address of one server"),
    "port 0": (dict(endpoints=_endpoints(("198.18.20.1", 0))), "from 1 to 65535"),
    "port too big": (dict(endpoints=_endpoints(("198.18.20.1", 65536))), "from 1 to 65535"),
    "port as text": (dict(endpoints=_endpoints(("198.18.20.1", "443"))), "from 1 to 65535"),
    "port true": (dict(endpoints=_endpoints(("198.18.20.1", True))), "from 1 to 65535"),
    "port float": (dict(endpoints=_endpoints(("198.18.20.1", 443.0))), "from 1 to 65535"),
    "nine endpoints": (dict(endpoints=_endpoints(*[(f"198.18.20.{n}", 443) for n in range(1, 10)])), "at most 8"),
    "endpoints not a list": (dict(endpoints={"address": "198.18.20.1", "port": 443}), "at most 8"),
    "endpoint extra field": (dict(endpoints=[{"address": "198.18.20.1", "port": 443, "proto": "udp"}]), "an address and a port"),
    "endpoint lacks port": (dict(endpoints=[{"address": "198.18.20.1"}]), "an address and a port"),
    "endpoint as text": (dict(endpoints=["198.18.20.1:443"]), "an address and a port"),
    "option-like tunnel": (dict(tunnels=["-x"]), "cannot be a tunnel interface name"),
    "tunnel with space": (dict(tunnels=["sstp0 accept"]), "cannot be a tunnel interface name"),
    "tunnel with quote": (dict(tunnels=['sstp0"']), "cannot be a tunnel interface name"),
    "tunnel too long": (dict(tunnels=["a" * 16]), "cannot be a tunnel interface name"),
    "empty tunnel": (dict(tunnels=[""]), "cannot be a tunnel interface name"),
    "wildcard tunnel": (dict(tunnels=["sstp*"]), "cannot be a tunnel interface name"),
    "loopback as tunnel": (dict(tunnels=["lo"]), "loopback passes anyway"),
    "a tunnel twice": (dict(tunnels=["sstp0", "sstp0"]), "each named once"),
    "five tunnels": (dict(tunnels=[f"sstp{n}" for n in range(5)]), "at most 4"),
    "tunnels not a list": (dict(tunnels="sstp0"), "at most 4"),
    "allow_lan as text": (dict(allow_lan="yes"), "true or false"),
    "allow_lan as 1": (dict(allow_lan=1), "true or false"),
    "unknown field": (dict(forward=True), "does not take ('forward')"),
    "missing field": (dict(allow_lan=_REMOVED), "lacks allow_lan"),
}


@pytest.mark.parametrize(("changes", "fragment"), HOSTILE_KILL_SWITCH.values(), ids=HOSTILE_KILL_SWITCH.keys())
def test_a_hostile_kill_switch_request_is_refused(changes, fragment):
    with pytest.raises(RequestRefused) as refused:
        parse_request(raw(with_fields(KILL_SWITCH, **changes)))
    assert fragment in refused.value.sentence


def test_repair_takes_no_fields():
    with pytest.raises(RequestRefused, match="does not take"):
        parse_request(raw({"version": 1, "request": "repair", "ifname": "sstp0"}))


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["endpoints", "tunnels", "allow_lan", "extra"]), _json, max_size=4))
def test_any_kill_switch_fields_parse_or_are_refused(fields):
    try:
        parse_request(raw({"version": 1, "request": "kill_switch", **fields}))
    except RequestRefused:
        pass


def test_kill_switch_and_repair_may_start_a_session_and_restore_then_removes_it():
    from sstpvpn.platform.helper_protocol import Repair

    rules = SessionRules()
    kill_switch = parse_request(raw(KILL_SWITCH))
    assert rules.admit(Repair()) is True
    with pytest.raises(RequestRefused, match="Open the tunnel interface first"):
        rules.admit(Restore("sstp0"))  # nothing to restore yet
    assert rules.admit(kill_switch) is True
    rules.kill_switch_changed(True)
    assert rules.admit(kill_switch) is True  # replaced
    assert rules.admit(Restore("sstp0")) is True
    with pytest.raises(RequestRefused, match="Open the tunnel interface first"):
        rules.admit(SetMtu("sstp0", 1400))  # the kill switch opens no interface


class _RecordingKillSwitch:
    def __init__(self, log: list) -> None:
        self.log = log

    def set(self, rules) -> None:
        self.log.append(("set", rules))

    def remove(self) -> None:
        self.log.append(("remove",))


def _session_pair(tmp_path, **options):
    import socket

    from sstpvpn.platform.helper_conversation import HelperSession
    from sstpvpn.platform.helper_session import Peer, SocketChannel

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    session = HelperSession(SocketChannel(ours), Peer(1, 2, 3), tmp_path / "j.json", create_tun=None, make_configurator=None, **options)
    return session, ours, theirs


def _ask(session, theirs, data: bytes, handles: list[int] | None = None) -> Reply:
    session._send(*session._handle(data, [] if handles is None else handles))
    return protocol.parse_reply(theirs.recv(protocol.MAX_MESSAGE_BYTES + 1))


def test_a_kill_switch_session_checks_the_namespace_once_replaces_and_removes_at_its_end(tmp_path):
    log: list = []
    checked: list = []

    def check_open(handles: list[int]) -> str | None:
        checked.append(list(handles))
        return None if handles == [7] else "not your namespace"

    session, ours, theirs = _session_pair(tmp_path, check_open=check_open, kill_switch_factory=lambda: _RecordingKillSwitch(log))
    refused = _ask(session, theirs, raw(KILL_SWITCH), [])
    assert not refused.ok and refused.error == "not your namespace" and log == []
    assert _ask(session, theirs, raw(KILL_SWITCH), [7]).ok
    replaced = with_fields(KILL_SWITCH, tunnels=["sstp0", "sstp1"], allow_lan=True)
    assert _ask(session, theirs, raw(replaced), []).ok  # proven once: no descriptor needed again
    assert checked == [[], [7]]
    assert [entry[0] for entry in log] == ["set", "set"] and log[1][1].allow_lan is True
    session.end()
    assert log[-1] == ("remove",) and session.kill_switch is None
    session.end()
    assert len(log) == 3  # once
    ours.close()
    theirs.close()


def test_restore_removes_a_kill_switch_and_a_helper_without_one_says_so(tmp_path):
    log: list = []
    session, ours, theirs = _session_pair(tmp_path, kill_switch_factory=lambda: _RecordingKillSwitch(log), repair=lambda: ["Removed X."])
    assert _ask(session, theirs, raw(KILL_SWITCH)).ok
    assert _ask(session, theirs, raw({"version": 1, "request": "restore", "ifname": "sstp0"})).ok
    assert log[-1] == ("remove",) and not session.rules.kill_switch_on
    assert _ask(session, theirs, raw({"version": 1, "request": "repair"})).notes == ("Removed X.",)
    session.end()
    assert len(log) == 2
    plain, ours2, theirs2 = _session_pair(tmp_path)
    answer = _ask(plain, theirs2, raw(KILL_SWITCH))
    assert not answer.ok and "no kill switch" in answer.error
    assert "cannot repair" in _ask(plain, theirs2, raw({"version": 1, "request": "repair"})).error
    for sock in (ours, theirs, ours2, theirs2):
        sock.close()
