"""MS-CHAPv2 (RFC 2759 9.2) and MPPE master keys (RFC 3079 3.5.3), byte for byte."""

import pytest

from sstpvpn.client.core import mschapv2

h = bytes.fromhex

USERNAME = "User"
PASSWORD = "clientPass"
AUTHENTICATOR_CHALLENGE = h("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = h("21402324255E262A28295F2B3A337C7E")
CHALLENGE_HASH = h("D02E4386BCE91226")
NT_RESPONSE = h("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
PASSWORD_HASH = h("44EBBA8D5312B8D611474411F56989AE")
PASSWORD_HASH_HASH = h("41C00C584BD2D91C4017A2A12FA59F3F")
AUTHENTICATOR_RESPONSE = b"S=407A5589115FD0D6209F510FE9C04566932CDA56"

MASTER_KEY = h("FDECE3717A8C838CB388E527AE3CDD31")
SEND_START_KEY_128 = h("8B7CDC149B993A1BA118CB153F56DCCB")  # server send = client receive (Magic3)
SEND_SESSION_KEY_128 = h("405CB2247A7956E6E211007AE27B22D4")
CLIENT_MASTER_SEND_KEY = h("D5F0E9521E3EA9589645E86051C82226")  # derived (Magic2), protocol.md 5.7


# --- RFC 2759 9.2 ------------------------------------------------------------------------------


def test_password_encoding_is_utf16le():
    assert mschapv2.encode_password(PASSWORD) == h("63006C00690065006E0074005000610073007300")


def test_challenge_hash():
    assert mschapv2.challenge_hash(PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, USERNAME) == CHALLENGE_HASH


def test_password_hash_and_hash_hash():
    assert mschapv2.password_hash(PASSWORD) == PASSWORD_HASH
    assert mschapv2.password_hash_hash(PASSWORD) == PASSWORD_HASH_HASH


def test_nt_response():
    assert mschapv2.nt_response(AUTHENTICATOR_CHALLENGE, PEER_CHALLENGE, USERNAME, PASSWORD) == NT_RESPONSE


def test_authenticator_response():
    response = mschapv2.authenticator_response(PASSWORD, NT_RESPONSE, PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, USERNAME)
    assert response == AUTHENTICATOR_RESPONSE


def test_des_key_spreading_puts_seven_bits_in_each_byte_high_first():
    assert mschapv2.spread_des_key(h("FFFFFFFFFFFFFF")) == h("FEFEFEFEFEFEFEFE")
    assert mschapv2.spread_des_key(h("80000000000000")) == h("8000000000000000")
    assert mschapv2.spread_des_key(h("00000000000001")) == h("0000000000000002")
    assert mschapv2.spread_des_key(h("01000000000000")) == h("0080000000000000")


def test_des_matches_the_classic_single_des_vector():
    # The textbook DES example: key 0123456789ABCDEF, "Now is t" -> 3FA40E8A984D4815.
    assert mschapv2.des_encrypt(b"Now is t", _squeeze(h("0123456789ABCDEF"))) == h("3FA40E8A984D4815")


def _squeeze(key8: bytes) -> bytes:
    """The 7-byte key whose spreading gives key8 (parity bits dropped): the inverse operation."""
    bits = 0
    for byte in key8:
        bits = (bits << 7) | (byte >> 1)
    return bits.to_bytes(7, "big")


# --- user names and passwords beyond ASCII ------------------------------------------------------


def test_domain_prefix_is_left_out_of_the_challenge_hash_only():
    # RFC 2759 8.2: "excluding any prepended domain name". With the RFC inputs, "DOMAIN\User"
    # must give exactly the published values.
    name = "DOMAIN\\User"
    assert mschapv2.strip_domain(name) == "User"
    assert mschapv2.challenge_hash(PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, name) == CHALLENGE_HASH
    assert mschapv2.nt_response(AUTHENTICATOR_CHALLENGE, PEER_CHALLENGE, name, PASSWORD) == NT_RESPONSE
    assert mschapv2.authenticator_response(PASSWORD, NT_RESPONSE, PEER_CHALLENGE, AUTHENTICATOR_CHALLENGE, name) == AUTHENTICATOR_RESPONSE


def test_names_without_a_domain_and_upn_names_are_kept():
    assert mschapv2.strip_domain("User") == "User"
    assert mschapv2.strip_domain("user@example.com") == "user@example.com"


UNICODE_PASSWORD = "pässwörd\U0001f600"  # a non-BMP character becomes a UTF-16 surrogate pair


def test_unicode_password_is_utf16le_with_surrogate_pairs():
    assert mschapv2.encode_password(UNICODE_PASSWORD) == h("70 00 e4 00 73 00 73 00 77 00 f6 00 72 00 64 00 3d d8 00 de")


def test_unicode_password_hash_and_nt_response_match_openssl():
    # Expected values computed with the OpenSSL command line (legacy MD4 and DES-ECB), not this code.
    assert mschapv2.password_hash(UNICODE_PASSWORD) == h("a395e2e215e896a8ec4b1657b229f081")
    nt = mschapv2.nt_response(AUTHENTICATOR_CHALLENGE, PEER_CHALLENGE, USERNAME, UNICODE_PASSWORD)
    assert nt == h("416a9de24e8f1174b019804631f58f968b23ec9897d73284")


# --- authenticator response checking -----------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        AUTHENTICATOR_RESPONSE,
        AUTHENTICATOR_RESPONSE + b" M=Access granted",
        AUTHENTICATOR_RESPONSE.lower().replace(b"s=", b"S="),
    ],
)
def test_authenticator_response_accepted(message):
    assert mschapv2.authenticator_response_matches(message, AUTHENTICATOR_RESPONSE)


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"S=",
        AUTHENTICATOR_RESPONSE[:41],
        b"S=407A5589115FD0D6209F510FE9C04566932CDA57",  # last digit differs
        b"s=407A5589115FD0D6209F510FE9C04566932CDA56",  # wrong marker
        b"S= 407A5589115FD0D6209F510FE9C04566932CDA5",  # whitespace is not hex
        b"S=407A5589115FD0D6209F510FE9C04566932CDAZ6",
        b"M=Access granted",
    ],
)
def test_authenticator_response_refused(message):
    assert not mschapv2.authenticator_response_matches(message, AUTHENTICATOR_RESPONSE)


