"""Playbooks: the sans-IO engine against the ScriptedServer, on a fake clock, with no sockets.

Each test runs a whole session (or the part of one that matters) and asserts what the user sees
(events, the final sentence and FailureKind) and what the server saw on the wire.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import replace
from ipaddress import IPv4Address

import pytest

from sstpvpn.client.core.auth import AuthPolicy
from sstpvpn.client.core.engine import EngineSettings
from sstpvpn.client.core.events import Credentials, LinkConfigured, LogRecord, PasswordRetryRequested, StateChanged
from sstpvpn.client.core.ppp_codec import Code, Option, PppProtocol, encode_options, encode_packet, parse_frame, parse_options, parse_packet
from sstpvpn.client.core.sstp_codec import Attribute, AttributeId, AttributeStatus, MessageType, StatusInfo, encode_data, encode_status_info
from sstpvpn.client.core.types import Failure, FailureKind, Layer, NetworkPlan, SessionSecurity, State
from tests.unit.scripted_server import (
    CHAP_MD5,
    EAP,
    EAP_MD5,
    EAP_MSCHAPV2,
    EAP_TLS,
    MSCHAPV1,
    MSCHAPV2,
    PAP,
    SOFTETHER_ECHO_DATA,
    Conversation,
    ScriptedServer,
    ServerConfig,
)
from tests.unit.wire import Wire, finish_mschapv2, mru, only

HOST = "vpn.example.com"
USER = "alice"
PASSWORD = "correct horse battery"
IPV4_PACKET = bytes.fromhex("4500001C 00010000 4001 0000 C6121E0A C6121E01") + bytes.fromhex("0800F7FF 00000000")
IPV4_REPLY = bytes.fromhex("4500001C 00020000 8001 0000 C6121E01 C6121E0A") + bytes.fromhex("0000FFFF 00000000")
IPV6_PACKET = bytes.fromhex("60000000 0008 3A40") + bytes.fromhex("FE80000000000000 0000000000000001") * 2 + bytes(8)

REFUSED = "The server refused the user name or password. Check them and try again."
IMPOSTOR = (
    "The server could not prove it knows your password (bad MS-CHAPv2 authenticator response): "
    "it may be an impostor. Do not use this connection, and tell the server's administrator."
)


def settings(
    allow_pap: bool = False, allow_chap_md5: bool = False, ipv6: bool = False, password: str = PASSWORD, hello: float = 20.0
) -> EngineSettings:
    return EngineSettings(
        credentials=Credentials(USER, password),
        host=HOST,
        auth=AuthPolicy(allow_pap=allow_pap, allow_chap_md5=allow_chap_md5),
        ipv6=ipv6,
        hello_interval=hello,
        dhcp_inform=False,  # its own tests: test_dhcp_inform.py
    )


def converse(engine_settings: EngineSettings | None = None, **server_config: object) -> Conversation:
    server = ScriptedServer(ServerConfig(**server_config))  # type: ignore[arg-type]
    return Conversation(engine_settings or settings(), server).start()


def only_disconnect(conversation: Conversation) -> Failure | None:
    """The one Disconnected event, which must be the last event; its failure."""
    disconnected = conversation.disconnected
    assert len(disconnected) == 1, conversation.events
    assert conversation.events[-1] == disconnected[0] or conversation.events[-2:] == [disconnected[0], StateChanged(State.DISCONNECTED)]
    assert conversation.engine.closed
    assert conversation.engine.get_timer() is None
    return disconnected[0].failure


def states(conversation: Conversation) -> list[State]:
    return [event.state for event in conversation.of_type(StateChanged)]


def assert_connected(conversation: Conversation) -> None:
    server = conversation.server
    assert server.problems == []
    assert conversation.disconnected == []
    assert states(conversation) == [State.HANDSHAKE, State.NEGOTIATING, State.AUTHENTICATING, State.CONFIGURING, State.CONNECTED]
    assert server.binding is not None and server.binding.ok, server.binding
    assert server.call_connected_count == 1


def assert_ip_flows_both_ways(conversation: Conversation) -> None:
    conversation.engine.receive_ip_packets([IPV4_PACKET], conversation.now)
    conversation.pump()
    assert conversation.server.ip_received == [IPV4_PACKET]
    conversation.server.send_ipv4(IPV4_REPLY)
    conversation.pump()
    assert conversation.delivered == [IPV4_REPLY]


def assert_no_repeated_state(conversation: Conversation) -> None:
    seen = states(conversation)
    assert all(a != b for a, b in itertools.pairwise(seen)), seen


SOFTETHER_PLAN = NetworkPlan(
    address=IPv4Address("198.18.30.10"),
    peer=IPv4Address("198.18.30.1"),
    dns=(IPv4Address("198.18.30.1"),),
    mtu=1500,
)

# ------------------------------------------------------------------ every method, both hashes

METHODS = {
    # name: (engine settings, server config, HLAK is all zeros)
    "PAP": (dict(allow_pap=True), dict(methods=(PAP, PAP)), True),
    "CHAP-MD5": (dict(allow_chap_md5=True), dict(methods=(CHAP_MD5, CHAP_MD5)), True),
    "MS-CHAPv2": ({}, dict(methods=(MSCHAPV2,)), False),
    "EAP-MD5": (dict(allow_chap_md5=True), dict(methods=(EAP, EAP), eap_types=(EAP_MD5,)), True),
    "EAP-MSCHAPv2": ({}, dict(methods=(EAP, EAP), eap_types=(EAP_MSCHAPV2,)), False),
}
HASHES = {"SHA-1": (0x01, 0x01), "SHA-256": (0x02, 0x02), "both offered": (0x03, 0x02)}


@pytest.mark.parametrize("hash_name", HASHES)
@pytest.mark.parametrize("method", METHODS)
def test_connects_and_carries_ip(method: str, hash_name: str) -> None:
    engine_options, server_options, zero_hlak = METHODS[method]
    bitmask, chosen = HASHES[hash_name]
    conversation = converse(settings(**engine_options), hash_bitmask=bitmask, **server_options)
    assert_connected(conversation)
    server = conversation.server
    assert server.authenticated and server.auth_attempts == 1
    binding = server.binding
    assert binding is not None
    assert binding.hash_protocol == chosen
    assert (binding.hlak == bytes(32)) is zero_hlak
    # What the status window shows: the method, the hash the server chose, a real or a zero key.
    assert conversation.engine.security == SessionSecurity(method, "SHA-256" if chosen == 0x02 else "SHA-1", keyed=not zero_hlak)
    assert conversation.plans == [SOFTETHER_PLAN]
    assert_ip_flows_both_ways(conversation)
    assert_no_repeated_state(conversation)
    # Connected and idle: the only deadline is the hello timer.
    assert conversation.engine.get_timer() == conversation.now + 20.0
    assert server.problems == []


def test_mschapv2_hlak_is_the_clients_master_send_and_receive_keys() -> None:
    """The server's MasterReceiveKey || MasterSendKey is the client's HLAK; the MAC checks out with it."""
    from sstpvpn.client.core import mschapv2

    conversation = converse()
    server = conversation.server
    keys = mschapv2.client_master_keys(PASSWORD, server._nt_response)
    assert server.binding is not None
    assert server.binding.hlak == keys.send + keys.receive
    assert server.binding.mac_ok


def test_binding_uses_the_certificate_given_to_the_engine() -> None:
    """A man in the middle presents another certificate: the server's check of the hash fails."""
    server = ScriptedServer(ServerConfig())
    Conversation(settings(), server, certificate=b"\x30\x03another").start()
    assert server.binding is not None
    assert server.binding.nonce_ok and server.binding.mac_ok
    assert not server.binding.cert_hash_ok


