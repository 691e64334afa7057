"""Exact bytes of the SSTP layer: the HTTP exchange, packet framing, control messages, attributes.

Byte strings come from [MS-SSTP] 4.7 and /work/shared/notes/protocol.md sections 1-2.
"""

from __future__ import annotations

import uuid

import h11
import pytest

from sstpvpn.client.core import sstp_http
from sstpvpn.client.core.ppp_codec import MalformedPacket
from sstpvpn.client.core.sstp_codec import (
    Attribute,
    AttributeId,
    AttributeStatus,
    ControlMessage,
    CryptoBindingRequest,
    HashProtocol,
    MessageType,
    Packet,
    PacketReader,
    StatusInfo,
    encode_attribute,
    encode_call_connect_request,
    encode_control,
    encode_crypto_binding_request,
    encode_data,
    encode_status_info,
    parse_control,
    parse_crypto_binding_request,
    parse_status_info,
)

# [MS-SSTP] 4.7: the Call Connect Ack of the worked example (SHA-256 only).
SPEC_ACK = bytes.fromhex("10010030 0002 0001 00040028 000000 02412B489AEBD7ECC7D08966F26BE7CD72B231A0E9210D7C91B308862B0344C435")
SPEC_NONCE = bytes.fromhex("412B489AEBD7ECC7D08966F26BE7CD72B231A0E9210D7C91B308862B0344C435")
# [MS-SSTP] 4.7: the Call Connected the client sends in that example.
SPEC_CALL_CONNECTED = bytes.fromhex(
    "10010070 0004 0001 00030068 000000 02"
    "412B489AEBD7ECC7D08966F26BE7CD72B231A0E9210D7C91B308862B0344C435"
    "7993EF314C493DACE9F02D60E7E61C84B6690AAFE9D7AEEA92CBBE8AD599422D"
    "52A68EFD8CFFBF52770B8F0FE8EC73716583AF6D611EB6D179B3B20840985449"
)


# ------------------------------------------------------------------ encoding


def test_call_connect_request_is_the_fixed_14_bytes() -> None:
    assert encode_call_connect_request() == bytes.fromhex("1001000E 0001 0001 00010006 0001")


@pytest.mark.parametrize(
    ("message_type", "wire"),
    [
        (MessageType.CALL_ABORT, "10010008 0005 0000"),
        (MessageType.CALL_DISCONNECT, "10010008 0006 0000"),
        (MessageType.CALL_DISCONNECT_ACK, "10010008 0007 0000"),
        (MessageType.ECHO_REQUEST, "10010008 0008 0000"),
        (MessageType.ECHO_RESPONSE, "10010008 0009 0000"),
    ],
)
def test_attributeless_control_messages(message_type: MessageType, wire: str) -> None:
    assert encode_control(message_type) == bytes.fromhex(wire)


def test_call_connect_ack_of_the_spec_example_encodes_exactly() -> None:
    request = CryptoBindingRequest(HashProtocol.SHA256, SPEC_NONCE)
    attribute = Attribute(AttributeId.CRYPTO_BINDING_REQ, encode_crypto_binding_request(request))
    assert encode_control(MessageType.CALL_CONNECT_ACK, [attribute]) == SPEC_ACK
    assert len(SPEC_ACK) == 48


def test_call_connected_of_the_spec_example_encodes_exactly() -> None:
    value = SPEC_CALL_CONNECTED[12:]
    assert len(value) == 100
    assert encode_control(MessageType.CALL_CONNECTED, [Attribute(AttributeId.CRYPTO_BINDING, value)]) == SPEC_CALL_CONNECTED


def test_status_info_attribute_as_softether_naks_a_foreign_protocol() -> None:
    info = StatusInfo(AttributeId.ENCAPSULATED_PROTOCOL_ID, AttributeStatus.VALUE_NOT_SUPPORTED, b"")
    attribute = Attribute(AttributeId.STATUS_INFO, encode_status_info(info))
    assert encode_attribute(attribute) == bytes.fromhex("0002000C 000000 01 00000004")
    assert encode_control(MessageType.CALL_CONNECT_NAK, [attribute]) == bytes.fromhex("10010014 0003 0001 0002000C 00000001 00000004")


