"""When to try again after a session ended: the reconnect policy, shared by the command line and
the tray app.

Sans-IO like the engine: no clock, no thread, no socket. The caller passes `now` (a
`time.monotonic()` float) and tells the policy what happened (a session connected or ended, the
network went or came back, the computer woke up); each call answers with a `Decision`:

- `RetryAt(at, delay)`: start the next attempt at `at` (exponential backoff with full jitter,
  capped; 0 s after a suspend or when the network comes back);
- `WaitForNetwork`: no usable route to the server: do nothing until `network_changed(now, True)`;
- `GiveUp(failure)`: trying again cannot help (refused credentials, untrusted certificate, a local
  problem) or the user asked to disconnect: tell the user (tray) or exit (command line).

Full jitter spreads the clients of a server that restarts over the whole window instead of
letting them all knock at once; the floor keeps a server that fails at once from being hammered.
"""

from __future__ import annotations

import random as random_module
from collections.abc import Callable
from dataclasses import dataclass

from .i18n import _
from .types import Failure, FailureKind, Layer

# Retrying cannot fix refused credentials, an untrusted certificate or a local problem (no TUN
# permission, an internal error): the user has to act.
NO_RETRY_KINDS = frozenset({FailureKind.AUTHENTICATION, FailureKind.TRUST, FailureKind.OTHER})


def ended_sentence() -> str:
    """What the user reads when a session ended without a failure."""
    return _("The server ended the connection.")


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0  # the ceiling of the first retry's delay; it doubles per failed attempt
    cap: float = 60.0  # the ceiling never grows past this
    floor: float = 0.5  # no retry comes sooner than this (except at once after a suspend or a network change)
    stable_after: float = 30.0  # a session that stayed up this long starts the backoff afresh

    def ceiling(self, attempt: int) -> float:
        """The longest delay before retry number `attempt` (0 for the first)."""
        return min(self.cap, self.initial * 2.0 ** min(attempt, 64))

    def delay(self, attempt: int, draw: float) -> float:
        """Full jitter: uniform between the floor and the ceiling; `draw` is in [0, 1)."""
        ceiling = self.ceiling(attempt)
        low = min(self.floor, ceiling)
        return low + draw * (ceiling - low)


@dataclass(frozen=True)
class RetryAt:
    at: float  # absolute, on the caller's monotonic clock
    delay: float
    reason: Failure | None  # why the last session ended (None: the server ended it politely)

    @property
    def sentence(self) -> str:
        return self.reason.reason if self.reason is not None else ended_sentence()


@dataclass(frozen=True)
class WaitForNetwork:
    reason: Failure | None


@dataclass(frozen=True)
class GiveUp:
    failure: Failure | None  # None: the user asked to disconnect


Decision = RetryAt | WaitForNetwork | GiveUp


class ReconnectPolicy:
    """One per connection the user asked for; it lives until the user disconnects or it gives up."""

    def __init__(self, backoff: Backoff = Backoff(), random: Callable[[], float] = random_module.random) -> None:
        self.backoff = backoff
        self._random = random
        self.attempt = 0  # failed attempts since the backoff last started afresh
        self.network_available = True  # until a route watcher says otherwise
        self.pending: RetryAt | WaitForNetwork | None = None  # what the caller is waiting for now
        self._connected_at: float | None = None

    def attempt_started(self) -> None:
        """The caller starts a connection attempt (the pending retry is being acted on)."""
        self.pending = None

    def connected(self, now: float) -> None:
        self._connected_at = now

    def session_ended(self, now: float, failure: Failure | None, user_asked: bool = False) -> Decision:
        connected_at, self._connected_at = self._connected_at, None
        if user_asked or (failure is not None and failure.kind in NO_RETRY_KINDS):
            self.pending = None
            return GiveUp(None if user_asked else failure)
        if connected_at is not None and now - connected_at >= self.backoff.stable_after:
            self.attempt = 0
        if failure is not None and failure.where is Layer.SLEEP:
            self.attempt = 0
            return self._retry_now(now, failure)
        if not self.network_available:
            self.pending = WaitForNetwork(failure)
            return self.pending
        delay = self.backoff.delay(self.attempt, self._random())
        self.attempt += 1
        self.pending = RetryAt(now + delay, delay, failure)
        return self.pending

    def network_changed(self, now: float, available: bool) -> Decision | None:
        """A route watcher's answer changed. A new decision, or None: carry on as before."""
        was_available, self.network_available = self.network_available, available
        pending = self.pending
        if pending is None:
            return None  # connecting, connected or given up: the session's own end will decide
        if not available and isinstance(pending, RetryAt):
            self.pending = WaitForNetwork(pending.reason)
            return self.pending
        if available and not was_available:
            return self._retry_now(now, pending.reason)
        return None

    def resumed(self, now: float) -> Decision | None:
        """The computer woke up while a retry was scheduled: do not sit out the rest of the delay."""
        if isinstance(self.pending, RetryAt) and self.pending.at > now and self.network_available:
            return self._retry_now(now, self.pending.reason)
        return None

    def _retry_now(self, now: float, reason: Failure | None) -> RetryAt:
        self.pending = RetryAt(now, 0.0, reason)
        return self.pending
