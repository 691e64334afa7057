"""EngineSettings.authenticate_only, against the scripted server: the sign-in check of `diagnose`
and the editor's Test. Success ends politely right after Call Connected, before any IPCP; a
refusal is the usual Failure."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

from sstpvpn.client.core.events import LinkConfigured, PasswordRetryRequested, SignedIn, StateChanged
from sstpvpn.client.core.ppp_codec import Code, PppProtocol
from sstpvpn.client.core.sstp_codec import MessageType
from sstpvpn.client.core.types import Failure, FailureKind, Layer, State
from tests.unit.scripted_server import EAP, MSCHAPV2, Conversation, ScriptedServer, ServerConfig, engine_settings

REFUSED = "The server refused the user name or password. Check them and try again."


def signed_in_only(password: str = "correct horse battery", **server: object) -> Conversation:
    settings = replace(engine_settings(password=password), authenticate_only=True, dhcp_inform=False)
    return Conversation(settings, ScriptedServer(ServerConfig(**server))).start()  # type: ignore[arg-type]


def test_success_stops_after_call_connected_and_disconnects_before_ipcp() -> None:
    conversation = signed_in_only(methods=(MSCHAPV2,))
    server = conversation.server
    assert conversation.of_type(SignedIn) == [SignedIn("alice", "MS-CHAPv2")]
    # The crypto binding went out and checked out: the server saw a complete sign-in.
    assert server.call_connected_count == 1 and server.binding is not None and server.binding.ok
    # Then PPP was terminated and the call disconnected, in that order, and nothing else.
    assert server.lcp_terminate_requests == 1
    ends = [
        entry for entry in server.wire_log if entry in (("ppp", PppProtocol.LCP, Code.TERMINATE_REQUEST), ("control", MessageType.CALL_DISCONNECT))
    ]
    assert ends == [("ppp", PppProtocol.LCP, Code.TERMINATE_REQUEST), ("control", MessageType.CALL_DISCONNECT)]
    assert server.wire_log.index(("control", MessageType.CALL_CONNECTED)) < server.wire_log.index(ends[0])
    # No IPCP (nor IPV6CP) was ever sent: no address was asked for, no plan was made.
    assert not [protocol for protocol, _ in server.frames_received if protocol in (PppProtocol.IPCP, PppProtocol.IPV6CP)]
    assert server.ipcp_requests == [] and conversation.plans == []
    assert not conversation.of_type(LinkConfigured)
    assert StateChanged(State.CONFIGURING) not in conversation.events
    # A clean end, like a user's disconnect.
    assert [event.failure for event in conversation.disconnected] == [None]
    assert conversation.engine.closed and conversation.engine.get_timer() is None
    assert server.problems == []


def test_success_with_eap_names_the_inner_method() -> None:
    conversation = signed_in_only(methods=(EAP, EAP))
    assert conversation.of_type(SignedIn) == [SignedIn("alice", "EAP-MSCHAPv2")]
    assert conversation.server.ipcp_requests == []
    assert [event.failure for event in conversation.disconnected] == [None]


def test_a_server_sending_ipcp_with_the_success_gets_no_answer() -> None:
    # pppd sends its IPCP request with the authentication Success: still no IPCP from us.
    conversation = signed_in_only(methods=(MSCHAPV2,), ipcp_request_with_success=True)
    assert conversation.of_type(SignedIn)
    assert not [protocol for protocol, _ in conversation.server.frames_received if protocol == PppProtocol.IPCP]
    assert [event.failure for event in conversation.disconnected] == [None]


def test_server_that_never_acks_the_terminate_still_ends_cleanly() -> None:
    conversation = signed_in_only(methods=(MSCHAPV2,), silent_after="connected")
    assert conversation.of_type(SignedIn)
    assert not conversation.disconnected  # waiting for the Terminate-Ack
    conversation.advance(60.0)  # LCP's restart timer gives up, then Call Disconnect, its wait
    assert [event.failure for event in conversation.disconnected] == [None]
    assert conversation.server.control_received[-1] == MessageType.CALL_DISCONNECT


def test_refused_password_691_is_the_usual_refusal() -> None:
    conversation = signed_in_only(password="wrong", methods=(MSCHAPV2,))
    server = conversation.server
    assert server.auth_failed and server.call_connected_count == 0
    assert conversation.of_type(SignedIn) == []
    assert [event.failure for event in conversation.disconnected] == [Failure(Layer.AUTH, REFUSED, FailureKind.AUTHENTICATION)]
    assert server.control_received[-1] == MessageType.CALL_DISCONNECT


def test_a_retry_offer_answered_with_none_ends_with_the_refusal() -> None:
    conversation = signed_in_only(password="wrong", methods=(MSCHAPV2,), mschapv2_retries=1)
    assert conversation.of_type(PasswordRetryRequested)
    conversation.engine.retry_password(None, conversation.now)
    conversation.pump()
    failures = [event.failure for event in conversation.disconnected]
    assert len(failures) == 1 and failures[0] is not None and failures[0].kind is FailureKind.AUTHENTICATION
    assert conversation.of_type(SignedIn) == []


def test_without_the_option_the_session_goes_on_to_ipcp() -> None:
    # The control: the same server, a normal session, configures IPv4 and says nothing of SignedIn.
    conversation = Conversation(replace(engine_settings(), dhcp_inform=False), ScriptedServer(ServerConfig(methods=(MSCHAPV2,)))).start()
    assert conversation.of_type(SignedIn) == []
    assert [plan.address for plan in conversation.plans] == [IPv4Address("198.18.30.10")]
    assert conversation.server.lcp_terminate_requests == 0
