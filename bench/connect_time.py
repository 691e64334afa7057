"""Connect time against SoftEther: where it goes, per phase, for each client, and as seen on the wire.

    sudo python3 bench/connect_time.py [--runs 7] [--warmup 1] [--before /root/before/shadow] [--no-minimal]
                                       [--full-tunnel] [--tray] [--json FILE] [--wait-for-server SECONDS]

The SoftEther fixture of the integration tests (tests/integration/softether.py) runs in network
namespaces; each run starts one client in the client namespace and stops it once its tunnel is up.
Runs alternate the clients: this tree's `sstp-vpn connect -v`; with --before, the same command
importing the tree at that PYTHONPATH; and the minimal baseline client bench/minimal_client.py
(unless --no-minimal, or when the file is missing).

Client phases (start -> SYN -> TLS -> HTTP -> Call Connect Ack -> LCP open -> auth -> IPCP -> tunnel
up): each is the time its progress line reached this bench, from the moment the bench started the
process (`ip netns exec`, then the interpreter). Our client's lines are its INFO/DEBUG log lines
(`-v`), the minimal client's are its phase lines; SYN comes from the wire for both.

The wire: an AF_PACKET socket in the client namespace (a child of this script) records the client's
TCP to the server with kernel timestamps. From it: the SYN, the end of the TLS handshake (the
client's Finished), and for every TLS record after it, until the client's tunnel is up:
- the client's reaction: the gap between a server record and the client's next record, when the
  client's record comes next ("every client packet of the handshake leaves <= 5 ms after the server
  packet that allows it"); max and median per run;
- the server's waits: every gap that ends with a server record (after a client record, or between
  two server records: SoftEther handles one client packet per wake-up and sometimes waits 300 ms
  before the next); their sum is what no client can save.
For each client phase line the table also shows how long before the line the server's record that
allowed it arrived (the client's own time for that phase, from the wire).

The clients run without PYTHONDONTWRITEBYTECODE and after --warmup uncounted runs each, so they
start from compiled bytecode as an installed client does (recompiling the sources costs about
0.1 s per start). With --tray, the tray's times from the click on Connect to its first SYN and to
the green icon are added from bench/tray.py (run with the same number of connects; its server is
the loopback SSTP test server of the tests, which answers at once: no DHCP wait).

Run as root. Exit status 0 when every run connected, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # `tests.` and `bench.` imports, as in the test suite

MINIMAL_CLIENT = REPO_ROOT / "bench" / "minimal_client.py"
OUR_IFNAME = "sstpct0"
MINIMAL_IFNAME = "sstpmin0"
CONNECT_TIMEOUT = 60.0
PHASES = ("syn", "tls", "http", "call-connect-ack", "lcp-open", "auth-ok", "ipcp-open", "tunnel-up")
REACTION_GOAL = 0.005  # seconds: a client record after the server record that allows it
SYN_GOAL = 0.15  # seconds after process start
TOTAL_GOAL_RATIO = 1.05  # start -> tunnel up, against the minimal client's median
OWN_TIME_GOAL = 0.2  # seconds: start -> tunnel up beyond the server's waits

# Our client's progress lines (sstp-vpn connect -v): the phase each one marks.
OUR_LINES = (
    ("Connecting to ", "connecting"),
    ("TLS is up", "tls"),
    ("The server accepted the SSTP request", "http"),
    ("Call Connect Ack", "call-connect-ack"),
    ("Authenticating with", "lcp-open"),
    ("Authenticated;", "auth-ok"),
    ("IPCP is up", "ipcp-open"),
    ("connected:", "tunnel-up"),
)


class BenchFailure(Exception):
    pass


# -- the capture (a child process in the client namespace) ----------------------------------------

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35
_RECORD = struct.Struct("!dBIBH")  # time, from the client, sequence number, TCP flags, payload length


def capture_child(interface: str, client_address: str, server_port: int, output: Path) -> int:
    """Record the TCP segments between this namespace's client and the server port to `output`
    until SIGTERM: one _RECORD header and the payload per segment."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((interface, 0))
    client = socket.inet_aton(client_address)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    with open(output, "wb", buffering=1 << 16) as out:
        print("ready", flush=True)
        try:
            while True:
                frame, ancillary, _flags, _address = sock.recvmsg(65600, 64)
                if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
                    continue
                stamp = time.time()
                for level, kind, data in ancillary:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        seconds, nanoseconds = struct.unpack("qq", data[:16])
                        stamp = seconds + nanoseconds / 1e9
                ip = frame[14:]
                header = (ip[0] & 0x0F) * 4
                total = struct.unpack_from("!H", ip, 2)[0]
                tcp = ip[header:total]
                source_port, destination_port, sequence = struct.unpack_from("!HHI", tcp)
                if server_port not in (source_port, destination_port):
                    continue
                payload = tcp[(tcp[12] >> 4) * 4 :]
                out.write(_RECORD.pack(stamp, ip[12:16] == client, sequence, tcp[13], len(payload)) + payload)
        except SystemExit:
            return 0