# --- RFC 3079 3.5.3 ----------------------------------------------------------------------------


def test_master_key():
    assert mschapv2.master_key(PASSWORD_HASH_HASH, NT_RESPONSE) == MASTER_KEY


def test_128_bit_start_key_and_session_key():
    start = mschapv2.asymmetric_start_key(MASTER_KEY, mschapv2.MAGIC_CLIENT_RECEIVE)
    assert start == SEND_START_KEY_128
    assert mschapv2.new_key_from_sha(start, start, 16) == SEND_SESSION_KEY_128


def test_client_master_keys():
    keys = mschapv2.client_master_keys(PASSWORD, NT_RESPONSE)
    assert keys.send == CLIENT_MASTER_SEND_KEY
    assert keys.receive == SEND_START_KEY_128
    assert mschapv2.asymmetric_start_key(MASTER_KEY, mschapv2.MAGIC_CLIENT_SEND) == CLIENT_MASTER_SEND_KEY
    assert "D5F0" not in repr(keys).upper() and "d5f0" not in repr(keys)


def test_40_and_56_bit_keys():
    start = mschapv2.asymmetric_start_key(MASTER_KEY, mschapv2.MAGIC_CLIENT_RECEIVE, 8)
    assert start == h("8B7CDC149B993A1B")
    session = mschapv2.new_key_from_sha(start, start, 8)
    assert session == h("965C00C49FA62E3E")
    assert mschapv2.reduce_session_key(session, 40) == h("D1269EC49FA62E3E")
    assert mschapv2.reduce_session_key(session, 56) == h("D15C00C49FA62E3E")
    with pytest.raises(ValueError):
        mschapv2.reduce_session_key(session, 64)


def test_magic_lengths():
    assert len(mschapv2.MAGIC_SERVER_SIGNING) == 39
    assert len(mschapv2.MAGIC_ITERATION_PAD) == 41
    assert len(mschapv2.MAGIC_MASTER_KEY) == 27
    assert len(mschapv2.MAGIC_CLIENT_SEND) == len(mschapv2.MAGIC_CLIENT_RECEIVE) == 84
