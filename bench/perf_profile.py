"""A system-wide `perf` profile during one iperf3 run: who uses the CPUs, and inside the client,
how much is kernel (syscalls, TCP/IP, TUN), OpenSSL, the interpreter or libc.

py-spy shows the client's Python frames but not the kernel; perf (Python 3.11 has no perf
trampolines, so no Python frames) shows the rest. `perf record -p PID` records nothing on some
VMs, so this records all CPUs (`-a`, cpu-clock, no call graphs) and splits by process afterwards.
Needs the Debian package linux-perf.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path

RATE = 999  # samples per second per CPU


def start_recording(output: Path, seconds: float) -> subprocess.Popen:
    return subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", str(RATE), "-a", "-o", str(output),
                             "--", "sleep", f"{seconds:g}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _report(data: Path, *options: str) -> list[tuple[float, list[str]]]:
    """perf report rows as (percent, [columns])."""
    result = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "-t", ";", *options],
                            capture_output=True, text=True, check=True)
    rows = []
    for line in result.stdout.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = [cell.strip() for cell in line.split(";")]
        try:
            rows.append((float(cells[0].rstrip("%")), cells[1:]))
        except ValueError:
            continue
    return rows


def _process_of(tid: int) -> int:
    """The process (thread group) a thread belongs to, while it still exists."""
    try:
        for line in open(f"/proc/{tid}/status"):
            if line.startswith("Tgid:"):
                return int(line.split()[1])
    except OSError:
        pass
    return tid


def summarise(data: Path, labels: dict[int, str], top: int = 12) -> dict:
    """{by_process: [(label, % of all CPU time)], and per labelled process: by_dso, by_symbol}.

    `labels` maps process IDs to names (client, vpnserver); iperf3 and idle are recognised by
    name, everything else is "other processes" (on a shared machine: other people's work).
    """
    by_process: Counter[str] = Counter()
    for percent, (thread,) in _report(data, "--sort", "pid"):
        tid_text, _, command = thread.partition(":")
        tid = int(tid_text) if tid_text.strip().isdigit() else -1
        pid = _process_of(tid) if tid > 0 else tid
        if pid in labels:
            label = labels[pid]
        elif tid == 0 or command.startswith("swapper"):
            label = "idle"
        elif command.startswith("iperf3"):
            label = "iperf3 (both ends)"
        elif command.startswith(("ksoftirqd", "kworker")):
            label = "kernel threads (softirq, workers)"
        else:
            label = "other processes"
        by_process[label] += percent
    summary: dict = {"by_process": by_process.most_common(), "processes": {}}
    for pid, label in labels.items():
        by_dso = _report(data, "--pid", str(pid), "--percentage", "relative", "--sort", "dso")
        by_symbol = _report(data, "--pid", str(pid), "--percentage", "relative", "--sort", "dso,sym")
        summary["processes"][label] = {
            "by_dso": [(cells[0], percent) for percent, cells in by_dso[:top]],
            "by_symbol": [(f"{cells[1]} ({cells[0]})", percent) for percent, cells in by_symbol[:top]],
        }
    return summary


def format_summary(title: str, summary: dict) -> str:
    lines = [title, "  CPU time by process (% of all CPUs' time, perf cpu-clock):"]
    lines += [f"    {percent:5.1f} %  {label}" for label, percent in summary["by_process"]]
    for label, tables in summary["processes"].items():
        lines.append(f"  {label}, by library (% of its samples):")
        lines += [f"    {percent:5.1f} %  {name}" for name, percent in tables["by_dso"]]
        lines.append(f"  {label}, top symbols:")
        lines += [f"    {percent:5.1f} %  {name}" for name, percent in tables["by_symbol"]]
    return "\n".join(lines)
