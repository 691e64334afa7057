"""What the bench measures over: a path iperf3 runs through, and one measured run over it."""

from __future__ import annotations

import select
import subprocess
import time
from dataclasses import dataclass, field

from bench.cpu_usage import CpuMeter
from bench.iperf_client import run_iperf
from tests.netns import Namespace, stop_process

IPERF_PORT = 5201


class BenchError(RuntimeError):
    pass


@dataclass
class BenchPath:
    """Somewhere iperf3 can run: from `ns` to address:port, with the processes worth watching."""

    key: str
    label: str
    ns: Namespace
    address: str
    port: int
    pids: dict[str, int] = field(default_factory=dict)


def measure_once(path: BenchPath, seconds: float, reverse: bool) -> dict:
    """One iperf3 run over `path` with the CPU use of its processes and of the machine."""
    meter = CpuMeter(path.pids)
    meter.start()
    result = run_iperf(path.ns, path.address, path.port, seconds, reverse)
    cpu = meter.stop()
    return {"bits_per_second": result.bits_per_second, "retransmits": result.retransmits, "cpu": cpu.processes, "machine_busy": cpu.machine_busy}


def wait_for_listener(ns: Namespace, port: int, timeout: float = 10.0) -> None:
    """Until something in `ns` listens on TCP `port` (asks the kernel: no probe connections)."""
    deadline = time.monotonic() + timeout
    while not ns.run("ss", "-Hltn", f"sport = :{port}").stdout.strip():
        if time.monotonic() > deadline:
            raise BenchError(f"nothing listens on port {port} in {ns.name} after {timeout:g} s")
        time.sleep(0.05)


def wait_for_ready_line(process: subprocess.Popen, what: str, timeout: float = 10.0) -> None:
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if line.strip() != "ready":
        stop_process(process)
        raise BenchError(f"{what} did not start: {line.strip()} {process.stderr.read() if process.stderr else ''}")
