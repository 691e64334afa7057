"""Faults under a running `sstp-vpn connect` against the real SoftEther server (issue 8).

Each fault must end with one sentence on stderr saying what happened and what to do, a fixed exit
code, a prompt exit, and the client namespace's addresses, routes and resolv.conf exactly as before.

Covered elsewhere, not repeated here (tests/integration/test_connect_softether.py):
a graceful server stop (test_server_stopped_mid_session), a frozen server found by the echo timer
(test_frozen_server_detected_by_echo) and kill -9 of the client repaired by the next start
(test_kill_9_then_next_start_repairs).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration import client_process
from tests.integration.client_process import ClientProcess, network_state
from tests.integration.softether import VIRTUAL_HOST
from tests.integration.test_connect_softether import assert_single_failure, connect_args
from tests.netns import stop_process
from tests.realparts import require_program

pytestmark = pytest.mark.realparts

DETECT_SECONDS = 5.0  # from the fault to the client's exit, when the kernel tells us at once


def exit_after(client: ClientProcess, began: float, timeout: float = 30.0) -> tuple[int, float]:
    code = client.finish(timeout=timeout)
    return code, time.monotonic() - began


def only_stderr_line(client: ClientProcess) -> str:
    lines = [line for line in client.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, (lines, client.lines)
    return lines[0]


def start_ping_flood(ns) -> subprocess.Popen:
    return ns.popen("ping", "-f", "-q", "-w", "60", VIRTUAL_HOST, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_server_killed_mid_transfer(softether):
    ns = softether.client_ns
    before = network_state(ns)
    client = ClientProcess(ns, connect_args(softether), softether.password)
    client.wait_for_line("connected:")
    flood = start_ping_flood(ns)
    try:
        time.sleep(1.0)  # traffic in both directions
        began = time.monotonic()
        softether.stop(kill=True)  # SIGKILL: the kernel closes its sockets (RST or FIN), nothing else
        code, seconds = exit_after(client, began)
    finally:
        stop_process(flood)
    sentence = only_stderr_line(client)
    print(f"server SIGKILL: exit {code} after {seconds:.2f} s: {sentence}")
    assert code == 5, (client.lines, client.stderr)
    assert sentence.startswith(f"sstp-vpn: The connection to {softether.server_name} was lost. Check your network")
    assert seconds < DETECT_SECONDS
    assert network_state(ns) == before
    # The autouse fixture restarts the server; prove it serves again for the next tests.
    softether.ensure_default()
    again = ClientProcess(ns, connect_args(softether), softether.password)
    again.wait_for_line("connected:")
    again.interrupt()
    assert again.finish() == 0


def test_proxy_killed_mid_session(softether, tinyproxy):
    ns = softether.client_ns
    before = network_state(ns)
    client = ClientProcess(
        ns,
        connect_args(softether, "--proxy", f"http://{tinyproxy.user}@{tinyproxy.host}:{tinyproxy.port}"),
        softether.password,
        env={"SSTP_VPN_PROXY_PASSWORD": tinyproxy.password},
    )
    client.wait_for_line("connected:")
    flood = start_ping_flood(ns)
    try:
        time.sleep(0.5)
        began = time.monotonic()
        tinyproxy.process.send_signal(signal.SIGKILL)
        code, seconds = exit_after(client, began)
    finally:
        stop_process(flood)
    sentence = only_stderr_line(client)
    print(f"proxy SIGKILL: exit {code} after {seconds:.2f} s: {sentence}")
    assert code == 5, (client.lines, client.stderr)
    assert f"through the proxy {tinyproxy.host}:{tinyproxy.port} was lost" in sentence, sentence
    assert seconds < DETECT_SECONDS
    assert network_state(ns) == before


def test_tunnel_interface_removed_under_the_client(softether):
    ns = softether.client_ns
    before = network_state(ns)
    client = ClientProcess(ns, connect_args(softether), softether.password)
    client.wait_for_line("connected:")
    assert ns.run("ping", "-c", "1", "-W", "2", VIRTUAL_HOST, check=False).returncode == 0
    began = time.monotonic()
    ns.run("ip", "link", "del", "sstptest0")
    code, seconds = exit_after(client, began)
    sentence = only_stderr_line(client)
    print(f"TUN removed: exit {code} after {seconds:.2f} s: {sentence}")
    assert code == 1, (client.lines, client.stderr)
    assert sentence == (
        "sstp-vpn: The tunnel interface sstptest0 was removed by another program, so the VPN disconnected; connect again to create it anew."
    )
    assert seconds < DETECT_SECONDS
    # The routes went with the device; the host route to the server and resolv.conf came back.
    assert network_state(ns) == before


FILL_JOURNAL_FOLDER = """\
set -e
mount -t tmpfs -o size=4k,mode=0700 sstp-full-disk /var/lib/sstp-vpn
dd if=/dev/zero of=/var/lib/sstp-vpn/filler bs=4096 count=64 2>/dev/null || true
exec "$@"
"""


def test_full_disk_under_the_journal_refuses_and_changes_nothing(softether, tmp_path, monkeypatch):
    """The journal folder is a one-page tmpfs, already full, in a private mount namespace of the
    client process only (nothing outside sees it)."""
    require_program("unshare", "apt-get install util-linux")
    Path("/var/lib/sstp-vpn").mkdir(mode=0o700, parents=True, exist_ok=True)  # the mount point
    script = tmp_path / "full-journal-folder.sh"
    script.write_text(FILL_JOURNAL_FOLDER)
    monkeypatch.setattr(
        client_process, "CLI", ["unshare", "--mount", "--propagation", "private", "sh", str(script), sys.executable, "-m", "sstpvpn.client.cli"]
    )
    ns = softether.client_ns
    before = network_state(ns)
    client = ClientProcess(ns, connect_args(softether), softether.password)
    assert_single_failure(
        client,
        1,
        "Cannot record the network changes in /var/lib/sstp-vpn (no space left on the "
        "device), so nothing was changed; free some space and connect again.",
    )
    assert network_state(ns) == before
    assert not any(path.name.startswith("filler") for path in Path("/var/lib/sstp-vpn").iterdir())


def add_profile(ns, config_home: Path, softether, name: str = "Office") -> dict[str, str]:
    env = {"XDG_CONFIG_HOME": str(config_home), "XDG_RUNTIME_DIR": str(config_home / "run")}
    (config_home / "run").mkdir(parents=True, mode=0o700)
    result = ns.run(
        *client_process.CLI,
        "profiles",
        "add",
        name,
        f"{softether.server_name}:{softether.port}",
        "--user",
        softether.username,
        "--ca-file",
        str(softether.ca_path),
        env={**os.environ, **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return env


def test_second_client_for_the_same_profile_refuses_at_once(softether, tmp_path):
    ns = softether.client_ns
    env = add_profile(ns, tmp_path / "home", softether)
    before = network_state(ns)
    first = ClientProcess(ns, ["--profile", "Office", "--ifname", "sstptest0"], softether.password, env=env)
    first.wait_for_line("connected:")
    during = network_state(ns)

    began = time.monotonic()
    second = ClientProcess(ns, ["--profile", "Office", "--ifname", "sstptest1"], softether.password, env=env)
    code = second.finish(timeout=10)
    seconds = time.monotonic() - began
    assert code == 1, (second.lines, second.stderr)
    assert only_stderr_line(second) == (
        f"sstp-vpn: The profile Office is already connected by process {first.process.pid} (sstp-vpn connect); disconnect it first."
    )
    assert second.lines == []  # refused before connecting: no progress at all
    assert seconds < 3.0
    assert network_state(ns) == during
    print(f"second client refused after {seconds:.2f} s")

    # A crashed holder never blocks: kill -9, and the next client takes the profile (and repairs).
    first.kill()
    third = ClientProcess(ns, ["--profile", "Office", "--ifname", "sstptest0"], softether.password, env=env)
    third.wait_for_line("connected:")
    third.interrupt()
    assert third.finish() == 0, (third.lines, third.stderr)
    assert network_state(ns) == before
