"""Engine-bound throughput: SSTP clients against a server that is cheaper than they are.

    sudo python3 bench/engine_bound.py [--runs 3] [--seconds 5] [--before /root/before/shadow]
                                       [--parallel 1] [--window SIZE] [--no-minimal] [--json FILE]
                                       [--server-tun gso|plain|device] [--pin] [--only-ours] [--profile DIR]

Through SoftEther the server is the limit, so that bench cannot show a client's own speed. Here
the server is bench/fast_server.py (our codecs and the unit tests' ScriptedServer for the control
plane; SSLObject + memory BIOs, batched TUN I/O and no per-packet objects on the data plane), in
its own namespace with its own TUN and an iperf3 server, joined to the client namespace by a veth
pair. Measured in one run, interleaved (each round runs every path once per direction):

- "veth":    iperf3 over the veth pair alone (the kernel);
- "relay":   iperf3 through bench/tls_relay.py over the same veth: a single-threaded Python TLS
             relay on each side, the ceiling for any Python client on this path;
- "ours":    `sstp-vpn connect` (this checkout) in the client namespace, iperf3 through its tunnel
             to 198.18.30.1, the server's end;
- "before":  with --before DIR, the same command run with PYTHONPATH=DIR (the code before issue 18);
- "minimal": bench/minimal_client.py (the single-file SSTP client), unless --no-minimal.

Only one tunnel exists at a time (all get the server's one address 198.18.30.10): each client
connects, is measured up (iperf3) and down (iperf3 -R), and disconnects, once per round. Reported
per path and direction: median Mbit/s, the ratio to the relay, CPU of the client side and of the
server side in % of one core and in cores per Gbit/s carried, and which one was the limit (a
single-threaded process near 100 % of a core). Goal (issue 18): ours >= 75 % of the relay both
ways, at fewer client cores per Gbit/s than the minimal client.

With --pin the client side (the client or the relay's client half, iperf3 -c) runs on CPU 0 and the
server side (fast_server.py or the relay's server half, iperf3 -s) on CPU 1, and the report gives
how busy each CPU was: on a quiet machine, the full one is the limit. (Other programs are not
moved, so on a busy machine both look full; and the relay then has one CPU per side too.)

Namespaces, processes and the temporary directory are removed on exit, also on failure and
Ctrl-C. Exit status: 0 all measured, 1 something failed (see ERRORS), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # `tests.` and `bench.` imports, as in the test suite

from bench import profile_summary  # noqa: E402
from bench.cpu_usage import CpuMeter  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from bench.measured_path import BenchError, wait_for_listener  # noqa: E402
from tests.integration.client_process import ClientProcess  # noqa: E402
from tests.netns import Namespace, remove_stale_namespaces, stop_process, veth_pair  # noqa: E402

NAMESPACE_PREFIX = "sstpeb"
CLIENT_VETH, SERVER_VETH = "198.18.41.2", "198.18.41.1"
SSTP_PORT, RELAY_TLS_PORT, RELAY_LISTEN_PORT, IPERF_PORT = 443, 8443, 15201, 5201
SERVER_NAME = "vpn.bench"
TUNNEL_SERVER = "198.18.30.1"  # the fast server's TUN address; iperf3 listens there too
USER = "benchuser"
CLIENT_CPU, SERVER_CPU = 0, 1  # with --pin
DIRECTIONS = ("upload", "download")
CLIENT_KEYS = ("ours", "before", "minimal")
GOAL_RATIO = 0.75


# -- processes and paths ------------------------------------------------------------------------------


def wait_for_line(process: subprocess.Popen, want: str, what: str, timeout: float = 30.0) -> str:
    """The first stdout line containing `want`; BenchError if the process ends or is silent."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([process.stdout], [], [], remaining)[0]:
            raise BenchError(f"{what}: no {want!r} line within {timeout:g} s")
        line = process.stdout.readline()
        if not line:
            error = process.stderr.read() if process.stderr else ""
            raise BenchError(f"{what} ended ({process.wait()}) before {want!r}: {error.strip()[-800:]}")
        if want in line:
            return line.strip()


