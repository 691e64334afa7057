"""The tunnels through SoftEther: the SoftEther fixture with a bridged iperf3 peer, connect-time
samples, and one connected client per measured path, each in its own client namespace:

- "tunnel": `sstp-vpn connect` (this tree), in the fixture's client namespace;
- "before": the same CLI importing an older tree (--before DIR, put first on PYTHONPATH);
- "minimal": bench/minimal_client.py, the single-file baseline client.

The extra client namespaces reach the server over their own veth pair into the server namespace
(198.18.21.0/24, 198.18.22.0/24), with the server's name in their /etc/hosts, so each client has
the same routes to the bridged peer and no client's routes get in another's way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.baselines import NAMESPACE_PREFIX
from bench.measured_path import IPERF_PORT, BenchError, BenchPath, wait_for_listener
from bench.report import median
from tests.integration.client_process import CLI, ClientProcess
from tests.integration.softether import (
    BRIDGE_PEER_ADDRESS,
    SERVER_ADDRESS,
    TUNNEL_NETWORK,
    ServerBusy,
    SoftEtherServer,
    locate_server_binary,
    locate_vpncmd,
)
from tests.netns import Namespace, veth_pair

REPO_ROOT = Path(__file__).resolve().parent.parent
MINIMAL_CLIENT = REPO_ROOT / "bench" / "minimal_client.py"
TUNNEL_IFNAME = "sstpbench0"
STARTUP_IMPORTS = "import sstpvpn.client.cli, sstpvpn.client.core.auth, sstpvpn.client.core.engine, sstpvpn.client.runner"
CONNECT_TIMEOUT = 60.0


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


@dataclass
class Connected:
    """A client with its tunnel up: how long that took and what it printed on the way."""

    pid: int
    address: str
    seconds: float  # from just before its start to the line that says the tunnel is up
    timeline: list[tuple[float, str]]  # every stdout line up to then, seconds since the start
    stop: Callable[[], tuple[int, float]]  # SIGINT/SIGTERM; (exit status, seconds to exit)


@dataclass
class SstpClient:
    """One client that can be connected (repeatedly) through the SoftEther server."""

    key: str
    label: str
    ns: Namespace
    connect: Callable[[], Connected]
    up_line: str  # what its "tunnel is up" line is, for the report
    env: dict[str, str] = field(default_factory=dict)


def start_client(
    server: SoftEtherServer, ns: Namespace | None = None, env: dict[str, str] | None = None
) -> tuple[ClientProcess, str, float, list[tuple[float, str]]]:
    """A connected `sstp-vpn connect`, its address, the seconds from its start to `connected:`, and
    every progress line before it with its time since the start (where the connect time goes)."""
    began = time.monotonic()
    client = ClientProcess(ns or server.client_ns, connect_args(server), server.password, env=env)
    progress: list[tuple[float, str]] = []
    try:
        while True:
            line = client.wait_for_line("", timeout=max(0.1, began + CONNECT_TIMEOUT - time.monotonic()))
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


def cli_connect(server: SoftEtherServer, ns: Namespace, env: dict[str, str] | None = None) -> Connected:
    client, address, seconds, progress = start_client(server, ns, env)
    return Connected(client.process.pid, address, seconds, progress, lambda: stop_client(client))


class MinimalProcess:
    """bench/minimal_client.py running in a namespace; the password goes through stdin."""

    def __init__(self, ns: Namespace, argv: list[str], password: str) -> None:
        self.process = ns.popen(*argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.process.stdin.write(password + "\n")
        self.process.stdin.close()
        self.process.stdin = None  # so communicate() does not flush it again
        self._partial = ""
        self.stderr = ""

    def next_line(self, deadline: float) -> str:
        fd = self.process.stdout.fileno()
        while "\n" not in self._partial:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise BenchError(f"the minimal client was not connected within {CONNECT_TIMEOUT:g} s")
            chunk = os.read(fd, 65536)  # raw reads: select sees nothing a buffered reader holds
            if not chunk:
                self.stop()
                raise BenchError(f"the minimal client exited ({self.process.returncode}) before tunnel-up: {self.stderr.strip()}")
            self._partial += chunk.decode()
        line, self._partial = self._partial.split("\n", 1)
        return line

    def stop(self, timeout: float = 20.0) -> tuple[int, float]:
        """SIGTERM; returns (exit status, seconds). Killed if it does not go."""
        began = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # `ip netns exec` execs: this PID is the client
        try:
            _, self.stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.process.returncode, time.monotonic() - began


def minimal_connect(server: SoftEtherServer, ns: Namespace, server_address: str) -> Connected:
    argv = [sys.executable, str(MINIMAL_CLIENT), "--server", server_address, "--port", str(server.port)]
    argv += ["--server-name", server.server_name, "--ca-file", str(server.ca_path), "--user", server.username]
    argv += ["--ifname", TUNNEL_IFNAME, "--route", TUNNEL_NETWORK]
    began = time.monotonic()
    client = MinimalProcess(ns, argv, server.password)
    deadline = began + CONNECT_TIMEOUT
    timeline: list[tuple[float, str]] = []
    try:
        while not timeline or timeline[-1][1].split()[-1:] != ["tunnel-up"]:
            line = client.next_line(deadline)
            timeline.append((time.monotonic() - began, line))
        addresses = json.loads(ns.run("ip", "-j", "-4", "addr", "show", "dev", TUNNEL_IFNAME).stdout)
    except BaseException:
        client.stop()
        raise
    address = addresses[0]["addr_info"][0]["local"] if addresses and addresses[0].get("addr_info") else "?"
    return Connected(client.process.pid, address, timeline[-1][0], timeline, client.stop)


def client_namespace(stack: contextlib.ExitStack, server: SoftEtherServer, subnet: int) -> tuple[Namespace, str]:
    """Another client namespace with its own veth into the server namespace (198.18.<subnet>.0/24);
    returns it and the server's address on that link."""
    ns = stack.enter_context(Namespace(NAMESPACE_PREFIX))
    server_side, client_side = f"198.18.{subnet}.1", f"198.18.{subnet}.2"
    veth_pair(server.server_ns, server_side, ns, client_side)
    ns.run("ip", "route", "add", "default", "via", server_side)
    (ns.etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost\n{server_side}\t{server.server_name}\n")
    return ns, server_side


def sstp_clients(stack: contextlib.ExitStack, server: SoftEtherServer, before: str | None) -> list[SstpClient]:
    ns = server.client_ns
    clients = [SstpClient("tunnel", "sstp-vpn + SoftEther", ns, lambda: cli_connect(server, ns), "connected:")]
    if before:
        before_ns, _ = client_namespace(stack, server, 22)
        env = {"PYTHONPATH": before}
        clients.append(
            SstpClient("before", "before (--before) + SoftEther", before_ns, lambda: cli_connect(server, before_ns, env), "connected:", env)
        )
    minimal_ns, minimal_server = client_namespace(stack, server, 21)
    clients.append(
        SstpClient("minimal", "minimal client + SoftEther", minimal_ns, lambda: minimal_connect(server, minimal_ns, minimal_server), "tunnel-up")
    )
    return clients


def measure_connects(clients: list[SstpClient], count: int, results: dict) -> None:
    """`count` connects and disconnects per client, the clients taking turns; and, for ours, the
    start-up cost alone (interpreter, `--version`, the imports of the connect path)."""
    ns = clients[0].ns
    startup = {
        "interpreter": timed_runs(ns, [sys.executable, "-c", "pass"], count),
        "version": timed_runs(ns, [*CLI, "--version"], count),
        "connect_imports": timed_runs(ns, [sys.executable, "-c", STARTUP_IMPORTS], count),
    }
    per_client: dict[str, dict] = {}
    for client in clients:
        per_client[client.key] = {"label": client.label, "up_line": client.up_line, "up_seconds": [], "disconnect_seconds": [], "timelines": []}
    results["connect"] = {"startup": startup, "clients": per_client}
    for _ in range(count):
        for client in list(clients):
            try:
                connected = client.connect()
                code, stop_seconds = connected.stop()
                if code != 0:
                    raise BenchError(f"the {client.key} client exited {code} after SIGINT/SIGTERM (expected 0)")
            except BenchError as error:
                if client.key == "tunnel":
                    raise
                # Another client failing leaves ours measured: it is reported and left out.
                results["errors"].append(f"{client.key}: {error}")
                print(f"  {client.key} client left out: {error}", flush=True)
                clients.remove(client)
                continue
            entry = per_client[client.key]
            entry["up_seconds"].append(connected.seconds)
            entry["timelines"].append(connected.timeline)
            entry["disconnect_seconds"].append(stop_seconds)
    ours = per_client["tunnel"]
    # Ours: its first progress line comes just before its TCP connect, the best start-up mark.
    first_line = [timeline[0][0] for timeline in ours["timelines"] if timeline and timeline[0][1].startswith("Connecting to")]
    results["connect"]["first_line_seconds"] = first_line
    results["connect"]["estimated_tcp_to_connected"] = median(ours["up_seconds"]) - (
        median(first_line) if first_line else median(startup["connect_imports"])
    )
    # The minimal client's own phase times (since its process start, from /proc/self/stat).
    minimal = per_client.get("minimal")
    if minimal is not None:
        phases: dict[str, list[float]] = {}
        for timeline in minimal["timelines"]:
            for _, line in timeline:
                seconds, _, name = line.partition(" ")
                phases.setdefault(name, []).append(float(seconds))
        minimal["own_phase_seconds"] = phases


def start_softether(binary: Path, workdir: Path, wait_seconds: float) -> SoftEtherServer:
    """The fixture's server, once the test run or bench that holds the machine's one SoftEther
    (its turn lock) has finished, waiting up to `wait_seconds` for that."""
    server = SoftEtherServer(binary, locate_vpncmd(binary), workdir / "softether", wait_seconds=wait_seconds)
    try:
        return server.__enter__()
    except ServerBusy as error:
        raise BenchError(f"{error} Or pass --wait-for-server SECONDS to wait for it.") from None


def open_tunnels(stack: contextlib.ExitStack, workdir: Path, args: argparse.Namespace, results: dict) -> list[BenchPath]:
    """SoftEther with a bridged iperf3 peer, connect timings, and per client one that stays
    connected for the iperf3 runs ("tunnel" first)."""
    with contextlib.ExitStack() as tunnel_stack:
        binary = locate_server_binary(REPO_ROOT)
        server = start_softether(binary, workdir, args.wait_for_server)
        tunnel_stack.push(server)  # already entered: only its __exit__ is left to call
        peer = tunnel_stack.enter_context(server.bridge_peer())
        peer.popen("iperf3", "-s", "-B", BRIDGE_PEER_ADDRESS, "-p", str(IPERF_PORT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_listener(peer, IPERF_PORT)
        clients = sstp_clients(tunnel_stack, server, args.before)
        measure_connects(clients, args.connects, results)

        paths, info = [], {}
        results["clients_up"] = {}
        for client in clients:
            connected = client.connect()
            tunnel_stack.callback(connected.stop)  # stops it on failure; run() stops it first normally
            results["clients_up"][client.key] = connected
            mtu = json.loads(client.ns.run("ip", "-j", "link", "show", TUNNEL_IFNAME).stdout)[0]["mtu"]
            info[client.key] = {"address": connected.address, "mtu": mtu, "client_pid": connected.pid}
            label = f"SSTP: {client.label}"
            paths.append(BenchPath(client.key, label, client.ns, BRIDGE_PEER_ADDRESS, IPERF_PORT, {"client": connected.pid, "vpnserver": server.pid}))
        results["tunnel_info"] = {"vpnserver_pid": server.pid, "server_address": SERVER_ADDRESS, "clients": info}
        stack.enter_context(tunnel_stack.pop_all())
    return paths
