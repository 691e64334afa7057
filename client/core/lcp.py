"""LCP (RFC 1661): the option policy of our side, and the LCP-only codes (echo, discard,
protocol-reject) around the shared automaton.

Authentication steering: a server offers one method per Configure-Request. One we allow but like
less than our favourite gets one Configure-Nak suggesting the favourite; if the server offers it
again we accept it. A method we do not allow is Nak'd every time (servers such as accel-ppp
ignore the hint and walk their own list) until RFC 1661 Max-Failure turns the Naks into Rejects.
A method counts as "steered" only once our Nak has actually gone out: a request we Reject for
other options (Windows Server sends Callback, MRRU and Endpoint Discriminator alongside EAP) gets
no Nak, so the steering is still to do when the server sends the request again without them.

Looped-back links (RFC 1661 6.4): when our own Magic-Number keeps coming back (in the peer's
Configure-Request, or as the number we suggested in our Configure-Nak), nothing at the far end
speaks PPP: every frame is echoed. After a few such proofs `looped` is set and the engine ends the
session. Magic-Number is never rejected while our own requests carry it.
"""

from __future__ import annotations

import secrets
import struct
from collections.abc import Callable

from .auth import AuthMethod, AuthPolicy
from .fsm import Counters, OptionFsm, OptionPolicy, Verdict
from .ppp_codec import MAX_INFORMATION, Code, ControlPacket, Option, encode_packet

MRU = 1
ACCM = 2
AUTH_PROTOCOL = 3
MAGIC_NUMBER = 5
PFC = 7
ACFC = 8

DEFAULT_MRU = 1500
MIN_PEER_MRU = 68  # an IPv4 link must carry at least this (RFC 791)
MAX_REFUSED_LISTED = 4  # refused auth methods named to the user
MAX_MRU = MAX_INFORMATION  # what we ask for: a PPP frame must fit one SSTP packet
LOOP_EVIDENCE = 3  # our own magic number seen back this many times in a row: a looped-back link


class LcpPolicy(OptionPolicy):
    """Ask for MRU and a magic number; accept the server's authentication method only if the
    profile allows it, steering the server towards the strongest one we allow."""

    def __init__(self, auth: AuthPolicy, mru: int = DEFAULT_MRU, rng: Callable[[int], bytes] = secrets.token_bytes) -> None:
        self._rng = rng
        self.mru = mru
        self.magic = self._new_magic()
        self._asking = {MRU, MAGIC_NUMBER}
        self._allowed = auth.allowed_methods()
        self._steered: set[AuthMethod] = set()
        self.refused_methods: list[AuthMethod | bytes] = []  # what the server offered and we refused
        self.peer_mru = DEFAULT_MRU
        self.auth_method: AuthMethod | None = None
        self._pending_steer: AuthMethod | None = None  # steered once the Nak is really sent
        self._suggested_magic: int | None = None  # in our last Configure-Nak
        self._loop_evidence = 0
        self.looped = False

    def _new_magic(self) -> int:
        while True:
            magic = int.from_bytes(self._rng(4), "big")
            if magic:
                return magic

    @property
    def negotiated_magic(self) -> int:
        """Our magic number, or 0 when the peer rejected the option (as SoftEther does)."""
        return self.magic if MAGIC_NUMBER in self._asking else 0

    @property
    def send_mru(self) -> int:
        """The longest information field we may send: the peer's MRU, capped by what one SSTP
        packet carries (a peer MRU above that, such as RRAS's 4091, costs nothing to accept)."""
        return min(self.peer_mru, MAX_INFORMATION)

    def request(self) -> list[Option]:
        options = []
        if MRU in self._asking:
            options.append(Option(MRU, struct.pack("!H", self.mru)))
        if MAGIC_NUMBER in self._asking:
            options.append(Option(MAGIC_NUMBER, struct.pack("!I", self.magic)))
        return options

    def judge(self, options: list[Option]) -> tuple[Verdict, list[Option]]:
        rejects: list[Option] = []
        naks: list[Option] = []
        self._pending_steer = None
        for option in options:
            if option.type == MRU and len(option.data) == 2:
                value = struct.unpack("!H", option.data)[0]
                if value < MIN_PEER_MRU:
                    naks.append(Option(MRU, struct.pack("!H", DEFAULT_MRU)))
                # Larger than SSTP can carry is fine: the peer's MRU only limits what we send.
            elif option.type == ACCM and len(option.data) == 4:
                pass  # meaningless without HDLC framing; harmless to accept
            elif option.type == MAGIC_NUMBER and len(option.data) == 4:
                value = struct.unpack("!I", option.data)[0]
                if value == self.magic and MAGIC_NUMBER in self._asking:
                    self._loop_proof()  # our own number came back (RFC 1661 6.4)
                elif value != 0:
                    self._loop_evidence = 0  # a number of its own: a real peer
                if value == 0 or value == self.magic:
                    # Zero is invalid; our own number means a possibly looped-back link.
                    self.magic = self._new_magic()
                    suggestion = self._new_magic()
                    self._suggested_magic = suggestion
                    naks.append(Option(MAGIC_NUMBER, struct.pack("!I", suggestion)))
            elif option.type == AUTH_PROTOCOL:
                auth_suggestion = self._judge_auth(option.data)
                if auth_suggestion is not None:
                    naks.append(auth_suggestion)
            else:
                rejects.append(option)  # PFC, ACFC, callback, multilink, anything unknown
        if rejects:
            return Verdict.REJECT, rejects
        if naks:
            return Verdict.NAK, naks
        return Verdict.ACK, options

    def _judge_auth(self, data: bytes) -> Option | None:
        """None to accept the offered method, or the option we suggest instead."""
        offered = AuthMethod.from_option_data(data)
        if offered in self._allowed and (offered is self._allowed[0] or offered in self._steered):
            return None
        if offered in self._allowed:
            # Allowed but weaker than our favourite: suggest ours once; if the server insists,
            # accept (a server that only does EAP re-offers EAP). Recorded when the Nak is sent.
            self._pending_steer = offered
        else:
            label = offered if offered is not None else data
            # Capped: a hostile server could offer endless distinct unknown methods.
            if label not in self.refused_methods and len(self.refused_methods) < MAX_REFUSED_LISTED:
                self.refused_methods.append(label)
        return Option(AUTH_PROTOCOL, self._allowed[0].option_data)

    def nak_sent(self, options: list[Option]) -> None:
        if self._pending_steer is not None and any(option.type == AUTH_PROTOCOL for option in options):
            self._steered.add(self._pending_steer)
        self._pending_steer = None

    def may_reject(self, option_type: int) -> bool:
        return not (option_type == MAGIC_NUMBER and MAGIC_NUMBER in self._asking)

    def _loop_proof(self) -> None:
        self._loop_evidence += 1
        if self._loop_evidence >= LOOP_EVIDENCE:
            self.looped = True

    def naked(self, options: list[Option]) -> None:
        for option in options:
            if option.type == MRU and len(option.data) == 2:
                self.mru = max(MIN_PEER_MRU, min(struct.unpack("!H", option.data)[0], MAX_MRU))
            elif option.type == MAGIC_NUMBER:
                if len(option.data) == 4 and struct.unpack("!I", option.data)[0] == self._suggested_magic:
                    self._loop_proof()  # the number we suggested to the peer came back to us
                self.magic = self._new_magic()

    def rejected(self, options: list[Option]) -> None:
        for option in options:
            self._asking.discard(option.type)
        if MRU not in self._asking:
            self.mru = DEFAULT_MRU

    def peer_acked(self, options: list[Option]) -> None:
        self.auth_method = None
        self.peer_mru = DEFAULT_MRU
        for option in options:
            if option.type == MRU:
                self.peer_mru = struct.unpack("!H", option.data)[0]
            elif option.type == AUTH_PROTOCOL:
                self.auth_method = AuthMethod.from_option_data(option.data)


