"""The RFC 1661 option-negotiation automaton, shared by LCP, IPCP and IPV6CP.

All state logic lives in one transition table (RFC 1661 section 4.1). Each protocol plugs in an
`OptionPolicy` that builds its Configure-Request and judges the peer's. The automaton is pure: it
queues packets to send and notifications for its owner, and exposes one timer deadline.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from .ppp_codec import MAX_INFORMATION, Code, ControlPacket, Option, encode_options, encode_packet, parse_options


class St(enum.IntEnum):
    INITIAL = 0
    STARTING = 1
    CLOSED = 2
    STOPPED = 3
    CLOSING = 4
    STOPPING = 5
    REQ_SENT = 6
    ACK_RCVD = 7
    ACK_SENT = 8
    OPENED = 9


class Ev(enum.Enum):
    UP = "Up"
    DOWN = "Down"
    OPEN = "Open"
    CLOSE = "Close"
    TO_PLUS = "TO+"
    TO_MINUS = "TO-"
    RCR_PLUS = "RCR+"
    RCR_MINUS = "RCR-"
    RCA = "RCA"
    RCN = "RCN"
    RTR = "RTR"
    RTA = "RTA"
    RUC = "RUC"
    RXJ_PLUS = "RXJ+"
    RXJ_MINUS = "RXJ-"
    RXR = "RXR"


def _parse_table(text: str) -> dict[tuple[St, Ev], tuple[tuple[str, ...], St]]:
    """Rows: event, then one cell per state: 'actions/next', a bare next state, or '-'."""
    table = {}
    for line in text.strip().splitlines():
        event, *cells = line.split()
        for state, cell in zip(St, cells, strict=True):
            if cell == "-":
                continue  # cannot happen: a protocol error if it does
            actions, _, target = cell.rpartition("/")
            table[(state, Ev(event))] = (tuple(a for a in actions.split(",") if a), St(int(target.rstrip("rxp"))))
    return table


# RFC 1661 4.1, one row per event, columns states 0-9.
TRANSITIONS = _parse_table("""
Up   2  irc,scr/6  -  -  -  -  -  -  -  -
Down -  -  0  tls/1  0  1  1  1  1  tld/1
Open tls/1  1  irc,scr/6  3r  5r  5r  6  7  8  9r
Close 0  tlf/0  2  2  4  4  irc,str/4  irc,str/4  irc,str/4  tld,irc,str/4
TO+  -  -  -  -  str/4  str/5  scr/6  scr/6  scr/8  -
TO-  -  -  -  -  tlf/2  tlf/3  tlf/3p  tlf/3p  tlf/3p  -
RCR+ -  -  sta/2  irc,scr,sca/8  4  5  sca/8  sca,tlu/9  sca/8  tld,scr,sca/8
RCR- -  -  sta/2  irc,scr,scn/6  4  5  scn/6  scn/7  scn/6  tld,scr,scn/6
RCA  -  -  sta/2  sta/3  4  5  irc/7  scr/6x  irc,tlu/9  tld,scr/6x
RCN  -  -  sta/2  sta/3  4  5  irc,scr/6  scr/6x  irc,scr/8  tld,scr/6x
RTR  -  -  sta/2  sta/3  sta/4  sta/5  sta/6  sta/6  sta/6  tld,zrc,sta/5
RTA  -  -  2  3  tlf/2  tlf/3  6  6  8  tld,scr/6
RUC  -  -  scj/2  scj/3  scj/4  scj/5  scj/6  scj/7  scj/8  scj/9
RXJ+ -  -  2  3  4  5  6  6  8  9
RXJ- -  -  tlf/2  tlf/3  tlf/2  tlf/3  tlf/3  tlf/3  tlf/3  tld,irc,str/5
RXR  -  -  2  3  4  5  6  7  8  ser/9
""")


class Verdict(enum.Enum):
    ACK = Code.CONFIGURE_ACK
    NAK = Code.CONFIGURE_NAK
    REJECT = Code.CONFIGURE_REJECT


class OptionPolicy:
    """What one protocol wants. Subclasses override the hooks they need."""

    def request(self) -> list[Option]:
        """Options for our next Configure-Request."""
        return []

    def judge(self, options: list[Option]) -> tuple[Verdict, list[Option]]:
        """The peer's Configure-Request: ACK (options echoed), NAK (suggested values) or REJECT."""
        return Verdict.ACK, options

    def acked(self, options: list[Option]) -> None:
        """Our request was acknowledged: these values are now in force."""

    def naked(self, options: list[Option]) -> None:
        """The peer suggested other values for our options."""

    def rejected(self, options: list[Option]) -> None:
        """The peer refused these options: stop asking for them."""

    def peer_acked(self, options: list[Option]) -> None:
        """We acknowledged the peer's request: its values are in force."""

    def nak_sent(self, options: list[Option]) -> None:
        """Our Configure-Nak with these suggestions went out (not turned into a Reject, not
        replaced by a Reject of other options): only now may steering state change."""

    def may_reject(self, option_type: int) -> bool:
        """Whether Max-Failure may turn a Nak of this option into a Reject. RFC 1661 6.4 forbids
        rejecting Magic-Number while our own requests carry one."""
        return True


