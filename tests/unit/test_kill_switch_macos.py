"""kill_switch_macos driven against a recorded pfctl (tests/recorded_macos.RecordedPf): the exact
commands of set, replace and remove, the anchor's rules for each KillSwitchRules field, pf's
enable reference, failures, and the sentences for them. macOS itself is not involved (the module
is untested on macOS)."""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv6Address

import pytest

from sstpvpn.platform import kill_switch_macos as pf_switch
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal import UndoJournal
from sstpvpn.platform.kill_switch import AllowedEndpoint, KillSwitchRules
from tests.recorded_macos import PFCTL, RecordedPf, pf_commands

ANCHOR = "com.apple/100.sstp-vpn"
SERVER = AllowedEndpoint(IPv4Address("203.0.113.5"), 443)
RULES = KillSwitchRules(endpoints=(SERVER,), tunnels=("utun7",))
SHOW, LOAD, ENABLE, FLUSH = (PFCTL, "-s", "rules"), (PFCTL, "-a", ANCHOR, "-f", "-"), (PFCTL, "-E"), (PFCTL, "-a", ANCHOR, "-F", "rules")
LINK = [
    "pass out quick inet proto udp from any port 68 to any port 67",
    "pass in quick inet proto udp from any port 67 to any port 68",
    "pass out quick inet6 proto udp from any port 546 to any port 547",
    "pass in quick inet6 proto udp from any port 547 to any port 546",
    "pass out quick inet6 proto icmp6 icmp6-type { 133, 135, 136 }",
    "pass in quick inet6 proto icmp6 icmp6-type { 134, 135, 136 }",
    "block drop out quick proto { tcp, udp } from any to any port 53",
]
BLOCK = ["block drop out quick all", "block drop in quick all"]
HEADER = "# SSTP VPN kill switch: only what the VPN needs passes (removed on disconnect, or by sstp-vpn repair)"


def text(*lines):
    return "\n".join([HEADER, *lines]) + "\n"


@pytest.fixture
def pf():
    return RecordedPf()


@pytest.fixture
def journal(tmp_path):
    return tmp_path / "network-journal-kill-switch.json"


@pytest.fixture
def switch_on(journal):
    def make(pf, processes=None):
        commands = pf_commands(pf, processes)
        return pf_switch.MacKillSwitch(journal, run_command=commands), commands

    return make


def pfctl(commands):
    return commands.argvs(PFCTL)


def test_the_first_set_checks_the_anchor_point_loads_our_anchor_and_enables_pf_with_a_reference(pf, switch_on, journal):
    switch, commands = switch_on(pf)
    switch.set(RULES)
    assert pfctl(commands) == [SHOW, LOAD, ENABLE]
    expected = text(
        "pass quick on lo0 all", "pass quick on utun7 all", "pass out quick inet proto tcp from any to 203.0.113.5 port 443", *LINK, *BLOCK
    )
    assert next(stdin for argv, stdin in commands.calls if argv == LOAD) == expected  # the rules go on stdin, never on a command line
    assert pf.anchors == {ANCHOR: expected}
    assert pf.enabled and switch.token in pf.tokens
    steps = json.loads(journal.read_text())["steps"]  # journaled: a crash leaves them to repair
    assert steps == [{"op": "pf_anchor", "anchor": ANCHOR}, {"op": "pf_enable_reference", "token": switch.token}]


def test_a_second_set_replaces_the_anchor_in_one_load_and_keeps_the_reference(pf, switch_on):
    switch, commands = switch_on(pf)
    switch.set(KillSwitchRules(endpoints=(SERVER,)))
    token = switch.token
    commands.calls.clear()
    switch.set(RULES)
    assert pfctl(commands) == [LOAD]
    assert "pass quick on utun7 all" in pf.anchors[ANCHOR]
    assert switch.token == token and pf.tokens == {token}


def test_remove_gives_back_the_reference_and_flushes_only_our_anchor_and_may_be_called_again(pf, switch_on, journal):
    pf.anchors["com.apple/250.ApplicationFirewall"] = "someone's rules\n"
    switch, commands = switch_on(pf)
    switch.set(RULES)
    token = switch.token
    commands.calls.clear()
    switch.remove()
    assert pfctl(commands) == [(PFCTL, "-X", token), FLUSH]  # the journal's steps, newest first
    assert not journal.exists()
    assert pf.anchors == {"com.apple/250.ApplicationFirewall": "someone's rules\n"}
    assert not pf.enabled and switch.token is None
    commands.calls.clear()
    switch.remove()
    assert commands.calls == []


