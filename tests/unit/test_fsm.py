"""The RFC 1661 option-negotiation automaton: every cell of the state table, the counters and the
restart timer, and the IPCP / IPV6CP / LCP option policies that plug into it."""

from __future__ import annotations

import itertools
from ipaddress import IPv4Address

import pytest

from sstpvpn.client.core.fsm import TRANSITIONS, Counters, Ev, Notice, OptionFsm, OptionPolicy, St, Verdict
from sstpvpn.client.core.ipcp import IpcpPolicy
from sstpvpn.client.core.ipv6cp import Ipv6cpPolicy
from sstpvpn.client.core.ppp_codec import Code, ControlPacket, Option, encode_options, encode_packet, parse_options, parse_packet

# RFC 1661 section 4.1, copied in the RFC's own two-part layout (columns are states).
RFC1661_LEFT = """
       Initial   Starting  Closed    Stopped        Closing   Stopping
 Up    2         irc,scr/6 -         -              -         -
 Down  -         -         0         tls/1          0         1
 Open  tls/1     1         irc,scr/6 3r             5r        5r
 Close 0         tlf/0     2         2              4         4
 TO+   -         -         -         -              str/4     str/5
 TO-   -         -         -         -              tlf/2     tlf/3
 RCR+  -         -         sta/2     irc,scr,sca/8  4         5
 RCR-  -         -         sta/2     irc,scr,scn/6  4         5
 RCA   -         -         sta/2     sta/3          4         5
 RCN   -         -         sta/2     sta/3          4         5
 RTR   -         -         sta/2     sta/3          sta/4     sta/5
 RTA   -         -         2         3              tlf/2     tlf/3
 RUC   -         -         scj/2     scj/3          scj/4     scj/5
 RXJ+  -         -         2         3              4         5
 RXJ-  -         -         tlf/2     tlf/3          tlf/2     tlf/3
 RXR   -         -         2         3              4         5
"""
RFC1661_RIGHT = """
       Req-Sent  Ack-Rcvd  Ack-Sent  Opened
 Up    -         -         -         -
 Down  1         1         1         tld/1
 Open  6         7         8         9r
 Close irc,str/4 irc,str/4 irc,str/4 tld,irc,str/4
 TO+   scr/6     scr/6     scr/8     -
 TO-   tlf/3p    tlf/3p    tlf/3p    -
 RCR+  sca/8     sca,tlu/9 sca/8     tld,scr,sca/8
 RCR-  scn/6     scn/7     scn/6     tld,scr,scn/6
 RCA   irc/7     scr/6x    irc,tlu/9 tld,scr/6x
 RCN   irc,scr/6 scr/6x    irc,scr/8 tld,scr/6x
 RTR   sta/6     sta/6     sta/6     tld,zrc,sta/5
 RTA   6         6         8         tld,scr/6
 RUC   scj/6     scj/7     scj/8     scj/9
 RXJ+  6         6         8         9
 RXJ-  tlf/3     tlf/3     tlf/3     tld,irc,str/5
 RXR   6         7         8         ser/9
"""


def _rfc_table() -> dict[tuple[St, Ev], tuple[tuple[str, ...], St] | None]:
    table: dict[tuple[St, Ev], tuple[tuple[str, ...], St] | None] = {}
    for text, states in ((RFC1661_LEFT, list(St)[:6]), (RFC1661_RIGHT, list(St)[6:])):
        for line in text.strip().splitlines()[1:]:
            event, *cells = line.split()
            assert len(cells) == len(states)
            for state, cell in zip(states, cells, strict=True):
                if cell == "-":
                    table[(state, Ev(event))] = None
                    continue
                actions, _, target = cell.rpartition("/")
                table[(state, Ev(event))] = (tuple(actions.split(",")) if actions else (), St(int(target[0])))
    return table


RFC_TABLE = _rfc_table()
CELLS = sorted(RFC_TABLE, key=lambda key: (key[0], list(Ev).index(key[1])))


def test_table_matches_rfc_1661_cell_for_cell() -> None:
    assert len(RFC_TABLE) == 160
    assert {key: value for key, value in RFC_TABLE.items() if value is not None} == TRANSITIONS


# ------------------------------------------------------------------ driving every cell

NOW = 100.0
ACTION_OUTPUT = {
    "scr": Code.CONFIGURE_REQUEST,
    "sca": Code.CONFIGURE_ACK,
    "scn": Code.CONFIGURE_NAK,
    "str": Code.TERMINATE_REQUEST,
    "sta": Code.TERMINATE_ACK,
    "scj": Code.CODE_REJECT,
}
ACTION_NOTICE = {"tlu": Notice.UP, "tld": Notice.DOWN, "tls": Notice.STARTED, "tlf": Notice.FINISHED}
TIMED_STATES = {St.CLOSING, St.STOPPING, St.REQ_SENT, St.ACK_RCVD, St.ACK_SENT}


class NakEverything(OptionPolicy):
    def judge(self, options: list[Option]) -> tuple[Verdict, list[Option]]:
        return Verdict.NAK, [Option(1, b"\x05\xdc")]


def _machine_in(state: St, policy: OptionPolicy | None = None) -> OptionFsm:
    fsm = OptionFsm("TEST", policy or OptionPolicy())
    fsm.state = state
    fsm._request_id = 0x42  # our outstanding Configure-Request
    fsm._identifier = 0x42
    fsm._restart_count = 1
    if state in TIMED_STATES:
        fsm.timer = NOW + 1
    return fsm