def test_status_info_carries_the_offending_value() -> None:
    info = StatusInfo(AttributeId.ENCAPSULATED_PROTOCOL_ID, AttributeStatus.VALUE_NOT_SUPPORTED, b"\x00\x02")
    assert encode_status_info(info) == bytes.fromhex("00000001 00000004 0002")
    assert parse_status_info(encode_status_info(info)) == info


def test_data_packet_header_counts_itself() -> None:
    assert encode_data(bytes.fromhex("FF03C021 01010004")) == bytes.fromhex("1000000C FF03C021 01010004")
    assert encode_data(b"") == bytes.fromhex("10000004")


def test_largest_data_packet_fits_twelve_bits_and_one_more_byte_does_not() -> None:
    assert encode_data(bytes(4091))[:4] == bytes.fromhex("10000FFF")
    with pytest.raises(ValueError, match="4096 bytes exceeds 4095"):
        encode_data(bytes(4092))


# ------------------------------------------------------------------ parsing


def test_spec_ack_parses_to_its_nonce_and_bitmask() -> None:
    packets = PacketReader().feed(SPEC_ACK)
    assert packets == [Packet(True, SPEC_ACK[4:])]
    message = parse_control(packets[0].body)
    assert message.type == MessageType.CALL_CONNECT_ACK
    attribute = message.attribute(AttributeId.CRYPTO_BINDING_REQ)
    assert attribute is not None
    request = parse_crypto_binding_request(attribute.value)
    assert request == CryptoBindingRequest(0x02, SPEC_NONCE)
    assert message.attribute(AttributeId.STATUS_INFO) is None


def test_spec_call_connected_parses_back() -> None:
    message = parse_control(SPEC_CALL_CONNECTED[4:])
    assert message == ControlMessage(MessageType.CALL_CONNECTED, (Attribute(AttributeId.CRYPTO_BINDING, SPEC_CALL_CONNECTED[12:]),))


def test_attribute_length_ignores_the_reserved_high_bits() -> None:
    body = bytes.fromhex("0005 0001 0002F00C 00000001 00000004")
    message = parse_control(body)
    assert parse_status_info(message.attributes[0].value) == StatusInfo(1, 4, b"")


def test_first_of_duplicate_attributes_wins() -> None:
    message = ControlMessage(6, (Attribute(2, b"a"), Attribute(2, b"b")))
    assert message.attribute(2) == Attribute(2, b"a")


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (bytes.fromhex("0005"), "shorter than its 4-byte header"),
        (bytes.fromhex("0005 0001"), "announces 1 attributes but holds fewer"),
        (bytes.fromhex("0005 0001 000200"), "announces 1 attributes but holds fewer"),
        (bytes.fromhex("0005 0001 00020003"), "bad length 3"),
        (bytes.fromhex("0005 0001 0002000D 00000001 00000004"), "bad length 13"),
        (bytes.fromhex("0005 0000 00"), "1 stray bytes"),
        (bytes.fromhex("0005 0001 00020004 FFFF"), "2 stray bytes"),
    ],
)
def test_malformed_control_bodies(body: bytes, complaint: str) -> None:
    with pytest.raises(MalformedPacket, match=complaint):
        parse_control(body)


@pytest.mark.parametrize("size", [0, 35, 37])
def test_crypto_binding_request_must_be_36_bytes(size: int) -> None:
    with pytest.raises(MalformedPacket, match=f"{size} bytes, expected 36"):
        parse_crypto_binding_request(bytes(size))


def test_status_info_shorter_than_8_bytes() -> None:
    with pytest.raises(MalformedPacket):
        parse_status_info(bytes(7))


# ------------------------------------------------------------------ stream framing


