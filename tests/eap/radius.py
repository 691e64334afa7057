"""A minimal RADIUS client (RFC 2865, RFC 3579 EAP-Message + Message-Authenticator, RFC 2548
MS-MPPE keys): just what an SSTP server's authenticator (RRAS + NPS) sends and reads for EAP.
Hand-written instead of pyrad: ~100 lines with no dictionary files, and the tests need to see the
key decryption step by step anyway."""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import struct
from dataclasses import dataclass, field

ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT, ACCESS_CHALLENGE = 1, 2, 3, 11
USER_NAME, NAS_IDENTIFIER, STATE, VENDOR_SPECIFIC, FRAMED_MTU = 1, 32, 24, 26, 12
EAP_MESSAGE, MESSAGE_AUTHENTICATOR = 79, 80
MICROSOFT = 311
MS_MPPE_SEND_KEY, MS_MPPE_RECV_KEY = 16, 17


@dataclass
class Reply:
    code: int
    attributes: list[tuple[int, bytes]]
    request_authenticator: bytes = field(repr=False)

    def all(self, kind: int) -> list[bytes]:
        return [value for attribute, value in self.attributes if attribute == kind]

    def one(self, kind: int) -> bytes | None:
        values = self.all(kind)
        return values[0] if values else None

    @property
    def eap_message(self) -> bytes:
        return b"".join(self.all(EAP_MESSAGE))

    def vendor(self, vendor_id: int, vendor_type: int) -> bytes | None:
        for value in self.all(VENDOR_SPECIFIC):
            if len(value) >= 6 and struct.unpack("!I", value[:4])[0] == vendor_id and value[4] == vendor_type:
                return value[6 : 4 + value[5]]
        return None


def _attribute(kind: int, value: bytes) -> bytes:
    assert len(value) <= 253
    return bytes((kind, 2 + len(value))) + value


def _parse_attributes(data: bytes) -> list[tuple[int, bytes]]:
    attributes, position = [], 0
    while position + 2 <= len(data):
        kind, length = data[position], data[position + 1]
        if length < 2 or position + length > len(data):
            raise ValueError("malformed RADIUS attribute")
        attributes.append((kind, data[position + 2 : position + length]))
        position += length
    return attributes


def decrypt_mppe_key(value: bytes, secret: bytes, request_authenticator: bytes) -> bytes:
    """RFC 2548 2.4.2/2.4.3: Salt (2) + encrypted String (Key-Length, Key, padding)."""
    salt, cipher = value[:2], value[2:]
    if len(cipher) % 16 or not cipher:
        raise ValueError("MS-MPPE key with a bad length")
    plain, previous = b"", request_authenticator + salt
    for i in range(0, len(cipher), 16):
        block = hashlib.md5(secret + previous).digest()
        chunk = cipher[i : i + 16]
        plain += bytes(a ^ b for a, b in zip(chunk, block, strict=True))
        previous = chunk
    length = plain[0]
    if length > len(plain) - 1:
        raise ValueError("MS-MPPE key length beyond the data")
    return plain[1 : 1 + length]


class RadiusClient:
    def __init__(self, host: str, port: int, secret: bytes, timeout: float = 10.0) -> None:
        self.address = (host, port)
        self.secret = secret
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self._identifier = 0

    def close(self) -> None:
        self.sock.close()

    def access_request(self, user_name: bytes, eap_message: bytes, state: bytes | None) -> Reply:
        self._identifier = (self._identifier + 1) & 0xFF
        authenticator = os.urandom(16)
        attributes = _attribute(USER_NAME, user_name) + _attribute(NAS_IDENTIFIER, b"sstp-vpn-tests")
        attributes += _attribute(FRAMED_MTU, struct.pack("!I", 1400))
        for i in range(0, len(eap_message), 253):
            attributes += _attribute(EAP_MESSAGE, eap_message[i : i + 253])
        if state is not None:
            attributes += _attribute(STATE, state)
        attributes += _attribute(MESSAGE_AUTHENTICATOR, bytes(16))
        header = struct.pack("!BBH", ACCESS_REQUEST, self._identifier, 20 + len(attributes))
        packet = header + authenticator + attributes
        mac = hmac.new(self.secret, packet, "md5").digest()
        packet = packet[:-16] + mac
        self.sock.sendto(packet, self.address)
        while True:
            data, _ = self.sock.recvfrom(8192)
            if len(data) >= 20 and data[1] == self._identifier:
                break
        return self._check_reply(data, authenticator)

    def _check_reply(self, data: bytes, request_authenticator: bytes) -> Reply:
        code, _identifier, length = struct.unpack("!BBH", data[:4])
        data = data[:length]
        expected = hashlib.md5(data[:4] + request_authenticator + data[20:] + self.secret).digest()
        if not hmac.compare_digest(expected, data[4:20]):
            raise ValueError("RADIUS reply with a wrong Response Authenticator")
        attributes = _parse_attributes(data[20:])
        # Message-Authenticator of the reply: computed with the Request Authenticator in place.
        position = 20
        for kind, value in attributes:
            if kind == MESSAGE_AUTHENTICATOR:
                zeroed = data[:4] + request_authenticator + data[20 : position + 2] + bytes(16) + data[position + 18 :]
                if not hmac.compare_digest(hmac.new(self.secret, zeroed, "md5").digest(), value):
                    raise ValueError("RADIUS reply with a wrong Message-Authenticator")
            position += 2 + len(value)
        return Reply(code, attributes, request_authenticator)

    def msk(self, reply: Reply) -> bytes:
        """MS-MPPE-Recv-Key || MS-MPPE-Send-Key (each 32 bytes for EAP-TLS/PEAP): the MSK's first
        64 bytes as RFC 5216 2.3 / [MS-PEAP] 3.1.5.7 split it for the authenticator."""
        recv = reply.vendor(MICROSOFT, MS_MPPE_RECV_KEY)
        send = reply.vendor(MICROSOFT, MS_MPPE_SEND_KEY)
        if recv is None or send is None:
            raise ValueError("Access-Accept without MS-MPPE keys")
        auth = reply.request_authenticator
        return decrypt_mppe_key(recv, self.secret, auth) + decrypt_mppe_key(send, self.secret, auth)
