"""Replays of real servers: the server's packets as public debug logs show them (option values as
logged, rebuilt with our codecs) fed to the sans-IO engine, and the client's answers asserted.

Each test names its source. The logs are pppd/sstpc/accel-ppp debug output of sessions with other
clients; what is replayed is the server's side, and what is asserted is what this client must
answer to it.
"""

from __future__ import annotations

from sstpvpn.client.core.events import LogRecord
from sstpvpn.client.core.ppp_codec import Code, Option, PppProtocol, encode_frame, parse_options
from sstpvpn.client.core.sstp_codec import AttributeId, MessageType, encode_data, parse_control
from sstpvpn.client.core.types import FailureKind, SessionSecurity
from tests.unit.wire import NONCE, Wire, finish_mschapv2, magic, mru, only, settings

AUTH_EAP = Option(3, b"\xc2\x27")
AUTH_MSCHAPV2 = Option(3, b"\xc2\x23\x81")
AUTH_MSCHAPV1 = Option(3, b"\xc2\x23\x80")
AUTH_CHAP_MD5 = Option(3, b"\xc2\x23\x05")
AUTH_PAP = Option(3, b"\xc0\x23")


# ------------------------------------------------------------------ Windows Server 2016 (issue 13)


WINDOWS_2016_FIRST = [
    mru(4091),
    AUTH_EAP,
    magic(0x1B2C3D4E),
    Option(13, b"\x06"),
    Option(17, b"\x06\x4e"),
    Option(19, b"\x01" + bytes.fromhex("6B2E3F40A1B2C3D4E5F60718293A4B5C")),
]


def test_windows_server_2016_eap_with_callback_mrru_and_discriminator_is_steered_to_mschapv2() -> None:
    """The sequence of issue 13: one request with MRU 4091, EAP, Magic, Callback, MRRU and Endpoint
    Discriminator. The client Rejects 13/17/19 only; when the server sends the request again
    without them, EAP gets a Nak toward MS-CHAPv2 (not an Ack) and MRU 4091 is accepted."""
    wire = Wire()
    wire.ack_client_lcp()
    first = only(wire.lcp(Code.CONFIGURE_REQUEST, 0, WINDOWS_2016_FIRST), PppProtocol.LCP)
    assert [(p.code, p.identifier) for p in first] == [(Code.CONFIGURE_REJECT, 0)]
    assert parse_options(first[0].data) == WINDOWS_2016_FIRST[3:]
    second = only(wire.lcp(Code.CONFIGURE_REQUEST, 1, WINDOWS_2016_FIRST[:3]), PppProtocol.LCP)
    assert [(p.code, p.identifier, parse_options(p.data)) for p in second] == [(Code.CONFIGURE_NAK, 1, [AUTH_MSCHAPV2])]
    third = only(wire.lcp(Code.CONFIGURE_REQUEST, 2, [mru(4091), AUTH_MSCHAPV2, magic(0x1B2C3D4E)]), PppProtocol.LCP)
    assert [(p.code, p.identifier) for p in third] == [(Code.CONFIGURE_ACK, 2)]
    wire.control(MessageType.ECHO_REQUEST)
    finish_mschapv2(wire)
    assert wire.engine.security == SessionSecurity("MS-CHAPv2", "SHA-256", keyed=True)
    assert wire.failure is None


def test_windows_server_insisting_on_eap_after_the_nak_gets_eap() -> None:
    wire = Wire()
    wire.ack_client_lcp()
    wire.lcp(Code.CONFIGURE_REQUEST, 0, WINDOWS_2016_FIRST)
    wire.lcp(Code.CONFIGURE_REQUEST, 1, WINDOWS_2016_FIRST[:3])  # Nak toward MS-CHAPv2
    sent = wire.lcp(Code.CONFIGURE_REQUEST, 2, WINDOWS_2016_FIRST[:3])  # EAP again: accepted
    assert [(s.packet.code, s.packet.identifier) for s in sent if s.protocol == PppProtocol.LCP] == [(Code.CONFIGURE_ACK, 2)]
    # Authentication starts: EAP waits for the server's Identity request.
    identity = only(wire.ppp(PppProtocol.EAP, 1, 7, b"\x01"), PppProtocol.EAP)
    assert identity[0].data == b"\x01alice"


