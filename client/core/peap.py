"""PEAPv0 with EAP-MSCHAPv2 inside ([MS-PEAP]; draft-kamath-pppext-peapv0), for the peer.

Phase 1 is the TLS tunnel of eap_tls.py (same framing, same server-certificate checks; no client
certificate). Phase 2 runs an inner EapClient (auth.py: Identity, EAP-MSCHAPv2 with the server's
proof checked) over the tunnel's application data:

* Inner packets travel "compressed" ([MS-PEAP] 2.2.5?/draft-kamath 1.1): without Code, Identifier
  and Length, i.e. Type + Type-Data only, both ways. Exceptions, as wpa_supplicant
  (eap_peap.c, eap_peap_decrypt) handles them: EAP-TLV (type 33) packets ([MS-PEAP] 2.2.8,
  Result and Crypto Binding TLVs) carry the full header both ways, and FreeRADIUS sends its inner
  Identity Request with the full header (5 bytes: 01 id 00 05 01).
* The server ends phase 2 with a Result TLV instead of an inner EAP Success; the peer answers
  with its own Result TLV (and a Crypto Binding TLV when the server sent one), then the outer
  EAP Success follows in clear.

Keys ([MS-PEAP] 3.1.5.5.2, 3.1.5.7):
* TK = TLS-PRF(master_secret, "client EAP encryption", client_random || server_random), 60 bytes
  used; TempKey = TK[0:40].
* ISK = the inner method's MSK as the peer sees it, 32 bytes: for MS-CHAPv2 the peer's
  MasterSendKey || MasterReceiveKey (RFC 3079; [MS-CHAP] "MSK" from the peer's side;
  wpa_supplicant eap_mschapv2_getKey).
* PRF+(K, S, LEN) = T1 | T2 | ...; Tn = HMAC-SHA1(K, T(n-1) | S | n | 0x00 | 0x00) (PEAPv0).
  IMCK = PRF+(TempKey, "Inner Methods Compound Keys" | ISK, 60): IPMK = [0:40], CMK = [40:60].
* Compound MAC = HMAC-SHA1(CMK, Crypto Binding TLV (60 bytes, MAC zeroed) | 0x19 (the EAP type
  PEAP)). The response TLV: SubType 1, Version/RecvVersion 0, the request's nonce.
* MSK: with crypto binding, CSK = PRF+(IPMK, "Session Key Generating Function" | 0x00, 128),
  MSK = CSK[0:64]; without it (a server that sends no Crypto Binding TLV, e.g. FreeRADIUS 3), the
  first 64 bytes of TK, as for EAP-TLS ([MS-PEAP] 3.1.5.7 case 2).
The SSTP HLAK is then the first 32 bytes of that MSK ([MS-SSTP] 3.2.5.2: "EAP other than
EAP-TLS: client MSK").
"""

from __future__ import annotations

import hmac
import secrets
import struct
from collections.abc import Callable

from .auth import AuthPolicy, AuthSucceeded, EapClient, refused_sentence
from .eap_tls import PEAP_TYPE, WHERE, Framing, TlsClient, TlsMethodSettings, TunnelMethod
from .events import Credentials
from .i18n import _
from .ppp_codec import encode_packet
from .types import Failure, FailureKind

EAP_REQUEST, EAP_RESPONSE, EAP_SUCCESS = 1, 2, 3
EAP_IDENTITY, EAP_TLV = 1, 33
TLV_MANDATORY = 0x8000
TLV_RESULT, TLV_CRYPTO_BINDING = 3, 12
RESULT_SUCCESS, RESULT_FAILURE = 1, 2
BINDING_TLV_SIZE = 60  # 4-byte TLV header + 56

IMCK_LABEL = b"Inner Methods Compound Keys"
CSK_LABEL = b"Session Key Generating Function\x00"  # NUL included, as Windows does (wpa_supplicant's note)


def binding_failed_sentence() -> str:
    return _(
        "The authentication server could not prove that the PEAP tunnel and the inner login belong "
        "together (bad crypto binding): it may be an impostor. Do not use this connection, and tell "
        "the server's administrator."
    )


def peap_prf_plus(key: bytes, seed: bytes, length: int) -> bytes:
    """[MS-PEAP] 3.1.5.5.2.2 PRF+ for PEAPv0: Tn = HMAC-SHA1(K, T(n-1) | S | n | 0x00 | 0x00)."""
    out, previous, counter = b"", b"", 0
    while len(out) < length:
        counter += 1
        previous = hmac.digest(key, previous + seed + bytes((counter, 0, 0)), "sha1")
        out += previous
    return out[:length]


