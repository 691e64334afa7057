"""Network namespaces that a test creates for itself and removes afterwards.

Everything a test sends stays inside these namespaces (or on loopback). Processes started in a
namespace are tracked and stopped by their own PID when the namespace is removed.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from pathlib import Path

_counter = itertools.count()


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Terminate a process we started, then kill it if it does not go."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def remove_stale_namespaces(prefixes: tuple[str, ...]) -> None:
    """Delete namespaces with one of these prefixes that a run killed before its teardown left.

    Their names carry the creating process's PID (Namespace); only namespaces whose creator is
    gone and in which no process runs are removed.
    """
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for name in (line.split()[0] for line in listing.splitlines() if line.strip()):
        prefix, _, rest = name.partition("-")
        creator = rest.split("-")[0]
        if prefix not in prefixes or not creator.isdigit() or Path(f"/proc/{creator}").exists():
            continue
        if not subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.strip():
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


class Namespace:
    """A named network namespace with loopback up. Use as a context manager."""

    def __init__(self, prefix: str = "sstpt") -> None:
        self.name = f"{prefix}-{os.getpid()}-{next(_counter)}"
        self._processes: list[subprocess.Popen] = []
        # `ip netns exec` bind-mounts this over /etc/resolv.conf for commands run in the
        # namespace, so resolver changes made there never touch the host's file.
        self.etc = Path("/etc/netns") / self.name

    def __enter__(self) -> Namespace:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.etc.mkdir(parents=True, exist_ok=True)
        (self.etc / "resolv.conf").write_text("nameserver 127.0.0.53\n")
        self.run("ip", "link", "set", "lo", "up")
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for proc in reversed(self._processes):
            stop_process(proc)
        self._processes.clear()
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)
        if self.etc.exists():
            for child in self.etc.iterdir():
                child.unlink()
            self.etc.rmdir()

    def argv(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *command]

    def run(self, *command: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.argv(*command), check=check, **kwargs)

    def popen(self, *command: str, **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(self.argv(*command), **kwargs)
        self._processes.append(proc)
        return proc


def veth_pair(a: Namespace, a_addr: str, b: Namespace, b_addr: str, prefix_len: int = 24) -> tuple[str, str]:
    """Link two namespaces with a veth pair and give each end an address. Returns the names."""
    n = next(_counter)
    a_if, b_if = f"va{os.getpid() % 10000}x{n}", f"vb{os.getpid() % 10000}x{n}"
    subprocess.run(["ip", "link", "add", a_if, "netns", a.name, "type", "veth", "peer", "name", b_if, "netns", b.name], check=True)
    a.run("ip", "addr", "add", f"{a_addr}/{prefix_len}", "dev", a_if)
    b.run("ip", "addr", "add", f"{b_addr}/{prefix_len}", "dev", b_if)
    a.run("ip", "link", "set", a_if, "up")
    b.run("ip", "link", "set", b_if, "up")
    return a_if, b_if
