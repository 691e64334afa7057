"""`sstp-vpn connect`: the command line's thin loop around the shared session supervisor.

One queue, read by the main thread, brings everything in order: the runner's status snapshots and
the route watcher's answers (through SessionDriver's `post`) and Ctrl-C/SIGTERM (signal handlers
only put into it). Each decision of the supervisor becomes one line on stdout.

What a script sees: one `connected: ADDRESS` line per session that came up; with --reconnect one
progress line per retry (`reconnecting in 4.2 s: <sentence>`, `waiting for a network connection`,
`network is back, reconnecting`, `the computer woke up, reconnecting`). Refused credentials, an
untrusted server or a local problem end the command at once with their exit code and sentence
(so does any failure without --reconnect); Ctrl-C or SIGTERM disconnects (`disconnecting...`,
then `disconnected`), or between attempts exits 0 at once. With a kill switch, one line when it
goes on (`Kill switch on: ...`) and one when it is removed (`Kill switch off: ...`); one that
could not be removed is told on stderr and the exit code is not 0.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sstpvpn.platform import current
from sstpvpn.platform.session_preparation import SessionPreparation

from .core.events import LogRecord
from .core.i18n import _
from .core.reconnect import ended_sentence
from .core.supervisor import Connected, Finished, Output, Prepare, RetryScheduled, Stop, WaitingForNetwork, Why
from .core.types import Failure
from .recent_log import RecentLog
from .runner import Connect
from .session_driver import PasswordRetry, SessionDriver

IDLE_WAIT_SECONDS = 5.0  # how long the loop sleeps when nothing is scheduled (signals wake it anyway)


@dataclass(frozen=True)
class _Interrupted:
    signum: int


_say_lock = threading.Lock()


def say(line: str) -> None:
    """One line on stdout, whole: the runner's thread (log lines) and this one (connected:, ...)
    both print, and print() writes the text and its newline separately."""
    with _say_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def run_session(
    command: Connect,
    reconnect: bool,
    verbose: bool,
    fail: Callable[[Failure], int],
    ask_retry_password: Callable[[], str | None],
    driver_factory: Callable[..., SessionDriver[Connect]] = SessionDriver,
) -> int:
    """Connect (and with `reconnect`, connect again whenever the session ends) until the user
    stops it or retrying cannot help. Returns the exit code."""
    inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
    recent_log = RecentLog()  # for `sstp-vpn bundle`

    def on_log(record: LogRecord) -> None:
        recent_log.append(record)
        if (record.level >= logging.INFO or verbose) and record.level < logging.WARNING:
            say(record.message)  # failures are told once, in the retry line or at the end

    driver = driver_factory(inbox.put, on_log, late_route_watch=True)  # the watcher once a session is decided: not before the first packets
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, frame: inbox.put(_Interrupted(number)))  # SimpleQueue.put is reentrant
    front_end = _CommandLine(driver, command, fail)
    code: int | None = None
    try:
        code = front_end.render(driver.connect(command, reconnect))
        while code is None:
            wakeup = driver.wakeup_in()
            try:
                item = inbox.get(timeout=IDLE_WAIT_SECONDS if wakeup is None else wakeup)
            except queue.Empty:
                item = None
            if isinstance(item, _Interrupted):
                outputs = driver.disconnect()
            elif isinstance(item, PasswordRetry):
                say(item.reason)
                # The answer may take a while (a prompt): read it on a thread of its own.
                threading.Thread(target=lambda: driver.retry_password(ask_retry_password()), name="password-retry", daemon=True).start()
                outputs = []
            elif item is not None:
                outputs = driver.deliver(item)
            else:
                outputs = driver.poll()
            code = front_end.render(outputs)
    finally:
        driver.close()  # removes the kill switch too, whatever ended the loop
        if driver.runner is not None:
            driver.runner.join(10)
    assert code is not None  # the loop ends only with an exit code (or an exception)
    if driver.kill_switch_leftover is not None:  # the kill switch could not be removed
        print(f"sstp-vpn: {driver.kill_switch_leftover}", file=sys.stderr, flush=True)
        return code or 1
    return code


class _CommandLine:
    """Renders the supervisor's decisions as the command line's lines, and runs the preamble."""

    def __init__(self, driver: SessionDriver[Connect], command: Connect, fail: Callable[[Failure], int]) -> None:
        self.driver = driver
        self.command = command
        self.fail = fail

    def render(self, outputs: list[Output]) -> int | None:
        """Say what happened; the exit code once the command is over."""
        for output in outputs:
            if isinstance(output, Prepare):
                code = self.render(self.driver.prepared(output.attempt, self._prepare(output.first)))
                if code is not None:
                    return code
            elif isinstance(output, Connected) and output.status.plan is not None:
                # Translators: command-line progress line (scripts may wait for it in English); {address} is the VPN address
                say(_("connected: {address}").format(address=output.status.plan.address))
            elif isinstance(output, Stop):
                # Translators: command-line progress line
                say(_("disconnecting..."))
            elif isinstance(output, RetryScheduled):
                say(_retry_line(output))
            elif isinstance(output, WaitingForNetwork):
                reason = output.reason.reason if output.reason is not None else ended_sentence()
                if output.why is Why.SESSION_ENDED:
                    # Translators: command-line progress line; {reason} is a whole sentence
                    say(_("waiting for a network connection: {reason}").format(reason=reason))
                else:
                    # Translators: command-line progress line
                    say(_("waiting for a network connection"))
            elif isinstance(output, Finished):
                if output.failure is not None:
                    return self.fail(output.failure)
                # Translators: command-line progress line
                say(_("disconnected"))
                return 0
        return None

    def _prepare(self, first: bool) -> Connect | Failure:
        if first:
            return self.command  # run_connect ran the first preamble before asking for passwords
        preparation = current.prepare_session()
        announce_preparation(preparation, first=False)
        return preparation.failure or self.command


def announce_preparation(preparation: SessionPreparation, first: bool) -> None:
    if first and preparation.note:
        say(preparation.note)
    if preparation.repaired:
        say(_("Restored the network settings left behind by an earlier session that did not end cleanly."))


def _retry_line(retry: RetryScheduled) -> str:
    if retry.why is Why.NETWORK_BACK:
        # Translators: command-line progress line
        return _("network is back, reconnecting")
    if retry.why is Why.WOKE_UP:
        # Translators: command-line progress line
        return _("the computer woke up, reconnecting")
    sentence = retry.reason.reason if retry.reason is not None else ended_sentence()
    if retry.delay > 0:
        # Translators: command-line progress line; {reason} is a whole sentence saying why the session ended
        return _("reconnecting in {seconds:.1f} s: {reason}").format(seconds=retry.delay, reason=sentence)
    # Translators: command-line progress line; {reason} is a whole sentence saying why the session ended
    return _("reconnecting now: {reason}").format(reason=sentence)