def compound_keys(tunnel_key: bytes, isk: bytes) -> tuple[bytes, bytes]:
    """(IPMK, CMK) from TK (>= 40 bytes) and the inner session key (padded to 32 bytes)."""
    imck = peap_prf_plus(tunnel_key[:40], IMCK_LABEL + isk.ljust(32, b"\x00")[:32], 60)
    return imck[:40], imck[40:60]


def binding_mac(cmk: bytes, tlv: bytes) -> bytes:
    """HMAC-SHA1(CMK, Crypto Binding TLV with a zero MAC | PEAP's type byte)."""
    zeroed = tlv[:40] + bytes(20)
    return hmac.digest(cmk, zeroed + bytes((PEAP_TYPE,)), "sha1")


def session_key(ipmk: bytes) -> bytes:
    """MSK with crypto binding: CSK[0:64]."""
    return peap_prf_plus(ipmk, CSK_LABEL, 128)[:64]


def _tlvs(data: bytes) -> list[tuple[int, bool, bytes]] | None:
    """(type, mandatory, value) of each TLV, or None when they do not parse."""
    out, position = [], 0
    while position + 4 <= len(data):
        raw_type, length = struct.unpack_from("!HH", data, position)
        value = data[position + 4 : position + 4 + length]
        if len(value) != length:
            return None
        out.append((raw_type & 0x3FFF, bool(raw_type & TLV_MANDATORY), value))
        position += 4 + length
    return out if position == len(data) else None


