"""Memory and idle CPU of the command-line client while connected, against SoftEther.

    sudo python3 bench/idle_footprint.py [--seconds 30] [--rounds 2] [--before PYTHONPATH]
                                         [--minimal] [--json FILE] [--wait-for-server SECONDS]

For each client and round: connect in the SoftEther fixture's client namespace (as bench/tunnel.py
does), let it settle for 2 s, then read its CPU time (utime + stime of all threads, from
/proc/PID/stat) over `--seconds` with no traffic, and its memory at the end: VmRSS from
/proc/PID/status and PSS from /proc/PID/smaps_rollup (PSS shares the interpreter's pages fairly
between processes, so it is the better figure when several Python processes run).

Clients: this tree's `sstp-vpn connect`; with --before, the same command importing the tree at that
PYTHONPATH (e.g. /root/before/shadow, a checkout before a change); with --minimal, the baseline
bench/minimal_client.py. Rounds alternate the clients. Exit status 0 when all were measured, 1 not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # `tests.` and `bench.` imports, as in the test suite

from bench.connect_time import minimal_argv  # noqa: E402
from bench.cpu_usage import process_cpu_seconds  # noqa: E402
from bench.measured_path import BenchError  # noqa: E402
from bench.report import median  # noqa: E402
from bench.tunnel import connect_args, start_softether, stop_client  # noqa: E402
from tests.integration.client_process import ClientProcess  # noqa: E402
from tests.integration.softether import SoftEtherServer, locate_server_binary  # noqa: E402
from tests.netns import stop_process  # noqa: E402

SETTLE_SECONDS = 2.0


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and Pss of a process, in KiB."""
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                found["rss_kib"] = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                found["pss_kib"] = int(line.split()[1])
    return found


def idle_cpu_percent(pid: int, seconds: float) -> float:
    before, began = process_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    after, elapsed = process_cpu_seconds(pid), time.monotonic() - began
    if before is None or after is None:
        raise BenchError(f"process {pid} ended while it was measured")
    return 100.0 * (after - before) / elapsed


@contextlib.contextmanager
def our_client(server: SoftEtherServer, pythonpath: str | None):
    """`sstp-vpn connect`, connected; importing the tree at `pythonpath` when given."""
    env = {"PYTHONPATH": pythonpath} if pythonpath else None
    client = ClientProcess(server.client_ns, connect_args(server), server.password, env=env)
    try:
        client.wait_for_line("connected:", timeout=60)
    except AssertionError as error:
        stop_client(client)
        raise BenchError(f"the client did not connect: {error} {client.stderr.strip()}") from None
    try:
        yield client.process.pid
    finally:
        stop_client(client)


@contextlib.contextmanager
def minimal_client(server: SoftEtherServer):
    argv = minimal_argv(server)
    process = server.client_ns.popen(*argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process.stdin.write(server.password + "\n")
    process.stdin.close()
    process.stdin = None
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            line = process.stdout.readline()
            if not line:
                raise BenchError(f"the minimal client ended before its tunnel was up: {process.stderr.read().strip()}")
            if line.split()[-1:] == ["tunnel-up"]:
                break
        else:
            raise BenchError("the minimal client's tunnel was not up within 60 s")
        yield process.pid
    finally:
        stop_process(process)


def measure(server: SoftEtherServer, clients: dict, seconds: float, rounds: int) -> dict:
    results: dict[str, dict[str, list]] = {name: {"cpu_percent": [], "rss_kib": [], "pss_kib": []} for name in clients}
    for _ in range(rounds):
        for name, start in clients.items():
            with start(server) as pid:
                time.sleep(SETTLE_SECONDS)
                results[name]["cpu_percent"].append(idle_cpu_percent(pid, seconds))
                for key, value in memory_kib(pid).items():
                    results[name][key].append(value)
    return results


def report(results: dict, seconds: float) -> str:
    lines = [
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Linux {platform.release()}, Python {platform.python_version()}",
        f"Idle while connected to SoftEther: CPU over {seconds:.0f} s (percent of one core), memory at its end; medians",
        "",
        f"{'client':<12} {'idle CPU %':>10} {'RSS MB':>8} {'PSS MB':>8}  runs",
    ]
    for name, values in results.items():
        cpu, rss, pss = median(values["cpu_percent"]), median(values["rss_kib"]), median(values["pss_kib"])
        if cpu is None or rss is None or pss is None:
            lines.append(f"{name:<12} {'-':>10}")
            continue
        lines.append(f"{name:<12} {cpu:10.3f} {rss / 1024:8.1f} {pss / 1024:8.1f}  {len(values['cpu_percent'])}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="idle stretch measured per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--before", metavar="PYTHONPATH", help="also measure the client importing the tree at this PYTHONPATH")
    parser.add_argument("--minimal", action="store_true", help="also measure bench/minimal_client.py")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--wait-for-server", type=float, default=0.0, metavar="SECONDS")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("run as root: the bench creates network namespaces", file=sys.stderr)
        return 1
    clients = {"this tree": lambda server: our_client(server, None)}
    if args.before:
        clients["before"] = lambda server: our_client(server, args.before)
    if args.minimal:
        clients["minimal"] = minimal_client
    try:
        with tempfile.TemporaryDirectory(prefix="sstp-idle-") as folder:
            server = start_softether(locate_server_binary(REPO_ROOT), Path(folder), args.wait_for_server)
            try:  # already entered: only its exit is left
                results = measure(server, clients, args.seconds, args.rounds)
            finally:
                server.__exit__(None, None, None)
    except BenchError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    print(report(results, args.seconds))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
