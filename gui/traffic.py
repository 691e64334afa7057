"""Traffic arithmetic for the status window: rates from counter samples, with a minute of history
for the graph, and byte counts in words. The counters themselves come from the platform layer
(`current.read_traffic_counters`), read off the GUI thread."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sstpvpn.platform.traffic_counters import TrafficCounters


@dataclass(frozen=True)
class Rate:
    received: float  # bytes per second
    sent: float


class TrafficMeter:
    """Counter samples in, totals and a short history of rates out."""

    def __init__(self, history: int = 60) -> None:
        self.rates: deque[Rate] = deque(maxlen=history)
        self.latest: TrafficCounters | None = None
        self._last_time: float | None = None

    def reset(self) -> None:
        self.rates.clear()
        self.latest = None
        self._last_time = None

    def sample(self, now: float, counters: TrafficCounters | None) -> None:
        if counters is None:
            return
        if self.latest is not None and self._last_time is not None and now > self._last_time:
            elapsed = now - self._last_time
            # A counter that went backwards means a new interface: start the rates afresh.
            if counters.received >= self.latest.received and counters.sent >= self.latest.sent:
                self.rates.append(Rate((counters.received - self.latest.received) / elapsed, (counters.sent - self.latest.sent) / elapsed))
            else:
                self.rates.clear()
        self.latest = counters
        self._last_time = now

    @property
    def current(self) -> Rate | None:
        return self.rates[-1] if self.rates else None


def human_bytes(count: float) -> str:
    """1023 B, 1.5 KiB, 12.3 MiB, ..."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_rate(bytes_per_second: float) -> str:
    return f"{human_bytes(bytes_per_second)}/s"
