"""Fuzz targets: one function per target, fed raw bytes, raising AssertionError (or whatever the
code under test raised) when an invariant breaks. The coverage-guided driver is
tests/fuzz/run_atheris.py; the targets themselves know nothing about atheris, so a crash input can
be replayed with plain Python (`python -m tests.fuzz.run_atheris engine crash-file`).

* `sstp`: PacketReader fed the bytes whole, in pieces and one byte at a time must hand over the
  same packets and fail at the same point; the control-message and attribute decoders raise
  nothing but MalformedPacket, and what they accept re-encodes to the same bytes.
* `ppp`: the frame, packet and option decoders (same rules), then the LCP, IPCP and IPV6CP
  automatons and each authentication machine (PAP, CHAP-MD5, MS-CHAPv2, EAP) fed a sequence of
  packets with timers in between: nothing but MalformedPacket from the automatons (the engine
  reports it), nothing at all from the authentication machines.
* `engine`: the engine after a 200 (or inside a recorded ScriptedServer session, with one data
  step replaced or extended by the input), fed whole and cut into pieces: no exception, the same
  events, bytes and packets both ways, at most one Disconnected with nothing after it but the
  final state change, a PacketReader that never holds a whole packet's worth, deadlines that move
  forward.

Input layouts are plain bytes (no FuzzedDataProvider), so that `seeds()` can write meaningful
starting inputs for each target.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator

from sstpvpn.client.core.auth import AuthMethod, AuthPolicy, make_authenticatee
from sstpvpn.client.core.events import Credentials, Disconnected, LogRecord, StateChanged
from sstpvpn.client.core.fsm import OptionFsm
from sstpvpn.client.core.ipcp import IpcpPolicy
from sstpvpn.client.core.ipv6cp import Ipv6cpPolicy
from sstpvpn.client.core.lcp import Lcp, LcpPolicy
from sstpvpn.client.core.ppp_codec import (
    Code,
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
from sstpvpn.client.core.sstp_codec import (
    MessageType,
    PacketReader,
    encode_attribute,
    encode_call_connect_request,
    encode_control,
    encode_data,
    parse_control,
    parse_crypto_binding_request,
    parse_status_info,
)
from tests.unit.scripted_server import SCENARIOS, SOFTETHER_HTTP_REPLY, Recording, Replay, Step, comparable_events, record

# ------------------------------------------------------------------ helpers


def cut_at(data: bytes, points: list[int]) -> list[bytes]:
    """`data` cut at the given positions (taken modulo its length), no empty pieces."""
    edges = sorted({0, len(data), *(p % (len(data) + 1) for p in points)})
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


def length_prefixed(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(tag byte, chunk) pairs from `tag, length, chunk...` records; the last chunk may be short."""
    offset = 0
    while offset + 2 <= len(data):
        tag, length = data[offset], data[offset + 1]
        yield tag, data[offset + 2 : offset + 2 + length]
        offset += 2 + length


def records(pairs: list[tuple[int, bytes]]) -> bytes:
    """The inverse of `length_prefixed`, for seeds."""
    return b"".join(bytes((tag, len(chunk))) + chunk for tag, chunk in pairs)


# ------------------------------------------------------------------ sstp


def _read_all(pieces: list[bytes]) -> tuple[list, str | None]:
    reader = PacketReader()
    packets: list = []
    # A fault behind whole packets is raised by the next feed(), hence the final empty one.
    for piece in [*pieces, b""]:
        try:
            packets += reader.feed(piece)
        except MalformedPacket as error:
            return packets, str(error)
        assert reader.buffered < 4096, f"PacketReader holds {reader.buffered} bytes"
    return packets, None


def sstp_target(data: bytes) -> None:
    """Layout: 1 byte N, then N 2-byte cut points, then the stream."""
    count = data[0] % 8 if data else 0
    cuts = [int.from_bytes(data[1 + 2 * i : 3 + 2 * i], "big") for i in range(count)]
    stream = data[1 + 2 * count :]

    whole = _read_all([stream])
    assert _read_all(cut_at(stream, cuts)) == whole, "PacketReader: pieces differ from whole"
    if len(stream) <= 512:
        assert _read_all([stream[i : i + 1] for i in range(len(stream))]) == whole, "PacketReader: bytewise differs"

    packets, _ = whole
    for packet in packets:
        for body in (packet.body, stream):  # what the reader framed, and the raw bytes as a body
            try:
                message = parse_control(body)
            except MalformedPacket:
                continue
            again = encode_control(message.type, message.attributes)[4:]
            # The 12-bit attribute length is masked on reading; re-encoding writes it cleanly.
            assert len(again) == len(body), "control message does not re-encode to its size"
            for attribute in message.attributes:
                assert encode_attribute(attribute)[4:] == attribute.value
                for decode in (parse_crypto_binding_request, parse_status_info):
                    try:
                        decode(attribute.value)
                    except MalformedPacket:
                        pass


