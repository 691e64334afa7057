"""The reconnect policy (pure) and the suspend detector with a faked clock pair."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from sstpvpn.client.core.reconnect import Backoff, GiveUp, ReconnectPolicy, RetryAt, WaitForNetwork
from sstpvpn.client.core.types import Failure, FailureKind, Layer
from sstpvpn.client.sleep_watch import ClockPair, SleepWatch, slept_failure

DROPPED = Failure(Layer.SSTP, "The connection to vpn.example.com was lost.", FailureKind.UNREACHABLE)
backoffs = st.builds(Backoff, initial=st.floats(0.1, 10), cap=st.floats(10, 600), floor=st.floats(0, 0.1))
draws = st.floats(0, 1, exclude_max=True)


@given(backoffs, st.integers(0, 10_000), draws)
def test_delay_is_between_the_floor_and_the_ceiling_and_never_past_the_cap(backoff, attempt, draw):
    delay = backoff.delay(attempt, draw)
    assert min(backoff.floor, backoff.ceiling(attempt)) <= delay <= backoff.ceiling(attempt) <= backoff.cap


@given(backoffs, draws, st.integers(1, 80))
def test_delays_grow_until_the_cap_then_stay_there(backoff, draw, attempts):
    ceilings = [backoff.ceiling(n) for n in range(attempts)]
    delays = [backoff.delay(n, draw) for n in range(attempts)]
    assert ceilings == sorted(ceilings) and delays == sorted(delays)
    for n, ceiling in enumerate(ceilings):
        assert ceiling == min(backoff.cap, backoff.initial * 2**n)
    assert backoff.ceiling(200) == backoff.cap


@given(st.integers(0, 2**32 - 1))
def test_jitter_spreads_the_delays_over_the_window(seed):
    backoff = Backoff(initial=1, cap=60)
    policy = ReconnectPolicy(backoff, random.Random(seed).random)
    delays = []
    for _ in range(300):
        policy.attempt = 10  # the ceiling is at the cap
        delays.append(policy.session_ended(0.0, DROPPED).delay)
    assert min(delays) < 15 and max(delays) > 45
    assert len(set(delays)) > 250


@given(st.sampled_from([FailureKind.AUTHENTICATION, FailureKind.TRUST, FailureKind.OTHER]), st.lists(st.booleans(), max_size=5), st.integers(0, 50))
def test_never_retries_refused_credentials_an_untrusted_server_or_a_local_problem(kind, network, attempt):
    policy = ReconnectPolicy()
    policy.attempt = attempt
    for available in network:
        policy.network_changed(0.0, available)
    failure = Failure(Layer.AUTH, "The server refused the user name or password.", kind)
    assert policy.session_ended(1.0, failure) == GiveUp(failure)
    assert policy.network_changed(2.0, False) is None and policy.network_changed(3.0, True) is None
    assert policy.resumed(4.0) is None


def test_a_users_own_disconnect_is_not_retried():
    policy = ReconnectPolicy()
    policy.connected(0.0)
    assert policy.session_ended(5.0, None, user_asked=True) == GiveUp(None)


def test_backoff_doubles_per_failure_and_starts_afresh_after_a_stable_session():
    policy = ReconnectPolicy(Backoff(initial=1, cap=60, floor=0.5, stable_after=30), random=lambda: 0.999999)
    ceilings = [round(policy.session_ended(float(n), DROPPED).delay) for n in range(8)]
    assert ceilings == [1, 2, 4, 8, 16, 32, 60, 60]
    policy.connected(100.0)
    assert round(policy.session_ended(110.0, DROPPED).delay) == 60  # up 10 s only: keeps growing
    policy.connected(200.0)
    decision = policy.session_ended(231.0, DROPPED)
    assert round(decision.delay) == 1 and decision.at == 231.0 + decision.delay
    assert decision.sentence == DROPPED.reason
    assert policy.session_ended(232.0, None).sentence == "The server ended the connection."


def test_waits_while_there_is_no_route_and_retries_at_once_when_it_returns():
    policy = ReconnectPolicy()
    scheduled = policy.session_ended(10.0, DROPPED)
    assert isinstance(scheduled, RetryAt) and scheduled.at > 10.0
    assert policy.network_changed(10.2, True) is None  # nothing new: keep the schedule
    assert policy.network_changed(10.3, False) == WaitForNetwork(DROPPED)
    assert policy.network_changed(10.4, False) is None
    assert policy.network_changed(42.0, True) == RetryAt(42.0, 0.0, DROPPED)
    policy.attempt_started()
    # the network goes while an attempt runs: its end waits for the network
    assert policy.network_changed(43.0, False) is None
    assert policy.session_ended(44.0, DROPPED) == WaitForNetwork(DROPPED)
    assert policy.network_changed(50.0, True) == RetryAt(50.0, 0.0, DROPPED)


def test_a_session_lost_to_a_suspend_and_a_resume_during_a_wait_retry_at_once():
    policy = ReconnectPolicy()
    for n in range(6):
        policy.session_ended(float(n), DROPPED)
    policy.attempt_started()
    policy.connected(10.0)
    slept = slept_failure(3600)
    assert policy.session_ended(11.0, slept) == RetryAt(11.0, 0.0, slept)
    assert policy.attempt == 0
    policy.attempt_started()
    scheduled = policy.session_ended(12.0, DROPPED)
    assert policy.resumed(12.0 + scheduled.delay + 1) is None  # already due
    assert policy.resumed(12.1) == RetryAt(12.1, 0.0, DROPPED)


class FakeClocks:
    def __init__(self) -> None:
        self.monotonic = 1000.0
        self.boottime = 5000.0

    def pair(self) -> ClockPair:
        return ClockPair(lambda: self.monotonic, lambda: self.boottime)

    def run(self, seconds: float) -> None:
        self.monotonic += seconds
        self.boottime += seconds


def test_sleep_watch_notices_boottime_running_ahead_of_monotonic():
    clocks = FakeClocks()
    watch = SleepWatch(clocks.pair())
    clocks.run(30)
    assert watch.slept() is None
    clocks.boottime += 4  # a small drift is not a suspend
    assert watch.slept() is None
    clocks.boottime += 600  # suspended for ten minutes
    clocks.run(0.5)
    assert watch.slept() == 600
    clocks.run(1)
    assert watch.slept() is None  # told once
    failure = slept_failure(600)
    assert failure.where is Layer.SLEEP and failure.kind is FailureKind.UNREACHABLE
    assert failure.reason.startswith("The computer was asleep for 600 s")


def test_real_clocks_show_no_suspend():
    watch = SleepWatch()
    assert watch.slept() is None
