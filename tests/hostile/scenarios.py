"""The misbehaviours, one named `Scenario` each, built from our own codecs.

Actions run in the server's connection thread (see hostile_server.Connection). "Replace" means the
scripted server's normal answer is dropped and the hostile bytes go out instead, after which the
server says nothing more of its own.
"""

from __future__ import annotations

import os
import random
import struct
from ipaddress import IPv4Address

from sstpvpn.client.core.ppp_codec import Code, PppProtocol, encode_frame, encode_packet
from sstpvpn.client.core.sstp_codec import (
    Attribute,
    AttributeId,
    AttributeStatus,
    CryptoBindingRequest,
    MessageType,
    StatusInfo,
    encode_control,
    encode_crypto_binding_request,
    encode_data,
    encode_status_info,
)
from tests.hostile.hostile_server import ORDERED, Connection, Scenario
from tests.unit.scripted_server import ServerConfig

UNKNOWN_MESSAGE_TYPE = 0x0042
FLOOD_ECHOES = 10_000
NONCE = ServerConfig().nonce  # the scripted server checks the crypto binding against its own


def _replace_with(data: bytes):
    def act(connection: Connection) -> None:
        connection.go_silent()
        connection.send(data)

    return act


def _call_abort(status: int | None = None) -> bytes:
    attributes = []
    if status is not None:
        info = StatusInfo(AttributeId.ENCAPSULATED_PROTOCOL_ID, status, b"")
        attributes.append(Attribute(AttributeId.STATUS_INFO, encode_status_info(info)))
    return encode_control(MessageType.CALL_ABORT, attributes)


def _connect_ack(extra: list[Attribute] = ()) -> bytes:
    request = Attribute(AttributeId.CRYPTO_BINDING_REQ, encode_crypto_binding_request(CryptoBindingRequest(0x02, NONCE)))
    return encode_control(MessageType.CALL_CONNECT_ACK, [request, *extra])


def _attribute_length_past_the_end() -> bytes:
    """A Call Connect Ack whose crypto binding attribute claims 4000 bytes in a 48-byte packet."""
    message = bytearray(_connect_ack())
    struct.pack_into("!H", message, 8 + 2, 4000)  # SSTP header 4, type and count 4, then the attribute
    return bytes(message)


def _attribute_flood(connection: Connection) -> None:
    """A valid Call Connect Ack drowned in unknown attributes, up to the largest SSTP packet."""
    connection.discard_answer()
    junk = [Attribute(0x7F, bytes(8))] * 337
    connection.send(_connect_ack(junk))
    connection.server._send_lcp_request()  # the LCP request dropped with the normal answer


def _oversized_ip_packet(connection: Connection) -> None:
    """The largest data packet SSTP can carry: an IPv4 packet far beyond the link MTU, then the
    server ends the session, which is the sentence the client must end with."""
    size = 4095 - 4 - 4
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, size, 1, 0, 64, 17, 0, bytes([198, 18, 30, 1]), bytes([198, 18, 30, 10]))
    connection.send(encode_data(encode_frame(PppProtocol.IPV4, header + bytes(size - len(header)))))
    connection.send(encode_control(MessageType.CALL_DISCONNECT))


def _endless_http_headers(connection: Connection) -> None:
    connection.go_silent()
    connection.send(b"HTTP/1.1 200 OK\r\n" + (b"X-Filler: " + b"a" * 60 + b"\r\n") * 2000)  # 140 kB, no blank line


def _garbage(seed: int, size: int, first: int) -> bytes:
    data = bytearray(random.Random(seed).randbytes(size))
    data[0] = first  # not "H" of HTTP, not 0x10 of SSTP 1.0: unmistakably not the protocol
    return bytes(data)


def _garbage_after_http(connection: Connection) -> None:
    connection.server.silent = True  # the HTTP reply already queued still goes out
    connection.send(_garbage(8, 512, 0x77))


def _stall(connection: Connection) -> None:
    connection.server.silent = True  # what is queued goes out; nothing after


def _tls_garbage(connection: Connection) -> None:
    """Bytes written on the TCP socket under TLS: the client's next TLS record is corrupt."""
    connection.flush()
    connection.server.silent = True
    os.write(connection.tls.fileno(), _garbage(9, 300, 0x17))


def _lcp_renegotiation(connection: Connection) -> None:
    server = connection.server
    server._lcp_request_id = server.send_lcp(Code.CONFIGURE_REQUEST, b"")  # so the client's Ack is not "stale"


