"""The authenticatee machines: exact bytes of every packet for a fixed rng, exact sentences,
the HLAK, and no exception for any input."""

import hashlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sstpvpn.client.core import auth, mschapv2
from sstpvpn.client.core.auth import (
    AuthMethod,
    AuthPolicy,
    AuthSucceeded,
    ChapMd5Client,
    EapClient,
    MsChapV2Client,
    PapClient,
    make_authenticatee,
)
from sstpvpn.client.core.crypto_binding import hlak_from_master_keys
from sstpvpn.client.core.events import Credentials
from sstpvpn.client.core.ppp_codec import PppProtocol, encode_packet, parse_packet
from sstpvpn.client.core.types import Failure, FailureKind, Layer

h = bytes.fromhex

# RFC 2759 9.2 inputs and the values derived from them (see test_mschapv2.py).
USERNAME = "User"
PASSWORD = "clientPass"
AUTHENTICATOR_CHALLENGE = h("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = h("21402324255E262A28295F2B3A337C7E")
NT_RESPONSE = h("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
SUCCESS_MESSAGE = b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=Access granted"
HLAK = h("D5F0E9521E3EA9589645E86051C82226 8B7CDC149B993A1BA118CB153F56DCCB")
CREDENTIALS = Credentials(USERNAME, PASSWORD)
ALL_ALLOWED = AuthPolicy(allow_pap=True, allow_chap_md5=True)


class ScriptedRng:
    """Hands out the given chunks in order; the test fails if more is asked than scripted."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    def __call__(self, size: int) -> bytes:
        chunk = self.chunks.pop(0)
        assert len(chunk) == size
        return chunk


def failure(reason: str, kind: FailureKind) -> Failure:
    return Failure(Layer.AUTH, reason, kind)


def assert_no_secret_in_logs(machine, logs, password=PASSWORD):
    text = "\n".join(logs) + repr(machine) + repr(machine.outcome)
    assert password not in text
    for secret in (NT_RESPONSE, HLAK, h("44EBBA8D5312B8D611474411F56989AE")):
        assert secret.hex() not in text.lower()


# --- method, policy, factory -------------------------------------------------------------------


def test_method_option_data_and_protocols():
    assert AuthMethod.PAP.option_data == b"\xc0\x23"
    assert AuthMethod.CHAP_MD5.option_data == b"\xc2\x23\x05"
    assert AuthMethod.MSCHAPV2.option_data == b"\xc2\x23\x81"
    assert AuthMethod.EAP.option_data == b"\xc2\x27"
    assert [m.protocol for m in AuthMethod] == [PppProtocol.PAP, PppProtocol.CHAP, PppProtocol.CHAP, PppProtocol.EAP]
    for method in AuthMethod:
        assert AuthMethod.from_option_data(method.option_data) is method
    assert AuthMethod.from_option_data(bytearray(b"\xc2\x23\x81")) is AuthMethod.MSCHAPV2
    assert AuthMethod.from_option_data(b"\xc2\x23\x80") is None  # MS-CHAP v1
    assert AuthMethod.from_option_data(b"\xc2\x23") is None
    assert AuthMethod.from_option_data(b"") is None


def test_policy_preference_order():
    assert AuthPolicy().allowed_methods() == [AuthMethod.MSCHAPV2, AuthMethod.EAP]
    assert ALL_ALLOWED.allowed_methods() == [AuthMethod.MSCHAPV2, AuthMethod.EAP, AuthMethod.CHAP_MD5, AuthMethod.PAP]
    assert AuthPolicy(allow_pap=True).allowed_methods()[-1] is AuthMethod.PAP


def test_factory_builds_each_machine_and_refuses_disallowed_methods():
    expected = {AuthMethod.PAP: PapClient, AuthMethod.CHAP_MD5: ChapMd5Client, AuthMethod.MSCHAPV2: MsChapV2Client, AuthMethod.EAP: EapClient}
    for method, cls in expected.items():
        machine = make_authenticatee(method, CREDENTIALS, ALL_ALLOWED)
        assert type(machine) is cls and machine.method is method and machine.protocol == method.protocol
        assert machine.outcome is None
    with pytest.raises(ValueError):
        make_authenticatee(AuthMethod.PAP, CREDENTIALS, AuthPolicy())
    with pytest.raises(ValueError):
        make_authenticatee(AuthMethod.CHAP_MD5, CREDENTIALS, AuthPolicy(allow_pap=True))


def test_succeeded_repr_hides_the_key():
    assert HLAK.hex() not in repr(AuthSucceeded(HLAK)).lower()


# --- PAP ---------------------------------------------------------------------------------------

PAP_REQUEST_1 = h("01 01 00 14 04") + b"User" + b"\x0a" + b"clientPass"


def started_pap(now=100.0) -> PapClient:
    machine = PapClient(CREDENTIALS, ALL_ALLOWED)
    machine.start(now)
    return machine


def test_pap_sends_its_request_at_start():
    machine = started_pap()
    assert machine.take_output() == [PAP_REQUEST_1]
    assert machine.take_output() == []
    assert machine.get_timer() == 103.0


def test_pap_retransmits_with_a_new_identifier_then_gives_up():
    machine = started_pap()
    machine.take_output()
    machine.handle_timer(102.9)
    assert machine.take_output() == []
    for attempt in range(2, 11):
        now = 100.0 + 3 * (attempt - 1)
        machine.handle_timer(now)
        assert machine.take_output() == [h(f"01 {attempt:02x} 00 14 04") + b"User\x0aclientPass"]
        assert machine.get_timer() == now + 3
    machine.handle_timer(130.0)
    assert machine.take_output() == []
    assert machine.outcome == failure(auth.pap_timeout_sentence(), FailureKind.AUTHENTICATION)
    assert auth.pap_timeout_sentence().startswith("The server did not answer the PAP login")
    assert machine.get_timer() is None


def test_pap_ack_of_an_earlier_request_succeeds_with_a_zero_hlak():
    machine = started_pap()
    machine.handle_timer(103.0)  # request 2 goes out
    machine.receive(h("02 01 00 05 00"), 104.0)
    assert machine.outcome == AuthSucceeded(bytes(32))
    assert machine.get_timer() is None


def test_pap_ignores_replies_to_requests_it_never_sent():
    machine = started_pap()
    machine.receive(h("02 09 00 05 00"), 101.0)
    machine.receive(h("01 01 00 05 00"), 101.0)  # a request: we are not the authenticator
    assert machine.outcome is None
    assert len(machine.take_logs()) == 3  # the request sent, two ignored packets


def test_pap_nak_quotes_a_printable_server_message():
    machine = started_pap()
    machine.receive(h("03 01 00 1F 1A") + b"Account locked until 18:00" + b"pad", 101.0)
    reason = 'The server refused the user name or password ("Account locked until 18:00"). Check them and try again.'
    assert machine.outcome == failure(reason, FailureKind.AUTHENTICATION)
    assert machine.take_messages() == ["Account locked until 18:00"]


def test_pap_nak_with_a_message_that_only_repeats_the_refusal():
    machine = started_pap()
    machine.receive(h("03 01 00 1A 15") + b"Authentication failed" + b"pad", 101.0)
    assert machine.outcome == failure(auth.refused_sentence(), FailureKind.AUTHENTICATION)
    assert machine.take_messages() == ["Authentication failed"]  # still logged for the user


@pytest.mark.parametrize("data", [h("00"), b"", h("05 41"), h("03 00 01 02")])
def test_pap_nak_without_a_usable_message(data):
    machine = started_pap()
    machine.receive(encode_packet(3, 1, data), 101.0)
    assert machine.outcome == failure(auth.refused_sentence(), FailureKind.AUTHENTICATION)
    assert auth.refused_sentence() == "The server refused the user name or password. Check them and try again."


def test_pap_refuses_credentials_longer_than_255_bytes():
    machine = PapClient(Credentials("u" * 256, PASSWORD), ALL_ALLOWED)
    machine.start(0.0)
    assert machine.take_output() == []
    assert machine.outcome == failure(auth.pap_too_long_sentence(), FailureKind.AUTHENTICATION)


def test_pap_logs_no_password():
    machine = started_pap()
    machine.handle_timer(103.0)
    machine.receive(h("03 02 00 05 00"), 104.0)
    assert_no_secret_in_logs(machine, machine.take_logs())


# --- CHAP-MD5 ----------------------------------------------------------------------------------

MD5_CHALLENGE = h("0102030405060708090A0B0C0D0E0F10")


def md5_challenge(identifier=7, value=MD5_CHALLENGE, name=b"server") -> bytes:
    return encode_packet(1, identifier, bytes((len(value),)) + value + name)


def md5_response(identifier=7, value=MD5_CHALLENGE) -> bytes:
    digest = hashlib.md5(bytes((identifier,)) + PASSWORD.encode() + value).digest()
    return bytes((2, identifier, 0, 4 + 1 + 16 + 4, 16)) + digest + b"User"


def test_chap_md5_answers_and_succeeds():
    machine = ChapMd5Client(CREDENTIALS, ALL_ALLOWED)
    machine.start(0.0)
    assert machine.take_output() == []
    machine.receive(md5_challenge(), 1.0)
    assert machine.take_output() == [md5_response()]
    machine.receive(h("03 07 00 04"), 1.0)
    assert machine.outcome == AuthSucceeded(bytes(32))
    assert_no_secret_in_logs(machine, machine.take_logs())


def test_chap_md5_response_bytes_for_a_known_input():
    # MD5(0x07 || "clientPass" || 01..10), computed once and pinned.
    machine = ChapMd5Client(CREDENTIALS, ALL_ALLOWED)
    machine.receive(md5_challenge(), 1.0)
    (response,) = machine.take_output()
    assert response[:5] == h("02 07 00 19 10")
    assert response[5:21] == hashlib.md5(b"\x07clientPass" + MD5_CHALLENGE).digest()
    assert response[21:] == b"User"


def test_chap_md5_repeated_challenge_gets_the_same_response():
    machine = ChapMd5Client(CREDENTIALS, ALL_ALLOWED)
    machine.receive(md5_challenge(), 1.0)
    machine.receive(md5_challenge(), 4.0)
    assert machine.take_output() == [md5_response(), md5_response()]


def test_chap_md5_failure_and_verdicts_for_other_identifiers():
    machine = ChapMd5Client(CREDENTIALS, ALL_ALLOWED)
    machine.receive(h("03 07 00 04"), 0.5)  # Success before any challenge: ignored
    machine.receive(md5_challenge(), 1.0)
    machine.receive(h("04 08 00 04"), 1.0)  # not our identifier: ignored
    assert machine.outcome is None
    machine.receive(h("04 07 00 10") + b"Wrong secret", 1.0)
    assert machine.outcome == failure(auth.refused_sentence(), FailureKind.AUTHENTICATION)
    machine.receive(h("03 07 00 04"), 1.0)  # too late to change anything
    assert machine.outcome == failure(auth.refused_sentence(), FailureKind.AUTHENTICATION)


def test_chap_md5_answers_a_rechallenge_after_success():
    machine = ChapMd5Client(CREDENTIALS, ALL_ALLOWED)
    machine.receive(md5_challenge(), 1.0)
    machine.receive(h("03 07 00 04"), 1.0)
    machine.receive(md5_challenge(identifier=8), 60.0)
    assert machine.take_output() == [md5_response(), md5_response(identifier=8)]
    assert machine.outcome == AuthSucceeded(bytes(32))


@pytest.mark.parametrize("data", [b"", h("00") + b"name", h("10 01 02 03")])
def test_chap_md5_malformed_challenge_is_a_protocol_failure(data):
    machine = ChapMd5Client(CREDENTIALS, ALL_ALLOWED)
    machine.receive(encode_packet(1, 7, data), 1.0)
    assert machine.take_output() == []
    assert machine.outcome == failure(auth.malformed_challenge_sentence("CHAP"), FailureKind.PROTOCOL)


# --- MS-CHAPv2 ---------------------------------------------------------------------------------


def mschapv2_challenge(identifier=1, value=AUTHENTICATOR_CHALLENGE, name=b"rras") -> bytes:
    return encode_packet(1, identifier, bytes((len(value),)) + value + name)


MSCHAPV2_RESPONSE = h("02 01 00 3A 31") + PEER_CHALLENGE + bytes(8) + NT_RESPONSE + h("00") + b"User"


def started_mschapv2(credentials=CREDENTIALS) -> MsChapV2Client:
    machine = MsChapV2Client(credentials, AuthPolicy(), ScriptedRng(PEER_CHALLENGE))
    machine.start(0.0)
    machine.receive(mschapv2_challenge(), 1.0)
    return machine


def test_mschapv2_response_bytes():
    machine = started_mschapv2()
    assert machine.take_output() == [MSCHAPV2_RESPONSE]


def test_mschapv2_success_checks_the_proof_and_yields_the_master_keys():
    machine = started_mschapv2()
    machine.receive(encode_packet(3, 1, SUCCESS_MESSAGE), 2.0)
    assert machine.outcome == AuthSucceeded(HLAK)
    assert_no_secret_in_logs(machine, machine.take_logs())


def test_mschapv2_success_accepts_lower_case_hex():
    machine = started_mschapv2()
    machine.receive(encode_packet(3, 1, b"S=407a5589115fd0d6209f510fe9c04566932cda56"), 2.0)
    assert machine.outcome == AuthSucceeded(HLAK)


@pytest.mark.parametrize(
    "message",
    [
        b"S=407A5589115FD0D6209F510FE9C04566932CDA57 M=Access granted",
        b"M=Access granted",
        b"",
        b"S=407A5589115FD0D6209F510FE9C04566932CDA",
        b"S=407A5589115FD0D6209F510FE9C04566932CDAXY",
    ],
)
def test_mschapv2_success_without_a_valid_proof_is_an_impostor(message):
    machine = started_mschapv2()
    machine.receive(encode_packet(3, 1, message), 2.0)
    assert machine.outcome == failure(auth.impostor_sentence(), FailureKind.PROTOCOL)
    assert auth.impostor_sentence().startswith(
        "The server could not prove it knows your password (bad MS-CHAPv2 authenticator response): it may be an impostor."
    )


def test_mschapv2_verdicts_before_a_response_or_for_another_identifier_are_ignored():
    machine = MsChapV2Client(CREDENTIALS, AuthPolicy(), ScriptedRng(PEER_CHALLENGE))
    machine.receive(encode_packet(3, 1, SUCCESS_MESSAGE), 0.5)
    machine.receive(mschapv2_challenge(), 1.0)
    machine.receive(encode_packet(3, 2, SUCCESS_MESSAGE), 2.0)
    machine.receive(encode_packet(4, 2, b"E=691 R=0"), 2.0)
    assert machine.outcome is None


def test_mschapv2_repeated_challenge_gets_the_same_response():
    machine = started_mschapv2()  # the rng holds one peer challenge only
    machine.receive(mschapv2_challenge(), 4.0)
    assert machine.take_output() == [MSCHAPV2_RESPONSE, MSCHAPV2_RESPONSE]
    machine.receive(encode_packet(3, 1, SUCCESS_MESSAGE), 5.0)
    assert machine.outcome == AuthSucceeded(HLAK)


def test_mschapv2_ignores_new_challenges_after_success():
    machine = started_mschapv2()
    machine.receive(encode_packet(3, 1, SUCCESS_MESSAGE), 2.0)
    machine.take_output()
    machine.receive(mschapv2_challenge(identifier=2), 60.0)
    assert machine.take_output() == []
    assert machine.outcome == AuthSucceeded(HLAK)


FAILURE_CASES = [
    (b"E=691 R=0 C=00000000000000000000000000000000 V=3 M=Authentication failure", auth.refused_sentence()),
    (b"E=646 R=0 V=3", auth.mschapv2_errors()[646]),
    (b"E=647 R=0 V=3", "The server refused the login because your account is disabled. Ask your administrator to enable it."),
    (
        b"E=648 R=0 V=3",
        "The server refused the login because the password has expired. Change it (for example by signing in "
        "to a computer of your organisation, or with your administrator's help), then connect again.",
    ),
    (
        b"E=649 R=0 V=3",
        "The server refused the login because your account has no dial-in permission. Ask your administrator to allow remote access for it.",
    ),
    (b"E=709 R=0 V=3", auth.mschapv2_errors()[709]),
    (
        b"E=123 R=0 V=3",
        "The server refused the login with MS-CHAPv2 error 123. Check the user name and password, or ask your administrator what the error means.",
    ),
    (b"E=", auth.refused_sentence()),
    (b"", auth.refused_sentence()),
    (b"E=69x1 R=0", auth.refused_sentence()),
]


@pytest.mark.parametrize(("message", "reason"), FAILURE_CASES)
def test_mschapv2_failure_codes(message, reason):
    machine = started_mschapv2()
    machine.receive(encode_packet(4, 1, message), 2.0)
    assert machine.outcome == failure(reason, FailureKind.AUTHENTICATION)


def test_mschapv2_domain_name_is_sent_whole_but_hashed_without_the_domain():
    machine = started_mschapv2(Credentials("DOMAIN\\User", PASSWORD))
    (response,) = machine.take_output()
    assert response == h("02 01 00 41 31") + PEER_CHALLENGE + bytes(8) + NT_RESPONSE + h("00") + b"DOMAIN\\User"
    machine.receive(encode_packet(3, 1, SUCCESS_MESSAGE), 2.0)
    assert machine.outcome == AuthSucceeded(HLAK)


def test_mschapv2_unicode_password():
    password = "pässwörd\U0001f600"
    machine = started_mschapv2(Credentials(USERNAME, password))
    (response,) = machine.take_output()
    assert response[29:53] == h("416a9de24e8f1174b019804631f58f968b23ec9897d73284")  # from OpenSSL, see test_mschapv2
    assert_no_secret_in_logs(machine, machine.take_logs(), password)


@pytest.mark.parametrize("value", [bytes(8), bytes(17), b""])
def test_mschapv2_challenge_of_the_wrong_size_is_a_protocol_failure(value):
    machine = MsChapV2Client(CREDENTIALS, AuthPolicy(), ScriptedRng())
    machine.receive(mschapv2_challenge(value=value), 1.0)
    assert machine.take_output() == []
    assert machine.outcome == failure(auth.malformed_challenge_sentence("MS-CHAPv2"), FailureKind.PROTOCOL)


@pytest.mark.parametrize("information", [b"", h("01"), h("01 01 00"), h("01 01 00 03"), h("01 01 00 30 10")])
def test_mschapv2_unparseable_packets_are_dropped_with_a_log_line(information):
    machine = MsChapV2Client(CREDENTIALS, AuthPolicy(), ScriptedRng())
    machine.receive(information, 1.0)
    assert machine.outcome is None and machine.take_output() == []
    (line,) = machine.take_logs()
    assert line.startswith("MSCHAPV2: dropped a malformed MSCHAPV2 packet")


# --- EAP ---------------------------------------------------------------------------------------


def eap_mschapv2_request(identifier: int, opcode: int, body: bytes, ms_identifier=0x42) -> bytes:
    ms = bytes((opcode, ms_identifier)) + struct.pack("!H", 4 + len(body)) + body
    return encode_packet(1, identifier, b"\x1a" + ms)


EAP_MSCHAPV2_CHALLENGE = eap_mschapv2_request(2, 1, b"\x10" + AUTHENTICATOR_CHALLENGE + b"rras")
EAP_MSCHAPV2_RESPONSE = h("02 02 00 3F 1A 02 42 00 3A 31") + PEER_CHALLENGE + bytes(8) + NT_RESPONSE + h("00") + b"User"
EAP_SUCCESS = h("03 04 00 04")
EAP_FAILURE = h("04 04 00 04")


def eap(policy=AuthPolicy(), rng=None) -> EapClient:
    machine = EapClient(CREDENTIALS, policy, rng or ScriptedRng(PEER_CHALLENGE))
    machine.start(0.0)
    return machine


def test_eap_identity_and_notification():
    machine = eap()
    machine.receive(h("01 01 00 05 01"), 1.0)
    machine.receive(h("01 07 00 0A 02") + b"Hello", 1.0)
    assert machine.take_output() == [h("02 01 00 09 01") + b"User", h("02 07 00 05 02")]


def test_eap_mschapv2_full_exchange():
    machine = eap()
    machine.receive(h("01 01 00 05 01"), 1.0)
    machine.receive(EAP_MSCHAPV2_CHALLENGE, 1.0)
    machine.receive(eap_mschapv2_request(3, 3, SUCCESS_MESSAGE), 2.0)
    assert machine.outcome is None
    machine.receive(EAP_SUCCESS, 2.0)
    assert machine.take_output() == [h("02 01 00 09 01") + b"User", EAP_MSCHAPV2_RESPONSE, h("02 03 00 06 1A 03")]
    assert machine.outcome == AuthSucceeded(HLAK)
    assert_no_secret_in_logs(machine, machine.take_logs())


def test_eap_mschapv2_bad_proof_is_an_impostor_and_gets_no_answer():
    machine = eap()
    machine.receive(EAP_MSCHAPV2_CHALLENGE, 1.0)
    machine.receive(eap_mschapv2_request(3, 3, b"S=0000000000000000000000000000000000000000"), 2.0)
    assert machine.take_output() == [EAP_MSCHAPV2_RESPONSE]
    assert machine.outcome == failure(auth.impostor_sentence(), FailureKind.PROTOCOL)
    machine.receive(EAP_SUCCESS, 2.0)
    assert machine.outcome == failure(auth.impostor_sentence(), FailureKind.PROTOCOL)


@pytest.mark.parametrize(
    ("message", "reason"),
    [(b"E=691 R=0 C=00000000000000000000000000000000 V=3 M=bad", auth.refused_sentence()), (b"E=648 R=0 V=3", auth.mschapv2_errors()[648])],
)
def test_eap_mschapv2_failure_is_acknowledged(message, reason):
    machine = eap()
    machine.receive(EAP_MSCHAPV2_CHALLENGE, 1.0)
    machine.receive(eap_mschapv2_request(3, 4, message), 2.0)
    assert machine.take_output() == [EAP_MSCHAPV2_RESPONSE, h("02 03 00 06 1A 04")]
    assert machine.outcome == failure(reason, FailureKind.AUTHENTICATION)
    machine.receive(EAP_FAILURE, 2.0)
    assert machine.outcome == failure(reason, FailureKind.AUTHENTICATION)


@pytest.mark.parametrize(
    "before",
    [
        [],
        [h("01 01 00 05 01")],
        [EAP_MSCHAPV2_CHALLENGE],  # answered, but the server never proved itself
    ],
)
def test_eap_success_before_a_method_completed_is_refused(before):
    machine = eap()
    for information in before:
        machine.receive(information, 1.0)
    machine.receive(EAP_SUCCESS, 2.0)
    assert machine.outcome == failure(auth.skipped_sentence(), FailureKind.PROTOCOL)


def test_eap_mschapv2_success_opcode_without_a_challenge_is_refused():
    machine = eap()
    machine.receive(eap_mschapv2_request(3, 3, SUCCESS_MESSAGE), 2.0)
    assert machine.take_output() == []
    assert machine.outcome == failure(auth.skipped_sentence(), FailureKind.PROTOCOL)


def test_eap_failure_after_our_answer_is_a_refusal():
    machine = eap()
    machine.receive(EAP_MSCHAPV2_CHALLENGE, 1.0)
    machine.receive(EAP_FAILURE, 2.0)
    assert machine.outcome == failure(auth.refused_sentence(), FailureKind.AUTHENTICATION)


def test_eap_naks_tls_and_explains_the_failure():
    machine = eap()
    machine.receive(h("01 05 00 06 0D 20"), 1.0)  # EAP-TLS Start
    machine.receive(h("01 06 00 06 19 21"), 1.0)  # PEAP Start
    assert machine.take_output() == [h("02 05 00 06 03 1A"), h("02 06 00 06 03 1A")]
    machine.receive(EAP_FAILURE, 2.0)
    reason = (
        "The server requires EAP-TLS, PEAP, which this client does not support; ask the server's administrator to allow MS-CHAPv2 or EAP-MSCHAPv2."
    )
    assert machine.outcome == failure(reason, FailureKind.AUTHENTICATION)


def test_eap_nak_lists_md5_when_allowed():
    machine = eap(ALL_ALLOWED)
    machine.receive(h("01 05 00 06 0D 20"), 1.0)
    assert machine.take_output() == [h("02 05 00 07 03 1A 04")]


def test_eap_md5_is_refused_unless_allowed():
    machine = eap()
    machine.receive(encode_packet(1, 5, b"\x04\x10" + MD5_CHALLENGE + b"srv"), 1.0)
    assert machine.take_output() == [h("02 05 00 06 03 1A")]
    machine.receive(EAP_FAILURE, 2.0)
    assert machine.outcome.kind is FailureKind.AUTHENTICATION
    assert machine.outcome.reason.startswith("The server only offers EAP-MD5, which your profile does not allow")


def test_eap_md5_when_allowed_succeeds_with_a_zero_hlak():
    machine = eap(ALL_ALLOWED)
    machine.receive(encode_packet(1, 5, b"\x04\x10" + MD5_CHALLENGE + b"srv"), 1.0)
    digest = hashlib.md5(b"\x05clientPass" + MD5_CHALLENGE).digest()
    assert machine.take_output() == [h("02 05 00 1A 04 10") + digest + b"User"]
    machine.receive(EAP_SUCCESS, 2.0)
    assert machine.outcome == AuthSucceeded(bytes(32))


def test_eap_md5_malformed_challenge():
    machine = eap(ALL_ALLOWED)
    machine.receive(encode_packet(1, 5, b"\x04\x10\x01"), 1.0)
    assert machine.outcome == failure(auth.malformed_challenge_sentence("EAP-MD5"), FailureKind.PROTOCOL)


def test_eap_duplicate_request_gets_the_original_response():
    machine = eap()  # one peer challenge in the rng: reprocessing would fail the test
    machine.receive(EAP_MSCHAPV2_CHALLENGE, 1.0)
    machine.receive(EAP_MSCHAPV2_CHALLENGE, 4.0)
    machine.receive(h("01 02 00 05 01"), 5.0)  # same identifier, even with other content
    assert machine.take_output() == [EAP_MSCHAPV2_RESPONSE] * 3


@pytest.mark.parametrize(
    "information",
    [
        h("01 01 00 04"),  # request without a type
        h("01 01 00 07 1A 01 42"),  # MS-CHAPv2 header cut short
        h("01 01 00 09 1A 07 42 00 04"),  # change-password opcode: not supported, dropped
        h("02 01 00 05 01"),  # a Response: we are the peer
        h("05 01 00 04"),
        h("01 01 00 09 01"),  # length beyond the data
    ],
)
def test_eap_drops_what_it_cannot_use(information):
    machine = eap()
    machine.receive(information, 1.0)
    assert machine.take_output() == []
    assert machine.outcome is None
    assert len(machine.take_logs()) == 1


def test_eap_mschapv2_bad_challenge_size_is_a_protocol_failure():
    machine = eap()
    machine.receive(eap_mschapv2_request(2, 1, b"\x08" + bytes(8)), 1.0)
    assert machine.outcome == failure(auth.malformed_challenge_sentence("EAP-MSCHAPv2"), FailureKind.PROTOCOL)


def test_eap_requests_after_the_outcome_are_ignored():
    machine = eap()
    machine.receive(EAP_MSCHAPV2_CHALLENGE, 1.0)
    machine.receive(eap_mschapv2_request(3, 3, SUCCESS_MESSAGE), 2.0)
    machine.receive(EAP_SUCCESS, 2.0)
    machine.take_output()
    machine.receive(h("01 09 00 05 01"), 3.0)
    machine.receive(EAP_FAILURE, 3.0)
    assert machine.take_output() == []
    assert machine.outcome == AuthSucceeded(HLAK)


# --- any input ---------------------------------------------------------------------------------

FUZZ_PASSWORD = "fuzz-Secret-\u00e9"


def fuzz_machines():
    credentials = Credentials("DOMAIN\\fuzzer", FUZZ_PASSWORD)
    rng = lambda size: b"\x5a" * size  # noqa: E731 - deterministic for replay
    return [cls(credentials, ALL_ALLOWED, rng) for cls in (PapClient, ChapMd5Client, MsChapV2Client, EapClient)]


well_formed_packets = st.builds(
    lambda code, identifier, data: encode_packet(code, identifier, data),
    st.integers(0, 6),
    st.integers(0, 3),
    st.one_of(
        st.binary(max_size=80),
        st.builds(lambda t, rest: bytes((t,)) + rest, st.sampled_from([1, 2, 3, 4, 13, 26, 254]), st.binary(max_size=60)),
        st.builds(
            lambda op, rest: bytes((26, op, 0x42)) + struct.pack("!H", 4 + len(rest)) + rest,
            st.integers(0, 8),
            st.one_of(st.binary(max_size=60), st.builds(lambda v: b"\x10" + v, st.binary(min_size=16, max_size=30))),
        ),
        st.builds(lambda v: b"\x10" + v, st.binary(min_size=16, max_size=30)),
        st.sampled_from([SUCCESS_MESSAGE, b"E=691 R=0", b"S=", b"E=999999999999", b"\x00", b"\xff" * 5]),
    ),
)
inputs = st.lists(st.one_of(st.binary(max_size=100), well_formed_packets), max_size=12)


@settings(max_examples=300, deadline=None)
@given(inputs)
def test_any_input_never_raises(packets):
    for machine in fuzz_machines():
        machine.start(0.0)
        for step, information in enumerate(packets):
            machine.receive(information, float(step))
            machine.handle_timer(float(step) * 4)
            for sent in machine.take_output():
                parse_packet(sent)  # everything we send is well formed
        timer = machine.get_timer()
        assert timer is None or isinstance(timer, float)
        outcome = machine.outcome
        assert outcome is None or isinstance(outcome, (AuthSucceeded, Failure))
        if isinstance(outcome, AuthSucceeded):
            assert len(outcome.hlak) == 32
        if isinstance(outcome, Failure):
            assert outcome.where == "auth" and outcome.reason
        assert FUZZ_PASSWORD not in "\n".join(machine.take_logs())


# --- server messages and MS-CHAPv2 retry (issue 13) ----------------------------------------------


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (b"Welcome", "Welcome"),
        (b"  two\r\nlines\x00 \x1b[31mred ", "two lines [31mred"),  # control characters go
        (b"\xff\xfeoops", "\ufffd\ufffdoops"),  # not UTF-8: shown, not dropped
        (b"x" * 300, "x" * 200 + "…"),
        (b"\r\n\t", None),
        (b"", None),
    ],
)
def test_server_messages_are_cleaned_and_capped(data, shown):
    assert auth.server_message(data) == shown


def test_pap_ack_with_a_message_shows_it():
    machine = started_pap()
    machine.receive(h("02 01 00 0D 08") + b"Login ok", 101.0)
    assert machine.outcome == AuthSucceeded(bytes(32))
    assert machine.take_messages() == ["Login ok"]


def test_chap_md5_failure_message_is_quoted_when_it_tells_more():
    machine = ChapMd5Client(CREDENTIALS, ALL_ALLOWED)
    machine.receive(md5_challenge(), 1.0)
    machine.receive(encode_packet(4, 7, b"Your account expired on 2026-01-01"), 1.0)
    reason = 'The server refused the user name or password ("Your account expired on 2026-01-01"). Check them and try again.'
    assert machine.outcome == failure(reason, FailureKind.AUTHENTICATION)


def test_mschapv2_success_without_m_is_accepted_and_a_message_is_shown():
    machine = started_mschapv2()
    machine.receive(encode_packet(3, 1, SUCCESS_MESSAGE[:42]), 2.0)  # MikroTik: no " M=..."
    assert machine.outcome == AuthSucceeded(HLAK)
    assert machine.take_messages() == []
    machine = started_mschapv2()
    machine.receive(encode_packet(3, 1, SUCCESS_MESSAGE), 2.0)
    assert machine.take_messages() == ["Access granted"]


def test_mschapv2_failure_message_is_appended_when_it_tells_more():
    machine = started_mschapv2()
    machine.receive(encode_packet(4, 1, b"E=649 R=0 V=3 M=Use the VPN-Users group\x07"), 2.0)
    assert machine.outcome == failure(auth.mschapv2_errors()[649] + ' The server said: "Use the VPN-Users group".', FailureKind.AUTHENTICATION)


NEW_CHALLENGE = h("00112233445566778899AABBCCDDEEFF")
RETRY_FAILURE = b"E=691 R=1 C=" + NEW_CHALLENGE.hex().upper().encode() + b" V=3 M=Authentication failure"


def test_mschapv2_failure_with_r1_waits_for_a_new_password_and_retries_per_rfc_2759():
    peer_challenge_2 = h("0F0E0D0C0B0A09080706050403020100")
    machine = MsChapV2Client(CREDENTIALS, rng=ScriptedRng(PEER_CHALLENGE, peer_challenge_2))
    machine.receive(mschapv2_challenge(identifier=1), 1.0)
    machine.take_output()
    machine.receive(encode_packet(4, 1, RETRY_FAILURE), 2.0)
    assert machine.outcome is None
    assert machine.retry_prompt == auth.refused_sentence()
    assert machine.take_output() == []
    machine.retry_with("newPass")
    (response,) = machine.take_output()
    # A new peer challenge, the server's new challenge, the new password, Identifier + 1.
    nt = mschapv2.nt_response(NEW_CHALLENGE, peer_challenge_2, USERNAME, "newPass")
    assert response == h("02 02 00 3A 31") + peer_challenge_2 + bytes(8) + nt + h("00") + b"User"
    assert machine.retry_prompt is None
    proof = mschapv2.authenticator_response("newPass", nt, peer_challenge_2, NEW_CHALLENGE, USERNAME)
    machine.receive(encode_packet(3, 2, proof + b" M=OK"), 3.0)
    assert machine.outcome == AuthSucceeded(hlak_from_master_keys(mschapv2.client_master_keys("newPass", nt)))


def test_mschapv2_retry_declined_ends_with_the_refusal():
    machine = started_mschapv2()
    machine.take_output()
    machine.receive(encode_packet(4, 1, RETRY_FAILURE), 2.0)
    machine.retry_with(None)
    assert machine.outcome == failure(auth.refused_sentence(), FailureKind.AUTHENTICATION)
    assert machine.take_output() == []


@pytest.mark.parametrize(
    "message",
    [
        b"E=691 R=0 C=" + NEW_CHALLENGE.hex().encode() + b" V=3",  # no retry allowed
        b"E=691 R=1 V=3",  # no challenge to answer
        b"E=648 R=1 C=" + NEW_CHALLENGE.hex().encode() + b" V=3",  # expired: another password cannot help
    ],
)
def test_mschapv2_failure_without_a_usable_retry_ends_at_once(message):
    machine = started_mschapv2()
    machine.receive(encode_packet(4, 1, message), 2.0)
    assert machine.retry_prompt is None
    assert isinstance(machine.outcome, Failure)


def test_mschapv2_retries_are_bounded():
    machine = MsChapV2Client(CREDENTIALS, rng=lambda size: bytes(size))
    machine.receive(mschapv2_challenge(identifier=1), 1.0)
    identifier = 1
    for _ in range(MsChapV2Client.MAX_RETRIES):
        machine.receive(encode_packet(4, identifier, RETRY_FAILURE), 2.0)
        machine.retry_with("again")
        identifier += 1
        assert parse_packet(machine.take_output()[-1]).identifier == identifier
    machine.receive(encode_packet(4, identifier, RETRY_FAILURE), 2.0)
    assert machine.retry_prompt is None
    assert machine.outcome == failure(auth.refused_sentence(), FailureKind.AUTHENTICATION)
