"""DHCPINFORM over the tunnel, as Windows' own SSTP client does once IPCP is up (RFC 2131 3.4):
one question to the VPN's DHCP server for what IPCP cannot carry, namely routes to the
company's networks (option 121, RFC 3442, and Microsoft's 249 in the same format), the DNS domain
(15) and the search list (119, RFC 3397). Windows RRAS relays it to the company's DHCP server;
SoftEther's SecureNAT answers it itself (its `DhcpSet /PUSHROUTE:` and `/DOMAIN:`).

Sans-IO: `InformExchange` builds the IPv4/UDP packet to send through the tunnel, recognises the
answer among the packets coming back, and says when to ask again. It never delays the
connection: the caller goes on and applies what comes when it comes; a server that never
answers costs three small packets (at 0, 1 and 3 s) and nothing else.
"""

from __future__ import annotations

import ipaddress
import struct

from .request_exchange import RequestExchange
from .types import PushedSettings

CLIENT_PORT = 68
SERVER_PORT = 67
MAGIC_COOKIE = b"\x63\x82\x53\x63"
BOOTREQUEST, BOOTREPLY = 1, 2
DHCPACK, DHCPINFORM = 5, 8
OPTION_PAD, OPTION_END = 0, 255
OPTION_DNS, OPTION_DOMAIN, OPTION_MESSAGE_TYPE, OPTION_REQUESTED = 6, 15, 53, 55
OPTION_SEARCH, OPTION_ROUTES, OPTION_MS_ROUTES = 119, 121, 249
OPTION_CLIENT_ID = 61
SEND_AT = (0.0, 1.0, 3.0)  # seconds after IPCP came up
GIVE_UP_AFTER = 5.0
MAX_ROUTES = 32  # as many as a profile's extra routes
MIN_ROUTE_WIDTH = 8
_NEVER = [ipaddress.IPv4Network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/3")]
BOOTP_FIXED = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")  # 236 bytes

IPv4Network = ipaddress.IPv4Network


class InformExchange(RequestExchange[PushedSettings]):
    """One DHCPINFORM from `address`, identified by `xid` (4 random bytes), started at `now`."""

    def __init__(self, address: ipaddress.IPv4Address, xid: bytes, now: float) -> None:
        super().__init__(now, SEND_AT, GIVE_UP_AFTER)
        self.address = address
        self.xid = xid

    def _request(self, elapsed: float) -> bytes:
        return inform_packet(self.address, self.xid)

    def _parse(self, packet: bytes) -> PushedSettings | None:
        """The settings of the DHCPACK to our INFORM (an IPv4 packet from the tunnel), or None."""
        return parse_ack(udp_payload(packet), self.xid) if is_dhcp_reply_to(packet, self.address) else None


# -- building --------------------------------------------------------------------------------


def inform_packet(address: ipaddress.IPv4Address, xid: bytes) -> bytes:
    """The IPv4 packet: from address:68 to 255.255.255.255:67 (the server may not be the peer)."""
    bootp = BOOTP_FIXED.pack(
        BOOTREQUEST, 1, 6, 0, int.from_bytes(xid, "big"), 0, 0, address.packed, bytes(4), bytes(4), bytes(4), bytes(16), b"", b""
    )
    options = (
        MAGIC_COOKIE
        + bytes([OPTION_MESSAGE_TYPE, 1, DHCPINFORM])
        + bytes([OPTION_REQUESTED, 5, OPTION_DOMAIN, OPTION_SEARCH, OPTION_ROUTES, OPTION_MS_ROUTES, OPTION_DNS])
        + bytes([OPTION_END])
    )
    payload = bootp + options
    udp = struct.pack("!HHHH", CLIENT_PORT, SERVER_PORT, 8 + len(payload), 0) + payload
    checksum = _checksum(address.packed + b"\xff\xff\xff\xff" + struct.pack("!BBH", 0, 17, len(udp)) + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", checksum) + udp[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, address.packed, b"\xff\xff\xff\xff")
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + udp


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


# -- reading ---------------------------------------------------------------------------------


def is_dhcp_reply_to(packet: bytes, address: ipaddress.IPv4Address) -> bool:
    """A UDP packet from port 67 to port 68 of `address` (or broadcast): cheap enough for every
    packet while an exchange is open."""
    if len(packet) < 28 or packet[0] >> 4 != 4 or packet[9] != 17:
        return False
    header = (packet[0] & 0x0F) * 4
    if len(packet) < header + 8 or packet[16:20] not in (address.packed, b"\xff\xff\xff\xff"):
        return False
    source_port: int
    destination_port: int
    source_port, destination_port = struct.unpack_from("!HH", packet, header)
    return source_port == SERVER_PORT and destination_port == CLIENT_PORT


def udp_payload(packet: bytes) -> bytes:
    header = (packet[0] & 0x0F) * 4
    (length,) = struct.unpack_from("!H", packet, header + 4)
    return packet[header + 8 : header + max(length, 8)]


def parse_ack(payload: bytes, xid: bytes) -> PushedSettings | None:
    """The settings in a DHCPACK for `xid`; None for anything else. Malformed options are
    skipped one by one: a bad route list never costs the domain, and nothing raises."""
    if len(payload) < BOOTP_FIXED.size + 4 or payload[0] != BOOTREPLY or payload[4:8] != xid:
        return None
    if payload[BOOTP_FIXED.size : BOOTP_FIXED.size + 4] != MAGIC_COOKIE:
        return None
    options = _options(payload[BOOTP_FIXED.size + 4 :])
    if options.get(OPTION_MESSAGE_TYPE) != bytes([DHCPACK]):
        return None
    routes = _classless_routes(options.get(OPTION_ROUTES) or options.get(OPTION_MS_ROUTES) or b"")
    return PushedSettings(routes=routes, domain=_domain(options.get(OPTION_DOMAIN, b"")), search=_search_list(options.get(OPTION_SEARCH, b"")))


def _options(data: bytes) -> dict[int, bytes]:
    """Options by code; a code given several times is concatenated (RFC 3396)."""
    options: dict[int, bytes] = {}
    position = 0
    while position < len(data):
        code = data[position]
        if code == OPTION_END:
            break
        if code == OPTION_PAD:
            position += 1
            continue
        if position + 1 >= len(data):
            break
        length = data[position + 1]
        value = data[position + 2 : position + 2 + length]
        if len(value) < length:
            break
        options[code] = options.get(code, b"") + value
        position += 2 + length
    return options


def _classless_routes(data: bytes) -> tuple[IPv4Network, ...]:
    """RFC 3442: width, the significant octets of the destination, then the router. The router is
    not used: on a point-to-point tunnel every route leads to the peer. Left out: anything shorter
    than a /8 (a default route or its halves: whether all traffic goes into the tunnel is the
    profile's choice, not the server's), and networks that never belong in a tunnel (this
    network, loopback, link-local, multicast, reserved)."""
    routes: list[IPv4Network] = []
    position = 0
    while position < len(data) and len(routes) < MAX_ROUTES:
        width = data[position]
        octets = (width + 7) // 8
        if width > 32 or position + 1 + octets + 4 > len(data):
            break  # the rest cannot be read: keep what was
        destination = data[position + 1 : position + 1 + octets] + bytes(4 - octets)
        position += 1 + octets + 4
        try:
            network = IPv4Network((destination, width))
        except ValueError:
            continue  # host bits set: not a network
        if width >= MIN_ROUTE_WIDTH and network not in routes and not any(network.overlaps(special) for special in _NEVER):
            routes.append(network)
    return tuple(routes)


def _domain(data: bytes) -> str | None:
    name = data.rstrip(b"\0").decode("ascii", "replace").strip().rstrip(".").lower()
    return name if _plausible_name(name) else None


def _search_list(data: bytes) -> tuple[str, ...]:
    """RFC 3397: domain names in DNS wire format, with compression pointers into the option."""
    names: list[str] = []
    position = 0
    while position < len(data) and len(names) < 6:
        name, position = _wire_name(data, position)
        if name is None:
            break
        if _plausible_name(name) and name not in names:
            names.append(name)
    return tuple(names)


def _wire_name(data: bytes, position: int) -> tuple[str | None, int]:
    labels: list[bytes] = []
    end: int | None = None
    jumps = 0
    while position < len(data):
        length = data[position]
        if length == 0:
            return ".".join(label.decode("ascii", "replace") for label in labels).lower(), end if end is not None else position + 1
        if length & 0xC0 == 0xC0:
            if position + 1 >= len(data) or jumps > 16:
                return None, len(data)
            if end is None:
                end = position + 2
            position = ((length & 0x3F) << 8) | data[position + 1]
            jumps += 1
            continue
        labels.append(data[position + 1 : position + 1 + length])
        position += 1 + length
    return None, len(data)


def _plausible_name(name: str) -> bool:
    labels = name.split(".")
    # Two labels at least: a bare "com" would make every .com name a VPN name (a routing domain).
    return (
        0 < len(name) <= 253
        and len(labels) >= 2
        and all(
            0 < len(label) <= 63
            and label[0] != "-"
            and label[-1] != "-"
            and all(character.isascii() and (character.isalnum() or character in "-_") for character in label)
            for label in labels
        )
    )
