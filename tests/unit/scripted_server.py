"""ScriptedServer: the server side of SSTP + PPP, built from our own codecs and crypto, for
driving the sans-IO `Engine` without sockets.

It answers the HTTP request, acks the call with a nonce and a hash bitmask, offers a sequence of
authentication methods in LCP (walking to the next one on Nak or Reject, as SoftEther does),
plays each method's server side, verifies the crypto binding of Call Connected with the HLAK it
computes from its own side, Naks IPCP with an address and DNS servers, and relays IP packets.
Everything it noticed is kept in attributes that tests assert on; misbehaviours are switches in
`ServerConfig`.

`Conversation` pumps bytes between an engine and a server on a fake clock, collects the
engine's events and keeps a transcript of the engine's inputs. `record()` runs one of the
`SCENARIOS` and returns that transcript; `replay()` feeds a (possibly mutated) transcript to a
fresh engine, which is how the Hypothesis tests and the fuzz targets (tests/fuzz) reach deep states.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from sstpvpn.client.core import mschapv2
from sstpvpn.client.core.auth import AuthPolicy
from sstpvpn.client.core.engine import Engine, EngineSettings
from sstpvpn.client.core.events import Credentials, Disconnected, Event, LinkConfigured, LogRecord
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
from sstpvpn.client.core.sstp_codec import (
    Attribute,
    AttributeId,
    AttributeStatus,
    CryptoBindingRequest,
    MessageType,
    PacketReader,
    StatusInfo,
    encode_call_connect_request,
    encode_control,
    encode_crypto_binding_request,
    encode_data,
    encode_status_info,
    parse_control,
)
from sstpvpn.client.core.types import Failure

SOFTETHER_HTTP_REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\nServer: Microsoft-HTTPAPI/2.0\r\nDate: Tue, 25 Nov 2025 22:00:00 GMT\r\n\r\n"
)

# LCP Authentication-Protocol option data, written out here rather than taken from auth.py.
PAP = "pap"
CHAP_MD5 = "chap-md5"
MSCHAPV2 = "mschapv2"
EAP = "eap"
MSCHAPV1 = "mschapv1"  # offered by accel-ppp; the client never accepts it
AUTH_OPTION_DATA = {PAP: b"\xc0\x23", CHAP_MD5: b"\xc2\x23\x05", MSCHAPV2: b"\xc2\x23\x81", EAP: b"\xc2\x27", MSCHAPV1: b"\xc2\x23\x80"}

EAP_IDENTITY = 1
EAP_NAK = 3
EAP_MD5 = 4
EAP_TLS = 13
EAP_MSCHAPV2 = 26

LCP_MRU = 1
LCP_AUTH = 3
LCP_MAGIC = 5
IPCP_ADDRESS = 3
IPCP_DNS1 = 129
IPCP_DNS2 = 131
IPV6CP_IDENTIFIER = 1

SOFTETHER_ECHO_DATA = b"Aho Baka Manuke\x00"
CMK_SEED = b"SSTP inner method derived CMK"


def scripted_certificate() -> bytes:
    """Stand-in DER bytes: the engine only hashes them."""
    return b"\x30\x82\x01\x0a" + bytes(range(256)) + b"scripted-server-certificate"


@dataclass
class ServerConfig:
    username: str = "alice"
    password: str = "correct horse battery"
    methods: tuple[str, ...] = (MSCHAPV2,)  # LCP auth offers, in order; Nak/Reject moves on
    eap_types: tuple[int, ...] = (EAP_MSCHAPV2,)  # EAP methods in order of preference
    hash_bitmask: int = 0x02
    nonce: bytes = bytes(range(0xA0, 0xC0))
    certificate: bytes = field(default_factory=scripted_certificate)
    challenge: bytes = bytes(range(0x10, 0x20))  # CHAP / MS-CHAPv2 / EAP-MD5 challenge
    server_name: bytes = b"scripted"
    http_reply: bytes = SOFTETHER_HTTP_REPLY
    connect_naks: int = 0  # Call Connect Naks before the Ack
    reject_magic: bool = True  # SoftEther Configure-Rejects the client's Magic-Number
    extra_lcp_options: tuple[Option, ...] = ()  # more options in the server's LCP request
    address: IPv4Address = IPv4Address("198.18.30.10")
    peer_address: IPv4Address = IPv4Address("198.18.30.1")
    dns: tuple[IPv4Address, ...] = (IPv4Address("198.18.30.1"),)  # Rejects DNS2 when only one
    ipv6: bool = False  # send an IPV6CP Configure-Request once IPCP is up, and answer IPV6CP
    server_interface_id: bytes = bytes.fromhex("0200005EFE0A0B0C")
    ipcp_request_with_success: bool = False  # send our IPCP request with the auth Success (pppd)
    answer_sstp_echo: bool = True
    bad_authenticator: bool = False  # an impostor: MS-CHAPv2 Success with a wrong S=
    mschapv2_retries: int = 0  # MS-CHAPv2 Failures with R=1 (and a new challenge) before R=0
    terminate_after_auth_failure: bool = True  # SoftEther sends LCP Terminate-Request after E=691
    silent_after: str | None = None  # "http", "connect" or "connected": then the server says nothing


@dataclass
class BindingCheck:
    """What the server found in the client's Call Connected."""

    hash_protocol: int
    nonce_ok: bool
    cert_hash_ok: bool
    mac_ok: bool
    hlak: bytes

    @property
    def ok(self) -> bool:
        return self.nonce_ok and self.cert_hash_ok and self.mac_ok


