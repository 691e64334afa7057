"""One request over the tunnel that is sent again until it is answered or given up on: the part
the DHCPINFORM (dhcp_inform) and the DHCPv6 Information-request (dhcpv6) share. Sans-IO: the
engine calls packets_due(now) at `deadline` and offers every packet from the tunnel to answer()."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, TypeVar

Answer = TypeVar("Answer")


class RequestExchange(ABC, Generic[Answer]):
    """Sends at `now` + each of `send_at`, gives up `give_up_after` seconds after `now`. A
    subclass says how its request looks (_request) and what an answer to it is (_parse)."""

    def __init__(self, now: float, send_at: Sequence[float], give_up_after: float) -> None:
        self.finished = False
        self._started = now
        self._sends = [now + offset for offset in send_at]
        self._give_up = now + give_up_after

    @property
    def deadline(self) -> float | None:
        """When packets_due() has something to do next; None once finished."""
        if self.finished:
            return None
        return self._sends[0] if self._sends else self._give_up

    def packets_due(self, now: float) -> list[bytes]:
        """The request to send now (first or again), if one is due; [] otherwise. After the last
        wait without an answer, `finished` becomes True."""
        if self.finished:
            return []
        if self._sends and now >= self._sends[0]:
            self._sends = [moment for moment in self._sends if moment > now]
            return [self._request(now - self._started)]
        if not self._sends and now >= self._give_up:
            self.finished = True
        return []

    def answer(self, packet: bytes) -> Answer | None:
        """What the answer says, when `packet` (an IP packet from the tunnel) answers our request;
        None for any other packet (which the caller delivers as usual)."""
        if self.finished:
            return None
        found = self._parse(packet)
        if found is not None:
            self.finished = True
        return found

    @abstractmethod
    def _request(self, elapsed: float) -> bytes:
        """The request packet, `elapsed` seconds after the first one was due."""

    @abstractmethod
    def _parse(self, packet: bytes) -> Answer | None:
        """What `packet` says when it answers our request, else None."""
