"""IPV6CP that opens after the tunnel is up (SoftEther's case): the runner gives the running
configurator the IPv6 link once, and the helper's "ipv6_link" request carries it for an ordinary
user, strictly validated and only within its session. (The kernel side: tests/platform/
test_ipv6_link_linux.py; against SoftEther: tests/integration/test_ipv6_softether.py.)"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket

import pytest

from sstpvpn.client.core.events import LogRecord
from sstpvpn.client.core.types import NetworkPlan, State, Status
from sstpvpn.client.runner import EngineRunner, _Session
from sstpvpn.platform import helper_protocol as protocol
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.helper_protocol import AddIpv6Link, ApplyPlan, OpenTun, RequestRefused, Restore, SessionRules, parse_request

IDENTIFIER = bytes.fromhex("0211223344556677")
PLAN = NetworkPlan(address=ipaddress.IPv4Address("198.18.30.10"), peer=ipaddress.IPv4Address("198.18.30.1"), mtu=1400)
WITH_IPV6 = NetworkPlan(address=PLAN.address, peer=PLAN.peer, mtu=1400, ipv6_identifier=IDENTIFIER)


def raw(message: dict) -> bytes:
    return json.dumps(message).encode()


# -- the runner ---------------------------------------------------------------------------------


class _Tun:
    name = "sstp0"


class _Configurator:
    def __init__(self, refuse: str | None = None) -> None:
        self.added: list[bytes] = []
        self.refuse = refuse

    def add_ipv6_link(self, identifier: bytes) -> None:
        if self.refuse:
            raise PlatformError(self.refuse)
        self.added.append(identifier)


def _running_session(configurator: _Configurator, applied: NetworkPlan) -> tuple[_Session, list[Status], list[LogRecord]]:
    statuses: list[Status] = []
    records: list[LogRecord] = []
    runner = EngineRunner(statuses.append, records.append)  # not started: its steps by hand
    runner._status = Status(State.CONNECTED, plan=applied, interface="sstp0")
    session = object.__new__(_Session)  # only what a running session's link update uses
    session.runner, session.tun, session.configurator, session.tun_lost = runner, _Tun(), configurator, False
    return session, statuses, records


def test_a_late_ipv6cp_gives_the_running_tunnel_its_ipv6_link_once():
    configurator = _Configurator()
    session, statuses, records = _running_session(configurator, PLAN)
    session._configure(WITH_IPV6)
    assert configurator.added == [IDENTIFIER]
    assert statuses[-1].plan == WITH_IPV6 and statuses[-1].state is State.CONNECTED
    assert records[-1] == LogRecord(
        logging.INFO, "IPv6 is up: link-local address fe80::211:2233:4455:6677; a global one comes from the VPN's router."
    )
    session._configure(WITH_IPV6)  # IPV6CP renegotiated to the same: nothing more to add
    assert configurator.added == [IDENTIFIER]
    assert records[-1].message.startswith("Link update: ")


def test_a_refused_ipv6_link_is_a_warning_and_ipv4_goes_on():
    configurator = _Configurator(refuse="Could not give the interface sstp0 the address fe80::211:2233:4455:6677 (No such device).")
    session, statuses, records = _running_session(configurator, PLAN)
    session._configure(WITH_IPV6)
    assert records == [LogRecord(logging.WARNING, configurator.refuse)]
    assert statuses == []  # still connected with the plan applied before
    assert not getattr(session, "finished", False)


# -- the helper's request -----------------------------------------------------------------------


def test_the_ipv6_link_request_round_trips():
    request = AddIpv6Link("sstp0", IDENTIFIER)
    assert json.loads(protocol.encode_request(request)) == {
        "version": 1,
        "request": "ipv6_link",
        "ifname": "sstp0",
        "ipv6_identifier": "0211223344556677",
    }
    assert parse_request(protocol.encode_request(request)) == request


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"ipv6_identifier": "0000000000000000"}, "not all zero"),
        ({"ipv6_identifier": "02112233445566"}, "16 lower-case hex digits"),
        ({"ipv6_identifier": "021122334455667700"}, "16 lower-case hex digits"),
        ({"ipv6_identifier": "02112233445566AA"}, "16 lower-case hex digits"),
        ({"ipv6_identifier": " 0211223344556677"}, "16 lower-case hex digits"),
        ({"ipv6_identifier": 144403162813474423}, "16 lower-case hex digits"),
        ({"ipv6_identifier": None}, "16 lower-case hex digits"),
        ({"ifname": "../all"}, "cannot be a tunnel interface name"),
        ({"ifname": "-all"}, "cannot be a tunnel interface name"),
        ({"ifname": "sstp0 all"}, "cannot be a tunnel interface name"),
        ({"accept_ra": 2}, "fields the network helper does not take"),
    ],
)
def test_a_hostile_ipv6_link_request_is_refused_with_a_sentence(fields, fragment):
    message = {"version": 1, "request": "ipv6_link", "ifname": "sstp0", "ipv6_identifier": "0211223344556677", **fields}
    with pytest.raises(RequestRefused, match=fragment):
        parse_request(raw(message))


def test_the_ipv6_link_comes_only_after_the_plan_on_the_own_interface_and_once():
    rules = SessionRules()
    with pytest.raises(RequestRefused, match="Open the tunnel interface first"):
        rules.admit(AddIpv6Link("sstp0", IDENTIFIER))
    assert rules.admit(OpenTun("sstp0"))
    rules.opened("sstp0")
    with pytest.raises(RequestRefused, match="Apply the network plan before adding the IPv6 link"):
        rules.admit(AddIpv6Link("sstp0", IDENTIFIER))
    apply = ApplyPlan("sstp0", ipaddress.ip_address("198.18.21.1"), True, PLAN)
    assert rules.admit(apply)
    rules.network_changed(True)
    with pytest.raises(RequestRefused, match="was not created by this connection"):
        rules.admit(AddIpv6Link("eth0", IDENTIFIER))
    assert rules.admit(AddIpv6Link("sstp0", IDENTIFIER)) is True
    rules.ipv6_link_added(IDENTIFIER)
    assert rules.admit(AddIpv6Link("sstp0", IDENTIFIER)) is False  # already so: reply ok, do nothing
    with pytest.raises(RequestRefused, match="IPv6 link is set already"):
        rules.admit(AddIpv6Link("sstp0", bytes.fromhex("0211223344556688")))
    assert rules.admit(Restore("sstp0"))
    rules.network_changed(False)  # restored with the rest: after a new "apply" it may come again
    assert rules.admit(apply)
    rules.network_changed(True)
    assert rules.admit(AddIpv6Link("sstp0", bytes.fromhex("0211223344556688"))) is True


def test_a_plan_that_had_its_ipv6_link_takes_no_second_one():
    rules = SessionRules()
    rules.admit(OpenTun("sstp0"))
    rules.opened("sstp0")
    rules.admit(ApplyPlan("sstp0", ipaddress.ip_address("198.18.21.1"), True, WITH_IPV6))
    rules.network_changed(True)
    with pytest.raises(RequestRefused, match="IPv6 link is set already"):
        rules.admit(AddIpv6Link("sstp0", IDENTIFIER))


def test_the_helper_session_adds_the_ipv6_link_through_its_configurator(tmp_path):
    from sstpvpn.platform.helper_conversation import HelperSession
    from sstpvpn.platform.helper_session import Peer, SocketChannel

    class Tun:
        name = "sstp0"

        def fileno(self) -> int:
            return 0

        def set_mtu(self, mtu: int) -> None:
            pass

        def close(self) -> None:
            pass

    class Configurator(_Configurator):
        ifname = "sstp0"

        def apply(self, plan) -> None:
            pass

        def restore(self) -> list[str]:
            return []

    configurator = Configurator()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    session = HelperSession(
        SocketChannel(ours),
        Peer(1, 2, 3),
        tmp_path / "j.json",
        create_tun=lambda ifname: Tun(),
        make_configurator=lambda *args, **kwargs: configurator,
        open_reply=lambda tun: (protocol.Reply(True, ifname=tun.name), None),
    )

    def ask(request) -> protocol.Reply:
        session._send(*session._handle(protocol.encode_request(request), []))
        return protocol.parse_reply(theirs.recv(protocol.MAX_MESSAGE_BYTES + 1))

    assert ask(OpenTun("sstp0")).ok
    assert ask(ApplyPlan("sstp0", ipaddress.ip_address("198.18.21.1"), False, PLAN)).ok
    assert ask(AddIpv6Link("sstp0", IDENTIFIER)).ok
    assert ask(AddIpv6Link("sstp0", IDENTIFIER)).ok
    assert configurator.added == [IDENTIFIER]  # once
    refused = ask(AddIpv6Link("sstp0", bytes.fromhex("0211223344556688")))
    assert not refused.ok and "IPv6 link is set already" in (refused.error or "")
    session.end()
    ours.close()
    theirs.close()


# -- what the VPN's DHCPv6 server named ------------------------------------------------------------


def test_the_runner_adds_what_the_dhcpv6_server_named_and_logs_it():
    from sstpvpn.client.core.dhcpv6 import Dhcpv6Info
    from sstpvpn.client.core.events import Dhcpv6Answered

    added: list = []

    class Configurator(_Configurator):
        def add_ipv6_dns(self, servers, search) -> list[str]:
            added.append((tuple(servers), tuple(search)))
            return ["a note"]

    session, _statuses, records = _running_session(Configurator(), WITH_IPV6)
    info = Dhcpv6Info((ipaddress.IPv6Address("fd18:30::53"),), ("corp.example",))
    session._add_ipv6_dns(Dhcpv6Answered(info).info)
    assert added == [((ipaddress.IPv6Address("fd18:30::53"),), ("corp.example",))]
    assert [r.message for r in records] == [
        "The VPN's DHCPv6 server named the DNS servers fd18:30::53 and DNS domains corp.example.",
        "a note",
    ]
    session._add_ipv6_dns(Dhcpv6Info())  # an empty answer: said, nothing to add
    assert len(added) == 1 and records[-1].message == "The VPN's DHCPv6 server named the DNS servers none and DNS domains none."


def test_the_ipv6_dns_request_round_trips_and_refuses_what_no_resolver_should_take():
    from sstpvpn.platform.helper_protocol import AddIpv6Dns

    request = AddIpv6Dns("sstp0", (ipaddress.IPv6Address("fd18:30::53"),), ("corp.example",))
    assert parse_request(protocol.encode_request(request)) == request
    good = {"version": 1, "request": "ipv6_dns", "ifname": "sstp0", "servers": ["fd18:30::53"], "search": ["corp.example"]}
    for fields, fragment in [
        ({"servers": ["fe80::1"]}, "cannot be a DNS server"),
        ({"servers": ["ff02::1:2"]}, "cannot be a DNS server"),
        ({"servers": ["::1"]}, "cannot be a DNS server"),
        ({"servers": ["::ffff:7f00:1"]}, "cannot be a DNS server"),
        ({"servers": ["198.18.30.1"]}, "IPv6 address written the usual way"),
        ({"servers": ["FD18:30::53"]}, "IPv6 address written the usual way"),
        ({"servers": ["fd18:30::53%eth0"]}, "IPv6 address written the usual way"),
        ({"servers": ["fd18:30::1", "fd18:30::2", "fd18:30::3", "fd18:30::4"]}, "at most 3 addresses"),
        ({"search": ["com"]}, "not a domain name"),
        ({"search": ["corp.example\nnameserver 1.2.3.4"]}, "not a domain name"),
        ({"search": "corp.example"}, "must be lists"),
    ]:
        with pytest.raises(RequestRefused, match=fragment):
            parse_request(raw({**good, **fields}))


def test_the_ipv6_dns_comes_after_the_ipv6_link_and_twice_at_most():
    from sstpvpn.platform.helper_protocol import AddIpv6Dns

    dns = AddIpv6Dns("sstp0", (ipaddress.IPv6Address("fd18:30::53"),))
    rules = SessionRules()
    rules.admit(OpenTun("sstp0"))
    rules.opened("sstp0")
    rules.admit(ApplyPlan("sstp0", ipaddress.ip_address("198.18.21.1"), True, PLAN))
    rules.network_changed(True)
    with pytest.raises(RequestRefused, match="Add the IPv6 link before its DNS servers"):
        rules.admit(dns)
    rules.admit(AddIpv6Link("sstp0", IDENTIFIER))
    rules.ipv6_link_added(IDENTIFIER)
    for _source in ("the router", "the DHCPv6 server"):
        assert rules.admit(dns) is True
        rules.ipv6_dns_was_added()
    with pytest.raises(RequestRefused, match="have named their DNS servers already"):
        rules.admit(dns)


def test_an_ordinary_users_configurator_asks_the_helper():
    from sstpvpn.platform.helper_client import HelperNetConfigurator
    from sstpvpn.platform.helper_protocol import AddIpv6Dns

    asked: list = []

    class Channel:
        closed = False

        def request(self, request, fds=()):
            asked.append(request)
            return protocol.Reply(True, notes=("a note",)), []

    configurator = HelperNetConfigurator(Channel(), "sstp0", "198.18.21.1")  # type: ignore[arg-type]
    configurator.add_ipv6_link(IDENTIFIER)
    assert configurator.add_ipv6_dns([ipaddress.IPv6Address("fd18:30::53")], ["corp.example"]) == ["a note"]
    assert asked == [AddIpv6Link("sstp0", IDENTIFIER), AddIpv6Dns("sstp0", (ipaddress.IPv6Address("fd18:30::53"),), ("corp.example",))]