def test_reader_splits_packets_that_arrive_together() -> None:
    echo = encode_control(MessageType.ECHO_REQUEST)
    data = encode_data(b"\xff\x03\x00\x21" + bytes(20))
    assert PacketReader().feed(echo + data + echo) == [
        Packet(True, echo[4:]),
        Packet(False, data[4:]),
        Packet(True, echo[4:]),
    ]


def test_reader_joins_a_packet_fed_one_byte_at_a_time() -> None:
    reader = PacketReader()
    received = []
    for index in range(len(SPEC_ACK)):
        received += reader.feed(SPEC_ACK[index : index + 1])
        if index < len(SPEC_ACK) - 1:
            assert received == []
    assert received == [Packet(True, SPEC_ACK[4:])]


def test_reader_keeps_the_unfinished_tail_for_the_next_feed() -> None:
    reader = PacketReader()
    first = reader.feed(SPEC_ACK + SPEC_ACK[:10])
    assert first == [Packet(True, SPEC_ACK[4:])]
    assert reader.feed(SPEC_ACK[10:]) == [Packet(True, SPEC_ACK[4:])]


def test_reader_ignores_the_reserved_high_bits_of_the_length() -> None:
    assert PacketReader().feed(bytes.fromhex("1001F008 0008 0000")) == [Packet(True, bytes.fromhex("00080000"))]


def test_reader_accepts_an_empty_data_packet() -> None:
    assert PacketReader().feed(bytes.fromhex("10000004")) == [Packet(False, b"")]


@pytest.mark.parametrize("version", [0x00, 0x11, 0x20, 0xFF])
def test_reader_refuses_other_versions(version: int) -> None:
    with pytest.raises(MalformedPacket, match="is not 1.0"):
        PacketReader().feed(bytes((version,)) + SPEC_ACK[1:])


@pytest.mark.parametrize("length", [0, 1, 3])
def test_reader_refuses_a_length_shorter_than_the_header(length: int) -> None:
    with pytest.raises(MalformedPacket, match=f"length {length} is shorter"):
        PacketReader().feed(bytes((0x10, 0x01, 0x00, length)))


def test_reader_holds_at_most_one_unfinished_packet() -> None:
    reader = PacketReader()
    # A 4095-byte packet announced, 4094 bytes delivered: the reader holds just those.
    assert reader.feed(bytes.fromhex("10000FFF") + bytes(4090)) == []
    assert reader.buffered == 4094
    assert reader.feed(b"\x00") == [Packet(False, bytes(4091))]
    assert reader.buffered == 0


# ------------------------------------------------------------------ HTTP


CORRELATION = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")


def test_http_request_is_the_exact_sstp_duplex_post() -> None:
    _, request = sstp_http.build_request("vpn.example.com", CORRELATION)
    assert request == (
        b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\n"
        b"Host: vpn.example.com\r\n"
        b"Content-Length: 18446744073709551615\r\n"
        b"SSTPCORRELATIONID: {01234567-89AB-CDEF-0123-456789ABCDEF}\r\n"
        b"\r\n"
    )


def _reader(host: str = "vpn.example.com") -> sstp_http.ReplyReader:
    connection, _ = sstp_http.build_request(host, CORRELATION)
    return sstp_http.ReplyReader(connection, host)


SOFTETHER_REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\nServer: Microsoft-HTTPAPI/2.0\r\nDate: Tue, 25 Nov 2025 22:00:00 GMT\r\n\r\n"
)


def test_http_200_hands_back_the_sstp_bytes_that_came_with_it() -> None:
    reply = _reader().feed(SOFTETHER_REPLY + SPEC_ACK)
    assert reply == sstp_http.HttpReply(200, "OK", SPEC_ACK)


def test_http_200_fed_one_byte_at_a_time() -> None:
    reader = _reader()
    for index in range(len(SOFTETHER_REPLY) - 1):
        assert reader.feed(SOFTETHER_REPLY[index : index + 1]) is None
    assert reader.feed(SOFTETHER_REPLY[-1:]) == sstp_http.HttpReply(200, "OK", b"")


