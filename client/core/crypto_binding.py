"""SSTP crypto binding ([MS-SSTP] 3.2.5.2): the Call Connected message that ties the PPP
authentication to the TLS session, so that a man in the middle who relays PPP cannot finish
the call.

HLAK (from PPP authentication) -> CMK = HMAC(HLAK, seed || length || 0x01) -> Compound MAC =
HMAC(CMK, Call Connected with a zero MAC field). The Cert Hash is the hash of the server's DER
leaf certificate. One hash (SHA-256 or SHA-1) is used for all three.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from .mschapv2 import MasterKeys
from .sstp_codec import Attribute, AttributeId, HashProtocol, MessageType, encode_control

HLAK_SIZE = 32
NONCE_SIZE = 32
FIELD_SIZE = 32  # Cert Hash and Compound MAC fields; SHA-1 values are padded with zeros
CALL_CONNECTED_SIZE = 112
MAC_OFFSET = 80

CMK_SEED = b"SSTP inner method derived CMK"

# Authentication that yields no key material (PAP, CHAP-MD5, EAP-MD5) binds with zeros.
NO_KEY_HLAK = bytes(HLAK_SIZE)


def hlak_from_master_keys(keys: MasterKeys) -> bytes:
    """MS-CHAPv2 and EAP-MSCHAPv2: client MasterSendKey || client MasterReceiveKey.

    Which HLAK EAP-MSCHAPv2 uses toward RRAS, settled with sources:
    * [MS-SSTP] 3.2.5.2.2/3.2.5.2.4: MS-CHAPv2 -> client MasterSendKey | MasterReceiveKey; "EAP
      other than EAP-TLS" -> the client's MSK, its first 32 octets.
    * [MS-CHAP] (EAP-MSCHAPv2 key derivation, learn.microsoft.com/openspecs ms-chap 5a860bf5):
      MSK = MasterReceiveKey + MasterSendKey + 32 zero octets, with the keys named from the
      authenticator's side (on the peer, MS-MPPE-Recv-Key = MasterSendKey). The authenticator's
      receive key is the peer's send key (RFC 3079 3.4, Magic2/Magic3), so the MSK starts with the
      peer's MasterSendKey || MasterReceiveKey.
    * wpa_supplicant (eap_mschapv2.c, getKey) gives the peer's MSK as send key || receive key, and
      FreeRADIUS/hostapd send MS-MPPE-Recv-Key = the peer's send key to the NAS: the same order.
    So both readings of [MS-SSTP] give the very bytes of the MS-CHAPv2 HLAK, and this function
    serves both methods. The one dissenting report (sorz/sstp-server commit f0b9dd3, PR #43,
    2021: "for Windows 10 clients ... HLAK is not available for EAP-MS-CHAPv2", so that server
    also accepts a zero HLAK) comes from a Linux pppd server that could not export EAP-MSCHAPv2
    keys, not from RRAS; the specification and the implementations above agree, so the code
    keeps the keyed HLAK. A server that expected zeros would refuse our binding, not accept a
    weaker one: the failure is visible, never silent.
    """
    return keys.send + keys.receive


def hlak_from_msk(msk: bytes) -> bytes:
    """Other EAP methods with keys: the first 32 bytes of the MSK, zero-padded ([MS-SSTP]
    3.2.5.2.4). EAP-TLS: MSK from RFC 5216 2.3 (the current [MS-SSTP] text and a Windows capture,
    protocol notes 4.4 C, agree on the first 32 bytes; an older revision said MasterSendKey ||
    MasterReceiveKey). PEAP: MSK from [MS-PEAP] 3.1.5.7 (CSK with crypto binding, else the TLS
    key material). Both are checked against FreeRADIUS's and hostapd's MS-MPPE keys in tests/eap."""
    return msk[:HLAK_SIZE].ljust(HLAK_SIZE, b"\x00")


def _hash_name(hash_protocol: int) -> str:
    if hash_protocol == HashProtocol.SHA256:
        return "sha256"
    if hash_protocol == HashProtocol.SHA1:
        return "sha1"
    raise ValueError(f"crypto binding needs exactly one hash protocol (1 or 2), not {hash_protocol}")


def _pad(value: bytes) -> bytes:
    return value.ljust(FIELD_SIZE, b"\x00")


def compound_mac_key(hlak: bytes, hash_protocol: int) -> bytes:
    """CMK: the first HMAC block of the key derivation. The output length is written as two
    LITTLE-endian bytes ([MS-SSTP] 4.7's vector only matches that way)."""
    name = _hash_name(hash_protocol)
    length = hashlib.new(name).digest_size
    return hmac.digest(hlak, CMK_SEED + struct.pack("<H", length) + b"\x01", name)


def certificate_hash(server_cert_der: bytes, hash_protocol: int) -> bytes:
    """Hash of the exact DER leaf certificate from the TLS session, padded to 32 bytes."""
    return _pad(hashlib.new(_hash_name(hash_protocol), server_cert_der).digest())


def compound_mac(cmk: bytes, message_with_zero_mac: bytes, hash_protocol: int) -> bytes:
    return _pad(hmac.digest(cmk, message_with_zero_mac, _hash_name(hash_protocol)))


def call_connected_from_cert_hash(hlak: bytes, nonce: bytes, cert_hash: bytes, hash_protocol: int) -> bytes:
    """The 112-byte Call Connected message, given the (padded) certificate hash."""
    if len(hlak) != HLAK_SIZE or len(nonce) != NONCE_SIZE or len(cert_hash) != FIELD_SIZE:
        raise ValueError("crypto binding needs a 32-byte HLAK, nonce and certificate hash")
    _hash_name(hash_protocol)  # validates before anything is built

    def message(mac: bytes) -> bytes:
        value = b"\x00\x00\x00" + bytes((int(hash_protocol),)) + nonce + cert_hash + mac
        return encode_control(MessageType.CALL_CONNECTED, [Attribute(AttributeId.CRYPTO_BINDING, value)])

    unsigned = message(bytes(FIELD_SIZE))
    return message(compound_mac(compound_mac_key(hlak, hash_protocol), unsigned, hash_protocol))


def build_call_connected(hlak: bytes, nonce: bytes, server_cert_der: bytes, hash_protocol: int) -> bytes:
    """The whole SSTP Call Connected message (112 bytes) for this HLAK, the nonce from the Call
    Connect Ack, the server's DER leaf certificate and the chosen hash protocol."""
    return call_connected_from_cert_hash(hlak, nonce, certificate_hash(server_cert_der, hash_protocol), hash_protocol)