@dataclass
class Segment:
    time: float
    outgoing: bool  # from the client
    sequence: int
    flags: int
    payload: bytes


def read_capture(path: Path) -> list[Segment]:
    data = path.read_bytes()
    segments, offset = [], 0
    while offset + _RECORD.size <= len(data):
        stamp, outgoing, sequence, flags, length = _RECORD.unpack_from(data, offset)
        offset += _RECORD.size
        segments.append(Segment(stamp, bool(outgoing), sequence, flags, data[offset : offset + length]))
        offset += length
    return segments


@dataclass(frozen=True)
class TlsRecord:
    time: float  # when its last byte was seen
    outgoing: bool
    content_type: int
    length: int


def tls_records(segments: list[Segment]) -> tuple[float | None, list[TlsRecord]]:
    """The first SYN's time and the TLS records of the first connection, both directions, in
    order of completion (TCP reassembled by sequence number; repeats dropped)."""
    syn = next((s for s in segments if s.outgoing and s.flags & 0x02 and not s.flags & 0x10), None)
    if syn is None:
        return None, []
    records: list[TlsRecord] = []
    for outgoing in (True, False):
        initial = syn.sequence if outgoing else next((s.sequence for s in segments if not s.outgoing and s.flags & 0x12 == 0x12), None)
        if initial is None:
            continue
        stream, times = bytearray(), []  # bytes in order, and when each segment's end arrived
        expected = (initial + 1) & 0xFFFFFFFF
        for segment in segments:
            if segment.outgoing != outgoing or not segment.payload or segment.time < syn.time:
                continue
            if segment.sequence != expected:
                continue  # a repeat (or, on these links, nothing else)
            stream += segment.payload
            expected = (expected + len(segment.payload)) & 0xFFFFFFFF
            times.append((len(stream), segment.time))
        offset, index = 0, 0
        while offset + 5 <= len(stream):
            length = struct.unpack_from("!H", stream, offset + 3)[0]
            end = offset + 5 + length
            if end > len(stream):
                break
            while times[index][0] < end:
                index += 1
            records.append(TlsRecord(times[index][1], outgoing, stream[offset], length))
            offset = end
    records.sort(key=lambda record: record.time)
    return syn.time, records


@dataclass
class WireView:
    syn: float | None = None  # seconds after the process start
    tls: float | None = None  # the client's Finished
    http: float | None = None  # the client's first application record (the SSTP request)
    reactions: list[float] = field(default_factory=list)  # server record -> client's next record
    server_waits: list[float] = field(default_factory=list)  # any record -> the server's next record
    # (client record time, the server record before it) for matching the client's phase lines
    replies: list[tuple[float, float]] = field(default_factory=list)


def wire_view(segments: list[Segment], start: float, until: float) -> WireView:
    syn, records = tls_records(segments)
    view = WireView()
    if syn is None:
        return view
    view.syn = syn - start
    finished_at = None
    seen_change_cipher = False
    for record in records:
        if record.outgoing and record.content_type == 20:
            seen_change_cipher = True
        elif record.outgoing and (seen_change_cipher or record.content_type == 23):
            finished_at = record.time
            break
    if finished_at is None:
        return view
    view.tls = finished_at - start
    after = [r for r in records if r.time > finished_at and r.time <= until + 0.001]
    first_client = next((r for r in after if r.outgoing), None)
    if first_client is not None:
        view.http = first_client.time - start
    # Each gap between two records (from the client's Finished on) is someone's time: one that
    # ends with a server record is the server's (it waited, or took its time for a second
    # record), one that ends with a client record is the client's (a reaction, when a server
    # record came just before it).
    previous: TlsRecord | None = None
    for record in after:
        if previous is not None:
            gap = record.time - previous.time
            if not record.outgoing:
                view.server_waits.append(gap)
            elif not previous.outgoing:
                view.reactions.append(gap)
                view.replies.append((record.time - start, previous.time - start))
        previous = record
    return view


