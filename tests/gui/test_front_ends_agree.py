"""The tray app and `sstp-vpn connect --reconnect` share one session supervisor: for the same
sessions (the same drops, the same refusal) they see the same decisions, in the same order.

Each front end runs as it does for a user (the tray's controller on the Qt event loop with the
keyring; the command line's loop on the main thread with its signal handlers); only the runner is
scripted, and every decision the shared driver hands to the front end is recorded."""

from __future__ import annotations

import threading

import pytest

from sstpvpn.client import session_driver, session_loop
from sstpvpn.client.core.auth import AuthPolicy
from sstpvpn.client.core.engine import EngineSettings
from sstpvpn.client.core.events import Credentials
from sstpvpn.client.core.reconnect import Backoff
from sstpvpn.client.core.supervisor import Connected, Finished, Prepare, RetryScheduled, SessionEnded, Start, WaitingForNetwork, WatchRoute
from sstpvpn.client.core.types import Failure, FailureKind, Layer, State
from sstpvpn.client.runner import Connect, Disconnect, Shutdown
from sstpvpn.client.secret_store import SecretKind
from sstpvpn.client.transport import TransportSettings
from sstpvpn.gui import connection
from sstpvpn.gui.connection import ConnectionController
from tests.gui.scripted_runner import ScriptedRunner
from tests.gui.test_controller import make_profile

DROPPED = Failure(Layer.SSTP, "The connection to vpn.example.com was lost.", FailureKind.UNREACHABLE)
TIMED_OUT = Failure(Layer.TLS, "vpn.example.com did not answer within 15 seconds.", FailureKind.UNREACHABLE)
REFUSED = Failure(Layer.AUTH, "The server refused the user name or password.", FailureKind.AUTHENTICATION)
# What each attempt does: come up and then end with the failure, or fail before coming up.
SESSIONS = [("up", DROPPED), ("fail", TIMED_OUT), ("up", REFUSED)]
BACKOFF = Backoff(initial=0.05, cap=0.05, floor=0.05)  # a fixed 50 ms between attempts


class AutoRunner(ScriptedRunner):
    """Plays one scripted session per Connect, on a thread of its own, as the real runner reports."""

    def submit(self, command) -> None:
        super().submit(command)
        if isinstance(command, Connect):
            outcome, failure = SESSIONS[len(self.connects) - 1]
            threading.Thread(target=self._play, args=(outcome, failure)).start()

    def join(self, timeout=None) -> None:
        pass

    def _play(self, outcome: str, failure: Failure) -> None:
        if outcome == "up":
            self.connected()
        self.dropped(failure)


class AlwaysUsable:
    usable = True

    def __init__(self, on_change) -> None:
        pass

    def set_target(self, target, exclude_interface=None) -> None:
        pass

    def close(self) -> None:
        pass


class RecordingDriver(session_driver.SessionDriver):
    """The shared driver, recording every output of the supervisor that it carries out or hands on."""

    def __init__(self, post, on_log, *_factories, **_kwargs) -> None:
        # Whatever the front end would pass (its factories, its history), the same scripted parts.
        super().__init__(post, on_log, runner_factory=AutoRunner, route_watch_factory=AlwaysUsable, backoff=BACKOFF)
        self.decisions: list[object] = []
        RecordingDriver.made.append(self)

    def _carry_out(self, outputs):
        self.decisions += outputs
        return super()._carry_out(outputs)


def comparable(decisions: list[object]) -> list[tuple]:
    """The decisions without what differs by nature: the target (a profile, a command) and the clock."""
    shown = []
    for decision in decisions:
        if isinstance(decision, (Prepare, Start)):
            shown.append((type(decision).__name__, decision.attempt))
        elif isinstance(decision, Connected):
            shown.append(("Connected", decision.status.state))
        elif isinstance(decision, RetryScheduled):
            shown.append(("RetryScheduled", decision.delay, decision.reason, decision.why))
        elif isinstance(decision, (SessionEnded, Finished, WaitingForNetwork, WatchRoute)):
            shown.append((type(decision).__name__, *vars(decision).values()))
        else:
            shown.append((type(decision).__name__,))
    return shown


@pytest.fixture
def recording(monkeypatch) -> list[RecordingDriver]:
    RecordingDriver.made = []
    ScriptedRunner.instances.clear()
    monkeypatch.setattr(connection, "SessionDriver", RecordingDriver)
    return RecordingDriver.made


def test_the_tray_and_the_command_line_decide_alike(qtbot, store, secrets, recording, capsys):
    # The command line, as `sstp-vpn connect --reconnect` runs it.
    command = Connect(
        TransportSettings("vpn.example.com", 443, timeout=5), EngineSettings(Credentials("alice", "pw"), "vpn.example.com", AuthPolicy())
    )
    code = session_loop.run_session(
        command, reconnect=True, verbose=False, fail=lambda failure: 3, ask_retry_password=lambda: None, driver_factory=RecordingDriver
    )
    assert code == 3  # the refusal's exit code, after two retries
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "connected: 198.18.30.10",
        f"reconnecting in 0.1 s: {DROPPED.reason}",
        f"reconnecting in 0.1 s: {TIMED_OUT.reason}",
        "connected: 198.18.30.10",
    ]
    cli = recording[-1].decisions

    # The tray, for a profile that reconnects.
    profile = make_profile(store, auto_reconnect=True)
    secrets.set(profile.id, SecretKind.VPN, "pw")
    controller = ConnectionController(store, secrets, environ={})
    try:
        controller.connect_profile(profile)
        qtbot.waitUntil(lambda: any(isinstance(d, Finished) for d in recording[-1].decisions), timeout=10000)
        tray = recording[-1].decisions
        assert controller.status.state is State.DISCONNECTED and controller.status.failure == REFUSED
    finally:
        controller.shutdown(timeout=1)

    assert comparable(tray) == comparable(cli)
    assert [type(d).__name__ for d in cli] == [
        "Prepare",
        "Start",
        "Connected",
        "SessionEnded",
        "RetryScheduled",
        "Prepare",
        "Start",
        "SessionEnded",
        "RetryScheduled",  # the failed attempt is retried by both
        "Prepare",
        "Start",
        "Connected",
        "SessionEnded",
        "Finished",
    ]
    for driver in recording:
        runner = driver.runner
        assert [type(c) for c in runner.commands] == [Connect, Connect, Connect, Shutdown]
        assert Disconnect not in map(type, runner.commands)
