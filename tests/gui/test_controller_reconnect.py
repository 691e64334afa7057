"""The tray app's reconnects follow the shared policy: backoff between attempts, a pause while
the server cannot be reached, an attempt at once when the network returns, never a loop on
refused credentials. The route watcher's callback comes from another thread, as the real one's."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import replace

import pytest

from sstpvpn.client import session_driver
from sstpvpn.client.core.reconnect import Backoff
from sstpvpn.client.core.types import Failure, FailureKind, Layer, State
from sstpvpn.client.secret_store import SecretKind
from sstpvpn.client.sleep_watch import ClockPair, SleepWatch
from sstpvpn.gui.connection import ConnectionController
from tests.gui.scripted_runner import ScriptedRunner
from tests.gui.test_controller import Recorder, connect_and_wait, make_profile

DROPPED = Failure(Layer.SSTP, "The connection to vpn.example.com was lost.", FailureKind.UNREACHABLE)


class ScriptedRouteWatch:
    """Stands in for the netlink watcher: the test says when the route goes and comes back."""

    def __init__(self, on_change) -> None:
        self.on_change = on_change
        self.usable = True
        self.targets: list[tuple[str | None, str | None]] = []
        self.closed = False

    def set_target(self, target, exclude_interface=None) -> None:
        self.targets.append((target, exclude_interface))

    def close(self) -> None:
        self.closed = True

    def change(self, usable: bool) -> None:
        self.usable = usable
        thread = threading.Thread(target=self.on_change, args=(usable,))
        thread.start()
        thread.join()


class FakeClock:
    """The supervisor's clock, so that a test can skip a wait without sitting it out."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def watches() -> list[ScriptedRouteWatch]:
    return []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def controller(qtbot, store, secrets, watches, clock):
    ScriptedRunner.instances.clear()

    def start_watch(on_change):
        watches.append(ScriptedRouteWatch(on_change))
        return watches[-1]

    made = ConnectionController(
        store,
        secrets,
        environ={},
        runner_factory=ScriptedRunner,
        route_watch_factory=start_watch,
        backoff=Backoff(initial=4.0, cap=8.0, floor=3.0),
        clock=clock,
    )
    yield made
    made.shutdown(timeout=1)


def skip_the_wait(controller, clock) -> None:
    """Move the clock to the scheduled attempt and let the controller's timer look at it now."""
    clock.now = controller._driver.supervisor.deadline
    controller._poll_timer.start(0)


def connected_session(qtbot, controller, store, secrets):
    profile = make_profile(store, auto_reconnect=True)
    secrets.set(profile.id, SecretKind.VPN, "s3cret")
    seen = Recorder(controller)
    engine = connect_and_wait(qtbot, controller, profile)
    engine.connected()
    qtbot.waitUntil(lambda: controller.status.state is State.CONNECTED)
    return engine, seen


def test_the_watch_follows_the_connections_address_and_tunnel(qtbot, controller, store, secrets, watches, clock):
    profile = make_profile(store, auto_reconnect=True)
    secrets.set(profile.id, SecretKind.VPN, "s3cret")
    engine = connect_and_wait(qtbot, controller, profile)
    (watch,) = watches
    assert watch.targets == []  # until a session is up: any default route will do
    connected = replace(engine.connected(), route_target="198.18.20.1", interface="sstp7")
    engine.dropped(DROPPED)
    qtbot.waitUntil(lambda: controller.reconnect_in is not None)
    skip_the_wait(controller, clock)
    qtbot.waitUntil(lambda: len(engine.connects) == 2, timeout=5000)
    engine.publish(connected)  # what EngineRunner publishes: the TCP peer and the tunnel's name
    qtbot.waitUntil(lambda: watch.targets == [("198.18.20.1", "sstp7")])
    controller.shutdown(timeout=1)
    qtbot.waitUntil(lambda: watch.closed, timeout=5000)


