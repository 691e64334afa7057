"""`sstp-vpn connect --reconnect` (or a profile with auto_reconnect): stay connected.

The same EngineRunner as a single connection; between sessions the ReconnectPolicy decides, a
route watcher tells it when the network goes and comes back, and a SleepWatch tells it when the
computer woke up. Everything arrives in one queue, read by the main thread (signal handlers only
put into it), so the decisions are made in one place and in order.

What a script sees on stdout: one `connected: ADDRESS` line per session that came up, and one
progress line per retry (`reconnecting in 4.2 s: <sentence>`, `waiting for a network
connection`, `network is back, reconnecting`). Refused credentials or an untrusted server end the
command at once with their exit code and sentence, as without --reconnect; Ctrl-C or SIGTERM
between attempts exits 0 at once.
"""

from __future__ import annotations

import logging
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import ip_address

from sstpvpn.platform.route_watch import RouteWatch, start_route_watch

from .attempt_history import AttemptHistory
from .core.events import LogRecord
from .core.types import Failure, State
from .core.reconnect import ENDED_SENTENCE, Decision, GiveUp, ReconnectPolicy, RetryAt, WaitForNetwork
from .recent_log import RecentLog
from .runner import Connect, Disconnect, EngineRunner, Shutdown
from .core.types import Status
from .sleep_watch import SLEEP_CHECK_SECONDS, SleepWatch


@dataclass(frozen=True)
class _NetworkChanged:
    usable: bool


@dataclass(frozen=True)
class _Stop:
    signum: int


def say(line: str) -> None:
    print(line, flush=True)


def run_reconnecting(command: Connect, verbose: bool, fail: Callable[[Failure], int],
                     start_watch: Callable[[Callable[[bool], None]], RouteWatch] = start_route_watch) -> int:
    """Connect, and connect again whenever the session ends, until the user stops it or retrying
    cannot help. Returns the exit code."""
    inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
    history, recent_log = AttemptHistory(), RecentLog()  # for `sstp-vpn bundle`

    def on_status(status: Status) -> None:
        history.observe(status)
        inbox.put(status)

    def on_log(record: LogRecord) -> None:
        recent_log.append(record)
        if (record.level >= logging.INFO or verbose) and record.level < logging.WARNING:
            say(record.message)  # failures are told once, in the retry line or at the end

    runner = EngineRunner(on_status, on_log)
    watch = start_watch(lambda usable: inbox.put(_NetworkChanged(usable)))
    if command.transport.proxy is None and _is_address(command.transport.host):
        watch.set_target(command.transport.host)  # else known once connected (Status.route_target)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, frame: inbox.put(_Stop(number)))  # SimpleQueue.put is reentrant
    runner.start()
    try:
        return _Reconnecting(command, runner, watch, inbox, fail).run()
    finally:
        watch.close()
        runner.submit(Shutdown())
        runner.join(10)


def _is_address(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


class _Reconnecting:
    def __init__(self, command: Connect, runner: EngineRunner, watch: RouteWatch, inbox: queue.SimpleQueue,
                 fail: Callable[[Failure], int]) -> None:
        self.command = command
        self.runner = runner
        self.watch = watch
        self.inbox = inbox
        self.fail = fail
        self.policy = ReconnectPolicy()
        self.sleep_watch = SleepWatch()
        self.in_session = False
        self.announced = False  # this session's `connected:` line is out
        self.stopping = False
        self.decision: Decision | None = None

    def run(self) -> int:
        self._start_session()
        while True:
            timeout = SLEEP_CHECK_SECONDS  # the queue's timeout runs on the clock a suspend stops
            if isinstance(self.decision, RetryAt):
                timeout = min(timeout, max(0.0, self.decision.at - time.monotonic()))
            try:
                item = self.inbox.get(timeout=timeout)
            except queue.Empty:
                item = None
            now = time.monotonic()
            if isinstance(item, _Stop):
                if not self.in_session:
                    say("disconnected")
                    return 0
                if not self.stopping:
                    say("disconnecting...")
                    self.stopping = True
                self.runner.submit(Disconnect())
            elif isinstance(item, Status):
                code = self._on_status(item, now)
                if code is not None:
                    return code
            elif isinstance(item, _NetworkChanged):
                decision = self.policy.network_changed(now, item.usable)
                if isinstance(decision, WaitForNetwork):
                    self._follow(decision, "waiting for a network connection")
                elif isinstance(decision, RetryAt):
                    self._follow(decision, "network is back, reconnecting")
            if self.sleep_watch.slept() is not None and not self.in_session:
                decision = self.policy.resumed(now)
                if decision is not None:
                    self._follow(decision, "the computer woke up, reconnecting")
            if isinstance(self.decision, RetryAt) and now >= self.decision.at and not self.in_session:
                self._start_session()

    def _start_session(self) -> None:
        self.policy.attempt_started()
        self.decision = None
        self.in_session = True
        self.announced = False
        self.runner.submit(self.command)

    def _on_status(self, status: Status, now: float) -> int | None:
        if status.state is State.CONNECTED and status.plan is not None and not self.announced:
            self.announced = True
            say(f"connected: {status.plan.address}")
            self.policy.connected(now)
            if status.route_target is not None:
                self.watch.set_target(status.route_target, status.interface)
            return None
        if status.state is not State.DISCONNECTED:
            return None
        self.in_session = False
        failure = status.failure
        if self.stopping:
            if failure is not None:
                return self.fail(failure)
            say("disconnected")
            return 0
        decision = self.policy.session_ended(now, failure)
        if isinstance(decision, GiveUp):
            return self.fail(decision.failure)  # a user's disconnect only comes with self.stopping
        if isinstance(decision, WaitForNetwork):
            self._follow(decision, f"waiting for a network connection: {decision.reason or ENDED_SENTENCE}")
        elif decision.delay > 0:
            self._follow(decision, f"reconnecting in {decision.delay:.1f} s: {decision.sentence}")
        else:
            self._follow(decision, f"reconnecting now: {decision.sentence}")
        return None

    def _follow(self, decision: RetryAt | WaitForNetwork, line: str) -> None:
        self.decision = decision
        say(line)
