"""The wire format of the Windows tunnel relay: IP packets carried over a byte stream (a named
pipe between the SSTP VPN network service, which owns the Wintun adapter, and the unprivileged
engine). Pure: no I/O, so both ends and every hostile input are plain unit tests.

Each packet travels as a 2-byte big-endian length (1..65535) followed by the packet itself. A
byte stream keeps no message boundaries, so the reader has to find them again: PacketDeframer
takes whatever pieces the stream delivers and gives back whole packets.

The service reads what an unprivileged user's process writes, so the deframer must survive a
hostile peer: a zero length is refused (it would let a peer spin the relay without sending any
packet), and it never holds more than one frame, whatever it is fed.
"""

from __future__ import annotations

import struct

from sstpvpn.client.core.i18n import _

MAX_PACKET = 0xFFFF  # the largest length two bytes can say (and Wintun's largest IP packet)
HEADER_SIZE = 2
MAX_BUFFERED = HEADER_SIZE + MAX_PACKET - 1  # the most a deframer ever keeps: one frame, less its last byte

_LENGTH = struct.Struct(">H")


class FramingError(Exception):
    """The byte stream does not follow the framing: the peer is broken or hostile. `sentence`
    says what was wrong."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


def frame_packets(packets: list[bytes]) -> bytes:
    """One buffer holding every packet, each after its length: the data path writes a batch at
    once. Empty and over-65535-byte packets are a ValueError; callers drop (and count) them first."""
    parts: list[bytes] = []
    for packet in packets:
        size = len(packet)
        if not 0 < size <= MAX_PACKET:
            raise ValueError(f"A packet of {size} bytes cannot be framed: it must hold 1 to {MAX_PACKET} bytes.")
        parts.append(_LENGTH.pack(size))
        parts.append(packet)
    return b"".join(parts)


class PacketDeframer:
    """Whole packets out of a byte stream fed in arbitrary pieces. Keeps at most one incomplete
    frame between calls. After a FramingError it stays broken: the stream cannot be resynchronized."""

    def __init__(self) -> None:
        self._pending = bytearray()  # the start of the next frame, header included: < one frame
        self._failure: str | None = None

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held back (never more than MAX_BUFFERED)."""
        return len(self._pending)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """The packets that `data` completes, in order; [] if none is complete yet."""
        if self._failure is not None:
            raise FramingError(self._failure)
        view = memoryview(data).cast("B")
        end = len(view)
        position = 0
        packets: list[bytes] = []
        pending = self._pending
        if pending:
            # First complete the frame carried over. Only the bytes this frame still needs are
            # copied into `pending`, so holding it back costs no more than the frame itself.
            if len(pending) < HEADER_SIZE:
                position = min(HEADER_SIZE - len(pending), end)
                pending += view[:position]
                if len(pending) < HEADER_SIZE:
                    return packets
                self._check_length(_LENGTH.unpack_from(pending)[0])
            missing = HEADER_SIZE + _LENGTH.unpack_from(pending)[0] - len(pending)
            taken = min(missing, end - position)
            pending += view[position : position + taken]
            position += taken
            if taken < missing:
                return packets
            packets.append(bytes(pending[HEADER_SIZE:]))
            pending.clear()
        # Then whole frames straight out of `data`: one slice per packet, no copy of the rest.
        while end - position >= HEADER_SIZE:
            size = _LENGTH.unpack_from(view, position)[0]
            self._check_length(size)
            start = position + HEADER_SIZE
            if end - start < size:
                break
            packets.append(bytes(view[start : start + size]))
            position = start + size
        # What is left is less than one frame: keep it for the next call.
        pending += view[position:]
        return packets

    def _check_length(self, size: int) -> None:
        if size == 0:
            self._failure = _("A frame announced a packet of 0 bytes, which the relay's framing does not allow.")
            self._pending.clear()
            raise FramingError(self._failure)
