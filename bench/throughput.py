"""Throughput and connect time of the SSTP tunnel, with baselines measured in the same run.

    sudo python3 bench/throughput.py [--runs 3] [--seconds 5] [--connects 5] [--json FILE] [--profile DIR]

Measured on this machine, in one run, in network namespaces the bench creates and removes:

- the tunnel: `sstp-vpn connect` in the client namespace of the SoftEther fixture
  (tests/integration/softether.py) and `iperf3 -c 198.18.30.2` through it, to an iperf3 server in
  the namespace bridged into the hub (`bridge_peer()`); upload (iperf3) and download (iperf3 -R);
- baseline "veth": iperf3 between two namespaces over a plain veth pair (the kernel alone);
- baseline "relay": iperf3 through bench/tls_relay.py, a single-threaded Python TLS relay
  (TCP -> TLS over the veth -> TCP), i.e. what plain Python + OpenSSL manage on this machine;
- connect time: client start to its `connected:` line, and the client's start-up cost alone.

The iperf3 runs are interleaved (every round runs each path once per direction), because absolute
figures drift between runs; compare the ratios. CPU use of the client, vpnserver and the relay
halves comes from /proc/PID/stat over each iperf3 run. With --profile DIR, one more tunnel run per
direction is recorded with py-spy (`pip install py-spy`) and summarised.

Everything (namespaces, processes, the SoftEther state directories) is undone on exit, also on
Ctrl-C, SIGTERM or failure. Exit status: 0 all measured, 1 something failed (see ERRORS), 130
interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # `tests.` and `bench.` imports, as in the test suite

from bench import perf_profile  # noqa: E402
from bench.cpu_usage import CpuMeter  # noqa: E402
from bench.iperf_client import IperfError, run_iperf  # noqa: E402
from bench.profile_summary import summarise  # noqa: E402
from bench.report import DIRECTIONS, format_report, median  # noqa: E402
from tests.integration.certificates import make_test_pki  # noqa: E402
from tests.integration.client_process import CLI, ClientProcess  # noqa: E402
from tests.integration.softether import BRIDGE_PEER_ADDRESS, SoftEtherServer, locate_server_binary, locate_vpncmd  # noqa: E402
from tests.netns import Namespace, stop_process, veth_pair  # noqa: E402

NAMESPACE_PREFIX = "sstpbench"
BASE_NEAR, BASE_FAR = "198.18.40.2", "198.18.40.1"  # veth baseline: iperf3 client side, server side
IPERF_PORT = 5201
RELAY_LISTEN_PORT, RELAY_TLS_PORT = 15201, 8443
RELAY_NAME = "relay.test"
TUNNEL_IFNAME = "sstpbench0"
STARTUP_IMPORTS = "import sstpvpn.client.cli, sstpvpn.client.auth, sstpvpn.client.engine, sstpvpn.client.runner"


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


# -- small helpers ----------------------------------------------------------------------------------


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


def remove_stale_namespaces() -> None:
    """Namespaces of an earlier bench that was killed outright (its PID is in their names)."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for name in (line.split()[0] for line in listing.splitlines() if line.strip()):
        prefix, _, rest = name.partition("-")
        creator = rest.split("-")[0]
        if prefix == NAMESPACE_PREFIX and creator.isdigit() and not Path(f"/proc/{creator}").exists():
            if not subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.strip():
                subprocess.run(["ip", "netns", "del", name], capture_output=True)
                shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


def timed_runs(ns: Namespace, argv: list[str], count: int) -> list[float]:
    durations = []
    for _ in range(count):
        began = time.monotonic()
        ns.run(*argv)
        durations.append(time.monotonic() - began)
    return durations


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