def expected_compound_mac(hlak: bytes, message: bytes, hash_protocol: int) -> bytes:
    """[MS-SSTP] 3.2.5.2.4 from the server's side, written independently of crypto_binding.py."""
    name = "sha256" if hash_protocol == 0x02 else "sha1"
    size = hashlib.new(name).digest_size
    cmk = hmac.new(hlak, CMK_SEED + size.to_bytes(2, "little") + b"\x01", name).digest()
    unsigned = message[:80] + bytes(32)
    return hmac.new(cmk, unsigned, name).digest().ljust(32, b"\x00")


class ScriptedServer:
    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self._inbox = bytearray()  # HTTP request bytes until the blank line
        self._reader = PacketReader()
        self._out: list[bytes] = []
        self.sent_chunks: list[bytes] = []  # everything sent, one entry per data_to_send()
        self.http_request: bytes | None = None
        self.stage = "http"
        self.silent = False
        self.problems: list[str] = []  # protocol violations by the client

        self.control_received: list[int] = []
        self.wire_log: list[tuple] = []  # ("control", type) and ("ppp", protocol, code), in arrival order
        self.frames_received: list[tuple[int, bytes]] = []
        self.ip_received: list[bytes] = []
        self.dhcpv6_received: list[bytes] = []  # client/core/dhcpv6's Information-requests
        self.dhcp_received: list[bytes] = []  # the client's DHCPINFORMs (UDP to port 67), kept apart
        self.binding: BindingCheck | None = None
        self.call_connected_count = 0

        # LCP
        self._method_index = 0
        self._lcp_id = 0
        self._lcp_request_id: int | None = None
        self.lcp_refusals: list[str] = []  # methods the client Nak'ed or Rejected
        self.gave_up = False  # it ran out of methods to offer and ended the link (SoftEther then hangs up)
        self.lcp_client_acked = False  # the client acked our request
        self.lcp_server_acked = False  # we acked the client's request
        self.client_lcp_options: list[Option] = []
        self.client_magic = 0
        self.lcp_opened = False
        self.lcp_terminate_requests = 0
        self.lcp_terminate_acks = 0
        self.lcp_echo_replies: list[ControlPacket] = []
        self.protocol_rejects: list[int] = []
        self.code_rejects: list[bytes] = []

        # authentication
        self.auth_method: str | None = None
        self.authenticated = False
        self.auth_failed = False
        self.auth_attempts = 0
        self._hlak = bytes(32)
        self._auth_id = 0x30
        self._eap_type: int | None = None
        self._eap_identity: bytes | None = None
        self._ms_id = 0x50
        self._peer_challenge = b""
        self._nt_response = b""

        # NCPs
        self._ipcp_request_id: int | None = None
        self.ipcp_client_acked = False
        self.ipcp_server_acked = False
        self.ipcp_requests: list[list[Option]] = []
        self._ipv6cp_request_id: int | None = None
        self.ipv6cp_client_acked = False
        self.ipv6cp_server_acked = False
        self.client_interface_id: bytes | None = None

    # -------------------------------------------------------------- driver interface

    def receive(self, data: bytes) -> None:
        """Bytes the client sent."""
        if self.stage == "http":
            self._inbox += data
            end = self._inbox.find(b"\r\n\r\n")
            if end < 0:
                return
            self.http_request = bytes(self._inbox[: end + 4])
            data = bytes(self._inbox[end + 4 :])
            self._inbox.clear()
            self._check_http_request()
            self._send(self.config.http_reply)
            if not self.config.http_reply.startswith(b"HTTP/1.1 200"):
                self.stage = "refused"
                return
            self.stage = "sstp"
            if self.config.silent_after == "http":
                self.silent = True
        if self.stage != "sstp":
            return
        try:
            packets = self._reader.feed(data)
        except MalformedPacket as error:
            self.problems.append(f"bad SSTP framing from the client: {error}")
            self.stage = "broken"
            return
        for packet in packets:
            if packet.control:
                self._receive_control(packet.body)
            else:
                self._receive_frame(packet.body)

    def data_to_send(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        if data:
            self.sent_chunks.append(data)
        return data

    # Injection, for tests that make the server do something out of turn.

    def send_raw(self, data: bytes) -> None:
        self._out.append(data)

    def send_control(self, message_type: int, attributes: tuple[Attribute, ...] = ()) -> None:
        self._out.append(encode_control(message_type, attributes))

    def send_ppp(self, protocol: int, information: bytes) -> None:
        self._out.append(encode_data(encode_frame(protocol, information)))

    def send_lcp(self, code: int, data: bytes = b"", identifier: int | None = None) -> int:
        identifier = self._next_lcp_id() if identifier is None else identifier
        self.send_ppp(PppProtocol.LCP, encode_packet(code, identifier, data))
        return identifier

    def send_ipv4(self, packet: bytes) -> None:
        self.send_ppp(PppProtocol.IPV4, packet)

    # -------------------------------------------------------------- helpers

    def _send(self, data: bytes) -> None:
        if not self.silent:
            self._out.append(data)

    def _send_ppp(self, protocol: int, code: int, identifier: int, data: bytes = b"") -> None:
        self._send(encode_data(encode_frame(protocol, encode_packet(code, identifier, data))))

    def _next_lcp_id(self) -> int:
        self._lcp_id = (self._lcp_id + 1) & 0xFF
        return self._lcp_id

    def _check_http_request(self) -> None:
        request = self.http_request or b""
        lines = request.split(b"\r\n")
        if lines[0] != b"SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1":
            self.problems.append(f"unexpected request line {lines[0]!r}")
        headers = dict(line.split(b": ", 1) for line in lines[1:] if b": " in line)
        if headers.get(b"Content-Length") != b"18446744073709551615":
            self.problems.append("Content-Length is not 2**64-1")
        if b"SSTPCORRELATIONID" not in headers or b"Host" not in headers:
            self.problems.append("Host or SSTPCORRELATIONID header missing")

    # -------------------------------------------------------------- SSTP control

    def _receive_control(self, body: bytes) -> None:
        try:
            message = parse_control(body)
        except MalformedPacket as error:
            self.problems.append(f"malformed control message from the client: {error}")
            return
        self.control_received.append(message.type)
        self.wire_log.append(("control", message.type))
        kind = message.type
        if kind == MessageType.CALL_CONNECT_REQUEST:
            if body != encode_call_connect_request()[4:]:
                self.problems.append("Call Connect Request is not the fixed 14 bytes")
            if self.config.connect_naks > 0:
                self.config.connect_naks -= 1
                info = StatusInfo(AttributeId.ENCAPSULATED_PROTOCOL_ID, AttributeStatus.VALUE_NOT_SUPPORTED, b"\x00\x01")
                self._send(encode_control(MessageType.CALL_CONNECT_NAK, [Attribute(AttributeId.STATUS_INFO, encode_status_info(info))]))
                return
            request = CryptoBindingRequest(self.config.hash_bitmask, self.config.nonce)
            self._send(
                encode_control(MessageType.CALL_CONNECT_ACK, [Attribute(AttributeId.CRYPTO_BINDING_REQ, encode_crypto_binding_request(request))])
            )
            if self.config.silent_after == "connect":
                self.silent = True
                return
            self._send_lcp_request()
        elif kind == MessageType.CALL_CONNECTED:
            self._check_call_connected(encode_control(kind, message.attributes), message.attribute(AttributeId.CRYPTO_BINDING))
            if self.config.silent_after == "connected":
                self.silent = True
        elif kind == MessageType.ECHO_REQUEST:
            if self.config.answer_sstp_echo:
                self._send(encode_control(MessageType.ECHO_RESPONSE))
        elif kind == MessageType.CALL_DISCONNECT:
            self._send(encode_control(MessageType.CALL_DISCONNECT_ACK))
            self.stage = "disconnected"
        elif kind == MessageType.CALL_ABORT:
            self.stage = "aborted"

    def _check_call_connected(self, message: bytes, attribute: Attribute | None) -> None:
        self.call_connected_count += 1
        if not self.authenticated:
            self.problems.append("Call Connected before authentication succeeded")
        if attribute is None or len(attribute.value) != 100 or len(message) != 112:
            self.problems.append("Call Connected without a well-formed crypto binding attribute")
            return
        value = attribute.value
        hash_protocol = value[3]
        if hash_protocol not in (0x01, 0x02) or not hash_protocol & self.config.hash_bitmask:
            self.problems.append(f"Call Connected uses hash {hash_protocol:#04x}, not one offered")
        # The client must pick the strongest hash offered.
        if self.config.hash_bitmask & 0x02 and hash_protocol != 0x02:
            self.problems.append("Call Connected uses SHA-1 although SHA-256 was offered")
        name = "sha256" if hash_protocol == 0x02 else "sha1"
        cert_hash = hashlib.new(name, self.config.certificate).digest().ljust(32, b"\x00")
        self.binding = BindingCheck(
            hash_protocol=hash_protocol,
            nonce_ok=value[4:36] == self.config.nonce,
            cert_hash_ok=value[36:68] == cert_hash,
            mac_ok=value[68:100] == expected_compound_mac(self._hlak, message, hash_protocol),
            hlak=self._hlak,
        )

    # -------------------------------------------------------------- PPP

    def _receive_frame(self, frame: bytes) -> None:
        try:
            protocol, information = parse_frame(frame)
        except MalformedPacket as error:
            self.problems.append(f"bad PPP frame: {error}")
            return
        if frame[:2] != b"\xff\x03":
            self.problems.append("PPP frame without FF 03")
        self.frames_received.append((protocol, information))
        if self.stage in ("aborted", "disconnected"):
            self.problems.append(f"PPP {protocol:#06x} after the call ended")
        if protocol == PppProtocol.IPV4:
            if not (self.binding and self.ipcp_client_acked):
                self.problems.append("IPv4 before the call and IPCP were up")
            is_dhcp = len(information) >= 28 and information[9] == 17 and information[22:24] == b"\x00\x43"
            (self.dhcp_received if is_dhcp else self.ip_received).append(information)
            return
        if protocol == PppProtocol.IPV6:
            is_dhcpv6 = len(information) >= 48 and information[6] == 17 and information[42:44] == b"\x02\x23"  # to port 547
            (self.dhcpv6_received if is_dhcpv6 else self.ip_received).append(information)
            return
        try:
            packet = parse_packet(information)
        except MalformedPacket as error:
            self.problems.append(f"bad {protocol:#06x} packet: {error}")
            return
        self.wire_log.append(("ppp", protocol, packet.code))
        handler = {
            PppProtocol.LCP: self._receive_lcp,
            PppProtocol.PAP: self._receive_pap,
            PppProtocol.CHAP: self._receive_chap,
            PppProtocol.EAP: self._receive_eap,
            PppProtocol.IPCP: self._receive_ipcp,
            PppProtocol.IPV6CP: self._receive_ipv6cp,
        }.get(protocol)
        if handler is None:
            self.problems.append(f"unexpected PPP protocol {protocol:#06x}")
            return
        handler(packet)

    # LCP -------------------------------------------------------------------------

    def _offered(self) -> str | None:
        methods = self.config.methods
        return methods[self._method_index] if self._method_index < len(methods) else None

    def _send_lcp_request(self) -> None:
        options = list(self.config.extra_lcp_options)
        method = self._offered()
        if method is not None:
            options.append(Option(LCP_AUTH, AUTH_OPTION_DATA[method]))
        self._lcp_request_id = self._next_lcp_id()
        self._send_ppp(PppProtocol.LCP, Code.CONFIGURE_REQUEST, self._lcp_request_id, encode_options(options))

    def _receive_lcp(self, packet: ControlPacket) -> None:
        code = packet.code
        if code == Code.CONFIGURE_REQUEST:
            options = parse_options(packet.data)
            rejects = [o for o in options if o.type == LCP_MAGIC and self.config.reject_magic]
            rejects += [o for o in options if o.type not in (LCP_MRU, LCP_MAGIC)]
            if rejects:
                self._send_ppp(PppProtocol.LCP, Code.CONFIGURE_REJECT, packet.identifier, encode_options(rejects))
                return
            for option in options:
                if option.type == LCP_MRU and not 100 <= struct.unpack("!H", option.data)[0] <= 1500:
                    self._send_ppp(PppProtocol.LCP, Code.CONFIGURE_NAK, packet.identifier, encode_options([Option(LCP_MRU, struct.pack("!H", 1500))]))
                    return
            self.client_lcp_options = options
            for option in options:
                if option.type == LCP_MAGIC:
                    self.client_magic = struct.unpack("!I", option.data)[0]
            self._send_ppp(PppProtocol.LCP, Code.CONFIGURE_ACK, packet.identifier, packet.data)
            self.lcp_server_acked = True
            self._maybe_lcp_opened()
        elif code == Code.CONFIGURE_ACK:
            if packet.identifier != self._lcp_request_id:
                self.problems.append("LCP Configure-Ack with a stale identifier")
                return
            self.lcp_client_acked = True
            self._maybe_lcp_opened()
        elif code in (Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT):
            if packet.identifier != self._lcp_request_id:
                return
            offered = self._offered()
            if offered is not None:
                self.lcp_refusals.append(offered)
            self._method_index += 1
            if self._offered() is None:
                # SoftEther: LP_PAP_MSCHAPV2_REJECTED ends the link.
                self._send_ppp(PppProtocol.LCP, Code.TERMINATE_REQUEST, self._next_lcp_id())
                self.gave_up = True
                return
            self._send_lcp_request()
        elif code == Code.TERMINATE_REQUEST:
            self.lcp_terminate_requests += 1
            self._send_ppp(PppProtocol.LCP, Code.TERMINATE_ACK, packet.identifier)
            self.lcp_opened = False
        elif code == Code.TERMINATE_ACK:
            self.lcp_terminate_acks += 1
        elif code == Code.ECHO_REQUEST:
            self._send_ppp(PppProtocol.LCP, Code.ECHO_REPLY, packet.identifier, bytes(4) + packet.data[4:])
        elif code == Code.ECHO_REPLY:
            self.lcp_echo_replies.append(packet)
        elif code == Code.PROTOCOL_REJECT:
            self.protocol_rejects.append(struct.unpack_from("!H", packet.data)[0])
        elif code == Code.CODE_REJECT:
            self.code_rejects.append(packet.data)
        else:
            self.problems.append(f"unexpected LCP code {code}")

    def _maybe_lcp_opened(self) -> None:
        if self.lcp_opened or not (self.lcp_client_acked and self.lcp_server_acked):
            return
        self.lcp_opened = True
        self.auth_method = self._offered()
        if self.auth_method == CHAP_MD5 or self.auth_method == MSCHAPV2:
            self._send_chap_challenge()
        elif self.auth_method == EAP:
            self._eap_type = None
            self._send_eap(1, EAP_IDENTITY, b"")
        elif self.auth_method is None:
            self._auth_succeeded(bytes(32))
        # PAP: the client speaks first.

    def _auth_succeeded(self, hlak: bytes) -> None:
        self.authenticated = True
        self._hlak = hlak
        if self.config.ipcp_request_with_success:
            self._send_ipcp_request()

    def _auth_failed(self) -> None:
        self.auth_failed = True
        if self.config.terminate_after_auth_failure:
            self._send_ppp(PppProtocol.LCP, Code.TERMINATE_REQUEST, self._next_lcp_id())

    # PAP -------------------------------------------------------------------------

    def _receive_pap(self, packet: ControlPacket) -> None:
        if self.auth_method != PAP or packet.code != 1:
            self.problems.append("unexpected PAP packet")
            return
        self.auth_attempts += 1
        data = packet.data
        peer_length = data[0]
        peer_id = data[1 : 1 + peer_length]
        password = data[2 + peer_length : 2 + peer_length + data[1 + peer_length]]
        if peer_id == self.config.username.encode() and password == self.config.password.encode():
            self._send_ppp(PppProtocol.PAP, 2, packet.identifier, b"\x00")
            self._auth_succeeded(bytes(32))
        else:
            message = b"Authentication failure"
            self._send_ppp(PppProtocol.PAP, 3, packet.identifier, bytes((len(message),)) + message)
            self._auth_failed()

    # CHAP-MD5 and MS-CHAPv2 -------------------------------------------------------

    def _send_chap_challenge(self) -> None:
        self._auth_id = (self._auth_id + 1) & 0xFF
        challenge = self.config.challenge
        self._send_ppp(PppProtocol.CHAP, 1, self._auth_id, bytes((len(challenge),)) + challenge + self.config.server_name)

    def _receive_chap(self, packet: ControlPacket) -> None:
        if self.auth_method not in (CHAP_MD5, MSCHAPV2) or packet.code != 2:
            self.problems.append(f"unexpected CHAP packet, code {packet.code}")
            return
        if packet.identifier != self._auth_id:
            self.problems.append("CHAP Response identifier differs from the Challenge's")
        self.auth_attempts += 1
        size = packet.data[0]
        value, name = packet.data[1 : 1 + size], packet.data[1 + size :]
        if name != self.config.username.encode():
            self.problems.append(f"CHAP Response names {name!r}")
        if self.auth_method == CHAP_MD5:
            expected = hashlib.md5(bytes((packet.identifier,)) + self.config.password.encode() + self.config.challenge).digest()
            if size == 16 and value == expected:
                self._send_ppp(PppProtocol.CHAP, 3, packet.identifier, b"Welcome")
                self._auth_succeeded(bytes(32))
            else:
                self._send_ppp(PppProtocol.CHAP, 4, packet.identifier, b"Wrong secret")
                self._auth_failed()
            return
        verdict = self._check_mschapv2(value, size)
        if verdict is None and self.config.mschapv2_retries > 0:
            # RFC 2759 6: R=1 and a new challenge; the retried Response comes with Identifier + 1.
            self.config.mschapv2_retries -= 1
            self.config.challenge = hashlib.md5(self.config.challenge).digest()
            message = b"E=691 R=1 C=" + self.config.challenge.hex().upper().encode() + b" V=3 M=Wrong password, 2 tries left"
            self._send_ppp(PppProtocol.CHAP, 4, packet.identifier, message)
            self._auth_id = (packet.identifier + 1) & 0xFF
            return
        if verdict is None:
            self._send_ppp(PppProtocol.CHAP, 4, packet.identifier, self._mschapv2_failure())
            self._auth_failed()
        else:
            self._send_ppp(PppProtocol.CHAP, 3, packet.identifier, verdict)
            self._auth_succeeded(self._mschapv2_hlak())

    def _check_mschapv2(self, value: bytes, size: int) -> bytes | None:
        """The Success message for a valid Response (49-byte value), else None."""
        if size != 49 or len(value) != 49 or value[16:24] != bytes(8) or value[48] != 0:
            self.problems.append("malformed MS-CHAPv2 Response value")
            return None
        self._peer_challenge, self._nt_response = value[:16], value[24:48]
        expected = mschapv2.nt_response(self.config.challenge, self._peer_challenge, self.config.username, self.config.password)
        if self._nt_response != expected:
            return None
        authenticator = mschapv2.authenticator_response(
            self.config.password, self._nt_response, self._peer_challenge, self.config.challenge, self.config.username
        )
        if self.config.bad_authenticator:
            authenticator = b"S=" + bytes(20).hex().upper().encode()
        return authenticator + b" M=Welcome"

    def _mschapv2_failure(self) -> bytes:
        return b"E=691 R=0 C=" + bytes(16).hex().upper().encode() + b" V=3 M=Authentication failure"

    def _mschapv2_hlak(self) -> bytes:
        """The server's HLAK: its MasterReceiveKey || MasterSendKey (RFC 3079 from the server side)."""
        key = mschapv2.master_key(mschapv2.password_hash_hash(self.config.password), self._nt_response)
        server_receive = mschapv2.asymmetric_start_key(key, mschapv2.MAGIC_CLIENT_SEND)
        server_send = mschapv2.asymmetric_start_key(key, mschapv2.MAGIC_CLIENT_RECEIVE)
        return server_receive + server_send

    # EAP ---------------------------------------------------------------------------

    def _send_eap(self, code: int, eap_type: int | None, data: bytes) -> None:
        self._auth_id = (self._auth_id + 1) & 0xFF
        body = (bytes((eap_type,)) if eap_type is not None else b"") + data
        self._send_ppp(PppProtocol.EAP, code, self._auth_id, body)

    def _start_eap_method(self, eap_type: int) -> None:
        self._eap_type = eap_type
        challenge = self.config.challenge
        if eap_type == EAP_MD5:
            self._send_eap(1, EAP_MD5, bytes((len(challenge),)) + challenge + self.config.server_name)
        elif eap_type == EAP_MSCHAPV2:
            self._ms_id = (self._ms_id + 1) & 0xFF
            self._send_eap(1, EAP_MSCHAPV2, self._ms_header(1, bytes((len(challenge),)) + challenge + self.config.server_name))
        else:
            self._send_eap(1, eap_type, b"\x20")  # e.g. EAP-TLS Start

    def _ms_header(self, opcode: int, body: bytes) -> bytes:
        return bytes((opcode, self._ms_id)) + struct.pack("!H", 4 + len(body)) + body

    def _receive_eap(self, packet: ControlPacket) -> None:
        if self.auth_method != EAP or packet.code != 2 or not packet.data:
            self.problems.append(f"unexpected EAP packet, code {packet.code}")
            return
        if packet.identifier != self._auth_id:
            self.problems.append("EAP Response identifier differs from the Request's")
            return
        eap_type, data = packet.data[0], packet.data[1:]
        if eap_type == EAP_IDENTITY:
            self._eap_identity = data
            if data != self.config.username.encode():
                self.problems.append(f"EAP identity {data!r}")
            self._start_eap_method(self.config.eap_types[0])
        elif eap_type == EAP_NAK:
            wanted = [t for t in self.config.eap_types if t in data]
            if not wanted:
                self._send_eap(4, None, b"")
                self._auth_failed()
                return
            self._start_eap_method(wanted[0])
        elif eap_type == EAP_MD5 and self._eap_type == EAP_MD5:
            self.auth_attempts += 1
            expected = hashlib.md5(bytes((packet.identifier,)) + self.config.password.encode() + self.config.challenge).digest()
            if data[:1] == b"\x10" and data[1:17] == expected:
                self._send_eap(3, None, b"")
                self._auth_succeeded(bytes(32))
            else:
                self._send_eap(4, None, b"")
                self._auth_failed()
        elif eap_type == EAP_MSCHAPV2 and self._eap_type == EAP_MSCHAPV2:
            self._receive_eap_mschapv2(data)
        else:
            self.problems.append(f"EAP Response of type {eap_type} while running {self._eap_type}")

    def _receive_eap_mschapv2(self, data: bytes) -> None:
        opcode = data[0] if data else 0
        if opcode == 2:  # Response
            self.auth_attempts += 1
            if data[1] != self._ms_id or struct.unpack_from("!H", data, 2)[0] != len(data):
                self.problems.append("EAP-MSCHAPv2 Response with a wrong MS-CHAPv2-ID or MS-Length")
            size = data[4]
            value, name = data[5 : 5 + size], data[5 + size :]
            if name != self.config.username.encode():
                self.problems.append(f"EAP-MSCHAPv2 Response names {name!r}")
            verdict = self._check_mschapv2(value, size)
            if verdict is None:
                self._send_eap(1, EAP_MSCHAPV2, self._ms_header(4, self._mschapv2_failure()))
                self._eap_type = -4  # waiting for the client's Failure acknowledgement
            else:
                self._send_eap(1, EAP_MSCHAPV2, self._ms_header(3, verdict))
        elif opcode == 3 and data == b"\x03":  # the client accepted our Success
            self._send_eap(3, None, b"")
            self._auth_succeeded(self._mschapv2_hlak())
        else:
            self.problems.append(f"unexpected EAP-MSCHAPv2 data {data.hex()}")

    # IPCP / IPV6CP --------------------------------------------------------------------

    def _send_ipcp_request(self) -> None:
        if self._ipcp_request_id is None:
            self._ipcp_request_id = 1
            self._send_ppp(PppProtocol.IPCP, Code.CONFIGURE_REQUEST, 1, encode_options([Option(IPCP_ADDRESS, self.config.peer_address.packed)]))

    def _receive_ipcp(self, packet: ControlPacket) -> None:
        if not self.authenticated:
            self.problems.append("IPCP before authentication")
            return
        if packet.code == Code.CONFIGURE_REQUEST:
            self._send_ipcp_request()
            options = parse_options(packet.data)
            self.ipcp_requests.append(options)
            assigned = {IPCP_ADDRESS: self.config.address}
            for kind, server in zip((IPCP_DNS1, IPCP_DNS2), self.config.dns, strict=False):  # none, one or two servers
                assigned[kind] = server
            rejects = [o for o in options if o.type not in assigned]
            if rejects:
                self._send_ppp(PppProtocol.IPCP, Code.CONFIGURE_REJECT, packet.identifier, encode_options(rejects))
                return
            naks = [Option(o.type, assigned[o.type].packed) for o in options if o.data != assigned[o.type].packed]
            if naks:
                self._send_ppp(PppProtocol.IPCP, Code.CONFIGURE_NAK, packet.identifier, encode_options(naks))
                return
            self._send_ppp(PppProtocol.IPCP, Code.CONFIGURE_ACK, packet.identifier, packet.data)
            self.ipcp_server_acked = True
        elif packet.code == Code.CONFIGURE_ACK and packet.identifier == self._ipcp_request_id:
            self.ipcp_client_acked = True
        else:
            self.problems.append(f"unexpected IPCP code {packet.code}")
            return
        if self.config.ipv6 and self._ipv6cp_request_id is None and self.ipcp_client_acked and self.ipcp_server_acked:
            self._send_ipv6cp_request()

    def _send_ipv6cp_request(self) -> None:
        self._ipv6cp_request_id = 1
        self._send_ppp(PppProtocol.IPV6CP, Code.CONFIGURE_REQUEST, 1, encode_options([Option(IPV6CP_IDENTIFIER, self.config.server_interface_id)]))

    def send_ipv6cp_request(self) -> None:
        """An unprompted IPV6CP Configure-Request (MikroTik does this)."""
        self.send_ppp(
            PppProtocol.IPV6CP, encode_packet(Code.CONFIGURE_REQUEST, 1, encode_options([Option(IPV6CP_IDENTIFIER, self.config.server_interface_id)]))
        )

    def _receive_ipv6cp(self, packet: ControlPacket) -> None:
        if not self.config.ipv6:
            self.problems.append("IPV6CP although the server does not offer IPv6")
            return
        if not (self.ipcp_client_acked and self.ipcp_server_acked):
            return  # SoftEther is lazy: nothing for IPv6 until IPv4 is up
        if packet.code == Code.CONFIGURE_REQUEST:
            options = parse_options(packet.data)
            identifier = next((o.data for o in options if o.type == IPV6CP_IDENTIFIER), None)
            if identifier is None or not any(identifier) or identifier == self.config.server_interface_id:
                self._send_ppp(
                    PppProtocol.IPV6CP,
                    Code.CONFIGURE_NAK,
                    packet.identifier,
                    encode_options([Option(IPV6CP_IDENTIFIER, bytes.fromhex("0000000000000042"))]),
                )
                return
            self.client_interface_id = identifier
            self._send_ppp(PppProtocol.IPV6CP, Code.CONFIGURE_ACK, packet.identifier, packet.data)
            self.ipv6cp_server_acked = True
        elif packet.code == Code.CONFIGURE_ACK and packet.identifier == self._ipv6cp_request_id:
            self.ipv6cp_client_acked = True
        else:
            self.problems.append(f"unexpected IPV6CP code {packet.code}")


# ------------------------------------------------------------------ pumping the two together


def seeded_rng(seed: int) -> Callable[[int], bytes]:
    """Deterministic randomness for the engine, so a session can be replayed byte for byte."""
    generator = random.Random(seed)
    return generator.randbytes


# What the engine was given, in order: ("data", t, bytes), ("ip", t, packets), ("disconnect", t),
# ("lost", t) and a final ("end", t). Replaying it into a fresh engine with the same settings and
# seed repeats the session exactly, because the engine is deterministic.
Step = tuple


class Conversation:
    """An engine and a ScriptedServer joined by an in-memory byte pipe and a fake clock."""

    def __init__(
        self, settings: EngineSettings, server: ScriptedServer, seed: int = 1, now: float = 1000.0, certificate: bytes | None = None
    ) -> None:
        self.settings = settings
        self.seed = seed
        self.start_time = now
        self.engine = Engine(settings, rng=seeded_rng(seed))
        self.server = server
        self.now = now
        self.events: list[Event] = []
        self.delivered: list[bytes] = []
        self.transcript: list[Step] = []
        self.certificate = server.config.certificate if certificate is None else certificate
        self.engine.set_peer_certificate(self.certificate)

    def start(self) -> Conversation:
        self.engine.connect(self.now)
        self.pump()
        return self

    # Engine inputs that are recorded in the transcript.

    def send_ip(self, packets: list[bytes]) -> None:
        self.transcript.append(("ip", self.now, list(packets)))
        self.engine.receive_ip_packets(packets, self.now)
        self.pump()

    def disconnect(self) -> None:
        self.transcript.append(("disconnect", self.now))
        self.engine.disconnect(self.now)
        self.pump()

    def lose_connection(self) -> None:
        self.transcript.append(("lost", self.now))
        self.engine.connection_lost(self.now)
        self._collect()

    def finished_transcript(self) -> list[Step]:
        return [*self.transcript, ("end", self.now)]

    def pump(self, limit: int = 200) -> None:
        """Move bytes both ways until neither side has anything to say."""
        for _ in range(limit):
            out = self.engine.data_to_send()
            if out:
                self.server.receive(out)
            back = self.server.data_to_send()
            if back:
                self.transcript.append(("data", self.now, back))
                self.engine.receive_stream_data(back, self.now)
            self._collect()
            if not out and not back:
                return
        raise AssertionError("the engine and the server keep talking")

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass, firing every engine deadline that falls inside, in order."""
        target = self.now + seconds
        while True:
            deadline = self.engine.get_timer()
            if deadline is None or deadline > target:
                break
            assert deadline >= self.now - 1e-9, f"deadline {deadline} lies in the past (now {self.now})"
            self.now = deadline
            self.engine.handle_timer(self.now)
            self.pump()
        self.now = target
        self._collect()

    def _collect(self) -> None:
        while (event := self.engine.next_event()) is not None:
            self.events.append(event)
        self.delivered += self.engine.packets_to_deliver()

    # What tests ask about.

    def of_type(self, kind: type) -> list:
        return [event for event in self.events if isinstance(event, kind)]

    @property
    def disconnected(self) -> list[Disconnected]:
        return self.of_type(Disconnected)

    @property
    def plans(self) -> list:
        return [event.plan for event in self.of_type(LinkConfigured)]


# ------------------------------------------------------------------ replaying a transcript


@dataclass
class Replay:
    """What a fresh engine did with a (possibly mutated) transcript."""

    events: list[Event]
    sent: bytes
    delivered: list[bytes]
    largest_reader_buffer: int
    timer_faults: list[str]  # deadlines that handle_timer() left in the past

    @property
    def outcome(self) -> str:
        """'failure', 'clean' (Disconnected(None)) or 'running'."""
        ends = [event for event in self.events if isinstance(event, Disconnected)]
        if not ends:
            return "running"
        return "clean" if ends[-1].failure is None else "failure"


def replay(
    transcript: list[Step],
    settings: EngineSettings,
    seed: int,
    certificate: bytes,
    split: Callable[[bytes], list[bytes]] = lambda data: [data],
    start_time: float = 1000.0,
) -> Replay:
    """Feed a transcript to a fresh engine, cutting each data step with `split`, and firing every
    deadline that falls before the next step, as the runner would."""
    engine = Engine(settings, rng=seeded_rng(seed))
    engine.set_peer_certificate(certificate)
    engine.connect(start_time)
    sent = [engine.data_to_send()]
    events: list[Event] = []
    delivered: list[bytes] = []
    largest = 0
    faults: list[str] = []

    def run_timers(until: float) -> None:
        for _ in range(10_000):
            deadline = engine.get_timer()
            if deadline is None or deadline > until:
                return
            engine.handle_timer(deadline)
            after = engine.get_timer()
            if after is not None and after <= deadline:
                faults.append(f"after handle_timer({deadline}) the next deadline is {after}")
                return
        faults.append("more than 10000 deadlines in one step")

    for step in transcript:
        kind, when = step[0], step[1]
        run_timers(when)
        if kind == "data":
            for piece in split(step[2]):
                engine.receive_stream_data(piece, when)
                largest = max(largest, engine._reader.buffered)
        elif kind == "ip":
            engine.receive_ip_packets(step[2], when)
        elif kind == "disconnect":
            engine.disconnect(when)
        elif kind == "lost":
            engine.connection_lost(when)
        sent.append(engine.data_to_send())
        delivered += engine.packets_to_deliver()
        while (event := engine.next_event()) is not None:
            events.append(event)
    return Replay(events, b"".join(sent), delivered, largest, faults)


_H11_DETAIL = re.compile(r"sent a malformed HTTP reply to the SSTP request \(.*\): ")
_BLANKED = "sent a malformed HTTP reply to the SSTP request (...): "


def comparable_events(events: list[Event]) -> list[Event]:
    """Events with h11's diagnostic for a malformed reply blanked: its wording depends on how the
    reply was cut into reads (e.g. "no response line received" vs "illegal request line")."""
    result = []
    for event in events:
        if isinstance(event, LogRecord):
            event = LogRecord(event.level, _H11_DETAIL.sub(_BLANKED, event.message))
        elif isinstance(event, Disconnected) and event.failure is not None and event.failure.where == "http":
            failure = event.failure
            event = Disconnected(Failure(failure.where, _H11_DETAIL.sub(_BLANKED, failure.reason), failure.kind))
        result.append(event)
    return result


# ------------------------------------------------------------------ recorded sessions (fuzzing corpus)


@dataclass(frozen=True)
class Recording:
    name: str
    transcript: list[Step]
    settings: EngineSettings
    seed: int
    certificate: bytes

    def replay(self, split: Callable[[bytes], list[bytes]] = lambda data: [data], transcript: list[Step] | None = None) -> Replay:
        return replay(self.transcript if transcript is None else transcript, self.settings, self.seed, self.certificate, split)


def engine_settings(
    allow_pap: bool = False, allow_chap_md5: bool = False, ipv6: bool = False, password: str = "correct horse battery"
) -> EngineSettings:
    return EngineSettings(
        Credentials("alice", password), "vpn.example.com", AuthPolicy(allow_pap=allow_pap, allow_chap_md5=allow_chap_md5), ipv6=ipv6
    )


_PING = bytes.fromhex("4500001C 00010000 4001 0000 C6121E0A C6121E01 0800F7FF 00000000")


def _busy_session(conversation: Conversation) -> None:
    """After connecting: IP both ways, both kinds of echo, then the user disconnects."""
    server = conversation.server
    conversation.send_ip([_PING])
    server.send_ipv4(_PING)
    server.send_control(MessageType.ECHO_REQUEST)
    server.send_lcp(Code.ECHO_REQUEST, bytes(4) + SOFTETHER_ECHO_DATA)
    conversation.pump()
    conversation.advance(25.0)  # an echo of ours, answered
    conversation.disconnect()
    conversation.advance(10.0)


def _server_ends(conversation: Conversation) -> None:
    server = conversation.server
    server.send_ipv6cp_request()
    server.send_ppp(PppProtocol.CCP, encode_packet(1, 1, b""))
    server.send_ipv4(_PING)
    conversation.pump()
    server.send_control(MessageType.CALL_DISCONNECT)
    conversation.pump()


def _silent_after_connect(conversation: Conversation) -> None:
    conversation.server.silent = True
    conversation.advance(45.0)


SCENARIOS: dict[str, tuple[dict, dict, Callable[[Conversation], None] | None]] = {
    # name: (engine settings, server config, what happens once connected)
    "mschapv2-sha256": ({}, dict(methods=(MSCHAPV2,)), _busy_session),
    "eap-mschapv2-sha1": ({}, dict(methods=(EAP, EAP), hash_bitmask=0x01), _busy_session),
    "softether-walk-ipv6": (dict(ipv6=True), dict(methods=(EAP, MSCHAPV2, PAP), eap_types=(EAP_TLS,), ipv6=True), _busy_session),
    "pap-two-dns": (
        dict(allow_pap=True),
        dict(methods=(PAP, PAP), dns=(IPv4Address("10.0.0.1"), IPv4Address("10.0.0.2")), hash_bitmask=0x03),
        _server_ends,
    ),
    "chap-md5": (dict(allow_chap_md5=True), dict(methods=(CHAP_MD5, CHAP_MD5), reject_magic=False), _busy_session),
    "eap-md5": (dict(allow_chap_md5=True), dict(methods=(EAP, EAP), eap_types=(EAP_MD5,), ipcp_request_with_success=True), _silent_after_connect),
    "wrong-password": (dict(password="wrong"), dict(methods=(MSCHAPV2,)), None),
    "impostor": ({}, dict(methods=(EAP, EAP), bad_authenticator=True), None),
    "connect-naks": ({}, dict(connect_naks=2, extra_lcp_options=(Option(LCP_MRU, b"\x05\x00"),)), _busy_session),
    "pap-refused": ({}, dict(methods=(PAP,)), lambda conversation: _server_ends(conversation)),
}


def record(name: str, seed: int = 1) -> Recording:
    engine_options, server_options, after = SCENARIOS[name]
    conversation = Conversation(engine_settings(**engine_options), ScriptedServer(ServerConfig(**server_options)), seed=seed).start()
    if after is not None:
        after(conversation)
    conversation.advance(5.0)
    return Recording(name, conversation.finished_transcript(), conversation.settings, seed, conversation.certificate)
