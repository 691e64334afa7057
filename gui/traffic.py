"""Bytes through the tunnel interface and the rate in each direction, for the status window.

On Linux the kernel counts every packet of the TUN interface; the counters are read from
/sys/class/net/<name>/statistics (cheap, non-blocking reads of small virtual files). Other
systems get their counters when the platform layer supports them; until then `read_counters`
returns None and the window says so.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

SYSFS_NET = Path("/sys/class/net")


@dataclass(frozen=True)
class Counters:
    received: int  # bytes from the VPN to this machine
    sent: int


def read_counters(ifname: str | None) -> Counters | None:
    if not ifname or not sys.platform.startswith("linux"):
        return None
    statistics = SYSFS_NET / ifname / "statistics"
    try:
        return Counters(int((statistics / "rx_bytes").read_text()), int((statistics / "tx_bytes").read_text()))
    except (OSError, ValueError):
        return None  # the interface is gone (disconnected a moment ago)


@dataclass(frozen=True)
class Rate:
    received: float  # bytes per second
    sent: float


class TrafficMeter:
    """Counter samples in, totals and a short history of rates out."""

    def __init__(self, history: int = 60) -> None:
        self.rates: deque[Rate] = deque(maxlen=history)
        self.latest: Counters | None = None
        self._last_time: float | None = None

    def reset(self) -> None:
        self.rates.clear()
        self.latest = None
        self._last_time = None

    def sample(self, now: float, counters: Counters | None) -> None:
        if counters is None:
            return
        if self.latest is not None and self._last_time is not None and now > self._last_time:
            elapsed = now - self._last_time
            # A counter that went backwards means a new interface: start the rates afresh.
            if counters.received >= self.latest.received and counters.sent >= self.latest.sent:
                self.rates.append(Rate((counters.received - self.latest.received) / elapsed,
                                       (counters.sent - self.latest.sent) / elapsed))
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
