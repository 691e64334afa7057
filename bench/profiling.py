"""Profiles of the tunnel during extra iperf3 runs: py-spy on the client, perf on the machine."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import threading
import time
from pathlib import Path

from bench import perf_profile
from bench.measured_path import BenchError, BenchPath, measure_once
from bench.profile_summary import summarise
from bench.report import DIRECTIONS
from tests.netns import stop_process


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


def _py_spy_run(py_spy: str, path: BenchPath, direction: str, out_dir: Path, args: argparse.Namespace, results: dict) -> None:
    raw = out_dir / f"py-spy-client-{direction}.txt"
    # --native pauses the client for every sample (slower, but shows OpenSSL/libc frames);
    # without it py-spy reads the client's memory while it runs. --idle: wall-clock samples.
    mode = ["--native"] if args.profile_native else ["--nonblocking"]
    spy = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(path.pids["client"]),
            "--rate",
            str(args.profile_rate),
            "--duration",
            f"{max(1, int(args.seconds))}",
            "--format",
            "raw",
            "--idle",
            "--output",
            str(raw),
            *mode,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.3)  # py-spy attaches before the transfer starts
        run = measure_once(path, args.seconds, reverse=direction == "download")
        _, error = spy.communicate(timeout=args.seconds + 30)
    finally:
        stop_process(spy)
    if spy.returncode != 0 or not raw.exists():
        raise BenchError(f"py-spy failed: {error.strip()[-500:]}")
    title = (
        f"py-spy, client, {direction}: {run['bits_per_second'] / 1e6:.0f} Mbit/s while sampled, "
        f"client CPU {run['cpu'].get('client', 0):.0f} % of a core (from /proc)"
    )
    results["profiles"][title] = summarise(raw)
    print(f"  profiled {direction} with py-spy: {raw}", flush=True)


def _perf_run(path: BenchPath, direction: str, out_dir: Path, args: argparse.Namespace, results: dict) -> None:
    data = out_dir / f"perf-{direction}.data"
    # Record the middle of the transfer: after slow start, before the end.
    recording_seconds = max(1.0, args.seconds - 1.5)
    outcome: list[dict] = []  # filled by the iperf3 thread
    iperf = threading.Thread(target=lambda: outcome.append(measure_once(path, args.seconds, reverse=direction == "download")))
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