# ------------------------------------------------------------------ helpers for the replays


def _open_lcp(wire: Wire, server_options: list[Option], identifier: int = 1) -> None:
    wire.ack_client_lcp()
    answer = only(wire.lcp(Code.CONFIGURE_REQUEST, identifier, server_options), PppProtocol.LCP)
    assert [(p.code, p.identifier) for p in answer] == [(Code.CONFIGURE_ACK, identifier)], answer


def _call_connected(sent: list) -> bytes:
    """The Crypto Binding attribute value of the Call Connected the client sent."""
    (connected,) = [s for s in sent if s.protocol == "control" and s.message_type == MessageType.CALL_CONNECTED]
    attribute = parse_control(connected.information).attribute(AttributeId.CRYPTO_BINDING)
    assert attribute is not None
    return attribute.value


def _info_messages(wire: Wire) -> list[str]:
    return [e.message for e in wire.events if isinstance(e, LogRecord) and e.level == 20]


# ------------------------------------------------------------------ MikroTik RouterOS


def test_mikrotik_unprompted_ipv6cp_is_protocol_rejected_and_its_ipcp_request_acked() -> None:
    """MikroTik sends an IPV6CP Configure-Request (interface id F101:0343:CFEA:4FFE) and an IPCP
    Configure-Request with its own address 172.23.24.14 right after authentication; it rejects VJ
    compression. Source (sstpc debug log, bytes as logged):
    https://github.com/reliablehosting/sstp-client/issues/9"""
    wire = Wire()
    _open_lcp(wire, [mru(1500), AUTH_MSCHAPV2, magic(0x2A5B3C4D)])
    sent = finish_mschapv2(wire)
    ipcp_request = only(sent, PppProtocol.IPCP)[0]
    assert ipcp_request.code == Code.CONFIGURE_REQUEST
    assert 2 not in [o.type for o in parse_options(ipcp_request.data)]  # never asks for VJ, which MikroTik rejects
    ipv6cp = bytes.fromhex("01 01 00 0E 01 0A F1 01 03 43 CF EA 4F FE")
    sent = wire.ppp(PppProtocol.IPV6CP, ipv6cp[0], ipv6cp[1], ipv6cp[4:])
    (reject,) = only(sent, PppProtocol.LCP)
    assert reject.code == Code.PROTOCOL_REJECT
    assert reject.data == bytes.fromhex("8057") + ipv6cp  # RFC 1661 5.7: protocol, then the packet
    sent = wire.ipcp(Code.CONFIGURE_REQUEST, 1, [Option(3, bytes([172, 23, 24, 14]))])
    assert [(p.code, p.identifier, p.data) for p in only(sent, PppProtocol.IPCP)] == [(Code.CONFIGURE_ACK, 1, bytes.fromhex("0306AC17180E"))]
    assert wire.failure is None and not wire.ended


def test_mikrotik_pap_ack_whose_message_lies_outside_its_length() -> None:
    """MikroTik's PAP Authenticate-Ack says Length 4 but still carries Msg-Length 08 and "Login ok".
    The bytes beyond Length are padding (RFC 1661 5): the Ack is a success. Source:
    https://github.com/kittoku/Open-SSTP-Client/issues/134"""
    wire = Wire(settings(allow_pap=True))
    wire.ack_client_lcp()
    nak = only(wire.lcp(Code.CONFIGURE_REQUEST, 1, [mru(1500), AUTH_PAP, magic(0x0BADCAFE)]), PppProtocol.LCP)
    assert [(p.code, parse_options(p.data)) for p in nak] == [(Code.CONFIGURE_NAK, [AUTH_MSCHAPV2])]  # steered once
    sent = wire.lcp(Code.CONFIGURE_REQUEST, 2, [mru(1500), AUTH_PAP, magic(0x0BADCAFE)])  # PAP again: accepted
    (request,) = only(sent, PppProtocol.PAP)
    assert request.code == 1 and request.data == b"\x05alice\x15correct horse battery"
    sent = wire.feed(
        encode_data(encode_frame(PppProtocol.PAP, bytes.fromhex("02") + bytes([request.identifier]) + bytes.fromhex("0004 08") + b"Login ok"))
    )
    assert _call_connected(sent)[4:36] == NONCE
    assert wire.engine.security == SessionSecurity("PAP", "SHA-256", keyed=False)
    assert wire.failure is None