@dataclass
class FastServer:
    process: subprocess.Popen
    workdir: Path
    log: Path

    @property
    def cert_path(self) -> Path:
        return self.workdir / "server.pem"

    @property
    def key_path(self) -> Path:
        return self.workdir / "server.key"

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def start_fast_server(ns: Namespace, workdir: Path, password: str, tun_mode: str = "gso", ifname: str = "sstpsrv0") -> FastServer:
    """bench/fast_server.py in `ns`, listening on the veth address; its stderr goes to a log."""
    log = workdir / "fast-server.log"
    with open(log, "w") as log_file:
        process = ns.popen(
            sys.executable,
            str(REPO_ROOT / "bench" / "fast_server.py"),
            "--listen",
            f"{SERVER_VETH}:{SSTP_PORT}",
            "--workdir",
            str(workdir / "server"),
            "--name",
            SERVER_NAME,
            "--user",
            USER,
            "--password-stdin",
            "--ifname",
            ifname,
            "--tun",
            tun_mode,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    process.stdin.write(password + "\n")
    process.stdin.close()
    process.stdin = None
    server = FastServer(process, workdir / "server", log)
    try:
        wait_for_line(process, "ready", "the fast server", timeout=20)
    except BenchError as error:
        stop_process(process)
        raise BenchError(f"{error} {' '.join(server.log_lines())[-800:]}") from None
    return server


@dataclass
class Network:
    """The client namespace, the server namespace over a veth pair, iperf3 -s and the fast server."""

    client_ns: Namespace
    server_ns: Namespace
    server: FastServer
    password: str
    iperf_server: subprocess.Popen | None = None


def open_network(stack: contextlib.ExitStack, workdir: Path, tun_mode: str = "gso") -> Network:
    server_ns = stack.enter_context(Namespace(NAMESPACE_PREFIX))
    client_ns = stack.enter_context(Namespace(NAMESPACE_PREFIX))
    veth_pair(server_ns, SERVER_VETH, client_ns, CLIENT_VETH)
    iperf_server = server_ns.popen("iperf3", "-s", "-p", str(IPERF_PORT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_listener(server_ns, IPERF_PORT)
    password = secrets.token_urlsafe(18)
    server = start_fast_server(server_ns, workdir, password, tun_mode)
    return Network(client_ns, server_ns, server, password, iperf_server)


@dataclass
class Path_:
    """Somewhere iperf3 runs: from the client namespace to address:port, with the processes watched."""

    key: str
    label: str
    address: str
    port: int = IPERF_PORT
    pids: dict[str, int] = field(default_factory=dict)  # "client" and "server" sides


def start_relay(stack: contextlib.ExitStack, network: Network, workdir: Path) -> Path_:
    relay = [sys.executable, str(REPO_ROOT / "bench" / "tls_relay.py")]
    cert = network.server
    server_half = network.server_ns.popen(
        *relay,
        "server",
        "--listen",
        f"{SERVER_VETH}:{RELAY_TLS_PORT}",
        "--connect",
        f"127.0.0.1:{IPERF_PORT}",
        "--cert",
        str(cert.cert_path),
        "--key",
        str(cert.key_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    wait_for_line(server_half, "ready", "the relay's server half", timeout=10)
    log = stack.enter_context(open(workdir / "relay-client.log", "w+"))  # noqa: SIM115 - the stack closes it
    client_half = network.client_ns.popen(
        *relay,
        "client",
        "--listen",
        f"127.0.0.1:{RELAY_LISTEN_PORT}",
        "--connect",
        f"{SERVER_VETH}:{RELAY_TLS_PORT}",
        "--ca",
        str(cert.cert_path),
        "--server-name",
        SERVER_NAME,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    wait_for_line(client_half, "ready", "the relay's client half", timeout=10)
    return Path_("relay", "Python TLS relay (1 thread/side)", "127.0.0.1", RELAY_LISTEN_PORT, {"client": client_half.pid, "server": server_half.pid})


# -- the SSTP clients ---------------------------------------------------------------------------------


@dataclass
class Tunnel:
    """One connected SSTP client and how long it took to come up."""

    process: subprocess.Popen
    connect_seconds: float
    stop: object  # () -> exit status


def sstp_vpn_args(ifname: str) -> list[str]:
    return [
        f"{SERVER_VETH}:{SSTP_PORT}",
        "--sni",
        SERVER_NAME,
        "--user",
        USER,
        "--no-default-route",
        "--no-vpn-dns",
        "--ifname",
        ifname,
    ]


def connect_sstp_vpn(network: Network, ifname: str, pythonpath: str | None) -> Tunnel:
    """`sstp-vpn connect` as the integration tests run it (tests/integration/client_process.py)."""
    env = {"PYTHONPATH": pythonpath} if pythonpath else None
    began = time.monotonic()
    args = [*sstp_vpn_args(ifname), "--ca-file", str(network.server.cert_path)]
    client = ClientProcess(network.client_ns, args, network.password, env=env)
    try:
        client.wait_for_line("connected:", timeout=30)
    except AssertionError as error:
        stop_process(client.process)
        raise BenchError(f"sstp-vpn did not connect: {error} {client.process.stderr.read() if client.process.stderr else ''}") from None
    seconds = time.monotonic() - began

    def stop() -> int:
        if client.process.poll() is None:
            client.interrupt(signal.SIGINT)
        try:
            return client.finish(20)
        except AssertionError:
            return -9

    return Tunnel(client.process, seconds, stop)


def connect_minimal(network: Network, ifname: str) -> Tunnel:
    began = time.monotonic()
    process = network.client_ns.popen(
        sys.executable,
        str(REPO_ROOT / "bench" / "minimal_client.py"),
        "--server",
        SERVER_VETH,
        "--port",
        str(SSTP_PORT),
        "--server-name",
        SERVER_NAME,
        "--ca-file",
        str(network.server.cert_path),
        "--user",
        USER,
        "--ifname",
        ifname,
        "--route",
        f"{TUNNEL_SERVER}/32",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdin.write(network.password + "\n")
    process.stdin.close()
    process.stdin = None
    try:
        wait_for_line(process, "tunnel-up", "the minimal client", timeout=30)
    except BenchError:
        stop_process(process)
        raise
    seconds = time.monotonic() - began

    def stop() -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            stop_process(process)
        return process.returncode

    return Tunnel(process, seconds, stop)


@dataclass
class ClientKind:
    key: str
    label: str
    connect: object  # (network) -> Tunnel


def client_kinds(args: argparse.Namespace) -> list[ClientKind]:
    kinds = [ClientKind("ours", "sstp-vpn (this checkout)", lambda n: connect_sstp_vpn(n, "sstpeb0", None))]
    if args.before:
        kinds.append(ClientKind("before", "sstp-vpn before (--before)", lambda n: connect_sstp_vpn(n, "sstpeb1", args.before)))
    if not args.no_minimal:
        kinds.append(ClientKind("minimal", "minimal client (bench/)", lambda n: connect_minimal(n, "minsstp0")))
    return kinds


# -- measuring ----------------------------------------------------------------------------------------


def pin(pid: int, cpu: int) -> None:
    """Every thread of a process onto one CPU (threads started later inherit it)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), {cpu})


def core_seconds() -> dict[int, tuple[float, float]]:
    """(busy, total) seconds of each CPU since boot, from /proc/stat."""
    cores = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            values = [int(v) for v in fields[:8]]
            cores[int(name[3:])] = (sum(values) - values[3] - values[4], sum(values))
    return cores


def run_iperf(ns: Namespace, address: str, port: int, args: argparse.Namespace, reverse: bool) -> float:
    """One `iperf3 -c` from `ns` with the bench's fixed streams and window; bits/s received.
    With --pin it runs on the client side's CPU."""
    pinned = ["taskset", "-c", str(CLIENT_CPU)] if getattr(args, "pin", False) else []
    command = [
        *pinned,
        "iperf3",
        "-c",
        address,
        "-p",
        str(port),
        "-t",
        f"{args.seconds:g}",
        "-J",
        "--connect-timeout",
        "5000",
        "-P",
        str(args.parallel),
    ]
    if args.window:
        command += ["-w", args.window]
    if reverse:
        command.append("-R")
    try:
        result = ns.run(*command, check=False, timeout=args.seconds + 30)
    except subprocess.TimeoutExpired:
        raise BenchError(f"iperf3 to {address}:{port} did not finish within {args.seconds + 30:g} s") from None
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise BenchError(f"iperf3 to {address}:{port} failed (exit {result.returncode}): {(result.stdout + result.stderr).strip()[:500]}") from None
    if "error" in report or result.returncode != 0:
        raise BenchError(f"iperf3 to {address}:{port} failed: {report.get('error', result.returncode)}")
    return float(report["end"]["sum_received"]["bits_per_second"])


def system_seconds(pid: int) -> float | None:
    """Kernel-mode CPU seconds of a process (all threads): syscalls, TUN and socket work."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text[text.rindex(")") + 2 :].split()[12]) / os.sysconf("SC_CLK_TCK")


def measure(ns: Namespace, path: Path_, args: argparse.Namespace, reverse: bool, iperf_server: int | None = None) -> dict:
    if getattr(args, "pin", False):  # again each run: a client may have started threads since
        for label, pid in path.pids.items():
            pin(pid, CLIENT_CPU if label == "client" else SERVER_CPU)
        if iperf_server is not None:
            pin(iperf_server, SERVER_CPU)
    meter = CpuMeter(path.pids)
    system_before = {label: system_seconds(pid) for label, pid in path.pids.items()}
    cores_before = core_seconds()
    began = time.monotonic()
    meter.start()
    bits = run_iperf(ns, path.address, path.port, args, reverse)
    cpu = meter.stop()
    elapsed = time.monotonic() - began
    cores_after = core_seconds()
    sides = {}  # with --pin: % busy of the client side's and the server side's CPU
    if getattr(args, "pin", False):
        for side, core in (("client", CLIENT_CPU), ("server", SERVER_CPU)):
            (busy0, total0), (busy1, total1) = cores_before[core], cores_after[core]
            sides[side] = 100.0 * (busy1 - busy0) / max(total1 - total0, 1e-9)
    system = {}  # the kernel's part of `cpu`, % of one core
    for label, pid in path.pids.items():
        before, after = system_before[label], system_seconds(pid)
        if before is not None and after is not None:
            system[label] = 100.0 * (after - before) / elapsed
    return {"bits_per_second": bits, "cpu": cpu.processes, "cpu_system": system, "machine_busy": cpu.machine_busy, "core_busy": sides}


def record(results: dict, key: str, direction: str, run: dict, round_number: int, args: argparse.Namespace) -> None:
    results["paths"][key][direction]["runs"].append(run)
    cpu = ", ".join(f"{label} {value:.0f} %" for label, value in run["cpu"].items())
    print(f"  round {round_number}/{args.runs} {direction:<8} {key:<8} {run['bits_per_second'] / 1e6:8.0f} Mbit/s  {cpu}", flush=True)


def measure_rounds(network: Network, fixed: list[Path_], kinds: list[ClientKind], args: argparse.Namespace, results: dict) -> None:
    paths = results["paths"]
    for key, label in [(p.key, p.label) for p in fixed] + [(k.key, k.label) for k in kinds]:
        paths[key] = {"label": label, "connect_seconds": [], **{d: {"runs": []} for d in DIRECTIONS}}
    failed: set[str] = set()
    for round_number in range(1, args.runs + 1):
        for path in fixed:
            for direction in DIRECTIONS:
                if path.key in failed:
                    continue
                try:
                    record(
                        results,
                        path.key,
                        direction,
                        measure(network.client_ns, path, args, direction == "download", network.iperf_server.pid if network.iperf_server else None),
                        round_number,
                        args,
                    )
                except BenchError as error:
                    failed.add(path.key)
                    results["errors"].append(f"{path.key} {direction}: {error}")
        for kind in kinds:
            if kind.key in failed:
                continue
            try:
                tunnel = kind.connect(network)
            except BenchError as error:
                failed.add(kind.key)
                results["errors"].append(f"{kind.key}: {error}")
                print(f"  {kind.key} not measured further: {error}", flush=True)
                continue
            paths[kind.key]["connect_seconds"].append(tunnel.connect_seconds)
            path = Path_(kind.key, kind.label, TUNNEL_SERVER, IPERF_PORT, {"client": tunnel.process.pid, "server": network.server.process.pid})
            try:
                for direction in DIRECTIONS:
                    record(
                        results,
                        kind.key,
                        direction,
                        measure(network.client_ns, path, args, direction == "download", network.iperf_server.pid if network.iperf_server else None),
                        round_number,
                        args,
                    )
            except BenchError as error:
                failed.add(kind.key)
                results["errors"].append(f"{kind.key}: {error}")
                print(f"  {kind.key} not measured further: {error}", flush=True)
            finally:
                status = tunnel.stop()
                if status != 0:
                    results["errors"].append(f"{kind.key}: exit status {status} after SIGINT (expected 0)")
    results["failed_paths"] = sorted(failed)


def profile_ours(network: Network, args: argparse.Namespace, results: dict) -> None:
    """One more connection of our client: per direction, an iperf3 run with py-spy on the client
    and on the fast server (raw stacks in --profile DIR, summaries in the report)."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        results["errors"].append("--profile: py-spy is missing (pip install py-spy)")
        return
    out_dir = Path(args.profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    tunnel = connect_sstp_vpn(network, "sstpeb0", None)
    pids = {"client": tunnel.process.pid, "server": network.server.process.pid}
    try:
        for direction in DIRECTIONS:
            spies = {}
            for side, pid in pids.items():
                raw = out_dir / f"py-spy-{side}-{direction}.txt"
                command = [py_spy, "record", "--pid", str(pid), "--rate", "200", "--duration", f"{max(1, int(args.seconds))}"]
                command += ["--format", "raw", "--idle", "--nonblocking", "--output", str(raw)]
                spies[side] = (subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), raw)
            try:
                time.sleep(0.3)  # py-spy attaches before the transfer starts
                run = measure(
                    network.client_ns,
                    Path_("ours", "ours", TUNNEL_SERVER, IPERF_PORT, pids),
                    args,
                    direction == "download",
                    network.iperf_server.pid if network.iperf_server else None,
                )
                for side, (spy, raw) in spies.items():
                    _, error = spy.communicate(timeout=args.seconds + 30)
                    if spy.returncode != 0 or not raw.exists():
                        results["errors"].append(f"py-spy on the {side} failed: {error.strip()[-300:]}")
                        continue
                    title = (
                        f"py-spy, {side} ({'sstp-vpn' if side == 'client' else 'fast_server.py'}), {direction}: "
                        f"{run['bits_per_second'] / 1e6:.0f} Mbit/s while sampled, {side} CPU {run['cpu'].get(side, 0):.0f} % of a core"
                    )
                    results["profiles"][title] = profile_summary.summarise(raw)
            finally:
                for spy, _ in spies.values():
                    stop_process(spy)
            print(f"  profiled {direction}: {out_dir}", flush=True)
    finally:
        tunnel.stop()


# -- the report ---------------------------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    values = sorted(values)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def summarise(results: dict) -> None:
    """Medians per path and direction, into results["summary"]."""
    summary = {}
    relay = results["paths"].get("relay", {})
    for key, path in results["paths"].items():
        for direction in DIRECTIONS:
            runs = [r for r in path[direction]["runs"] if r["bits_per_second"] > 0]
            if not runs:
                continue
            bits = median([r["bits_per_second"] for r in runs])
            relay_bits = median([r["bits_per_second"] for r in relay.get(direction, {}).get("runs", [])])
            entry = {"mbit": bits / 1e6, "min": min(r["bits_per_second"] for r in runs) / 1e6, "max": max(r["bits_per_second"] for r in runs) / 1e6}
            entry["ratio_to_relay"] = bits / relay_bits if relay_bits else None
            for side in ("client", "server"):
                used = [r for r in runs if side in r["cpu"]]
                if used:
                    entry[f"{side}_cpu"] = median([r["cpu"][side] for r in used])
                    system = [r["cpu_system"][side] for r in used if side in r.get("cpu_system", {})]
                    if system:
                        entry[f"{side}_system_cpu"] = median(system)
                    entry[f"{side}_core_per_gbit"] = median([r["cpu"][side] / 100 / (r["bits_per_second"] / 1e9) for r in used])
            entry["machine_busy"] = median([r["machine_busy"] for r in runs])
            for side in ("client", "server"):
                cores = [r["core_busy"][side] for r in runs if side in r.get("core_busy", {})]
                if cores:
                    entry[f"{side}_core_busy"] = median(cores)
            summary[f"{key} {direction}"] = entry
    results["summary"] = summary


def limit_of(entry: dict) -> str:
    """Which single-threaded side held the run: the one near a full core, else nobody clear."""
    client, server = entry.get("client_cpu"), entry.get("server_cpu")
    if "client_core_busy" in entry:  # pinned: each side has its CPU; a full one is the limit
        full = [side for side in ("client", "server") if entry[f"{side}_core_busy"] >= 95]
        name = "kernel+iperf3 " if client is None else ""
        return " and ".join(f"{name}{side} CPU full" for side in full) or "-"
    if client is None:
        return "kernel"
    sides = [("client", client), ("server", server or 0.0)]
    side, busiest = max(sides, key=lambda s: s[1])
    if busiest >= 90:
        return side if abs(client - (server or 0.0)) >= 10 else "both"
    if entry["machine_busy"] >= 90:
        return f"all cores busy (busiest: {side})"
    return "-"


def format_report(results: dict) -> str:
    machine, settings = results["machine"], results["settings"]
    window = settings["window"] or "kernel autotuning (no -w)"
    lines = [
        f"SSTP VPN engine-bound bench: {machine['nproc']} CPUs ({machine['cpu_model']}), kernel {machine['kernel']}",
        f"  Python {machine['python']}, {machine['openssl']}, {machine['iperf3']}; load average at start {machine['loadavg']}",
        f"  iperf3 -P {settings['parallel']}, window {window}; {settings['runs']} rounds x {settings['seconds']:g} s per path and direction, "
        "interleaved; medians",
        f"  server: bench/fast_server.py --tun {settings['server_tun']} ({results.get('server_tls', '?')}); relay: {results.get('relay_tls', '?')}",
        "  CPU in % of ONE core (client = the client process or the relay's client half; server = fast_server.py or the relay's server half);",
        "  core/Gb = cores busy per Gbit/s carried; machine = % of all cores busy; limit = a side at >= 90 % of its one core,",
        "  else 'all cores busy' when the machine is >= 90 % busy (then compare core/Gb, not Mbit/s)",
        "",
        f"{'path':<34}{'dir':<9}{'Mbit/s':>8}{'(min-max)':>14}{'/relay':>8}{'client %':>10}{'core/Gb':>9}{'server %':>10}{'core/Gb':>9}"
        f"{'machine':>9}  limit",
    ]
    for key, path in results["paths"].items():
        for direction in DIRECTIONS:
            entry = results["summary"].get(f"{key} {direction}")
            if entry is None:
                lines.append(f"{path['label']:<34}{direction:<9}{'-':>8}")
                continue

            def number(name: str, width: int, digits: int = 0, entry: dict = entry) -> str:
                value = entry.get(name)
                return f"{value:>{width}.{digits}f}" if value is not None else f"{'-':>{width}}"

            span = f"({entry['min']:.0f}-{entry['max']:.0f})"
            lines.append(
                f"{path['label']:<34}{direction:<9}{entry['mbit']:>8.0f}{span:>14}{number('ratio_to_relay', 8, 2)}"
                f"{number('client_cpu', 10)}{number('client_core_per_gbit', 9, 2)}{number('server_cpu', 10)}"
                f"{number('server_core_per_gbit', 9, 2)}{entry['machine_busy']:>9.0f}  {limit_of(entry)}"
            )
    split = []
    for key, path in results["paths"].items():
        for direction in DIRECTIONS:
            entry = results["summary"].get(f"{key} {direction}", {})
            sides = [
                f"{side} {entry[f'{side}_cpu'] - entry[f'{side}_system_cpu']:.0f} + {entry[f'{side}_system_cpu']:.0f}"
                for side in ("client", "server")
                if f"{side}_system_cpu" in entry
            ]
            if sides:
                split.append(f"  {path['label']:<34}{direction:<9}" + ", ".join(sides))
    if split:
        lines += ["", "CPU split, user + system (kernel: syscalls, TUN, sockets), % of one core, medians:", *split]
    pinned = []
    for key, path in results["paths"].items():
        for direction in DIRECTIONS:
            entry = results["summary"].get(f"{key} {direction}", {})
            if "client_core_busy" in entry:
                pinned.append(
                    f"  {path['label']:<34}{direction:<9}client CPU {entry['client_core_busy']:.0f} %, server CPU {entry['server_core_busy']:.0f} %"
                )
    if pinned:
        lines += [
            "",
            f"--pin: client side (client, iperf3 -c) on CPU {CLIENT_CPU}, server side (server, iperf3 -s) on CPU {SERVER_CPU}; "
            "% busy of each CPU (kernel work included), medians:",
            *pinned,
        ]
    connects = [(p["label"], p["connect_seconds"]) for p in results["paths"].values() if p.get("connect_seconds")]
    if connects:
        lines += ["", "Connect to this server, start -> tunnel up (median): " + "; ".join(f"{label} {median(s):.2f} s" for label, s in connects)]
    lines += ["", f"Goal (issue 18): ours >= {GOAL_RATIO:.0%} of the relay both ways, at fewer client cores per Gbit/s than the minimal client"]
    summary = results["summary"]
    for direction in DIRECTIONS:
        ours, minimal = summary.get(f"ours {direction}"), summary.get(f"minimal {direction}")
        if ours is None:
            lines.append(f"  {direction}: ours not measured")
            continue
        ratio = ours.get("ratio_to_relay")
        verdict = [f"ratio {ratio:.2f} {'ok' if ratio and ratio >= GOAL_RATIO else 'MISSED'}" if ratio else "ratio -"]
        if minimal and ours.get("client_core_per_gbit") and minimal.get("client_core_per_gbit"):
            cheaper = ours["client_core_per_gbit"] < minimal["client_core_per_gbit"]
            verdict.append(
                f"client {ours['client_core_per_gbit']:.2f} vs minimal {minimal['client_core_per_gbit']:.2f} core/Gbit/s "
                f"{'ok' if cheaper else 'MISSED'}"
            )
        lines.append(f"  {direction}: " + "; ".join(verdict))
    before = {d: summary.get(f"before {d}") for d in DIRECTIONS}
    if any(before.values()):
        parts = []
        for direction in DIRECTIONS:
            ours, old = summary.get(f"ours {direction}"), before[direction]
            if ours and old:
                cpu = ""
                if ours.get("client_core_per_gbit") and old.get("client_core_per_gbit"):
                    cpu = f", client core/Gbit/s x{ours['client_core_per_gbit'] / old['client_core_per_gbit']:.2f}"
                parts.append(f"{direction} x{ours['mbit'] / old['mbit']:.2f}{cpu}")
        lines.append("  ours / before: " + "; ".join(parts))
    for title, summary in results.get("profiles", {}).items():
        lines += ["", profile_summary.format_summary(title, summary)]
    if results.get("server_log"):
        lines += ["", "fast server log (last lines):"] + [f"  {line}" for line in results["server_log"][-4:]]
    if results.get("errors"):
        lines += ["", "ERRORS:"] + [f"  {error}" for error in results["errors"]]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------------


def check_prerequisites(args: argparse.Namespace) -> None:
    if os.geteuid() != 0:
        raise BenchError("run as root (network namespaces, TUN devices)")
    for program, package in (("ip", "iproute2"), ("ss", "iproute2"), ("iperf3", "iperf3")):
        if shutil.which(program) is None:
            raise BenchError(f"{program} is missing: apt-get install {package}")
    if args.before and not (Path(args.before) / "sstpvpn").is_dir():
        raise BenchError(f"--before {args.before}: no sstpvpn package there")
    if not args.no_minimal and not (REPO_ROOT / "bench" / "minimal_client.py").exists():
        raise BenchError("bench/minimal_client.py is missing (or pass --no-minimal)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="rounds; each measures every path once per direction (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each iperf3 run (default 5)")
    parser.add_argument("--parallel", type=int, default=1, help="iperf3 -P, parallel streams (default 1)")
    parser.add_argument("--window", help="iperf3 -w, socket buffer size (default: none, the kernel's autotuning)")
    parser.add_argument("--before", metavar="DIR", help="also measure the client imported from DIR (PYTHONPATH), e.g. /root/before/shadow")
    parser.add_argument("--no-minimal", action="store_true", help="do not measure bench/minimal_client.py")
    parser.add_argument("--no-relay", action="store_true", help="do not measure the veth and relay baselines")
    parser.add_argument("--only-ours", action="store_true", help="measure our client only (quick checks while changing the data path)")
    parser.add_argument(
        "--server-tun",
        choices=("gso", "plain", "device"),
        default="gso",
        help="the fast server's TUN: gso, writes joined into GSO super-packets (default; 1 in 64 TCP checksums checked); "
        "plain, one packet per read/write, the kernel checks all; device, opened as the client's TunDevice",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help=f"client side (client, iperf3 -c) on CPU {CLIENT_CPU}, server side (server, relay server half, iperf3 -s) on CPU {SERVER_CPU}: "
        "whichever CPU is full is the limit",
    )
    parser.add_argument("--profile", metavar="DIR", help="afterwards, one more run per direction with py-spy on our client and the server")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.pin and (os.cpu_count() or 1) < 2:
        parser.error("--pin needs two CPUs")
    if args.runs < 1 or args.seconds <= 0 or args.parallel < 1:
        parser.error("--runs and --parallel must be at least 1, --seconds positive")
    if args.only_ours:
        args.no_minimal, args.no_relay, args.before = True, True, None
    return args


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace, stack: contextlib.ExitStack, results: dict) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="sstpeb-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    remove_stale_namespaces((NAMESPACE_PREFIX,))
    print("setting up the namespaces, iperf3, the fast server and the relay...", flush=True)
    network = open_network(stack, workdir, args.server_tun)
    results["server_log_path"] = network.server.log
    fixed = []
    if not args.no_relay:
        fixed = [Path_("veth", "veth pair (kernel only)", SERVER_VETH), start_relay(stack, network, workdir)]
    kinds = client_kinds(args)
    count = len(fixed) + len(kinds)
    print(f"measuring: {args.runs} rounds x {len(DIRECTIONS)} directions x {count} paths x {args.seconds:g} s", flush=True)
    try:
        measure_rounds(network, fixed, kinds, args, results)
        if args.profile:
            print("profiling our client and the server (py-spy)...", flush=True)
            profile_ours(network, args, results)
    finally:
        relay_log = workdir / "relay-client.log"
        if relay_log.exists():
            tls = [line[5:].strip() for line in relay_log.read_text().splitlines() if line.startswith("tls: ")]
            results["relay_tls"] = tls[0] if tls else None
        log = network.server.log_lines()
        results["server_log"] = log
        tls = [line.split(": ", 1)[1] for line in log if ": TLS" in line]
        results["server_tls"] = tls[0] if tls else None
        summaries = [line for line in log if line.startswith("connection") and "problems=" in line]
        problems = [line for line in summaries if "problems=[]" not in line or ("bad checksums" in line and "bad checksums 0 " not in line)]
        results["errors"] += [f"fast server: {line}" for line in problems]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict = {
        "settings": {
            "runs": args.runs,
            "seconds": args.seconds,
            "parallel": args.parallel,
            "window": args.window,
            "before": args.before,
            "server_tun": args.server_tun,
            "pin": args.pin,
        },
        "paths": {},
        "profiles": {},
        "errors": [],
    }
    status = 0
    stack = contextlib.ExitStack()
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        check_prerequisites(args)
        results["machine"] = machine_info()
        run(args, stack, results)
    except KeyboardInterrupt:
        results["errors"].append("interrupted")
        status = 130
    except BenchError as error:
        results["errors"].append(str(error))
    except Exception as error:  # noqa: BLE001 - a bug or an unexpected tool failure: printed and reported, still clean up
        traceback.print_exc()
        results["errors"].append(f"{type(error).__name__}: {error}")
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        results.pop("server_log_path", None)
        try:
            stack.close()
        except Exception as error:  # noqa: BLE001 - a failed clean-up is reported; the report is still printed
            results["errors"].append(f"clean-up: {type(error).__name__}: {error}")
        for s, handler in previous.items():
            signal.signal(s, handler)
    if "machine" in results:
        summarise(results)
        print()
        print(format_report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    if status == 0 and results["errors"]:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
