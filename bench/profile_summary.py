"""Where the client's CPU time goes, from py-spy's raw (collapsed-stack) output.

Each line of `py-spy record --format raw` is `frame;frame;...;frame COUNT`, outermost first, a
frame being `function (file:line)`; with --native, C frames appear too, unresolved ones as
`0xADDR (library)`. Three views:

- by activity: the innermost frame of the client's own code or of ssl/selectors/os decides
  (TLS write, TLS read, TUN read/write, engine, selector wait, ...); it includes the C code below;
- by innermost Python function (inclusive of the C code it calls);
- by native leaf (with --native): the C function or library actually on the CPU (libcrypto = the
  cipher, libc = syscalls and memcpy, libpython = interpreter overhead).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.*) \((?P<where>[^()]*)\)$")

# (file name, function name or "" for any) -> activity; the innermost matching frame decides.
_ACTIVITIES: list[tuple[str, str, str]] = [
    ("ssl.py", "send", "TLS write (ssl send)"),
    ("ssl.py", "write", "TLS write (ssl send)"),
    ("ssl.py", "sendall", "TLS write (ssl send)"),
    ("ssl.py", "recv", "TLS read (ssl recv)"),
    ("ssl.py", "read", "TLS read (ssl recv)"),
    ("ssl.py", "recv_into", "TLS read (ssl recv)"),
    ("ssl.py", "pending", "TLS read (ssl recv)"),
    ("tun_linux.py", "read_packets", "TUN read (os.read per packet)"),
    ("tun_linux.py", "write_packets", "TUN write (os.write per packet)"),
    ("selectors.py", "select", "selector wait (epoll)"),
    ("selectors.py", "", "selector bookkeeping"),
    ("sstp_codec.py", "", "engine: SSTP framing"),
    ("ppp_codec.py", "", "engine: PPP framing"),
    ("engine.py", "", "engine: other"),
    ("fsm.py", "", "engine: other"),
    ("runner.py", "", "runner loop (own lines)"),
]


@dataclass(frozen=True)
class Frame:
    function: str
    file: str  # base name of the source file or library
    native: bool


def parse_frame(text: str) -> Frame:
    match = _FRAME.match(text.strip())
    if not match:
        return Frame(text.strip(), "", True)
    function, where = match["function"], match["where"]
    file = where.rsplit(":", 1)[0] if ":" in where else where
    file = file.rsplit("/", 1)[-1]
    return Frame(function, file, not file.endswith(".py"))


def read_stacks(path: Path) -> Counter[tuple[Frame, ...]]:
    stacks: Counter[tuple[Frame, ...]] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not stack_text or not count.isdigit():
            continue
        stacks[tuple(parse_frame(f) for f in stack_text.split(";"))] += int(count)
    return stacks


def activity_of(stack: tuple[Frame, ...]) -> str:
    for frame in reversed(stack):
        for file, function, activity in _ACTIVITIES:
            if frame.file == file and (not function or frame.function == function):
                return activity
    python = [f for f in stack if not f.native]
    return f"other: {python[-1].file}" if python else "other (no Python frame)"


def innermost_python(stack: tuple[Frame, ...]) -> str:
    for frame in reversed(stack):
        if not frame.native:
            return f"{frame.function} ({frame.file})"
    return "(no Python frame)"


def native_leaf(stack: tuple[Frame, ...]) -> str | None:
    leaf = stack[-1]
    if not leaf.native:
        return None
    if leaf.function.startswith("0x"):  # no symbol: name the library
        return f"[{leaf.file}]"
    return f"{leaf.function} ({leaf.file})"


def percentages(counter: Counter[str], total: int, top: int) -> list[tuple[str, float]]:
    return [(name, 100.0 * count / total) for name, count in counter.most_common(top)]


def summarise(path: Path, top: int = 15) -> dict:
    """{samples, by_activity, by_python_function, by_native_leaf}: lists of (name, percent)."""
    stacks = read_stacks(path)
    total = sum(stacks.values())
    if total == 0:
        return {"samples": 0, "by_activity": [], "by_python_function": [], "by_native_leaf": []}
    activities: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for stack, count in stacks.items():
        activities[activity_of(stack)] += count
        functions[innermost_python(stack)] += count
        leaf = native_leaf(stack)
        if leaf is not None:
            leaves[leaf] += count
    return {
        "samples": total,
        "by_activity": percentages(activities, total, top),
        "by_python_function": percentages(functions, total, top),
        "by_native_leaf": percentages(leaves, total, top),
    }


def format_summary(title: str, summary: dict) -> str:
    lines = [f"{title}: {summary['samples']} samples (% of the client's busy samples)"]
    for key, heading in (("by_activity", "by activity"), ("by_python_function", "by innermost Python function"),
                         ("by_native_leaf", "by native leaf (C code on the CPU)")):
        if summary[key]:
            lines.append(f"  {heading}:")
            lines += [f"    {percent:5.1f} %  {name}" for name, percent in summary[key]]
    return "\n".join(lines)