def _fire(fsm: OptionFsm, event: Ev) -> None:
    """Produce `event` through the automaton's public inputs, the way its owner would."""
    if event is Ev.UP:
        fsm.up(NOW)
    elif event is Ev.DOWN:
        fsm.down(NOW)
    elif event is Ev.OPEN:
        fsm.open(NOW)
    elif event is Ev.CLOSE:
        fsm.close(NOW)
    elif event in (Ev.TO_PLUS, Ev.TO_MINUS):
        fsm._restart_count = 1 if event is Ev.TO_PLUS else 0
        fsm.timer = NOW
        fsm.handle_timer(NOW)
    elif event in (Ev.RCR_PLUS, Ev.RCR_MINUS):
        fsm.receive(ControlPacket(Code.CONFIGURE_REQUEST, 0x77, encode_options([Option(1, b"\x05\xdc")])), NOW)
    elif event is Ev.RCA:
        fsm.receive(ControlPacket(Code.CONFIGURE_ACK, 0x42), NOW)
    elif event is Ev.RCN:
        fsm.receive(ControlPacket(Code.CONFIGURE_NAK, 0x42, encode_options([Option(1, b"\x05\xdc")])), NOW)
    elif event is Ev.RTR:
        fsm.receive(ControlPacket(Code.TERMINATE_REQUEST, 0x77), NOW)
    elif event is Ev.RTA:
        fsm.receive(ControlPacket(Code.TERMINATE_ACK, 0x43), NOW)
    elif event is Ev.RUC:
        fsm.receive(ControlPacket(0x33, 0x77, b"xyz"), NOW)
    elif event is Ev.RXJ_PLUS:
        fsm.receive(ControlPacket(Code.CODE_REJECT, 0x77, encode_packet(0x33, 1)), NOW)
    elif event is Ev.RXJ_MINUS:
        fsm.receive(ControlPacket(Code.CODE_REJECT, 0x77, encode_packet(Code.CONFIGURE_REQUEST, 1)), NOW)
    else:
        raise AssertionError(event)


OWNER_EVENTS = {Ev.UP, Ev.DOWN, Ev.OPEN, Ev.CLOSE}


@pytest.mark.parametrize(
    ("state", "event"), [cell for cell in CELLS if cell[1] is not Ev.RXR], ids=lambda v: v.name if isinstance(v, St) else v.value
)
def test_every_cell_does_what_rfc_1661_says(state: St, event: Ev) -> None:
    cell = RFC_TABLE[(state, event)]
    fsm = _machine_in(state, NakEverything() if event is Ev.RCR_MINUS else None)
    if cell is None:
        if event in OWNER_EVENTS or event in (Ev.TO_PLUS, Ev.TO_MINUS):
            with pytest.raises(RuntimeError, match="cannot happen"):
                _fire(fsm, event)
        else:
            # A packet from the peer while the lower layer is down: dropped, never an exception.
            _fire(fsm, event)
            assert (fsm.state, fsm.output, fsm.notices) == (state, [], [])
        return
    actions, target = cell
    _fire(fsm, event)
    assert fsm.state is target
    assert fsm.notices == [ACTION_NOTICE[a] for a in actions if a in ACTION_NOTICE]
    sent = [parse_packet(information) for information in fsm.output]
    assert [p.code for p in sent] == [ACTION_OUTPUT[a] for a in actions if a in ACTION_OUTPUT]
    for packet in sent:
        if packet.code in (Code.CONFIGURE_ACK, Code.CONFIGURE_NAK, Code.TERMINATE_ACK):
            # An answer carries the identifier of the packet it answers.
            assert packet.identifier == (0x42 if event in (Ev.RCA, Ev.RCN) else 0x77)
        elif packet.code == Code.CODE_REJECT:
            assert packet.data == encode_packet(0x33, 0x77, b"xyz")
    if "irc" in actions:
        sent_now = sum(1 for p in sent if p.code in (Code.CONFIGURE_REQUEST, Code.TERMINATE_REQUEST))
        expected = Counters().max_terminate if "str" in actions else Counters().max_configure
        assert fsm._restart_count == expected - sent_now
    if "zrc" in actions:
        assert fsm._restart_count == 0
    # The restart timer runs exactly while an answer is awaited, from the moment a request left.
    if target in TIMED_STATES:
        assert fsm.timer is not None
        if {"scr", "str", "zrc"} & set(actions):
            assert fsm.timer == NOW + Counters().restart_interval
    else:
        assert fsm.timer is None


# ------------------------------------------------------------------ whole negotiations


class Recorder(OptionPolicy):
    """Asks for one option whose value the peer may change; records what the automaton reports."""

    def __init__(self) -> None:
        self.value = b"\x00\x01"
        self.calls: list[tuple[str, list[Option]]] = []

    def request(self) -> list[Option]:
        return [Option(1, self.value)]

    def acked(self, options: list[Option]) -> None:
        self.calls.append(("acked", options))

    def naked(self, options: list[Option]) -> None:
        self.calls.append(("naked", options))
        self.value = options[0].data

    def rejected(self, options: list[Option]) -> None:
        self.calls.append(("rejected", options))

    def peer_acked(self, options: list[Option]) -> None:
        self.calls.append(("peer_acked", options))


def _take(fsm: OptionFsm) -> list[ControlPacket]:
    packets = [parse_packet(information) for information in fsm.output]
    fsm.output.clear()
    return packets