@contextlib.contextmanager
def capturing(ns, interface: str, client_address: str, server_port: int, folder: Path) -> Iterator[Path]:
    path = folder / f"capture-{time.monotonic_ns()}.bin"
    child = ns.popen(
        sys.executable,
        str(Path(__file__).resolve()),
        "--capture-child",
        interface,
        client_address,
        str(server_port),
        str(path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if child.stdout.readline().strip() != "ready":
            raise BenchFailure(f"the packet capture did not start: {child.stderr.read().strip()}")
        yield path
    finally:
        time.sleep(0.05)  # the last segments
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# -- the clients ---------------------------------------------------------------------------------


@dataclass
class Run:
    client: str
    phases: dict[str, float]  # phase -> seconds after the process start (line arrival)
    lines: list[tuple[float, str]]
    cpu_seconds: float | None  # the client's CPU time when its tunnel was up
    wire: WireView | None = None


class LineReader(threading.Thread):
    """Stamps each stdout line of a process with time.time() as it arrives."""

    def __init__(self, process: subprocess.Popen) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.lines: list[tuple[float, str]] = []
        self.changed = threading.Condition()

    def run(self) -> None:
        for line in self.process.stdout:
            with self.changed:
                self.lines.append((time.time(), line.rstrip("\n")))
                self.changed.notify_all()
        with self.changed:
            self.lines.append((time.time(), ""))  # end of output
            self.changed.notify_all()

    def wait_for(self, done: Callable[[str], bool], timeout: float) -> float | None:
        end = time.monotonic() + timeout
        with self.changed:
            while True:
                for stamp, line in self.lines:
                    if done(line):
                        return stamp
                if self.lines and self.lines[-1][1] == "" and self.process.poll() is not None:
                    return None
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return None
                self.changed.wait(remaining)


@dataclass(frozen=True)
class ClientKind:
    name: str
    argv: Callable[[object], list[str]]
    env: dict[str, str]
    done: Callable[[str], bool]
    phases: Callable[[list[tuple[float, str]], float], dict[str, float]]
    stop_signal: int


FULL_TUNNEL = False  # --full-tunnel: our client routes everything through the VPN (its early route check runs)


def our_argv(server) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sstpvpn.client.cli",
        "connect",
        f"{server.server_name}:{server.port}",
        "--user",
        server.username,
        "--ca-file",
        str(server.ca_path),
        *([] if FULL_TUNNEL else ["--no-default-route"]),
        "--ifname",
        OUR_IFNAME,
        "--password-stdin",
        "-v",
    ]


def our_phases(lines: list[tuple[float, str]], start: float) -> dict[str, float]:
    phases: dict[str, float] = {}
    for stamp, line in lines:
        for prefix, phase in OUR_LINES:
            if line.startswith(prefix) and phase not in phases:
                phases[phase] = stamp - start
    return phases


def minimal_argv(server) -> list[str]:
    return [
        sys.executable,
        str(MINIMAL_CLIENT),
        "--server",
        server.server_name,
        "--port",
        str(server.port),
        "--ca-file",
        str(server.ca_path),
        "--user",
        server.username,
        "--ifname",
        MINIMAL_IFNAME,
    ]


def minimal_phases(lines: list[tuple[float, str]], start: float) -> dict[str, float]:
    phases: dict[str, float] = {}
    for stamp, line in lines:
        words = line.split()
        if len(words) == 2 and words[1] in PHASES and words[1] not in phases:
            phases[words[1]] = stamp - start
    return phases


def client_kinds(args: argparse.Namespace) -> list[ClientKind]:
    kinds = [ClientKind("this tree", our_argv, {}, lambda line: line.startswith("connected:"), our_phases, signal.SIGINT)]
    if args.before:
        kinds.append(
            ClientKind("before", our_argv, {"PYTHONPATH": args.before}, lambda line: line.startswith("connected:"), our_phases, signal.SIGINT)
        )
    if not args.no_minimal and MINIMAL_CLIENT.exists():
        kinds.append(ClientKind("minimal", minimal_argv, {}, lambda line: line.endswith(" tunnel-up"), minimal_phases, signal.SIGTERM))
    return kinds


def client_environment() -> dict[str, str]:
    """The bench's environment for the clients, except PYTHONDONTWRITEBYTECODE: an installed
    client runs from compiled bytecode, so it must not compile its modules on every start here."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def cpu_seconds(pid: int) -> float | None:
    from bench.cpu_usage import process_cpu_seconds

    return process_cpu_seconds(pid)


def run_once(server, kind: ClientKind, folder: Path) -> Run:
    ns = server.client_ns
    with capturing(ns, server.client_interface, server_client_address(), server.port, folder) as capture:
        env = {**client_environment(), **kind.env}
        start = time.time()
        process = ns.popen(*kind.argv(server), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        process.stdin.write(server.password + "\n")
        process.stdin.close()
        process.stdin = None
        reader = LineReader(process)
        reader.start()
        try:
            up = reader.wait_for(kind.done, CONNECT_TIMEOUT)
            cpu = cpu_seconds(process.pid)
            if up is None:
                raise BenchFailure(f"{kind.name}: no tunnel within {CONNECT_TIMEOUT:.0f} s: {[line for _, line in reader.lines][-5:]}")
        finally:
            stop(process, kind.stop_signal)
        stderr = process.stderr.read() if process.stderr else ""
        reader.join(5)
        phases = kind.phases(reader.lines, start)
        if "tunnel-up" not in phases:
            raise BenchFailure(f"{kind.name}: the tunnel-up line was not seen: {stderr.strip()}")
    # The handshake ends with IPCP (and our client's DHCPINFORM, sent in the same wake-up): what
    # goes out after it is the new tunnel's own traffic. The old tree has no IPCP line.
    view = wire_view(read_capture(capture), start, start + phases.get("ipcp-open", phases["tunnel-up"]))
    capture.unlink()
    if view.syn is not None:
        phases["syn"] = view.syn
    return Run(kind.name, phases, [(stamp - start, line) for stamp, line in reader.lines if line], cpu, view)


def stop(process: subprocess.Popen, signum: int) -> None:
    if process.poll() is None:
        process.send_signal(signum)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def server_client_address() -> str:
    from tests.integration.softether import CLIENT_ADDRESS

    return CLIENT_ADDRESS


# -- the tray (measured by another bench) -------------------------------------------------------


def tray_click_times(runs: int) -> dict:
    """Median click -> first SYN and click -> green icon of the tray app, from bench/tray.py."""
    with tempfile.TemporaryDirectory(prefix="sstp-connect-tray-") as folder:
        output = Path(folder) / "tray.json"
        argv = [sys.executable, str(REPO_ROOT / "bench" / "tray.py"), "--rounds", str(runs), "--idle", "1", "--json", str(output)]
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchFailure(f"bench/tray.py failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        summary = json.loads(output.read_text())["summary"]["now"]
    return {"click_to_syn_ms": summary["click → SYN, median (ms)"], "click_to_green_ms": summary["click → green, median (ms)"]}


# -- the report ---------------------------------------------------------------------------------


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(runs: list[Run]) -> dict:
    by_client: dict[str, dict] = {}
    for run in runs:
        entry = by_client.setdefault(run.client, {"phases": {}, "reaction_max": [], "reaction_median": [], "server_waits": [], "cpu": [], "own": []})
        for phase, seconds in run.phases.items():
            entry["phases"].setdefault(phase, []).append(seconds)
        if run.wire is not None and run.wire.reactions:
            entry["reaction_max"].append(max(run.wire.reactions))
            entry["reaction_median"].append(statistics.median(run.wire.reactions))
            entry["server_waits"].append(sum(run.wire.server_waits))
            if "tunnel-up" in run.phases:
                entry["own"].append(run.phases["tunnel-up"] - sum(run.wire.server_waits))
        if run.cpu_seconds is not None:
            entry["cpu"].append(run.cpu_seconds)
    return by_client


def _cell(value: float | None, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if value is None else f"{value * scale:.{digits}f}"


def report(runs: list[Run], machine: dict, tray: dict | None) -> str:
    summary = summarize(runs)
    names = list(summary)
    lines = [
        f"Machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}; load average at start {machine['loadavg']}",
        f"Connect time against SoftEther (namespaces), {max(len(s['phases'].get('tunnel-up', [])) for s in summary.values())} runs per client,"
        " alternating; medians in seconds after the process start;"
        f" our client {'routes all traffic (--full-tunnel)' if FULL_TUNNEL else 'with --no-default-route'}",
        "",
        f"{'phase':<18}"
        + "".join(f"{name:>12}" for name in names)
        + ("".join(f"{name + '/min.':>14}" for name in names if name != "minimal") if "minimal" in names else ""),
    ]
    phases = ["connecting", *PHASES]
    for phase in phases:
        medians = [median(summary[name]["phases"].get(phase, [])) for name in names]
        if all(value is None for value in medians):
            continue
        row = f"{phase:<18}" + "".join(f"{_cell(value):>12}" for value in medians)
        if "minimal" in names:
            base = medians[names.index("minimal")]
            for name, value in zip(names, medians, strict=True):
                if name != "minimal":
                    row += f"{(f'{value / base:.2f}' if value and base else '-'):>14}"
        lines.append(row)
    lines += ["", "Steps (median of each run's step; the client's own part where the wire shows it)"]
    steps = [("start -> SYN", None, "syn"), *((f"{a} -> {b}", a, b) for a, b in zip(PHASES, PHASES[1:], strict=False))]
    lines.append(f"{'step':<30}" + "".join(f"{name:>12}" for name in names))
    for label, first, second in steps:
        cells = []
        for name in names:
            values = [
                run.phases[second] - (run.phases[first] if first else 0.0)
                for run in runs
                if run.client == name and second in run.phases and (first is None or first in run.phases)
            ]
            cells.append(_cell(median(values)))
        lines.append(f"{label:<30}" + "".join(f"{cell:>12}" for cell in cells))
    lines += [
        "",
        "On the wire (client namespace): the client's reaction = server record -> the client's next record;",
        "server waits = every gap ending with a server record, summed from the client's Finished to its IPCP up",
        f"{'':<30}" + "".join(f"{name:>12}" for name in names),
    ]
    for label, key, scale in (
        ("reaction, max per run (ms)", "reaction_max", 1000),
        ("reaction, median per run (ms)", "reaction_median", 1000),
        ("server waits, sum (s)", "server_waits", 1),
        ("client CPU to tunnel up (s)", "cpu", 1),
    ):
        cells = [_cell(median(summary[name][key]), scale, 1 if scale == 1000 else 3) for name in names]
        lines.append(f"{label:<30}" + "".join(f"{cell:>12}" for cell in cells))
    worst = {name: max(summary[name]["reaction_max"], default=None) for name in names}
    lines.append(f"{'reaction, max over all runs (ms)':<30}" + "".join(f"{_cell(worst[name], 1000, 1):>12}" for name in names))
    total = {name: median(summary[name]["phases"].get("tunnel-up", [])) for name in names}
    own = {name: median(summary[name]["own"]) for name in names}
    lines += [
        "",
        "The clients' own time: start -> tunnel up minus the server's waits, per run (median); the goal is <= 0.2 s.",
        "SoftEther's waits vary by hundreds of ms from run to run (its 300 ms ticks, its DHCP), more than the clients differ.",
    ]
    lines.append("  " + ", ".join(f"{name}: {_cell(own[name])} s" for name in names))
    if any(name == "before" for name in names):
        lines.append("  (before has no IPCP line: its wire window runs to its tunnel-up line, so its waits include the new tunnel's traffic)")
    lines += ["", "Goals (issue 18):"]
    for name in names:
        if name == "minimal":
            continue
        syn = median(summary[name]["phases"].get("syn", []))
        ratio = total[name] / total["minimal"] if "minimal" in total and total[name] and total["minimal"] else None
        reaction = worst[name]
        lines.append(
            f"  {name}: first SYN {_cell(syn)} s (goal <= {SYN_GOAL}), "
            f"reaction max {_cell(reaction, 1000, 1)} ms (goal <= {REACTION_GOAL * 1000:.0f}), "
            f"start -> tunnel up / minimal {('-' if ratio is None else f'{ratio:.2f}')} (goal <= {TOTAL_GOAL_RATIO}), "
            f"own time {_cell(own[name])} s (goal <= {OWN_TIME_GOAL})"
        )
    if tray is not None:
        lines += [
            "",
            f"Tray (bench/tray.py, loopback test server): click -> first SYN {tray['click_to_syn_ms']:.1f} ms (goal <= 50), "
            f"click -> green {tray['click_to_green_ms']:.1f} ms (medians)",
        ]
    lines += ["", "Where each phase line of the client came from (median ms between the server record that allowed it and the line):"]
    for name in names:
        lags = {}
        for run in runs:
            if run.client != name or run.wire is None:
                continue
            for phase, seconds in run.phases.items():
                if phase in ("syn", "connecting"):
                    continue
                allowed = [server for client, server in run.wire.replies if server <= seconds]
                if allowed:
                    lags.setdefault(phase, []).append(seconds - allowed[-1])
        cells = ", ".join(f"{phase} {_cell(median(lags[phase]), 1000, 1)}" for phase in PHASES if phase in lags)
        lines.append(f"  {name}: {cells}")
    return "\n".join(lines)


def machine_info() -> dict:
    return {
        "cpus": os.cpu_count(),
        "platform": f"{platform.machine()} Linux {platform.release()}",
        "python": platform.python_version(),
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--capture-child":
        interface, client, port, output = sys.argv[2:6]
        return capture_child(interface, client, int(port), Path(output))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per client (default 7)")
    parser.add_argument("--before", metavar="PYTHONPATH", help="also measure the client importing the tree at this PYTHONPATH")
    parser.add_argument("--no-minimal", action="store_true", help="leave out bench/minimal_client.py")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted runs per client first (bytecode caches, page cache; default 1)")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument(
        "--wait-for-server", type=float, default=0.0, metavar="SECONDS", help="wait this long for the machine's SoftEther test server"
    )
    parser.add_argument(
        "--full-tunnel", action="store_true", help="our client without --no-default-route (all traffic through the VPN, as by default)"
    )
    parser.add_argument("--tray", action="store_true", help="also the tray's click -> SYN and click -> green (bench/tray.py)")
    args = parser.parse_args(argv)
    global FULL_TUNNEL
    FULL_TUNNEL = args.full_tunnel
    if os.geteuid() != 0:
        print("run as root: the bench creates network namespaces", file=sys.stderr)
        return 1
    from bench.measured_path import BenchError
    from bench.tunnel import start_softether
    from tests.integration.softether import locate_server_binary

    machine = machine_info()
    kinds = client_kinds(args)
    runs: list[Run] = []
    try:
        with tempfile.TemporaryDirectory(prefix="sstp-connect-time-") as folder:
            server = start_softether(locate_server_binary(REPO_ROOT), Path(folder), args.wait_for_server)
            try:  # already entered: only its exit is left
                for kind in kinds:  # not counted: writes the bytecode caches, warms the page cache
                    for _ in range(args.warmup):
                        run_once(server, kind, Path(folder))
                for _ in range(args.runs):
                    for kind in kinds:
                        runs.append(run_once(server, kind, Path(folder)))
            finally:
                server.__exit__(None, None, None)
        tray = tray_click_times(args.runs) if args.tray else None
    except (BenchError, BenchFailure) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return 1
    print(report(runs, machine, tray))
    if args.json:
        results = {
            "machine": machine,
            "runs": [
                {
                    "client": run.client,
                    "phases": run.phases,
                    "cpu_seconds": run.cpu_seconds,
                    "lines": run.lines,
                    "wire": None if run.wire is None else {k: v for k, v in run.wire.__dict__.items() if k != "replies"},
                }
                for run in runs
            ],
            "tray": tray,
        }
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
