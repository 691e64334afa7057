"""SSTP packets ([MS-SSTP] 2.2): the 4-byte header, control messages with attributes, data packets.

Pure functions plus `PacketReader`, which splits the decrypted TLS byte stream into whole packets
without copying more than it must.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import NamedTuple

from .i18n import _
from .ppp_codec import MalformedPacket

VERSION = 0x10
MAX_PACKET = 0x0FFF  # the length field has 12 bits
HEADER = struct.Struct("!BBH")


class MessageType(enum.IntEnum):
    CALL_CONNECT_REQUEST = 0x0001
    CALL_CONNECT_ACK = 0x0002
    CALL_CONNECT_NAK = 0x0003
    CALL_CONNECTED = 0x0004
    CALL_ABORT = 0x0005
    CALL_DISCONNECT = 0x0006
    CALL_DISCONNECT_ACK = 0x0007
    ECHO_REQUEST = 0x0008
    ECHO_RESPONSE = 0x0009


class AttributeId(enum.IntEnum):
    ENCAPSULATED_PROTOCOL_ID = 0x01
    STATUS_INFO = 0x02
    CRYPTO_BINDING = 0x03
    CRYPTO_BINDING_REQ = 0x04


class HashProtocol(enum.IntFlag):
    SHA1 = 0x01
    SHA256 = 0x02


class AttributeStatus(enum.IntEnum):
    NO_ERROR = 0
    DUPLICATE_ATTRIBUTE = 1
    UNRECOGNIZED_ATTRIBUTE = 2
    INVALID_ATTRIB_VALUE_LENGTH = 3
    VALUE_NOT_SUPPORTED = 4
    UNACCEPTED_FRAME_RECEIVED = 5
    RETRY_COUNT_EXCEEDED = 6
    INVALID_FRAME_RECEIVED = 7
    NEGOTIATION_TIMEOUT = 8
    ATTRIB_NOT_SUPPORTED_IN_MSG = 9
    REQUIRED_ATTRIBUTE_MISSING = 10
    STATUS_INFO_NOT_SUPPORTED_IN_MSG = 11


ENCAPSULATED_PPP = 0x0001


@dataclass(frozen=True)
class Attribute:
    id: int
    value: bytes


@dataclass(frozen=True)
class ControlMessage:
    type: int
    attributes: tuple[Attribute, ...] = ()

    def attribute(self, attribute_id: int) -> Attribute | None:
        return next((a for a in self.attributes if a.id == attribute_id), None)


@dataclass(frozen=True)
class CryptoBindingRequest:
    hash_protocols: int  # HashProtocol bits the server accepts
    nonce: bytes  # 32 bytes


@dataclass(frozen=True)
class StatusInfo:
    attribute_id: int  # the attribute the status concerns
    status: int
    value: bytes


def _header(control: bool, length: int) -> bytes:
    if length > MAX_PACKET:
        raise ValueError(f"SSTP packet of {length} bytes exceeds {MAX_PACKET}")
    return HEADER.pack(VERSION, 1 if control else 0, length)


def encode_data(ppp_frame: bytes) -> bytes:
    return _header(False, 4 + len(ppp_frame)) + ppp_frame


def encode_attribute(attribute: Attribute) -> bytes:
    return struct.pack("!BBH", 0, attribute.id, 4 + len(attribute.value)) + attribute.value


def encode_control(message_type: int, attributes: list[Attribute] | tuple[Attribute, ...] = ()) -> bytes:
    body = struct.pack("!HH", message_type, len(attributes)) + b"".join(map(encode_attribute, attributes))
    return _header(True, 4 + len(body)) + body


def encode_call_connect_request() -> bytes:
    return encode_control(
        MessageType.CALL_CONNECT_REQUEST,
        [Attribute(AttributeId.ENCAPSULATED_PROTOCOL_ID, struct.pack("!H", ENCAPSULATED_PPP))],
    )


def encode_crypto_binding_request(request: CryptoBindingRequest) -> bytes:
    """Attribute value of SSTP_ATTRIB_CRYPTO_BINDING_REQ (what a server sends)."""
    return b"\x00\x00\x00" + bytes((request.hash_protocols,)) + request.nonce


def encode_status_info(info: StatusInfo) -> bytes:
    return b"\x00\x00\x00" + bytes((info.attribute_id,)) + struct.pack("!I", info.status) + info.value


def parse_control(body: bytes) -> ControlMessage:
    """Parse a control packet's body (everything after the 4-byte SSTP header)."""
    if len(body) < 4:
        # Translators: a technical detail, shown in parentheses after "The server sent a malformed SSTP control message"
        raise MalformedPacket(_("SSTP control message shorter than its 4-byte header"))
    message_type, count = struct.unpack_from("!HH", body)
    attributes = []
    offset = 4
    for _index in range(count):
        if offset + 4 > len(body):
            # Translators: a technical detail, as above
            raise MalformedPacket(_("SSTP message {type:#06x} announces {count} attributes but holds fewer").format(type=message_type, count=count))
        _reserved, attribute_id, length = struct.unpack_from("!BBH", body, offset)
        length &= 0x0FFF
        if length < 4 or offset + length > len(body):
            # Translators: a technical detail, as above
            raise MalformedPacket(_("SSTP attribute {attribute} has a bad length {length}").format(attribute=attribute_id, length=length))
        attributes.append(Attribute(attribute_id, body[offset + 4 : offset + length]))
        offset += length
    if offset != len(body):
        # Translators: a technical detail, as above
        raise MalformedPacket(_("SSTP message {type:#06x} has {count} stray bytes").format(type=message_type, count=len(body) - offset))
    return ControlMessage(message_type, tuple(attributes))