def test_no_route_pauses_and_its_return_reconnects_at_once(qtbot, controller, store, secrets, watches):
    engine, seen = connected_session(qtbot, controller, store, secrets)
    engine.dropped(DROPPED)
    qtbot.waitUntil(lambda: controller.reconnect_in is not None)
    assert 2.0 < controller.reconnect_in <= 4.0  # the backoff's first window, not a fixed table
    (watch,) = watches
    watch.change(False)
    qtbot.waitUntil(lambda: controller.waiting_for_network)
    assert controller.reconnect_in == math.inf and controller.active  # shown as "Waiting for a network"
    assert seen.notices[-1].text == "Waiting for a network connection."
    qtbot.wait(300)
    assert len(engine.connects) == 1  # nothing is tried while there is no route
    watch.change(True)
    qtbot.waitUntil(lambda: len(engine.connects) == 2, timeout=2000)  # at once, not after the backoff
    assert not controller.waiting_for_network
    assert seen.notices[-1].text == "The network is back. Trying again now."


def test_a_drop_while_the_network_is_gone_waits_for_it(qtbot, controller, store, secrets, watches):
    engine, seen = connected_session(qtbot, controller, store, secrets)
    watches[0].change(False)  # while connected: nothing to do yet
    qtbot.wait(100)
    assert controller.status.state is State.CONNECTED and not controller.waiting_for_network
    engine.dropped(DROPPED)
    qtbot.waitUntil(lambda: controller.waiting_for_network)
    assert controller.reconnect_in == math.inf
    watches[0].change(True)
    qtbot.waitUntil(lambda: len(engine.connects) == 2, timeout=2000)


def test_refused_credentials_after_a_drop_stop_the_retries(qtbot, controller, store, secrets, watches, clock):
    engine, seen = connected_session(qtbot, controller, store, secrets)
    engine.dropped(DROPPED)
    qtbot.waitUntil(lambda: controller.reconnect_in is not None)
    skip_the_wait(controller, clock)  # the delay itself is checked above
    qtbot.waitUntil(lambda: len(engine.connects) == 2, timeout=5000)
    refused = Failure(Layer.AUTH, "The server refused the user name or password: check them in the profile.", FailureKind.AUTHENTICATION)
    engine.dropped(refused)
    qtbot.waitUntil(lambda: seen.notices[-1].text == refused.reason)
    assert controller.reconnect_in is None and not controller.waiting_for_network and not controller.active
    watches[0].change(False)
    watches[0].change(True)
    qtbot.wait(300)
    assert len(engine.connects) == 2  # the network's return does not bring the loop back


def test_a_users_disconnect_during_the_wait_is_final(qtbot, controller, store, secrets, watches):
    engine, _ = connected_session(qtbot, controller, store, secrets)
    engine.dropped(DROPPED)
    watches[0].change(False)
    qtbot.waitUntil(lambda: controller.waiting_for_network)
    controller.disconnect_session()
    assert not controller.active
    watches[0].change(True)
    qtbot.wait(300)
    assert len(engine.connects) == 1


def test_waking_up_during_the_wait_reconnects_at_once(qtbot, store, secrets, watches, monkeypatch):
    """The retry timer runs on the clock that stops while the computer sleeps; the controller
    looks for a suspend while it waits and does not sit out the rest of the delay."""
    monkeypatch.setattr(session_driver, "SLEEP_CHECK_SECONDS", 0.05)
    boottime_offset = [0.0]
    clocks = ClockPair(time.monotonic, lambda: time.monotonic() + boottime_offset[0])
    ScriptedRunner.instances.clear()
    controller = ConnectionController(
        store,
        secrets,
        environ={},
        runner_factory=ScriptedRunner,
        route_watch_factory=lambda on_change: ScriptedRouteWatch(on_change),
        sleep_watch_factory=lambda: SleepWatch(clocks),
        backoff=Backoff(initial=60.0, cap=60.0, floor=50.0),
    )
    try:
        engine, seen = connected_session(qtbot, controller, store, secrets)
        engine.dropped(DROPPED)
        qtbot.waitUntil(lambda: controller.reconnect_in is not None)
        assert controller.reconnect_in > 45  # a long wait ahead
        qtbot.wait(200)
        assert len(engine.connects) == 1  # no suspend seen: it keeps waiting
        boottime_offset[0] = 3600.0  # an hour asleep
        qtbot.waitUntil(lambda: len(engine.connects) == 2, timeout=2000)
        assert seen.notices[-1].text == "The computer woke up. Trying again now."
    finally:
        controller.shutdown(timeout=1)
