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
    return subprocess.Popen(
        ["perf", "record", "-e", "cpu-clock", "-F", str(RATE), "-a", "-o", str(output), "--", "sleep", f"{seconds:g}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _report(data: Path, *options: str) -> list[tuple[int, list[str]]]:
    """perf report rows as (samples, [columns]); counts, not perf's rounded percentages, which
    over thousands of small rows add up to well over 100 %."""
    result = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "-n", "-t", ";", *options], capture_output=True, text=True, check=True)
    rows = []
    for line in result.stdout.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        cells = [cell.strip() for cell in line.split(";")]
        if len(cells) > 2 and cells[1].isdigit():
            rows.append((int(cells[1]), cells[2:]))
    return rows


def _process_of(tid: int) -> int:
    """The process (thread group) a thread belongs to, while it still exists."""
    try:
        with open(f"/proc/{tid}/status") as status:
            for line in status:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return tid


def _label(tid: int, command: str, labels: dict[int, str]) -> str:
    pid = _process_of(tid) if tid > 0 else tid
    if pid in labels:
        return labels[pid]
    if tid == 0 or command.startswith("swapper"):
        return "idle"
    if command.startswith("iperf3"):
        return "iperf3 (both ends)"
    if command.startswith(("ksoftirqd", "kworker")):
        return "kernel threads (softirq, workers)"
    return "other processes"


def summarise(data: Path, labels: dict[int, str], top: int = 12) -> dict:
    """{by_process: [(label, % of all CPU time)], processes: {label: {by_dso, by_symbol}}}.

    `labels` maps process IDs to names (client, vpnserver); iperf3 and idle are recognised by
    name, everything else is "other processes" (on a shared machine: other people's work).
    perf's own --pid filter keeps one thread only, so threads are mapped to processes here.
    """
    rows = _report(data, "--sort", "pid,dso,sym")
    total = sum(samples for samples, _ in rows) or 1
    by_process: Counter[str] = Counter()
    by_dso: dict[str, Counter[str]] = {label: Counter() for label in labels.values()}
    by_symbol: dict[str, Counter[str]] = {label: Counter() for label in labels.values()}
    for samples, cells in rows:
        if len(cells) < 3:
            continue
        thread, dso, symbol = cells[:3]
        tid_text, _, command = thread.strip().partition(":")
        label = _label(int(tid_text) if tid_text.isdigit() else -1, command, labels)
        by_process[label] += samples
        if label in by_dso:
            by_dso[label][dso] += samples
            by_symbol[label][f"{symbol} ({dso})"] += samples

    def relative(counter: Counter[str]) -> list[tuple[str, float]]:
        whole = sum(counter.values()) or 1
        return [(name, 100.0 * value / whole) for name, value in counter.most_common(top)]

    return {
        "samples": total,
        "by_process": [(label, 100.0 * n / total) for label, n in by_process.most_common()],
        "processes": {label: {"by_dso": relative(by_dso[label]), "by_symbol": relative(by_symbol[label])} for label in labels.values()},
    }


def format_summary(title: str, summary: dict) -> str:
    lines = [title, "  CPU time by process (% of all CPUs' time, perf cpu-clock):"]
    lines += [f"    {percent:5.1f} %  {label}" for label, percent in summary["by_process"]]
    for label, tables in summary["processes"].items():
        lines.append(f"  {label}, by library (% of its samples):")
        lines += [f"    {percent:5.1f} %  {name}" for name, percent in tables["by_dso"]]
        lines.append(f"  {label}, top symbols:")
        lines += [f"    {percent:5.1f} %  {name}" for name, percent in tables["by_symbol"]]
    return "\n".join(lines)
