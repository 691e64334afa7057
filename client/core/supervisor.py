"""One connection the user asked for, from the click (or the command) to the end: the session
supervisor the tray app and the command line share.

Sans-IO like the engine. A front end feeds it what happened — the user's commands, the runner's
status snapshots, the route watcher's answer, a wake-up from sleep, a timer — always with `now`
(a `time.monotonic()` float), and carries out what each call returns: a list of `Output`s, either
commands (`Prepare`, `Start`, `Stop`, `WatchRoute`, `FollowServerRoute`) or decisions to tell the user (`Connected`,
`SessionEnded`, `RetryScheduled`, `WaitingForNetwork`, `Finished`). `deadline` says when to call
`tick` next. Both front ends turn the same events into the same outputs; only the rendering
(a notification, a line on stdout) differs.

Every attempt runs two steps at the edge: `Prepare` (the start-up preamble: is this system
supported, repair what a crashed session left, read the passwords) and then `Start` (hand the
Connect command to the runner). Between sessions the ReconnectPolicy (reconnect.py) decides.

Roaming: when the route watcher reports a network change while connected, the supervisor asks
the edge to move the server's host route along (`FollowServerRoute`); the session goes on if its
TCP connection survives. If it ends within ROAMING_WINDOW of that change, the next attempt
starts at once instead of after the backoff's delay: the network moved, the server did not fail.
"""

from __future__ import annotations

import enum
import random as random_module
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .reconnect import Backoff, GiveUp, ReconnectPolicy, RetryAt, WaitForNetwork
from .types import Failure, State, Status

Target = TypeVar("Target")  # what to connect to: the tray's Profile, the command line's Connect


class Phase(enum.Enum):
    IDLE = "idle"  # nothing asked for, or the user stopped
    PREPARING = "preparing"  # the edge runs the preamble for this attempt
    CONNECTING = "connecting"  # the runner has the session; not up yet
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"  # the user asked to stop; the runner is ending the session
    WAITING_FOR_NETWORK = "waiting for network"  # no usable route to the server: wait for one
    BACKING_OFF = "backing off"  # the next attempt starts at `deadline`
    FAILED = "failed"  # the last attempt failed and retrying cannot help (or is not wanted)


class Why(enum.Enum):
    """What made the supervisor schedule an attempt or start waiting."""

    SESSION_ENDED = "session ended"
    NETWORK_BACK = "network back"
    NETWORK_LOST = "network lost"
    WOKE_UP = "woke up"


# -- commands for the edge -----------------------------------------------------------------


@dataclass(frozen=True)
class Prepare(Generic[Target]):
    """Run the preamble for this attempt, then call `prepared(attempt, failure)`."""

    attempt: int
    target: Target
    first: bool  # the user's own click or command (not a retry)


@dataclass(frozen=True)
class Start(Generic[Target]):
    """Hand the session to the runner."""

    attempt: int
    target: Target


@dataclass(frozen=True)
class Stop:
    """Ask the runner to end the session (routes and DNS restored); its DISCONNECTED follows."""


@dataclass(frozen=True)
class FollowServerRoute:
    """The network changed while connected: move the host route to the server to the new route
    (the configurator's follow_server_route), and check that the connection still stands."""


@dataclass(frozen=True)
class WatchRoute:
    """Watch the route to this address (the server or the proxy), leaving out the tunnel."""

    address: str
    interface: str | None


# -- decisions to tell the user ------------------------------------------------------------


@dataclass(frozen=True)
class Connected:
    status: Status


@dataclass(frozen=True)
class SessionEnded:
    """A session (or its preparation) ended without the user asking."""

    failure: Failure | None  # None: the server ended it politely
    was_connected: bool  # it dropped (True), or never came up (False)


@dataclass(frozen=True)
class RetryScheduled:
    at: float
    delay: float
    reason: Failure | None  # why the last session ended
    why: Why


@dataclass(frozen=True)
class WaitingForNetwork:
    reason: Failure | None
    why: Why