def test_binding_carries_the_nonce_of_the_ack() -> None:
    nonce = bytes(range(100, 132))
    conversation = converse(nonce=nonce)
    assert conversation.server.binding is not None and conversation.server.binding.nonce_ok


def test_call_connected_is_sent_right_after_authentication_before_ipcp() -> None:
    conversation = converse()
    log = conversation.server.wire_log
    connected = log.index(("control", MessageType.CALL_CONNECTED))
    last_auth = max(i for i, entry in enumerate(log) if entry[:2] == ("ppp", PppProtocol.CHAP))
    first_ipcp = min(i for i, entry in enumerate(log) if entry[:2] == ("ppp", PppProtocol.IPCP))
    assert last_auth < connected < first_ipcp
    assert_ip_flows_both_ways(conversation)
    assert conversation.server.problems == []  # it saw no IPv4 before the call and IPCP were up


# ------------------------------------------------------------------ LCP and the SoftEther walk


def _client_lcp(conversation: Conversation, code: int) -> list[list[Option]]:
    return [
        parse_options(packet.data)
        for protocol, information in conversation.server.frames_received
        if protocol == PppProtocol.LCP and (packet := parse_packet(information)).code == code
    ]


def test_softether_walk_client_steers_from_eap_to_mschapv2() -> None:
    conversation = converse(methods=(EAP, MSCHAPV2, PAP), eap_types=(EAP_TLS,))
    assert_connected(conversation)
    server = conversation.server
    assert server.lcp_refusals == [EAP]
    assert server.auth_method == MSCHAPV2
    # The Nak suggested MS-CHAPv2, the client's favourite.
    assert _client_lcp(conversation, Code.CONFIGURE_NAK) == [[Option(3, b"\xc2\x23\x81")]]
    assert conversation.plans == [SOFTETHER_PLAN]


def test_client_lcp_request_and_magic_rejected_like_softether() -> None:
    conversation = converse()
    requests = _client_lcp(conversation, Code.CONFIGURE_REQUEST)
    assert [o.type for o in requests[0]] == [1, 5]  # MRU and Magic-Number
    assert requests[0][0] == Option(1, struct.pack("!H", 1500))
    assert [o.type for o in requests[1]] == [1]  # Magic-Number dropped after the Reject
    assert len(requests) == 2


def test_server_mru_sets_the_plan_mtu() -> None:
    conversation = converse(extra_lcp_options=(Option(1, struct.pack("!H", 1400)),))
    assert conversation.plans == [replace(SOFTETHER_PLAN, mtu=1400)]


def test_client_rejects_pfc_acfc_and_callback() -> None:
    conversation = converse(extra_lcp_options=(Option(7), Option(8), Option(13, b"\x06")))
    rejects = _client_lcp(conversation, Code.CONFIGURE_REJECT)
    assert rejects[0] == [Option(7), Option(8), Option(13, b"\x06")]
    # The server in this script does not drop them, so the link never opens; what matters is
    # that the client refused them.


def test_two_dns_servers_and_no_dns2_reject() -> None:
    dns = (IPv4Address("198.18.30.1"), IPv4Address("198.18.30.2"))
    conversation = converse(dns=dns)
    assert conversation.plans == [replace(SOFTETHER_PLAN, dns=dns)]
    assert len(conversation.server.ipcp_requests) == 2  # Nak, then Ack


def test_softether_ipcp_walk_reject_dns2_then_nak_then_ack() -> None:
    conversation = converse()
    requests = conversation.server.ipcp_requests
    assert [[o.type for o in r] for r in requests] == [[3, 129, 131], [3, 129], [3, 129]]
    assert requests[2] == [Option(3, bytes([198, 18, 30, 10])), Option(129, bytes([198, 18, 30, 1]))]


def test_ipcp_request_sent_with_the_auth_success_is_not_lost() -> None:
    """pppd-style servers send their IPCP request right behind CHAP Success, in the same read."""
    conversation = converse(ipcp_request_with_success=True)
    assert_connected(conversation)
    assert conversation.plans == [SOFTETHER_PLAN]


# ------------------------------------------------------------------ IPv6


def test_ipv6cp_gives_a_second_plan_with_the_interface_identifier() -> None:
    conversation = converse(settings(ipv6=True), ipv6=True)
    assert_connected(conversation)
    # Like SoftEther, the server answers IPV6CP only once IPCP is up: the client's retry does it.
    assert len(conversation.plans) == 1
    conversation.advance(3.0)
    plans = conversation.plans
    assert len(plans) == 2
    assert plans[0] == SOFTETHER_PLAN
    identifier = conversation.server.client_interface_id
    assert identifier is not None and len(identifier) == 8 and any(identifier)
    assert plans[1] == replace(SOFTETHER_PLAN, ipv6_identifier=identifier)
    conversation.engine.receive_ip_packets([IPV6_PACKET], conversation.now)
    conversation.pump()
    assert conversation.server.ip_received == [IPV6_PACKET]
    conversation.server.send_ppp(PppProtocol.IPV6, IPV6_PACKET)
    conversation.pump()
    assert conversation.delivered == [IPV6_PACKET]


def test_ipv6cp_is_protocol_rejected_when_ipv6_is_off() -> None:
    conversation = converse()
    server = conversation.server
    server.send_ipv6cp_request()
    conversation.pump()
    assert server.protocol_rejects == [PppProtocol.IPV6CP]
    reject = _client_lcp_packets(conversation, Code.PROTOCOL_REJECT)[0]
    request = encode_packet(Code.CONFIGURE_REQUEST, 1, encode_options([Option(1, server.config.server_interface_id)]))
    assert reject.data == struct.pack("!H", PppProtocol.IPV6CP) + request
    # IPv6 packets are not delivered and not sent.
    server.send_ppp(PppProtocol.IPV6, IPV6_PACKET)
    conversation.engine.receive_ip_packets([IPV6_PACKET], conversation.now)
    conversation.pump()
    assert conversation.delivered == [] and server.ip_received == []
    assert conversation.disconnected == []


def test_ccp_and_unknown_protocols_are_protocol_rejected() -> None:
    conversation = converse()
    conversation.server.send_ppp(PppProtocol.CCP, encode_packet(1, 1, b""))
    conversation.server.send_ppp(0x4021, b"\x01\x02")
    conversation.pump()
    assert conversation.server.protocol_rejects == [PppProtocol.CCP, 0x4021]


def _client_lcp_packets(conversation: Conversation, code: int):
    return [
        packet
        for protocol, information in conversation.server.frames_received
        if protocol == PppProtocol.LCP and (packet := parse_packet(information)).code == code
    ]


# ------------------------------------------------------------------ keep-alive


def test_server_sstp_echo_request_is_answered() -> None:
    conversation = converse()
    conversation.server.send_control(MessageType.ECHO_REQUEST)
    conversation.pump()
    assert conversation.server.control_received[-1] == MessageType.ECHO_RESPONSE


@pytest.mark.parametrize("reject_magic", [True, False])
def test_lcp_echo_request_is_answered_with_our_magic(reject_magic: bool) -> None:
    conversation = converse(reject_magic=reject_magic)
    server = conversation.server
    identifier = server.send_lcp(Code.ECHO_REQUEST, bytes(4) + SOFTETHER_ECHO_DATA)
    conversation.pump()
    reply = server.lcp_echo_replies[-1]
    expected_magic = 0 if reject_magic else server.client_magic
    assert not reject_magic or server.client_magic == 0
    assert reject_magic or server.client_magic != 0
    assert (reply.identifier, reply.data) == (identifier, struct.pack("!I", expected_magic) + SOFTETHER_ECHO_DATA)


