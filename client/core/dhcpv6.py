"""Stateless DHCPv6 over the tunnel (RFC 8415 18.2.6, Information-request): once IPV6CP is up,
one question to the VPN's DHCPv6 servers for the DNS servers (option 23, RFC 3646) and the
search list (24) that router advertisements do not give us here (the kernel takes no RDNSS). The
address itself comes by SLAAC (routing_policy); a network without a DHCPv6 server costs three
small packets.

Router advertisements may name DNS servers and domains too (RDNSS and DNSSL, RFC 8106), which
the kernel does not apply: `advertised_dns` reads them from an advertisement on its way to the
kernel (which still takes its prefixes for SLAAC).

Sans-IO, like dhcp_inform: `InformationRequest` builds the IPv6/UDP packet from our link-local
address to All_DHCP_Relay_Agents_and_Servers (ff02::1:2), recognises the Reply among the packets
coming back (which the caller then does not deliver), and says when to ask again. No Client
Identifier is sent (RFC 8415 18.2.6 allows it; RFC 7844's anonymity profile prefers it): an
information request binds nothing to us.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from ipaddress import IPv6Address

from .request_exchange import RequestExchange

CLIENT_PORT = 546
SERVER_PORT = 547
ALL_SERVERS = ipaddress.IPv6Address("ff02::1:2")  # All_DHCP_Relay_Agents_and_Servers
REPLY, INFORMATION_REQUEST = 7, 11
OPTION_ORO, OPTION_ELAPSED_TIME, OPTION_STATUS_CODE = 6, 8, 13
OPTION_DNS_SERVERS, OPTION_DOMAIN_LIST = 23, 24
UDP = 17
ICMPV6, ROUTER_ADVERTISEMENT = 58, 134
OPTION_RDNSS, OPTION_DNSSL = 25, 31  # RFC 8106, in router advertisements
SEND_AT = (0.0, 1.0, 3.0)  # seconds after IPV6CP came up (RFC 8415's INF_TIMEOUT is 1 s)
GIVE_UP_AFTER = 7.0
MAX_DNS_SERVERS = 3  # resolv.conf reads at most three
MAX_DOMAINS = 6


@dataclass(frozen=True)
class Dhcpv6Info:
    """What the VPN's DHCPv6 server told us."""

    dns: tuple[ipaddress.IPv6Address, ...] = ()
    search: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.dns or self.search)


class InformationRequest(RequestExchange[Dhcpv6Info]):
    """One Information-request from `source` (our link-local address), identified by
    `transaction` (3 random bytes), started at `now`."""

    def __init__(self, source: ipaddress.IPv6Address, transaction: bytes, now: float) -> None:
        assert source.is_link_local and len(transaction) == 3
        super().__init__(now, SEND_AT, GIVE_UP_AFTER)
        self.source = source
        self.transaction = transaction

    def _request(self, elapsed: float) -> bytes:
        return request_packet(self.source, self.transaction, elapsed)

    def _parse(self, packet: bytes) -> Dhcpv6Info | None:
        """The Reply to our request (an IPv6 packet from the tunnel), or None."""
        return parse_reply(packet[48:], self.transaction) if is_reply_to(packet, self.source) else None


# -- building --------------------------------------------------------------------------------


def request_packet(source: ipaddress.IPv6Address, transaction: bytes, elapsed: float) -> bytes:
    """The IPv6 packet: from [source]:546 to [ff02::1:2]:547, hop limit 1 (link scope)."""
    hundredths = min(0xFFFF, max(0, round(elapsed * 100)))
    message = (
        bytes([INFORMATION_REQUEST])
        + transaction
        + struct.pack("!HHHH", OPTION_ORO, 4, OPTION_DNS_SERVERS, OPTION_DOMAIN_LIST)
        + struct.pack("!HHH", OPTION_ELAPSED_TIME, 2, hundredths)
    )
    udp = struct.pack("!HHHH", CLIENT_PORT, SERVER_PORT, 8 + len(message), 0) + message
    checksum = udp_checksum(source, ALL_SERVERS, udp)
    udp = udp[:6] + struct.pack("!H", checksum) + udp[8:]
    return struct.pack("!IHBB", 6 << 28, len(udp), UDP, 1) + source.packed + ALL_SERVERS.packed + udp


def udp_checksum(source: ipaddress.IPv6Address, destination: ipaddress.IPv6Address, udp: bytes) -> int:
    """The UDP checksum over the IPv6 pseudo-header (`udp` with its checksum field zero); never
    0, which IPv6 forbids (RFC 8200 8.1)."""
    data = source.packed + destination.packed + struct.pack("!I3xB", len(udp), UDP) + udp
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total & 0xFFFF) or 0xFFFF


# -- reading ---------------------------------------------------------------------------------


