"""SSTP crypto binding: the worked examples of protocol.md 4.4 ([MS-SSTP] 4.7 and sstp-client's
unit tests), byte for byte, and the HLAK derived from the RFC 2759 inputs."""

import datetime
import hashlib
import hmac

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from sstpvpn.client.core import mschapv2
from sstpvpn.client.core.crypto_binding import (
    CMK_SEED,
    NO_KEY_HLAK,
    build_call_connected,
    call_connected_from_cert_hash,
    certificate_hash,
    compound_mac_key,
    hlak_from_master_keys,
    hlak_from_msk,
)
from sstpvpn.client.core.sstp_codec import AttributeId, HashProtocol, MessageType, parse_control

h = bytes.fromhex

# A. SHA-256, [MS-SSTP] 4.7
A_HLAK = h("2A1BB40D55AB0F5EF32F06F2B3CC73C4 8FD3FAC41D7A1315A19228D9024CA164")
A_NONCE = h("412B489AEBD7ECC7D08966F26BE7CD72B231A0E9210D7C91B308862B0344C435")
A_CERT_HASH = h("7993EF314C493DACE9F02D60E7E61C84B6690AAFE9D7AEEA92CBBE8AD599422D")
A_CMK = h("ECF59AC9FE155CF0A9E7D66ADC1B363C1AD7BA91A9217F0CEC2A534298828DF6")
A_MESSAGE = h(
    "10 01 00 70 00 04 00 01 00 03 00 68 00 00 00 02"
    "41 2B 48 9A EB D7 EC C7 D0 89 66 F2 6B E7 CD 72 B2 31 A0 E9 21 0D 7C 91 B3 08 86 2B 03 44 C4 35"
    "79 93 EF 31 4C 49 3D AC E9 F0 2D 60 E7 E6 1C 84 B6 69 0A AF E9 D7 AE EA 92 CB BE 8A D5 99 42 2D"
    "52 A6 8E FD 8C FF BF 52 77 0B 8F 0F E8 EC 73 71 65 83 AF 6D 61 1E B6 D1 79 B3 B2 08 40 98 54 49"
)

# B. SHA-1 (sstp-client)
B_HLAK = h("4B3128F43925D9006EEFB1C4E86515A1 D88E56BAB3CA2BDF0373B7F5A8A13B19")
B_NONCE = h("0F1A2D58D4A3E3000FAD3CE4906E07B707AA9E441CCEAC5CBD7B2CC1C9D86CDF")
B_CERT_HASH = h("5826B629BDA59B8E6FD8DCD2622FD34C534805A5") + bytes(12)
B_CMK = h("A98B862A38CC7E224B42CD128586ACB22F0BD1E9")
B_MAC = h("69915DD583D8062FEF16F61DB2F03290EC27CB6C") + bytes(12)

# C. SHA-256 after EAP-TLS (sstp-client, from a Windows capture)
C_HLAK = h("BB2C17EDBAA643B3D511EB9848792B7CAB5F5D709FE9BDF89B5DEAF5A8C17DB7")
C_NONCE = h("388A1ECBF302BA02F9F372CE37488EC36B71A28B5E1B19FBE44D5465A631C463")
C_CERT_HASH = h("7FF150176FA8E38A1F402D11FF89FF11B66505AD7F9AE81205277BA4A6B9EF9D")
C_MAC = h("FE6473C7D183914E483FEA1B12A6E760A4DA16B62FAB12A0A1E54E0EC325B24E")


def test_example_a_sha256_whole_message():
    assert compound_mac_key(A_HLAK, HashProtocol.SHA256) == A_CMK
    message = call_connected_from_cert_hash(A_HLAK, A_NONCE, A_CERT_HASH, HashProtocol.SHA256)
    assert len(message) == 112
    assert message == A_MESSAGE


def test_example_b_sha1():
    assert compound_mac_key(B_HLAK, HashProtocol.SHA1) == B_CMK
    message = call_connected_from_cert_hash(B_HLAK, B_NONCE, B_CERT_HASH, HashProtocol.SHA1)
    assert message[:16] == h("10 01 00 70 00 04 00 01 00 03 00 68 00 00 00 01")
    assert message[16:48] == B_NONCE
    assert message[48:80] == B_CERT_HASH
    assert message[80:] == B_MAC


def test_example_c_eap_tls_hlak():
    message = call_connected_from_cert_hash(C_HLAK, C_NONCE, C_CERT_HASH, HashProtocol.SHA256)
    assert message[15] == 2
    assert message[80:] == C_MAC


def test_cmk_length_field_is_little_endian():
    big_endian = hmac.digest(A_HLAK, CMK_SEED + b"\x00\x20\x01", "sha256")
    assert compound_mac_key(A_HLAK, HashProtocol.SHA256) != big_endian
    assert CMK_SEED == b"SSTP inner method derived CMK" and len(CMK_SEED) == 29


def test_hlak_derived_from_the_rfc_2759_inputs():
    nt_response = h("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF")
    keys = mschapv2.client_master_keys("clientPass", nt_response)
    assert hlak_from_master_keys(keys) == h("D5F0E9521E3EA9589645E86051C82226 8B7CDC149B993A1BA118CB153F56DCCB")


def test_hlak_from_msk_takes_32_bytes_and_pads_short_keys():
    msk = bytes(range(64))
    assert hlak_from_msk(msk) == bytes(range(32))
    assert hlak_from_msk(b"\x01\x02") == b"\x01\x02" + bytes(30)
    assert bytes(32) == NO_KEY_HLAK


@pytest.fixture(scope="module")
def server_certificate_der() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vpn.example.test")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(("hash_protocol", "algorithm"), [(HashProtocol.SHA256, "sha256"), (HashProtocol.SHA1, "sha1")])
def test_build_call_connected_hashes_the_der_certificate(server_certificate_der, hash_protocol, algorithm):
    digest = hashlib.new(algorithm, server_certificate_der).digest()
    assert certificate_hash(server_certificate_der, hash_protocol) == digest.ljust(32, b"\x00")

    message = build_call_connected(A_HLAK, A_NONCE, server_certificate_der, hash_protocol)
    assert message == call_connected_from_cert_hash(A_HLAK, A_NONCE, digest.ljust(32, b"\x00"), hash_protocol)

    parsed = parse_control(message[4:])
    assert parsed.type == MessageType.CALL_CONNECTED
    (attribute,) = parsed.attributes
    assert attribute.id == AttributeId.CRYPTO_BINDING and len(attribute.value) == 100
    # The server's check: HMAC over the message with the MAC field zeroed.
    cmk = compound_mac_key(A_HLAK, hash_protocol)
    expected = hmac.digest(cmk, message[:80] + bytes(32), algorithm).ljust(32, b"\x00")
    assert message[80:] == expected


@pytest.mark.parametrize("hash_protocol", [0, 3, 4])
def test_one_known_hash_protocol_is_required(hash_protocol):
    with pytest.raises(ValueError):
        build_call_connected(A_HLAK, A_NONCE, b"cert", hash_protocol)


@pytest.mark.parametrize(
    ("hlak", "nonce", "cert_hash"),
    [(A_HLAK[:31], A_NONCE, A_CERT_HASH), (A_HLAK, A_NONCE[:16], A_CERT_HASH), (A_HLAK, A_NONCE, A_CERT_HASH[:20])],
)
def test_wrong_sizes_are_refused(hlak, nonce, cert_hash):
    with pytest.raises(ValueError):
        call_connected_from_cert_hash(hlak, nonce, cert_hash, HashProtocol.SHA256)
