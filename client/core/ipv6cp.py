"""IPV6CP (RFC 5072): agree on the 64-bit interface identifiers of both ends."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from .fsm import OptionPolicy, Verdict
from .ppp_codec import Option

INTERFACE_IDENTIFIER = 1


class Ipv6cpPolicy(OptionPolicy):
    def __init__(self, rng: Callable[[int], bytes] = secrets.token_bytes) -> None:
        self._rng = rng
        self.identifier = self._new_identifier()
        self.peer_identifier: bytes | None = None

    def _new_identifier(self, avoid: bytes = b"") -> bytes:
        while True:
            identifier = self._rng(8)
            if any(identifier) and identifier != avoid:
                return identifier

    def request(self) -> list[Option]:
        return [Option(INTERFACE_IDENTIFIER, self.identifier)]

    def judge(self, options: list[Option]) -> tuple[Verdict, list[Option]]:
        rejects = [o for o in options if not (o.type == INTERFACE_IDENTIFIER and len(o.data) == 8)]
        if rejects:
            return Verdict.REJECT, rejects  # compression and anything unknown
        for option in options:
            if not any(option.data) or option.data == self.identifier:
                # Zero or a clash with ours: suggest a different one (RFC 5072 4.1).
                return Verdict.NAK, [Option(INTERFACE_IDENTIFIER, self._new_identifier(avoid=self.identifier))]
        return Verdict.ACK, options

    def peer_acked(self, options: list[Option]) -> None:
        for option in options:
            self.peer_identifier = option.data

    def naked(self, options: list[Option]) -> None:
        for option in options:
            if option.type == INTERFACE_IDENTIFIER and len(option.data) == 8 and any(option.data) and option.data != self.peer_identifier:
                self.identifier = option.data