def _opened(policy: OptionPolicy | None = None) -> OptionFsm:
    fsm = OptionFsm("TEST", policy or Recorder())
    fsm.open(0.0)
    fsm.up(0.0)
    request = _take(fsm)[0]
    fsm.receive(ControlPacket(Code.CONFIGURE_REQUEST, 9, b""), 0.0)
    fsm.receive(ControlPacket(Code.CONFIGURE_ACK, request.identifier, request.data), 0.0)
    assert fsm.state is St.OPENED
    _take(fsm)
    fsm.notices.clear()
    return fsm


def test_a_plain_negotiation() -> None:
    policy = Recorder()
    fsm = OptionFsm("TEST", policy)
    fsm.open(0.0)
    assert (fsm.state, fsm.notices, fsm.output) == (St.STARTING, [Notice.STARTED], [])
    fsm.up(1.0)
    assert _take(fsm) == [ControlPacket(Code.CONFIGURE_REQUEST, 1, bytes.fromhex("01040001"))]
    assert fsm.timer == 4.0
    fsm.receive(ControlPacket(Code.CONFIGURE_REQUEST, 0xA0, bytes.fromhex("0304C227")), 1.5)
    assert _take(fsm) == [ControlPacket(Code.CONFIGURE_ACK, 0xA0, bytes.fromhex("0304C227"))]
    assert fsm.state is St.ACK_SENT
    fsm.receive(ControlPacket(Code.CONFIGURE_ACK, 1, bytes.fromhex("01040001")), 1.6)
    assert fsm.state is St.OPENED
    assert fsm.notices == [Notice.STARTED, Notice.UP]
    assert fsm.timer is None
    assert policy.calls == [("peer_acked", [Option(3, b"\xc2\x27")]), ("acked", [Option(1, b"\x00\x01")])]


def test_configure_request_is_sent_max_configure_times_then_the_layer_finishes() -> None:
    fsm = OptionFsm("TEST", Recorder())
    fsm.open(0.0)
    fsm.up(0.0)
    sent_at = [0.0]
    now = 0.0
    while fsm.timer is not None:
        now = fsm.timer
        fsm.handle_timer(now - 0.001)  # not yet
        assert fsm.timer == now
        fsm.handle_timer(now)
        if fsm.state is St.REQ_SENT:
            sent_at.append(now)
    packets = _take(fsm)
    assert [p.code for p in packets] == [Code.CONFIGURE_REQUEST] * 10
    assert [p.identifier for p in packets] == list(range(1, 11))  # each retransmission a fresh id
    assert sent_at == [3.0 * i for i in range(10)]
    assert now == 30.0
    assert fsm.state is St.STOPPED  # tlf/3p
    assert fsm.notices == [Notice.STARTED, Notice.FINISHED]


def test_close_sends_terminate_request_max_terminate_times() -> None:
    fsm = _opened()
    fsm.close(10.0)
    assert fsm.notices == [Notice.DOWN]
    fsm.handle_timer(13.0)
    assert fsm.state is St.CLOSING
    fsm.handle_timer(16.0)
    assert [p.code for p in _take(fsm)] == [Code.TERMINATE_REQUEST] * 2
    assert fsm.state is St.CLOSED
    assert fsm.notices == [Notice.DOWN, Notice.FINISHED]
    assert fsm.timer is None


def test_terminate_ack_finishes_closing_at_once() -> None:
    fsm = _opened()
    fsm.close(10.0)
    request = _take(fsm)[0]
    fsm.receive(ControlPacket(Code.TERMINATE_ACK, request.identifier), 10.1)
    assert (fsm.state, fsm.notices, fsm.timer) == (St.CLOSED, [Notice.DOWN, Notice.FINISHED], None)


def test_peer_terminate_request_is_acked_then_the_layer_finishes_after_one_restart_interval() -> None:
    fsm = _opened()
    fsm.receive(ControlPacket(Code.TERMINATE_REQUEST, 0x5A, b"bye"), 20.0)
    assert _take(fsm) == [ControlPacket(Code.TERMINATE_ACK, 0x5A)]
    assert fsm.terminated_by_peer
    assert (fsm.state, fsm.timer) == (St.STOPPING, 23.0)
    fsm.handle_timer(23.0)
    assert (fsm.state, fsm.notices) == (St.STOPPED, [Notice.DOWN, Notice.FINISHED])
    assert _take(fsm) == []  # zrc: no Terminate-Request of our own


def test_max_failure_turns_naks_into_rejects() -> None:
    fsm = OptionFsm("TEST", NakEverything())
    fsm.open(0.0)
    fsm.up(0.0)
    _take(fsm)
    for identifier in range(7):
        fsm.receive(ControlPacket(Code.CONFIGURE_REQUEST, identifier, bytes.fromhex("01040001 0702")), 0.0)
    answers = [(p.code, p.data) for p in _take(fsm)]
    assert answers == [(Code.CONFIGURE_NAK, bytes.fromhex("010405DC"))] * 5 + [(Code.CONFIGURE_REJECT, bytes.fromhex("01040001"))] * 2


def test_nak_changes_the_next_request_and_a_second_answer_to_it_is_stale() -> None:
    policy = Recorder()
    fsm = OptionFsm("TEST", policy)
    fsm.open(0.0)
    fsm.up(0.0)
    first = _take(fsm)[0]
    nak = ControlPacket(Code.CONFIGURE_NAK, first.identifier, bytes.fromhex("010405DC"))
    fsm.receive(nak, 0.5)
    second = _take(fsm)[0]
    assert second == ControlPacket(Code.CONFIGURE_REQUEST, first.identifier + 1, bytes.fromhex("010405DC"))
    assert fsm.timer == 3.5
    fsm.receive(nak, 0.6)  # a duplicate of the old answer
    fsm.receive(ControlPacket(Code.CONFIGURE_ACK, first.identifier, first.data), 0.7)
    assert _take(fsm) == []
    assert fsm.state is St.REQ_SENT
    assert policy.calls == [("naked", [Option(1, b"\x05\xdc")])]


