"""The SSTP server's authenticator role played against a real EAP server: ScriptedServer (our
codecs, tests/unit/scripted_server.py) offers EAP in LCP, asks for the identity itself (as RRAS
does) and then relays every EAP packet between the sans-IO engine and FreeRADIUS over RADIUS.
From Access-Accept it takes the MSK (MS-MPPE-Recv-Key || MS-MPPE-Send-Key) and verifies the
client's SSTP crypto binding with the server HLAK derived from it, exactly as RRAS + NPS do:
[MS-SSTP] 3.2.5.2, HLAK = the first 32 MSK bytes = the authenticator's MS-MPPE-Recv-Key."""

from __future__ import annotations

from sstpvpn.client.core.ppp_codec import ControlPacket, PppProtocol, encode_frame, encode_packet
from sstpvpn.client.core.sstp_codec import encode_data
from tests.eap.radius import ACCESS_ACCEPT, ACCESS_CHALLENGE, ACCESS_REJECT, STATE, RadiusClient
from tests.unit.scripted_server import EAP, ScriptedServer, ServerConfig

EAP_RESPONSE, EAP_SUCCESS, EAP_FAILURE = 2, 3, 4


class RadiusRelay(ScriptedServer):
    def __init__(self, radius: RadiusClient, corrupt_hlak: bool = False, methods: tuple[str, ...] = (EAP,)) -> None:
        super().__init__(ServerConfig(methods=methods))
        self.radius = radius
        self.corrupt_hlak = corrupt_hlak
        self.identity: bytes | None = None
        self._state: bytes | None = None
        self.msk: bytes | None = None
        self.radius_codes: list[int] = []
        self.eap_types_from_client: list[int] = []
        self.tls_flags_from_client: list[int] = []  # EAP-TLS/PEAP flags byte of each response
        self.tls_flags_from_server: list[int] = []

    def _receive_eap(self, packet: ControlPacket) -> None:
        if packet.code != EAP_RESPONSE or not packet.data:
            self.problems.append(f"unexpected EAP packet, code {packet.code}")
            return
        if packet.identifier != self._auth_id:
            self.problems.append("EAP Response identifier differs from the Request's")
            return
        self.eap_types_from_client.append(packet.data[0])
        if packet.data[0] in (13, 25) and len(packet.data) > 1:
            self.tls_flags_from_client.append(packet.data[1])
        if self.identity is None and packet.data[0] == 1:
            self.identity = packet.data[1:]
        reply = self.radius.access_request(self.identity or b"", encode_packet(packet.code, packet.identifier, packet.data), self._state)
        self.radius_codes.append(reply.code)
        self._state = reply.one(STATE)
        eap = reply.eap_message
        if reply.code == ACCESS_CHALLENGE:
            self._relay(eap)
        elif reply.code == ACCESS_ACCEPT:
            self.msk = self.radius.msk(reply)
            hlak = self.msk[:32]
            if self.corrupt_hlak:
                hlak = bytes((hlak[0] ^ 0x01,)) + hlak[1:]
            self._relay(eap or encode_packet(EAP_SUCCESS, packet.identifier, b""))
            self._auth_succeeded(hlak)
        elif reply.code == ACCESS_REJECT:
            self._relay(eap or encode_packet(EAP_FAILURE, packet.identifier, b""))
            self._auth_failed()
        else:
            self.problems.append(f"RADIUS answered with code {reply.code}")

    def _relay(self, eap: bytes) -> None:
        if len(eap) >= 2:
            self._auth_id = eap[1]
        if len(eap) > 5 and eap[0] == 1 and eap[4] in (13, 25):
            self.tls_flags_from_server.append(eap[5])
        self._send(encode_data(encode_frame(PppProtocol.EAP, eap)))
