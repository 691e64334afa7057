"""The engine-bound bench's parts still fit together: bench/fast_server.py in its namespace with its
TUN and iperf3, `sstp-vpn connect` to it, one short iperf3 run each way through the tunnel, and a
clean disconnect. Speed is the bench's business (bench/engine_bound.py); this only keeps it from
rotting."""

from __future__ import annotations

import argparse
import contextlib
import os
from pathlib import Path

import pytest

from bench.engine_bound import IPERF_PORT, TUNNEL_SERVER, BenchError, connect_sstp_vpn, open_network, run_iperf
from tests.realparts import missing, require_program, require_root

pytestmark = pytest.mark.realparts


def test_our_client_carries_tcp_both_ways_through_the_fast_server(tmp_path: Path) -> None:
    require_root("network namespaces and TUN devices")
    require_program("ip", "apt-get install iproute2")
    require_program("ss", "apt-get install iproute2")
    require_program("iperf3", "apt-get install iperf3")
    if not os.path.exists("/dev/net/tun"):
        missing("/dev/net/tun", "modprobe tun")
    iperf = argparse.Namespace(seconds=1.0, parallel=1, window=None)
    with contextlib.ExitStack() as stack:
        network = open_network(stack, tmp_path)
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