def test_a_duplicated_configure_ack_does_not_reset_an_opened_link() -> None:
    fsm = OptionFsm("TEST", Recorder())
    fsm.open(0.0)
    fsm.up(0.0)
    request = _take(fsm)[0]
    fsm.receive(ControlPacket(Code.CONFIGURE_REQUEST, 9, b""), 0.0)
    ack = ControlPacket(Code.CONFIGURE_ACK, request.identifier, request.data)
    fsm.receive(ack, 0.0)
    assert fsm.state is St.OPENED
    fsm.receive(ack, 0.1)  # the peer (or the network) repeated its answer
    assert fsm.state is St.OPENED
    assert fsm.notices == [Notice.STARTED, Notice.UP]


def test_reject_reaches_the_policy() -> None:
    policy = Recorder()
    fsm = OptionFsm("TEST", policy)
    fsm.open(0.0)
    fsm.up(0.0)
    first = _take(fsm)[0]
    fsm.receive(ControlPacket(Code.CONFIGURE_REJECT, first.identifier, first.data), 0.0)
    assert policy.calls == [("rejected", [Option(1, b"\x00\x01")])]
    assert [p.code for p in _take(fsm)] == [Code.CONFIGURE_REQUEST]


def test_identifiers_wrap_after_255() -> None:
    fsm = OptionFsm("TEST", Recorder())
    assert [fsm.next_identifier() for _ in range(257)][-3:] == [255, 0, 1]


def test_malformed_options_in_a_request_raise_malformed_packet_for_the_owner() -> None:
    from sstpvpn.client.core.ppp_codec import MalformedPacket

    fsm = _opened()
    with pytest.raises(MalformedPacket):
        fsm.receive(ControlPacket(Code.CONFIGURE_REQUEST, 1, b"\x01\x09"), 0.0)


def test_protocol_reject_of_this_protocol_is_catastrophic() -> None:
    fsm = _opened()
    fsm.protocol_rejected(5.0)
    assert fsm.state is St.STOPPING
    assert [p.code for p in _take(fsm)] == [Code.TERMINATE_REQUEST]
    assert fsm.notices == [Notice.DOWN]


@pytest.mark.parametrize("state", [St.INITIAL, St.STARTING])
def test_protocol_reject_while_the_lower_layer_is_down_is_ignored(state: St) -> None:
    fsm = _machine_in(state)
    fsm.protocol_rejected(5.0)
    assert (fsm.state, fsm.output, fsm.notices) == (state, [], [])


def test_random_event_sequences_never_leave_the_table() -> None:
    """Any order of peer packets and timeouts after Open+Up keeps the automaton inside RFC 1661."""
    inputs = [Ev.RCR_PLUS, Ev.RCR_MINUS, Ev.RCA, Ev.RCN, Ev.RTR, Ev.RTA, Ev.RUC, Ev.RXJ_PLUS, Ev.RXJ_MINUS]
    for sequence in itertools.product(inputs, repeat=3):
        fsm = OptionFsm("TEST", Recorder())
        fsm.open(0.0)
        fsm.up(0.0)
        for event in sequence:
            fsm._request_id = 0x42
            _fire(fsm, event)
            if fsm.timer is not None:
                fsm.handle_timer(fsm.timer)
        assert fsm.state in St


# ------------------------------------------------------------------ IPCP policy


def _ipcp_request(fsm: OptionFsm) -> ControlPacket:
    packets = _take(fsm)
    assert [p.code for p in packets] == [Code.CONFIGURE_REQUEST]
    return packets[0]


def test_ipcp_softether_walk_reject_dns2_then_nak_then_ack() -> None:
    policy = IpcpPolicy()
    fsm = OptionFsm("IPCP", policy)
    fsm.up(0.0)
    fsm.open(0.0)
    first = _ipcp_request(fsm)
    assert first.data == bytes.fromhex("030600000000 810600000000 830600000000")
    fsm.receive(ControlPacket(Code.CONFIGURE_REQUEST, 1, bytes.fromhex("0306C6121E01")), 0.1)
    assert _take(fsm) == [ControlPacket(Code.CONFIGURE_ACK, 1, bytes.fromhex("0306C6121E01"))]
    fsm.receive(ControlPacket(Code.CONFIGURE_REJECT, first.identifier, bytes.fromhex("830600000000")), 0.2)
    second = _ipcp_request(fsm)
    assert second.data == bytes.fromhex("030600000000 810600000000")
    fsm.receive(ControlPacket(Code.CONFIGURE_NAK, second.identifier, bytes.fromhex("0306C6121E0A 8106C6121E01")), 0.3)
    third = _ipcp_request(fsm)
    assert third.data == bytes.fromhex("0306C6121E0A 8106C6121E01")
    fsm.receive(ControlPacket(Code.CONFIGURE_ACK, third.identifier, third.data), 0.4)
    assert fsm.state is St.OPENED
    assert fsm.notices == [Notice.UP]
    assert policy.address == IPv4Address("198.18.30.10")
    assert policy.peer_address == IPv4Address("198.18.30.1")
    assert policy.dns_servers == (IPv4Address("198.18.30.1"),)
    assert not policy.address_refused


