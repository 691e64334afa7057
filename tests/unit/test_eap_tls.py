"""EAP-TLS / PEAP pieces without a server: the TLS 1.2 PRF, EAP-TLS framing, the client
certificate file, the PEAP compound keys and MAC (vectors from OpenSSL's TLS1-PRF and from a
hostapd log), and how EapClient hands EAP-TLS/PEAP to them. The whole exchanges run against
FreeRADIUS and hostapd in tests/eap."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sstpvpn.client.core import peap
from sstpvpn.client.core.auth import AuthMethod, AuthPolicy, AuthSucceeded, EapClient, skipped_sentence
from sstpvpn.client.core.eap_tls import (
    FLAG_LENGTH,
    FLAG_MORE,
    FLAG_START,
    MAX_MESSAGE,
    CertificateFileError,
    Framing,
    FramingError,
    TlsMethod,
    TlsMethodSettings,
    _server_random,
    eap_tls_key_material,
    load_client_certificate,
    prf_hash_for,
    private_file,
    tls12_prf,
)
from sstpvpn.client.core.events import Credentials
from sstpvpn.client.core.ppp_codec import encode_packet, parse_packet
from sstpvpn.client.core.types import Failure, Layer
from tests.eap.pki import PASSPHRASE, make_eap_pki

# --------------------------------------------------------------------------- key derivation


def test_tls12_prf_matches_openssl():
    # `openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexsecret:9bbe...35
    #  -kdfopt hexseed:<"test label" hex>a0ba...8c TLS1-PRF` (the well-known P_SHA256 vector)
    out = tls12_prf(bytes.fromhex("9bbe436ba940f017b17652849a71db35"), b"test label", bytes.fromhex("a0ba9f936cda311827a6f796ffd5198c"), 32)
    assert out.hex().upper() == "E3F229BA727BE17B8D122620557CD453C2AAB21D07C3D495329B52D4E61EDB5A"


def test_eap_key_material_with_a_sha384_suite_matches_openssl():
    # openssl kdf -keylen 64 -kdfopt digest:SHA384 -kdfopt hexsecret:00..07 (48 bytes)
    #   -kdfopt hexseed:<"client EAP encryption" hex>00..05 (64 bytes) TLS1-PRF
    master = (7).to_bytes(48, "big")
    randoms = (5).to_bytes(64, "big")
    material = eap_tls_key_material(master, randoms[:32], randoms[32:], prf_hash_for("ECDHE-RSA-AES256-GCM-SHA384"))
    assert len(material) == 128
    assert material[:64].hex().upper() == (
        "78BCFE8535DCE9F9E932A0E437EF4AE1A75B2EC1087A8104C39E8C118CEBD9B220EA3D133A72019EA446C99820D6382FFFB0E458BE3C83590C9A1ACAB5D6959C"
    )


def test_prf_hash_follows_the_cipher_suite():
    assert prf_hash_for("ECDHE-ECDSA-AES256-GCM-SHA384") == "sha384"
    assert prf_hash_for("ECDHE-RSA-AES128-GCM-SHA256") == "sha256"
    assert prf_hash_for("ECDHE-RSA-CHACHA20-POLY1305") == "sha256"


def test_server_random_is_read_from_the_server_hello_record():
    random = bytes(range(32))
    hello = b"\x02" + (38).to_bytes(3, "big") + b"\x03\x03" + random
    record = b"\x16\x03\x03" + struct.pack("!H", len(hello)) + hello
    assert _server_random(record + b"\x16\x03\x03\x00\x04\x0b\x00\x00\x00") == random
    assert _server_random(record[:20]) is None  # not all there yet
    assert _server_random(b"\x15\x03\x03\x00\x02\x02\x28") is None  # an alert, not a ServerHello


def test_private_file_is_readable_by_path_and_gone_afterwards():
    with private_file(b"secret") as (path, read):
        with open(path, "rb") as handle:
            assert handle.read() == b"secret"
        with open(path, "ab") as handle:
            handle.write(b" more")
        assert read() == b"secret more"
    with pytest.raises(OSError), open(path, "rb"):
        pass


# --------------------------------------------------------------------------- framing


def test_a_long_message_goes_out_in_fragments_each_after_an_ack():
    framing = Framing(fragment_size=1000)
    message = bytes(range(256)) * 10  # 2560 bytes
    first = framing.send(message)
    assert first[0] == FLAG_LENGTH | FLAG_MORE and struct.unpack("!I", first[1:5])[0] == 2560
    assert first[5:] == message[:1000]
    assert framing.receive(b"\x00") == ("ack", b"")
    second = framing.next_fragment()
    assert second[0] == FLAG_MORE and second[1:] == message[1000:2000]
    assert framing.receive(b"\x00") == ("ack", b"")
    last = framing.next_fragment()
    assert last[0] == 0 and last[1:] == message[2000:]
    assert not framing.sending


def test_a_short_message_goes_out_whole_without_flags():
    assert Framing().send(b"hello") == b"\x00hello"
    assert Framing(version=0).ack() == b"\x00"


def test_the_servers_fragments_are_acked_and_reassembled():
    framing = Framing()
    assert framing.receive(bytes((FLAG_START,))) == ("start", b"")
    assert framing.receive(bytes((FLAG_LENGTH | FLAG_MORE,)) + struct.pack("!I", 6) + b"abc") == ("fragment", b"")
    assert framing.ack() == b"\x00"
    assert framing.receive(b"\x00def") == ("message", b"abcdef")


def test_oversized_or_malformed_input_is_refused():
    framing = Framing()
    with pytest.raises(FramingError):
        framing.receive(bytes((FLAG_LENGTH,)) + struct.pack("!I", MAX_MESSAGE + 1) + b"x")
    with pytest.raises(FramingError):
        framing.receive(bytes((FLAG_LENGTH,)) + b"\x00\x01")
    with pytest.raises(FramingError):
        framing.receive(b"")
    with pytest.raises(FramingError):
        for _ in range(200):
            framing.receive(bytes((FLAG_MORE,)) + bytes(1000))


# --------------------------------------------------------------------------- client certificate file


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_eap_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.parametrize("name", ["client_pem", "client_p12"])
def test_the_client_certificate_and_key_load_from_pem_and_pkcs12(pki, name):
    key_pem, chain = load_client_certificate(getattr(pki, name), PASSPHRASE)
    assert x509.load_der_x509_certificate(chain[0]).subject.rfc4514_string() == "CN=alice"
    key = serialization.load_pem_private_key(key_pem, None)
    assert key.public_key() == x509.load_der_x509_certificate(chain[0]).public_key()


def test_certificate_file_problems_get_a_sentence(pki, tmp_path):
    with pytest.raises(CertificateFileError, match="is protected by a passphrase: enter it in the profile"):
        load_client_certificate(pki.client_pem, None)
    with pytest.raises(CertificateFileError, match="The passphrase for .* is wrong"):
        load_client_certificate(pki.client_pem, "nope")
    with pytest.raises(CertificateFileError, match="The passphrase for .* is wrong"):
        load_client_certificate(pki.client_p12, "nope")
    with pytest.raises(CertificateFileError, match="holds your certificate but not its private key"):
        load_client_certificate(pki.ca, None)
    with pytest.raises(CertificateFileError, match="Cannot read the client certificate file"):
        load_client_certificate(tmp_path / "missing.pem", None)


def test_a_key_that_is_not_the_certificates_is_a_sentence_not_an_exception(pki):
    from sstpvpn.client.core.eap_tls import TlsClient, TlsProblem

    key_pem, chain = load_client_certificate(pki.client_pem, PASSPHRASE)
    other_key, _ = load_client_certificate(pki.foreign_client_pem, PASSPHRASE)
    with pytest.raises(TlsProblem) as raised:
        TlsClient(TlsMethodSettings(TlsMethod.EAP_TLS, server_name="radius.example.com"), (other_key, chain))
    assert "certificate and its key cannot be used together" in raised.value.failure.reason
    TlsClient(TlsMethodSettings(TlsMethod.EAP_TLS, server_name="radius.example.com"), (key_pem, chain)).close()


# --------------------------------------------------------------------------- PEAP keys


def test_peap_compound_mac_matches_hostapds():
    # From a hostapd 2.10 -dd log of a PEAPv0 session with this client (tests/eap): its CMK, its
    # Crypto Binding TLV request with the MAC zeroed, and the Compound_MAC it computed over it | 0x19.
    cmk = bytes.fromhex("c38e9804cffeee4de4872b97c0ca91e3b985ec10")
    tlv = bytes.fromhex("000c003800000000abad727eb83fa5048e57057d533601fda3338c119912c174ea86f90952acb505") + bytes(20)
    assert peap.binding_mac(cmk, tlv).hex() == "383b5fb717ef8ad95b46e29d168698a2e5e9fd99"
    # The MAC field is zeroed before hashing, whatever it held.
    assert peap.binding_mac(cmk, tlv[:40] + b"\xff" * 20) == peap.binding_mac(cmk, tlv)


def test_peap_prf_plus_chains_blocks_with_a_counter_and_two_zero_bytes():
    import hmac

    key, seed = b"k" * 40, b"seed"
    t1 = hmac.digest(key, seed + b"\x01\x00\x00", "sha1")
    t2 = hmac.digest(key, t1 + seed + b"\x02\x00\x00", "sha1")
    assert peap.peap_prf_plus(key, seed, 30) == (t1 + t2)[:30]
    ipmk, cmk = peap.compound_keys(bytes(60), bytes(16))  # a short ISK is padded to 32
    assert (ipmk + cmk) == peap.peap_prf_plus(bytes(40), b"Inner Methods Compound Keys" + bytes(32), 60)
    assert len(peap.session_key(ipmk)) == 64


# --------------------------------------------------------------------------- EapClient dispatch


def _client(method: TlsMethod) -> EapClient:
    settings = TlsMethodSettings(method, server_name="radius.example.com")
    return EapClient(Credentials("alice", "pw"), AuthPolicy(tls_method=settings), rng=lambda n: bytes(n))


def _responses(client: EapClient) -> list:
    return [parse_packet(information) for information in client.take_output()]


def test_a_tls_profile_allows_only_eap_and_only_its_method():
    policy = AuthPolicy(tls_method=TlsMethodSettings(TlsMethod.PEAP, server_name="x.example.com"))
    assert policy.allowed_methods() == [AuthMethod.EAP]
    client = _client(TlsMethod.PEAP)
    client.receive(encode_packet(1, 7, bytes((26, 1, 1, 0, 20, 16)) + bytes(16)), 0.0)  # EAP-MSCHAPv2 challenge
    [nak] = _responses(client)
    assert nak.data == bytes((3, 25))  # Nak proposing PEAP only
    client.receive(encode_packet(1, 8, bytes((13, FLAG_START))), 0.0)  # EAP-TLS: not this profile's method
    [nak] = _responses(client)
    assert nak.data == bytes((3, 25))
    md5 = EapClient(Credentials("alice", "pw"), replace(policy, allow_chap_md5=True))
    md5.receive(encode_packet(1, 9, bytes((4, 16)) + bytes(16)), 0.0)  # EAP-MD5, even where CHAP-MD5 is allowed
    [nak] = _responses(md5)
    assert nak.data == bytes((3, 25)) and md5.outcome is None


def test_eap_tls_start_is_answered_with_a_client_hello(pki):
    settings = TlsMethodSettings(
        TlsMethod.EAP_TLS, server_name="radius.eap.test", ca_file=pki.ca, client_certificate=pki.client_pem, key_passphrase=PASSPHRASE
    )
    client = EapClient(Credentials("alice", ""), AuthPolicy(tls_method=settings))
    client.receive(encode_packet(1, 9, bytes((13, FLAG_START))), 0.0)
    [response] = _responses(client)
    assert response.identifier == 9 and response.data[0] == 13
    records = response.data[2:] if response.data[1] == 0 else response.data[6:]
    assert records[:1] == b"\x16" and records[5] == 1  # a handshake record holding a ClientHello
    assert client.outcome is None


def test_eap_success_before_the_tls_method_finished_is_refused():
    client = _client(TlsMethod.EAP_TLS)
    client.receive(encode_packet(3, 1, b""), 0.0)
    assert client.outcome == Failure(Layer.AUTH, skipped_sentence(), client.outcome.kind)
    assert not isinstance(client.outcome, AuthSucceeded)


def test_eap_tls_without_a_certificate_file_says_so():
    client = _client(TlsMethod.EAP_TLS)
    client.receive(encode_packet(1, 2, bytes((13, FLAG_START))), 0.0)
    assert isinstance(client.outcome, Failure)
    assert "names no certificate file" in client.outcome.reason


# --------------------------------------------------------------------------- PEAP phase 2 (TLS stubbed)


class _StubTunnel:
    """Stands in for TlsClient once the tunnel is up: what PEAP writes is kept in clear."""

    established = True

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> bytes:
        self.written.append(data)
        return b"records"


def _peap_in_phase2(password: str = "pw") -> tuple[peap.Peap, _StubTunnel]:
    method = peap.Peap(TlsMethodSettings(TlsMethod.PEAP, server_name="x.example.com"), Credentials("alice", password), rng=lambda n: bytes(n))
    tunnel = _StubTunnel()
    method._tls = tunnel  # type: ignore[assignment]
    method._key_material = bytes(range(128))
    return method, tunnel


def test_peap_inner_identity_is_answered_compressed_whether_or_not_the_request_was():
    method, tunnel = _peap_in_phase2()
    assert method._inner_packet(b"\x01") == b"records"  # compressed request (Windows NPS, hostapd)
    method._inner_packet(bytes((1, 9, 0, 5, 1)))  # full header (FreeRADIUS)
    assert tunnel.written == [b"\x01alice", b"\x01alice"]


def _tlv_packet(identifier: int, *tlvs: bytes) -> bytes:
    return encode_packet(1, identifier, bytes((33,)) + b"".join(tlvs))


def _result_tlv(status: int) -> bytes:
    return struct.pack("!HHH", 0x8003, 2, status)


def _server_mschapv2(method: peap.Peap, tunnel: _StubTunnel, password: str = "pw") -> bytes:
    """Run the inner EAP-MSCHAPv2 exchange as a genuine server would; returns the ISK (the peer's
    send || receive master keys)."""
    from sstpvpn.client.core import mschapv2

    challenge = bytes(range(16))
    method._inner_packet(bytes((26, 1, 7, 0, 26, 16)) + challenge + b"srv")
    response = tunnel.written[-1]
    peer_challenge, nt_response = response[6:22], response[30:54]  # type, opcode, id, length(2), size(1)
    proof = mschapv2.authenticator_response(password, nt_response, peer_challenge, challenge, "alice")
    method._inner_packet(bytes((26, 3, 7, 0, 4 + len(proof))) + proof)
    assert tunnel.written[-1] == bytes((26, 3))  # the client accepted the server's proof
    keys = mschapv2.client_master_keys(password, nt_response)
    return keys.send + keys.receive


def test_peap_crypto_binding_is_checked_and_answered():
    method, tunnel = _peap_in_phase2()
    isk = _server_mschapv2(method, tunnel)
    ipmk, cmk = peap.compound_keys(bytes(range(60)), isk)
    nonce = bytes(range(100, 132))
    unsigned = struct.pack("!HHBBBB", 12, 56, 0, 0, 0, 0) + nonce + bytes(20)
    request = unsigned[:40] + peap.binding_mac(cmk, unsigned)
    method._inner_packet(_tlv_packet(5, _result_tlv(1), request))
    answer = tunnel.written[-1]
    assert answer[:5] == bytes((2, 5, 0, 71, 33)) and answer[5:11] == _result_tlv(1)
    ours = answer[11:]
    assert ours[:8] == struct.pack("!HHBBBB", 12, 56, 0, 0, 0, 1) and ours[8:40] == nonce
    assert ours[40:] == peap.binding_mac(cmk, ours)
    assert method.crypto_binding is True and method.failure is None
    assert method.msk == peap.session_key(ipmk)  # not the TLS key material


def test_peap_refuses_a_crypto_binding_made_with_other_keys():
    method, tunnel = _peap_in_phase2()
    _server_mschapv2(method, tunnel)
    unsigned = struct.pack("!HHBBBB", 12, 56, 0, 0, 0, 0) + bytes(32) + bytes(20)
    forged = unsigned[:40] + peap.binding_mac(b"\x01" * 20, unsigned)  # an impostor without the inner keys
    method._inner_packet(_tlv_packet(6, _result_tlv(1), forged))
    assert method.failure is not None and method.failure.reason == peap.binding_failed_sentence()
    assert tunnel.written[-1][5:11] == _result_tlv(2) and method.msk is None


def test_peap_result_success_before_the_inner_method_finished_is_refused():
    method, tunnel = _peap_in_phase2()
    method._inner_packet(b"\x01")  # identity only, no MS-CHAPv2
    method._inner_packet(_tlv_packet(3, _result_tlv(1)))
    assert method.failure is not None and method.failure.reason == skipped_sentence()
    assert tunnel.written[-1][5:11] == _result_tlv(2) and method.msk is None


def test_peap_without_crypto_binding_uses_the_tls_key_material():
    method, tunnel = _peap_in_phase2()
    _server_mschapv2(method, tunnel)
    method._inner_packet(_tlv_packet(4, _result_tlv(1)))
    assert method.crypto_binding is False and method.msk == bytes(range(64))
    assert tunnel.written[-1] == encode_packet(2, 4, bytes((33,)) + _result_tlv(1))
