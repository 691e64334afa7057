"""Where the client's engine thread spends its time, from py-spy's raw (collapsed-stack) output.

Recorded with `py-spy record --idle --format raw`: every line is `frame;frame;...;frame COUNT`,
outermost first, a frame being `Qualified.function (path:line)`; with --native, C frames appear
too (`function (file.c:line)`, or `0xADDR (library)` when unresolved). Samples are taken at a fixed
rate, idle or not, so the engine thread's samples are its wall-clock time; those whose innermost
Python frame is the selector's `select()` are time spent waiting in epoll (plus the tiny cost of
the syscall itself). The rest is the thread's busy time, split three ways:

- by activity: the innermost frame of the client's own code or of ssl/selectors decides (TLS
  write, TLS read, TUN read/write, engine framing, ...); it includes the C code below it;
- by innermost Python function (inclusive of the C code it calls);
- by native leaf (with --native): the C function or library actually on the CPU (libcrypto = the
  cipher, libc = syscalls and memcpy, libpython = the interpreter).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ENGINE_THREAD = "EngineRunner.run"  # a frame only the runner thread's stacks contain
_FRAME = re.compile(r"^(?P<function>.*) \((?P<where>[^()]*)\)$")

# (file name, function name or "" for any) -> activity; the innermost matching frame decides.
_ACTIVITIES: list[tuple[str, str, str]] = [
    ("ssl.py", "send", "TLS write (SSLSocket.send)"),
    ("ssl.py", "write", "TLS write (SSLSocket.send)"),
    ("ssl.py", "sendall", "TLS write (SSLSocket.send)"),
    ("ssl.py", "recv", "TLS read (SSLSocket.recv)"),
    ("ssl.py", "read", "TLS read (SSLSocket.recv)"),
    ("ssl.py", "recv_into", "TLS read (SSLSocket.recv)"),
    ("tun_linux.py", "read_packets", "TUN read (os.read per packet)"),
    ("tun_linux.py", "write_packets", "TUN write (os.write per packet)"),
    ("selectors.py", "", "selector bookkeeping (register/modify/select wrapper)"),
    ("sstp_codec.py", "", "engine: SSTP framing (sstp_codec)"),
    ("ppp_codec.py", "", "engine: PPP framing (ppp_codec)"),
    ("engine.py", "", "engine: other (engine.py)"),
    ("fsm.py", "", "engine: other (fsm.py)"),
    ("runner.py", "", "runner loop (runner.py's own lines)"),
]


@dataclass(frozen=True)
class Frame:
    function: str  # the last part of the qualified name: "send" for "SSLSocket.send"
    qualified: str
    file: str  # base name of the source file or library
    python: bool


def parse_frame(text: str) -> Frame:
    match = _FRAME.match(text.strip())
    if not match:
        return Frame(text.strip(), text.strip(), "", False)
    qualified, where = match["function"], match["where"]
    file = where.rsplit(":", 1)[0] if ":" in where else where
    file = file.rsplit("/", 1)[-1]
    python = file.endswith(".py") or file.startswith("<")  # "<string>": dataclass-generated code
    return Frame(qualified.rsplit(".", 1)[-1], qualified, file, python)


def read_stacks(path: Path) -> Counter[tuple[Frame, ...]]:
    stacks: Counter[tuple[Frame, ...]] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack_text, _, count = line.rpartition(" ")
        if stack_text and count.isdigit():
            stacks[tuple(parse_frame(f) for f in stack_text.split(";"))] += int(count)
    return stacks


def innermost_python(stack: tuple[Frame, ...]) -> Frame | None:
    return next((frame for frame in reversed(stack) if frame.python), None)


def is_waiting(stack: tuple[Frame, ...]) -> bool:
    frame = innermost_python(stack)
    return frame is not None and frame.file == "selectors.py" and frame.function == "select"


def activity_of(stack: tuple[Frame, ...]) -> str:
    for frame in reversed(stack):
        for file, function, activity in _ACTIVITIES:
            if frame.file == file and (not function or frame.function == function):
                return activity
    frame = innermost_python(stack)
    return f"other: {frame.file}" if frame else "other (no Python frame)"


def native_leaf(stack: tuple[Frame, ...]) -> str | None:
    leaf = stack[-1]
    if leaf.python:
        return None
    if leaf.qualified.startswith("0x"):  # no symbol: name the library
        return f"[{leaf.file}]"
    return f"{leaf.qualified} ({leaf.file})"


def _percentages(counter: Counter[str], total: int, top: int) -> list[tuple[str, float]]:
    return [(name, 100.0 * count / total) for name, count in counter.most_common(top)]


def summarise(path: Path, top: int = 15) -> dict:
    """{wall_samples, busy_percent, by_activity, by_python_function, by_native_leaf}; the three
    lists hold (name, percent of the engine thread's busy samples)."""
    stacks = read_stacks(path)
    engine = {s: c for s, c in stacks.items() if any(f.qualified == ENGINE_THREAD for f in s)} or dict(stacks)
    wall = sum(engine.values())
    busy = {s: c for s, c in engine.items() if not is_waiting(s)}
    busy_total = sum(busy.values())
    activities: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for stack, count in busy.items():
        activities[activity_of(stack)] += count
        frame = innermost_python(stack)
        functions[f"{frame.qualified} ({frame.file})" if frame else "(no Python frame)"] += count
        leaf = native_leaf(stack)
        if leaf is not None:
            leaves[leaf] += count
    total = max(busy_total, 1)
    return {
        "wall_samples": wall,
        "busy_percent": 100.0 * busy_total / wall if wall else 0.0,
        "by_activity": _percentages(activities, total, top),
        "by_python_function": _percentages(functions, total, top),
        "by_native_leaf": _percentages(leaves, total, top),
    }


def format_summary(title: str, summary: dict) -> str:
    lines = [
        f"{title}",
        f"  engine thread: {summary['wall_samples']} samples, busy (not waiting in select) "
        f"{summary['busy_percent']:.0f} % of the time; shares below are % of its busy samples",
    ]
    for key, heading in (
        ("by_activity", "by activity"),
        ("by_python_function", "by innermost Python function"),
        ("by_native_leaf", "by native leaf (C code on the CPU)"),
    ):
        if summary[key]:
            lines.append(f"  {heading}:")
            lines += [f"    {percent:5.1f} %  {name}" for name, percent in summary[key]]
    return "\n".join(lines)