def _ipcp_terminate(connection: Connection) -> None:
    connection.server.send_ppp(PppProtocol.IPCP, encode_packet(Code.TERMINATE_REQUEST, 0x42, b""))


def _echo_flood(connection: Connection) -> None:
    server = connection.server
    for identifier in range(FLOOD_ECHOES):
        server.send_control(MessageType.ECHO_REQUEST)
        server.send_lcp(Code.ECHO_REQUEST, bytes(4) + b"flood", identifier=identifier & 0xFF)
    server.send_control(MessageType.CALL_DISCONNECT)


SCENARIOS = [
    Scenario("correct"),
    # wrong lengths, unknown types, oversized packets, attribute floods
    Scenario("bad-packet-length", "connect", _replace_with(b"\x10\x01\x00\x02" + bytes(12))),
    Scenario("bad-attribute-length", "connect", _replace_with(_attribute_length_past_the_end())),
    Scenario("unknown-message-type", "connect", _replace_with(encode_control(UNKNOWN_MESSAGE_TYPE))),
    Scenario("unknown-message-connected", ORDERED, lambda c: c.send(encode_control(UNKNOWN_MESSAGE_TYPE))),
    Scenario("oversized-ip-packet", ORDERED, _oversized_ip_packet),
    Scenario("endless-http-headers", "tls", _endless_http_headers),
    Scenario("attribute-flood", "connect", _attribute_flood),
    # endless Configure-Nak
    Scenario("lcp-nak-loop", nak_loop="lcp"),
    Scenario("ipcp-nak-loop", nak_loop="ipcp"),
    # stalls
    Scenario("stall-after-tls", "tls", _stall),
    Scenario("stall-after-http", "http", _stall),
    Scenario("stall-in-lcp", "connect", _stall),
    Scenario("stall-in-ipcp", "call-connected", _stall),
    # garbage
    Scenario("garbage-after-tls", "tls", _replace_with(_garbage(7, 700, 0x00))),
    Scenario("garbage-after-http", "http", _garbage_after_http),
    # authentication and call refusal
    Scenario("wrong-authenticator", config=dict(bad_authenticator=True)),
    Scenario("call-connect-nak", config=dict(connect_naks=99)),
    Scenario("no-authentication", config=dict(methods=())),  # asks for no authentication at all
    # MS-CHAPv2 Failure with R=1: one more password, from the next line of standard input
    Scenario("password-retry", config=dict(mschapv2_retries=1)),
    Scenario("password-retry-declined", config=dict(mschapv2_retries=1)),
    # Call Abort at each stage
    Scenario("abort-at-connect", "connect", _replace_with(_call_abort())),
    Scenario("abort-in-lcp", "lcp", _replace_with(_call_abort())),
    Scenario("abort-in-auth", "auth", _replace_with(_call_abort(AttributeStatus.RETRY_COUNT_EXCEEDED))),
    Scenario("abort-in-ipcp", "call-connected", _replace_with(_call_abort())),
    Scenario("abort-connected", ORDERED, lambda c: c.send(_call_abort())),
    # the connection dropped at each stage
    Scenario("drop-after-tls", "tls", lambda c: c.close()),
    Scenario("drop-after-http", "http", lambda c: c.close()),
    Scenario("drop-in-auth", "auth", lambda c: (c.discard_answer(), c.close())),
    Scenario("drop-connected", ORDERED, lambda c: c.close()),
    Scenario("reset-connected", ORDERED, lambda c: c.close(reset=True)),
    # corrupt TLS records
    Scenario("tls-garbage-after-handshake", "tls", _tls_garbage),
    Scenario("tls-garbage-connected", ORDERED, _tls_garbage),
    # PPP pulled from under a running session
    Scenario("lcp-renegotiation-connected", ORDERED, _lcp_renegotiation),
    Scenario("ipcp-terminate-connected", ORDERED, _ipcp_terminate),
    # addresses no server should hand out
    Scenario("ipcp-loopback-address", config=dict(address=IPv4Address("127.0.0.5"))),
    Scenario("ipcp-multicast-address", config=dict(address=IPv4Address("224.0.0.9"))),
    Scenario("ipcp-server-address", config=dict(address=IPv4Address("198.18.40.1"))),
    Scenario("ipcp-loopback-dns", config=dict(dns=(IPv4Address("127.0.0.1"), IPv4Address("0.0.0.1")))),
    # floods once connected
    Scenario("echo-flood", ORDERED, _echo_flood),
    # a correct server behind the wrong certificate (a man in the middle)
    Scenario("mitm-other-ca", certificate="other-ca"),
    Scenario("mitm-wrong-name", certificate="wrong-name"),
]
