"""Runs `sstp-vpn connect` inside the client namespace, as a user would from a shell, and reads
the network state there so tests can compare before and after."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from tests.netns import Namespace, stop_process

CLI = [sys.executable, "-m", "sstpvpn.client.cli"]


@dataclass(frozen=True)
class NetworkState:
    addresses: object
    routes: object
    routes6: object
    resolv_conf: str


def network_state(ns: Namespace, settle_seconds: float = 5.0) -> NetworkState:
    def ip_json(*args: str):
        return json.loads(ns.run("ip", "-j", *args).stdout or "[]")

    # A fresh veth's IPv6 link-local address is "tentative" (and its routes are missing) until
    # duplicate address detection ends: wait for that, or the snapshot would change on its own.
    end = time.monotonic() + settle_seconds
    while time.monotonic() < end and any(info.get("tentative") for link in ip_json("addr", "show") for info in link.get("addr_info", [])):
        time.sleep(0.1)

    # Lifetimes and counters change by themselves; everything else must come back exactly.
    addresses = ip_json("addr", "show")
    for link in addresses:
        for info in link.get("addr_info", []):
            info.pop("valid_life_time", None)
            info.pop("preferred_life_time", None)
    return NetworkState(
        addresses, ip_json("route", "show", "table", "all"), ip_json("-6", "route", "show", "table", "all"), ns.run("cat", "/etc/resolv.conf").stdout
    )


class ClientProcess:
    """One `sstp-vpn connect` run. The password goes through standard input only."""

    def __init__(self, ns: Namespace, args: list[str], password: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self.process = ns.popen(
            *CLI,
            "connect",
            *args,
            "--password-stdin",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.process.stdin.write(password + "\n")
        self.process.stdin.close()
        self.process.stdin = None  # so communicate() does not flush it again
        self.stderr = ""
        self._stdout_fd = self.process.stdout.fileno()
        self._partial = ""
        self._checked = 0  # lines already searched by wait_for_line

    def wait_for_line(self, prefix: str, timeout: float = 30.0) -> str:
        """The first stdout line starting with `prefix`; fails if the client exits first."""
        end = time.monotonic() + timeout
        while True:
            for index in range(self._checked, len(self.lines)):
                if self.lines[index].startswith(prefix):
                    self._checked = index + 1
                    return self.lines[index]
            self._checked = len(self.lines)
            remaining = end - time.monotonic()
            if remaining <= 0 or not select.select([self._stdout_fd], [], [], remaining)[0]:
                raise AssertionError(f"no {prefix!r} line within {timeout} s: {self.lines}")
            # Raw reads: a buffered readline could hold a second line where select cannot see it.
            chunk = os.read(self._stdout_fd, 65536)
            if not chunk:
                raise AssertionError(f"client exited ({self.process.wait()}) before {prefix!r}: {self.lines} {self.process.stderr.read()}")
            self._partial += chunk.decode()
            *complete, self._partial = self._partial.split("\n")
            self.lines += complete

    def finish(self, timeout: float = 30.0) -> int:
        try:
            out, err = self.process.communicate(timeout=timeout)
            out = self._partial + out
        except subprocess.TimeoutExpired as error:
            stop_process(self.process)
            raise AssertionError(f"client did not exit within {timeout} s: {self.lines}") from error
        self.lines += out.splitlines()
        self.stderr = err
        return self.process.returncode

    def interrupt(self, signum: int = signal.SIGINT) -> None:
        # `ip netns exec` execs the command, so this PID is the client itself.
        self.process.send_signal(signum)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
