"""sstp-vpn-helper against a member of its group acting as an attacker (issue 12): the helper as
root and the attacker as `nobody`, in the test's client namespace, over the real socket.

Each attack once got through; each must now fail with a sentence and leave the network as it was:
two sessions racing to change routes and DNS, an interface kept alive with TUNSETPERSIST, a
flood of idle connections, a journal folder others may write in; and roaming's "follow_route",
which names nothing but the session's own interface.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from sstpvpn.platform.helper_conversation import IDLE_SECONDS
from sstpvpn.platform.helper_session import LOG_BURST, MAX_SESSIONS_PER_USER, too_many_sessions_sentence
from sstpvpn.platform.journal_replay import busy_sentence
from tests.platform.client_network import RESOLV_CONF, ip_json, snapshot
from tests.platform.test_helper_linux import (  # noqa: F401
    HELPER,
    NOGROUP,
    PLAN,
    REPO,
    UnprivilegedAgent,
    _wait_for,
    _wait_for_state,
    apply,
    helper,
    request,
    socket_folder,
)
from tests.realparts import require_program


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


# -- the kill switch through the helper (issue 19) ----------------------------------------------------

KILL_SWITCH_AGENT = str(Path(__file__).with_name("kill_switch_agent.py"))


class KillSwitchAgent(UnprivilegedAgent):
    """kill_switch_agent.py as nobody."""

    def __init__(self, ns, *arguments: str, uid: int | None = None) -> None:
        import sys

        from tests.unprivileged import NOBODY, as_nobody

        command = as_nobody([sys.executable, KILL_SWITCH_AGENT, *arguments])
        if uid is not None:  # another member of the group: a user id of its own, the same group
            command = [part.replace(f"--reuid={NOBODY.pw_uid} ", f"--reuid={uid} ") for part in command]
        self.proc = ns.popen(*command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


SECOND_UID = 64999  # a second member of the group (no passwd entry needed)


def nft_tables(ns) -> list[str]:
    listing = json.loads(ns.run("nft", "-j", "list", "tables").stdout)["nftables"]
    return [f"{item['table']['family']} {item['table']['name']}" for item in listing if "table" in item]


def kill_switch_journal(helper) -> Path:
    return helper.journal.with_name(f"{helper.journal.stem}-kill-switch.json")


def kill_switch_message(**changes) -> str:
    message = {
        "version": 1,
        "request": "kill_switch",
        "endpoints": [{"address": "198.18.21.1", "port": 443}],
        "tunnels": ["sstp0"],
        "allow_lan": False,
    }
    return json.dumps({**message, **changes}).encode().hex()


def test_an_ordinary_user_sets_replaces_and_removes_the_kill_switch_through_the_helper(client_ns, helper):
    require_program("nft", "apt-get install nftables")
    agent = KillSwitchAgent(
        client_ns, "helper", "--socket", helper.socket, "--endpoint", "198.18.21.1:443", "--tunnel", "sstp0", "--replace-tunnel", "sstp1"
    )
    assert agent.next() == {"event": "set"}
    assert nft_tables(client_ns) == ["inet sstpvpn"]
    rules = client_ns.run("nft", "list", "table", "inet", "sstpvpn").stdout
    assert 'oifname { "lo", "sstp0" } accept' in rules and "ip daddr 198.18.21.1 tcp dport 443 accept" in rules
    assert json.loads(kill_switch_journal(helper).read_text())["steps"] == [{"op": "nft_table", "family": "inet", "name": "sstpvpn"}]
    assert agent.go() == {"event": "replaced"}  # the same session, the rules replaced
    rules = client_ns.run("nft", "list", "table", "inet", "sstpvpn").stdout
    assert '"sstp1"' in rules and '"sstp0"' not in rules
    assert agent.go() == {"event": "removed"}  # close() waited for the helper to remove it
    assert nft_tables(client_ns) == [] and not kill_switch_journal(helper).exists()
    agent.finish()


def test_the_kill_switch_goes_when_its_client_is_killed(client_ns, helper):
    require_program("nft", "apt-get install nftables")
    agent = KillSwitchAgent(client_ns, "helper", "--socket", helper.socket, "--endpoint", "198.18.21.1:443", "--tunnel", "sstp0")
    assert agent.next() == {"event": "set"}
    assert nft_tables(client_ns) == ["inet sstpvpn"]
    os.kill(agent.proc.pid, signal.SIGKILL)
    agent.proc.wait(10)
    _wait_for(lambda: nft_tables(client_ns) == [] and not kill_switch_journal(helper).exists(), "the kill switch's removal", timeout=5)
    assert "removed the kill switch as the session ended" in helper.log.read_text()


def test_a_second_session_cannot_take_or_repair_a_live_kill_switch(client_ns, helper):
    require_program("nft", "apt-get install nftables")
    from sstpvpn.platform.kill_switch_linux import busy_sentence

    first = KillSwitchAgent(client_ns, "helper", "--socket", helper.socket, "--endpoint", "198.18.21.1:443", "--tunnel", "sstp0")
    assert first.next() == {"event": "set"}
    before = client_ns.run("nft", "list", "ruleset").stdout
    second = KillSwitchAgent(client_ns, "helper", "--socket", helper.socket, "--endpoint", "198.18.99.1:443", "--tunnel", "sstp1", uid=SECOND_UID)
    assert second.next() == {"event": "failed", "sentence": busy_sentence()}
    second.finish()
    repair = KillSwitchAgent(client_ns, "repair", "--socket", helper.socket, uid=SECOND_UID)
    assert repair.next() == {"event": "repaired", "notes": []}  # a live session's table is not a leftover
    repair.finish()
    assert client_ns.run("nft", "list", "ruleset").stdout == before
    assert first.go() == {"event": "replaced"}
    assert first.go() == {"event": "removed"}
    assert nft_tables(client_ns) == []
    assert f"uid {SECOND_UID} (pid" in helper.log.read_text()  # the second user's refusal came from its own session


HOSTILE_KILL_SWITCHES = {
    "option-like tunnel": (dict(tunnels=["-x"]), "cannot be a tunnel interface name"),
    "loopback as tunnel": (dict(tunnels=["lo"]), "loopback passes anyway"),
    "the physical link as tunnel": (dict(tunnels=["__VETH__"]), "is neither"),
    "a name the admin did not allow": (dict(tunnels=["eth0"]), "is neither"),
    "five tunnels": (dict(tunnels=[f"sstp{n}" for n in range(5)]), "at most 4"),
    "non-canonical endpoint": (dict(endpoints=[{"address": "2001:DB8::1", "port": 443}]), "written the usual way"),
    "endpoint by name": (dict(endpoints=[{"address": "localhost", "port": 443}]), "written the usual way"),
    "unspecified endpoint": (dict(endpoints=[{"address": "0.0.0.0", "port": 443}]), "not the address of one server"),
    "multicast endpoint": (dict(endpoints=[{"address": "ff02::1", "port": 443}]), "not the address of one server"),
    "endpoint without a port": (dict(endpoints=[{"address": "198.18.21.1", "port": 0}]), "from 1 to 65535"),
    "nine endpoints": (dict(endpoints=[{"address": f"198.18.21.{n}", "port": 443} for n in range(1, 10)]), "at most 8"),
    "an extra field": (dict(table="filter"), "does not take"),
}


@pytest.mark.parametrize(("changes", "fragment"), HOSTILE_KILL_SWITCHES.values(), ids=HOSTILE_KILL_SWITCHES.keys())
def test_a_hostile_kill_switch_is_refused_and_changes_nothing(client_ns, helper, changes, fragment):
    require_program("nft", "apt-get install nftables")
    if changes.get("tunnels") == ["__VETH__"]:
        changes = {**changes, "tunnels": [client_ns.veth]}
    agent = UnprivilegedAgent(client_ns, "raw", "--socket", helper.socket)
    agent.send(kill_switch_message(**changes))
    answer = agent.next()
    assert answer["reply"]["ok"] is False and fragment in answer["reply"]["error"], answer
    agent.finish()
    assert nft_tables(client_ns) == [] and not kill_switch_journal(helper).exists()


def test_a_kill_switch_without_the_namespace_is_refused(client_ns, helper):
    agent = UnprivilegedAgent(client_ns, "raw", "--socket", helper.socket, "--no-namespace")
    agent.send(kill_switch_message())
    answer = agent.next()
    assert "did not say which network namespace" in answer["reply"]["error"]
    agent.finish()
    assert nft_tables(client_ns) == []


def test_a_crashed_helper_session_leaves_the_kill_switch_until_the_next_session_removes_it(client_ns, helper):
    require_program("nft", "apt-get install nftables")
    from sstpvpn.platform.kill_switch_linux import removed_sentence

    agent = KillSwitchAgent(
        client_ns, "helper", "--socket", helper.socket, "--endpoint", "198.18.21.1:443", "--tunnel", "sstp0", "--replace-tunnel", "sstp1"
    )
    assert agent.next() == {"event": "set"}
    (session,) = helper_children(helper.process)
    os.kill(session, signal.SIGKILL)  # the helper's own process for this session dies
    _wait_for(lambda: helper_children(helper.process) == [], "the session's process to go")
    assert nft_tables(client_ns) == ["inet sstpvpn"]  # fail closed
    assert agent.go() == {"event": "replaced"}  # the client's next set() opened a new session at once
    assert removed_sentence() in helper.log.read_text()  # whose start removed the dead one's table first
    assert '"sstp1"' in client_ns.run("nft", "list", "table", "inet", "sstpvpn").stdout
    assert agent.go() == {"event": "removed"}
    agent.finish()
    assert nft_tables(client_ns) == [] and not kill_switch_journal(helper).exists()


def test_repair_through_the_helper_removes_a_dead_sessions_kill_switch(client_ns, helper):
    require_program("nft", "apt-get install nftables")
    from sstpvpn.platform.kill_switch_linux import removed_sentence

    agent = KillSwitchAgent(client_ns, "helper", "--socket", helper.socket, "--endpoint", "198.18.21.1:443", "--tunnel", "sstp0")
    assert agent.next() == {"event": "set"}
    (session,) = helper_children(helper.process)
    os.kill(session, signal.SIGKILL)  # the session dies and leaves its table and journal
    _wait_for(lambda: helper_children(helper.process) == [], "the session's process to go")
    assert nft_tables(client_ns) == ["inet sstpvpn"]
    agent.finish()
    # Without the journal (lost, say) "repair" still finds the table no live session holds.
    kill_switch_journal(helper).unlink()
    repair = KillSwitchAgent(client_ns, "repair", "--socket", helper.socket)
    assert repair.next() == {"event": "repaired", "notes": [removed_sentence()]}
    repair.finish()
    assert nft_tables(client_ns) == []


# -- a late IPv6 link through the helper (issue 19) ---------------------------------------------------


def ipv6_message(request: str, **fields) -> str:
    return json.dumps({"version": 1, "request": request, **fields}).encode().hex()


def test_an_ipv6_link_is_added_only_to_the_sessions_own_applied_interface_and_only_once(client_ns, helper):
    """IPV6CP opened after "apply": "ipv6_link" gives the session's own interface its link-local
    address and router advertisements; an attacker cannot point it at another interface (or the
    system-wide IPv6 settings), before "apply", with a malformed identifier or a second time."""
    before = snapshot(client_ns)
    system_wide = {name: client_ns.run("cat", f"/proc/sys/net/ipv6/conf/{name}/accept_ra").stdout for name in ("all", "default", client_ns.veth)}
    agent = UnprivilegedAgent(client_ns, "raw", "--socket", helper.socket)

    def ask(message: str) -> dict:
        agent.send(message)
        return agent.next()["reply"]

    assert ask(ipv6_message("open", ifname="sstp0"))["ok"]
    refused_early = ask(ipv6_message("ipv6_link", ifname="sstp0", ipv6_identifier="0211223344556677"))
    assert refused_early["ok"] is False and "Apply the network plan" in refused_early["error"]
    plan = {"address": "198.18.30.10", "peer": "198.18.30.1", "dns": [], "mtu": 1400, "ipv6_identifier": None}
    applied = ask(ipv6_message("apply", ifname="sstp0", server="198.18.21.1", full_tunnel=False, plan=plan, extra_routes=[], use_vpn_dns=False))
    assert applied["ok"], applied
    for bad in (
        {"ifname": "all", "ipv6_identifier": "0211223344556677"},
        {"ifname": "default", "ipv6_identifier": "0211223344556677"},
        {"ifname": client_ns.veth, "ipv6_identifier": "0211223344556677"},
        {"ifname": "../all", "ipv6_identifier": "0211223344556677"},
        {"ifname": "sstp0", "ipv6_identifier": "0000000000000000"},
        {"ifname": "sstp0", "ipv6_identifier": "0211223344556677" + "00"},
        {"ifname": "sstp0", "ipv6_identifier": "0211223344556G77"},
        {"ifname": "sstp0", "ipv6_identifier": "02112233445566AA"},
        {"ifname": "sstp0", "ipv6_identifier": 0x0211223344556677},
        {"ifname": "sstp0", "ipv6_identifier": "0211223344556677", "accept_ra_defrtr": 1},
        {"ifname": "sstp0"},
    ):
        reply = ask(ipv6_message("ipv6_link", **bad))
        assert reply["ok"] is False and reply["error"], (bad, reply)
    assert ask(ipv6_message("ipv6_link", ifname="sstp0", ipv6_identifier="0211223344556677"))["ok"]
    assert ask(ipv6_message("ipv6_link", ifname="sstp0", ipv6_identifier="0211223344556677"))["ok"]  # the same: already so
    second = ask(ipv6_message("ipv6_link", ifname="sstp0", ipv6_identifier="0211223344556688"))
    assert second["ok"] is False and "IPv6 link is set already" in second["error"]
    link = ip_json(client_ns, "-6", "addr", "show", "dev", "sstp0")
    assert [(a["local"], a["prefixlen"]) for entry in link for a in entry["addr_info"]] == [("fe80::211:2233:4455:6677", 64)]
    assert client_ns.run("cat", "/proc/sys/net/ipv6/conf/sstp0/accept_ra").stdout.strip() == "2"
    assert {name: client_ns.run("cat", f"/proc/sys/net/ipv6/conf/{name}/accept_ra").stdout for name in system_wide} == system_wide
    agent.finish()  # the session ends: its helper process restores everything and removes sstp0
    _wait_for_state(client_ns, before)
    assert not helper.journal.exists()


def test_follow_route_names_nothing_and_moves_only_its_own_sessions_host_route(client_ns, helper):
    """Roaming's "follow_route": before "apply", for another session's interface, with anything
    the user would name (a gateway, an interface) it is refused; flooded, it changes nothing
    while nothing moved; after a move it makes the one host route the system would choose, and
    the session's end removes that one."""
    before = snapshot(client_ns)
    veth, server = client_ns.veth, "198.18.21.1"
    other = UnprivilegedAgent(client_ns, "raw", "--socket", helper.socket)
    agent = UnprivilegedAgent(client_ns, "raw", "--socket", helper.socket)

    def ask(who: UnprivilegedAgent, message: str) -> dict:
        who.send(message)
        return who.next()

    def refused(who: UnprivilegedAgent, message: str, fragment: str) -> None:
        answer = ask(who, message)
        assert answer["reply"]["ok"] is False and fragment in answer["reply"]["error"], answer
        assert snapshot(client_ns) == state, answer

    state = before
    refused(agent, request(request="follow_route", ifname="sstp0"), "Open the tunnel interface first")
    tun = ask(agent, request(request="open", ifname=None))["reply"]["ifname"]
    state = snapshot(client_ns)
    refused(agent, request(request="follow_route", ifname=tun), "Apply the network plan before")
    assert ask(agent, apply(ifname=tun, server=server, full_tunnel=True, plan=PLAN)) == {"reply": {"ok": True}, "fds": 0}
    state = snapshot(client_ns)
    host_route = ip_json(client_ns, "-4", "route", "show", server)
    assert host_route[0]["gateway"] == "198.18.20.1"
    refused(agent, request(request="follow_route", ifname=veth), "was not created by this connection")
    refused(agent, request(request="follow_route", ifname=tun, gateway="198.18.20.66"), "does not take")
    refused(agent, request(request="follow_route", ifname=tun, dev=veth), "does not take")
    other_tun = ask(other, request(request="open", ifname=None))["reply"]["ifname"]
    state = snapshot(client_ns)
    refused(other, request(request="follow_route", ifname=tun), "was not created by this connection")
    refused(other, request(request="follow_route", ifname=other_tun), "Apply the network plan before")

    journal = helper.journal.read_bytes()
    started = time.monotonic()
    for _ in range(300):  # a flood while nothing moved: each answered, nothing changes, nothing journaled
        assert ask(agent, request(request="follow_route", ifname=tun)) == {"reply": {"ok": True}, "fds": 0}
    flood_seconds = time.monotonic() - started
    print(f"300 follow_route requests: {flood_seconds:.2f} s")
    assert snapshot(client_ns) == state and helper.journal.read_bytes() == journal

    client_ns.run("ip", "route", "replace", "default", "via", "198.18.20.254")  # a new gateway on the same link
    moved = ask(agent, request(request="follow_route", ifname=tun))
    assert moved["reply"]["ok"] is True and "198.18.20.254" in moved["reply"]["notes"][0], moved
    assert [r["gateway"] for r in ip_json(client_ns, "-4", "route", "show", server)] == ["198.18.20.254"]

    other.finish()
    agent.finish()  # the session ends: the helper restores, the new host route goes with it
    client_ns.run("ip", "route", "replace", "default", "via", "198.18.20.1")
    _wait_for_state(client_ns, before)
