"""LCP (RFC 1661): the option policy of our side, and the LCP-only codes (echo, discard,
protocol-reject) around the shared automaton."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable

from .auth import AuthMethod, AuthPolicy
from .fsm import Counters, OptionFsm, OptionPolicy, Verdict
from .ppp_codec import Code, ControlPacket, Option, encode_packet

MRU = 1
ACCM = 2
AUTH_PROTOCOL = 3
MAGIC_NUMBER = 5
PFC = 7
ACFC = 8

DEFAULT_MRU = 1500
MIN_PEER_MRU = 68  # an IPv4 link must carry at least this (RFC 791)
MAX_REFUSED_LISTED = 4  # refused auth methods named to the user
MAX_PEER_MRU = 4087  # a PPP frame must fit one SSTP packet: 4095 - 4 (SSTP) - 4 (FF 03 + protocol)


class LcpPolicy(OptionPolicy):
    """Ask for MRU and a magic number; accept the server's authentication method only if the
    profile allows it, steering the server towards the strongest one we allow."""

    def __init__(self, auth: AuthPolicy, mru: int = DEFAULT_MRU, rng: Callable[[int], bytes] = os.urandom) -> None:
        self._rng = rng
        self.mru = mru
        self.magic = self._new_magic()
        self._asking = {MRU, MAGIC_NUMBER}
        self._allowed = auth.allowed_methods()
        self._steered: set[AuthMethod] = set()
        self.refused_methods: list[AuthMethod | bytes] = []  # what the server offered and we refused
        self.peer_mru = DEFAULT_MRU
        self.auth_method: AuthMethod | None = None

    def _new_magic(self) -> int:
        while True:
            magic = int.from_bytes(self._rng(4), "big")
            if magic:
                return magic

    @property
    def negotiated_magic(self) -> int:
        """Our magic number, or 0 when the peer rejected the option (as SoftEther does)."""
        return self.magic if MAGIC_NUMBER in self._asking else 0

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
        for option in options:
            if option.type == MRU and len(option.data) == 2:
                value = struct.unpack("!H", option.data)[0]
                if not MIN_PEER_MRU <= value <= MAX_PEER_MRU:
                    naks.append(Option(MRU, struct.pack("!H", DEFAULT_MRU)))
            elif option.type == ACCM and len(option.data) == 4:
                pass  # meaningless without HDLC framing; harmless to accept
            elif option.type == MAGIC_NUMBER and len(option.data) == 4:
                value = struct.unpack("!I", option.data)[0]
                if value == 0 or value == self.magic:
                    # Zero is invalid; our own number means a looped-back link (RFC 1661 6.4).
                    self.magic = self._new_magic()
                    naks.append(Option(MAGIC_NUMBER, struct.pack("!I", self._new_magic())))
            elif option.type == AUTH_PROTOCOL:
                suggestion = self._judge_auth(option.data)
                if suggestion is not None:
                    naks.append(suggestion)
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
            # accept (a server that only does EAP re-offers EAP).
            self._steered.add(offered)
        else:
            label = offered if offered is not None else data
            # Capped: a hostile server could offer endless distinct unknown methods.
            if label not in self.refused_methods and len(self.refused_methods) < MAX_REFUSED_LISTED:
                self.refused_methods.append(label)
        return Option(AUTH_PROTOCOL, self._allowed[0].option_data)

    def naked(self, options: list[Option]) -> None:
        for option in options:
            if option.type == MRU and len(option.data) == 2:
                self.mru = max(MIN_PEER_MRU, min(struct.unpack("!H", option.data)[0], MAX_PEER_MRU))
            elif option.type == MAGIC_NUMBER:
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
        self.fsm = OptionFsm("LCP", policy, counters or Counters())
        self.rejected_protocols: list[int] = []  # Protocol-Rejects from the peer, for the engine

    def receive(self, packet: ControlPacket, now: float) -> None:
        code = packet.code
        if code == Code.ECHO_REQUEST:
            if self.fsm.is_opened:
                reply_data = struct.pack("!I", self.policy.negotiated_magic) + packet.data[4:]
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
            data = struct.pack("!H", protocol) + information[: self.policy.peer_mru - 6]
            self.fsm.output.append(encode_packet(Code.PROTOCOL_REJECT, self.fsm.next_identifier(), data))