def parse_crypto_binding_request(value: bytes) -> CryptoBindingRequest:
    if len(value) != 36:
        # Translators: a technical detail, shown in parentheses after "The server's crypto binding request is malformed"
        raise MalformedPacket(_("crypto binding request of {size} bytes, expected 36").format(size=len(value)))
    return CryptoBindingRequest(value[3], value[4:36])


def parse_status_info(value: bytes) -> StatusInfo:
    if len(value) < 8:
        # Translators: a technical detail about a malformed SSTP message
        raise MalformedPacket(_("status info attribute shorter than 8 bytes"))
    return StatusInfo(value[3], struct.unpack_from("!I", value, 4)[0], value[8:])


class Packet(NamedTuple):  # a tuple: one is made per packet on the data path
    control: bool
    body: bytes  # control: message body; data: the PPP frame


class PacketReader:
    """Splits the SSTP byte stream into packets. Holds at most one unfinished packet (<= 4095
    bytes), so a hostile peer cannot make it buffer more. A broken header raises
    MalformedPacket, but only once the whole packets before it have been handed over, so the
    result does not depend on how the stream was cut into reads."""

    def __init__(self) -> None:
        self._rest = b""  # an unfinished packet from the last feed
        self._fault: MalformedPacket | None = None  # found behind packets already handed over

    @property
    def buffered(self) -> int:
        """Bytes held back: the start of a packet not yet complete."""
        return len(self._rest)

    def feed(self, data: bytes) -> list[Packet]:
        if self._fault is not None:
            raise self._fault
        # Immutable bytes, so each packet body is a single-copy slice.
        buffer = self._rest + data if self._rest else bytes(data)
        self._rest = b""
        packets: list[Packet] = []
        offset = 0
        end = len(buffer)
        while end - offset >= 4:
            version, flags, length = HEADER.unpack_from(buffer, offset)
            length &= 0x0FFF
            fault = None
            if version != VERSION:
                # Translators: a technical detail, shown in parentheses after "The server sent data that is not SSTP"
                fault = MalformedPacket(_("SSTP version {version:#04x} is not 1.0").format(version=version))
            elif length < 4:
                # Translators: as above
                fault = MalformedPacket(_("SSTP packet length {length} is shorter than its header").format(length=length))
            if fault is not None:  # framing is lost for good: keep nothing
                if not packets:
                    raise fault
                self._fault = fault  # hand over the whole packets first; the next feed() raises
                return packets
            if end - offset < length:
                break
            packets.append(Packet(bool(flags & 1), buffer[offset + 4 : offset + length]))
            offset += length
        self._rest = buffer[offset:]
        return packets

    def take_data(self, data: bytes, prefix: bytes, bodies: list[bytes]) -> bytes:
        """The fast path for a data stream: while `data` (with what is held back before it) starts
        with whole data packets whose body starts with `prefix` (e.g. FF 03 00 21, an IPv4 frame),
        append each body without the prefix to `bodies`, one slice each and no other object. The
        rest of `data`, from the first packet that is anything else or incomplete, is returned for
        feed(), which reads it as ever; so the packets and faults found do not change."""
        if self._fault is not None or type(data) is not bytes:
            return data
        skip = 4 + len(prefix)
        offset = 0
        rest = self._rest
        if rest:  # finish the packet the last read cut, if it is one of these
            if len(rest) < 4 or rest[0] != VERSION or rest[1] & 1:
                return data
            missing = ((rest[2] & 0x0F) << 8 | rest[3]) - len(rest)
            if missing < 0 or missing > len(data):
                return data
            packet = rest + data[:missing]
            if len(packet) < skip or not packet.startswith(prefix, 4):
                return data
            bodies.append(packet[skip:])
            self._rest = b""
            offset = missing
        end = len(data)
        while end - offset >= skip:
            length = (data[offset + 2] & 0x0F) << 8 | data[offset + 3]
            if data[offset] != VERSION or data[offset + 1] & 1 or length < skip or end - offset < length or not data.startswith(prefix, offset + 4):
                break
            bodies.append(data[offset + skip : offset + length])
            offset += length
        return data[offset:] if offset else data
