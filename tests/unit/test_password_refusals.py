"""Which sign-in failures are a refused password (Failure.password_refused), so that the tray asks
for it again: MS-CHAPv2 error 691, a PAP Nak, a CHAP Failure, EAP-MSCHAPv2 / EAP-MD5 inside EAP or
PEAP. Not a refused certificate (EAP-TLS), a disabled or expired account, or no method both sides
allow: asking for the password again cannot help there."""

from __future__ import annotations

import pytest

from sstpvpn.client.core import peap
from sstpvpn.client.core.auth import AuthPolicy, ChapMd5Client, EapClient, MsChapV2Client
from sstpvpn.client.core.eap_tls import EapTls, TlsMethod, TlsMethodSettings
from sstpvpn.client.core.events import Credentials
from sstpvpn.client.core.ppp_codec import encode_packet
from sstpvpn.client.core.types import Failure, FailureKind, Layer
from tests.unit.test_auth import (
    ALL_ALLOWED,
    CREDENTIALS,
    EAP_FAILURE,
    EAP_MSCHAPV2_CHALLENGE,
    eap,
    eap_mschapv2_request,
    md5_challenge,
    started_mschapv2,
    started_pap,
)
from tests.unit.test_engine_playbook import CHAP_MD5, EAP, PAP, converse, only_disconnect, settings


def test_the_flag_is_a_hint_that_does_not_change_what_the_failure_is():
    plain = Failure(Layer.AUTH, "refused", FailureKind.AUTHENTICATION)
    assert not plain.password_refused
    assert Failure(Layer.AUTH, "refused", FailureKind.AUTHENTICATION, password_refused=True) == plain


@pytest.mark.parametrize(
    ("message", "password"),
    [
        (b"E=691 R=0 C=00000000000000000000000000000000 V=3 M=Authentication failure", True),
        (b"", True),  # no code at all: the plain refusal
        (b"E=646 R=0 V=3", False),  # not at this time of day
        (b"E=647 R=0 V=3", False),  # account disabled
        (b"E=648 R=0 V=3", False),  # password expired: the same password again cannot help
        (b"E=649 R=0 V=3", False),  # no dial-in permission
        (b"E=709 R=0 V=3", False),
    ],
)
def test_mschapv2_failure_codes(message, password):
    machine = started_mschapv2()
    machine.receive(encode_packet(4, 1, message), 2.0)
    assert isinstance(machine.outcome, Failure) and machine.outcome.kind is FailureKind.AUTHENTICATION
    assert machine.outcome.password_refused is password


def test_a_retry_the_user_declined_is_not_asked_again():
    machine: MsChapV2Client = started_mschapv2()
    machine.receive(encode_packet(4, 1, b"E=691 R=1 C=" + b"00" * 16 + b" V=3"), 2.0)
    assert machine.outcome is None and machine.retry_prompt is not None
    machine.retry_with(None)  # the user pressed Cancel in the prompt already
    assert isinstance(machine.outcome, Failure) and not machine.outcome.password_refused


def test_pap_nak_is_a_refused_password_but_not_its_timeout():
    machine = started_pap()
    machine.receive(encode_packet(3, 1, b"\x00"), 101.0)
    assert isinstance(machine.outcome, Failure) and machine.outcome.password_refused
    silent = started_pap()
    for second in range(1, 40):
        silent.handle_timer(100.0 + 3 * second)
    assert isinstance(silent.outcome, Failure) and not silent.outcome.password_refused


def test_chap_md5_failure_is_a_refused_password():
    machine = ChapMd5Client(CREDENTIALS, ALL_ALLOWED)
    machine.receive(md5_challenge(), 1.0)
    machine.receive(encode_packet(4, 7, b"Wrong secret"), 1.0)
    assert isinstance(machine.outcome, Failure) and machine.outcome.password_refused


