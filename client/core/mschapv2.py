"""MS-CHAPv2 computations (RFC 2759) and the MPPE master keys derived from them (RFC 3079 3).

Only pure functions of their inputs: the authentication machine in `auth.py` supplies the
challenges and decides what to send. The master keys give the HLAK of the SSTP crypto binding.

Names and encodings:
* The password is hashed as UTF-16LE (RFC 2759 "Unicode"); characters outside the BMP become
  surrogate pairs, as Windows stores them.
* The user name is sent as UTF-8 (RFC 2759 says ASCII; UTF-8 is the same for ASCII names).
  `ChallengeHash` uses the name without any "DOMAIN\\" prefix (RFC 2759 8.2: "excluding any
  prepended domain name"), while the Name field of the Response carries the full name.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from .md4 import md4

# RFC 2759 8.7
MAGIC_SERVER_SIGNING = b"Magic server to client signing constant"
MAGIC_ITERATION_PAD = b"Pad to make it do more than one iteration"

# RFC 3079 3.4
MAGIC_MASTER_KEY = b"This is the MPPE Master Key"
MAGIC_CLIENT_SEND = b"On the client side, this is the send key; on the server side, it is the receive key."
MAGIC_CLIENT_RECEIVE = b"On the client side, this is the receive key; on the server side, it is the send key."
SHS_PAD1 = bytes(40)
SHS_PAD2 = b"\xf2" * 40

CHALLENGE_SIZE = 16
NT_RESPONSE_SIZE = 24
AUTHENTICATOR_RESPONSE_SIZE = 42  # "S=" + 40 hex digits


def encode_password(password: str) -> bytes:
    """The password as RFC 2759 hashes it: UTF-16LE without a terminator."""
    return password.encode("utf-16-le", "surrogatepass")


def encode_username(username: str) -> bytes:
    return username.encode("utf-8")


def strip_domain(username: str) -> str:
    """ "DOMAIN\\user" -> "user". A domain name cannot contain a backslash, so the domain ends at
    the first one."""
    _, separator, name = username.partition("\\")
    return name if separator else username


def _sha1(*parts: bytes) -> bytes:
    return hashlib.sha1(b"".join(parts)).digest()


def password_hash(password: str) -> bytes:
    """NtPasswordHash: MD4 of the UTF-16LE password (16 bytes)."""
    return md4(encode_password(password))


def password_hash_hash(password: str) -> bytes:
    """HashNtPasswordHash: MD4 of the password hash (16 bytes)."""
    return md4(password_hash(password))


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, username: str) -> bytes:
    """ChallengeHash (RFC 2759 8.2): the 8 bytes that the NT-Response encrypts."""
    return _sha1(peer_challenge, authenticator_challenge, encode_username(strip_domain(username)))[:8]


def spread_des_key(key7: bytes) -> bytes:
    """Spread 56 key bits over 8 bytes, 7 bits per byte from the high end; the low (parity)
    bit is left 0 because DES ignores it."""
    bits = int.from_bytes(key7, "big")
    return bytes(((bits >> (49 - 7 * i)) & 0x7F) << 1 for i in range(8))


def des_encrypt(clear: bytes, key7: bytes) -> bytes:
    """Single DES (ECB, one block) under a 7-byte key. Single DES is 3DES with K1 = K2 = K3,
    which is what the `cryptography` package still offers."""
    key = spread_des_key(key7)
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(clear) + encryptor.finalize()


def challenge_response(challenge: bytes, password_hash_: bytes) -> bytes:
    """ChallengeResponse (RFC 2759 8.5): three DES encryptions of the 8-byte challenge."""
    z = password_hash_ + bytes(5)
    return b"".join(des_encrypt(challenge, z[i : i + 7]) for i in (0, 7, 14))


def nt_response(authenticator_challenge: bytes, peer_challenge: bytes, username: str, password: str) -> bytes:
    """GenerateNTResponse (RFC 2759 8.1): the 24 bytes the client sends."""
    return challenge_response(challenge_hash(peer_challenge, authenticator_challenge, username), password_hash(password))


def authenticator_response(password: str, nt_response_: bytes, peer_challenge: bytes, authenticator_challenge: bytes, username: str) -> bytes:
    """GenerateAuthenticatorResponse (RFC 2759 8.7): b"S=" + 40 upper-case hex digits, the proof
    a genuine server sends back in its Success message."""
    digest = _sha1(password_hash_hash(password), nt_response_, MAGIC_SERVER_SIGNING)
    digest = _sha1(digest, challenge_hash(peer_challenge, authenticator_challenge, username), MAGIC_ITERATION_PAD)
    return b"S=" + digest.hex().upper().encode("ascii")


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def authenticator_response_matches(message: bytes, expected: bytes) -> bool:
    """Whether a Success message starts with the expected "S=<40 hex>". RFC 2759 sends upper
    case; lower case is accepted too. Anything else (short, non-hex, different) is False."""
    received = message[:AUTHENTICATOR_RESPONSE_SIZE]
    if len(received) != AUTHENTICATOR_RESPONSE_SIZE or received[:2] != b"S=":
        return False
    if not all(byte in _HEX_DIGITS for byte in received[2:]):
        return False
    return hmac.compare_digest(received.upper(), expected)


# --- RFC 3079 section 3: MPPE keys -------------------------------------------------------------


def master_key(password_hash_hash_: bytes, nt_response_: bytes) -> bytes:
    """GetMasterKey: 16 bytes shared by client and server."""
    return _sha1(password_hash_hash_, nt_response_, MAGIC_MASTER_KEY)[:16]


def asymmetric_start_key(master_key_: bytes, magic: bytes, length: int = 16) -> bytes:
    """GetAsymmetricStartKey with the magic already chosen (see `MasterKeys`). `length` is 16
    for 128-bit keys, 8 for 40- and 56-bit keys."""
    return _sha1(master_key_, SHS_PAD1, magic, SHS_PAD2)[:length]


def new_key_from_sha(start_key: bytes, session_key: bytes, length: int) -> bytes:
    """GetNewKeyFromSHA (RFC 3079 3.3); MPPE uses it for the first and every later session key."""
    return _sha1(start_key[:length], SHS_PAD1, session_key[:length], SHS_PAD2)[:length]


def reduce_session_key(key8: bytes, bits: int) -> bytes:
    """ReduceSessionKey (RFC 3079 3.1/3.2): force the leading bytes of an 8-byte key for 40 or
    56-bit MPPE."""
    if bits == 40:
        return b"\xd1\x26\x9e" + key8[3:8]
    if bits == 56:
        return b"\xd1" + key8[1:8]
    raise ValueError(f"MPPE key strength must be 40 or 56 bits, not {bits}")


@dataclass(frozen=True)
class MasterKeys:
    """The client's 128-bit MPPE master keys. The server's send key is the client's receive key
    and the other way round."""

    send: bytes = field(repr=False)
    receive: bytes = field(repr=False)


def client_master_keys(password: str, nt_response_: bytes) -> MasterKeys:
    """The client's MasterSendKey (Magic2) and MasterReceiveKey (Magic3) after an MS-CHAPv2 login."""
    key = master_key(password_hash_hash(password), nt_response_)
    return MasterKeys(
        send=asymmetric_start_key(key, MAGIC_CLIENT_SEND),
        receive=asymmetric_start_key(key, MAGIC_CLIENT_RECEIVE),
    )
