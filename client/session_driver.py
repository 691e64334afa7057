"""The edge around the session supervisor that the tray app and the command line share: it
carries out the supervisor's commands with the EngineRunner and the route watcher, and feeds back
what they and the clocks report. What is left to a front end is its own: how it prepares an
attempt (`Prepare`: passwords, the platform's preamble) and how it tells the user a decision.

Everything here runs on the front end's one thread. The runner and the route watcher report on
threads of their own, so they go through `post`, which the front end makes deliver the item back
to its thread (a queue for the command line, a queued Qt signal for the tray), where it calls
`deliver(item)`. A front end also calls `poll()` after `wakeup_in()` seconds, for the scheduled
attempt and to notice a suspend (a timer's clock stops while the computer sleeps).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic

from sstpvpn.platform import current
from sstpvpn.platform.route_watch import RouteWatch, start_route_watch

from .attempt_history import AttemptHistory
from .core.events import LogRecord
from .core.reconnect import Backoff
from .core.supervisor import RECONNECT_BACKOFF, Output, Prepare, RetryScheduled, SessionSupervisor, Start, Stop, Target, WatchRoute
from .core.types import Failure, State, Status
from .endpoint import is_ip_address
from .runner import Connect, Disconnect, EngineRunner, RetryPassword, Shutdown
from .sleep_watch import SLEEP_CHECK_SECONDS, SleepWatch

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
        if isinstance(item, Status):
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
        if isinstance(item, NetworkChanged):
            return self._carry_out(self.supervisor.network_changed(item.usable, now))
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
        """Stop the route watcher and the runner thread (after the session has ended, or to give up on it)."""
        self._record_history()
        if self._route_watch is not None:
            self._route_watch.close()
        if self._runner is not None:
            self._runner.submit(Shutdown())

    # -- carrying out ------------------------------------------------------------------------

    def _carry_out(self, outputs: list[Output]) -> list[Output]:
        for output in outputs:
            if isinstance(output, Start):
                self._start()
            elif isinstance(output, Stop) and self._runner is not None:
                self._runner.submit(Disconnect())
            elif isinstance(output, WatchRoute) and self._route_watch is not None:
                self._route_watch.set_target(output.address, output.interface)
            elif isinstance(output, RetryScheduled):
                self._sleep_watch = self._sleep_watch_factory()  # a suspend from now on counts
            elif isinstance(output, Prepare):
                self._sleep_watch = None
        return outputs

    def _start(self) -> None:
        command, self._command = self._command, None
        assert command is not None
        if self._runner is None:
            self._runner = self._runner_factory(self._post, self._on_log, lambda reason: self._post(PasswordRetry(reason)))
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

    def _start_route_watch(self) -> None:
        self._route_watch = self._route_watch_factory(lambda usable: self._post(NetworkChanged(usable)))
        self.supervisor.network_changed(self._route_watch.usable, self._clock())
        if self._watch_target is not None:
            self._route_watch.set_target(self._watch_target)