def test_silent_server_gets_an_echo_request_then_the_link_is_dropped() -> None:
    conversation = converse(settings(hello=20.0))
    server = conversation.server
    start = conversation.now
    assert conversation.engine.get_timer() == start + 20.0
    server.silent = True
    conversation.advance(19.9)
    assert MessageType.ECHO_REQUEST not in server.control_received
    conversation.advance(0.1)
    assert server.control_received.count(MessageType.ECHO_REQUEST) == 1
    assert conversation.engine.get_timer() == start + 40.0
    conversation.advance(19.9)
    assert conversation.disconnected == []
    conversation.advance(0.1)
    failure = only_disconnect(conversation)
    assert failure == Failure(
        Layer.SSTP,
        "The server stopped answering (nothing received for 40 s): the network or the server is down. Try again later.",
        FailureKind.UNREACHABLE,
    )
    assert MessageType.CALL_ABORT not in server.control_received  # dropped without a word


def test_answered_echoes_keep_the_link_up() -> None:
    conversation = converse()
    conversation.advance(300.0)
    assert conversation.disconnected == []
    assert conversation.server.control_received.count(MessageType.ECHO_REQUEST) == 15


def test_keepalive_probes_with_an_lcp_echo_too() -> None:
    conversation = converse()
    conversation.server.silent = True
    conversation.advance(20.0)
    echo_requests = _client_lcp_packets(conversation, Code.ECHO_REQUEST)
    assert len(echo_requests) == 1
    assert echo_requests[0].data == bytes(4)  # magic 0: the scripted server rejects Magic-Number


def test_a_server_that_ignores_sstp_echoes_stays_up_through_lcp_echo_replies() -> None:
    # SoftEther never answers an SSTP Echo Request; its LCP Echo-Reply must keep the link alive.
    conversation = converse(answer_sstp_echo=False)
    conversation.advance(300.0)
    assert conversation.disconnected == []
    assert len(_client_lcp_packets(conversation, Code.ECHO_REQUEST)) == 15


def test_received_traffic_postpones_the_echo() -> None:
    conversation = converse()
    start = conversation.now
    conversation.advance(15.0)
    conversation.server.send_ipv4(IPV4_REPLY)
    conversation.pump()
    assert conversation.engine.get_timer() == start + 35.0
    conversation.advance(19.0)
    assert MessageType.ECHO_REQUEST not in conversation.server.control_received


# ------------------------------------------------------------------ orderly endings


def test_user_disconnect_terminates_lcp_then_the_call() -> None:
    conversation = converse()
    server = conversation.server
    conversation.engine.disconnect(conversation.now)
    conversation.pump()
    assert server.lcp_terminate_requests == 1
    # LCP Terminate-Request, then (after the server's Terminate-Ack) Call Disconnect, and nothing else.
    assert server.wire_log[-2:] == [("ppp", PppProtocol.LCP, Code.TERMINATE_REQUEST), ("control", MessageType.CALL_DISCONNECT)]
    assert only_disconnect(conversation) is None
    assert states(conversation)[-2:] == [State.DISCONNECTING, State.DISCONNECTED]
    assert server.problems == []


def test_user_disconnect_with_a_silent_server_still_ends() -> None:
    conversation = converse()
    server = conversation.server
    server.silent = True
    conversation.engine.disconnect(conversation.now)
    conversation.pump()
    assert conversation.engine.get_timer() == conversation.now + 3.0  # LCP restart timer
    conversation.advance(6.0)  # Max-Terminate 2 x 3 s
    assert server.lcp_terminate_requests == 2
    assert server.control_received[-1] == MessageType.CALL_DISCONNECT
    assert conversation.disconnected == []
    assert conversation.engine.get_timer() == conversation.now + 5.0
    conversation.advance(5.0)
    assert only_disconnect(conversation) is None


def test_user_disconnect_before_the_reply() -> None:
    server = ScriptedServer(ServerConfig())
    conversation = Conversation(settings(), server)
    conversation.engine.connect(conversation.now)
    conversation.engine.disconnect(conversation.now)
    conversation._collect()
    assert only_disconnect(conversation) is None


def test_server_call_disconnect_is_acked() -> None:
    conversation = converse()
    conversation.server.send_control(MessageType.CALL_DISCONNECT)
    conversation.pump()
    assert conversation.server.control_received[-1] == MessageType.CALL_DISCONNECT_ACK
    assert only_disconnect(conversation) == Failure(
        Layer.SSTP, "The server ended the session. Connect again; if it keeps happening, ask the server's administrator why.", FailureKind.PROTOCOL
    )


def test_server_lcp_terminate_request_is_acked_then_the_call_ends() -> None:
    conversation = converse()
    server = conversation.server
    identifier = server.send_lcp(Code.TERMINATE_REQUEST)
    conversation.pump()
    assert _client_lcp_packets(conversation, Code.TERMINATE_ACK)[-1].identifier == identifier
    conversation.advance(3.0)
    assert server.control_received[-1] == MessageType.CALL_DISCONNECT
    assert only_disconnect(conversation) == Failure(
        Layer.LCP,
        "The server ended the PPP session. Connect again; if it keeps happening, ask the server's administrator to check its log.",
        FailureKind.PROTOCOL,
    )


# ------------------------------------------------------------------ failures


def test_wrong_password_mschapv2() -> None:
    conversation = converse(settings(password="wrong"))
    server = conversation.server
    assert server.auth_failed
    assert only_disconnect(conversation) == Failure(Layer.AUTH, REFUSED, FailureKind.AUTHENTICATION)
    assert server.call_connected_count == 0
    assert server.control_received[-1] == MessageType.CALL_DISCONNECT


def test_wrong_password_eap_mschapv2() -> None:
    conversation = converse(settings(password="wrong"), methods=(EAP, EAP))
    assert only_disconnect(conversation) == Failure(Layer.AUTH, REFUSED, FailureKind.AUTHENTICATION)
    assert conversation.server.call_connected_count == 0


def test_wrong_password_pap_nak() -> None:
    conversation = converse(settings(allow_pap=True, password="wrong"), methods=(PAP, PAP))
    # The server's message only repeats the refusal: logged for the user, not quoted in the sentence.
    assert only_disconnect(conversation) == Failure(Layer.AUTH, REFUSED, FailureKind.AUTHENTICATION)
    assert LogRecord(20, "Message from the server: Authentication failure") in conversation.events
    assert conversation.server.call_connected_count == 0


def test_wrong_password_chap_md5() -> None:
    conversation = converse(settings(allow_chap_md5=True, password="wrong"), methods=(CHAP_MD5, CHAP_MD5))
    assert only_disconnect(conversation) == Failure(Layer.AUTH, REFUSED, FailureKind.AUTHENTICATION)


NO_PAP = (
    "The server offers only PAP, which this profile does not allow. Allow PAP (--allow-pap) in the profile only if you "
    "trust the network path, or ask the administrator to enable MS-CHAPv2."
)


def test_server_offering_only_pap_without_allow_pap_then_ending_the_call() -> None:
    """SoftEther: the client Naks PAP, the server gives up with Terminate-Request and Call Disconnect."""
    conversation = converse(methods=(PAP,))
    server = conversation.server
    assert server.lcp_refusals == [PAP]
    server.send_control(MessageType.CALL_DISCONNECT)
    conversation.pump()
    assert only_disconnect(conversation) == Failure(Layer.AUTH, NO_PAP, FailureKind.AUTHENTICATION)
    assert server.call_connected_count == 0
    assert server.auth_attempts == 0


