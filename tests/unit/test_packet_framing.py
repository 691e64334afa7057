"""packet_framing: the tunnel relay's wire format. Round trips over every way a byte stream can
cut the frames, the length limits, and a hostile peer that tries to make the deframer hold more
than one frame or spin on empty ones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sstpvpn.platform.packet_framing import MAX_BUFFERED, MAX_PACKET, FramingError, PacketDeframer, frame_packets

packet_lists = st.lists(st.binary(min_size=1, max_size=300), max_size=40)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """data cut at the given positions (taken modulo its length, in order)."""
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]


def test_each_packet_follows_its_big_endian_length():
    assert frame_packets([b"\x45\x00", b"x" * 0x0102]) == b"\x00\x02\x45\x00" + b"\x01\x02" + b"x" * 0x0102
    assert frame_packets([]) == b""


@settings(max_examples=300, deadline=None)
@given(packets=packet_lists, cuts=st.lists(st.integers(min_value=0), max_size=30))
def test_packets_come_back_whole_and_in_order_however_the_stream_is_cut(packets, cuts):
    deframer = PacketDeframer()
    received = []
    for piece in split(frame_packets(packets), cuts):
        received += deframer.feed(piece)
        assert deframer.buffered <= MAX_BUFFERED
    assert received == packets
    assert deframer.buffered == 0


@settings(max_examples=50, deadline=None)
@given(packets=st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=10))
def test_one_byte_at_a_time_works_too(packets):
    deframer = PacketDeframer()
    stream = frame_packets(packets)
    received = [packet for index in range(len(stream)) for packet in deframer.feed(stream[index : index + 1])]
    assert received == packets


def test_bytearray_and_memoryview_pieces_are_accepted():
    stream = frame_packets([b"abc", b"defg"])
    deframer = PacketDeframer()
    assert deframer.feed(bytearray(stream[:6])) == [b"abc"]
    assert deframer.feed(memoryview(stream)[6:]) == [b"defg"]
    assert all(type(packet) is bytes for packet in PacketDeframer().feed(memoryview(stream)))


def test_the_largest_packet_is_framed_and_one_byte_more_is_refused():
    largest = bytes(range(256)) * 255 + bytes(255)
    assert len(largest) == MAX_PACKET
    stream = frame_packets([largest, b"\x01"])
    assert stream[:2] == b"\xff\xff"
    deframer = PacketDeframer()
    assert deframer.feed(stream[:1000]) == []
    assert deframer.feed(stream[1000:]) == [largest, b"\x01"]
    with pytest.raises(ValueError, match="A packet of 65536 bytes cannot be framed: it must hold 1 to 65535 bytes"):
        frame_packets([b"ok", bytes(MAX_PACKET + 1)])


def test_an_empty_packet_cannot_be_framed():
    with pytest.raises(ValueError, match="A packet of 0 bytes cannot be framed"):
        frame_packets([b"\x45", b""])


@pytest.mark.parametrize(
    "pieces",
    [
        [b"\x00\x00"],
        [b"\x00", b"\x00"],  # the zero length split over two reads
        [b"\x00\x01a\x00\x00"],  # after a good frame, in the same read
        [b"\x00\x01a\x00", b"\x00\x05hello"],
    ],
)
def test_a_zero_length_is_a_protocol_error_that_stays(pieces):
    deframer = PacketDeframer()
    with pytest.raises(FramingError) as caught:  # from whichever piece completes the zero
        for piece in pieces:
            deframer.feed(piece)
    assert caught.value.sentence == "A frame announced a packet of 0 bytes, which the relay's framing does not allow."
    assert deframer.buffered == 0
    with pytest.raises(FramingError):
        deframer.feed(frame_packets([b"fine"]))  # the stream cannot be trusted to line up again


def test_a_hostile_stream_never_makes_it_hold_more_than_one_frame():
    deframer = PacketDeframer()
    # The largest frame announced, then its body dribbled in odd pieces: held, never more.
    deframer.feed(b"\xff")
    deframer.feed(b"\xff")
    for _ in range(MAX_PACKET // 997):
        assert deframer.feed(bytes(997)) == []
        assert deframer.buffered <= MAX_BUFFERED
    assert deframer.buffered == 2 + MAX_PACKET // 997 * 997
    # A big read of full frames with a partial one at its end keeps only that partial frame.
    deframer = PacketDeframer()
    big = frame_packets([b"p" * 1400] * 2000) + b"\xff\xff" + bytes(MAX_PACKET - 1)
    packets = deframer.feed(big)
    assert len(packets) == 2000
    assert deframer.buffered == MAX_BUFFERED
    # The last byte completes it, and the next frame starts from nothing.
    assert deframer.feed(b"\x07\x00\x01z") == [bytes(MAX_PACKET - 1) + b"\x07", b"z"]
    assert deframer.buffered == 0