def test_pap_ack_with_a_well_formed_message_is_shown() -> None:
    """The same Ack as RFC 1334 lays it out (Length covering the message): the user sees it."""
    wire = Wire(settings(allow_pap=True))
    wire.ack_client_lcp()
    wire.lcp(Code.CONFIGURE_REQUEST, 1, [AUTH_PAP])
    (request,) = only(wire.lcp(Code.CONFIGURE_REQUEST, 2, [AUTH_PAP]), PppProtocol.PAP)
    wire.ppp(PppProtocol.PAP, 2, request.identifier, b"\x08Login ok")
    assert "Message from the server: Login ok" in _info_messages(wire)


# ------------------------------------------------------------------ accel-ppp


def test_accel_ppp_mschapv2_success_then_call_connected_with_the_acks_nonce() -> None:
    """accel-ppp: "send [MSCHAP-v2 Success id=1 "S=<40 hex> M=Authentication succeeded"]", then it
    checks the Call Connected; that session was aborted for an invalid Nonce. Ours carries the
    nonce of the Call Connect Ack, right after the Success. Source:
    https://github.com/xebd/accel-ppp/issues/100"""
    wire = Wire(hash_bitmask=0x03)  # accel-ppp offers both hashes by default
    _open_lcp(wire, [mru(1400), AUTH_MSCHAPV2, magic(0x6C1D2E3F)])
    sent = finish_mschapv2(wire, identifier=1, message=b" M=Authentication succeeded")
    binding = _call_connected(sent)
    assert binding[3] == 0x02  # SHA-256, the stronger of the two offered
    assert binding[4:36] == NONCE
    assert "Message from the server: Authentication succeeded" in _info_messages(wire)
    assert [s.message_type for s in sent if s.protocol == "control"] == [MessageType.CALL_CONNECTED]


def test_accel_ppp_ignores_the_nak_hint_and_walks_its_method_list() -> None:
    """accel-ppp's LCP (accel-pppd/ppp/ppp_auth.c, auth_recv_conf_nak) marks a Nak'd method and
    offers the next one in its list, whatever the Nak suggested; a common configuration loads
    auth_mschap_v2, auth_mschap_v1, auth_chap_md5, auth_pap (the module list quoted in
    https://github.com/themiron/accel-ppp-sf/issues/1). The client keeps steering until
    MS-CHAPv2 comes. Sources: that issue, and https://github.com/accel-ppp/accel-ppp (ppp_auth.c)."""
    wire = Wire()
    wire.ack_client_lcp()
    answers = []
    for identifier, offer in enumerate([AUTH_PAP, AUTH_CHAP_MD5, AUTH_MSCHAPV1, AUTH_MSCHAPV2], start=1):
        sent = wire.lcp(Code.CONFIGURE_REQUEST, identifier, [mru(1400), offer, magic(0x11111111)])
        answers += [(p.code, parse_options(p.data)) for p in only(sent, PppProtocol.LCP)]
    nak = (Code.CONFIGURE_NAK, [AUTH_MSCHAPV2])
    assert answers == [nak, nak, nak, (Code.CONFIGURE_ACK, [mru(1400), AUTH_MSCHAPV2, magic(0x11111111)])]
    assert only(sent, PppProtocol.CHAP) == []  # MS-CHAPv2: the server speaks first
    finish_mschapv2(wire)
    assert wire.engine.security == SessionSecurity("MS-CHAPv2", "SHA-256", keyed=True)


def test_accel_ppp_that_runs_out_of_methods_names_what_it_offered() -> None:
    """The same walk on a server without MS-CHAPv2: accel-ppp gives up ("cann't negotiate
    authentication type") and ends the call; the user hears which methods it offered."""
    wire = Wire()
    wire.ack_client_lcp()
    for identifier, offer in enumerate([AUTH_PAP, AUTH_CHAP_MD5, AUTH_MSCHAPV1], start=1):
        wire.lcp(Code.CONFIGURE_REQUEST, identifier, [mru(1400), offer])
    wire.lcp(Code.TERMINATE_REQUEST, 4)
    wire.control(MessageType.CALL_DISCONNECT)
    assert wire.failure is not None and wire.failure.kind is FailureKind.AUTHENTICATION
    assert wire.failure.reason.startswith("The server offers only PAP, CHAP-MD5, MS-CHAPv1, which this profile does not allow.")


