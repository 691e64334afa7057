"""The leak classifier of tests/leak_capture.py on hand-made frames: what it allows, what it calls
a leak, and the one-line summary a failing test prints."""

from __future__ import annotations

import ipaddress
import socket
import struct

from tests.leak_capture import Endpoint, Frame, LinkPolicy, dns_question, parse

CLIENT, GATEWAY, LAN_HOST = "198.18.20.2", "198.18.20.1", "198.18.20.9"
CLIENT6 = "fd53:20::2"
POLICY = LinkPolicy(endpoints=(Endpoint(GATEWAY, 443),), local=(CLIENT, CLIENT6), gateways=(GATEWAY,))
MACS = bytes(6) + bytes.fromhex("020000000001")


def ipv4(src: str, dst: str, number: int, transport: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(transport), 0, 0, 64, number, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return MACS + b"\x08\x00" + header + transport


def ipv6(src: str, dst: str, number: int, transport: bytes) -> bytes:
    header = struct.pack("!IHBB", 6 << 28, len(transport), number, 64) + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
    return MACS + b"\x86\xdd" + header + transport


def tcp(sport: int, dport: int, flags: int = 0x02) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 5 << 4, flags, 65535, 0, 0)


def udp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def dns_query(name: str) -> bytes:
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split("."))
    return struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", 1, 1)


def arp(sender: str, target: str) -> bytes:
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, bytes(6), socket.inet_aton(sender), bytes(6), socket.inet_aton(target))
    return MACS + b"\x08\x06" + body


def verdict(data: bytes, outgoing: bool = True):
    return POLICY.classify(Frame(10.5, outgoing, data), start=10.0)


def test_the_sstp_connection_both_ways_is_allowed():
    assert verdict(ipv4(CLIENT, GATEWAY, 6, tcp(40000, 443))).kind == "sstp"
    assert verdict(ipv4(GATEWAY, CLIENT, 6, tcp(443, 40000, 0x14)), outgoing=False).kind == "sstp"


def test_other_tcp_even_to_the_server_is_a_leak():
    leak = verdict(ipv4(CLIENT, GATEWAY, 6, tcp(40000, 8443)))
    assert not leak.allowed and leak.kind == "leak"
    assert leak.summary == "+0.500 out IPv4 198.18.20.2:40000 > 198.18.20.1:8443 TCP [S] 0 bytes"


def test_dns_to_the_local_resolver_is_a_leak_named_in_its_summary():
    leak = verdict(ipv4(CLIENT, GATEWAY, 17, udp(5353, 53, dns_query("where.leak.test"))))
    assert not leak.allowed
    assert leak.summary.endswith("198.18.20.2:5353 > 198.18.20.1:53 UDP DNS query A where.leak.test")
    assert dns_question(leak.parsed.payload) == (False, "where.leak.test", 1)


def test_dhcp_and_neighbour_discovery_are_allowed():
    assert verdict(ipv4("0.0.0.0", "255.255.255.255", 17, udp(68, 67))).kind == "dhcp"
    assert verdict(ipv6("fe80::1", "ff02::1:2", 17, udp(546, 547))).kind == "dhcpv6"
    for icmp_type in (133, 134, 135, 136):
        assert verdict(ipv6("fe80::1", "ff02::2", 58, bytes([icmp_type, 0, 0, 0]))).kind == "nd"


def test_ping_ping6_and_mld_are_leaks():
    assert "ICMP echo request" in verdict(ipv4(CLIENT, "198.18.21.1", 1, bytes([8, 0, 0, 0]))).summary
    assert not verdict(ipv4(CLIENT, "198.18.21.1", 1, bytes([8, 0, 0, 0]))).allowed
    echo6 = verdict(ipv6(CLIENT6, "fd53:21::1", 58, bytes([128, 0, 0, 0])))
    assert not echo6.allowed and echo6.summary.endswith("fd53:20::2 > fd53:21::1 ICMPv6 echo request")
    # MLDv2 report behind a hop-by-hop header (router alert)
    hop_by_hop = bytes([58, 0, 5, 2, 0, 0, 1, 0])
    mld = verdict(ipv6("fe80::1", "ff02::16", 0, hop_by_hop + bytes([143, 0, 0, 0])))
    assert not mld.allowed and mld.parsed.icmp_type == 143 and "MLDv2 report" in mld.summary


def test_arp_only_between_the_machine_and_its_gateway():
    assert verdict(arp(CLIENT, GATEWAY)).kind == "arp"
    assert verdict(arp(GATEWAY, CLIENT), outgoing=False).kind == "arp"
    assert not verdict(arp(CLIENT, LAN_HOST)).allowed


def test_frames_coming_in_are_not_leaks_but_answers_to_them_are():
    netbios = ipv4(GATEWAY, CLIENT, 17, udp(39503, 137, bytes(50)))
    assert verdict(netbios, outgoing=False).kind == "inbound"
    assert verdict(netbios, outgoing=False).allowed
    unreachable = ipv4(CLIENT, GATEWAY, 1, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + netbios[14:42])
    answer = verdict(unreachable)
    assert answer.kind == "answer" and not answer.allowed and "ICMP unreachable" in answer.summary
    lenient = LinkPolicy(POLICY.endpoints, POLICY.local, POLICY.gateways, answers_are_leaks=False)
    assert lenient.classify(Frame(1.0, True, unreachable)).allowed
    # an error about a packet of our own (the local network's router telling us) is not an answer
    assert verdict(ipv4(CLIENT, GATEWAY, 1, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + ipv4(CLIENT, LAN_HOST, 17, udp(1, 2))[14:42])).kind == "leak"


def test_unknown_frames_are_leaks():
    assert not verdict(MACS + b"\x88\xcc" + bytes(40)).allowed  # LLDP
    assert parse(b"\x00").summary == "short frame (1 bytes)"