def test_http_200_without_content_length_is_accepted() -> None:
    assert _reader().feed(b"HTTP/1.1 200 OK\r\n\r\n\x10") == sstp_http.HttpReply(200, "OK", b"\x10")


def test_http_interim_response_is_skipped() -> None:
    assert _reader().feed(b"HTTP/1.1 100 Continue\r\n\r\n" + SOFTETHER_REPLY) == sstp_http.HttpReply(200, "OK", b"")


def test_http_refusal_names_the_status_and_what_to_check() -> None:
    with pytest.raises(sstp_http.HttpRefused) as refusal:
        _reader().feed(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    assert str(refusal.value) == (
        "The server vpn.example.com refused the SSTP request with HTTP 404 Not Found: "
        "check the server name and port, and that SSTP is enabled on the server."
    )
    assert refusal.value.reply.status_line == "HTTP/1.1 404 Not Found"  # what `diagnose` shows


def test_http_reply_status_line_is_as_the_server_wrote_it() -> None:
    assert _reader().feed(b"HTTP/1.0 200 ok\r\n\r\n").status_line == "HTTP/1.0 200 ok"
    assert _reader().feed(b"HTTP/1.1 200 \r\n\r\n").status_line == "HTTP/1.1 200"


def test_http_200_with_a_finite_body_is_not_sstp() -> None:
    with pytest.raises(sstp_http.HttpRefused) as refusal:
        _reader().feed(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")
    assert (
        str(refusal.value) == "The server vpn.example.com answered the SSTP request with a finite body (Content-Length 12): it is not speaking SSTP."
    )


def test_http_closed_connection() -> None:
    reader = _reader()
    assert reader._connection.their_state is h11.SEND_RESPONSE
    with pytest.raises(sstp_http.HttpRefused, match="closed the connection instead of answering"):
        reader.feed(b"")


def test_http_garbage_is_a_refusal_not_an_h11_error() -> None:
    with pytest.raises(sstp_http.HttpRefused, match="malformed HTTP reply"):
        _reader().feed(b"\x10\x01\x00\x08\x00\x08\x00\x00\r\n\r\n")


def test_http_endless_header_is_capped() -> None:
    reader = _reader()
    with pytest.raises(sstp_http.HttpRefused, match="malformed HTTP reply"):
        reader.feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * (sstp_http.MAX_HEADER_BYTES + 10))


@pytest.mark.parametrize("cut", [0, 3])
def test_http_chunked_200_is_a_refusal_not_an_h11_error(cut: int) -> None:
    reader = _reader()
    reply = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    with pytest.raises(sstp_http.HttpRefused) as refusal:
        reader.feed(reply[: len(reply) - cut])
    assert (
        str(refusal.value)
        == "The server vpn.example.com answered the SSTP request with an encoded body (Transfer-Encoding chunked): it is not speaking SSTP."
    )


def test_reader_hands_over_whole_packets_before_a_broken_header_then_raises() -> None:
    reader = PacketReader()
    echo = encode_control(MessageType.ECHO_REQUEST)
    assert reader.feed(echo + bytes.fromhex("11010008") + bytes(5000)) == [Packet(True, echo[4:])]
    assert reader.buffered == 0  # nothing of the broken stream is kept
    with pytest.raises(MalformedPacket, match="SSTP version 0x11 is not 1.0"):
        reader.feed(b"")
    with pytest.raises(MalformedPacket, match="SSTP version 0x11 is not 1.0"):
        reader.feed(echo)  # framing stays lost


def test_reader_raises_at_once_when_the_broken_header_comes_first() -> None:
    reader = PacketReader()
    with pytest.raises(MalformedPacket, match="length 2 is shorter"):
        reader.feed(bytes.fromhex("10010002") + encode_control(MessageType.ECHO_REQUEST))
