"""client/core/dhcpv6: the stateless DHCPv6 Information-request the engine sends once IPV6CP is
up, and the Reply it takes out of the tunnel (pure; the engine against the ScriptedServer)."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

from hypothesis import given, settings
from hypothesis import strategies as st

from sstpvpn.client.core import dhcpv6
from sstpvpn.client.core.dhcpv6 import Dhcpv6Info, InformationRequest, advertised_dns, parse_reply, request_packet
from sstpvpn.client.core.events import Dhcpv6Answered, RouterAdvertisedDns
from sstpvpn.client.core.ppp_codec import PppProtocol
from tests.unit.test_engine_playbook import assert_connected, converse
from tests.unit.test_engine_playbook import settings as engine_settings

LINK_LOCAL = IPv6Address("fe80::211:2233:4455:6677")
SERVER = IPv6Address("fe80::1")
TRANSACTION = b"\x0a\x0b\x0c"


def checksum_ok(packet: bytes) -> bool:
    """An independent check: the one's-complement sum over pseudo-header and UDP is 0xFFFF."""
    udp = packet[40:]
    data = packet[8:40] + struct.pack("!I3xB", len(udp), 17) + udp + b"\0" * (len(udp) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def option(code: int, data: bytes) -> bytes:
    return struct.pack("!HH", code, len(data)) + data


def names(*domains: str) -> bytes:
    return b"".join(b"".join(bytes([len(label)]) + label.encode() for label in domain.split(".")) + b"\0" for domain in domains)


def reply(*options: bytes, transaction: bytes = TRANSACTION, to: IPv6Address = LINK_LOCAL, message_type: int = dhcpv6.REPLY) -> bytes:
    message = bytes([message_type]) + transaction + b"".join(options)
    udp = struct.pack("!HHHH", 547, 546, 8 + len(message), 0) + message
    udp = udp[:6] + struct.pack("!H", dhcpv6.udp_checksum(SERVER, to, udp)) + udp[8:]
    return struct.pack("!IHBB", 6 << 28, len(udp), 17, 64) + SERVER.packed + to.packed + udp


def test_the_request_asks_all_servers_on_the_link_for_dns_servers_and_domains():
    packet = request_packet(LINK_LOCAL, TRANSACTION, 1.234)
    assert packet[0] >> 4 == 6 and packet[6] == 17 and packet[7] == 1  # UDP, hop limit 1
    assert IPv6Address(packet[8:24]) == LINK_LOCAL and IPv6Address(packet[24:40]) == IPv6Address("ff02::1:2")
    assert struct.unpack_from("!HHH", packet, 40) == (546, 547, len(packet) - 40)
    assert struct.unpack_from("!H", packet, 4)[0] == len(packet) - 40
    assert checksum_ok(packet)
    message = packet[48:]
    assert message[0] == 11 and message[1:4] == TRANSACTION
    assert message[4:] == option(6, struct.pack("!HH", 23, 24)) + option(8, struct.pack("!H", 123))  # no Client Identifier


def test_the_request_goes_at_0_1_and_3_seconds_then_gives_up_at_7():
    exchange = InformationRequest(LINK_LOCAL, TRANSACTION, 100.0)
    sent = []
    now = 100.0
    while (deadline := exchange.deadline) is not None:
        now = deadline
        sent += [(now, packet[48:][-2:]) for packet in exchange.packets_due(now)]
    assert [moment for moment, _ in sent] == [100.0, 101.0, 103.0] and now == 107.0
    assert [struct.unpack("!H", elapsed)[0] for _, elapsed in sent] == [0, 100, 300]  # hundredths of a second
    assert exchange.finished and exchange.packets_due(200.0) == []


def test_a_reply_gives_the_usable_servers_and_the_domains():
    exchange = InformationRequest(LINK_LOCAL, TRANSACTION, 0.0)
    servers = [IPv6Address(a) for a in ("fd18:30::53", "fe80::53", "ff02::fb", "::1", "fd18:30::53", "fd18:30::54", "2001:db8::53", "2001:db8::54")]
    packet = reply(
        option(2, b"\x00\x03\x00\x01" + bytes(6)),  # the server's identifier: ignored
        option(23, b"".join(server.packed for server in servers)),
        option(24, names("corp.example", "com", "Lab.Corp.Example", "bad_name!.example", "corp.example")),
    )
    assert checksum_ok(packet)
    assert exchange.answer(packet) == Dhcpv6Info(
        dns=(IPv6Address("fd18:30::53"), IPv6Address("fd18:30::54"), IPv6Address("2001:db8::53")),  # three at most, no link-local, no loopback
        search=("corp.example", "lab.corp.example"),  # a bare top-level domain and a bad name are left out
    )
    assert exchange.finished and exchange.deadline is None


def test_anything_but_the_reply_to_our_request_is_left_for_the_tunnel():
    exchange = InformationRequest(LINK_LOCAL, TRANSACTION, 0.0)
    dns = option(23, IPv6Address("fd18:30::53").packed)
    assert exchange.answer(reply(dns, transaction=b"\x01\x02\x03")) is None  # another transaction
    assert exchange.answer(reply(dns, to=IPv6Address("fe80::99"))) is None  # another address
    assert exchange.answer(reply(dns, message_type=2)) is None  # an Advertise
    assert exchange.answer(reply(dns, option(13, b"\x00\x02NoAddrsAvail"))) is None  # an error status
    broken = bytearray(reply(dns))
    broken[-1] ^= 0xFF
    assert exchange.answer(bytes(broken)) is None  # a wrong checksum
    assert not exchange.finished
    assert exchange.answer(reply(dns, option(13, b"\x00\x00"))) == Dhcpv6Info(dns=(IPv6Address("fd18:30::53"),))


def test_cut_short_options_keep_what_came_before():
    packet = reply(option(24, names("corp.example")), option(23, IPv6Address("fd18:30::53").packed)[:10])
    assert parse_reply(packet[48:], TRANSACTION) == Dhcpv6Info(search=("corp.example",))
    assert parse_reply(bytes([7]) + TRANSACTION + option(24, b"\x04corp\x07exam"), TRANSACTION) == Dhcpv6Info()


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_any_reply_body_parses_or_is_refused(body):
    packet = reply() + body
    packet = packet[:4] + struct.pack("!H", len(packet) - 40) + packet[6:]
    InformationRequest(LINK_LOCAL, TRANSACTION, 0.0).answer(packet)  # never raises
    parse_reply(bytes([7]) + TRANSACTION + body, TRANSACTION)


# -- in the engine ------------------------------------------------------------------------------


def test_the_engine_asks_once_ipv6cp_is_up_and_consumes_the_reply():
    conversation = converse(engine_settings(ipv6=True), ipv6=True)
    assert_connected(conversation)
    assert conversation.server.dhcpv6_received == []  # no IPv6 link yet
    conversation.advance(3.0)  # like SoftEther, IPV6CP opens after IPCP
    identifier = conversation.server.client_interface_id
    link_local = IPv6Address(b"\xfe\x80" + bytes(6) + identifier)
    (request,) = conversation.server.dhcpv6_received
    assert IPv6Address(request[8:24]) == link_local and checksum_ok(request)
    transaction = request[49:52]
    answer = reply(option(23, IPv6Address("fd18:30::53").packed), option(24, names("corp.example")), transaction=transaction, to=link_local)
    conversation.server.send_ppp(PppProtocol.IPV6, answer)
    conversation.pump()
    assert conversation.of_type(Dhcpv6Answered) == [Dhcpv6Answered(Dhcpv6Info((IPv6Address("fd18:30::53"),), ("corp.example",)))]
    assert conversation.delivered == []  # taken out of the tunnel
    conversation.server.send_ppp(PppProtocol.IPV6, answer)  # again: an ordinary packet now
    conversation.pump()
    assert conversation.delivered == [answer]
    conversation.advance(10.0)
    assert len(conversation.server.dhcpv6_received) == 1  # answered: not asked again


def test_without_an_answer_the_engine_asks_three_times_and_says_so_once():
    conversation = converse(engine_settings(ipv6=True), ipv6=True)
    conversation.advance(20.0)
    assert len(conversation.server.dhcpv6_received) == 3
    said = [event.message for event in conversation.events if getattr(event, "message", "").startswith("No DHCPv6 server answered")]
    assert len(said) == 1
    assert conversation.of_type(Dhcpv6Answered) == [] and conversation.disconnected == []


# -- DNS in router advertisements (RDNSS, DNSSL) ------------------------------------------------------


def nd_option(kind: int, lifetime: int, body: bytes) -> bytes:
    body += b"\0" * (-(len(body) + 8) % 8)
    return struct.pack("!BBHI", kind, (len(body) + 8) // 8, 0, lifetime) + body


def advertisement(*options: bytes, source: IPv6Address = SERVER, hop_limit: int = 255) -> bytes:
    prefix = struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + IPv6Address("fd18:30::").packed
    icmp = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0) + prefix + b"".join(options)
    return struct.pack("!IHBB", 6 << 28, len(icmp), 58, hop_limit) + source.packed + IPv6Address("ff02::1").packed + icmp


def test_a_router_advertisement_names_dns_servers_and_domains():
    servers = b"".join(IPv6Address(a).packed for a in ("fd18:30::54", "fe80::54", "fd18:30::55"))
    packet = advertisement(nd_option(25, 600, servers), nd_option(31, 600, names("lab.example", "org")))
    assert advertised_dns(packet) == Dhcpv6Info((IPv6Address("fd18:30::54"), IPv6Address("fd18:30::55")), ("lab.example",))


def test_what_is_not_a_router_advertisement_naming_dns_gives_nothing():
    rdnss = nd_option(25, 600, IPv6Address("fd18:30::54").packed)
    assert advertised_dns(advertisement(rdnss)) is not None
    assert advertised_dns(advertisement()) is None  # only a prefix
    assert advertised_dns(advertisement(nd_option(25, 0, IPv6Address("fd18:30::54").packed))) is None  # lifetime 0: withdrawn
    assert advertised_dns(advertisement(rdnss, source=IPv6Address("fd18:30::1"))) is None  # not from a link-local router
    assert advertised_dns(advertisement(rdnss, hop_limit=64)) is None  # forwarded from elsewhere
    assert advertised_dns(advertisement(b"\x19\x00" + bytes(6), rdnss)) is None  # a zero-length option ends the reading
    assert advertised_dns(request_packet(LINK_LOCAL, TRANSACTION, 0)) is None


@settings(max_examples=300)
@given(st.binary(max_size=120))
def test_any_router_advertisement_options_parse_or_are_left_out(options):
    advertised_dns(advertisement(options))  # never raises


def test_the_engine_tells_the_first_advertisement_naming_dns_and_still_delivers_it():
    conversation = converse(engine_settings(ipv6=True), ipv6=True)
    conversation.advance(3.0)
    packet = advertisement(nd_option(25, 600, IPv6Address("fd18:30::54").packed))
    for _ in range(2):
        conversation.server.send_ppp(PppProtocol.IPV6, packet)
        conversation.pump()
    assert conversation.of_type(RouterAdvertisedDns) == [RouterAdvertisedDns(Dhcpv6Info((IPv6Address("fd18:30::54"),)))]  # once
    assert conversation.delivered == [packet, packet]  # the kernel takes its prefix