def is_reply_to(packet: bytes, address: ipaddress.IPv6Address) -> bool:
    """A UDP packet (no extension headers) from port 547 to port 546 of `address`, whose UDP
    length fits the packet and whose checksum is right: cheap enough for every IPv6 packet
    while a request is open."""
    if len(packet) < 48 or packet[0] >> 4 != 6 or packet[6] != UDP or packet[24:40] != address.packed:
        return False
    source_port, destination_port, length = struct.unpack_from("!HHH", packet, 40)
    if (source_port, destination_port) != (SERVER_PORT, CLIENT_PORT) or not 8 <= length <= len(packet) - 40:
        return False
    udp = packet[40 : 40 + length]
    given = udp[6:8]
    return udp_checksum(ipaddress.IPv6Address(packet[8:24]), address, udp[:6] + b"\0\0" + udp[8:]).to_bytes(2, "big") == given


def parse_reply(payload: bytes, transaction: bytes) -> Dhcpv6Info | None:
    """What a Reply to `transaction` says; None for anything else or a Reply with an error
    status. Malformed options are skipped one by one, and nothing raises."""
    if len(payload) < 4 or payload[0] != REPLY or payload[1:4] != transaction:
        return None
    dns: list[ipaddress.IPv6Address] = []
    search: list[str] = []
    for code, data in _options(payload[4:]):
        if code == OPTION_STATUS_CODE and (len(data) < 2 or data[:2] != b"\0\0"):
            return None  # the server refused (a status other than Success)
        if code == OPTION_DNS_SERVERS and len(data) % 16 == 0:
            for start in range(0, len(data), 16):
                server = ipaddress.IPv6Address(data[start : start + 16])
                if _usable_server(server) and server not in dns and len(dns) < MAX_DNS_SERVERS:
                    dns.append(server)
        elif code == OPTION_DOMAIN_LIST:
            for name in _names(data):
                if name not in search and len(search) < MAX_DOMAINS:
                    search.append(name)
    return Dhcpv6Info(tuple(dns), tuple(search))


def advertised_dns(packet: bytes) -> Dhcpv6Info | None:
    """The DNS servers and domains (RDNSS, DNSSL) a router advertisement names, when `packet`
    (an IPv6 packet from the tunnel) is one that names any: from a link-local router, hop limit
    255 (RFC 4861 6.1.2), no extension headers, lifetimes above zero. None for anything else."""
    if len(packet) < 56 or packet[0] >> 4 != 6 or packet[6] != ICMPV6 or packet[7] != 255 or packet[40] != ROUTER_ADVERTISEMENT:
        return None
    if not IPv6Address(packet[8:24]).is_link_local or packet[41] != 0:
        return None
    dns: list[ipaddress.IPv6Address] = []
    search: list[str] = []
    options = packet[56 : 40 + struct.unpack_from("!H", packet, 4)[0]]
    position = 0
    while position + 8 <= len(options):
        kind, units = options[position], options[position + 1]
        if units == 0 or position + units * 8 > len(options):
            break  # malformed: the rest cannot be read (RFC 4861 4.6)
        body = options[position + 8 : position + units * 8]
        (lifetime,) = struct.unpack_from("!I", options, position + 4)
        if kind == OPTION_RDNSS and lifetime and len(body) % 16 == 0:
            for start in range(0, len(body), 16):
                server = ipaddress.IPv6Address(body[start : start + 16])
                if _usable_server(server) and server not in dns and len(dns) < MAX_DNS_SERVERS:
                    dns.append(server)
        elif kind == OPTION_DNSSL and lifetime:
            for name in _names(body):  # the zero padding reads as empty names, which are left out
                if name not in search and len(search) < MAX_DOMAINS:
                    search.append(name)
        position += units * 8
    info = Dhcpv6Info(tuple(dns), tuple(search))
    return info or None


def _options(data: bytes) -> list[tuple[int, bytes]]:
    found: list[tuple[int, bytes]] = []
    position = 0
    while position + 4 <= len(data):
        code, length = struct.unpack_from("!HH", data, position)
        if position + 4 + length > len(data):
            break  # cut short: what came before stands
        found.append((code, data[position + 4 : position + 4 + length]))
        position += 4 + length
    return found


def _usable_server(server: ipaddress.IPv6Address) -> bool:
    # A link-local server needs a scope a resolver configuration cannot always carry.
    return not (server.is_unspecified or server.is_loopback or server.is_multicast or server.is_link_local or server.ipv4_mapped)


def _names(data: bytes) -> list[str]:
    """The domain names in an uncompressed DNS-wire list (RFC 8415 10); a malformed one ends it."""
    names: list[str] = []
    position = 0
    while position < len(data):
        labels: list[bytes] = []
        while True:
            if position >= len(data):
                return names
            length = data[position]
            position += 1
            if length == 0:
                break
            if length > 63 or position + length > len(data):
                return names
            labels.append(data[position : position + length])
            position += length
        name = b".".join(labels).decode("ascii", "replace").lower()
        if _is_domain(name):
            names.append(name)
    return names


def _is_domain(name: str) -> bool:
    """Two labels at least (a bare top-level domain would send all its names to the VPN) of
    letters, digits, '-' and '_' (what resolvectl and resolv.conf take)."""
    labels = name.split(".")
    return (
        len(name) <= 253
        and len(labels) >= 2
        and all(0 < len(label) <= 63 and all(c.isascii() and (c.isalnum() or c in "-_") for c in label) for label in labels)
        and not any(label.startswith("-") or label.endswith("-") for label in labels)
    )