# -- the baselines ------------------------------------------------------------------------------------


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
    relay_log = open(workdir / "relay-client.log", "w+")
    stack.callback(relay_log.close)
    relay_server = far.popen(*relay, "server", "--listen", f"{BASE_FAR}:{RELAY_TLS_PORT}",
                             "--connect", f"127.0.0.1:{IPERF_PORT}", "--cert", str(certificate.cert_path),
                             "--key", str(certificate.key_path), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    wait_for_ready_line(relay_server, "the relay's server half")
    relay_client = near.popen(*relay, "client", "--listen", f"127.0.0.1:{RELAY_LISTEN_PORT}",
                              "--connect", f"{BASE_FAR}:{RELAY_TLS_PORT}", "--ca", str(pki.ca_path),
                              "--server-name", RELAY_NAME, stdout=subprocess.PIPE, stderr=relay_log, text=True)
    wait_for_ready_line(relay_client, "the relay's client half")
    results["relay_log"] = relay_log
    return [
        BenchPath("veth", "veth pair (kernel only)", near, BASE_FAR, IPERF_PORT),
        BenchPath("relay", "Python TLS relay (1 thread/side)", near, "127.0.0.1", RELAY_LISTEN_PORT,
                  {"relay client": relay_client.pid, "relay server": relay_server.pid}),
    ]


# -- the tunnel --------------------------------------------------------------------------------------


def connect_args(server: SoftEtherServer) -> list[str]:
    return [f"{server.server_name}:{server.port}", "--user", server.username, "--ca-file", str(server.ca_path),
            "--no-default-route", "--ifname", TUNNEL_IFNAME]


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
    results["connect"] = {"startup": startup, "connected_seconds": connected, "disconnect_seconds": disconnect,
                          "progress_lines": timelines}
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
    results["connect"]["estimated_tcp_to_connected"] = median(connected) - (
        median(first_line) if first_line else median(startup["connect_imports"]))


def softether_in_use() -> str | None:
    """Why the one SoftEther the machine can run is busy, or None.

    The fixture's own check sees a running vpnserver only; a test session whose server is stopped
    for a moment still owns the state directories, so its namespaces count as well."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "vpnserver":
                return f"a vpnserver runs (pid {comm.parent.name})"
        except OSError:
            continue
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for name in (line.split()[0] for line in listing.splitlines() if line.strip()):
        prefix, _, rest = name.partition("-")
        creator = rest.split("-")[0]
        if prefix == "sstpsrv" and creator.isdigit() and int(creator) != os.getpid() and Path(f"/proc/{creator}").exists():
            return f"a SoftEther test session (pid {creator}, namespace {name}) is running"
    return None


def start_softether(binary: Path, workdir: Path, wait_seconds: float) -> SoftEtherServer:
    """The fixture's server, started once no other SoftEther session is running (waiting up to
    `wait_seconds` for it): a second one would take over the same state directories."""
    deadline = time.monotonic() + wait_seconds
    while (busy := softether_in_use()) is not None:
        if time.monotonic() > deadline:
            raise BenchError(f"SoftEther is in use: {busy}. Wait for it to end, or pass --wait-for-server SECONDS.")
        print(f"  {busy}; waiting...", flush=True)
        time.sleep(5)
    server = SoftEtherServer(binary, locate_vpncmd(binary), workdir / "softether")
    return server.__enter__()


def open_tunnel(stack: contextlib.ExitStack, workdir: Path, args: argparse.Namespace, results: dict) -> BenchPath:
    """SoftEther with a bridged iperf3 peer, connect timings, and a client that stays connected."""
    with contextlib.ExitStack() as tunnel_stack:
        binary = locate_server_binary(REPO_ROOT)
        server = start_softether(binary, workdir, args.wait_for_server)
        tunnel_stack.push(server)  # already entered: only its __exit__ is left to call
        peer = tunnel_stack.enter_context(server.bridge_peer())
        peer.popen("iperf3", "-s", "-B", BRIDGE_PEER_ADDRESS, "-p", str(IPERF_PORT),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_listener(peer, IPERF_PORT)
        measure_connects(server, args.connects, results)

        client, address, _, _ = start_client(server)
        tunnel_stack.callback(stop_client, client)
        mtu = json.loads(server.client_ns.run("ip", "-j", "link", "show", TUNNEL_IFNAME).stdout)[0]["mtu"]
        results["tunnel_info"] = {"address": address, "mtu": mtu, "client_pid": client.process.pid,
                                  "vpnserver_pid": server.pid}
        results["tunnel_client"] = client
        path = BenchPath("tunnel", "SSTP tunnel (sstp-vpn+SoftEther)", server.client_ns, BRIDGE_PEER_ADDRESS,
                         IPERF_PORT, {"client": client.process.pid, "vpnserver": server.pid})
        stack.enter_context(tunnel_stack.pop_all())
    return path


# -- measuring -----------------------------------------------------------------------------------------


def measure_once(path: BenchPath, seconds: float, reverse: bool) -> dict:
    meter = CpuMeter(path.pids)
    meter.start()
    result = run_iperf(path.ns, path.address, path.port, seconds, reverse)
    cpu = meter.stop()
    return {"bits_per_second": result.bits_per_second, "retransmits": result.retransmits,
            "cpu": cpu.processes, "machine_busy": cpu.machine_busy}


def measure_rounds(paths: list[BenchPath], args: argparse.Namespace, results: dict) -> None:
    table = results["paths"]
    for path in paths:
        table[path.key] = {"label": path.label, **{d: {"runs": []} for d in DIRECTIONS}}
    failed: set[str] = set()  # a path that failed once is not tried again
    for round_number in range(1, args.runs + 1):
        for direction in DIRECTIONS:
            for path in paths:
                if path.key in failed:
                    continue
                try:
                    run = measure_once(path, args.seconds, reverse=direction == "download")
                except IperfError as error:
                    failed.add(path.key)
                    results["errors"].append(f"{path.key} {direction}: {error}")
                    print(f"  {path.key} failed, not measured further: {error}", flush=True)
                    continue
                table[path.key][direction]["runs"].append(run)
                print(f"  round {round_number}/{args.runs} {direction:<8} {path.key:<6} "
                      f"{run['bits_per_second'] / 1e6:8.0f} Mbit/s  cpu {run['cpu']}", flush=True)
    results["failed_paths"] = sorted(failed)
    for path in paths:
        for direction in DIRECTIONS:
            entry = table[path.key][direction]
            entry["median_bits_per_second"] = median([r["bits_per_second"] for r in entry["runs"]])


def profile_tunnel(path: BenchPath, args: argparse.Namespace, results: dict) -> None:
    """More tunnel runs per direction: one with py-spy on the client, one with a system-wide perf."""
    out_dir = Path(args.profile)
    out_dir.mkdir(parents=True, exist_ok=True)
    py_spy, perf = shutil.which("py-spy"), shutil.which("perf")
    if py_spy is None:
        results["errors"].append("--profile: py-spy is missing (pip install py-spy); Python-level profile skipped")
    if perf is None:
        results["errors"].append("--profile: perf is missing (apt-get install linux-perf); system profile skipped")
    for direction in DIRECTIONS:
        if py_spy is not None:
            _py_spy_run(py_spy, path, direction, out_dir, args, results)
        if perf is not None:
            _perf_run(path, direction, out_dir, args, results)


def _py_spy_run(py_spy: str, path: BenchPath, direction: str, out_dir: Path, args: argparse.Namespace,
                results: dict) -> None:
    raw = out_dir / f"py-spy-client-{direction}.txt"
    # --native pauses the client for every sample (slower, but shows OpenSSL/libc frames);
    # without it py-spy reads the client's memory while it runs. --idle: wall-clock samples.
    mode = ["--native"] if args.profile_native else ["--nonblocking"]
    spy = subprocess.Popen([py_spy, "record", "--pid", str(path.pids["client"]), "--rate", str(args.profile_rate),
                            "--duration", f"{max(1, int(args.seconds))}", "--format", "raw", "--idle",
                            "--output", str(raw), *mode],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)  # py-spy attaches before the transfer starts
        run = measure_once(path, args.seconds, reverse=direction == "download")
        _, error = spy.communicate(timeout=args.seconds + 30)
    finally:
        stop_process(spy)
    if spy.returncode != 0 or not raw.exists():
        raise BenchError(f"py-spy failed: {error.strip()[-500:]}")
    title = (f"py-spy, client, {direction}: {run['bits_per_second'] / 1e6:.0f} Mbit/s while sampled, "
             f"client CPU {run['cpu'].get('client', 0):.0f} % of a core (from /proc)")
    results["profiles"][title] = summarise(raw)
    print(f"  profiled {direction} with py-spy: {raw}", flush=True)


def _perf_run(path: BenchPath, direction: str, out_dir: Path, args: argparse.Namespace, results: dict) -> None:
    data = out_dir / f"perf-{direction}.data"
    # Record the middle of the transfer: after slow start, before the end.
    recording_seconds = max(1.0, args.seconds - 1.5)
    outcome: list[dict] = []  # filled by the iperf3 thread
    iperf = threading.Thread(target=lambda: outcome.append(
        measure_once(path, args.seconds, reverse=direction == "download")))
    iperf.start()
    time.sleep(1.0)
    recorder = perf_profile.start_recording(data, recording_seconds)
    try:
        _, error = recorder.communicate(timeout=recording_seconds + 30)
    finally:
        stop_process(recorder)
        iperf.join()
    run = outcome[0] if outcome else None
    if recorder.returncode != 0 or not data.exists():
        raise BenchError(f"perf record failed: {error.strip()[-500:]}")
    labels = {pid: label for label, pid in path.pids.items()}
    speed = f"{run['bits_per_second'] / 1e6:.0f} Mbit/s while recorded" if run else "iperf3 failed"
    results["perf_profiles"][f"perf, whole machine, tunnel {direction}: {speed}"] = perf_profile.summarise(data, labels)
    print(f"  profiled {direction} with perf: {data}", flush=True)


# -- main ------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="iperf3 runs per direction and path (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each iperf3 run (default 5)")
    parser.add_argument("--connects", type=int, default=5, help="connect-time samples (default 5)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--profile", metavar="DIR", help="profile the tunnel during more runs per direction: "
                        "py-spy on the client (pip install py-spy), perf on the whole machine (apt-get install linux-perf)")
    parser.add_argument("--profile-native", action="store_true", help="with --profile: include C frames (pauses the client per sample)")
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second (default 200)")
    parser.add_argument("--wait-for-server", type=float, default=0, metavar="SECONDS",
                        help="wait up to this long while another SoftEther server (e.g. a test run) is running")
    parser.add_argument("--skip-tunnel", action="store_true", help="measure the baselines only")
    args = parser.parse_args()
    if args.runs < 1 or args.connects < 1 or args.seconds <= 0:
        parser.error("--runs and --connects must be at least 1, --seconds positive")
    return args


def check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise BenchError("run as root (network namespaces, the TUN device, SoftEther's state directories)")
    for program, package in (("ip", "iproute2"), ("ss", "iproute2"), ("iperf3", "iperf3")):
        if shutil.which(program) is None:
            raise BenchError(f"{program} is missing: apt-get install {package}")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace, stack: contextlib.ExitStack, results: dict) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="sstpbench-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    remove_stale_namespaces()
    print("setting up the baselines...", flush=True)
    paths = open_baselines(stack, workdir, results)
    if not args.skip_tunnel:
        print(f"setting up SoftEther and measuring {args.connects} connects...", flush=True)
        try:
            paths.append(open_tunnel(stack, workdir, args, results))
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # pytest's skip (missing server) is a BaseException
            results["errors"].append(f"tunnel: {type(error).__name__}: {error}")
            print(f"  tunnel not measured: {error}", flush=True)
    print(f"measuring: {args.runs} rounds x {len(DIRECTIONS)} directions x {len(paths)} paths x {args.seconds:g} s", flush=True)
    measure_rounds(paths, args, results)
    tunnel = next((p for p in paths if p.key == "tunnel"), None)
    if args.profile and tunnel is not None and tunnel.key not in results.get("failed_paths", ()):
        profile_tunnel(tunnel, args, results)
    client = results.pop("tunnel_client", None)
    if client is not None:
        code, seconds = stop_client(client)
        results["tunnel_info"]["exit_status_after_sigint"] = code
        if code != 0:
            results["errors"].append(f"the throughput client exited {code} after SIGINT (expected 0): {client.stderr.strip()}")


def main() -> int:
    args = parse_args()
    results: dict = {"settings": {"runs": args.runs, "seconds": args.seconds, "connects": args.connects},
                     "paths": {}, "profiles": {}, "perf_profiles": {}, "errors": []}
    status = 0
    stack = contextlib.ExitStack()
    # SIGINT explicitly too: a shell starting us in the background may have set it to "ignore".
    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        check_prerequisites()
        results["machine"] = machine_info()
        run(args, stack, results)
    except KeyboardInterrupt:
        results["errors"].append("interrupted")
        status = 130
    except (BenchError, IperfError) as error:
        results["errors"].append(str(error))
    except Exception as error:  # a bug or an unexpected tool failure: report it, still clean up
        traceback.print_exc()
        results["errors"].append(f"{type(error).__name__}: {error}")
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        relay_log = results.pop("relay_log", None)
        if relay_log is not None:
            relay_log.seek(0)
            tls_lines = [line[5:].strip() for line in relay_log.read().splitlines() if line.startswith("tls: ")]
            results["relay_tls"] = tls_lines[0] if tls_lines else None
        results.pop("tunnel_client", None)
        try:
            stack.close()
        except Exception as error:
            results["errors"].append(f"clean-up: {type(error).__name__}: {error}")
        for s, handler in previous.items():
            signal.signal(s, handler)
    if "machine" in results:
        print()
        print(format_report(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if status == 0 and results["errors"]:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
