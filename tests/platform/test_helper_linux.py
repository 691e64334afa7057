"""sstp-vpn-helper with real processes: the helper as root and the client as `nobody`, both in the
test's client namespace (client_network.py), talking over a real Unix socket.

What is shown: the descriptor passed with SCM_RIGHTS carries packets both ways for a process that
cannot open a TUN itself; the helper applies and restores the plan exactly; it restores the
network at once when the client is killed; hostile requests over the socket are refused and
change nothing; peers outside the group or the namespace get a sentence and nothing else.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.netns import Namespace, stop_process
from tests.platform.client_network import GATEWAY, RESOLV_CONF, SERVER_BEHIND_GATEWAY, ip_json, route, snapshot, without_qdisc
from tests.realparts import require_program
from tests.unprivileged import NOBODY, as_nobody

AGENT = str(Path(__file__).with_name("helper_agent.py"))
REPO = str(Path(__file__).resolve().parents[2])
HELPER = [sys.executable, "-m", "sstpvpn.platform.helper_linux"]
NOGROUP = grp.getgrgid(NOBODY.pw_gid).gr_name


@dataclass
class Helper:
    socket: str
    journal: Path
    process: subprocess.Popen
    log: Path


@pytest.fixture
def socket_folder() -> Iterator[Path]:
    # Not below pytest's tmp_path: that is root's private folder, and nobody must reach the socket.
    folder = Path(tempfile.mkdtemp(prefix="sstp-helper-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def start_helper(ns: Namespace, folder: Path, tmp_path: Path, group: str = NOGROUP) -> Helper:
    socket_path, journal, log = folder / "helper.sock", tmp_path / "journal.json", tmp_path / "helper.log"
    with open(log, "w") as log_file:  # a file, not a pipe: a full pipe would stall the helper
        process = ns.popen(*HELPER, "--listen", str(socket_path), "--group", group, "--journal", str(journal), cwd=REPO, stderr=log_file)
    _wait_for(lambda: socket_path.exists() or process.poll() is not None, "the helper's socket")
    assert process.poll() is None, log.read_text()
    return Helper(str(socket_path), journal, process, log)


@pytest.fixture
def helper(client_ns: Namespace, socket_folder: Path, tmp_path: Path) -> Iterator[Helper]:
    require_program("setpriv", "apt-get install util-linux")
    started = start_helper(client_ns, socket_folder, tmp_path)
    yield started
    stop_process(started.process)
    print(started.log.read_text())  # shown when the test failed


class UnprivilegedAgent:
    """helper_agent.py as nobody, driven line by line."""

    def __init__(self, ns: Namespace | None, *arguments: str, gid: int | None = None) -> None:
        command = as_nobody([sys.executable, AGENT, *arguments], gid=gid)
        options = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        self.proc = ns.popen(*command, **options) if ns is not None else subprocess.Popen(command, **options)

    def next(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise AssertionError(f"the agent ended early: {self.proc.stderr.read()}")
        return json.loads(line)

    def go(self) -> dict:
        self.send("go")
        return self.next()

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def _wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not come within {timeout} s")
        time.sleep(0.05)


def _wait_for_state(ns: Namespace, expected: dict, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (state := snapshot(ns)) != expected:
        if time.monotonic() > deadline:
            assert state == expected
        time.sleep(0.1)


def with_mtu(state: dict, ifname: str, mtu: int) -> dict:
    links = [{**link, "mtu": mtu} if link["ifname"] == ifname else link for link in state["addresses"]]
    return {**state, "addresses": links}


def link_statistics(ns: Namespace, ifname: str) -> dict:
    return ip_json(ns, "-s", "link", "show", ifname)[0]["stats64"]


# -- a whole session --------------------------------------------------------------------------------


def test_unprivileged_client_gets_a_working_tun_and_the_plan(client_ns, helper):
    before = snapshot(client_ns)
    agent = UnprivilegedAgent(client_ns, "session", "--socket", helper.socket, "--server", SERVER_BEHIND_GATEWAY)
    opened = agent.next()
    assert opened["event"] == "opened", opened
    tun = opened["ifname"]
    assert tun.startswith("sstp")
    assert opened["euid"] == NOBODY.pw_uid and int(opened["capabilities"], 16) == 0
    assert "administrator rights" in opened["direct_open"]  # it could not have made the TUN itself
    assert opened["nonblocking"] is True
    after_open = snapshot(client_ns)

    applied = agent.go()
    assert applied == {"event": "applied", "mtu": 1400}
    routes = ip_json(client_ns, "-4", "route", "show", "table", "main")
    assert route(routes, "0.0.0.0/1")["dev"] == tun and route(routes, "128.0.0.0/1")["dev"] == tun
    assert route(routes, SERVER_BEHIND_GATEWAY)["gateway"] == GATEWAY
    resolv = (client_ns.etc / "resolv.conf").read_text()
    assert [line for line in resolv.splitlines() if line.startswith("nameserver")] == ["nameserver 198.18.30.1"]
    assert json.loads(helper.journal.read_text())["steps"]  # root's journal, in case the helper dies

    counters = link_statistics(client_ns, tun)
    moved = agent.go()
    assert moved["event"] == "packets", moved
    assert moved["received"] == "from-peer" and moved["source"] == "198.18.30.1"
    assert moved["read"] == ["to-peer"] and moved["read_destination"] == ["198.18.30.1"]
    now = link_statistics(client_ns, tun)
    assert now["rx"]["packets"] > counters["rx"]["packets"]  # the written packet entered on the interface
    assert now["tx"]["packets"] > counters["tx"]["packets"]

    restored = agent.go()
    assert restored == {"event": "restored", "notes": []}
    # Like the runner, the agent set the MTU before applying: restore goes back to that.
    assert without_qdisc(snapshot(client_ns)) == with_mtu(without_qdisc(after_open), tun, 1400)
    assert not helper.journal.exists()

    assert agent.go() == {"event": "closed"}
    assert snapshot(client_ns) == before  # close() waited for the helper to remove the interface


def test_killing_the_client_restores_the_network_at_once(client_ns, helper):
    before = snapshot(client_ns)
    agent = UnprivilegedAgent(client_ns, "session", "--socket", helper.socket)
    assert agent.next()["event"] == "opened"
    assert agent.go()["event"] == "applied"
    assert snapshot(client_ns)["resolv.conf"] != RESOLV_CONF
    os.kill(agent.proc.pid, signal.SIGKILL)
    agent.proc.wait(10)
    _wait_for_state(client_ns, before, timeout=5)
    assert not helper.journal.exists()
    assert helper.process.poll() is None  # the listener serves the next connection


def test_stopping_the_helper_restores_the_network_and_the_client_hears_of_it(client_ns, helper):
    agent = UnprivilegedAgent(client_ns, "session", "--socket", helper.socket, "--no-packets")
    tun = agent.next()["ifname"]
    assert agent.go()["event"] == "applied"
    stop_process(helper.process)  # SIGTERM: each session restores before its process exits
    state = snapshot(client_ns)
    assert state["resolv.conf"] == RESOLV_CONF
    assert route(state["routes"], "0.0.0.0/1") is None and route(state["routes"], SERVER_BEHIND_GATEWAY) is None
    assert tun not in [link["ifname"] for link in state["addresses"]]  # deleted, though the client holds it
    assert not helper.journal.exists()
    failed = agent.go()  # the client's restore finds the helper gone
    assert failed["event"] == "failed" and "ended the connection unexpectedly" in failed["sentence"]


def test_split_tunnel_through_the_helper(client_ns, helper):
    before = snapshot(client_ns)
    agent = UnprivilegedAgent(client_ns, "session", "--socket", helper.socket, "--mode", "split")
    tun = agent.next()["ifname"]
    assert agent.go()["event"] == "applied"
    routes = ip_json(client_ns, "-4", "route", "show", "table", "main")
    assert route(routes, "198.18.30.0/24")["dev"] == tun and route(routes, "0.0.0.0/1") is None
    assert agent.go()["received"] == "from-peer"
    assert agent.go()["event"] == "restored"
    assert agent.go()["event"] == "closed"
    _wait_for_state(client_ns, before)


# -- hostile clients ------------------------------------------------------------------------------------


def request(**fields: object) -> str:
    return json.dumps({"version": 1, **fields}).encode().hex()


PLAN = {"address": "198.18.30.10", "peer": "198.18.30.1", "dns": ["198.18.30.1"], "mtu": 1400, "ipv6_identifier": None}


def apply(**fields: object) -> str:
    return request(request="apply", **{"extra_routes": [], "use_vpn_dns": True, **fields})


def test_hostile_requests_over_the_socket_are_refused_and_change_nothing(client_ns, helper):
    before = snapshot(client_ns)
    veth = client_ns.veth
    agent = UnprivilegedAgent(client_ns, "raw", "--socket", helper.socket)

    def ask(message: str) -> dict:
        agent.send(message)
        return agent.next()

    def refused(message: str, fragment: str) -> None:
        answer = ask(message)
        assert answer["fds"] == 0 and answer["reply"]["ok"] is False, answer
        assert fragment in answer["reply"]["error"], answer
        assert snapshot(client_ns) == state, answer

    client_ns.run("ip", "tuntap", "add", "dev", "sstp9", "mode", "tun")  # of our pattern, but root's
    state = before = snapshot(client_ns)
    refused(request(request="restore", ifname=veth), "Open the tunnel interface first")
    refused(request(request="open", ifname=veth), "creates only interfaces named sstp0")  # no squatting
    refused(request(request="open", ifname="lo"), "creates only interfaces named sstp0")
    refused(request(request="open", ifname="wg0"), "creates only interfaces named sstp0")
    refused(request(request="open", ifname="sstp9"), "exists already")  # never someone else's interface
    refused(request(request="open", ifname="x;reboot"), "cannot be a tunnel interface name")
    refused(request(request="open", ifname="../../etc"), "cannot be a tunnel interface name")
    refused(request(request="shell", command="id"), "does not know this request")
    refused(b'{"version": 1, "request": "open", "ifname": null, "ifname": "lo"}'.hex(), "not a JSON object")
    refused(("7b" * 5000), "longer than")

    opened = ask(request(request="open", ifname=None))
    assert opened["reply"]["ok"] is True and opened["fds"] == 1
    tun = opened["reply"]["ifname"]
    state = snapshot(client_ns)
    refused(request(request="open", ifname=None), "already has its tunnel interface")
    refused(request(request="restore", ifname=veth), "was not created by this connection")
    refused(request(request="set_mtu", ifname=veth, mtu=1280), "was not created by this connection")
    refused(apply(ifname=veth, server="198.18.21.1", full_tunnel=True, plan=PLAN), "was not created by this connection")
    refused(apply(ifname=tun, server="198.18.21.1", full_tunnel=True, plan={**PLAN, "routes": ["0.0.0.0/0"]}), "does not take")
    refused(
        apply(ifname=tun, server="198.18.21.1", full_tunnel=True, plan={**PLAN, "dns": ["198.18.30.1", "1.1.1.1", "8.8.8.8", "9.9.9.9"]}), "At most 3"
    )
    refused(apply(ifname=tun, server="$(reboot)", full_tunnel=True, plan=PLAN), "usual way")
    refused(apply(ifname=tun, server="198.18.21.1", full_tunnel=False, plan=PLAN, extra_routes=["0.0.0.0/0"]), "cannot be routed through the tunnel")
    refused(
        apply(ifname=tun, server="198.18.21.1", full_tunnel=False, plan=PLAN, extra_routes=["127.0.0.0/8"]), "cannot be routed through the tunnel"
    )

    assert ask(apply(ifname=tun, server="198.18.21.1", full_tunnel=True, plan=PLAN)) == {"reply": {"ok": True}, "fds": 0}
    state = snapshot(client_ns)
    refused(apply(ifname=tun, server="198.18.21.1", full_tunnel=True, plan={**PLAN, "address": "198.18.30.11"}), "plan is set already")
    refused(apply(ifname=tun, server="198.18.21.1", full_tunnel=False, plan=PLAN), "plan is set already")
    refused(request(request="set_mtu", ifname=tun, mtu=9000), "outside it")
    agent.finish()  # the connection closes: the helper restores and removes the interface
    _wait_for_state(client_ns, before)


def test_a_user_outside_the_helpers_group_is_refused(client_ns, helper):
    before = snapshot(client_ns)
    other_group = grp.getgrnam("daemon").gr_gid
    kept_out = UnprivilegedAgent(client_ns, "raw", "--socket", helper.socket, gid=other_group)
    assert kept_out.next() == {"connect_error": "Permission denied"}  # the socket's mode 0660
    # Should the socket's permissions be loosened by mistake, the helper's own check still holds.
    os.chmod(helper.socket, 0o666)
    agent = UnprivilegedAgent(client_ns, "raw", "--socket", helper.socket, gid=other_group)
    agent.send(request(request="open", ifname=None))
    answer = agent.next()
    assert answer["fds"] == 0 and answer["reply"]["ok"] is False
    assert f"Only members of the group {NOGROUP}" in answer["reply"]["error"]
    agent.send(request(request="open", ifname=None))
    assert agent.next()["closed"] is True
    agent.finish()
    assert snapshot(client_ns) == before


def test_a_client_in_another_network_namespace_is_refused(client_ns, helper):
    before = snapshot(client_ns)
    agent = UnprivilegedAgent(None, "raw", "--socket", helper.socket)  # in the test's own namespace
    agent.send(request(request="open", ifname=None))
    answer = agent.next()
    assert answer["fds"] == 0 and "another network namespace" in answer["reply"]["error"]
    agent.finish()
    assert snapshot(client_ns) == before


def test_without_the_helper_the_client_says_what_to_install(client_ns, socket_folder):
    agent = UnprivilegedAgent(client_ns, "session", "--socket", str(socket_folder / "missing.sock"))
    failed = agent.next()
    assert failed["event"] == "failed"
    assert "sudo systemctl enable --now sstp-vpn-helper.socket" in failed["sentence"]
    assert "run sstp-vpn as root" in failed["sentence"]


# -- started the way systemd starts it --------------------------------------------------------------------


def test_socket_activation_with_one_process_per_connection(client_ns, socket_folder, tmp_path):
    activate = require_program("systemd-socket-activate", "apt-get install systemd")
    before = snapshot(client_ns)
    socket_path, journal = socket_folder / "helper.sock", tmp_path / "journal.json"
    # What sstp-vpn-helper.socket does (Accept=yes, SOCK_SEQPACKET), minus setting the socket's group.
    listener = client_ns.popen(
        activate,
        "--seqpacket",
        "--accept",
        "--listen",
        str(socket_path),
        *HELPER,
        "--group",
        NOGROUP,
        "--journal",
        str(journal),
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: socket_path.exists() or listener.poll() is not None, "the activation socket")
        os.chown(socket_path, 0, NOBODY.pw_gid)
        socket_path.chmod(0o660)
        agent = UnprivilegedAgent(client_ns, "session", "--socket", str(socket_path))
        opened = agent.next()
        assert opened["event"] == "opened", opened
        assert agent.go()["event"] == "applied"
        assert route(ip_json(client_ns, "-4", "route", "show"), "0.0.0.0/1")["dev"] == opened["ifname"]
        assert agent.go()["received"] == "from-peer"
        assert agent.go() == {"event": "restored", "notes": []}
        assert agent.go() == {"event": "closed"}
        _wait_for_state(client_ns, before)
        assert not journal.exists()
    finally:
        stop_process(listener)