def test_ipcp_rejects_compression_and_dns_in_the_servers_request() -> None:
    policy = IpcpPolicy()
    verdict, options = policy.judge(parse_options(bytes.fromhex("0306C6121E01 0206002D0F01 810600000000")))
    assert verdict is Verdict.REJECT
    assert options == [Option(2, bytes.fromhex("002D0F01")), Option(129, bytes(4))]
    assert policy.judge([Option(3, b"\x01\x02\x03")])[0] is Verdict.REJECT  # wrong length


def test_ipcp_server_asking_for_no_address_has_no_peer_address() -> None:
    policy = IpcpPolicy()
    policy.peer_acked([Option(3, bytes(4))])
    assert policy.peer_address is None


def test_ipcp_rejected_address_is_remembered() -> None:
    policy = IpcpPolicy()
    policy.rejected([Option(3, bytes(4))])
    assert policy.address_refused
    assert policy.address == IPv4Address(0)
    assert policy.request() == [Option(129, bytes(4)), Option(131, bytes(4))]


def test_ipcp_nak_with_two_dns_servers() -> None:
    policy = IpcpPolicy()
    policy.naked(
        [Option(3, bytes.fromhex("0A000005")), Option(129, bytes.fromhex("01010101")), Option(131, bytes.fromhex("08080808")), Option(130, bytes(4))]
    )
    assert policy.address == IPv4Address("10.0.0.5")
    assert policy.dns_servers == (IPv4Address("1.1.1.1"), IPv4Address("8.8.8.8"))


# ------------------------------------------------------------------ IPV6CP policy


def _counting_rng(values: list[bytes]):
    iterator = iter(values)
    return lambda size: next(iterator)


def test_ipv6cp_identifier_is_random_and_never_zero() -> None:
    policy = Ipv6cpPolicy(_counting_rng([bytes(8), bytes.fromhex("0102030405060708")]))
    assert policy.identifier == bytes.fromhex("0102030405060708")
    assert policy.request() == [Option(1, bytes.fromhex("0102030405060708"))]


def test_ipv6cp_naks_a_clash_or_zero_with_a_different_identifier() -> None:
    ours = bytes.fromhex("0102030405060708")
    other = bytes.fromhex("1112131415161718")
    policy = Ipv6cpPolicy(_counting_rng([ours, ours, other, other]))
    verdict, options = policy.judge([Option(1, ours)])
    assert (verdict, options) == (Verdict.NAK, [Option(1, other)])
    verdict, options = policy.judge([Option(1, bytes(8))])
    assert (verdict, options) == (Verdict.NAK, [Option(1, other)])


def test_ipv6cp_rejects_compression_and_acks_a_good_identifier() -> None:
    policy = Ipv6cpPolicy(_counting_rng([bytes.fromhex("0102030405060708")]))
    assert policy.judge([Option(2, b"\x00\x4f")]) == (Verdict.REJECT, [Option(2, b"\x00\x4f")])
    peer = [Option(1, bytes.fromhex("A0A1A2A3A4A5A6A7"))]
    assert policy.judge(peer) == (Verdict.ACK, peer)
    policy.peer_acked(peer)
    assert policy.peer_identifier == bytes.fromhex("A0A1A2A3A4A5A6A7")


def test_ipv6cp_adopts_the_servers_suggestion_unless_it_is_unusable() -> None:
    policy = Ipv6cpPolicy(_counting_rng([bytes.fromhex("0102030405060708")]))
    policy.peer_identifier = bytes.fromhex("A0A1A2A3A4A5A6A7")
    policy.naked([Option(1, bytes(8))])
    policy.naked([Option(1, bytes.fromhex("A0A1A2A3A4A5A6A7"))])
    assert policy.identifier == bytes.fromhex("0102030405060708")
    policy.naked([Option(1, bytes.fromhex("B0B1B2B3B4B5B6B7"))])
    assert policy.identifier == bytes.fromhex("B0B1B2B3B4B5B6B7")


# ------------------------------------------------------------------ LCP policy

from sstpvpn.client.core.auth import AuthMethod, AuthPolicy  # noqa: E402
from sstpvpn.client.core.lcp import Lcp, LcpPolicy  # noqa: E402

MAGIC_A, MAGIC_B, MAGIC_C = bytes.fromhex("11223344"), bytes.fromhex("55667788"), bytes.fromhex("99AABBCC")


def _lcp_policy(allow_pap: bool = False, allow_chap_md5: bool = False, magics: tuple[bytes, ...] = (MAGIC_A, MAGIC_B, MAGIC_C)) -> LcpPolicy:
    return LcpPolicy(AuthPolicy(allow_pap=allow_pap, allow_chap_md5=allow_chap_md5), rng=_counting_rng(list(magics)))


def test_lcp_asks_for_mru_and_magic_and_drops_what_is_rejected() -> None:
    policy = _lcp_policy()
    assert policy.request() == [Option(1, b"\x05\xdc"), Option(5, MAGIC_A)]
    assert policy.negotiated_magic == 0x11223344
    policy.rejected([Option(5, MAGIC_A)])
    assert policy.request() == [Option(1, b"\x05\xdc")]
    assert policy.negotiated_magic == 0  # SoftEther: the link runs without magic numbers


def test_lcp_never_asks_for_an_auth_protocol_itself() -> None:
    assert all(option.type != 3 for option in _lcp_policy(allow_pap=True).request())


