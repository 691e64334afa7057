"""The command line's SessionDriver (late_route_watch): the attempt history is written once the
front end has been told each decision, and the handshake's first status only with the next one;
the history's file is not looked for before then."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest

from sstpvpn.client import session_driver
from sstpvpn.client.attempt_history import AttemptHistory
from sstpvpn.client.core.engine import EngineSettings
from sstpvpn.client.core.events import Credentials
from sstpvpn.client.core.supervisor import Connected, Prepare
from sstpvpn.client.core.types import NetworkPlan, State, Status
from sstpvpn.client.runner import Connect
from sstpvpn.client.session_driver import SessionDriver
from sstpvpn.client.transport import TransportSettings
from sstpvpn.platform import current


class FakeRunner:
    def __init__(self, *args: object) -> None:
        self.commands: list[object] = []

    def start(self) -> None:
        pass

    def submit(self, command: object) -> None:
        self.commands.append(command)


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def steps(history: AttemptHistory) -> list[str]:
    attempts = history.load()
    return [state for _, state in attempts[-1].steps] if attempts else []


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(current, "load_tunnel_modules", lambda: calls.append("tunnel"))
    return calls


def started(tmp_path: Path, late: bool) -> tuple[SessionDriver[Connect], AttemptHistory]:
    history = AttemptHistory(tmp_path / "attempts.json")
    driver: SessionDriver[Connect] = SessionDriver(
        lambda item: None, lambda record: None, runner_factory=FakeRunner, history=history, clock=Clock(), late_route_watch=late
    )
    command = Connect(TransportSettings("vpn.example.com"), EngineSettings(Credentials("user", "secret"), "vpn.example.com"))
    outputs = driver.connect(command, reconnect=False)
    prepare = next(output for output in outputs if isinstance(output, Prepare))
    driver.prepared(prepare.attempt, command)
    return driver, history


def test_the_history_follows_the_decisions_and_the_handshake_is_not_held_up(tmp_path: Path, loaded: list[str]) -> None:
    driver, history = started(tmp_path, late=True)
    driver.deliver(Status(State.HANDSHAKE, server="vpn.example.com:443"))
    assert steps(history) == []  # not while TLS and the HTTP request are under way
    assert driver.wakeup_in() != 0.0
    driver.poll()
    assert steps(history) == []
    driver.deliver(Status(State.NEGOTIATING, server="vpn.example.com:443"))
    assert driver.wakeup_in() == 0.0
    driver.poll()
    assert steps(history) == ["handshake", "negotiating"]
    plan = NetworkPlan(address=ip_address("198.18.30.10"), peer=None)
    outputs = driver.deliver(Status(State.CONNECTED, server="vpn.example.com:443", plan=plan))
    assert any(isinstance(output, Connected) for output in outputs)
    assert steps(history) == ["handshake", "negotiating"]  # written after the front end said 'connected:'
    assert driver.wakeup_in() == 0.0
    driver.poll()
    assert steps(history) == ["handshake", "negotiating", "connected"]
    driver.deliver(Status(State.DISCONNECTED, server="vpn.example.com:443"))
    driver.close()  # the end is written even when no poll comes
    assert steps(history)[-1] == "disconnected"
    assert loaded == []  # the tunnel's modules wait for signing in (CONFIGURING), which never came


def test_a_session_that_fails_in_the_handshake_is_still_written(tmp_path: Path, loaded: list[str]) -> None:
    driver, history = started(tmp_path, late=True)
    driver.deliver(Status(State.HANDSHAKE, server="vpn.example.com:443"))
    driver.deliver(Status(State.DISCONNECTED, server="vpn.example.com:443"))
    driver.close()
    assert steps(history) == ["handshake", "disconnected"]


def test_the_history_file_is_not_looked_for_before_it_is_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made: list[AttemptHistory] = []

    class Recorded(AttemptHistory):
        def __init__(self) -> None:
            super().__init__(tmp_path / "attempts.json")
            made.append(self)

    monkeypatch.setattr(session_driver, "AttemptHistory", Recorded)
    driver: SessionDriver[Connect] = SessionDriver(lambda item: None, lambda record: None, runner_factory=FakeRunner, late_route_watch=True)
    assert made == []  # platformdirs and the state folder: not before the first packets
    assert driver.history is driver.history and len(made) == 1


def test_the_tray_writes_each_status_at_once(tmp_path: Path, loaded: list[str]) -> None:
    driver, history = started(tmp_path, late=False)
    driver.deliver(Status(State.HANDSHAKE, server="vpn.example.com:443"))
    assert steps(history) == ["handshake"]
    driver.deliver(Status(State.NEGOTIATING, server="vpn.example.com:443"))
    assert steps(history) == ["handshake", "negotiating"]