def test_pf_enabled_by_someone_else_stays_enabled(pf, switch_on):
    pf.enabled_by_others = True
    switch, _commands = switch_on(pf)
    switch.set(RULES)
    switch.remove()
    assert pf.enabled and pf.tokens == set()


def test_remove_before_any_set_runs_nothing(pf, switch_on):
    switch, commands = switch_on(pf)
    switch.remove()
    assert commands.calls == []


def test_an_empty_main_ruleset_gets_the_stock_pf_conf_first(pf, switch_on):
    pf.main_rules = ""
    switch, commands = switch_on(pf)
    switch.set(RULES)
    assert pfctl(commands) == [SHOW, (PFCTL, "-f", "/etc/pf.conf"), SHOW, LOAD, ENABLE]


def test_someone_elses_main_ruleset_without_apples_anchor_point_is_refused_and_left_alone(pf, switch_on):
    pf.main_rules = "block in all\npass out all keep state\n"
    switch, commands = switch_on(pf)
    with pytest.raises(PlatformError) as raised:
        switch.set(RULES)
    assert raised.value.sentence == (
        "The packet filter's main rules do not include Apple's anchors (com.apple/*) as the stock /etc/pf.conf does, "
        "so the kill switch cannot work; restore /etc/pf.conf."
    )
    assert pfctl(commands) == [SHOW]
    assert pf.anchors == {} and not pf.enabled


# -- failures -------------------------------------------------------------------------------------


def test_a_refused_first_load_leaves_nothing_and_is_a_sentence_with_pfctls_words(pf, switch_on):
    pf.refuse["-f"] = "stdin:3: syntax error\npfctl: Syntax error in config file: pf rules not loaded\n"
    switch, commands = switch_on(pf)
    with pytest.raises(PlatformError) as raised:
        switch.set(RULES)
    assert pf.anchors == {} and not pf.enabled and switch.token is None
    assert raised.value.sentence.startswith("The packet filter refused the kill switch (pfctl: ")
    assert "pf rules not loaded" in raised.value.sentence and raised.value.sentence.endswith("; disconnect and connect again.")
    assert pfctl(commands) == [SHOW, LOAD, FLUSH]  # the journaled step undone (nothing was there)
    assert not switch.journal.held
    switch.remove()  # nothing to undo
    assert pfctl(commands) == [SHOW, LOAD, FLUSH]


def test_a_refused_replace_leaves_the_rules_in_place(pf, switch_on):
    switch, commands = switch_on(pf)
    switch.set(RULES)
    before, token = dict(pf.anchors), switch.token
    pf.refuse["-f"] = "pfctl: Syntax error in config file: pf rules not loaded\n"
    with pytest.raises(PlatformError):
        switch.set(KillSwitchRules(endpoints=(SERVER,), allow_lan=True))
    assert pf.anchors == before and pf.enabled  # fails closed: the old rules still block
    commands.calls.clear()
    switch.remove()
    assert pfctl(commands) == [(PFCTL, "-X", token), FLUSH]
    assert pf.anchors == {} and not pf.enabled


def test_when_pf_cannot_be_enabled_the_rules_are_taken_out_again(pf, switch_on):
    pf.refuse["-E"] = "pfctl: DIOCSTARTREF: Operation not permitted\n"
    switch, commands = switch_on(pf)
    with pytest.raises(PlatformError) as raised:
        switch.set(RULES)
    assert pfctl(commands) == [SHOW, LOAD, ENABLE, FLUSH]
    assert pf.anchors == {} and switch.token is None and not switch.journal.held
    assert "Operation not permitted" in raised.value.sentence


def test_a_failed_flush_on_remove_says_how_to_get_out(pf, switch_on):
    switch, _commands = switch_on(pf)
    switch.set(RULES)
    pf.refuse["-F"] = "pfctl: DIOCXBEGIN: Device busy\n"
    with pytest.raises(PlatformError) as raised:
        switch.remove()
    assert raised.value.sentence.startswith("The packet filter did not remove the kill switch (pfctl: ")
    assert raised.value.sentence.endswith("; run sstp-vpn repair.")
    switch.remove()  # a second try finishes the job
    assert pf.anchors == {} and not pf.enabled