@pytest.mark.parametrize(
    ("offered", "allow", "verdict"),
    [
        (b"\xc2\x23\x81", {}, Verdict.ACK),  # MS-CHAPv2: our favourite
        (b"\xc2\x27", {}, Verdict.NAK),  # EAP: allowed, but first we suggest MS-CHAPv2
        (b"\xc0\x23", {}, Verdict.NAK),  # PAP without allow_pap
        (b"\xc0\x23", {"allow_pap": True}, Verdict.NAK),  # allowed, still steered once
        (b"\xc2\x23\x05", {}, Verdict.NAK),
        (b"\xc2\x23\x80", {}, Verdict.NAK),  # MS-CHAP v1: unknown to us
    ],
)
def test_lcp_first_answer_to_an_auth_offer(offered: bytes, allow: dict, verdict: Verdict) -> None:
    policy = _lcp_policy(**allow)
    got, options = policy.judge([Option(3, offered)])
    assert got is verdict
    if verdict is Verdict.NAK:
        assert options == [Option(3, b"\xc2\x23\x81")]  # the suggestion is always MS-CHAPv2


def test_lcp_softether_walk_accepts_eap_when_the_server_insists() -> None:
    policy = _lcp_policy()
    verdict, suggestion = policy.judge([Option(3, b"\xc2\x27")])
    assert verdict is Verdict.NAK
    policy.nak_sent(suggestion)  # the automaton reports the Nak as sent
    assert policy.judge([Option(3, b"\xc2\x27")]) == (Verdict.ACK, [Option(3, b"\xc2\x27")])
    policy.peer_acked([Option(3, b"\xc2\x27")])
    assert policy.auth_method is AuthMethod.EAP
    assert policy.refused_methods == []


def test_lcp_keeps_refusing_a_forbidden_method_and_remembers_it_once() -> None:
    policy = _lcp_policy()
    for _ in range(3):
        assert policy.judge([Option(3, b"\xc0\x23")])[0] is Verdict.NAK
    policy.judge([Option(3, b"\xc2\x23\x80")])
    assert policy.refused_methods == [AuthMethod.PAP, b"\xc2\x23\x80"]


def test_lcp_no_auth_option_means_no_authentication() -> None:
    policy = _lcp_policy()
    policy.peer_acked([Option(3, b"\xc2\x23\x81")])
    policy.peer_acked([Option(1, b"\x05\x78")])  # a later request without the option
    assert policy.auth_method is None
    assert policy.peer_mru == 1400


@pytest.mark.parametrize(
    ("option", "verdict", "answer"),
    [
        (Option(1, b"\x05\xdc"), Verdict.ACK, None),
        (Option(1, b"\x00\x44"), Verdict.ACK, None),  # 68, the IPv4 minimum
        (Option(1, b"\x00\x43"), Verdict.NAK, [Option(1, b"\x05\xdc")]),
        (Option(1, b"\x0f\xf8"), Verdict.ACK, None),  # 4088: more than SSTP carries, but it only limits what we send
        (Option(1, b"\x0f\xfb"), Verdict.ACK, None),  # 4091, as Windows RRAS asks
        (Option(1, b"\xff\xff"), Verdict.ACK, None),
        (Option(1, b"\x05"), Verdict.REJECT, [Option(1, b"\x05")]),  # wrong length
        (Option(2, bytes(4)), Verdict.ACK, None),  # ACCM: harmless
        (Option(7), Verdict.REJECT, [Option(7)]),
        (Option(8), Verdict.REJECT, [Option(8)]),
        (Option(13, b"\x06"), Verdict.REJECT, [Option(13, b"\x06")]),
        (Option(5, bytes(4)), Verdict.NAK, [Option(5, MAGIC_C)]),  # zero magic
    ],
)
def test_lcp_judges_the_servers_options(option: Option, verdict: Verdict, answer: list[Option] | None) -> None:
    policy = _lcp_policy()
    got, options = policy.judge([option])
    assert got is verdict
    assert options == ([option] if answer is None else answer)


def test_lcp_looped_back_magic_changes_ours_and_suggests_another() -> None:
    policy = _lcp_policy()
    verdict, options = policy.judge([Option(5, MAGIC_A)])
    assert verdict is Verdict.NAK
    assert policy.magic == int.from_bytes(MAGIC_B, "big")
    assert options == [Option(5, MAGIC_C)]


def test_lcp_reject_wins_over_nak() -> None:
    policy = _lcp_policy()
    assert policy.judge([Option(3, b"\xc2\x27"), Option(7)]) == (Verdict.REJECT, [Option(7)])


def test_lcp_takes_the_servers_suggested_mru_within_bounds() -> None:
    policy = _lcp_policy()
    policy.naked([Option(1, b"\x05\x00")])
    assert policy.mru == 1280
    policy.naked([Option(1, b"\xff\xff")])
    assert policy.mru == 4087
    policy.naked([Option(1, b"\x00\x01")])
    assert policy.mru == 68
    policy.naked([Option(5, MAGIC_C)])
    assert policy.magic == int.from_bytes(MAGIC_B, "big")


def _opened_lcp(reject_magic: bool) -> Lcp:
    lcp = Lcp(_lcp_policy())
    lcp.fsm.open(0.0)
    lcp.fsm.up(0.0)
    request = _take(lcp.fsm)[0]
    if reject_magic:
        lcp.receive(ControlPacket(Code.CONFIGURE_REJECT, request.identifier, bytes.fromhex("0506") + MAGIC_A), 0.0)
        request = _take(lcp.fsm)[0]
    lcp.receive(ControlPacket(Code.CONFIGURE_ACK, request.identifier, request.data), 0.0)
    lcp.receive(ControlPacket(Code.CONFIGURE_REQUEST, 1, bytes.fromhex("0305C22381")), 0.0)
    assert lcp.fsm.is_opened
    _take(lcp.fsm)
    return lcp


