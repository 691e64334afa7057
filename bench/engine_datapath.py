"""How fast the pure engine frames and unframes IP packets, without any I/O.

    python3 bench/engine_datapath.py [--packets N] [--size BYTES] [--rounds R]

A session is set up against the scripted server from the unit tests; then batches of IPv4 packets
go through `receive_ip_packets` + `data_to_send` (upload) and SSTP bytes through
`receive_stream_data` + `packets_to_deliver` (download). The baseline, measured in the same run,
is the least any framing code must do: one bytes join per batch (upload) and one slice per packet
(download). Ratios are engine time / baseline time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sstpvpn.client.core.ppp_codec import encode_frame
from sstpvpn.client.core.sstp_codec import encode_data
from tests.unit.scripted_server import Conversation, ScriptedServer, engine_settings


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=256, help="packets per batch (default 256)")
    parser.add_argument("--size", type=int, default=1400, help="IP packet size (default 1400)")
    parser.add_argument("--rounds", type=int, default=200, help="batches per measurement (default 200)")
    args = parser.parse_args()

    conversation = Conversation(engine_settings(), ScriptedServer()).start()
    engine, now = conversation.engine, conversation.now
    packets = [ipv4_packet(args.size)] * args.packets
    stream = b"".join(encode_data(encode_frame(0x0021, p)) for p in packets)
    wire = args.packets * len(packets[0]) * args.rounds

    def engine_upload() -> None:
        for _ in range(args.rounds):
            engine.receive_ip_packets(packets, now)
            engine.data_to_send()

    def engine_download() -> None:
        for _ in range(args.rounds):
            engine.receive_stream_data(stream, now)
            engine.packets_to_deliver()

    def baseline_upload() -> None:
        for _ in range(args.rounds):
            b"".join(packets)

    def baseline_download() -> None:
        step = len(stream) // args.packets
        for _ in range(args.rounds):
            [stream[i + 8 : i + step] for i in range(0, len(stream), step)]

    print(f"{args.packets} packets of {args.size} bytes per batch, {args.rounds} batches, median of 5")
    print(f"{'direction':<10} {'engine Gbit/s':>14} {'baseline Gbit/s':>16} {'engine/baseline time':>21}")
    for name, work, baseline in (("upload", engine_upload, baseline_upload), ("download", engine_download, baseline_download)):
        engine_seconds = best_of(5, work)
        baseline_seconds = best_of(5, baseline)
        engine_rate, baseline_rate = wire * 8 / engine_seconds / 1e9, wire * 8 / baseline_seconds / 1e9
        print(f"{name:<10} {engine_rate:>14.2f} {baseline_rate:>16.2f} {engine_seconds / baseline_seconds:>21.1f}")
    assert engine.packets_to_deliver() == [] and not engine.closed
    return 0


if __name__ == "__main__":
    sys.exit(main())
