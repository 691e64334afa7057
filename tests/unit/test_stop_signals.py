"""SIGINT and SIGTERM turned into a readable socket for an event loop that is not Python's: real
signals sent to this process (its handlers put back afterwards)."""

from __future__ import annotations

import os
import select
import signal

import pytest

from sstpvpn.platform import current


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_wakes_the_watching_loop_and_nothing_else_happens(signum):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signals = current.watch_stop_signals()
    try:
        assert not select.select([signals.fileno()], [], [], 0)[0]
        assert signals.drain() is False
        os.kill(os.getpid(), signum)  # neither KeyboardInterrupt nor an exit follows
        assert select.select([signals.fileno()], [], [], 5)[0]
        assert signals.drain() is True
        assert signals.drain() is False  # emptied
    finally:
        signals.close()
    assert {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} == before
    assert signal.set_wakeup_fd(-1) == -1  # no wake-up socket left behind
