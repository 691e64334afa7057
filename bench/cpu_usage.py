"""CPU time of processes and of the whole machine, read from /proc, over a stretch of time.

Cheap enough to sample around every iperf3 run: two reads of /proc/PID/stat per process and two of
/proc/stat. Figures are in percent of ONE core (a process using two cores fully shows 200 %).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads); None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; the fields after its ')' are fixed.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot; idle and iowait count as not busy."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])  # guest time is already inside user time
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


@dataclass(frozen=True)
class CpuUse:
    processes: dict[str, float]  # label -> percent of one core
    machine_busy: float  # percent of ALL cores (100 = every core busy)


class CpuMeter:
    """Measures CPU use of labelled processes and of the machine between start() and stop()."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float | None] = {}
        self._began = 0.0
        self._machine = (0.0, 0.0)

    def start(self) -> None:
        self._start = {label: process_cpu_seconds(pid) for label, pid in self.pids.items()}
        self._machine = machine_cpu_seconds()
        self._began = time.monotonic()

    def stop(self) -> CpuUse:
        elapsed = max(time.monotonic() - self._began, 1e-9)
        busy, total = machine_cpu_seconds()
        processes = {}
        for label, pid in self.pids.items():
            before, after = self._start.get(label), process_cpu_seconds(pid)
            if before is not None and after is not None:
                processes[label] = 100.0 * (after - before) / elapsed
        busy_share = (busy - self._machine[0]) / max(total - self._machine[1], 1e-9)
        return CpuUse(processes, 100.0 * busy_share)
