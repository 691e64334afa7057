"""One iperf3 client run inside a namespace, read from its JSON report."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from tests.netns import Namespace


class IperfError(RuntimeError):
    pass


@dataclass(frozen=True)
class IperfResult:
    bits_per_second: float  # what the receiving end counted
    retransmits: int | None  # TCP retransmits of the sending end, when the sender is local


def run_iperf(ns: Namespace, address: str, port: int, seconds: float, reverse: bool) -> IperfResult:
    """`iperf3 -c` from `ns`; `reverse` is iperf3's -R (the server sends, we receive)."""
    command = ["iperf3", "-c", address, "-p", str(port), "-t", f"{seconds:g}", "-J", "--connect-timeout", "5000"]
    if reverse:
        command.append("-R")
    try:
        result = ns.run(*command, check=False, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        raise IperfError(f"iperf3 to {address}:{port} did not finish within {seconds + 30:g} s") from None
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise IperfError(f"iperf3 to {address}:{port} failed (exit {result.returncode}): {(result.stdout + result.stderr).strip()[:500]}") from None
    if "error" in report or result.returncode != 0:
        raise IperfError(f"iperf3 to {address}:{port} failed: {report.get('error', result.returncode)}")
    end = report["end"]
    sent = end.get("sum_sent", {})
    return IperfResult(bits_per_second=float(end["sum_received"]["bits_per_second"]), retransmits=None if reverse else sent.get("retransmits"))
