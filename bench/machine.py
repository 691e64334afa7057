"""What a bench ran on, for its report: CPU, kernel, Python, OpenSSL, iperf3, load at the start."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path


def machine_info() -> dict:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    iperf = subprocess.run(["iperf3", "--version"], capture_output=True, text=True).stdout.splitlines()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "openssl": ssl.OPENSSL_VERSION,
        "iperf3": iperf[0] if iperf else "iperf3 ?",
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }
