"""The benchmarks' external baseline, bench/minimal_client.py, against the real SoftEther server:
it connects, prints its phase lines in order, carries a ping to the bridged peer, and leaves with
exit 0 on SIGTERM. Guards the baseline so it cannot rot unseen (it shares no code with sstpvpn)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.softether import BRIDGE_PEER_ADDRESS, TUNNEL_NETWORK

pytestmark = pytest.mark.realparts

MINIMAL_CLIENT = Path(__file__).resolve().parents[2] / "bench" / "minimal_client.py"
PHASES = ["tcp-connect", "tls", "http", "call-connect-ack", "lcp-open", "auth-ok", "ipcp-open", "tunnel-up"]
IFNAME = "minsstp0"


def test_minimal_client_connects_pings_and_disconnects(softether):
    ns = softether.client_ns
    with softether.bridge_peer():
        client = ns.popen(
            sys.executable,
            str(MINIMAL_CLIENT),
            "--server",
            softether.host,
            "--port",
            str(softether.port),
            "--server-name",
            softether.server_name,
            "--ca-file",
            str(softether.ca_path),
            "--user",
            softether.username,
            "--ifname",
            IFNAME,
            "--route",
            TUNNEL_NETWORK,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        client.stdin.write(softether.password + "\n")
        client.stdin.close()
        client.stdin = None  # so communicate() does not flush it again
        lines = []
        try:
            while not lines or not lines[-1].endswith(" tunnel-up"):
                line = client.stdout.readline()
                assert line, f"the client exited ({client.wait(10)}) before tunnel-up: {lines} {client.stderr.read()}"
                lines.append(line.strip())
            result = ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", BRIDGE_PEER_ADDRESS, check=False)
            route = ns.run("ip", "route", "get", BRIDGE_PEER_ADDRESS).stdout
        finally:
            if client.poll() is None:
                client.send_signal(signal.SIGTERM)  # `ip netns exec` execs: this PID is the client
            out, err = client.communicate(timeout=20)
    assert [line.split()[1] for line in lines] == PHASES, lines
    times = [float(line.split()[0]) for line in lines]
    assert times == sorted(times) and 0 < times[0] < times[-1] < 30, lines
    assert f"dev {IFNAME}" in route, route
    assert result.returncode == 0 and " 0% packet loss" in result.stdout, result.stdout + result.stderr
    assert client.returncode == 0, (out, err)
    assert out == "" and err == ""
    assert IFNAME not in ns.run("ip", "link", "show").stdout
