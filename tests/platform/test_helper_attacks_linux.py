"""sstp-vpn-helper against a member of its group acting as an attacker (issue 12): the helper as
root and the attacker as `nobody`, in the test's client namespace, over the real socket.

Each attack once got through; each must now fail with a sentence and leave the network as it was:
two sessions racing to change routes and DNS, an interface kept alive with TUNSETPERSIST, a
flood of idle connections, and a journal folder others may write in.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from sstpvpn.platform.helper_conversation import IDLE_SECONDS
from sstpvpn.platform.helper_session import LOG_BURST, MAX_SESSIONS_PER_USER, too_many_sessions_sentence
from sstpvpn.platform.journal_replay import busy_sentence
from tests.platform.client_network import RESOLV_CONF, ip_json, snapshot
from tests.platform.test_helper_linux import HELPER, NOGROUP, REPO, UnprivilegedAgent, _wait_for, _wait_for_state, helper, socket_folder  # noqa: F401


def helper_children(process: subprocess.Popen) -> list[int]:
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def tun_devices(ns) -> list[str]:
    return [link["ifname"] for link in ip_json(ns, "-d", "link", "show") if link.get("linkinfo", {}).get("info_kind") == "tun"]


def test_two_sessions_applying_at_once_never_share_the_journal(client_ns, helper):
    before = snapshot(client_ns)
    agent = UnprivilegedAgent(client_ns, "race", "--socket", helper.socket, "--rounds", "50")
    for round_number in range(50):
        outcome = agent.next()["outcome"]
        assert sorted(outcome, key=lambda result: result != "applied") == ["applied", busy_sentence()], (round_number, outcome)
    agent.finish()
    _wait_for_state(client_ns, before)  # every round restored exactly: routes, addresses, DNS
    assert (client_ns.etc / "resolv.conf").read_bytes() == RESOLV_CONF
    assert not helper.journal.exists()
    assert busy_sentence() in helper.log.read_text()


def test_an_interface_made_persistent_is_deleted_when_its_session_ends(client_ns, helper):
    before = snapshot(client_ns)
    agent = UnprivilegedAgent(client_ns, "persist", "--socket", helper.socket)
    persisted = agent.next()
    tun = persisted["ifname"]
    details = ip_json(client_ns, "-d", "link", "show", tun)[0]["linkinfo"]["info_data"]
    assert details["persist"] is True and details["user"] == "nobody"  # the attack itself worked
    closed = agent.go()
    assert "administrator rights" in closed["attach_again"]  # nothing left to attach to
    agent.finish()
    assert tun not in tun_devices(client_ns)
    assert snapshot(client_ns) == before
    assert f"closed {tun}" in helper.log.read_text()


def test_a_flood_of_idle_connections_gets_a_few_processes_and_a_sentence(client_ns, helper):
    before = snapshot(client_ns)
    started = time.monotonic()
    agent = UnprivilegedAgent(client_ns, "flood", "--socket", helper.socket, "--count", "300")
    flooded = agent.next()
    assert flooded["refused"] == 300 - MAX_SESSIONS_PER_USER
    assert flooded["sentences"] == [too_many_sessions_sentence()]
    assert len(helper_children(helper.process)) == MAX_SESSIONS_PER_USER  # root processes: 4, not 300
    assert tun_devices(client_ns) == []
    idle = agent.go()
    assert idle["still_open"] == 0  # the helper closed the ones that never asked for an interface
    assert IDLE_SECONDS - 1 <= time.monotonic() - started <= IDLE_SECONDS + 8
    agent.finish()
    _wait_for(lambda: helper_children(helper.process) == [], "the idle sessions' processes to end")
    # The user is not locked out afterwards.
    session = UnprivilegedAgent(client_ns, "session", "--socket", helper.socket, "--no-packets")
    assert session.next()["event"] == "opened"
    assert session.go()["event"] == "applied"
    assert session.go()["event"] == "restored"
    assert session.go() == {"event": "closed"}
    _wait_for_state(client_ns, before)
    # 296 refusals and 4 idle sessions, yet the log stays within its budgets: the listener's own
    # (its refusals) and this user's (the sessions' lines), each LOG_BURST a minute.
    lines = helper.log.read_text().splitlines()
    assert sum("refused a connection" in line for line in lines) <= LOG_BURST
    assert len(lines) <= 2 * LOG_BURST + 1


def test_a_client_that_hides_its_namespace_is_refused(client_ns, helper):
    before = snapshot(client_ns)
    agent = UnprivilegedAgent(client_ns, "raw", "--socket", helper.socket, "--no-namespace")
    agent.send(b'{"version": 1, "request": "open", "ifname": null}'.hex())
    answer = agent.next()
    assert answer["fds"] == 0 and "did not say which network namespace" in answer["reply"]["error"]
    agent.finish()
    assert snapshot(client_ns) == before


@pytest.mark.parametrize("mode", [0o1777, 0o777, 0o775])
def test_the_helper_refuses_a_journal_folder_others_may_write(client_ns, socket_folder, tmp_path, mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    for pid in range(2, 400):  # the temporary names an older helper would have used
        (shared / f".journal.json.{pid}.tmp").symlink_to(victim)
    result = client_ns.run(
        *HELPER,
        "--listen",
        str(socket_folder / "helper.sock"),
        "--group",
        NOGROUP,
        "--journal",
        str(shared / "journal.json"),
        cwd=REPO,
        check=False,
        timeout=30,
    )
    assert result.returncode == 1
    assert f"Other users may write in the folder {shared}" in result.stderr
    assert victim.read_text() == "root's file\n"
    assert not (socket_folder / "helper.sock").exists()