def test_echo_request_longer_than_the_peers_mru_gets_a_truncated_reply() -> None:
    """accel-ppp issue 204: a peer with MRU 1480 sent an Echo-Request of length 1494, and the
    1494-byte Echo-Reply broke the session. RFC 1661 5.8 says truncate to the peer's MRU; ours
    does. Source: https://github.com/accel-ppp/accel-ppp/issues/204"""
    wire = Wire()
    _open_lcp(wire, [mru(1480), AUTH_MSCHAPV2, magic(0x2468ACE0)])
    finish_mschapv2(wire)
    sent = wire.lcp(Code.ECHO_REQUEST, 0, bytes(4) + bytes(range(256)) * 6)
    (reply,) = only(sent, PppProtocol.LCP)
    assert reply.code == Code.ECHO_REPLY and 4 + len(reply.data) == 1480
    assert reply.data[4:] == (bytes(range(256)) * 6)[: 1480 - 8]


# ------------------------------------------------------------------ Windows RRAS


def test_windows_server_2019_success_without_the_space_before_m() -> None:
    """Windows Server 2019 sends the MS-CHAPv2 Success as "S=<40 hex>M=..." with no space (pppd
    rejected it until this fix). The proof is the first 42 bytes, so the login succeeds and the
    message is still found. Source (L2TP, same RRAS authenticator):
    https://github.com/ppp-project/ppp/pull/156"""
    wire = Wire()
    _open_lcp(wire, [mru(1400), AUTH_MSCHAPV2, magic(0x13572468)])
    sent = finish_mschapv2(wire, message=b"M=Access granted")
    assert _call_connected(sent)[4:36] == NONCE
    assert wire.engine.security == SessionSecurity("MS-CHAPv2", "SHA-256", keyed=True)
    assert "Message from the server: Access granted" in _info_messages(wire)


def test_success_message_logging_you_in_without_the_space() -> None:
    """Another server's Success: after the 42-byte proof comes "M=Success. Logging you in..."
    straight away, as pppd's error line showed. Sources:
    https://github.com/ppp-project/ppp/issues/158 and
    https://github.com/nm-l2tp/NetworkManager-l2tp/issues/144"""
    wire = Wire()
    _open_lcp(wire, [mru(1400), AUTH_MSCHAPV2, magic(0x24681357)])
    sent = finish_mschapv2(wire, message=b"M=Success. Logging you in...")
    assert _call_connected(sent)[4:36] == NONCE
    assert "Message from the server: Success. Logging you in..." in _info_messages(wire)


# ------------------------------------------------------------------ a looped-back link (sstpd + pppd)


def test_sstpd_echoing_every_frame_is_detected_as_a_looped_link() -> None:
    """sorz/sstp-server issue 44: sstpc received its own LCP Configure-Request (same ASYNCMAP and
    MAGIC) and then its own Configure-Nak (MAGIC 0xFA49FBD9) back from the server, again and again:
    "PPP Link Negotiation Never Ends". Replayed by sending every client frame straight back; the
    client must stop with the looped-back sentence, never reject its own magic number and never
    authenticate. Source: https://github.com/sorz/sstp-server/issues/44"""
    wire = Wire()
    pending = [wire.lcp_request]
    rounds = 0
    while pending and not wire.ended and rounds < 20:
        rounds += 1
        packet = pending.pop(0)
        sent = wire.lcp(packet.code, packet.identifier, packet.data)
        assert not any(p.code == Code.CONFIGURE_REJECT for p in only(sent, PppProtocol.LCP))
        pending += only(sent, PppProtocol.LCP)
    wire.control(MessageType.CALL_DISCONNECT_ACK)
    assert rounds <= 6
    assert wire.failure is not None and "looped back" in wire.failure.reason
    assert wire.engine.security is None  # never authenticated