@pytest.mark.parametrize("reject_magic", [True, False])
def test_lcp_echo_reply_carries_our_magic_and_the_data(reject_magic: bool) -> None:
    lcp = _opened_lcp(reject_magic)
    lcp.receive(ControlPacket(Code.ECHO_REQUEST, 0x21, bytes(4) + b"Aho Baka Manuke\x00"), 1.0)
    magic = bytes(4) if reject_magic else MAGIC_A
    assert _take(lcp.fsm) == [ControlPacket(Code.ECHO_REPLY, 0x21, magic + b"Aho Baka Manuke\x00")]


def test_lcp_echo_request_before_opened_is_ignored() -> None:
    lcp = Lcp(_lcp_policy())
    lcp.fsm.open(0.0)
    lcp.fsm.up(0.0)
    _take(lcp.fsm)
    lcp.receive(ControlPacket(Code.ECHO_REQUEST, 1, bytes(4)), 0.0)
    lcp.receive(ControlPacket(Code.ECHO_REQUEST, 2, b""), 0.0)  # too short for a magic: still no crash
    assert _take(lcp.fsm) == []


def test_lcp_protocol_reject_fits_the_peer_mru() -> None:
    lcp = _opened_lcp(True)
    lcp.policy.peer_mru = 100
    lcp.protocol_reject(0x80FD, bytes(500))
    packet = _take(lcp.fsm)[0]
    assert packet.code == Code.PROTOCOL_REJECT
    assert 4 + len(packet.data) == 100
    assert packet.data[:2] == b"\x80\xfd"


def test_lcp_records_protocol_rejects_only_when_opened() -> None:
    lcp = Lcp(_lcp_policy())
    lcp.receive(ControlPacket(Code.PROTOCOL_REJECT, 1, b"\x80\x57"), 0.0)
    assert lcp.rejected_protocols == []
    lcp = _opened_lcp(True)
    lcp.receive(ControlPacket(Code.PROTOCOL_REJECT, 1, b"\x80\x57\x01"), 0.0)
    lcp.receive(ControlPacket(Code.PROTOCOL_REJECT, 2, b"\x80"), 0.0)  # too short: ignored
    assert lcp.rejected_protocols == [0x8057]


def test_lcp_max_failure_rejects_a_forbidden_method_after_five_naks() -> None:
    lcp = Lcp(_lcp_policy())
    lcp.fsm.open(0.0)
    lcp.fsm.up(0.0)
    _take(lcp.fsm)
    for identifier in range(7):
        lcp.receive(ControlPacket(Code.CONFIGURE_REQUEST, identifier, bytes.fromhex("0304C023")), 0.0)
    answers = [(p.code, p.data) for p in _take(lcp.fsm)]
    # The Naks suggest MS-CHAPv2; the Rejects return the server's option unchanged (RFC 1661 5.4).
    assert answers == [(Code.CONFIGURE_NAK, bytes.fromhex("0305C22381"))] * 5 + [(Code.CONFIGURE_REJECT, bytes.fromhex("0304C023"))] * 2


def _refuse_every_request(fsm: OptionFsm, code: Code, rounds: int) -> list[ControlPacket]:
    """Answer each of our Configure-Requests with `code` at once (no time passes), as a hostile
    peer in an endless Configure-Nak loop does; return every request sent."""
    requests = []
    for round_number in range(rounds):
        packets = [p for p in _take(fsm) if p.code == Code.CONFIGURE_REQUEST]
        if not packets:
            break
        request = packets[-1]
        requests.append(request)
        suggestion = bytes((0x01, 0x04, 0x05, round_number & 0xFF))  # a new value every time
        fsm.receive(ControlPacket(code, request.identifier, suggestion if code == Code.CONFIGURE_NAK else request.data), 0.0)
    return requests


@pytest.mark.parametrize("code", [Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT])
def test_a_peer_that_refuses_every_request_ends_the_negotiation(code: Code) -> None:
    # Max-Configure refusals, then the automaton gives up as after Max-Configure timeouts (TO-).
    fsm = OptionFsm("TEST", Recorder())
    fsm.up(0.0)
    fsm.open(0.0)
    requests = _refuse_every_request(fsm, code, 50)
    assert len(requests) == Counters().max_configure + 1
    assert fsm.state is St.STOPPED
    assert fsm.notices == [Notice.FINISHED]
    assert fsm.timer is None


def test_an_ack_resets_the_count_of_refusals() -> None:
    fsm = _opened()
    for _ in range(3):  # each renegotiation is naked a few times and then acked: never given up
        fsm.receive(ControlPacket(Code.CONFIGURE_REQUEST, 9, b""), 0.0)  # RCR+ in Opened: tld, scr, sca
        requests = _refuse_every_request(fsm, Code.CONFIGURE_NAK, Counters().max_configure)
        assert len(requests) == Counters().max_configure
        request = [p for p in _take(fsm) if p.code == Code.CONFIGURE_REQUEST][-1]
        fsm.receive(ControlPacket(Code.CONFIGURE_ACK, request.identifier, request.data), 0.0)
        assert fsm.state is St.OPENED


