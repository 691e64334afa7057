"""Noticing that the computer slept.

On Linux CLOCK_MONOTONIC stops while the machine is suspended and CLOCK_BOOTTIME keeps counting
(macOS: time.monotonic() stops, its CLOCK_MONOTONIC keeps counting),
so when boottime has moved much further than monotonic since the last look, the machine was
asleep. After a suspend the server has long dropped our TLS connection; waiting for the echo
timers to notice would leave the user without a network for up to two echo intervals.
Pure: the clock pair is injectable so a test can fake a jump.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from .core.i18n import _
from .core.types import Failure, FailureKind, Layer

SLEEP_THRESHOLD = 5.0  # seconds of difference between the two clocks that count as a suspend
SLEEP_CHECK_SECONDS = 5.0  # a waiting loop looks at least this often (its timeout runs on the stopped clock)


def _boottime() -> float:
    if sys.platform == "linux":
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    if sys.platform == "darwin":
        # Apple's CLOCK_MONOTONIC keeps counting during sleep, while time.monotonic() (Mach
        # absolute time) stops: the same pair as on Linux. Untested on a Mac.
        return time.clock_gettime(time.CLOCK_MONOTONIC)
    return time.monotonic()  # Windows: no suspend is detected here (both clocks count through it)


@dataclass(frozen=True)
class ClockPair:
    monotonic: Callable[[], float] = time.monotonic  # stops during a suspend
    boottime: Callable[[], float] = _boottime  # keeps counting during a suspend


class SleepWatch:
    def __init__(self, clocks: ClockPair = ClockPair(), threshold: float = SLEEP_THRESHOLD) -> None:
        self._clocks = clocks
        self._threshold = threshold
        self._last = (clocks.monotonic(), clocks.boottime())

    def slept(self) -> float | None:
        """Seconds spent asleep since the last call, when more than the threshold; else None."""
        monotonic, boottime = self._clocks.monotonic(), self._clocks.boottime()
        last_monotonic, last_boottime = self._last
        self._last = (monotonic, boottime)
        asleep = (boottime - last_boottime) - (monotonic - last_monotonic)
        return asleep if asleep > self._threshold else None


def slept_failure(seconds: float) -> Failure:
    return Failure(
        Layer.SLEEP,
        _("The computer was asleep for {seconds:.0f} s and the connection to the server did not survive it; connect again.").format(seconds=seconds),
        FailureKind.UNREACHABLE,
    )
