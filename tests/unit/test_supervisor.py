"""The session supervisor both front ends share (client/core/supervisor.py), with a fake clock:
every state, the backoff, the network and sleep events, the user's commands, stale results."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from sstpvpn.client.core.reconnect import Backoff
from sstpvpn.client.core.supervisor import (
    Connected,
    Finished,
    Phase,
    Prepare,
    RetryScheduled,
    SessionEnded,
    SessionSupervisor,
    Start,
    Stop,
    WaitingForNetwork,
    WatchRoute,
    Why,
)
from sstpvpn.client.core.types import Failure, FailureKind, Layer, NetworkPlan, State, Status

DROPPED = Failure(Layer.SSTP, "The connection was lost.", FailureKind.UNREACHABLE)
REFUSED = Failure(Layer.AUTH, "The server refused the user name or password.", FailureKind.AUTHENTICATION)
LOCAL = Failure(Layer.PLATFORM, "This system is not supported.", FailureKind.OTHER)
UP = Status(State.CONNECTED, server="vpn", plan=NetworkPlan(IPv4Address("198.18.30.2"), None), interface="sstp0", route_target="198.18.30.1")


def down(failure: Failure | None = None) -> Status:
    return Status(State.DISCONNECTED, server="vpn", failure=failure)


def supervisor(**kwargs) -> SessionSupervisor[str]:
    return SessionSupervisor(Backoff(initial=4.0, cap=8.0, floor=1.0), random=lambda: 0.5, **kwargs)


def up(sup: SessionSupervisor[str], now: float = 0.0, reconnect: bool = True) -> None:
    [prepare] = sup.connect("work", now, reconnect=reconnect)
    assert sup.prepared(prepare.attempt, None, now) == [Start(prepare.attempt, "work")]
    assert sup.status(UP, now) == [Connected(UP), WatchRoute("198.18.30.1", "sstp0")]
    assert sup.phase is Phase.CONNECTED


def test_an_attempt_is_prepared_then_started_then_connected():
    sup = supervisor()
    outputs = sup.connect("work", 0.0)
    assert outputs == [Prepare(1, "work", first=True)] and sup.phase is Phase.PREPARING and sup.active
    assert sup.prepared(1, None, 0.1) == [Start(1, "work")] and sup.phase is Phase.CONNECTING
    assert sup.status(Status(State.AUTHENTICATING), 0.2) == []
    assert sup.status(UP, 0.3) == [Connected(UP), WatchRoute("198.18.30.1", "sstp0")]
    assert sup.deadline is None


def test_without_reconnect_a_drop_is_final():
    sup = supervisor()
    up(sup, reconnect=False)
    assert sup.status(down(DROPPED), 5.0) == [SessionEnded(DROPPED, True), Finished(DROPPED, user_asked=False)]
    assert sup.phase is Phase.FAILED and not sup.active


def test_a_polite_end_without_reconnect_is_idle():
    sup = supervisor()
    up(sup, reconnect=False)
    assert sup.status(down(), 5.0) == [SessionEnded(None, True), Finished(None, user_asked=False)]
    assert sup.phase is Phase.IDLE


def test_a_drop_backs_off_then_the_timer_starts_the_next_attempt():
    sup = supervisor()
    up(sup)
    ended = sup.status(down(DROPPED), 10.0)
    # Full jitter between the floor (1 s) and the first ceiling (4 s) with a draw of 0.5: 2.5 s.
    assert ended == [SessionEnded(DROPPED, True), RetryScheduled(12.5, 2.5, DROPPED, Why.SESSION_ENDED)]
    assert sup.phase is Phase.BACKING_OFF and sup.deadline == 12.5 and sup.active
    assert sup.tick(12.0) == []
    assert sup.tick(12.5) == [Prepare(2, "work", first=False)]
    assert sup.deadline is None


def test_a_failed_first_attempt_is_retried_too():
    """The same for the tray and the command line: reconnect means "keep me connected", also when
    the network was not up yet at the first try."""
    sup = supervisor()
    [prepare] = sup.connect("work", 0.0, reconnect=True)
    sup.prepared(prepare.attempt, None, 0.0)
    outputs = sup.status(down(DROPPED), 1.0)
    assert outputs == [SessionEnded(DROPPED, False), RetryScheduled(3.5, 2.5, DROPPED, Why.SESSION_ENDED)]


def test_the_backoff_doubles_per_failed_attempt_and_is_capped():
    sup = supervisor()
    up(sup)
    now, delays = 10.0, []
    for _ in range(4):
        [_, retry] = sup.status(down(DROPPED), now)
        delays.append(retry.delay)
        now = retry.at
        [prepare] = sup.tick(now)
        sup.prepared(prepare.attempt, None, now)
    assert delays == [2.5, 4.5, 4.5, 4.5]  # ceilings 4, 8, 8 (cap), 8


def test_refused_credentials_and_local_failures_give_up():
    for failure in (REFUSED, LOCAL):
        sup = supervisor()
        up(sup)
        assert sup.status(down(failure), 5.0) == [SessionEnded(failure, True), Finished(failure, user_asked=False)]
        assert sup.phase is Phase.FAILED


def test_a_failed_preparation_ends_the_attempt_like_a_session():
    sup = supervisor()
    [prepare] = sup.connect("work", 0.0, reconnect=True)
    assert sup.prepared(prepare.attempt, LOCAL, 0.1) == [SessionEnded(LOCAL, False), Finished(LOCAL, user_asked=False)]


def test_no_network_waits_and_its_return_retries_at_once():
    sup = supervisor()
    up(sup)
    sup.status(down(DROPPED), 10.0)
    assert sup.network_changed(False, 11.0) == [WaitingForNetwork(DROPPED, Why.NETWORK_LOST)]
    assert sup.phase is Phase.WAITING_FOR_NETWORK and sup.deadline is None and sup.active
    assert sup.tick(100.0) == []
    assert sup.network_changed(True, 20.0) == [RetryScheduled(20.0, 0.0, DROPPED, Why.NETWORK_BACK)]
    assert sup.tick(20.0) == [Prepare(2, "work", first=False)]


def test_a_drop_while_the_network_is_gone_waits_for_it():
    sup = supervisor()
    up(sup)
    assert sup.network_changed(False, 5.0) == []  # connected: the session's own end decides
    assert sup.status(down(DROPPED), 6.0) == [SessionEnded(DROPPED, True), WaitingForNetwork(DROPPED, Why.SESSION_ENDED)]


def test_waking_up_retries_at_once_only_while_backing_off():
    sup = supervisor()
    up(sup)
    assert sup.woke_up(5.0) == []
    sup.status(down(DROPPED), 10.0)
    assert sup.woke_up(11.0) == [RetryScheduled(11.0, 0.0, DROPPED, Why.WOKE_UP)]
    assert sup.deadline == 11.0


def test_the_users_disconnect_stops_the_session_and_is_final():
    sup = supervisor()
    up(sup)
    assert sup.disconnect(5.0) == [Stop()] and sup.phase is Phase.DISCONNECTING
    assert sup.disconnect(5.1) == []  # asked once
    assert sup.status(down(), 6.0) == [Finished(None, user_asked=True)]
    assert sup.phase is Phase.IDLE and not sup.active


def test_a_disconnect_while_backing_off_or_preparing_cancels():
    sup = supervisor()
    up(sup)
    sup.status(down(DROPPED), 10.0)
    assert sup.disconnect(11.0) == [Finished(None, user_asked=True)]
    assert sup.phase is Phase.IDLE and sup.deadline is None and sup.tick(100.0) == []
    [prepare] = sup.connect("work", 20.0)
    assert sup.disconnect(20.5) == [Finished(None, user_asked=True)]
    assert sup.prepared(prepare.attempt, None, 21.0) == []  # the cancelled preparation's result is stale


def test_connecting_elsewhere_ends_this_session_first():
    sup = supervisor()
    up(sup)
    assert sup.connect("work", 1.0) == []  # already connected to it
    assert sup.connect("home", 1.0, reconnect=False) == [Stop()]
    assert sup.status(down(), 2.0) == [Finished(None, user_asked=True), Prepare(2, "home", first=True)]
    assert sup.target == "home"


def test_close_accepts_nothing_new():
    sup = supervisor()
    up(sup)
    assert sup.close(1.0) == [Stop()]
    assert sup.connect("home", 1.5) == []
    assert sup.status(down(), 2.0) == [Finished(None, user_asked=True)]


@pytest.mark.parametrize("failure", [None, DROPPED])
def test_a_stopped_session_reports_how_the_stop_went(failure):
    sup = supervisor()
    up(sup)
    sup.disconnect(1.0)
    assert sup.status(down(failure), 2.0) == [Finished(failure, user_asked=True)]