# ------------------------------------------------------------------ steering, peer MRU, loops (issue 13)


def test_lcp_steering_is_recorded_only_when_the_nak_is_sent() -> None:
    """Windows Server 2016: EAP alongside Callback/MRRU/Endpoint Discriminator. The Reject of
    those carries no Nak, so the EAP offer that follows must still be steered to MS-CHAPv2."""
    lcp = Lcp(_lcp_policy())
    lcp.fsm.open(0.0)
    lcp.fsm.up(0.0)
    _take(lcp.fsm)
    first = encode_options(
        [
            Option(1, b"\x0f\xfb"),
            Option(3, b"\xc2\x27"),
            Option(5, MAGIC_C),
            Option(13, b"\x06"),
            Option(17, b"\x06\x4e"),
            Option(19, b"\x01" + bytes(20)),
        ]
    )
    lcp.receive(ControlPacket(Code.CONFIGURE_REQUEST, 1, first), 0.0)
    second = encode_options([Option(1, b"\x0f\xfb"), Option(3, b"\xc2\x27"), Option(5, MAGIC_C)])
    lcp.receive(ControlPacket(Code.CONFIGURE_REQUEST, 2, second), 0.0)
    lcp.receive(ControlPacket(Code.CONFIGURE_REQUEST, 3, second), 0.0)  # the server insists on EAP
    answers = [(p.code, p.identifier, parse_options(p.data)) for p in _take(lcp.fsm)]
    assert answers == [
        (Code.CONFIGURE_REJECT, 1, [Option(13, b"\x06"), Option(17, b"\x06\x4e"), Option(19, b"\x01" + bytes(20))]),
        (Code.CONFIGURE_NAK, 2, [Option(3, b"\xc2\x23\x81")]),
        (Code.CONFIGURE_ACK, 3, parse_options(second)),
    ]


def test_lcp_steering_is_not_recorded_when_max_failure_turns_the_nak_into_a_reject() -> None:
    policy = _lcp_policy()
    policy.judge([Option(3, b"\xc2\x27")])  # judged, but no Nak went out
    assert policy.judge([Option(3, b"\xc2\x27")])[0] is Verdict.NAK


def test_lcp_peer_mru_above_the_sstp_limit_is_kept_but_sending_is_capped() -> None:
    policy = _lcp_policy()
    policy.peer_acked([Option(1, b"\x0f\xfb")])
    assert policy.peer_mru == 4091
    assert policy.send_mru == 4087
    policy.peer_acked([Option(1, b"\x02\x00")])
    assert policy.send_mru == 512


def test_lcp_echo_reply_and_code_reject_fit_the_peer_mru_and_one_sstp_packet() -> None:
    lcp = _opened_lcp(True)
    lcp.policy.peer_mru = 4091
    lcp.receive(ControlPacket(Code.ECHO_REQUEST, 1, bytes(4083)), 0.0)  # 4087-byte information field
    lcp.receive(ControlPacket(0x42, 2, bytes(4083)), 0.0)  # unknown code: Code-Reject quotes it
    reply, code_reject = _take(lcp.fsm)
    assert (reply.code, 4 + len(reply.data)) == (Code.ECHO_REPLY, 4087)
    assert (code_reject.code, 4 + len(code_reject.data)) == (Code.CODE_REJECT, 4087)
    assert code_reject.data[:4] == bytes.fromhex("42020FF7")  # the rejected packet's header, as received
    lcp.policy.peer_mru = 300
    lcp.receive(ControlPacket(Code.ECHO_REQUEST, 3, bytes(1000)), 0.0)
    lcp.receive(ControlPacket(0x42, 4, bytes(1000)), 0.0)
    assert [4 + len(p.data) for p in _take(lcp.fsm)] == [300, 300]


def test_lcp_never_rejects_magic_number_while_asking_for_it() -> None:
    """Max-Failure turns other Naks into Rejects, but not one of Magic-Number (RFC 1661 6.4)."""
    lcp = Lcp(_lcp_policy(magics=tuple(bytes((0, 0, 1, n)) for n in range(1, 60))))
    lcp.fsm.open(0.0)
    lcp.fsm.up(0.0)
    _take(lcp.fsm)
    for identifier in range(8):
        lcp.receive(ControlPacket(Code.CONFIGURE_REQUEST, identifier, bytes.fromhex("050600000000")), 0.0)  # zero magic
    codes = [p.code for p in _take(lcp.fsm)]
    assert codes == [Code.CONFIGURE_NAK] * 8
    assert not lcp.policy.looped  # a zero magic is a bad peer, not a loop


def test_lcp_our_magic_coming_back_repeatedly_means_a_loop() -> None:
    policy = _lcp_policy(magics=tuple(bytes((0, 0, 2, n)) for n in range(1, 20)))
    own = policy.request()[1]
    verdict, suggestion = policy.judge([own])  # our own request, echoed
    assert verdict is Verdict.NAK and not policy.looped
    policy.naked(suggestion)  # our Nak, echoed: the peer "suggests" what we suggested
    assert not policy.looped
    policy.judge([policy.request()[1]])
    assert policy.looped


def test_lcp_a_peer_magic_of_its_own_clears_the_loop_suspicion() -> None:
    policy = _lcp_policy(magics=tuple(bytes((0, 0, 2, n)) for n in range(1, 20)))
    policy.judge([policy.request()[1]])
    policy.judge([Option(5, bytes.fromhex("CAFEBABE"))])  # a real peer's number: no loop
    policy.judge([policy.request()[1]])
    assert not policy.looped
