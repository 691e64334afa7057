"""MD4 message digest (RFC 1320), in pure Python.

MS-CHAPv2 hashes the password with MD4. OpenSSL 3 moved MD4 to its legacy provider, which
Python's `hashlib` usually cannot reach, so the client carries its own. MD4 is broken as a
general-purpose hash; it is used here only because the protocol demands it.
"""

from __future__ import annotations

import struct

_MASK = 0xFFFFFFFF
_INITIAL_STATE = (0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)

# Per round: the order in which the 16 message words are used, and the four rotation amounts.
_ROUND1_ORDER = tuple(range(16))
_ROUND2_ORDER = (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)
_ROUND3_ORDER = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
_ROUND1_SHIFTS = (3, 7, 11, 19)
_ROUND2_SHIFTS = (3, 5, 9, 13)
_ROUND3_SHIFTS = (3, 9, 11, 15)
_ROUND2_CONSTANT = 0x5A827999
_ROUND3_CONSTANT = 0x6ED9EBA1


def _rotate_left(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (32 - shift))) & _MASK


def _pad(message: bytes) -> bytes:
    """Append 0x80, zeros up to 56 mod 64, then the bit length as 64-bit little-endian."""
    bit_length = (len(message) * 8) & 0xFFFFFFFFFFFFFFFF
    zeros = (55 - len(message)) % 64
    return message + b"\x80" + bytes(zeros) + struct.pack("<Q", bit_length)


def _compress(state: tuple[int, int, int, int], block: bytes) -> tuple[int, int, int, int]:
    words = struct.unpack("<16I", block)
    a, b, c, d = state

    for i, k in enumerate(_ROUND1_ORDER):
        f = (b & c) | (~b & d)
        a, b, c, d = d, _rotate_left((a + f + words[k]) & _MASK, _ROUND1_SHIFTS[i % 4]), b, c
    for i, k in enumerate(_ROUND2_ORDER):
        g = (b & c) | (b & d) | (c & d)
        a, b, c, d = d, _rotate_left((a + g + words[k] + _ROUND2_CONSTANT) & _MASK, _ROUND2_SHIFTS[i % 4]), b, c
    for i, k in enumerate(_ROUND3_ORDER):
        h = b ^ c ^ d
        a, b, c, d = d, _rotate_left((a + h + words[k] + _ROUND3_CONSTANT) & _MASK, _ROUND3_SHIFTS[i % 4]), b, c

    return (
        (state[0] + a) & _MASK,
        (state[1] + b) & _MASK,
        (state[2] + c) & _MASK,
        (state[3] + d) & _MASK,
    )


def md4(message: bytes) -> bytes:
    """The 16-byte MD4 digest of `message`."""
    padded = _pad(bytes(message))
    state = _INITIAL_STATE
    for offset in range(0, len(padded), 64):
        state = _compress(state, padded[offset : offset + 64])
    return struct.pack("<4I", *state)
