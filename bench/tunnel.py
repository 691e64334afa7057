"""The tunnel: the SoftEther fixture with a bridged iperf3 peer, connect-time samples, and one
`sstp-vpn connect` that stays up for the iperf3 runs."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.measured_path import IPERF_PORT, BenchError, BenchPath, wait_for_listener
from bench.report import median
from tests.integration.client_process import CLI, ClientProcess
from tests.integration.softether import BRIDGE_PEER_ADDRESS, ServerBusy, SoftEtherServer, locate_server_binary, locate_vpncmd
from tests.netns import Namespace

REPO_ROOT = Path(__file__).resolve().parent.parent
TUNNEL_IFNAME = "sstpbench0"
STARTUP_IMPORTS = "import sstpvpn.client.cli, sstpvpn.client.core.auth, sstpvpn.client.core.engine, sstpvpn.client.runner"


def timed_runs(ns: Namespace, argv: list[str], count: int) -> list[float]:
    durations = []
    for _ in range(count):
        began = time.monotonic()
        ns.run(*argv)
        durations.append(time.monotonic() - began)
    return durations


def connect_args(server: SoftEtherServer) -> list[str]:
    return [
        f"{server.server_name}:{server.port}",
        "--user",
        server.username,
        "--ca-file",
        str(server.ca_path),
        "--no-default-route",
        "--ifname",
        TUNNEL_IFNAME,
    ]


def start_client(server: SoftEtherServer) -> tuple[ClientProcess, str, float, list[tuple[float, str]]]:
    """A connected client, its address, the seconds from its start to `connected:`, and every
    progress line before it with its time since the start (where the connect time goes)."""
    began = time.monotonic()
    client = ClientProcess(server.client_ns, connect_args(server), server.password)
    progress: list[tuple[float, str]] = []
    try:
        while True:
            line = client.wait_for_line("", timeout=max(0.1, began + 60 - time.monotonic()))
            progress.append((time.monotonic() - began, line))
            if line.startswith("connected:"):
                break
    except AssertionError as error:
        stop_client(client)
        raise BenchError(f"the client did not connect: {error} {client.stderr.strip()}") from None
    return client, line.split(": ", 1)[1], progress[-1][0], progress


def stop_client(client: ClientProcess, timeout: float = 20.0) -> tuple[int, float]:
    """SIGINT, as a user's Ctrl-C; returns (exit status, seconds). Killed if it does not go."""
    began = time.monotonic()
    if client.process.poll() is None:
        client.interrupt(signal.SIGINT)
    try:
        code = client.finish(timeout)
    except AssertionError:
        code = client.process.returncode if client.process.returncode is not None else -9
    return code, time.monotonic() - began


def measure_connects(server: SoftEtherServer, count: int, results: dict) -> None:
    ns = server.client_ns
    python = [sys.executable]
    startup = {
        "interpreter": timed_runs(ns, [*python, "-c", "pass"], count),
        "version": timed_runs(ns, [*CLI, "--version"], count),
        "connect_imports": timed_runs(ns, [*python, "-c", STARTUP_IMPORTS], count),
    }
    connected, disconnect, timelines = [], [], []
    results["connect"] = {"startup": startup, "connected_seconds": connected, "disconnect_seconds": disconnect, "progress_lines": timelines}
    for _ in range(count):
        client, _, seconds, progress = start_client(server)
        connected.append(seconds)
        timelines.append(progress)
        code, stop_seconds = stop_client(client)
        if code != 0:
            raise BenchError(f"the client exited {code} after SIGINT (expected 0): {client.stderr.strip()}")
        disconnect.append(stop_seconds)
    # The client's first progress line comes just before its TCP connect: the best start-up mark.
    first_line = [timeline[0][0] for timeline in timelines if timeline and timeline[0][1].startswith("Connecting to")]
    results["connect"]["first_line_seconds"] = first_line
    results["connect"]["estimated_tcp_to_connected"] = median(connected) - (median(first_line) if first_line else median(startup["connect_imports"]))


def start_softether(binary: Path, workdir: Path, wait_seconds: float) -> SoftEtherServer:
    """The fixture's server, once the test run or bench that holds the machine's one SoftEther
    (its turn lock) has finished, waiting up to `wait_seconds` for that."""
    server = SoftEtherServer(binary, locate_vpncmd(binary), workdir / "softether", wait_seconds=wait_seconds)
    try:
        return server.__enter__()
    except ServerBusy as error:
        raise BenchError(f"{error} Or pass --wait-for-server SECONDS to wait for it.") from None


def open_tunnel(stack: contextlib.ExitStack, workdir: Path, args: argparse.Namespace, results: dict) -> BenchPath:
    """SoftEther with a bridged iperf3 peer, connect timings, and a client that stays connected."""
    with contextlib.ExitStack() as tunnel_stack:
        binary = locate_server_binary(REPO_ROOT)
        server = start_softether(binary, workdir, args.wait_for_server)
        tunnel_stack.push(server)  # already entered: only its __exit__ is left to call
        peer = tunnel_stack.enter_context(server.bridge_peer())
        peer.popen("iperf3", "-s", "-B", BRIDGE_PEER_ADDRESS, "-p", str(IPERF_PORT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_listener(peer, IPERF_PORT)
        measure_connects(server, args.connects, results)

        client, address, _, _ = start_client(server)
        tunnel_stack.callback(stop_client, client)
        mtu = json.loads(server.client_ns.run("ip", "-j", "link", "show", TUNNEL_IFNAME).stdout)[0]["mtu"]
        results["tunnel_info"] = {"address": address, "mtu": mtu, "client_pid": client.process.pid, "vpnserver_pid": server.pid}
        results["tunnel_client"] = client
        path = BenchPath(
            "tunnel",
            "SSTP tunnel (sstp-vpn+SoftEther)",
            server.client_ns,
            BRIDGE_PEER_ADDRESS,
            IPERF_PORT,
            {"client": client.process.pid, "vpnserver": server.pid},
        )
        stack.enter_context(tunnel_stack.pop_all())
    return path
