"""Throughput and connect time of the SSTP tunnel, with baselines measured in the same run.

    sudo python3 bench/throughput.py [--runs 3] [--seconds 5] [--connects 5] [--json FILE]
                                     [--before DIR] [--profile DIR [--profile-native]]
                                     [--wait-for-server SECONDS]

Measured on this machine, in one run, in network namespaces the bench creates and removes:

- the tunnel: `sstp-vpn connect` in the client namespace of the SoftEther fixture
  (tests/integration/softether.py) and `iperf3 -c 198.18.30.2` through it, to an iperf3 server in
  the namespace bridged into the hub (`bridge_peer()`); upload (iperf3) and download (iperf3 -R);
- the same through bench/minimal_client.py, the single-file baseline SSTP client (its own client
  namespace, the same SoftEther); with --before DIR, also through the CLI of an older tree (DIR put
  first on PYTHONPATH, e.g. /root/before/shadow), for before/after ratios from one run;
- baseline "veth": iperf3 between two namespaces over a plain veth pair (the kernel alone);
- baseline "relay": iperf3 through bench/tls_relay.py, a single-threaded Python TLS relay
  (TCP -> TLS over the veth -> TCP), i.e. what plain Python + OpenSSL manage on this machine;
- connect time: client start to its `connected:` line (the minimal client: its `tunnel-up` line),
  the clients taking turns, the time of each progress line before it, and our client's start-up
  cost alone (interpreter, `--version`, imports of the connect path).

The iperf3 runs are interleaved (every round runs each path once per direction), because absolute
figures drift between runs; compare the ratios. CPU use of each client, vpnserver and the relay
halves comes from /proc/PID/stat over each iperf3 run; the report gives each client's CPU per
Gbit/s, and ratios against the minimal client and the TLS relay. With --profile DIR, more runs per
direction through our tunnel are recorded: one with py-spy on the client (`pip install py-spy`;
Python frames), one with a system-wide `perf` (Debian linux-perf; kernel, OpenSSL, interpreter),
and summarised.

Only one SoftEther server can run on a machine (its state directories are compiled in), so the
bench refuses to start while another one or a SoftEther test session runs (--wait-for-server
waits for it). Everything (namespaces, processes, the SoftEther state directories) is undone on
exit, also on Ctrl-C, SIGTERM or failure. Exit status: 0 all measured, 1 something failed (see
ERRORS), 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import tempfile
import traceback
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # `tests.` and `bench.` imports, as in the test suite

from bench.baselines import NAMESPACE_PREFIX, open_baselines  # noqa: E402
from bench.iperf_client import IperfError  # noqa: E402
from bench.machine import machine_info  # noqa: E402
from bench.measured_path import BenchError, BenchPath, measure_once  # noqa: E402
from bench.profiling import profile_tunnel  # noqa: E402
from bench.report import DIRECTIONS, format_report, median  # noqa: E402
from bench.tunnel import open_tunnels  # noqa: E402
from tests.netns import remove_stale_namespaces  # noqa: E402

# -- measuring -----------------------------------------------------------------------------------------


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
                print(
                    f"  round {round_number}/{args.runs} {direction:<8} {path.key:<6} {run['bits_per_second'] / 1e6:8.0f} Mbit/s  cpu {run['cpu']}",
                    flush=True,
                )
    results["failed_paths"] = sorted(failed)
    for path in paths:
        for direction in DIRECTIONS:
            entry = table[path.key][direction]
            entry["median_bits_per_second"] = median([r["bits_per_second"] for r in entry["runs"]])


# -- main ------------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="iperf3 runs per direction and path (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each iperf3 run (default 5)")
    parser.add_argument("--connects", type=int, default=5, help="connect-time samples (default 5)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="profile the tunnel during more runs per direction: "
        "py-spy on the client (pip install py-spy), perf on the whole machine (apt-get install linux-perf)",
    )
    parser.add_argument("--profile-native", action="store_true", help="with --profile: include C frames (pauses the client per sample)")
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples per second (default 200)")
    parser.add_argument(
        "--wait-for-server",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait up to this long while another SoftEther server (e.g. a test run) is running",
    )
    parser.add_argument("--skip-tunnel", action="store_true", help="measure the baselines only")
    parser.add_argument(
        "--before",
        metavar="DIR",
        help="also measure the CLI of an older tree: DIR is put first on PYTHONPATH (e.g. /root/before/shadow)",
    )
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
    remove_stale_namespaces((NAMESPACE_PREFIX,))
    print("setting up the baselines...", flush=True)
    paths = open_baselines(stack, workdir, results)
    if not args.skip_tunnel:
        print(f"setting up SoftEther and measuring {args.connects} connects per client...", flush=True)
        try:
            paths += open_tunnels(stack, workdir, args, results)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # noqa: BLE001 - pytest's skip (missing server) is a BaseException; the bench goes on without the tunnel
            results["errors"].append(f"tunnel: {type(error).__name__}: {error}")
            print(f"  tunnel not measured: {error}", flush=True)
    print(f"measuring: {args.runs} rounds x {len(DIRECTIONS)} directions x {len(paths)} paths x {args.seconds:g} s", flush=True)
    measure_rounds(paths, args, results)
    tunnel = next((p for p in paths if p.key == "tunnel"), None)
    if args.profile and tunnel is not None and tunnel.key not in results.get("failed_paths", ()):
        profile_tunnel(tunnel, args, results)
    for key, client in results.pop("clients_up", {}).items():
        code, _ = client.stop()
        results["tunnel_info"]["clients"][key]["exit_status_after_stop"] = code
        if code != 0:
            results["errors"].append(f"the {key} client exited {code} after SIGINT/SIGTERM (expected 0)")


def main() -> int:
    args = parse_args()
    results: dict = {
        "settings": {"runs": args.runs, "seconds": args.seconds, "connects": args.connects, "before": args.before},
        "paths": {},
        "profiles": {},
        "perf_profiles": {},
        "errors": [],
    }
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
    except Exception as error:  # noqa: BLE001 - a bug or an unexpected tool failure: printed and reported, still clean up
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
        results.pop("clients_up", None)
        try:
            stack.close()
        except Exception as error:  # noqa: BLE001 - a failed clean-up is reported; the report is still printed
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