def test_a_dead_sessions_kill_switch_is_removed_by_repair_and_a_live_ones_is_not(pf, switch_on, journal):
    switch, _commands = switch_on(pf)
    switch.set(RULES)
    token = switch.token
    commands = pf_commands(pf)
    assert pf_switch.repair_kill_switch(journal, run_command=commands) == []  # held by a live session
    assert pfctl(commands) == [] and pf.anchors
    switch.journal.release()  # the session's process died: the kernel drops its lock
    assert pf_switch.repair_kill_switch(journal, run_command=commands) == [
        "Removed the kill switch (the pf anchor com.apple/100.sstp-vpn) that an ended sstp-vpn left; the network is open again."
    ]
    assert pfctl(commands) == [(PFCTL, "-X", token), FLUSH]
    assert pf.anchors == {} and not pf.enabled and not journal.exists()
    assert pf_switch.repair_kill_switch(journal, run_command=commands) == []  # twice is fine


def test_the_next_session_undoes_what_a_dead_one_left_before_its_own_set(pf, switch_on, journal):
    dead = UndoJournal(journal)  # what a session of process 999999 left when it died
    assert dead.try_hold()
    dead.begin({"pid": 999_999, "started": "Sat Dec  5 15:00:00 2026"})
    dead.record({"op": "pf_anchor", "anchor": ANCHOR})
    dead.record({"op": "pf_enable_reference", "token": "77"})
    dead.release()
    pf.anchors[ANCHOR], pf.tokens = "old rules\n", {"77"}
    switch, commands = switch_on(pf)  # process 999999 runs no more
    switch.set(RULES)
    assert pfctl(commands) == [SHOW, (PFCTL, "-X", "77"), FLUSH, LOAD, ENABLE]
    assert pf.tokens == {switch.token} and "pass quick on utun7 all" in pf.anchors[ANCHOR]


def test_a_second_session_is_refused_while_one_holds_the_kill_switch(pf, switch_on, monkeypatch):
    monkeypatch.setattr(pf_switch, "LOCK_WAIT_SECONDS", 0.1)
    first, _commands = switch_on(pf)
    first.set(RULES)
    second, commands = switch_on(pf)
    with pytest.raises(PlatformError) as raised:
        second.set(KillSwitchRules(endpoints=(SERVER,)))
    assert (
        raised.value.sentence
        == "The kill switch of another VPN connection on this computer is on; disconnect that connection first, then connect again."
    )
    assert pfctl(commands) == [SHOW]
    second.remove()  # holds nothing: removes nothing
    assert "pass quick on utun7 all" in pf.anchors[ANCHOR] and pf.enabled


# -- what each field of the rules makes -----------------------------------------------------------


def test_without_tunnels_only_loopback_endpoints_and_the_link_pass():
    rules = pf_switch.ruleset(KillSwitchRules(endpoints=(SERVER,)))
    assert rules == text("pass quick on lo0 all", "pass out quick inet proto tcp from any to 203.0.113.5 port 443", *LINK, *BLOCK)


def test_each_tunnel_and_each_endpoint_of_either_family_passes():
    proxy = AllowedEndpoint(IPv6Address("2001:db8::8"), 3128)
    rules = pf_switch.ruleset(KillSwitchRules(endpoints=(SERVER, proxy), tunnels=("utun7", "utun8")))
    assert rules == text(
        "pass quick on lo0 all",
        "pass quick on utun7 all",
        "pass quick on utun8 all",
        "pass out quick inet proto tcp from any to 203.0.113.5 port 443",
        "pass out quick inet6 proto tcp from any to 2001:db8::8 port 3128",
        *LINK,
        *BLOCK,
    )


def test_allow_lan_passes_the_local_networks_after_the_dns_block():
    rules = pf_switch.ruleset(KillSwitchRules(endpoints=(SERVER,), tunnels=("utun7",), allow_lan=True)).splitlines()
    inet = "10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 169.254.0.0/16, 224.0.0.0/4, 255.255.255.255/32"
    lan = [
        f"pass out quick inet from any to {{ {inet} }}",
        f"pass in quick inet from {{ {inet} }} to any",
        "pass out quick inet6 from any to { fe80::/10, fc00::/7, ff00::/8 }",
        "pass in quick inet6 from { fe80::/10, fc00::/7, ff00::/8 } to any",
    ]
    assert rules[-6:] == lan + BLOCK
    assert rules.index("block drop out quick proto { tcp, udp } from any to any port 53") < rules.index(lan[0])  # quick: the first match decides