class Peap(TunnelMethod):
    eap_type = PEAP_TYPE
    name = "PEAP (EAP-MSCHAPv2)"
    packet_name = "PEAP"

    def __init__(self, settings: TlsMethodSettings, credentials: Credentials, rng: Callable[[int], bytes] = secrets.token_bytes) -> None:
        super().__init__()
        self.settings = settings
        self.crypto_binding: bool | None = None  # known once the server's Result TLV came
        self._credentials = credentials
        self._rng = rng
        self._framing = Framing(version=0)
        self._tls: TlsClient | None = None
        self._inner = EapClient(credentials, AuthPolicy(), rng)
        self._inner_identifier = 0
        self._key_material = b""

        # ------------------------------------------------------------------ outer: framing and TLS

        self._sent_certificate = False

    def _respond(self, type_data: bytes) -> bytes | None:
        what, message = self._framing.receive(type_data)
        if what == "start":
            self._log(f"server started PEAP (version {type_data[0] & 0x07}); we speak version 0")
            if self._tls is not None:
                self._tls.close()
            self._tls = TlsClient(self.settings)
            return self._framing.send(self._tls.start())
        if self._tls is None:
            self._log("ignored a PEAP request before the server's Start")
            return None
        if what == "ack":
            return self._framing.next_fragment()
        if what == "fragment":
            return self._framing.ack()
        was_established = self._tls.established
        output = self._tls.feed(message)
        if self._tls.established and not was_established:
            keys = self._tls.keys
            assert keys is not None
            self._key_material = keys.key_material()
            self.tls_version = keys.version
            self._log(f"TLS tunnel established ({keys.version}, {keys.cipher}); the server's certificate checks out")
        if self._tls.established:
            application = self._tls.read()
            if application:
                output += self._inner_packet(application)
        if self.failure is not None:
            return None
        return self._framing.send(output) if output else self._framing.ack()

    # ------------------------------------------------------------------ phase 2

    def _inner_packet(self, data: bytes) -> bytes:
        """One decrypted phase-2 message: returns the TLS records of our answer (b"": none)."""
        assert self._tls is not None
        full_header = (
            len(data) >= 5
            and data[0] == EAP_REQUEST
            and struct.unpack_from("!H", data, 2)[0] == len(data)
            and ((len(data) == 5 and data[4] == EAP_IDENTITY) or data[4] == EAP_TLV)
        )
        if full_header:
            packet = data
        else:
            self._inner_identifier = (self._inner_identifier + 1) & 0xFF
            packet = encode_packet(EAP_REQUEST, self._inner_identifier, data)
        if packet[4] == EAP_TLV:
            answer = self._on_tlv(packet)
            return self._tls.write(answer) if answer else b""
        self._inner.receive(packet, 0.0)
        self._take_inner_logs()
        records = b""
        for response in self._inner.take_output():
            records += self._tls.write(response[4:])  # compressed: Type + Type-Data only
        if self._inner.outcome is not None and not isinstance(self._inner.outcome, AuthSucceeded):
            self.failure = self._inner.outcome
        return records

    def _take_inner_logs(self) -> None:
        for line in self._inner.take_logs():
            self._log(f"inner {line}")

    def _on_tlv(self, packet: bytes) -> bytes | None:
        identifier = packet[1]
        tlvs = _tlvs(packet[5:])
        if tlvs is None:
            self._log("dropped an EAP-TLV packet whose TLVs do not parse")
            return None
        result = next((value for kind, _m, value in tlvs if kind == TLV_RESULT), None)
        binding = next((value for kind, _m, value in tlvs if kind == TLV_CRYPTO_BINDING), None)
        unknown = [kind for kind, mandatory, _v in tlvs if mandatory and kind not in (TLV_RESULT, TLV_CRYPTO_BINDING)]
        if unknown or result is None or len(result) < 2:
            self._log(f"EAP-TLV without a usable Result TLV (mandatory TLVs we do not know: {unknown})")
            self.failure = Failure(
                WHERE,
                _(
                    "The authentication server asked for PEAP extensions this client does not support: "
                    "ask its administrator to check the PEAP settings."
                ),
                FailureKind.PROTOCOL,
            )
            return self._result(identifier, RESULT_FAILURE)
        status = struct.unpack("!H", result[:2])[0]
        if status != RESULT_SUCCESS:
            self._log("server reported failure in its Result TLV")
            outcome = self._inner.outcome
            self.failure = outcome if isinstance(outcome, Failure) else Failure(WHERE, refused_sentence(), FailureKind.AUTHENTICATION, True)
            return self._result(identifier, RESULT_FAILURE)
        # The server says phase 2 succeeded: the inner method must agree (it checked the server's proof).
        self._inner.receive(encode_packet(EAP_SUCCESS, self._inner_identifier, b""), 0.0)
        self._take_inner_logs()
        outcome = self._inner.outcome
        if not isinstance(outcome, AuthSucceeded):
            self.failure = outcome if isinstance(outcome, Failure) else Failure(WHERE, binding_failed_sentence(), FailureKind.PROTOCOL)
            return self._result(identifier, RESULT_FAILURE)
        if binding is None:
            self.crypto_binding = False
            self.msk = self._key_material[:64]
            self._log("phase 2 succeeded; the server sent no crypto binding, so the MSK comes from the TLS keys")
            return self._result(identifier, RESULT_SUCCESS)
        return self._answer_binding(identifier, struct.pack("!HH", TLV_CRYPTO_BINDING, len(binding)) + binding, outcome.hlak)

    def _answer_binding(self, identifier: int, tlv: bytes, isk: bytes) -> bytes:
        if len(tlv) != BINDING_TLV_SIZE or tlv[5] != 0 or tlv[7] != 0:
            self._log(f"malformed Crypto Binding TLV ({len(tlv)} bytes, version {tlv[5] if len(tlv) > 5 else '?'})")
            self.failure = Failure(WHERE, binding_failed_sentence(), FailureKind.PROTOCOL)
            return self._result(identifier, RESULT_FAILURE)
        ipmk, cmk = compound_keys(self._key_material[:60], isk)
        if not hmac.compare_digest(binding_mac(cmk, tlv), tlv[40:60]):
            self._log("the server's Compound MAC is wrong")
            self.failure = Failure(WHERE, binding_failed_sentence(), FailureKind.PROTOCOL)
            return self._result(identifier, RESULT_FAILURE)
        nonce = tlv[8:40]
        unsigned = struct.pack("!HHBBBB", TLV_CRYPTO_BINDING, 56, 0, 0, 0, 1) + nonce + bytes(20)
        ours = unsigned[:40] + binding_mac(cmk, unsigned)
        self.crypto_binding = True
        self.msk = session_key(ipmk)
        self._log("phase 2 succeeded; the server's crypto binding checks out")
        return self._result(identifier, RESULT_SUCCESS, ours)

    def _result(self, identifier: int, status: int, extra: bytes = b"") -> bytes:
        body = bytes((EAP_TLV,)) + struct.pack("!HHH", TLV_MANDATORY | TLV_RESULT, 2, status) + extra
        return encode_packet(EAP_RESPONSE, identifier, body)

    def failure_sentence(self) -> str:
        outcome = self._inner.outcome
        if isinstance(outcome, Failure):
            return outcome.reason
        if self._tls is not None and self._tls.established:
            return refused_sentence()
        return _("The authentication server ended PEAP before the TLS tunnel was set up: ask its administrator to check the EAP settings.")

    def refused_password(self) -> bool:
        outcome = self._inner.outcome
        if isinstance(outcome, Failure):
            return outcome.password_refused
        return self._tls is not None and self._tls.established