def test_eap_mschapv2_691_and_eap_md5_failure_are_refused_passwords():
    machine = eap()
    machine.receive(EAP_MSCHAPV2_CHALLENGE, 1.0)
    machine.receive(eap_mschapv2_request(3, 4, b"E=691 R=0 V=3"), 2.0)
    assert isinstance(machine.outcome, Failure) and machine.outcome.password_refused
    expired = eap()
    expired.receive(EAP_MSCHAPV2_CHALLENGE, 1.0)
    expired.receive(eap_mschapv2_request(3, 4, b"E=648 R=0 V=3"), 2.0)
    assert isinstance(expired.outcome, Failure) and not expired.outcome.password_refused
    md5 = eap(ALL_ALLOWED)
    md5.receive(encode_packet(1, 3, bytes((4, 16)) + bytes(16) + b"srv"), 1.0)
    md5.receive(EAP_FAILURE, 2.0)
    assert isinstance(md5.outcome, Failure) and md5.outcome.password_refused


def test_eap_failure_before_any_answer_or_for_an_unsupported_method_is_not_the_password():
    identity_only = eap()
    identity_only.receive(encode_packet(1, 1, b"\x01"), 1.0)
    identity_only.receive(EAP_FAILURE, 2.0)
    assert isinstance(identity_only.outcome, Failure) and not identity_only.outcome.password_refused
    unsupported = eap()
    unsupported.receive(encode_packet(1, 5, bytes((13, 0x20))), 1.0)  # EAP-TLS Start, not allowed here
    unsupported.receive(EAP_FAILURE, 2.0)
    assert isinstance(unsupported.outcome, Failure) and "does not support" in unsupported.outcome.reason
    assert not unsupported.outcome.password_refused


class _EstablishedTunnel:
    established = True


def _tls_client(method: TlsMethod) -> EapClient:
    return EapClient(Credentials("alice", "pw"), AuthPolicy(tls_method=TlsMethodSettings(method, server_name="radius.example.com")))


def test_eap_tls_certificate_refusal_is_not_the_password():
    client = _tls_client(TlsMethod.EAP_TLS)
    tunnel = EapTls(TlsMethodSettings(TlsMethod.EAP_TLS, server_name="radius.example.com"))
    tunnel._sent_certificate = True  # the handshake got as far as our certificate
    client._tunnel = tunnel
    client.receive(EAP_FAILURE, 2.0)
    assert isinstance(client.outcome, Failure) and "refused your certificate" in client.outcome.reason
    assert client.outcome.kind is FailureKind.AUTHENTICATION and not client.outcome.password_refused


def test_peap_refusal_inside_the_tunnel_is_the_password_but_not_before_it():
    client = _tls_client(TlsMethod.PEAP)
    method = peap.Peap(TlsMethodSettings(TlsMethod.PEAP, server_name="radius.example.com"), Credentials("alice", "pw"), rng=lambda n: bytes(n))
    method._tls = _EstablishedTunnel()  # type: ignore[assignment]
    client._tunnel = method
    client.receive(EAP_FAILURE, 2.0)
    assert isinstance(client.outcome, Failure) and client.outcome.password_refused
    early = _tls_client(TlsMethod.PEAP)
    early._tunnel = peap.Peap(TlsMethodSettings(TlsMethod.PEAP, server_name="radius.example.com"), Credentials("alice", "pw"), rng=lambda n: bytes(n))
    early.receive(EAP_FAILURE, 2.0)
    assert isinstance(early.outcome, Failure) and not early.outcome.password_refused


@pytest.mark.parametrize(
    ("engine_settings", "methods"),
    [
        (settings(password="wrong"), None),
        (settings(password="wrong"), (EAP, EAP)),
        (settings(allow_pap=True, password="wrong"), (PAP, PAP)),
        (settings(allow_chap_md5=True, password="wrong"), (CHAP_MD5, CHAP_MD5)),
    ],
    ids=["mschapv2", "eap-mschapv2", "pap", "chap-md5"],
)
def test_the_engine_ends_a_wrong_password_session_with_the_flag(engine_settings, methods):
    conversation = converse(engine_settings, **({"methods": methods} if methods else {}))
    failure = only_disconnect(conversation)
    assert failure is not None and failure.where is Layer.AUTH and failure.password_refused


def test_no_method_both_sides_allow_is_not_the_password():
    from sstpvpn.client.core.sstp_codec import MessageType

    conversation = converse(methods=(PAP,))
    conversation.server.send_control(MessageType.CALL_DISCONNECT)
    conversation.pump()
    failure = only_disconnect(conversation)
    assert failure is not None and "offers only PAP" in failure.reason and not failure.password_refused
