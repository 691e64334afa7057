"""The data fast path (PacketReader.take_data and the engine's use of it): however the stream is
cut, it finds exactly what PacketReader.feed finds, in the same order, with the same faults; the
engine delivers the same IPv4 packets and still answers the control traffic between them."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sstpvpn.client.core.engine import IPV4_FRAME_PREFIX, IPV6_FRAME_PREFIX
from sstpvpn.client.core.ppp_codec import MalformedPacket
from sstpvpn.client.core.sstp_codec import MessageType, PacketReader, encode_control, encode_data
from tests.unit.scripted_server import Conversation, ScriptedServer, engine_settings

LCP_ECHO_REQUEST = b"\xff\x03\xc0\x21" + bytes([9, 7, 0, 8]) + b"\x01\x02\x03\x04"


def ipv4(size: int, tag: int) -> bytes:
    header = bytes([0x45, 0, size >> 8, size & 0xFF, 0, tag & 0xFF, 0, 0, 64, 17, 0, 0, 198, 18, 30, 1, 198, 18, 30, 10])
    return header + bytes((tag + i) & 0xFF for i in range(size - 20))


packets = st.one_of(
    st.builds(lambda size, tag: encode_data(IPV4_FRAME_PREFIX + ipv4(size, tag)), st.integers(20, 1500), st.integers(0, 255)),
    st.builds(lambda body: encode_data(IPV6_FRAME_PREFIX + body), st.binary(min_size=0, max_size=60)),
    st.just(encode_data(LCP_ECHO_REQUEST)),
    st.just(encode_control(MessageType.ECHO_REQUEST)),
    st.builds(lambda body: encode_data(IPV4_FRAME_PREFIX + body), st.binary(max_size=3)),  # IPv4 frames too short to hold a packet
    # the length's reserved bits set, which readers ignore
    st.builds(lambda size: (lambda p: p[:2] + bytes([p[2] | 0xF0]) + p[3:])(encode_data(IPV4_FRAME_PREFIX + ipv4(size, 1))), st.integers(20, 200)),
)
garbage = st.sampled_from([b"", b"\x11\x00\x00\x10" + bytes(12), b"\x10\x00\x00\x02", b"\x10\x00\x00"])


def pieces(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    return [stream[a:b] for a, b in zip(points, points[1:], strict=False)]


def read(stream_pieces: list[bytes], fast: bool) -> tuple[list[tuple], str | None]:
    """What a reader finds, read as the engine reads it: ("ip4", packet) for IPv4 frames, (control,
    body) for the rest, and the fault."""
    reader, found = PacketReader(), []
    try:
        for piece in stream_pieces:
            if fast:
                bodies: list[bytes] = []
                piece = reader.take_data(piece, IPV4_FRAME_PREFIX, bodies)
                found += [("ip4", body) for body in bodies]
            while packets := reader.feed(piece):  # and again, as the engine does: a held fault comes out
                found += [("ip4", body[4:]) if not control and body[:4] == IPV4_FRAME_PREFIX else (control, body) for control, body in packets]
                piece = b""
    except MalformedPacket as fault:
        return found, str(fault)
    return found, None


@settings(max_examples=300, deadline=None)
@given(st.lists(packets, max_size=30), garbage, st.lists(st.integers(0, 1 << 16), max_size=12))
def test_take_data_then_feed_finds_what_feed_finds_however_the_stream_is_cut(stream_packets, tail, cuts):
    stream = b"".join(stream_packets) + tail
    for cut in ([stream], pieces(stream, cuts), [stream[i : i + 1] for i in range(len(stream))]):
        assert read(cut, fast=True) == read(cut, fast=False)
    assert read(pieces(stream, cuts), fast=True)[0] == read([stream], fast=False)[0]  # the same packets, however cut


def test_take_data_leaves_other_buffers_and_a_held_fault_to_feed():
    stream = encode_data(IPV4_FRAME_PREFIX + ipv4(40, 1))
    reader, bodies = PacketReader(), []
    assert reader.take_data(bytearray(stream), IPV4_FRAME_PREFIX, bodies) == stream and bodies == []  # not bytes: feed() reads it
    reader = PacketReader()
    assert reader.feed(stream + b"\x20\x00\x00\x08") != []  # a broken header behind a whole packet is held
    assert reader.take_data(stream, IPV4_FRAME_PREFIX, bodies) == stream and bodies == []
    with pytest.raises(MalformedPacket):
        reader.feed(stream)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(20, 1500), min_size=1, max_size=40), st.integers(0, 40), st.lists(st.integers(0, 1 << 17), max_size=10))
def test_a_connected_engine_delivers_the_same_packets_and_answers_echoes_between_them(sizes, echo_at, cuts):
    sent = [ipv4(size, n) for n, size in enumerate(sizes)]
    frames = [encode_data(IPV4_FRAME_PREFIX + packet) for packet in sent]
    frames.insert(min(echo_at, len(frames)), encode_data(LCP_ECHO_REQUEST))
    stream = b"".join(frames)
    for stream_pieces in (pieces(stream, cuts), [stream[i : i + 1] for i in range(min(len(stream), 3000))] + [stream[3000:]]):
        conversation = Conversation(dataclasses.replace(engine_settings(), dhcp_inform=False), ScriptedServer()).start()
        engine, now = conversation.engine, conversation.now
        assert engine.packets_to_deliver() == [] and engine.data_to_send() == b""
        for piece in stream_pieces:
            engine.receive_stream_data(piece, now)
        assert engine.packets_to_deliver() == sent
        reply = engine.data_to_send()
        assert reply == encode_data(b"\xff\x03\xc0\x21" + bytes([10, 7, 0, 8]) + reply[-4:])  # the LCP Echo-Reply, with our magic number
        assert not engine.closed