class Lcp:
    """The LCP automaton plus the codes only LCP has. `output` holds information fields."""

    def __init__(self, policy: LcpPolicy, counters: Counters | None = None) -> None:
        self.policy = policy
        self.fsm = OptionFsm("LCP", policy, counters or Counters(), send_limit=lambda: policy.send_mru)
        self.rejected_protocols: list[int] = []  # Protocol-Rejects from the peer, for the engine

    def receive(self, packet: ControlPacket, now: float) -> None:
        code = packet.code
        if code == Code.ECHO_REQUEST:
            if self.fsm.is_opened:
                # RFC 1661 5.8: the data copied back, truncated to fit the peer's MRU.
                reply_data = (struct.pack("!I", self.policy.negotiated_magic) + packet.data[4:])[: self.policy.send_mru - 4]
                self.fsm.output.append(encode_packet(Code.ECHO_REPLY, packet.identifier, reply_data))
        elif code in (Code.ECHO_REPLY, Code.DISCARD_REQUEST):
            pass  # any received packet already counts as liveness
        elif code == Code.PROTOCOL_REJECT:
            if self.fsm.is_opened and len(packet.data) >= 2:
                self.rejected_protocols.append(struct.unpack_from("!H", packet.data)[0])
        else:
            self.fsm.receive(packet, now)

    def send_echo_request(self) -> None:
        """A keep-alive probe; the peer must answer with an Echo-Reply (only in Opened)."""
        if self.fsm.is_opened:
            data = struct.pack("!I", self.policy.negotiated_magic)
            self.fsm.output.append(encode_packet(Code.ECHO_REQUEST, self.fsm.next_identifier(), data))

    def protocol_reject(self, protocol: int, information: bytes) -> None:
        """Tell the peer we do not speak `protocol` (only allowed in Opened)."""
        if self.fsm.is_opened:
            # The reply must fit the peer's MRU: 4 bytes of header and 2 of protocol come first.
            data = struct.pack("!H", protocol) + information[: self.policy.send_mru - 6]
            self.fsm.output.append(encode_packet(Code.PROTOCOL_REJECT, self.fsm.next_identifier(), data))
