"""Wire: the sans-IO engine fed server packets written by hand, e.g. rebuilt from a server's
debug log, with the client's answers parsed back into packets for assertions.

Unlike the ScriptedServer, nothing here plays a server: each test says exactly which packet
arrives and checks exactly what the client sends back.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sstpvpn.client.core import mschapv2
from sstpvpn.client.core.auth import AuthPolicy
from sstpvpn.client.core.engine import Engine, EngineSettings
from sstpvpn.client.core.events import Credentials, Disconnected, Event
from sstpvpn.client.core.ppp_codec import (
    ControlPacket,
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
    CryptoBindingRequest,
    MessageType,
    PacketReader,
    encode_control,
    encode_crypto_binding_request,
    encode_data,
    parse_control,
)
from sstpvpn.client.core.types import Failure
from tests.unit.scripted_server import SOFTETHER_HTTP_REPLY, scripted_certificate, seeded_rng

USER = "alice"
PASSWORD = "correct horse battery"
NONCE = bytes(range(0x40, 0x60))
PPP_PROTOCOLS = {PppProtocol.LCP, PppProtocol.IPCP, PppProtocol.IPV6CP, PppProtocol.PAP, PppProtocol.CHAP, PppProtocol.EAP, PppProtocol.CCP}


@dataclass(frozen=True)
class Sent:
    """One packet the client sent: a control message type, or a PPP protocol with its packet."""

    protocol: int | str  # "control" or a PPP protocol number
    packet: ControlPacket | None = None
    message_type: int | None = None
    information: bytes = b""

    @property
    def options(self) -> list[Option]:
        assert self.packet is not None
        return parse_options(self.packet.data)


def settings(password: str = PASSWORD, username: str = USER, **auth: bool) -> EngineSettings:
    return EngineSettings(Credentials(username, password), "vpn.example.com", AuthPolicy(**auth))


class Wire:
    def __init__(self, engine_settings: EngineSettings | None = None, hash_bitmask: int = 0x02, seed: int = 5) -> None:
        self.settings = engine_settings or settings()
        self.engine = Engine(self.settings, rng=seeded_rng(seed))
        self.now = 1000.0
        self.events: list[Event] = []
        self._reader = PacketReader()
        self.engine.set_peer_certificate(scripted_certificate())
        self.engine.connect(self.now)
        self.engine.data_to_send()  # the HTTP request
        self.feed(SOFTETHER_HTTP_REPLY)  # -> Call Connect Request
        request = CryptoBindingRequest(hash_bitmask, NONCE)
        sent = self.control(MessageType.CALL_CONNECT_ACK, (Attribute(AttributeId.CRYPTO_BINDING_REQ, encode_crypto_binding_request(request)),))
        requests = [s for s in sent if s.protocol == PppProtocol.LCP and s.packet.code == 1]
        assert len(requests) == 1, sent
        self.lcp_request = requests[0].packet  # the client's first LCP Configure-Request

    # -- input --------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Sent]:
        self.engine.receive_stream_data(data, self.now)
        return self.take()

    def control(self, message_type: int, attributes: tuple[Attribute, ...] = ()) -> list[Sent]:
        return self.feed(encode_control(message_type, attributes))

    def ppp(self, protocol: int, code: int, identifier: int, data: bytes = b"") -> list[Sent]:
        return self.feed(encode_data(encode_frame(protocol, encode_packet(code, identifier, data))))

    def lcp(self, code: int, identifier: int, options: list[Option] | bytes = b"") -> list[Sent]:
        data = encode_options(options) if isinstance(options, list) else options
        return self.ppp(PppProtocol.LCP, code, identifier, data)

    def ipcp(self, code: int, identifier: int, options: list[Option]) -> list[Sent]:
        return self.ppp(PppProtocol.IPCP, code, identifier, encode_options(options))

    def advance(self, seconds: float) -> list[Sent]:
        target = self.now + seconds
        sent: list[Sent] = []
        while (deadline := self.engine.get_timer()) is not None and deadline <= target:
            self.now = deadline
            self.engine.handle_timer(self.now)
            sent += self.take()
        self.now = target
        return sent + self.take()

    def ack_client_lcp(self) -> list[Sent]:
        """The server acknowledges the client's first LCP request, as every server does."""
        return self.lcp(2, self.lcp_request.identifier, self.lcp_request.data)

    # -- output --------------------------------------------------------------------------------

    def take(self) -> list[Sent]:
        sent = []
        for control, body in self._reader.feed(self.engine.data_to_send()):
            if control:
                sent.append(Sent("control", message_type=parse_control(body).type, information=body))
                continue
            protocol, information = parse_frame(body)
            packet = parse_packet(information) if protocol in PPP_PROTOCOLS else None
            sent.append(Sent(protocol, packet, information=information))
        while (event := self.engine.next_event()) is not None:
            self.events.append(event)
        return sent

    @property
    def failure(self) -> Failure | None:
        ends = [event for event in self.events if isinstance(event, Disconnected)]
        assert len(ends) <= 1
        return ends[0].failure if ends else None

    @property
    def ended(self) -> bool:
        return any(isinstance(event, Disconnected) for event in self.events)


def only(sent: list[Sent], protocol: int) -> list[ControlPacket]:
    return [s.packet for s in sent if s.protocol == protocol]


def mschapv2_response(packet: ControlPacket) -> tuple[bytes, bytes, bytes]:
    """(peer challenge, NT-Response, name) of a client's MS-CHAPv2 Response packet."""
    assert packet.code == 2 and packet.data[0] == 49
    value = packet.data[1:50]
    return value[:16], value[24:48], packet.data[50:]


def mschapv2_success(
    challenge: bytes, response: ControlPacket, password: str = PASSWORD, username: str = USER, message: bytes = b" M=Welcome"
) -> bytes:
    """The Success message a genuine server sends for this Response."""
    peer_challenge, nt_response, _ = mschapv2_response(response)
    return mschapv2.authenticator_response(password, nt_response, peer_challenge, challenge, username) + message


def chap_challenge(challenge: bytes, name: bytes) -> bytes:
    return bytes((len(challenge),)) + challenge + name


CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")


def finish_mschapv2(wire: Wire, identifier: int = 1, message: bytes = b" M=Welcome") -> list[Sent]:
    """Challenge, the client's Response, a genuine Success; what the client sent after the Success."""
    response = only(wire.ppp(PppProtocol.CHAP, 1, identifier, chap_challenge(CHALLENGE, b"server")), PppProtocol.CHAP)[0]
    return wire.ppp(PppProtocol.CHAP, 3, identifier, mschapv2_success(CHALLENGE, response, message=message))


def mru(value: int) -> Option:
    return Option(1, struct.pack("!H", value))


def magic(value: int) -> Option:
    return Option(5, struct.pack("!I", value))
