"""DHCPINFORM over the tunnel (client/core/dhcp_inform.py): the packet we send, the answers we read
(among them the bytes SoftEther's SecureNAT really sent), and the engine asking three times at
most while the connection goes on."""

from __future__ import annotations

import ipaddress
import logging
import struct

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from sstpvpn.client.core.dhcp_inform import BOOTP_FIXED, InformExchange, _checksum, inform_packet, parse_ack
from sstpvpn.client.core.events import LogRecord, NetworkPushed
from sstpvpn.client.core.types import PushedSettings
from tests.unit.scripted_server import Conversation, ScriptedServer, ServerConfig
from tests.unit.test_engine_playbook import settings

ADDRESS = ipaddress.IPv4Address("198.18.30.10")
XID = bytes.fromhex("89eb2f1e")
# The options of the DHCPACK SoftEther 4.x SecureNAT sent to our INFORM, with
# `DhcpSet ... /DOMAIN:corp.test /PUSHROUTE:198.18.40.0/255.255.255.0/198.18.30.1` (captured here).
SOFTETHER_ACK_OPTIONS = bytes.fromhex(
    "638253633501053604c6121e010f09636f72702e746573740104ffffff000304c6121e010604c6121e01790818c61228c6121e01f90818c61228c6121e01ff00"
)


def reply(options: bytes, xid: bytes = XID) -> bytes:
    return BOOTP_FIXED.pack(2, 1, 6, 0, int.from_bytes(xid, "big"), 0, 0, ADDRESS.packed, bytes(4), bytes(4), bytes(4), bytes(16), b"", b"") + options


def udp_ip(payload: bytes, source: str = "198.18.30.1", destination: str = str(ADDRESS), ports=(67, 68)) -> bytes:
    udp = struct.pack("!HHHH", *ports, 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, ipaddress.IPv4Address(source).packed, ipaddress.IPv4Address(destination).packed
    )
    return header + udp


def test_the_inform_is_a_valid_broadcast_from_our_address():
    packet = inform_packet(ADDRESS, XID)
    assert _checksum(packet[:20]) == 0  # the IPv4 header checksum adds up
    assert packet[9] == 17 and packet[12:16] == ADDRESS.packed and packet[16:20] == b"\xff" * 4
    udp = packet[20:]
    assert struct.unpack("!HHH", udp[:6]) == (68, 67, len(udp))
    pseudo = ADDRESS.packed + b"\xff" * 4 + struct.pack("!BBH", 0, 17, len(udp))
    assert _checksum(pseudo + udp) == 0  # and so does the UDP checksum
    bootp = udp[8:]
    assert bootp[0] == 1 and bootp[4:8] == XID and bootp[12:16] == ADDRESS.packed  # ciaddr: ours
    options = bootp[BOOTP_FIXED.size :]
    assert options[:4] == b"\x63\x82\x53\x63"
    assert options[4:7] == bytes([53, 1, 8])  # DHCPINFORM
    assert options[7:9] == bytes([55, 5]) and set(options[9:14]) == {6, 15, 119, 121, 249}


def test_softethers_answer_gives_its_pushed_route_and_domain():
    assert parse_ack(reply(SOFTETHER_ACK_OPTIONS), XID) == PushedSettings(routes=(ipaddress.IPv4Network("198.18.40.0/24"),), domain="corp.test")


def test_rfc3442_routes_and_rfc3397_search_list():
    routes = (
        bytes([8, 10, 198, 18, 30, 1])
        + bytes([0, 198, 18, 30, 1])
        + bytes([32, 192, 0, 2, 7, 198, 18, 30, 1])
        + bytes([20, 172, 16, 16, 198, 18, 30, 1])
    )
    # RFC 3397 section 3's example: eng.apple.com, then marketing.apple.com pointing at apple.com.
    search = b"\x03eng\x05apple\x03com\x00\x09marketing\xc0\x04"
    options = b"\x63\x82\x53\x63\x35\x01\x05" + bytes([121, len(routes)]) + routes + bytes([119, len(search)]) + search + b"\xff"
    assert parse_ack(reply(options), XID) == PushedSettings(
        routes=tuple(map(ipaddress.IPv4Network, ["10.0.0.0/8", "192.0.2.7/32", "172.16.16.0/20"])),  # no default
        search=("eng.apple.com", "marketing.apple.com"),
    )


def test_microsofts_249_counts_when_121_is_absent_and_bad_parts_cost_only_themselves():
    options = (
        b"\x63\x82\x53\x63\x35\x01\x05"
        + bytes([249, 6, 8, 10, 198, 18, 30, 1])
        + bytes([15, 9])
        + b"bad;name!"
        + bytes([121, 3, 24, 10, 0])
        + b"\xff"
    )  # 121 cut short
    assert parse_ack(reply(options), XID) == PushedSettings()  # 121 wins, but holds nothing usable
    options = b"\x63\x82\x53\x63\x35\x01\x05" + bytes([249, 6, 8, 10, 198, 18, 30, 1]) + bytes([15, 8]) + b"corp.lan" + b"\xff"
    assert parse_ack(reply(options), XID) == PushedSettings(routes=(ipaddress.IPv4Network("10.0.0.0/8"),), domain="corp.lan")


