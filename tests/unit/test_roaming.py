"""Roaming in the session supervisor and its driver (fake clock, fake runner and route watch): a
network change while connected asks the runner to move the server's host route along; a session
that ends soon after such a change reconnects at once, not after the backoff's delay."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address
from pathlib import Path
from types import SimpleNamespace

import pytest

from sstpvpn.client import runner as runner_module
from sstpvpn.client.attempt_history import AttemptHistory
from sstpvpn.client.core.engine import EngineSettings
from sstpvpn.client.core.events import Credentials, LogRecord
from sstpvpn.client.core.reconnect import Backoff
from sstpvpn.client.core.supervisor import (
    ROAMING_WINDOW,
    Connected,
    FollowServerRoute,
    Phase,
    Prepare,
    RetryScheduled,
    SessionEnded,
    SessionSupervisor,
    Start,
    WatchRoute,
    Why,
)
from sstpvpn.client.core.types import Failure, FailureKind, Layer, NetworkPlan, State, Status
from sstpvpn.client.runner import Connect, EngineRunner, FollowRoute
from sstpvpn.client.session_driver import NetworkChanged, SessionDriver
from sstpvpn.client.transport import TransportSettings
from sstpvpn.platform import current
from sstpvpn.platform.errors import PlatformError

DROPPED = Failure(Layer.TCP, "The network changed and the connection to the VPN server went with it.", FailureKind.UNREACHABLE)
UP = Status(State.CONNECTED, server="vpn", plan=NetworkPlan(IPv4Address("198.18.30.2"), None), interface="sstp0", route_target="198.18.20.1")
DOWN = Status(State.DISCONNECTED, server="vpn", failure=DROPPED)


def connected(now: float = 0.0) -> SessionSupervisor[str]:
    sup: SessionSupervisor[str] = SessionSupervisor(Backoff(initial=4.0, cap=8.0, floor=1.0), random=lambda: 0.5)
    [prepare] = sup.connect("work", now, reconnect=True)
    assert sup.prepared(prepare.attempt, None, now) == [Start(prepare.attempt, "work")]
    assert sup.status(UP, now) == [Connected(UP), WatchRoute("198.18.20.1", "sstp0")]
    return sup


def test_a_network_change_while_connected_asks_to_follow_the_route():
    sup = connected()
    assert sup.network_changed(True, 5.0) == []  # the reconnect policy has nothing to decide
    assert sup.network_moved(5.0) == [FollowServerRoute()]
    assert sup.phase is Phase.CONNECTED  # the session goes on


def test_a_session_that_ends_soon_after_a_change_reconnects_at_once():
    sup = connected()
    sup.network_moved(5.0)
    assert sup.status(DOWN, 9.0) == [SessionEnded(DROPPED, True), RetryScheduled(9.0, 0.0, DROPPED, Why.SESSION_ENDED)]
    assert sup.deadline == 9.0
    assert sup.tick(9.0) == [Prepare(2, "work", first=False)]


def test_without_a_change_or_long_after_it_the_backoff_applies():
    sup = connected()
    assert sup.status(DOWN, 9.0) == [SessionEnded(DROPPED, True), RetryScheduled(11.5, 2.5, DROPPED, Why.SESSION_ENDED)]
    sup = connected()
    sup.network_moved(5.0)
    ended = sup.status(DOWN, 5.0 + ROAMING_WINDOW + 1)
    assert ended[1].delay == 2.5


def test_a_change_counts_for_its_own_session_only():
    sup = connected()
    sup.network_moved(5.0)
    sup.status(DOWN, 6.0)  # at once
    [prepare] = sup.tick(6.0)
    sup.prepared(prepare.attempt, None, 6.0)
    sup.status(UP, 7.0)  # the new session came up: the change is behind it
    assert sup.status(DOWN, 8.0)[1].delay > 0


def test_no_follow_when_not_connected():
    sup: SessionSupervisor[str] = SessionSupervisor()
    assert sup.network_moved(1.0) == []
    [prepare] = sup.connect("work", 0.0, reconnect=True)
    assert sup.network_moved(1.0) == []  # preparing: nothing to follow yet


class FakeRunner:
    def __init__(self, post, *args: object) -> None:
        self.commands: list[object] = []

    def start(self) -> None:
        pass

    def submit(self, command: object) -> None:
        self.commands.append(command)


class FakeWatch:
    usable = True

    def __init__(self, on_change) -> None:
        self.on_change = on_change
        self.targets: list[tuple[str, str | None]] = []

    def set_target(self, target, exclude_interface=None) -> None:
        self.targets.append((target, exclude_interface))

    def close(self) -> None:
        pass


def test_the_driver_hands_a_change_while_connected_to_the_runner(tmp_path: Path):
    watches: list[FakeWatch] = []

    def watch(on_change) -> FakeWatch:
        watches.append(FakeWatch(on_change))
        return watches[-1]

    driver: SessionDriver[Connect] = SessionDriver(
        lambda item: None,
        lambda record: None,
        runner_factory=FakeRunner,
        route_watch_factory=watch,
        history=AttemptHistory(tmp_path / "attempts.json"),
    )
    command = Connect(TransportSettings("198.18.20.1"), EngineSettings(Credentials("user", "secret"), "198.18.20.1"))
    [prepare] = [output for output in driver.connect(command, reconnect=True) if isinstance(output, Prepare)]
    driver.prepared(prepare.attempt, command)
    runner = driver.runner
    assert isinstance(runner, FakeRunner)
    driver.deliver(NetworkChanged(True))  # connecting: nothing to follow
    assert not any(isinstance(command, FollowRoute) for command in runner.commands)
    driver.deliver(UP)
    assert watches[0].targets[-1] == ("198.18.20.1", "sstp0")
    outputs = driver.deliver(NetworkChanged(True))
    assert outputs == [FollowServerRoute()]
    assert isinstance(runner.commands[-1], FollowRoute)


class FollowingConfigurator:
    def __init__(self, answer: str | None | Exception) -> None:
        self.answer = answer
        self.calls = 0

    def follow_server_route(self) -> str | None:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def tcp_session(monkeypatch: pytest.MonkeyPatch):
    """A runner's session on a real loopback TCP connection (not started: its steps by hand)."""
    records: list[LogRecord] = []
    runner = EngineRunner(lambda status: None, records.append)
    command = Connect(TransportSettings("127.0.0.1"), EngineSettings(Credentials("user", "secret"), "127.0.0.1"))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    session = runner_module._Session(runner, command, SimpleNamespace(sock=client))
    usable: list[bool] = [True]
    asked: list[str] = []

    def source_address_usable(address: str) -> bool:
        asked.append(address)
        return usable[0]

    monkeypatch.setattr(runner_module, "source_address_usable", source_address_usable)
    yield session, records, usable, asked
    client.close()
    accepted.close()


