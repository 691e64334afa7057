"""How fast the pure engine frames and unframes IP packets, without any I/O.

    python3 bench/engine_datapath.py [--packets N] [--size BYTES] [--rounds R] [--before DIR] [--json FILE]

A session is set up against the scripted server from the unit tests (no DHCPINFORM, so the
session is in its steady state at once); then batches of IPv4 packets go through
`receive_ip_packets` + `data_to_send` (upload) and SSTP bytes through `receive_stream_data` +
`packets_to_deliver` (download), the stream fed in 16 KiB pieces as TLS records come. The baseline,
measured in the same process, is the least any framing code must do: one bytes join per batch
(upload) and one slice per packet (download). Ratios are engine time / baseline time.

With --before DIR the engine imported from DIR (PYTHONPATH=DIR, e.g. /root/before/shadow, the code
before issue 18) is measured too, in a child process, alternating with this checkout's, 3 times;
the table gives medians and this checkout's speed over the old one's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

RECORD = 16 * 1024  # a TLS record's worth of stream per receive_stream_data()


def ipv4_packet(size: int) -> bytes:
    header = bytes([0x45, 0, size >> 8, size & 0xFF, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 30, 1, 198, 18, 30, 10])
    return header + bytes(size - len(header))


def best_of(rounds: int, work) -> float:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        work()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure(packets_per_batch: int, size: int, rounds: int) -> dict[str, dict[str, float]]:
    """Gbit/s of IP packets for the engine and the baseline, per direction (engine imported now)."""
    from sstpvpn.client.core.ppp_codec import encode_frame
    from sstpvpn.client.core.sstp_codec import encode_data
    from tests.unit.scripted_server import Conversation, ScriptedServer, engine_settings

    conversation = Conversation(replace(engine_settings(), dhcp_inform=False), ScriptedServer()).start()
    engine, now = conversation.engine, conversation.now
    engine.packets_to_deliver()
    engine.data_to_send()
    packets = [ipv4_packet(size)] * packets_per_batch
    stream = b"".join(encode_data(encode_frame(0x0021, p)) for p in packets)
    pieces = [stream[i : i + RECORD] for i in range(0, len(stream), RECORD)]
    wire = packets_per_batch * size * rounds

    def engine_upload() -> None:
        for _ in range(rounds):
            engine.receive_ip_packets(packets, now)
            engine.data_to_send()

    def engine_download() -> None:
        for _ in range(rounds):
            for piece in pieces:
                engine.receive_stream_data(piece, now)
            engine.packets_to_deliver()

    def baseline_upload() -> None:
        for _ in range(rounds):
            b"".join(packets)

    def baseline_download() -> None:
        step = len(stream) // packets_per_batch
        for _ in range(rounds):
            [stream[i + 8 : i + step] for i in range(0, len(stream), step)]

    engine_download()  # the same packets come out, and nothing else
    assert engine.packets_to_deliver() == [] and not engine.closed
    engine.receive_stream_data(stream, now)
    assert engine.packets_to_deliver() == packets
    results = {}
    for name, work, baseline in (("upload", engine_upload, baseline_upload), ("download", engine_download, baseline_download)):
        engine_seconds = best_of(5, work)
        baseline_seconds = best_of(5, baseline)
        results[name] = {"engine_gbps": wire * 8 / engine_seconds / 1e9, "baseline_gbps": wire * 8 / baseline_seconds / 1e9}
    assert not engine.closed
    return results


def measure_in_child(path: str | None, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    env = dict(os.environ)
    if path is None:
        env.pop("PYTHONPATH", None)
    else:
        env["PYTHONPATH"] = path
    command = [sys.executable, __file__, "--child", "--packets", str(args.packets), "--size", str(args.size), "--rounds", str(args.rounds)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the engine from {path or 'this checkout'} failed:\n{done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=256, help="packets per batch (default 256)")
    parser.add_argument("--size", type=int, default=1400, help="IP packet size (default 1400)")
    parser.add_argument("--rounds", type=int, default=200, help="batches per measurement (default 200)")
    parser.add_argument("--before", metavar="DIR", help="also measure the engine imported from DIR (PYTHONPATH), e.g. /root/before/shadow")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.packets, args.size, args.rounds)))
        return 0

    paths = {"ours": None} if args.before is None else {"ours": None, "before": args.before}
    runs: dict[str, list[dict]] = {name: [] for name in paths}
    for _ in range(1 if args.before is None else 3):  # alternate, so a busy moment hits both
        for name, path in paths.items():
            runs[name].append(measure_in_child(path, args))
    table = {
        name: {
            direction: {key: statistics.median(run[direction][key] for run in results) for key in ("engine_gbps", "baseline_gbps")}
            for direction in ("upload", "download")
        }
        for name, results in runs.items()
    }
    print(f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(
        f"{args.packets} packets of {args.size} bytes per batch, {args.rounds} batches, median of 5"
        + ("; 3 alternating runs, medians" if args.before else "")
    )
    print(f"{'engine':<8} {'direction':<10} {'engine Gbit/s':>14} {'baseline Gbit/s':>16} {'engine/baseline time':>21} {'CPU s per Gbit':>15}")
    for name, directions in table.items():
        for direction, figures in directions.items():
            engine_gbps, baseline_gbps = figures["engine_gbps"], figures["baseline_gbps"]
            ratio = baseline_gbps / engine_gbps
            print(f"{name:<8} {direction:<10} {engine_gbps:>14.2f} {baseline_gbps:>16.2f} {ratio:>21.1f} {1 / engine_gbps:>15.3f}")
    if args.before:
        for direction in ("upload", "download"):
            speedup = table["ours"][direction]["engine_gbps"] / table["before"][direction]["engine_gbps"]
            print(f"ours / before, {direction}: x{speedup:.2f} engine speed (CPU per Gbit/s x{1 / speedup:.2f})")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"packets": args.packets, "size": args.size, "rounds": args.rounds, "results": table, "runs": runs}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