@pytest.mark.parametrize("name", ["en0", "utun7; pass all", "utun7 all\npass quick all", "lo0"])
def test_only_utun_interfaces_reach_the_rules(pf, name, switch_on):
    switch, commands = switch_on(pf)
    with pytest.raises(PlatformError) as raised:
        switch.set(KillSwitchRules(endpoints=(SERVER,), tunnels=(name,)))
    assert raised.value.sentence == f"The kill switch lets through only utun tunnel interfaces; {name!r} is not one."
    assert commands.calls == []
    with pytest.raises(ValueError):
        pf_switch.ruleset(KillSwitchRules(endpoints=(SERVER,), tunnels=(name,)))


# -- the helper's side ----------------------------------------------------------------------------------


def test_the_helpers_repair_removes_a_dead_sessions_kill_switch(pf, switch_on, journal, tmp_path, monkeypatch):
    from sstpvpn.platform import commands as platform_commands
    from sstpvpn.platform import helper_macos

    settings = helper_macos.Settings("sstp-vpn", None, tmp_path / "network-journal.json")
    assert settings.kill_switch_journal_path == journal  # the kill switch's journal beside the network's
    switch, _commands = switch_on(pf)
    switch.set(RULES)
    switch.journal.release()  # its process died
    monkeypatch.setattr(platform_commands, "run_command", pf_commands(pf))
    assert helper_macos.repair_leftovers(settings) == [
        "Removed the kill switch (the pf anchor com.apple/100.sstp-vpn) that an ended sstp-vpn left; the network is open again."
    ]
    assert pf.anchors == {} and not pf.enabled


def test_a_helper_session_sets_replaces_and_at_its_end_removes_the_anchor(pf, journal):
    import socket

    from sstpvpn.platform import helper_protocol
    from sstpvpn.platform.helper_conversation import HelperSession
    from sstpvpn.platform.helper_session import Peer, SocketChannel

    commands = pf_commands(pf)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    session = HelperSession(
        SocketChannel(ours),
        Peer(1, 2, 3),
        journal.with_name("network-journal.json"),
        create_tun=None,
        make_configurator=None,
        kill_switch_factory=lambda: pf_switch.MacKillSwitch(journal, run_command=commands),
    )

    def ask(tunnels, allow_lan=False):
        request = {
            "version": 1,
            "request": "kill_switch",
            "endpoints": [{"address": "203.0.113.5", "port": 443}],
            "tunnels": tunnels,
            "allow_lan": allow_lan,
        }
        session._send(*session._handle(json.dumps(request).encode(), []))
        return helper_protocol.parse_reply(theirs.recv(helper_protocol.MAX_MESSAGE_BYTES + 1))

    try:
        assert ask([]).ok
        assert ask(["utun7"], allow_lan=True).ok
        assert "pass quick on utun7 all" in pf.anchors[ANCHOR] and "10.0.0.0/8" in pf.anchors[ANCHOR] and pf.enabled
        refused = ask(["en0"])
        assert not refused.ok and refused.error == "The kill switch lets through only utun tunnel interfaces; 'en0' is not one."
        assert pfctl(commands) == [SHOW, LOAD, ENABLE, LOAD]  # the rules before still hold
        session.end()
        assert pf.anchors == {} and not pf.enabled and not journal.exists()
    finally:
        ours.close()
        theirs.close()


def test_as_root_without_the_helper_the_client_gets_the_pf_anchor_and_repair_removes_a_dead_one(pf, tmp_path, monkeypatch):
    from sstpvpn.platform import commands as platform_commands
    from sstpvpn.platform import current

    monkeypatch.setattr(current.sys, "platform", "darwin")
    monkeypatch.setattr(current, "uses_network_helper", lambda: False)
    monkeypatch.setattr(current, "default_journal_path", lambda: tmp_path / "network-journal.json")
    monkeypatch.setattr(current, "repair_from_journal", lambda path: False)
    monkeypatch.setattr(platform_commands, "run_command", pf_commands(pf))
    switch = current.open_kill_switch()
    assert isinstance(switch, pf_switch.MacKillSwitch) and switch.journal.path == tmp_path / "network-journal-kill-switch.json"
    switch.set(RULES)
    assert current.repair_everything() == []  # this session holds it
    switch.journal.release()  # and dies
    assert current.repair_everything() == [
        "Removed the kill switch (the pf anchor com.apple/100.sstp-vpn) that an ended sstp-vpn left; the network is open again."
    ]
    assert pf.anchors == {} and not pf.enabled
