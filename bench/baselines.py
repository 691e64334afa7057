"""The baselines: iperf3 over a plain veth pair, and through the Python TLS relay (tls_relay.py).

Two namespaces joined by a veth pair; iperf3 -s on the far side; the relay's server half on the
far side (TLS in, TCP to iperf3 on loopback), its client half on the near side (TCP in on
loopback, TLS over the veth).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

from bench.measured_path import IPERF_PORT, BenchPath, wait_for_listener, wait_for_ready_line
from tests.integration.certificates import make_test_pki
from tests.netns import Namespace, veth_pair

REPO_ROOT = Path(__file__).resolve().parent.parent
NAMESPACE_PREFIX = "sstpbench"
BASE_NEAR, BASE_FAR = "198.18.40.2", "198.18.40.1"  # iperf3 client side, server side
RELAY_LISTEN_PORT, RELAY_TLS_PORT = 15201, 8443
RELAY_NAME = "relay.test"


def open_baselines(stack: contextlib.ExitStack, workdir: Path, results: dict) -> list[BenchPath]:
    """Two namespaces over a veth pair, iperf3 -s on the far side, and the two relay halves."""
    near = stack.enter_context(Namespace(NAMESPACE_PREFIX))
    far = stack.enter_context(Namespace(NAMESPACE_PREFIX))
    veth_pair(far, BASE_FAR, near, BASE_NEAR)
    far.popen("iperf3", "-s", "-p", str(IPERF_PORT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_listener(far, IPERF_PORT)

    pki = make_test_pki(workdir / "relay-pki", RELAY_NAME, BASE_FAR, "other.test")
    certificate = pki.certificates["good"]
    relay = [sys.executable, str(REPO_ROOT / "bench" / "tls_relay.py")]
    relay_log = stack.enter_context(open(workdir / "relay-client.log", "w+"))  # noqa: SIM115 - the stack closes it; the report reads it after the runs
    relay_server = far.popen(
        *relay,
        "server",
        "--listen",
        f"{BASE_FAR}:{RELAY_TLS_PORT}",
        "--connect",
        f"127.0.0.1:{IPERF_PORT}",
        "--cert",
        str(certificate.cert_path),
        "--key",
        str(certificate.key_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    wait_for_ready_line(relay_server, "the relay's server half")
    relay_client = near.popen(
        *relay,
        "client",
        "--listen",
        f"127.0.0.1:{RELAY_LISTEN_PORT}",
        "--connect",
        f"{BASE_FAR}:{RELAY_TLS_PORT}",
        "--ca",
        str(pki.ca_path),
        "--server-name",
        RELAY_NAME,
        stdout=subprocess.PIPE,
        stderr=relay_log,
        text=True,
    )
    wait_for_ready_line(relay_client, "the relay's client half")
    results["relay_log"] = relay_log
    return [
        BenchPath("veth", "veth pair (kernel only)", near, BASE_FAR, IPERF_PORT),
        BenchPath(
            "relay",
            "Python TLS relay (1 thread/side)",
            near,
            "127.0.0.1",
            RELAY_LISTEN_PORT,
            {"relay client": relay_client.pid, "relay server": relay_server.pid},
        ),
    ]