def test_server_ending_ppp_after_refusing_our_methods_ends_the_session_at_once() -> None:
    """A server that answers our Nak of its only method with an LCP Terminate-Request and keeps the
    call open: RFC 1661 would keep negotiating in Req-Sent, but a peer that ends the link before it
    was ever up is giving up, so the session ends now with the reason, not after the 60 s timeout."""
    conversation = converse(methods=(PAP,))
    started = conversation.now
    conversation.pump()
    assert conversation.server.gave_up and conversation.server.lcp_terminate_acks == 1  # acked at once
    assert only_disconnect(conversation) == Failure(Layer.AUTH, NO_PAP, FailureKind.AUTHENTICATION)
    assert conversation.now == started  # no timer had to run


def test_server_insisting_on_pap_without_allow_pap() -> None:
    """A server that re-offers PAP forever: the client never sends the password and gives up."""
    conversation = converse(methods=(PAP,) * 100)
    conversation.advance(120.0)
    assert only_disconnect(conversation) == Failure(Layer.AUTH, NO_PAP, FailureKind.AUTHENTICATION)
    assert not any(protocol == PppProtocol.PAP for protocol, _ in conversation.server.frames_received)


def test_eap_md5_only_server_without_allow_chap_md5() -> None:
    conversation = converse(methods=(EAP, EAP), eap_types=(EAP_MD5,))
    assert only_disconnect(conversation) == Failure(
        Layer.AUTH,
        "The server only offers EAP-MD5, which your profile does not allow because it exposes the password to offline "
        "guessing; allow CHAP-MD5 in the profile if you accept that, or ask the administrator for MS-CHAPv2.",
        FailureKind.AUTHENTICATION,
    )


def test_impostor_mschapv2_success_without_the_right_proof() -> None:
    conversation = converse(bad_authenticator=True)
    assert only_disconnect(conversation) == Failure(Layer.AUTH, IMPOSTOR, FailureKind.PROTOCOL)
    assert conversation.server.call_connected_count == 0


def test_impostor_eap_mschapv2() -> None:
    conversation = converse(methods=(EAP, EAP), bad_authenticator=True)
    assert only_disconnect(conversation) == Failure(Layer.AUTH, IMPOSTOR, FailureKind.PROTOCOL)
    assert conversation.server.call_connected_count == 0


def test_negotiation_timeout_when_the_server_is_silent_after_200() -> None:
    conversation = converse(silent_after="http")
    start = conversation.now
    assert conversation.engine.get_timer() == start + 60.0
    conversation.advance(59.9)
    assert conversation.disconnected == []
    conversation.advance(0.1)
    assert conversation.server.control_received[-1] == MessageType.CALL_ABORT
    assert conversation.engine.get_timer() == start + 63.0
    conversation.advance(3.0)
    assert only_disconnect(conversation) == Failure(
        Layer.SSTP,
        "The server did not finish setting up the call within 60 s. The connection was aborted; "
        "report this to the server's administrator if it persists.",
        FailureKind.PROTOCOL,
    )


def test_negotiation_timeout_when_lcp_never_finishes() -> None:
    conversation = converse(silent_after="connect")
    conversation.advance(120.0)
    failure = only_disconnect(conversation)
    assert failure == Failure(
        Layer.LCP,
        "The server did not complete PPP link negotiation. Try again; if it keeps happening, the server may be overloaded or misconfigured.",
        FailureKind.PROTOCOL,
    )


def test_no_http_reply_at_all() -> None:
    server = ScriptedServer(ServerConfig())
    conversation = Conversation(settings(), server)
    conversation.engine.connect(conversation.now)
    conversation.engine.data_to_send()  # the request is lost in a black hole
    conversation.advance(60.0)
    assert only_disconnect(conversation) == Failure(
        Layer.HTTP, f"The server {HOST} did not answer the SSTP request within 60 s: it may not be an SSTP server.", FailureKind.PROTOCOL
    )


def test_server_closes_instead_of_answering_http() -> None:
    server = ScriptedServer(ServerConfig())
    conversation = Conversation(settings(), server)
    conversation.engine.connect(conversation.now)
    conversation.engine.connection_lost(conversation.now)
    conversation._collect()
    assert only_disconnect(conversation) == Failure(
        Layer.HTTP,
        f"The server {HOST} closed the connection instead of answering the SSTP request: it may not be an SSTP server, "
        "or SSTP may be disabled on it.",
        FailureKind.PROTOCOL,
    )


def test_connection_lost_in_the_middle() -> None:
    conversation = converse()
    conversation.engine.connection_lost(conversation.now)
    conversation._collect()
    assert only_disconnect(conversation) == Failure(
        Layer.SSTP,
        f"The connection to {HOST} was lost. Check your network; if it keeps happening, the server may be restarting.",
        FailureKind.UNREACHABLE,
    )


def test_connection_lost_through_a_proxy_names_the_proxy() -> None:
    conversation = converse(replace(settings(), proxy="proxy.example.com:3128"))
    conversation.engine.connection_lost(conversation.now)
    conversation._collect()
    assert "through the proxy proxy.example.com:3128 was lost" in only_disconnect(conversation).reason