def test_other_answers_are_not_ours():
    assert parse_ack(reply(SOFTETHER_ACK_OPTIONS, xid=b"\x00\x00\x00\x01"), XID) is None  # another exchange
    nak = SOFTETHER_ACK_OPTIONS.replace(b"\x35\x01\x05", b"\x35\x01\x06")
    assert parse_ack(reply(nak), XID) is None
    exchange = InformExchange(ADDRESS, XID, now=0.0)
    assert exchange.answer(udp_ip(reply(SOFTETHER_ACK_OPTIONS), ports=(53, 68))) is None  # not from port 67
    assert exchange.answer(udp_ip(reply(SOFTETHER_ACK_OPTIONS), destination="198.18.30.11")) is None
    assert exchange.answer(udp_ip(reply(SOFTETHER_ACK_OPTIONS))) is not None and exchange.finished


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_after_a_reply_header_parse_or_are_ignored(tail):
    result = parse_ack(reply(b"\x63\x82\x53\x63\x35\x01\x05" + tail), XID)
    assert result is None or isinstance(result, PushedSettings)


def test_the_exchange_asks_three_times_then_gives_up():
    exchange = InformExchange(ADDRESS, XID, now=100.0)
    sent = []
    now = 100.0
    while exchange.deadline is not None:
        now = max(now, exchange.deadline)
        sent += [now] * len(exchange.packets_due(now))
    assert sent == [100.0, 101.0, 103.0] and now == 105.0 and exchange.finished


# -- in the engine ------------------------------------------------------------------------------


def connected(dhcp_inform: bool = True) -> tuple[Conversation, ScriptedServer]:
    server = ScriptedServer(ServerConfig())
    engine_settings = settings()
    conversation = Conversation(type(engine_settings)(**{**engine_settings.__dict__, "dhcp_inform": dhcp_inform}), server).start()
    assert conversation.plans, "the playbook should connect"
    return conversation, server


def test_the_engine_asks_after_ipcp_and_hands_over_the_answer_without_delivering_it():
    conversation, server = connected()
    assert len(server.dhcp_received) == 1 and server.ip_received == []
    inform = server.dhcp_received[0]
    address = ipaddress.IPv4Address(inform[12:16])
    assert address == conversation.plans[0].address
    xid = inform[28 + 4 : 28 + 8]
    server.send_ipv4(udp_ip(reply(SOFTETHER_ACK_OPTIONS, xid), destination=str(address)))
    conversation.pump()
    assert conversation.of_type(NetworkPushed) == [
        NetworkPushed(PushedSettings(routes=(ipaddress.IPv4Network("198.18.40.0/24"),), domain="corp.test"))
    ]
    assert conversation.delivered == []  # consumed: no DHCP client on this machine sees it
    conversation.advance(10)
    assert len(server.dhcp_received) == 1  # answered: never asked again
    other = udp_ip(reply(SOFTETHER_ACK_OPTIONS, xid), destination=str(address))
    server.send_ipv4(other)  # a late duplicate is an ordinary packet now
    conversation.pump()
    assert conversation.delivered == [other]


def test_an_unanswered_inform_costs_three_packets_and_one_log_line():
    conversation, server = connected()
    start = conversation.now
    conversation.advance(6)
    assert len(server.dhcp_received) == 3
    assert conversation.of_type(NetworkPushed) == []
    lines = [record.message for record in conversation.of_type(LogRecord) if record.level == logging.INFO]
    assert any("did not answer (DHCPINFORM)" in line for line in lines)
    assert conversation.engine.get_timer() == start + 20.0  # only the hello timer is left


def test_it_can_be_switched_off():
    conversation, server = connected(dhcp_inform=False)
    conversation.advance(6)
    assert server.dhcp_received == []


def test_routes_a_server_may_not_choose_and_bare_top_level_domains_are_left_out():
    def route(width: int, *octets: int) -> bytes:
        return bytes([width, *octets[: (width + 7) // 8], 198, 18, 30, 1])

    routes = route(1, 0) + route(1, 128) + route(4, 224) + route(8, 127) + route(16, 169, 254) + route(7, 10) + route(16, 10, 20)
    options = b"\x63\x82\x53\x63\x35\x01\x05" + bytes([121, len(routes)]) + routes + bytes([15, 3]) + b"com" + b"\xff"
    # Only 10.20.0.0/16: no halves of the default route (a full tunnel is the profile's choice),
    # no multicast, loopback or link-local, nothing shorter than /8; and no domain "com".
    assert parse_ack(reply(options), XID) == PushedSettings(routes=(ipaddress.IPv4Network("10.20.0.0/16"),))
