"""The edge around the session supervisor that the tray app and the command line share: it
carries out the supervisor's commands with the EngineRunner and the route watcher, and feeds back
what they and the clocks report. What is left to a front end is its own: how it prepares an
attempt (`Prepare`: passwords, the platform's preamble) and how it tells the user a decision.

Everything here runs on the front end's one thread. The runner and the route watcher report on
threads of their own, so they go through `post`, which the front end makes deliver the item back
to its thread (a queue for the command line, a queued Qt signal for the tray), where it calls
`deliver(item)`. A front end also calls `poll()` after `wakeup_in()` seconds, for the scheduled
attempt and to notice a suspend (a timer's clock stops while the computer sleeps).

The kill switch is kept here too, so both front ends keep it alike: its rules, pinned addresses
and state, and when they change, are client/kill_switch_keeper.py's; the driver asks its keeper at
each attempt's start, at each "connected" status and at the session's end, and carries out the
answer. Every Status the front ends get carries the kill switch's state (Status.kill_switch); when
that changes between the runner's statuses, the last one is posted again with the new state
(`deliver` takes such a copy for the front end's view only).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic

from sstpvpn.platform import current
from sstpvpn.platform.kill_switch import KillSwitch
from sstpvpn.platform.route_watch import RouteWatch, start_route_watch

from .attempt_history import AttemptHistory
from .core.events import LogRecord
from .core.reconnect import Backoff
from .core.supervisor import (
    RECONNECT_BACKOFF,
    Finished,
    FollowServerRoute,
    Output,
    Prepare,
    RetryScheduled,
    SessionSupervisor,
    Start,
    Stop,
    Target,
    WatchRoute,
)
from .core.types import Failure, KillSwitchState, State, Status
from .endpoint import is_ip_address
from .kill_switch_keeper import KillSwitchKeeper, LookedUp, on_a_thread, open_kill_switch
from .runner import Connect, Disconnect, EngineRunner, FollowRoute, RetryPassword, Shutdown
from .sleep_watch import SLEEP_CHECK_SECONDS, SleepWatch
from .transport import Endpoint, resolve

WARM_UP_SWITCH_INTERVAL = 0.0005  # seconds; Python's default is 0.005
WARM_UP_DELAY = 0.05  # seconds after signing in: the server's echo has been answered by then


@dataclass(frozen=True)
class NetworkChanged:
    """Posted by the route watcher: whether the server can be reached now."""

    usable: bool


@dataclass(frozen=True)
class PasswordRetry:
    """Posted by the runner: the server refused the password and allows another try."""

    reason: str


class SessionDriver(Generic[Target]):
    def __init__(
        self,
        post: Callable[[object], None],
        on_log: Callable[[LogRecord], None],  # on_log: on the runner's thread
        runner_factory: Callable[..., EngineRunner] = EngineRunner,
        route_watch_factory: Callable[[Callable[[bool], None]], RouteWatch] = start_route_watch,
        sleep_watch_factory: Callable[[], SleepWatch] = SleepWatch,
        backoff: Backoff = RECONNECT_BACKOFF,
        history: AttemptHistory | None = None,
        clock: Callable[[], float] = time.monotonic,
        late_route_watch: bool = False,
        kill_switch_factory: Callable[[], KillSwitch] = open_kill_switch,
        look_up: Callable[[Endpoint], list[tuple[int, tuple]]] = resolve,
        background: Callable[[Callable[[], None]], None] = on_a_thread,
    ) -> None:
        """`late_route_watch`: start the route watcher only once the first session is signed in
        (CONFIGURING) or decided (CONNECTED, DISCONNECTED) instead of with the first attempt,
        and only when reconnecting (only a reconnect decision asks it).
        The command line does, so that the watcher's start (pyroute2's imports on Linux) is not
        on the way of the first packets; what it reads then is the routing table at that moment,
        as it would report it had it run all along. With it, too, a Status goes into the attempt
        history from the next `poll()` (wakeup_in() is then 0) or `close()`, once the front end has
        told what it decided, and the handshake's first status only with the next one (the TLS
        handshake and the HTTP request are under way then): writing the file is not on the way
        of the first packets or of the 'connected:' line."""
        self._late_route_watch = late_route_watch
        self._unrecorded: list[Status] = []  # late_route_watch: statuses for the history, in order
        self._late_pending = late_route_watch  # the late watcher (and the tunnel's modules) still to load
        self._warm_up_at: float | None = None  # when poll() loads them, once signed in
        self._reconnecting = True  # connect() says; without reconnecting no decision asks the watcher
        self.supervisor: SessionSupervisor[Target] = SessionSupervisor(backoff)
        self._history = history  # for the support bundle; made when first used (its folder: platformdirs)
        self._post = post
        self._on_log = on_log
        self._runner_factory = runner_factory
        self._route_watch_factory = route_watch_factory
        self._sleep_watch_factory = sleep_watch_factory
        self._clock = clock
        self._runner: EngineRunner | None = None
        self._route_watch: RouteWatch | None = None
        self._sleep_watch: SleepWatch | None = None
        self._command: Connect | None = None  # the prepared attempt's, until the runner has it
        self._watch_target: str | None = None  # the server's address, when the command names one
        # The kill switch of the session the user asked for (client/kill_switch_keeper.py). Its
        # look-up posts through whatever `_post` is when it answers.
        self._kill_switch = KillSwitchKeeper(lambda item: self._post(item), on_log, self._tell_state, kill_switch_factory, look_up, background)
        # Shared with the runner's thread (_from_runner), under _post_lock:
        self._post_lock = threading.RLock()  # a Qt front end's post may deliver at once, on this thread
        self._kill_switch_state: KillSwitchState | None = None  # None: the kill switch is off
        self._ended_by: Failure | None = None  # the failure the session's DISCONNECTED reports instead of its own
        self._last_posted: Status | None = None
        self._refreshes: list[Status] = []  # copies posted for a changed kill switch state, for the front end only
        # What this thread posts, once the call that made it is done (_flush): a front end whose
        # post delivers at once (the tray's signal, on its own thread) never re-enters a call midway.
        self._outbox: list[Status] = []
        self._refresh_due = False

    @property
    def history(self) -> AttemptHistory:
        if self._history is None:
            self._history = AttemptHistory()
        return self._history

    @history.setter
    def history(self, history: AttemptHistory) -> None:
        self._history = history

    @property
    def runner(self) -> EngineRunner | None:
        return self._runner

    @property
    def kill_switch_leftover(self) -> str | None:
        """The sentence of a kill switch that could not be removed."""
        return self._kill_switch.leftover

    # -- the front end's events; each returns what the front end should act on or tell --------

    def connect(self, target: Target, reconnect: bool) -> list[Output]:
        self._reconnecting = reconnect
        return self._carry_out(self.supervisor.connect(target, self._clock(), reconnect))

    def disconnect(self) -> list[Output]:
        return self._carry_out(self.supervisor.disconnect(self._clock()))

    def prepared(self, attempt: int, outcome: Connect | Failure) -> list[Output]:
        """The front end finished `Prepare(attempt)`: the command to run, or why it cannot."""
        failure = None
        if isinstance(outcome, Connect):
            self._command = outcome
        else:
            failure = outcome
        return self._carry_out(self.supervisor.prepared(attempt, failure, self._clock()))

    def retry_password(self, password: str | None) -> None:
        """The answer to a PasswordRetry: another password, or None to give up."""
        if self._runner is not None:
            self._runner.submit(RetryPassword(password))

    def deliver(self, item: object) -> list[Output]:
        """A report that `post` brought to this thread (a PasswordRetry is the front end's to ask)."""
        now = self._clock()
        if isinstance(item, LookedUp):
            looked_up = self._kill_switch.looked_up(item)
            if looked_up is not None:  # else stopped meanwhile
                self._go_on(*looked_up)
            return self._carry_out([])
        if isinstance(item, Status):
            if self._is_refresh(item):
                return []  # the kill switch's new state, for the front end's view
            if item.state is State.CONNECTED and not self._kill_switch_follows(item):
                return self._carry_out([])  # fail closed: the session ends, with the kill switch's sentence
            if self._late_pending and self._runner is not None:
                if item.state is State.CONFIGURING and self._warm_up_at is None:
                    # Signed in: the server now takes its time for IPCP (and its DHCP). Its echo
                    # right after the crypto binding is answered first, then poll() loads.
                    self._warm_up_at = now + WARM_UP_DELAY
                elif item.state in (State.CONNECTED, State.DISCONNECTED):
                    self._warm_up(tunnel=False)  # configured already, or never to be
                    now = self._clock()
            if self._late_route_watch:
                self._unrecorded.append(item)
            else:
                self.history.observe(item)
            return self._carry_out(self.supervisor.status(item, now))
        if isinstance(item, NetworkChanged):  # while connected, also a move to follow (roaming)
            return self._carry_out(self.supervisor.network_changed(item.usable, now) + self.supervisor.network_moved(now))
        return []

    def poll(self) -> list[Output]:
        if self._history_due():
            self._record_history()
        if self._warm_up_at is not None and self._clock() >= self._warm_up_at:
            self._warm_up()
        now = self._clock()
        outputs: list[Output] = []
        if self._sleep_watch is not None and self._sleep_watch.slept() is not None:
            outputs += self.supervisor.woke_up(now)
        return self._carry_out(outputs + self.supervisor.tick(now))

    def wakeup_in(self) -> float | None:
        """Seconds until `poll()` is due, or None when only a report can change anything."""
        if self._history_due():
            return 0.0
        deadline = self.supervisor.deadline
        if self._warm_up_at is not None:
            deadline = self._warm_up_at if deadline is None else min(deadline, self._warm_up_at)
        if deadline is None:
            return None
        return max(0.0, min(deadline - self._clock(), SLEEP_CHECK_SECONDS))

    def _warm_up(self, tunnel: bool = True) -> None:
        """The late start (late_route_watch): the modules the tunnel needs and, when reconnecting,
        the route watcher (nothing else asks it), once the session is signed in or decided: off
        the handshake's way. Meanwhile the runner answers the server within a short switch
        interval: a thread that wants the GIL waits at most about this long for these imports."""
        self._late_pending = False
        self._warm_up_at = None
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, WARM_UP_SWITCH_INTERVAL))
        try:
            if tunnel:
                current.load_tunnel_modules()
            if self._reconnecting:
                self._start_route_watch()
        finally:
            sys.setswitchinterval(interval)

    def _history_due(self) -> bool:
        return bool(self._unrecorded) and self._unrecorded[-1].state is not State.HANDSHAKE

    def _record_history(self) -> None:
        """The statuses not yet in the history; meanwhile the runner answers the server within a
        short switch interval, as in _warm_up."""
        unrecorded, self._unrecorded = self._unrecorded, []
        if not unrecorded:
            return
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, WARM_UP_SWITCH_INTERVAL))
        try:
            for status in unrecorded:
                self.history.observe(status)
        finally:
            sys.setswitchinterval(interval)

    def shutdown(self) -> list[Output]:
        """The program is ending: stop the session (if any) and start nothing new."""
        return self._carry_out(self.supervisor.close(self._clock()))

    def close(self) -> None:
        """Stop the route watcher and the runner thread (after the session has ended, or to give up
        on it), and remove the kill switch."""
        self._kill_switch.remove()
        self._flush()
        self._record_history()
        if self._route_watch is not None:
            self._route_watch.close()
        if self._runner is not None:
            self._runner.submit(Shutdown())

    # -- carrying out ------------------------------------------------------------------------

    def _carry_out(self, outputs: list[Output]) -> list[Output]:
        for output in outputs:
            if isinstance(output, Start):
                self._start(output.attempt)
            elif isinstance(output, Stop) and self._kill_switch.looking_up:
                self._end_attempt(self._kill_switch.drop_look_up(), None)  # the runner has nothing yet: end it here
            elif isinstance(output, Stop) and self._runner is not None:
                self._runner.submit(Disconnect())
            elif isinstance(output, Finished):
                self._kill_switch.remove()
            elif isinstance(output, FollowServerRoute) and self._runner is not None:
                self._runner.submit(FollowRoute())
            elif isinstance(output, WatchRoute):
                if self._route_watch is None:  # not reconnecting (late_route_watch): watched for roaming from now
                    self._start_route_watch()
                assert self._route_watch is not None
                self._route_watch.set_target(output.address, output.interface)
            elif isinstance(output, RetryScheduled):
                self._sleep_watch = self._sleep_watch_factory()  # a suspend from now on counts
            elif isinstance(output, Prepare):
                self._sleep_watch = None
        self._flush()
        return outputs

    def _start(self, attempt: int) -> None:
        command, self._command = self._command, None
        assert command is not None
        with self._post_lock:
            self._last_posted = None  # an earlier session's: the front end shows this attempt now, not it again
        self._go_on(command, self._kill_switch.start(attempt, command))

    def _go_on(self, command: Connect, outcome: Connect | Failure | None) -> None:
        """What the kill switch says of an attempt's command: run it (as it says), end the attempt
        with this failure, or nothing yet (None: its name is being looked up)."""
        if isinstance(outcome, Connect):
            self._submit(outcome)
        elif outcome is not None:
            self._end_attempt(command, outcome)

    def _submit(self, command: Connect) -> None:
        if self._runner is None:
            self._runner = self._runner_factory(self._from_runner, self._on_log, lambda reason: self._post(PasswordRetry(reason)))
            self._runner.start()
        self._watch_target = None
        transport = command.transport
        if transport.proxy is None and is_ip_address(transport.host):
            self._watch_target = transport.host  # a name's address is known once connected (WatchRoute)
        # The connection first: the route watcher's start (on Linux, pyroute2's imports) then
        # comes after the runner has its command. Its reports come through `post`, after this
        # returns, like the runner's.
        self._runner.submit(command)
        if self._route_watch is None and not self._late_route_watch:
            self._start_route_watch()
        elif self._route_watch is not None and self._watch_target is not None:
            self._route_watch.set_target(self._watch_target)

    # -- posting statuses, with the kill switch's state -----------------------------------------

    def _from_runner(self, status: Status) -> None:
        """The runner's status (on its thread), with the kill switch's state, to the front end."""
        with self._post_lock:
            if self._kill_switch_state is not None:
                status = replace(status, kill_switch=self._kill_switch_state)
            if status.state is State.DISCONNECTED and self._ended_by is not None:
                status, self._ended_by = replace(status, failure=self._ended_by), None
            self._last_posted = status
            self._post(status)

    def _end_attempt(self, command: Connect, failure: Failure | None) -> None:
        """End the attempt before the runner has it, as the runner would: its DISCONNECTED status."""
        server = f"{command.transport.host}:{command.transport.port}"  # as the runner names it
        self._outbox.append(Status(State.DISCONNECTED, server=server, failure=failure))

    def _tell_state(self, state: KillSwitchState | None) -> None:
        """The kill switch's state changed: the runner's statuses from now on carry it, and the
        front end gets the last one again with it (_flush)."""
        with self._post_lock:
            if state != self._kill_switch_state:
                self._kill_switch_state = state
                self._refresh_due = True

    def _flush(self) -> None:
        """Post what this thread has to post: the last status again when the kill switch's state
        changed since it was posted, then the ends of attempts the runner never had."""
        with self._post_lock:
            last, state = self._last_posted, self._kill_switch_state
            if self._refresh_due and last is not None and last.kill_switch != state:
                refresh = replace(last, kill_switch=state)
                self._last_posted = refresh
                self._refreshes.append(refresh)
                self._post(refresh)
            self._refresh_due = False
            outbox, self._outbox = self._outbox, []
            for status in outbox:
                self._from_runner(status)

    def _is_refresh(self, status: Status) -> bool:
        for index, refresh in enumerate(self._refreshes):
            if refresh is status:
                del self._refreshes[index]
                return True
        return False

    def _kill_switch_follows(self, status: Status) -> bool:
        """A "connected" status: the rules take in this connection and its tunnel. False when they
        could not be put in place; the session then ends with their sentence."""
        if not self.supervisor.session_running:
            return True
        failure = self._kill_switch.follow(status)
        if failure is None:
            return True
        with self._post_lock:
            self._ended_by = failure
        if self._runner is not None:
            self._runner.submit(Disconnect())
        return False

    def _start_route_watch(self) -> None:
        self._route_watch = self._route_watch_factory(lambda usable: self._post(NetworkChanged(usable)))
        self.supervisor.network_changed(self._route_watch.usable, self._clock())
        if self._watch_target is not None:
            self._route_watch.set_target(self._watch_target)