# ------------------------------------------------------------------ ppp

CREDENTIALS = Credentials("alice", "fuzz password")
ALL_METHODS = AuthPolicy(allow_pap=True, allow_chap_md5=True)
AUTH_METHODS = [AuthMethod.PAP, AuthMethod.CHAP_MD5, AuthMethod.MSCHAPV2, AuthMethod.EAP]


def _counter_rng() -> Callable[[int], bytes]:
    state = [0]

    def rng(size: int) -> bytes:
        state[0] += 1
        return (state[0].to_bytes(4, "big") * (size // 4 + 1))[:size]

    return rng


def _check_codecs(data: bytes) -> None:
    try:
        protocol, information = parse_frame(data)
        assert 0 < protocol <= 0xFFFF and protocol & 1
        assert data.endswith(information)
    except MalformedPacket:
        pass
    try:
        packet = parse_packet(data)
        assert data.startswith(encode_packet(packet.code, packet.identifier, packet.data))
    except MalformedPacket:
        pass
    try:
        options = parse_options(data)
        assert encode_options(options) == data, "options do not re-encode to the same bytes"
    except MalformedPacket:
        pass


def _automaton(kind: int) -> tuple[Callable[[bytes, float], None], OptionFsm]:
    if kind == 0:
        lcp = Lcp(LcpPolicy(ALL_METHODS, rng=_counter_rng()))

        def feed(information: bytes, now: float) -> None:
            lcp.receive(parse_packet(information), now)

        return feed, lcp.fsm
    fsm = OptionFsm("IPCP", IpcpPolicy()) if kind == 1 else OptionFsm("IPV6CP", Ipv6cpPolicy(rng=_counter_rng()))
    return lambda information, now: fsm.receive(parse_packet(information), now), fsm


def ppp_target(data: bytes) -> None:
    """Layout: 1 byte machine choice, then records (tag, length, bytes): tag bit 0x80 = let the
    timer fire before this packet; the chunk is a packet's information field."""
    _check_codecs(data[1:])
    if not data:
        return
    machine = data[0] % 7
    now = 1000.0
    if machine < 3:  # LCP, IPCP, IPV6CP
        feed, fsm = _automaton(machine)
        fsm.up(now)
        fsm.open(now)
        for tag, chunk in length_prefixed(data[1:]):
            if tag & 0x80 and fsm.timer is not None:
                now = max(now, fsm.timer)
                fsm.handle_timer(now)
            try:
                feed(chunk, now)
            except MalformedPacket:
                pass
            for information in fsm.output:
                parse_packet(information)  # what we send is well-formed
            fsm.output.clear()
            assert fsm.timer is None or fsm.timer >= now
        if data[0] & 0x80:  # and the owner closes the layer at the end
            fsm.close(now)
            fsm.down(now)
        return
    method = AUTH_METHODS[machine - 3]
    machine_ = make_authenticatee(method, CREDENTIALS, ALL_METHODS, rng=_counter_rng())
    machine_.start(now)
    for tag, chunk in length_prefixed(data[1:]):
        deadline = machine_.get_timer()
        if tag & 0x80 and deadline is not None:
            now = max(now, deadline)
            machine_.handle_timer(now)
        machine_.receive(chunk, now)
        for information in machine_.take_output():
            parse_packet(information)
        machine_.take_logs()
        deadline = machine_.get_timer()
        assert deadline is None or deadline >= now


# ------------------------------------------------------------------ engine


@functools.cache
def recordings() -> tuple[Recording, ...]:
    return tuple(record(name) for name in sorted(SCENARIOS))


def _data_steps(steps: list[Step]) -> list[int]:
    return [i for i, step in enumerate(steps) if step[0] == "data"]


def engine_steps(data: bytes) -> tuple[Recording, list[Step], list[int]]:
    """Layout: scenario, mode, step, N, N 2-byte cut points, payload.
    Mode 0: the payload alone after a 200. Mode 1: it replaces the SSTP bytes of a data step of
    the recorded session. Mode 2: it is appended to that step. Mode 3: as 1, then the user
    disconnects at that moment. Mode 4: it is the whole server reply, HTTP included."""
    header = data[:4].ljust(4, b"\0")
    recording = recordings()[header[0] % len(recordings())]
    mode = header[1] % 5
    count = header[3] % 8
    cuts = [int.from_bytes(data[4 + 2 * i : 6 + 2 * i], "big") for i in range(count)]
    payload = data[4 + 2 * count :]
    steps = list(recording.transcript)
    start = steps[0][1]
    if mode in (0, 4):
        reply = SOFTETHER_HTTP_REPLY + payload if mode == 0 else payload
        return recording, [("data", start, reply), ("end", start + 70.0)], cuts
    data_steps = _data_steps(steps)
    index = data_steps[header[2] % len(data_steps)]
    kind, when, original = steps[index]
    keep = len(SOFTETHER_HTTP_REPLY) if index == data_steps[0] else 0
    if mode == 2:
        steps[index] = (kind, when, original + payload)
    else:
        steps[index] = (kind, when, original[:keep] + payload)
    if mode == 3:
        steps.insert(index + 1, ("disconnect", when))
    return recording, steps, cuts


def _check_replay(result: Replay) -> None:
    assert result.largest_reader_buffer < 4096, f"PacketReader held {result.largest_reader_buffer} bytes"
    assert not result.timer_faults, result.timer_faults
    ends = [i for i, event in enumerate(result.events) if isinstance(event, Disconnected)]
    assert len(ends) <= 1, f"{len(ends)} Disconnected events"
    if ends:
        after = result.events[ends[0] + 1 :]
        assert all(isinstance(event, (StateChanged, LogRecord)) for event in after) and sum(isinstance(e, StateChanged) for e in after) <= 1, (
            f"events after Disconnected: {after}"
        )


def engine_target(data: bytes) -> None:
    recording, steps, cuts = engine_steps(data)
    whole = recording.replay(transcript=steps)
    _check_replay(whole)
    splitters: list[Callable[[bytes], list[bytes]]] = [lambda chunk: cut_at(chunk, cuts)]
    if len(data) <= 300:
        splitters.append(lambda chunk: [chunk[i : i + 1] for i in range(len(chunk))])
    for split in splitters:
        other = recording.replay(split=split, transcript=steps)
        _check_replay(other)
        assert comparable_events(other.events) == comparable_events(whole.events), "events differ whole vs cut"
        assert other.sent == whole.sent, "bytes sent differ whole vs cut"
        assert other.delivered == whole.delivered, "packets delivered differ whole vs cut"


# ------------------------------------------------------------------ seeds

TARGETS: dict[str, Callable[[bytes], None]] = {"sstp": sstp_target, "ppp": ppp_target, "engine": engine_target}


def seeds(target: str) -> list[bytes]:
    """Starting inputs: well-formed traffic, so that mutations start deep."""
    if target == "sstp":
        stream = (
            encode_call_connect_request() + encode_control(MessageType.ECHO_REQUEST) + encode_data(encode_frame(PppProtocol.LCP, encode_packet(1, 1)))
        )
        return [b"\x00" + stream, b"\x02\x00\x05\x00\x21" + stream]
    if target == "ppp":
        request = encode_packet(
            Code.CONFIGURE_REQUEST, 1, encode_options([Option(1, b"\x05\xdc"), Option(3, b"\xc2\x23\x81"), Option(5, b"\x01\x02\x03\x04")])
        )
        ack = encode_packet(Code.CONFIGURE_ACK, 1, encode_options([Option(1, b"\x05\xdc"), Option(5, b"\x00\x00\x00\x01")]))
        ipcp_nak = encode_packet(Code.CONFIGURE_NAK, 1, encode_options([Option(3, bytes([198, 18, 30, 10])), Option(129, bytes(4))]))
        challenge = encode_packet(1, 7, bytes([16]) + bytes(range(16)) + b"server")
        eap_identity = encode_packet(1, 1, b"\x01")
        return [
            bytes([0]) + records([(0, request), (0, ack), (0x80, b"")]),
            bytes([1]) + records([(0, ipcp_nak), (0, request)]),
            bytes([2]) + records([(0, request)]),
            bytes([3]) + records([(0, encode_packet(2, 1, b"\x00"))]),
            bytes([4]) + records([(0, challenge), (0, encode_packet(3, 7, b"ok"))]),
            bytes([5]) + records([(0, challenge), (0, encode_packet(4, 7, b"E=691 R=0"))]),
            bytes([6]) + records([(0, eap_identity), (0, encode_packet(1, 2, b"\x1a\x01\x02\x00\x15\x10" + bytes(16) + b"srv"))]),
        ]
    result = []
    for number, recording in enumerate(recordings()):
        steps = recording.transcript
        for position, index in enumerate(_data_steps(steps)[:6]):
            sstp = steps[index][2][len(SOFTETHER_HTTP_REPLY) :] if position == 0 else steps[index][2]
            result.append(bytes([number, 1, position, 1]) + b"\x00\x07" + sstp)
    result.append(bytes([0, 4, 0, 0]) + SOFTETHER_HTTP_REPLY)
    return result
