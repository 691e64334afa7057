"""Exact bytes of PPP inside SSTP data packets: frames, control packets, configuration options.

Layouts from RFC 1661 (sections 2, 5, 6) and /work/shared/notes/protocol.md section 3 and 5.
"""

from __future__ import annotations

import pytest

from sstpvpn.client.core.ppp_codec import (
    Code,
    ControlPacket,
    MalformedPacket,
    Option,
    PppProtocol,
    encode_frame,
    encode_options,
    encode_packet,
    parse_frame,
    parse_options,
    parse_packet,
)
from sstpvpn.client.core.sstp_codec import encode_data


def test_protocol_numbers() -> None:
    assert {p.name: p.value for p in PppProtocol} == {
        "IPV4": 0x0021,
        "IPV6": 0x0057,
        "IPCP": 0x8021,
        "IPV6CP": 0x8057,
        "CCP": 0x80FD,
        "LCP": 0xC021,
        "PAP": 0xC023,
        "CHAP": 0xC223,
        "EAP": 0xC227,
    }


def test_codes() -> None:
    assert [c.value for c in Code] == list(range(1, 12))


def test_frame_always_has_address_control_and_a_two_byte_protocol() -> None:
    assert encode_frame(PppProtocol.LCP, b"\x01\x01\x00\x04") == bytes.fromhex("FF03C021 01010004")
    assert encode_frame(PppProtocol.IPV4, b"E") == bytes.fromhex("FF030021 45")


def test_mikrotik_ipcp_frame_inside_an_sstp_data_packet() -> None:
    # The client's first IPCP request {IP 0.0.0.0, DNS1 0.0.0.0, DNS2 0.0.0.0}.
    options = [Option(3, bytes(4)), Option(129, bytes(4)), Option(131, bytes(4))]
    packet = encode_packet(Code.CONFIGURE_REQUEST, 1, encode_options(options))
    assert encode_data(encode_frame(PppProtocol.IPCP, packet)) == bytes.fromhex("1000001E FF038021 01010016 030600000000 810600000000 830600000000")


@pytest.mark.parametrize(
    ("frame", "protocol", "information"),
    [
        ("FF03C021 09070008", 0xC021, "09070008"),  # the usual form
        ("C021 09070008", 0xC021, "09070008"),  # ACFC: no FF 03
        ("FF03 21 4500", 0x0021, "4500"),  # PFC: one odd protocol byte
        ("21 4500", 0x0021, "4500"),  # ACFC and PFC
        ("FF03 8057", 0x8057, ""),  # empty information field
        ("FF03 0121 00", 0x01, "2100"),  # an odd first byte is always a 1-byte protocol
    ],
)
def test_parse_frame(frame: str, protocol: int, information: str) -> None:
    assert parse_frame(bytes.fromhex(frame)) == (protocol, bytes.fromhex(information))


@pytest.mark.parametrize(
    ("frame", "complaint"),
    [
        ("", "empty PPP frame"),
        ("FF03", "empty PPP frame"),
        ("FF03C0", "too short for its protocol field"),
        ("FF03C020", "0xc020 is not a valid protocol number"),
        ("FF030200", "0x0200 is not a valid protocol number"),
    ],
)
def test_parse_frame_refuses(frame: str, complaint: str) -> None:
    with pytest.raises(MalformedPacket, match=complaint):
        parse_frame(bytes.fromhex(frame))


def test_control_packet_round_trip() -> None:
    wire = encode_packet(Code.ECHO_REQUEST, 0x2A, b"\x00\x00\x00\x00Aho")
    assert wire == bytes.fromhex("092A000B 00000000 41686F")
    assert parse_packet(wire) == ControlPacket(Code.ECHO_REQUEST, 0x2A, b"\x00\x00\x00\x00Aho")


def test_control_packet_padding_after_length_is_dropped() -> None:
    assert parse_packet(bytes.fromhex("06070004 DEADBEEF")) == ControlPacket(6, 7, b"")


@pytest.mark.parametrize(
    ("information", "complaint"),
    [
        ("010100", "shorter than its 4-byte header"),
        ("01010003", "length 3 does not fit"),
        ("01010009 00000000", "length 9 does not fit the 8 bytes"),
    ],
)
def test_control_packet_refuses(information: str, complaint: str) -> None:
    with pytest.raises(MalformedPacket, match=complaint):
        parse_packet(bytes.fromhex(information))


def test_options_round_trip() -> None:
    options = [Option(1, b"\x05\xdc"), Option(7), Option(3, b"\xc2\x23\x81"), Option(5, b"\x01\x02\x03\x04")]
    wire = encode_options(options)
    assert wire == bytes.fromhex("010405DC 0702 0305C22381 050601020304")
    assert parse_options(wire) == options
    assert parse_options(b"") == []


def test_softether_first_lcp_request_asks_only_for_eap() -> None:
    packet = parse_packet(bytes.fromhex("01010008 0304C227"))
    assert packet == ControlPacket(Code.CONFIGURE_REQUEST, 1, bytes.fromhex("0304C227"))
    assert parse_options(packet.data) == [Option(3, b"\xc2\x27")]


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ("01", "truncated configuration option"),
        ("0104 05", "option 1 has a bad length 4"),
        ("0101", "option 1 has a bad length 1"),
        ("0100", "option 1 has a bad length 0"),
        ("0702 03", "truncated configuration option"),
    ],
)
def test_options_refuse(data: str, complaint: str) -> None:
    with pytest.raises(MalformedPacket, match=complaint):
        parse_options(bytes.fromhex(data))