def _sstp_limit() -> int:
    return MAX_INFORMATION


class Notice(enum.Enum):
    """What the automaton tells its owner (the layer-* actions of RFC 1661)."""

    UP = "this layer up"
    DOWN = "this layer down"
    STARTED = "this layer started"
    FINISHED = "this layer finished"


@dataclass
class Counters:
    restart_interval: float = 3.0
    max_configure: int = 10
    max_terminate: int = 2
    max_failure: int = 5


@dataclass
class OptionFsm:
    """One RFC 1661 automaton. Feed it events; take `output` (information fields to send under
    its protocol) and `notices`; ask `timer` for the restart deadline."""

    name: str
    policy: OptionPolicy
    counters: Counters = field(default_factory=Counters)
    state: St = St.INITIAL
    output: list[bytes] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    timer: float | None = None
    terminated_by_peer: bool = False
    # The longest information field we may send: the peer's MRU, never more than SSTP carries.
    send_limit: Callable[[], int] = _sstp_limit
    _restart_count: int = 0
    _failures: int = 0
    _refusals: int = 0  # Configure-Naks and -Rejects of our requests since the last Ack
    _identifier: int = 0
    _request_id: int | None = None
    _response: tuple[Verdict, list[Option], int] | None = None  # to the peer's last request
    _peer_request_id: int = 0
    _rejected_packet: ControlPacket | None = None

    # -- events from the owner ------------------------------------------------------------

    def up(self, now: float) -> None:
        self._fire(Ev.UP, now)

    def down(self, now: float) -> None:
        self._fire(Ev.DOWN, now)

    def open(self, now: float) -> None:
        self._fire(Ev.OPEN, now)

    def close(self, now: float) -> None:
        self._fire(Ev.CLOSE, now)

    def handle_timer(self, now: float) -> None:
        if self.timer is not None and now >= self.timer:
            self.timer = None
            self._fire(Ev.TO_PLUS if self._restart_count > 0 else Ev.TO_MINUS, now)

    def protocol_rejected(self, now: float) -> None:
        """The peer sent Protocol-Reject for this protocol: it will never talk it (RXJ-)."""
        if self._lower_layer_up:
            self._fire(Ev.RXJ_MINUS, now)

    @property
    def _lower_layer_up(self) -> bool:
        # In Initial and Starting RFC 1661 has no packet events: what the peer sends then (an
        # NCP packet while LCP renegotiates, say) is dropped rather than raised.
        return self.state not in (St.INITIAL, St.STARTING)

    def receive(self, packet: ControlPacket, now: float) -> None:
        """A packet of this protocol with a code the automaton handles (1-7, plus 9-11 for LCP
        handled by the owner). Malformed options raise MalformedPacket for the owner to report."""
        if not self._lower_layer_up:
            return
        code = packet.code
        if code == Code.CONFIGURE_REQUEST:
            self._peer_request_id = packet.identifier
            received = parse_options(packet.data)
            verdict, options = self.policy.judge(received)
            if verdict is Verdict.NAK:
                self._failures += 1
                naked = {option.type for option in options}
                if self._failures > self.counters.max_failure and all(map(self.policy.may_reject, naked)):
                    # RFC 1661 Max-Failure: stop suggesting, refuse. A Reject carries the peer's
                    # options unchanged (RFC 1661 5.4), not our suggestions.
                    verdict, options = Verdict.REJECT, [o for o in received if o.type in naked]
            elif verdict is Verdict.ACK:
                self._failures = 0
            self._response = (verdict, options, packet.identifier)
            self._fire(Ev.RCR_PLUS if verdict is Verdict.ACK else Ev.RCR_MINUS, now)
        elif code in (Code.CONFIGURE_ACK, Code.CONFIGURE_NAK, Code.CONFIGURE_REJECT):
            if packet.identifier != self._request_id:
                return  # stale or unsolicited: RFC 1661 says discard silently
            self._peer_request_id = packet.identifier  # a Terminate-Ack (Closed, Stopped) answers it
            options = parse_options(packet.data)
            if code == Code.CONFIGURE_ACK:
                if self.state in (St.REQ_SENT, St.ACK_SENT):
                    self.policy.acked(options)
                self._request_id = None  # a second answer to the same request is stale
                self._refusals = 0
                self._fire(Ev.RCA, now)
            else:
                if code == Code.CONFIGURE_NAK:
                    self.policy.naked(options)
                else:
                    self.policy.rejected(options)
                self._request_id = None
                self._refusals += 1
                if self._refusals > self.counters.max_configure and self.state in (St.REQ_SENT, St.ACK_RCVD, St.ACK_SENT):
                    # RFC 1661 bounds only the Naks we send. A peer that refuses every request
                    # would keep us answering at wire speed forever: give up as if it were silent.
                    self._fire(Ev.TO_MINUS, now)
                    return
                self._fire(Ev.RCN, now)
        elif code == Code.TERMINATE_REQUEST:
            self.terminated_by_peer = True
            self._peer_request_id = packet.identifier
            self._fire(Ev.RTR, now)
        elif code == Code.TERMINATE_ACK:
            self._fire(Ev.RTA, now)
        elif code == Code.CODE_REJECT:
            # A rejected code we need (1-7) is catastrophic; others are survivable.
            rejected = packet.data[0] if packet.data else 0
            self._fire(Ev.RXJ_MINUS if 1 <= rejected <= 7 else Ev.RXJ_PLUS, now)
        else:
            self._peer_request_id = packet.identifier
            self._rejected_packet = packet
            self._fire(Ev.RUC, now)

    # -- the table -------------------------------------------------------------------------

    def _fire(self, event: Ev, now: float) -> None:
        try:
            actions, target = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise RuntimeError(f"{self.name}: event {event.value} cannot happen in state {self.state.name}") from None
        if "irc" in actions:
            self._restart_count = self.counters.max_terminate if "str" in actions else self.counters.max_configure
        for action in actions:
            getattr(self, "_" + action)(now)
        self.state = target
        if target not in (St.CLOSING, St.STOPPING, St.REQ_SENT, St.ACK_RCVD, St.ACK_SENT):
            self.timer = None  # the restart timer runs only while waiting for an answer

    def _tlu(self, now: float) -> None:
        self.notices.append(Notice.UP)

    def _tld(self, now: float) -> None:
        self.notices.append(Notice.DOWN)

    def _tls(self, now: float) -> None:
        self.notices.append(Notice.STARTED)

    def _tlf(self, now: float) -> None:
        self.notices.append(Notice.FINISHED)

    def _irc(self, now: float) -> None:
        pass  # done in _fire, which sees whether a Configure- or Terminate-Request follows

    def _zrc(self, now: float) -> None:
        self._restart_count = 0
        self.timer = now + self.counters.restart_interval

    def next_identifier(self) -> int:
        """A fresh identifier for a packet we originate."""
        self._identifier = (self._identifier + 1) & 0xFF
        return self._identifier

    def _scr(self, now: float) -> None:
        self._request_id = self.next_identifier()
        self.output.append(encode_packet(Code.CONFIGURE_REQUEST, self._request_id, encode_options(self.policy.request())))
        self._restart_count -= 1
        self.timer = now + self.counters.restart_interval

    def _sca(self, now: float) -> None:
        assert self._response is not None
        _, options, identifier = self._response
        self.policy.peer_acked(options)
        self.output.append(encode_packet(Code.CONFIGURE_ACK, identifier, encode_options(options)))

    def _scn(self, now: float) -> None:
        assert self._response is not None
        verdict, options, identifier = self._response
        self.output.append(encode_packet(verdict.value, identifier, encode_options(options)))
        if verdict is Verdict.NAK:
            self.policy.nak_sent(options)

    def _str(self, now: float) -> None:
        self.output.append(encode_packet(Code.TERMINATE_REQUEST, self.next_identifier()))
        self._restart_count -= 1
        self.timer = now + self.counters.restart_interval

    def _sta(self, now: float) -> None:
        self.output.append(encode_packet(Code.TERMINATE_ACK, self._peer_request_id))

    def _scj(self, now: float) -> None:
        packet = self._rejected_packet
        assert packet is not None
        # RFC 1661 5.6: the rejected packet, truncated to fit the peer's MRU (and one SSTP packet).
        rejected = encode_packet(packet.code, packet.identifier, packet.data)[: max(0, self.send_limit() - 4)]
        self.output.append(encode_packet(Code.CODE_REJECT, self.next_identifier(), rejected))

    def _ser(self, now: float) -> None:
        pass  # LCP answers Echo-Request itself: it needs the magic number

    @property
    def is_opened(self) -> bool:
        return self.state is St.OPENED
