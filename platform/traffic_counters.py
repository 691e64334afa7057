"""How many bytes have gone through a network interface, for the status window's totals and graph.

Linux counts every packet of every interface and shows the totals in
/sys/class/net/<name>/statistics (small virtual files; reading them does not wait on anything).
Windows and macOS have no reader yet: `not_counted` answers None there, which the window shows as
"not counted on this system".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SYSFS_NET = Path("/sys/class/net")


@dataclass(frozen=True)
class TrafficCounters:
    received: int  # bytes from the VPN to this machine
    sent: int


def read_linux(ifname: str | None, sysfs_net: Path = SYSFS_NET) -> TrafficCounters | None:
    """The interface's byte counters; None when there is no such interface (it has just gone)."""
    if not ifname:
        return None
    statistics = sysfs_net / ifname / "statistics"
    try:
        return TrafficCounters(int((statistics / "rx_bytes").read_text()), int((statistics / "tx_bytes").read_text()))
    except (OSError, ValueError):
        return None


def not_counted(ifname: str | None) -> None:
    """Systems without a reader of interface counters."""
    return None
