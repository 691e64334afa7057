"""The engine-bound bench's parts still fit together: bench/fast_server.py in its namespace with its
TUN and iperf3, `sstp-vpn connect` to it, one short iperf3 run each way through the tunnel, and a
clean disconnect. Speed is the bench's business (bench/engine_bound.py); this only keeps it from
rotting."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from bench.engine_bound import IPERF_PORT, TUNNEL_SERVER, BenchError, connect_sstp_vpn, open_network, run_iperf
from tests.realparts import missing, require_program, require_root


@pytest.mark.realparts
def test_our_client_carries_tcp_both_ways_through_the_fast_server(tmp_path: Path) -> None:
    require_root("network namespaces and TUN devices")
    require_program("ip", "apt-get install iproute2")
    require_program("ss", "apt-get install iproute2")
    require_program("iperf3", "apt-get install iperf3")
    require_program("ping", "apt-get install iputils-ping")
    if not os.path.exists("/dev/net/tun"):
        missing("/dev/net/tun", "modprobe tun")
    iperf = argparse.Namespace(seconds=1.0, parallel=1, window=None)
    with contextlib.ExitStack() as stack:
        network = open_network(stack, tmp_path)
        # Packets for the client's address reach the server's TUN all through the connect, as late
        # packets of an earlier connection do between bench runs: none may reach the client before
        # IPCP is up (the HTTP reply must come first).
        network.server_ns.popen("ping", "-q", "-i", "0.01", "-w", "30", "198.18.30.10", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.1)
        tunnel = connect_sstp_vpn(network, "sstpguard0", None)
        try:
            rates = {
                direction: run_iperf(network.client_ns, TUNNEL_SERVER, IPERF_PORT, iperf, reverse)
                for direction, reverse in (("up", False), ("down", True))
            }
        except BenchError as error:
            tunnel.stop()
            pytest.fail(f"iperf3 through the tunnel failed: {error}; server log: {network.server.log_lines()}")
        status = tunnel.stop()
        stack.close()  # the server writes its connection summary when the client has gone
        log = network.server.log_lines()
    assert status == 0, f"sstp-vpn exited {status} after SIGINT"
    # Over 1 Mbit/s each way: the data path works (the bench itself measures how fast).
    assert rates["up"] > 1e6 and rates["down"] > 1e6, rates
    summaries = [line for line in log if line.startswith("connection 1:")]
    assert summaries, log
    assert "auth mschapv2 ok=True, binding ok=True, ipcp=True, problems=[]" in summaries[0], summaries[0]
    assert "ended: the call ended" in summaries[0], summaries[0]
    # The server joined the client's TCP segments (its default TUN mode) and checked a sample of
    # their checksums, which the kernel then no longer checks.
    checked = re.search(r"bad checksums (\d+) of (\d+) checked", summaries[0])
    assert checked and checked[1] == "0" and int(checked[2]) > 0, summaries[0]


def _run(mbit: float, client: float | None = None, server: float | None = None, machine: float = 50.0) -> dict:
    cpu = {side: value for side, value in (("client", client), ("server", server)) if value is not None}
    return {"bits_per_second": mbit * 1e6, "cpu": cpu, "machine_busy": machine}


def test_the_report_gives_ratios_to_the_relay_cpu_per_gbit_and_the_limit() -> None:
    from bench.engine_bound import format_report, summarise

    def path(label: str, up: list[dict], down: list[dict]) -> dict:
        return {"label": label, "connect_seconds": [0.5], "upload": {"runs": up}, "download": {"runs": down}}

    results = {
        "machine": {"nproc": 2, "cpu_model": "test", "kernel": "6", "python": "3.11", "openssl": "OpenSSL 3", "iperf3": "iperf 3", "loadavg": "0"},
        "settings": {"runs": 3, "seconds": 5, "parallel": 1, "window": None, "before": None, "server_tun": "plain"},
        "paths": {
            "relay": path("relay", [_run(4000, 50, 50)] * 3, [_run(2000, 40, 40)] * 3),
            "ours": path("ours", [_run(2000, 95, 40), _run(3000, 95, 40), _run(3200, 95, 40)], [_run(1600, 40, 30, machine=95)] * 3),
            "minimal": path("minimal", [_run(1000, 80, 30)] * 3, [_run(1000, 20, 30)] * 3),
        },
        "errors": [],
    }
    summarise(results)
    ours_up, ours_down = results["summary"]["ours upload"], results["summary"]["ours download"]
    assert ours_up["mbit"] == 3000 and ours_up["ratio_to_relay"] == 0.75
    assert abs(ours_up["client_core_per_gbit"] - 0.95 / 3.0) < 1e-9  # median of 0.95/2, 0.95/3, 0.95/3.2
    assert ours_down["ratio_to_relay"] == 0.8
    report = format_report(results)
    ours_lines = [line for line in report.splitlines() if line.startswith("ours ")]
    assert ours_lines[0].endswith("  client") and "0.75" in ours_lines[0]
    assert ours_lines[1].endswith("all cores busy (busiest: client)")
    # Upload: 0.32 < 0.80 core/Gbit/s; download: 0.25 > 0.20, so that half of the goal is missed.
    assert "upload: ratio 0.75 ok; client 0.32 vs minimal 0.80 core/Gbit/s ok" in report
    assert "download: ratio 0.80 ok; client 0.25 vs minimal 0.20 core/Gbit/s MISSED" in report
