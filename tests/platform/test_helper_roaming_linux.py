"""sstp-vpn-helper's "follow_route" (roaming) against a member of its group acting as an attacker,
as in test_helper_attacks_linux.py: the helper as root, the attacker as `nobody` in the test's
client namespace, over the real socket."""

from __future__ import annotations

import time

from tests.platform.client_network import ip_json, snapshot
from tests.platform.test_helper_linux import PLAN, UnprivilegedAgent, _wait_for_state, apply, helper, request, socket_folder  # noqa: F401


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