@dataclass(frozen=True)
class Finished:
    """No further attempt: the user stopped (failure None, or the failure of a stop that went
    wrong), or the last attempt failed and retrying cannot help."""

    failure: Failure | None
    user_asked: bool


Output = Prepare[Any] | Start[Any] | Stop | WatchRoute | FollowServerRoute | Connected | SessionEnded | RetryScheduled | WaitingForNetwork | Finished

RECONNECT_BACKOFF = Backoff()  # the one backoff of both front ends (reconnect.py)
ROAMING_WINDOW = 60.0  # seconds: a session that ends this soon after a network change reconnects at once


class SessionSupervisor(Generic[Target]):
    def __init__(self, backoff: Backoff = RECONNECT_BACKOFF, random: Callable[[], float] = random_module.random) -> None:
        self.backoff = backoff
        self._random = random  # the backoff's jitter; tests pass a fixed draw
        self.phase = Phase.IDLE
        self.target: Target | None = None
        self.attempt = 0  # bumped per attempt; results for an older attempt are stale
        self._reconnect = False
        self._policy = ReconnectPolicy(backoff, random)  # holds the route watcher's last answer too
        self._was_connected = False
        self._next: tuple[Target, bool] | None = None  # connect this once the current session has ended
        self._moved_at: float | None = None  # the last network change while this session was connected
        self._closed = False

    # -- what the front ends read ---------------------------------------------------------

    @property
    def deadline(self) -> float | None:
        """When to call `tick` (the scheduled attempt), or None."""
        pending = self._policy.pending
        return pending.at if self.phase is Phase.BACKING_OFF and isinstance(pending, RetryAt) else None

    @property
    def active(self) -> bool:
        """Something is under way or scheduled: the front end shows Disconnect, not Connect."""
        return self.phase not in (Phase.IDLE, Phase.FAILED)

    @property
    def session_running(self) -> bool:
        """The runner has a session whose DISCONNECTED has not come back."""
        return self.phase in (Phase.CONNECTING, Phase.CONNECTED, Phase.DISCONNECTING)

    # -- what the user asks ---------------------------------------------------------------

    def connect(self, target: Target, now: float, reconnect: bool = False) -> list[Output]:
        """Connect to `target`; with `reconnect`, connect again whenever the session ends until
        retrying cannot help. A session already running is ended first."""
        if self._closed:
            return []
        if self.session_running:
            if self.phase is not Phase.DISCONNECTING and target == self.target:
                return []  # already connecting or connected to it
            self._next = (target, reconnect)
            return self._stop_session()
        self._reconnect = reconnect
        self._policy = self._new_policy()
        return self._prepare(target, first=True)

    def disconnect(self, now: float) -> list[Output]:
        """End the session, or cancel what is being prepared or waited for."""
        self._next = None
        if self.session_running:
            return [] if self.phase is Phase.DISCONNECTING else self._stop_session()
        if self.phase in (Phase.IDLE, Phase.FAILED):
            return []
        self.attempt += 1  # a preparation under way becomes stale
        self._policy.pending = None
        self.phase = Phase.IDLE
        return [Finished(None, user_asked=True)]

    def close(self, now: float) -> list[Output]:
        """The program ends: stop what runs and accept nothing new."""
        self._closed = True
        return self.disconnect(now)

    # -- what the edge reports ------------------------------------------------------------

    def prepared(self, attempt: int, failure: Failure | None, now: float) -> list[Output]:
        """The preamble of `attempt` finished; a failure ends the attempt like a session's."""
        if attempt != self.attempt or self.phase is not Phase.PREPARING or self.target is None:
            return []  # cancelled or replaced meanwhile
        if failure is not None:
            return self._ended(failure, now)
        self.phase = Phase.CONNECTING
        self._was_connected = False
        return [Start(attempt, self.target)]

    def status(self, status: Status, now: float) -> list[Output]:
        """A snapshot from the runner."""
        if status.state is State.CONNECTED and self.phase is Phase.CONNECTING:
            self.phase = Phase.CONNECTED
            self._was_connected = True
            self._moved_at = None
            self._policy.connected(now)
            outputs: list[Output] = [Connected(status)]
            if status.route_target is not None:
                outputs.append(WatchRoute(status.route_target, status.interface))
            return outputs
        if status.state is State.DISCONNECTED and self.session_running:
            if self.phase is Phase.DISCONNECTING:
                return self._stopped(status.failure, now)
            return self._ended(status.failure, now)
        return []

    def network_changed(self, usable: bool, now: float) -> list[Output]:
        """The route watcher's answer changed."""
        decision = self._policy.network_changed(now, usable)
        if self.phase not in (Phase.BACKING_OFF, Phase.WAITING_FOR_NETWORK):
            return []
        if isinstance(decision, WaitForNetwork):
            self.phase = Phase.WAITING_FOR_NETWORK
            return [WaitingForNetwork(decision.reason, Why.NETWORK_LOST)]
        return self._schedule(decision, Why.NETWORK_BACK) if isinstance(decision, RetryAt) else []

    def network_moved(self, now: float) -> list[Output]:
        """The route watcher reported a change (the route to the server moved, or its answer
        changed): while connected, the host route to the server follows."""
        if self.phase is not Phase.CONNECTED:
            return []
        self._moved_at = now
        return [FollowServerRoute()]

    def woke_up(self, now: float) -> list[Output]:
        """The computer slept while an attempt was scheduled: do not sit out the rest of the wait."""
        if self.phase is not Phase.BACKING_OFF:
            return []
        decision = self._policy.resumed(now)
        return self._schedule(decision, Why.WOKE_UP) if isinstance(decision, RetryAt) else []

    def tick(self, now: float) -> list[Output]:
        """Time passed: start the scheduled attempt once its time has come."""
        deadline = self.deadline
        if deadline is None or now < deadline or self.target is None:
            return []
        self._policy.attempt_started()
        return self._prepare(self.target, first=False)

    # -- inside ---------------------------------------------------------------------------

    def _new_policy(self) -> ReconnectPolicy:
        """Afresh each time the user connects; what the route watcher last said carries over."""
        policy = ReconnectPolicy(self.backoff, self._random)
        policy.network_available = self._policy.network_available
        return policy

    def _prepare(self, target: Target, first: bool) -> list[Output]:
        self.attempt += 1
        self.target = target
        self.phase = Phase.PREPARING
        return [Prepare(self.attempt, target, first)]

    def _stop_session(self) -> list[Output]:
        self.phase = Phase.DISCONNECTING
        return [Stop()]

    def _stopped(self, failure: Failure | None, now: float) -> list[Output]:
        """The session the user stopped has ended."""
        self.phase = Phase.IDLE
        outputs: list[Output] = [Finished(failure, user_asked=True)]
        if self._next is not None and not self._closed:
            (target, reconnect), self._next = self._next, None
            outputs += self.connect(target, now, reconnect)
        return outputs

    def _ended(self, failure: Failure | None, now: float) -> list[Output]:
        """A session or a preparation ended without the user asking."""
        outputs: list[Output] = [SessionEnded(failure, self._was_connected)]
        decision = self._policy.session_ended(now, failure)
        if not self._reconnect or isinstance(decision, GiveUp):
            self._policy.pending = None
            self.phase = Phase.FAILED if failure is not None else Phase.IDLE
            return [*outputs, Finished(failure, user_asked=False)]
        if isinstance(decision, WaitForNetwork):
            self.phase = Phase.WAITING_FOR_NETWORK
            return [*outputs, WaitingForNetwork(decision.reason, Why.SESSION_ENDED)]
        moved_at, self._moved_at = self._moved_at, None
        if self._was_connected and moved_at is not None and now - moved_at <= ROAMING_WINDOW:
            decision = self._policy.pending = RetryAt(now, 0.0, decision.reason)  # roamed: no backoff
        return outputs + self._schedule(decision, Why.SESSION_ENDED)

    def _schedule(self, decision: RetryAt, why: Why) -> list[Output]:
        self.phase = Phase.BACKING_OFF
        return [RetryScheduled(decision.at, decision.delay, decision.reason, why)]
