"""Fuzz the sans-IO engine with hostile server byte streams.

    python bench/fuzz_engine.py --count 100000 [--seed 1] [--jobs 2]
    python bench/fuzz_engine.py --seed 1 --only 4711 --verbose      # replay one input

Inputs are built from sessions recorded against the ScriptedServer (tests/unit/scripted_server.py)
and then mutated (bit flips, byte sets, deletions, insertions, duplications, truncation, splices
of two sessions, well-framed random packets injected mid-session, shifted timings), plus pure
random bytes after a valid HTTP 200 and random HTTP replies. Each input is fed to a fresh engine
whole and, separately, cut into random pieces (every 25th input also one byte at a time); the
engine runs with the recording's seed, so the crypto still matches and mutations reach deep.

Reported: how many inputs ran, how they ended (Failure / clean / still running), and every
problem with the command that reproduces it. A problem is an exception out of the engine, a
difference between the whole and the cut feeding, a PacketReader holding 4096 bytes or more,
a deadline left in the past, or a second Disconnected. Exit status 1 if there was any.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import random
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # so `tests.unit...` imports

from sstpvpn.client.events import Disconnected  # noqa: E402
from sstpvpn.client.ppp_codec import PppProtocol, encode_frame, encode_packet  # noqa: E402
from sstpvpn.client.sstp_codec import MessageType, encode_control, encode_data  # noqa: E402
from tests.unit.scripted_server import SCENARIOS, SOFTETHER_HTTP_REPLY, Recording, Replay, Step, comparable_events, record  # noqa: E402

INTERESTING_BYTES = (0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0F, 0x10, 0x11, 0x7F, 0x80, 0x81, 0xC0, 0xC2, 0xFE, 0xFF)
PROTOCOLS = [int(p) for p in PppProtocol]


# ------------------------------------------------------------------ building inputs


def _data_indexes(steps: list[Step]) -> list[int]:
    return [i for i, step in enumerate(steps) if step[0] == "data"]


def _random_packet(rng: random.Random) -> bytes:
    if rng.random() < 0.4:
        if rng.random() < 0.2:
            return encode_control(rng.choice(list(MessageType)))
        message_type = rng.choice([*MessageType, rng.randrange(0x10000)])
        attributes = rng.randrange(3)
        body = b""
        for _ in range(attributes):
            value = rng.randbytes(rng.choice([0, 2, 8, 36, 100, rng.randrange(64)]))
            length = 4 + len(value) + rng.choice([0, 0, 0, -1, 1, 0x1000])
            body += struct.pack("!BBH", 0, rng.randrange(6), length & 0xFFFF) + value
        count = attributes if rng.random() < 0.8 else rng.randrange(0x10000)
        packet = struct.pack("!HH", message_type, count) + body
        return struct.pack("!BBH", 0x10, 0x01, 4 + len(packet)) + packet
    protocol = rng.choice([*PROTOCOLS, rng.randrange(0x10000)])
    information = encode_packet(rng.randrange(13), rng.randrange(256), rng.randbytes(rng.randrange(40)))
    if rng.random() < 0.3:
        information = information[: rng.randrange(len(information) + 1)]
    frame = encode_frame(protocol, information)
    if rng.random() < 0.1:
        frame = frame[2:]  # ACFC
    return encode_data(frame[:4091])


def _mutate(rng: random.Random, data: bytes, low: int) -> bytes:
    buffer = bytearray(data)
    if len(buffer) <= low:
        return bytes(buffer) + rng.randbytes(rng.randrange(1, 8))
    at = rng.randrange(low, len(buffer))
    operation = rng.randrange(7)
    if operation == 0:
        buffer[at] ^= 1 << rng.randrange(8)
    elif operation == 1:
        buffer[at] = rng.choice(INTERESTING_BYTES)
    elif operation == 2:
        del buffer[at : at + rng.randrange(1, 9)]
    elif operation == 3:
        buffer[at:at] = rng.randbytes(rng.randrange(1, 17))
    elif operation == 4:
        buffer[at:at] = buffer[at : at + rng.randrange(1, 65)]
    elif operation == 5:
        del buffer[at:]
    else:
        buffer[at:at] = _random_packet(rng)
    return bytes(buffer)


def make_input(rng: random.Random, corpus: list[Recording]) -> tuple[Recording, list[Step], str]:
    """One fuzz input: the recording whose settings and seed to use, the steps, and a label."""
    recording = rng.choice(corpus)
    steps = list(recording.transcript)
    data_steps = _data_indexes(steps)
    start = steps[0][1]
    roll = rng.random()
    if roll < 0.55:
        label = "mutated"
        for _ in range(rng.choice([1, 1, 1, 2, 2, 3, 5, 8])):
            index = rng.choice(data_steps)
            kind, when, data = steps[index]
            # The HTTP reply is mutated one time in ten; otherwise only the SSTP bytes.
            low = len(SOFTETHER_HTTP_REPLY) if index == data_steps[0] and rng.random() < 0.9 else 0
            steps[index] = (kind, when, _mutate(rng, data, low))
    elif roll < 0.65:
        label = "spliced"
        other = rng.choice(corpus).transcript
        cut_here = rng.choice(data_steps[1:] or data_steps)
        cut_there = rng.randrange(len(other))
        tail = [(s[0], max(s[1], steps[cut_here][1]), *s[2:]) for s in other[cut_there:] if s[0] in ("data", "end")]
        steps = steps[:cut_here] + tail
    elif roll < 0.8:
        label = "injected"
        index = rng.choice(data_steps[1:] or data_steps)
        kind, when, data = steps[index]
        extra = b"".join(_random_packet(rng) for _ in range(rng.randrange(1, 6)))
        at = rng.randrange(len(data) + 1) if rng.random() < 0.3 else len(data)
        steps[index] = (kind, when, data[:at] + extra + data[at:])
    elif roll < 0.88:
        label = "timing"
        # Stretch the silence somewhere: timers (echo, restart, negotiation) fire mid-session.
        index = rng.randrange(1, len(steps))
        delay = rng.choice([1.0, 3.0, 20.0, 41.0, 61.0, 300.0])
        steps = steps[:index] + [(s[0], s[1] + delay, *s[2:]) for s in steps[index:]]
        if rng.random() < 0.5:
            index = rng.choice(data_steps)
            kind, when, data = steps[index]
            steps[index] = (kind, when, _mutate(rng, data, len(SOFTETHER_HTTP_REPLY) if index == data_steps[0] else 0))
        if rng.random() < 0.4:
            # The user (or the network) ends the session at an arbitrary moment.
            index = rng.randrange(len(steps))
            steps.insert(index, (rng.choice(["disconnect", "disconnect", "lost"]), steps[index][1]))
    elif roll < 0.96:
        label = "random-after-200"
        payload = rng.randbytes(rng.randrange(600)) if rng.random() < 0.5 else b"".join(_random_packet(rng) for _ in range(rng.randrange(1, 12)))
        steps = [("data", start, SOFTETHER_HTTP_REPLY + payload), ("end", start + rng.choice([1.0, 70.0]))]
    else:
        label = "random-http"
        status = rng.choice([b"200 OK", b"200", b"404 Not Found", b"100 Continue", b"301 Moved", b"999 X", rng.randbytes(6)])
        headers = rng.sample([b"Content-Length: 18446744073709551615", b"Content-Length: 5", b"Transfer-Encoding: chunked", b"Connection: close", b"X: " + rng.randbytes(8)], rng.randrange(3))
        reply = rng.choice([b"HTTP/1.1 ", b"HTTP/1.0 ", b"", b"SSTP/1.1 "]) + status + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"
        steps = [("data", start, reply + rng.randbytes(rng.randrange(64))), ("end", start + 70.0)]
    return recording, steps, label


def random_cuts(rng: random.Random):
    def split(data: bytes) -> list[bytes]:
        if len(data) < 2:
            return [data]
        points = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randrange(1, 6))))
        edges = [0, *points, len(data)]
        return [data[a:b] for a, b in zip(edges, edges[1:])]

    return split


def one_byte_at_a_time(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


# ------------------------------------------------------------------ running them


@dataclass
class Tally:
    ran: int = 0
    outcomes: collections.Counter = field(default_factory=collections.Counter)
    labels: collections.Counter = field(default_factory=collections.Counter)
    failures_by_layer: collections.Counter = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.ran += other.ran
        self.outcomes += other.outcomes
        self.labels += other.labels
        self.failures_by_layer += other.failures_by_layer
        self.problems += other.problems


def invariant_problems(result: Replay) -> list[str]:
    problems = []
    if result.largest_reader_buffer >= 4096:
        problems.append(f"PacketReader held {result.largest_reader_buffer} bytes")
    problems += result.timer_faults
    ends = [i for i, event in enumerate(result.events) if isinstance(event, Disconnected)]
    if len(ends) > 1:
        problems.append(f"{len(ends)} Disconnected events")
    if ends and len(result.events) - ends[0] > 2:
        problems.append(f"events after Disconnected: {result.events[ends[0] + 1:]}")
    return problems


def run_one(seed: int, index: int, corpus: list[Recording], verbose: bool = False) -> tuple[str, str, str | None]:
    """(label, outcome, problem or None) for input `index` of run `seed`."""
    rng = random.Random(f"{seed}:{index}")
    recording, steps, label = make_input(rng, corpus)
    splitter = one_byte_at_a_time if index % 25 == 0 else random_cuts(rng)
    try:
        whole = recording.replay(transcript=steps)
        cut = recording.replay(split=splitter, transcript=steps)
    except Exception:  # noqa: BLE001  # an exception out of the engine is exactly what we hunt
        return label, "exception", traceback.format_exc()
    problems = invariant_problems(whole) + invariant_problems(cut)
    whole_events, cut_events = comparable_events(whole.events), comparable_events(cut.events)
    if whole_events != cut_events:
        first = next((i for i, (a, b) in enumerate(zip(whole_events, cut_events)) if a != b), min(len(whole_events), len(cut_events)))
        problems.append(f"events differ whole vs cut from event {first}: {whole.events[first:first + 2]} vs {cut.events[first:first + 2]}")
    if whole.sent != cut.sent:
        problems.append("bytes sent differ whole vs cut")
    if whole.delivered != cut.delivered:
        problems.append("packets delivered differ whole vs cut")
    if verbose:
        print(f"input {index}: {label} on {recording.name}, {len(steps)} steps")
        for event in whole.events:
            print("   ", event)
    outcome = whole.outcome
    if outcome == "failure":
        failure = [event for event in whole.events if isinstance(event, Disconnected)][-1].failure
        outcome = f"failure:{failure.where}" if failure else outcome
    return label, outcome, "; ".join(problems) or None


def run_range(seed: int, start: int, stop: int) -> Tally:
    corpus = [record(name) for name in sorted(SCENARIOS)]
    tally = Tally()
    for index in range(start, stop):
        label, outcome, problem = run_one(seed, index, corpus)
        tally.ran += 1
        tally.labels[label] += 1
        if outcome.startswith("failure:"):
            tally.failures_by_layer[outcome.split(":", 1)[1]] += 1
            outcome = "failure"
        tally.outcomes[outcome] += 1
        if problem is not None:
            tally.problems.append(f"input {index} ({label}): {problem}\n    reproduce: python bench/fuzz_engine.py --seed {seed} --only {index} --verbose")
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="number of inputs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--only", type=int, help="run just this input (to reproduce a problem)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    if args.only is not None:
        corpus = [record(name) for name in sorted(SCENARIOS)]
        label, outcome, problem = run_one(args.seed, args.only, corpus, verbose=args.verbose)
        print(f"input {args.only}: {label} -> {outcome}")
        if problem:
            print(problem)
            return 1
        return 0

    started = time.monotonic()
    bounds = [(args.count * j // args.jobs, args.count * (j + 1) // args.jobs) for j in range(args.jobs)]
    tally = Tally()
    if args.jobs == 1:
        tally = run_range(args.seed, 0, args.count)
    else:
        with multiprocessing.Pool(args.jobs) as pool:
            for part in pool.starmap(run_range, [(args.seed, a, b) for a, b in bounds]):
                tally.add(part)
    elapsed = time.monotonic() - started

    print(f"ran {tally.ran} inputs in {elapsed:.1f} s ({tally.ran / elapsed:.0f}/s), seed {args.seed}")
    print("  kinds:    " + ", ".join(f"{k} {v}" for k, v in sorted(tally.labels.items())))
    print(f"  ended:    Failure {tally.outcomes['failure']}, clean {tally.outcomes['clean']}, still running {tally.outcomes['running']}, exception {tally.outcomes['exception']}")
    print("  failures: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.failures_by_layer.items())))
    print(f"  problems: {len(tally.problems)}")
    for problem in tally.problems[:20]:
        print("   - " + problem.replace("\n", "\n     "))
    if len(tally.problems) > 20:
        print(f"   ... and {len(tally.problems) - 20} more")
    return 1 if tally.problems else 0


if __name__ == "__main__":
    sys.exit(main())