def test_non_200_http_reply() -> None:
    conversation = converse(http_reply=b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    assert only_disconnect(conversation) == Failure(
        Layer.HTTP,
        f"The server {HOST} refused the SSTP request with HTTP 403 Forbidden: check the server name and port, "
        "and that SSTP is enabled on the server.",
        FailureKind.PROTOCOL,
    )
    assert conversation.server.control_received == []


@pytest.mark.parametrize("when", ["after the ack", "while connected"])
def test_server_call_abort(when: str) -> None:
    conversation = converse(silent_after="connect") if when == "after the ack" else converse()
    server = conversation.server
    server.silent = False
    info = StatusInfo(0, AttributeStatus.NEGOTIATION_TIMEOUT, b"")
    server.send_control(MessageType.CALL_ABORT, (Attribute(AttributeId.STATUS_INFO, encode_status_info(info)),))
    conversation.pump()
    assert server.control_received[-1] == MessageType.CALL_ABORT
    assert only_disconnect(conversation) == Failure(
        Layer.SSTP,
        "The server aborted the call (status 8: negotiation timeout). Try again; "
        "if it keeps happening, ask the server's administrator to check its log.",
        FailureKind.PROTOCOL,
    )


def test_bad_sstp_version_drops_the_link_without_a_word() -> None:
    conversation = converse()
    server = conversation.server
    received = list(server.control_received)
    server.send_raw(bytes.fromhex("11010008 0008 0000"))
    conversation.pump()
    assert server.control_received == received  # no Call Abort
    assert only_disconnect(conversation) == Failure(
        Layer.SSTP,
        "The server sent data that is not SSTP (SSTP version 0x11 is not 1.0); the connection was dropped. "
        "Check that the server is an SSTP server, or report the problem to its administrator.",
        FailureKind.PROTOCOL,
    )


def test_packets_before_broken_framing_are_still_handled() -> None:
    conversation = converse()
    server = conversation.server
    server.send_ipv4(IPV4_REPLY)
    server.send_raw(bytes.fromhex("10010002"))
    conversation.pump()
    assert conversation.delivered == [IPV4_REPLY]
    failure = only_disconnect(conversation)
    assert failure is not None and "SSTP packet length 2 is shorter than its header" in failure.reason


def test_malformed_control_message_gets_a_call_abort() -> None:
    conversation = converse()
    server = conversation.server
    server.send_raw(bytes.fromhex("1001000A 0008 0001 0002"))  # Echo Request with a truncated attribute
    conversation.pump()
    assert server.control_received[-1] == MessageType.CALL_ABORT
    assert conversation.disconnected == []
    assert conversation.engine.get_timer() == conversation.now + 3.0
    conversation.advance(3.0)
    assert only_disconnect(conversation) == Failure(
        Layer.SSTP,
        "The server sent a malformed SSTP control message (SSTP message 0x0008 announces 1 attributes but holds fewer). "
        "The connection was aborted; report this to the server's administrator if it persists.",
        FailureKind.PROTOCOL,
    )


def test_server_answering_our_abort_closes_at_once() -> None:
    conversation = converse()
    server = conversation.server
    server.send_control(MessageType.CALL_CONNECT_ACK)  # not valid once connected
    conversation.pump()
    assert server.control_received[-1] == MessageType.CALL_ABORT
    server.send_control(MessageType.CALL_ABORT)
    conversation.pump()
    failure = only_disconnect(conversation)
    assert failure == Failure(
        Layer.SSTP,
        "The server sent an SSTP CALL_CONNECT_ACK message that is not valid in state Client_Call_Connected. "
        "The connection was aborted; report this to the server's administrator if it persists.",
        FailureKind.PROTOCOL,
    )


def test_call_connect_nak_is_retried() -> None:
    conversation = converse(connect_naks=2)
    assert_connected(conversation)
    assert conversation.server.control_received.count(MessageType.CALL_CONNECT_REQUEST) == 3


def test_call_connect_nak_too_often() -> None:
    conversation = converse(connect_naks=10)
    conversation.advance(3.0)
    assert conversation.server.control_received.count(MessageType.CALL_CONNECT_REQUEST) == 4
    assert only_disconnect(conversation) == Failure(
        Layer.SSTP,
        "The server refused the SSTP call 4 times (value not supported). The connection was aborted; "
        "report this to the server's administrator if it persists.",
        FailureKind.PROTOCOL,
    )


@pytest.mark.parametrize("bitmask", [0x00, 0x04, 0xFC])
def test_unknown_hash_bitmask(bitmask: int) -> None:
    conversation = converse(hash_bitmask=bitmask)
    assert conversation.server.control_received[-1] == MessageType.CALL_ABORT
    conversation.advance(3.0)
    assert only_disconnect(conversation) == Failure(
        Layer.SSTP,
        f"The server asks for a crypto binding hash we do not know (bitmask {bitmask:#04x}). The connection was aborted; "
        "report this to the server's administrator if it persists.",
        FailureKind.PROTOCOL,
    )


def test_lcp_renegotiation_after_connect_ends_the_session_cleanly() -> None:
    conversation = converse()
    server = conversation.server
    server.send_lcp(Code.CONFIGURE_REQUEST, encode_options([Option(3, b"\xc2\x23\x81")]))
    server.send_ppp(PppProtocol.IPCP, encode_packet(Code.CONFIGURE_REQUEST, 7, encode_options([Option(3, bytes(4))])))
    conversation.pump()
    # The session must not hang half-authenticated: it ends, politely, with a sentence.
    assert states(conversation)[-2:] == [State.DISCONNECTING, State.DISCONNECTED]
    assert _client_lcp_packets(conversation, Code.TERMINATE_REQUEST)
    conversation.advance(30.0)
    assert only_disconnect(conversation) == Failure(
        Layer.LCP,
        "The server restarted PPP link negotiation during the session, which this client does not support. "
        "Connect again; if it keeps happening, ask the server's administrator to check its log.",
        FailureKind.PROTOCOL,
    )
    assert server.call_connected_count == 1


def test_no_event_is_emitted_twice_over_a_whole_session() -> None:
    conversation = converse()
    assert_ip_flows_both_ways(conversation)
    conversation.engine.disconnect(conversation.now)
    conversation.pump()
    conversation.advance(100.0)
    assert only_disconnect(conversation) is None
    assert len(conversation.of_type(LinkConfigured)) == 1
    assert_no_repeated_state(conversation)
    logs = [event.message for event in conversation.of_type(LogRecord)]
    assert not any(PASSWORD in line for line in logs)
    # After the end, nothing moves any more.
    conversation.engine.handle_timer(conversation.now + 1000)
    conversation.engine.receive_stream_data(b"\x10\x01\x00\x08\x00\x08\x00\x00", conversation.now)
    conversation.engine.disconnect(conversation.now)
    assert conversation.engine.next_event() is None
    assert conversation.engine.data_to_send() == b""


def test_user_disconnect_while_an_echo_is_unanswered_is_still_clean() -> None:
    conversation = converse()
    server = conversation.server
    server.silent = True
    conversation.advance(38.0)  # our Echo Request went out at 20 s and is unanswered
    assert server.control_received.count(MessageType.ECHO_REQUEST) == 1
    conversation.disconnect()
    conversation.advance(20.0)
    assert only_disconnect(conversation) is None


def test_server_that_never_configures_ipv4() -> None:
    conversation = converse(silent_after="connected")
    conversation.advance(100.0)
    assert conversation.plans == []
    assert len(conversation.server.ipcp_requests) == 10  # Max-Configure, unanswered
    assert only_disconnect(conversation) == Failure(
        Layer.IPCP,
        "The server did not complete IPv4 configuration (IPCP). Try again; if it keeps happening, the server's address pool may be exhausted.",
        FailureKind.PROTOCOL,
    )


def test_server_that_ends_ipv4_during_the_session() -> None:
    conversation = converse()
    assert conversation.plans == [SOFTETHER_PLAN]
    conversation.server.send_ppp(PppProtocol.IPCP, encode_packet(Code.TERMINATE_REQUEST, 0x42, b""))
    conversation.pump()
    conversation.advance(10.0)  # RFC 1661: Stopping waits one restart interval before Finished
    assert only_disconnect(conversation) == Failure(
        Layer.IPCP,
        "The server ended IPv4 on this link (IPCP Terminate-Request). Connect again; "
        "if it keeps happening, ask the server's administrator to check its log.",
        FailureKind.PROTOCOL,
    )


@pytest.mark.parametrize("address", ["127.0.0.5", "224.0.0.9", "255.255.255.255", "240.0.0.1", "0.0.0.7"])
def test_an_address_no_host_can_have_is_refused(address: str) -> None:
    conversation = converse(address=IPv4Address(address))
    conversation.advance(10.0)
    assert conversation.plans == []
    assert only_disconnect(conversation) == Failure(
        Layer.IPCP,
        f"The server assigned the IPv4 address {address}, which cannot be the address of this computer. "
        "Ask the server's administrator to check the address pool.",
        FailureKind.PROTOCOL,
    )
    assert conversation.server.wire_log[-1] == ("control", MessageType.CALL_DISCONNECT)


def test_dns_servers_that_cannot_be_reached_through_the_tunnel_are_ignored() -> None:
    conversation = converse(dns=(IPv4Address("127.0.0.1"), IPv4Address("198.18.30.53")))
    assert conversation.plans == [replace(SOFTETHER_PLAN, dns=(IPv4Address("198.18.30.53"),))]
    assert LogRecord(20, "Ignored the DNS servers 127.0.0.1 offered by the server: they cannot be reached through the tunnel.") in conversation.events
    conversation = converse(dns=(IPv4Address("224.0.0.251"),))
    assert conversation.plans == [replace(SOFTETHER_PLAN, dns=())]


class _NakEveryIpcpRequest(ScriptedServer):
    """Suggests a new address for every IPCP request: a negotiation that never converges."""

    def _receive_ipcp(self, packet) -> None:
        if packet.code != Code.CONFIGURE_REQUEST:
            return super()._receive_ipcp(packet)
        self._send_ipcp_request()
        self.ipcp_requests.append(parse_options(packet.data))
        address = IPv4Address("198.18.30.10") + len(self.ipcp_requests)
        self._send_ppp(PppProtocol.IPCP, Code.CONFIGURE_NAK, packet.identifier, encode_options([Option(3, address.packed)]))


def test_endless_ipcp_configure_nak_ends_the_session_at_once() -> None:
    # Before the fix the two sides naked and re-requested forever at wire speed (the negotiation
    # timer stops at Call Connected): pump() raised "keep talking".
    conversation = Conversation(settings(), _NakEveryIpcpRequest(ServerConfig())).start()
    assert len(conversation.server.ipcp_requests) == 11  # Max-Configure refusals, then give up
    conversation.advance(10.0)
    assert conversation.plans == []
    assert only_disconnect(conversation) == Failure(
        Layer.IPCP,
        "The server did not complete IPv4 configuration (IPCP). Try again; if it keeps happening, the server's address pool may be exhausted.",
        FailureKind.PROTOCOL,
    )


def test_ipcp_renegotiated_with_the_same_values_gives_no_second_plan() -> None:
    conversation = converse()
    server = conversation.server
    server._ipcp_request_id = None  # the server sends its request again, as if our Ack was lost
    server._send_ipcp_request()
    conversation.pump()
    assert conversation.plans == [SOFTETHER_PLAN]
    assert_ip_flows_both_ways(conversation)
    assert conversation.disconnected == []


def test_eap_server_starting_with_eap_tls_is_steered_to_eap_mschapv2() -> None:
    conversation = converse(methods=(EAP, EAP), eap_types=(EAP_TLS, EAP_MSCHAPV2))
    assert_connected(conversation)
    eap_responses = [
        parse_packet(information).data[:1] for protocol, information in conversation.server.frames_received if protocol == PppProtocol.EAP
    ]
    assert eap_responses[:2] == [b"\x01", b"\x03"]  # Identity, then a Nak of EAP-TLS
    assert conversation.server.binding is not None and conversation.server.binding.hlak != bytes(32)


def test_eap_server_that_only_does_eap_tls() -> None:
    conversation = converse(methods=(EAP, EAP), eap_types=(EAP_TLS,))
    assert only_disconnect(conversation) == Failure(
        Layer.AUTH,
        "The server requires EAP-TLS, which this client does not support; ask the server's administrator to allow MS-CHAPv2 or EAP-MSCHAPv2.",
        FailureKind.AUTHENTICATION,
    )
    assert conversation.server.call_connected_count == 0


# ------------------------------------------------------------------ issue 13: steering, loops, no authentication


def test_accel_ppp_walk_is_steered_until_mschapv2_comes() -> None:
    """accel-ppp ignores the Nak's hint and offers PAP, CHAP-MD5, MS-CHAPv1, then MS-CHAPv2."""
    conversation = converse(methods=(PAP, CHAP_MD5, MSCHAPV1, MSCHAPV2))
    assert_connected(conversation)
    server = conversation.server
    assert server.lcp_refusals == [PAP, CHAP_MD5, MSCHAPV1]
    assert server.auth_method == MSCHAPV2
    assert _client_lcp(conversation, Code.CONFIGURE_NAK) == [[Option(3, b"\xc2\x23\x81")]] * 3
    assert not any(protocol == PppProtocol.PAP for protocol, _ in server.frames_received)


def test_accel_ppp_walk_with_pap_allowed_still_prefers_mschapv2() -> None:
    conversation = converse(settings(allow_pap=True), methods=(PAP, CHAP_MD5, MSCHAPV1, MSCHAPV2))
    assert_connected(conversation)
    assert conversation.server.auth_method == MSCHAPV2


def test_a_server_that_never_offers_an_allowed_method_is_bounded_by_max_failure() -> None:
    conversation = converse(methods=(PAP, CHAP_MD5, MSCHAPV1) * 3)
    answers = _client_lcp_packets(conversation, Code.CONFIGURE_NAK) + _client_lcp_packets(conversation, Code.CONFIGURE_REJECT)
    naks = _client_lcp(conversation, Code.CONFIGURE_NAK)
    rejects = _client_lcp(conversation, Code.CONFIGURE_REJECT)
    assert len(naks) == 5 and len(rejects) == 4 and len(answers) == 9  # Max-Failure, then the offer is refused
    assert all(option.type == 3 for reject in rejects for option in reject)
    conversation.server.send_control(MessageType.CALL_DISCONNECT)  # out of offers, it ends the call
    conversation.pump()
    assert only_disconnect(conversation) == Failure(
        Layer.AUTH,
        "The server offers only PAP, CHAP-MD5, MS-CHAPv1, which this profile does not allow. Allow PAP (--allow-pap) or "
        "CHAP-MD5 (--allow-chap-md5) in the profile only if you trust the network path, or ask the administrator to enable MS-CHAPv2.",
        FailureKind.AUTHENTICATION,
    )
    assert conversation.server.auth_attempts == 0 and conversation.server.call_connected_count == 0


class _EchoingServer(ScriptedServer):
    """A misconfigured server whose SSTP side works but sends every PPP frame straight back."""

    def _send_lcp_request(self) -> None:
        pass  # no PPP of its own

    def _receive_frame(self, frame: bytes) -> None:
        self.frames_received.append(parse_frame(frame))
        self._send(encode_data(frame))


def test_a_looped_back_link_ends_with_a_sentence_and_no_authentication() -> None:
    conversation = Conversation(settings(), _EchoingServer(ServerConfig())).start()
    conversation.advance(10.0)
    server = conversation.server
    sent = [parse_packet(information) for protocol, information in server.frames_received if protocol == PppProtocol.LCP]
    # The magic number is never rejected, nothing is ever acked, no password is ever sent.
    assert not any(p.code == Code.CONFIGURE_REJECT for p in sent)
    assert not any(p.code == Code.CONFIGURE_ACK for p in sent)
    assert {protocol for protocol, _ in server.frames_received} == {PppProtocol.LCP}
    assert all(any(o.type == 5 for o in parse_options(p.data)) for p in sent if p.code == Code.CONFIGURE_REQUEST)
    assert len([p for p in sent if p.code == Code.CONFIGURE_REQUEST]) <= 3
    failure = only_disconnect(conversation)
    assert failure is not None and failure.where == "lcp" and failure.kind is FailureKind.PROTOCOL
    assert "looped back" in failure.reason and "tell its administrator" in failure.reason
    assert server.call_connected_count == 0
    assert server.control_received[-1] == MessageType.CALL_DISCONNECT
    assert State.AUTHENTICATING not in states(conversation)


NO_AUTH = (
    "The server asked for no authentication, which this client refuses: nothing would bind the tunnel to your "
    "account, so a misconfigured server or an impostor holding a valid certificate could carry your traffic. "
    "Ask the server's administrator to require MS-CHAPv2 or EAP."
)


def test_a_server_asking_for_no_authentication_is_refused_by_default() -> None:
    conversation = converse(methods=())
    conversation.advance(10.0)
    assert only_disconnect(conversation) == Failure(Layer.AUTH, NO_AUTH, FailureKind.AUTHENTICATION)
    assert conversation.server.call_connected_count == 0
    assert conversation.plans == []


def test_a_server_asking_for_no_authentication_when_the_connection_allows_it() -> None:
    conversation = converse(replace(settings(), auth=AuthPolicy(allow_no_auth=True)), methods=())
    assert_connected(conversation)
    assert conversation.server.binding is not None and conversation.server.binding.hlak == bytes(32)
    assert conversation.engine.security == SessionSecurity("none", "SHA-256", keyed=False)
    assert any(isinstance(e, LogRecord) and e.level == 30 and "no authentication" in e.message for e in conversation.events)


def test_a_server_dropping_authentication_after_refused_methods_names_them() -> None:
    """After Max-Failure the client Rejects the Authentication-Protocol option; a server that then
    asks for no authentication is still refused, with the sentence about the refused methods."""

    class DropsAuthWhenRejected(ScriptedServer):
        def _receive_lcp(self, packet) -> None:
            if packet.code == Code.CONFIGURE_REJECT and packet.identifier == self._lcp_request_id:
                self.lcp_refusals.append("rejected")
                self._method_index = len(self.config.methods)  # nothing more to offer...
                self._lcp_request_id = self._next_lcp_id()  # ...so it asks for no authentication
                self._send_ppp(PppProtocol.LCP, Code.CONFIGURE_REQUEST, self._lcp_request_id, b"")
                return
            super()._receive_lcp(packet)

        def _offered(self):
            return PAP if self._method_index < len(self.config.methods) else None

    conversation = Conversation(settings(), DropsAuthWhenRejected(ServerConfig(methods=(PAP,) * 10))).start()
    conversation.advance(10.0)
    assert "rejected" in conversation.server.lcp_refusals
    assert only_disconnect(conversation) == Failure(Layer.AUTH, NO_PAP, FailureKind.AUTHENTICATION)
    assert conversation.server.call_connected_count == 0


def test_a_peer_mru_above_what_sstp_carries_is_acked_and_sending_stays_within_one_sstp_packet() -> None:
    """Windows RRAS asks for MRU 4091: acked (it only limits what we send), and what we send
    still fits one SSTP packet (4095 bytes)."""
    conversation = converse(extra_lcp_options=(Option(1, struct.pack("!H", 4091)),))
    assert_connected(conversation)
    assert _client_lcp(conversation, Code.CONFIGURE_NAK) == []
    assert conversation.plans == [SOFTETHER_PLAN]  # MTU: our MRU 1500 is the smaller
    server = conversation.server
    largest = 4095 - 8  # the largest information field an SSTP data packet can hold
    server.send_ppp(0x8281, bytes(largest))  # MPLSCP, unknown to us: Protocol-Reject quotes it
    server.send_lcp(Code.ECHO_REQUEST, bytes(largest - 4))
    server.send_lcp(0x42, bytes(largest - 4))  # unknown LCP code: Code-Reject quotes it
    conversation.pump()
    assert server.problems == []  # every packet the client sent parsed as SSTP
    answers = {parse_packet(information).code: information for protocol, information in server.frames_received[-3:]}
    assert set(answers) == {Code.PROTOCOL_REJECT, Code.ECHO_REPLY, Code.CODE_REJECT}
    assert all(len(information) == largest for information in answers.values())
    assert server.protocol_rejects[-1] == 0x8281


def test_ip_packets_larger_than_the_peer_mru_allows_are_not_sent() -> None:
    conversation = converse(extra_lcp_options=(Option(1, struct.pack("!H", 4091)),))
    big = bytearray(IPV4_PACKET + bytes(4200 - len(IPV4_PACKET)))
    big[2:4] = struct.pack("!H", len(big))
    conversation.engine.receive_ip_packets([bytes(big), IPV4_PACKET], conversation.now)
    conversation.pump()
    assert conversation.server.ip_received == [IPV4_PACKET]
    assert conversation.server.problems == []


# ------------------------------------------------------------------ MS-CHAPv2 retry (R=1)


RETRY_REASON = REFUSED + ' The server said: "Wrong password, 2 tries left".'


def test_mschapv2_retry_with_a_new_password_connects_in_the_same_session() -> None:
    conversation = converse(settings(password="wrong"), mschapv2_retries=2)
    assert conversation.of_type(PasswordRetryRequested) == [PasswordRetryRequested(RETRY_REASON)]
    assert LogRecord(20, "Message from the server: Wrong password, 2 tries left") in conversation.events
    assert conversation.disconnected == [] and conversation.server.call_connected_count == 0
    conversation.engine.retry_password("still wrong", conversation.now)
    conversation.pump()
    assert len(conversation.of_type(PasswordRetryRequested)) == 2
    conversation.engine.retry_password(PASSWORD, conversation.now)
    conversation.pump()
    assert_connected(conversation)
    assert conversation.server.auth_attempts == 3
    assert conversation.engine.security is not None and conversation.engine.security.keyed
    assert not any(PASSWORD in e.message or "still wrong" in e.message for e in conversation.of_type(LogRecord))


def test_mschapv2_retry_declined_ends_with_the_refusal_sentence() -> None:
    conversation = converse(settings(password="wrong"), mschapv2_retries=1)
    conversation.engine.retry_password(None, conversation.now)
    conversation.pump()
    conversation.advance(10.0)
    assert only_disconnect(conversation) == Failure(Layer.AUTH, RETRY_REASON, FailureKind.AUTHENTICATION)
    assert conversation.server.call_connected_count == 0


def test_mschapv2_retry_nobody_answers_ends_with_the_refusal_not_a_timeout() -> None:
    conversation = converse(settings(password="wrong"), mschapv2_retries=1)
    conversation.advance(70.0)
    assert only_disconnect(conversation) == Failure(Layer.AUTH, RETRY_REASON, FailureKind.AUTHENTICATION)


def test_password_expired_has_its_own_sentence() -> None:
    class Expired(ScriptedServer):
        def _mschapv2_failure(self) -> bytes:
            return b"E=648 R=0 C=" + bytes(16).hex().encode() + b" V=3 M=Password expired"

    conversation = Conversation(settings(password="old"), Expired(ServerConfig())).start()
    conversation.advance(10.0)
    failure = only_disconnect(conversation)
    assert failure == Failure(
        Layer.AUTH,
        "The server refused the login because the password has expired. Change it (for example by signing in "
        "to a computer of your organisation, or with your administrator's help), then connect again.",
        FailureKind.AUTHENTICATION,
    )  # "Password expired" adds nothing to that sentence
    assert LogRecord(20, "Message from the server: Password expired") in conversation.events
    assert conversation.of_type(PasswordRetryRequested) == []


# ------------------------------------------------------------------ Call Disconnect / Abort status


@pytest.mark.parametrize(
    ("message_type", "attribute_id", "status", "value", "detail"),
    [
        (MessageType.CALL_DISCONNECT, 0, 0, b"", " (status 0: no error)"),
        (
            MessageType.CALL_DISCONNECT,
            AttributeId.CRYPTO_BINDING,
            AttributeStatus.RETRY_COUNT_EXCEEDED,
            b"",
            " (status 6: retry count exceeded, about the crypto binding attribute)",
        ),
        (
            MessageType.CALL_ABORT,
            AttributeId.CRYPTO_BINDING,
            AttributeStatus.INVALID_FRAME_RECEIVED,
            b"\x00" * 4,
            " (status 7: invalid frame received, about the crypto binding attribute)",
        ),
        (
            MessageType.CALL_ABORT,
            AttributeId.ENCAPSULATED_PROTOCOL_ID,
            AttributeStatus.VALUE_NOT_SUPPORTED,
            b"\x00\x01",
            " (status 4: value not supported, about the encapsulated protocol attribute)",
        ),
        (MessageType.CALL_DISCONNECT, 0x33, 0x77, b"", " (status 119: unknown status, about attribute 51)"),
    ],
)
def test_server_disconnect_and_abort_name_the_status(message_type: int, attribute_id: int, status: int, value: bytes, detail: str) -> None:
    conversation = converse()
    info = StatusInfo(attribute_id, status, value)
    conversation.server.send_control(message_type, (Attribute(AttributeId.STATUS_INFO, encode_status_info(info)),))
    conversation.pump()
    failure = only_disconnect(conversation)
    if message_type == MessageType.CALL_DISCONNECT:
        expected = f"The server ended the session{detail}. Connect again; if it keeps happening, ask the server's administrator why."
    else:
        expected = f"The server aborted the call{detail}. Try again; if it keeps happening, ask the server's administrator to check its log."
    assert failure == Failure(Layer.SSTP, expected, FailureKind.PROTOCOL)


def test_server_disconnect_with_a_broken_status_info_still_ends_with_the_plain_sentence() -> None:
    conversation = converse()
    conversation.server.send_control(MessageType.CALL_DISCONNECT, (Attribute(AttributeId.STATUS_INFO, b"\x00\x01"),))
    conversation.pump()
    assert only_disconnect(conversation) == Failure(
        Layer.SSTP, "The server ended the session. Connect again; if it keeps happening, ask the server's administrator why.", FailureKind.PROTOCOL
    )


# ------------------------------------------------------------------ MikroTik quirks (issue 13), packet by packet


def test_mplscp_opened_unprompted_is_protocol_rejected() -> None:
    conversation = converse()
    request = encode_packet(Code.CONFIGURE_REQUEST, 1, b"")
    conversation.server.send_ppp(0x8281, request)  # MPLSCP, as MikroTik sends it
    conversation.pump()
    assert conversation.server.protocol_rejects == [0x8281]
    reject = _client_lcp_packets(conversation, Code.PROTOCOL_REJECT)[0]
    assert reject.data == b"\x82\x81" + request
    assert conversation.disconnected == []
    assert_ip_flows_both_ways(conversation)


def test_ipcp_nak_of_address_and_both_dns_servers_in_one_packet() -> None:
    wire = Wire()
    wire.ack_client_lcp()
    wire.lcp(Code.CONFIGURE_REQUEST, 1, [Option(3, b"\xc2\x23\x81")])
    (request,) = only(finish_mschapv2(wire), PppProtocol.IPCP)
    assert [o.type for o in parse_options(request.data)] == [3, 129, 131]
    assigned = [Option(3, bytes([10, 8, 0, 5])), Option(129, bytes([10, 8, 0, 1])), Option(131, bytes([8, 8, 8, 8]))]
    (second,) = only(wire.ipcp(Code.CONFIGURE_NAK, request.identifier, assigned), PppProtocol.IPCP)
    assert (second.code, parse_options(second.data)) == (Code.CONFIGURE_REQUEST, assigned)
    wire.ipcp(Code.CONFIGURE_REQUEST, 1, [Option(3, bytes([10, 8, 0, 1]))])
    wire.ipcp(Code.CONFIGURE_ACK, second.identifier, assigned)
    plans = [e.plan for e in wire.events if isinstance(e, LinkConfigured)]
    assert [(p.address, p.dns) for p in plans] == [(IPv4Address("10.8.0.5"), (IPv4Address("10.8.0.1"), IPv4Address("8.8.8.8")))]


def test_a_late_answer_to_a_retransmitted_request_is_dropped_silently() -> None:
    """A server that answers both the original and the retransmitted Configure-Request: the reply
    with the old identifier changes nothing and provokes nothing."""
    wire = Wire()
    first = wire.lcp_request
    (retransmitted,) = only(wire.advance(3.0), PppProtocol.LCP)
    assert retransmitted.code == Code.CONFIGURE_REQUEST and retransmitted.identifier != first.identifier
    assert wire.lcp(Code.CONFIGURE_NAK, first.identifier, [mru(1280)]) == []  # stale: no new request
    assert wire.engine._lcp.policy.mru == 1500
    assert wire.lcp(Code.CONFIGURE_ACK, retransmitted.identifier, retransmitted.data) == []
    assert wire.lcp(Code.CONFIGURE_ACK, retransmitted.identifier, retransmitted.data) == []  # the duplicate
    assert wire.lcp(Code.CONFIGURE_ACK, first.identifier, first.data) == []  # the late one
    sent = wire.lcp(Code.CONFIGURE_REQUEST, 7, [Option(3, b"\xc2\x23\x81")])
    assert [(p.code, p.identifier) for p in only(sent, PppProtocol.LCP)] == [(Code.CONFIGURE_ACK, 7)]
    assert wire.engine._lcp.fsm.is_opened
    assert wire.failure is None


def test_a_late_ipcp_nak_to_a_retransmitted_request_is_dropped_silently() -> None:
    wire = Wire()
    wire.ack_client_lcp()
    wire.lcp(Code.CONFIGURE_REQUEST, 1, [Option(3, b"\xc2\x23\x81")])
    (first,) = only(finish_mschapv2(wire), PppProtocol.IPCP)
    (again,) = only(wire.advance(3.0), PppProtocol.IPCP)
    assigned = [Option(3, bytes([10, 8, 0, 5])), Option(129, bytes([10, 8, 0, 1])), Option(131, bytes([10, 8, 0, 2]))]
    (third,) = only(wire.ipcp(Code.CONFIGURE_NAK, again.identifier, assigned), PppProtocol.IPCP)
    assert wire.ipcp(Code.CONFIGURE_NAK, first.identifier, [Option(3, bytes([10, 8, 0, 99]))]) == []  # the stale twin
    wire.ipcp(Code.CONFIGURE_REQUEST, 1, [Option(3, bytes([10, 8, 0, 1]))])
    wire.ipcp(Code.CONFIGURE_ACK, third.identifier, parse_options(third.data))
    plans = [e.plan for e in wire.events if isinstance(e, LinkConfigured)]
    assert [p.address for p in plans] == [IPv4Address("10.8.0.5")]


def test_r1_from_a_server_that_never_takes_a_retry_still_ends_with_the_refusal() -> None:
    """pppd as a server answers every bad MS-CHAPv2 Response with "E=691 R=1 C=<same challenge>
    V=0" and then terminates LCP (it never accepts a retried Response). The user must read that
    the password was refused, not that the server ended the PPP session."""

    class PppdLike(ScriptedServer):
        def _mschapv2_failure(self) -> bytes:
            return b"E=691 R=1 C=" + self.config.challenge.hex().upper().encode() + b" V=0"

    conversation = Conversation(settings(password="wrong"), PppdLike(ServerConfig())).start()
    assert conversation.of_type(PasswordRetryRequested) == [PasswordRetryRequested(REFUSED)]
    conversation.advance(10.0)
    assert only_disconnect(conversation) == Failure(Layer.AUTH, REFUSED, FailureKind.AUTHENTICATION)
    assert conversation.server.call_connected_count == 0


def test_a_packet_too_long_for_one_sstp_packet_is_never_sent_and_never_raises() -> None:
    """A 5000-byte user name makes an MS-CHAPv2 Response that no SSTP packet can carry (the
    12-bit length): the engine drops it with a warning instead of raising out of the driver."""
    long_name = replace(settings(), credentials=Credentials("u" * 5000, PASSWORD))
    conversation = converse(long_name)
    warnings = [e.message for e in conversation.of_type(LogRecord) if e.level == 30]
    assert any("Dropped an outgoing CHAP packet of" in line and "at most 4087" in line for line in warnings), warnings
    assert conversation.server.problems == []
    assert not any(protocol == PppProtocol.CHAP for protocol, _ in conversation.server.frames_received)


def test_mschapv2_success_without_any_message_is_accepted() -> None:
    """MikroTik's Success carries only "S=<40 hex>", no " M=": the proof is all that counts."""
    wire = Wire()
    wire.ack_client_lcp()
    wire.lcp(Code.CONFIGURE_REQUEST, 1, [Option(3, b"\xc2\x23\x81")])
    sent = finish_mschapv2(wire, message=b"")
    assert [s.message_type for s in sent if s.protocol == "control"] == [MessageType.CALL_CONNECTED]
    assert wire.engine.security == SessionSecurity("MS-CHAPv2", "SHA-256", keyed=True)
    assert not any(isinstance(e, LogRecord) and e.message.startswith("Message from the server") for e in wire.events)
