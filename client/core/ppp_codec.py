"""PPP wire formats inside SSTP data packets (RFC 1661): frames, control packets, options.

SSTP carries one PPP frame per data packet with no HDLC framing: `FF 03`, a 2-byte protocol,
then the information field. Parsing raises `MalformedPacket`; the engine turns that into a
`Failure` or a silent drop, as the RFCs ask.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

ADDRESS_CONTROL = b"\xff\x03"
# The largest information field one SSTP data packet can carry: 4095 (12-bit SSTP length) - 4 (SSTP
# header) - 4 (FF 03 + protocol). Whatever the peer's MRU, nothing we send may be longer.
MAX_INFORMATION = 4087


class MalformedPacket(ValueError):
    """Input that does not follow the wire format. The message says what was wrong."""


class PppProtocol(enum.IntEnum):
    IPV4 = 0x0021
    IPV6 = 0x0057
    IPCP = 0x8021
    IPV6CP = 0x8057
    CCP = 0x80FD
    LCP = 0xC021
    PAP = 0xC023
    CHAP = 0xC223
    EAP = 0xC227


class Code(enum.IntEnum):
    """Codes shared by LCP, IPCP and IPV6CP (the latter two use 1-7 only)."""

    CONFIGURE_REQUEST = 1
    CONFIGURE_ACK = 2
    CONFIGURE_NAK = 3
    CONFIGURE_REJECT = 4
    TERMINATE_REQUEST = 5
    TERMINATE_ACK = 6
    CODE_REJECT = 7
    PROTOCOL_REJECT = 8
    ECHO_REQUEST = 9
    ECHO_REPLY = 10
    DISCARD_REQUEST = 11


def encode_frame(protocol: int, information: bytes) -> bytes:
    """A PPP frame as SSTP carries it: always FF 03 and the full 2-byte protocol."""
    return ADDRESS_CONTROL + struct.pack("!H", protocol) + information


def parse_frame(frame: bytes) -> tuple[int, bytes]:
    """Return (protocol, information). Accepts frames with or without FF 03 (ACFC) and a
    1-byte protocol field (PFC form: the first byte is odd)."""
    if frame[:2] == ADDRESS_CONTROL:
        frame = frame[2:]
    if not frame:
        raise MalformedPacket("empty PPP frame")
    if frame[0] & 1:
        return frame[0], frame[1:]
    if len(frame) < 2:
        raise MalformedPacket("PPP frame too short for its protocol field")
    protocol = (frame[0] << 8) | frame[1]
    if not protocol & 1:
        raise MalformedPacket(f"PPP protocol {protocol:#06x} is not a valid protocol number")
    return protocol, frame[2:]


@dataclass(frozen=True)
class ControlPacket:
    """Code, Identifier, Length, Data: the shape of LCP, NCP, PAP, CHAP and EAP packets."""

    code: int
    identifier: int
    data: bytes = b""


def encode_packet(code: int, identifier: int, data: bytes = b"") -> bytes:
    return struct.pack("!BBH", code, identifier, 4 + len(data)) + data


def parse_packet(information: bytes) -> ControlPacket:
    """Parse a control packet; bytes after Length are padding and are dropped (RFC 1661 5)."""
    if len(information) < 4:
        raise MalformedPacket("control packet shorter than its 4-byte header")
    code, identifier, length = struct.unpack_from("!BBH", information)
    if length < 4 or length > len(information):
        raise MalformedPacket(f"control packet length {length} does not fit the {len(information)} bytes received")
    return ControlPacket(code, identifier, information[4:length])


@dataclass(frozen=True)
class Option:
    type: int
    data: bytes = b""


def encode_options(options: list[Option] | tuple[Option, ...]) -> bytes:
    return b"".join(bytes((o.type, 2 + len(o.data))) + o.data for o in options)


def parse_options(data: bytes) -> list[Option]:
    options = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise MalformedPacket("truncated configuration option")
        kind, length = data[offset], data[offset + 1]
        if length < 2 or offset + length > len(data):
            raise MalformedPacket(f"configuration option {kind} has a bad length {length}")
        options.append(Option(kind, data[offset + 2 : offset + length]))
        offset += length
    return options