def test_the_runner_follows_and_watches_the_connection_closely_for_a_while(tcp_session):
    session, records, _usable, asked = tcp_session
    session.configurator = FollowingConfigurator("The route to the VPN server 198.18.20.1 now goes through 198.18.25.1 on eth1.")
    session._follow_route(100.0)
    assert session.configurator.calls == 1 and asked == ["127.0.0.1"]
    assert [record.message for record in records] == ["The route to the VPN server 198.18.20.1 now goes through 198.18.25.1 on eth1."]
    sock = session.sock
    assert session.probe_until == 100.0 + runner_module.ROAMING_PROBE_SECONDS
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == runner_module.ROAMING_USER_TIMEOUT_MS
    session._probe(0, keepalive=False)  # what the loop does once the watch is over
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 0
    assert not session.engine.closed


def test_a_source_address_gone_ends_the_session_at_once_with_its_sentence(tcp_session):
    session, records, usable, _asked = tcp_session
    usable[0] = False
    session.configurator = FollowingConfigurator(
        PlatformError("This computer has no route to the VPN server 198.18.20.1 (Network is unreachable); check the network connection.")
    )
    session._follow_route(100.0)
    assert session.cause is not None and session.cause.kind is FailureKind.UNREACHABLE
    assert "127.0.0.1 is gone" in session.cause.reason
    assert [record.message for record in records] == [
        "This computer has no route to the VPN server 198.18.20.1 (Network is unreachable); check the network connection.",
        session.cause.reason,
    ]
    assert session.probe_until is None


def test_no_follow_before_the_tunnel_is_configured(tcp_session):
    session, records, _usable, asked = tcp_session
    session._follow_route(100.0)  # no configurator yet: the route is the system's own
    assert records == [] and asked == [] and session.probe_until is None


def test_the_command_line_without_reconnecting_still_watches_for_roaming_once_connected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(current, "load_tunnel_modules", lambda: None)
    watches: list[FakeWatch] = []

    def watch(on_change) -> FakeWatch:
        watches.append(FakeWatch(on_change))
        return watches[-1]

    driver: SessionDriver[Connect] = SessionDriver(
        lambda item: None,
        lambda record: None,
        runner_factory=FakeRunner,
        route_watch_factory=watch,
        history=AttemptHistory(tmp_path / "attempts.json"),
        late_route_watch=True,
    )
    command = Connect(TransportSettings("198.18.20.1"), EngineSettings(Credentials("user", "secret"), "198.18.20.1"))
    [prepare] = [output for output in driver.connect(command, reconnect=False) if isinstance(output, Prepare)]
    driver.prepared(prepare.attempt, command)
    assert watches == []  # not before the session is up (its imports stay off the first packets' way)
    driver.deliver(UP)
    assert len(watches) == 1 and watches[0].targets[-1] == ("198.18.20.1", "sstp0")
    assert driver.deliver(NetworkChanged(True)) == [FollowServerRoute()]
