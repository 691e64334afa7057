"""Connect at the server's pace (issue 18): every packet of the handshake that a server packet
allows is in `data_to_send()` right after that packet is fed, in the same wake-up. No test here
calls `handle_timer`: a reply that waited for the restart timer (RFC 1661 sends Configure-Request
on Up and on each Nak or Reject at once) would be missing and fail it.

The exchange is SoftEther's, as recorded on the wire (bench/connect_time.py): it rejects the
Magic-Number, offers EAP first, then MS-CHAPv2; rejects the secondary DNS; sends its own IPCP
request and Naks the address and DNS.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from sstpvpn.client.core.events import LinkConfigured
from sstpvpn.client.core.ppp_codec import Option, PppProtocol, encode_frame, encode_packet
from sstpvpn.client.core.sstp_codec import MessageType, encode_data
from tests.unit.wire import Sent, Wire, finish_mschapv2, mru, only

EAP_OPTION = Option(3, b"\xc2\x27")
MSCHAPV2_OPTION = Option(3, b"\xc2\x23\x81")
ADDRESS, GATEWAY = IPv4Address("198.18.30.10"), IPv4Address("198.18.30.1")


def lcp_codes(sent: list[Sent]) -> list[int]:
    return [packet.code for packet in only(sent, PppProtocol.LCP)]


def ip_option(kind: int, address: IPv4Address | int) -> Option:
    return Option(kind, IPv4Address(address).packed)


def test_the_call_connect_ack_brings_the_lcp_request_at_once():
    wire = Wire()  # fed the HTTP reply and the Call Connect Ack; Wire checks the request came with the Ack
    assert wire.lcp_request.code == 1
    assert [o.type for o in Sent(PppProtocol.LCP, wire.lcp_request).options] == [1, 5]  # MRU, Magic-Number
    deadline = wire.engine.get_timer()
    assert deadline is not None and deadline > wire.now  # the restart timer runs, unused


def test_a_rejected_option_is_asked_again_without_it_at_once():
    wire = Wire()
    request = wire.lcp_request
    magic = [o for o in Sent(PppProtocol.LCP, request).options if o.type == 5]
    sent = wire.lcp(4, request.identifier, magic)  # Configure-Reject of the Magic-Number
    (again,) = only(sent, PppProtocol.LCP)
    assert again.code == 1 and again.identifier != request.identifier
    assert [o.type for o in Sent(PppProtocol.LCP, again).options] == [1]


def test_a_nak_of_our_mru_is_asked_again_at_once():
    wire = Wire()
    sent = wire.lcp(3, wire.lcp_request.identifier, [mru(1400)])
    (again,) = only(sent, PppProtocol.LCP)
    assert again.code == 1 and mru(1400) in Sent(PppProtocol.LCP, again).options


def test_softether_lcp_auth_and_ipcp_each_answer_goes_out_with_the_packet_that_allows_it():
    wire = Wire()
    request = wire.lcp_request
    magic = [o for o in Sent(PppProtocol.LCP, request).options if o.type == 5]
    # Reject of the magic number and the server's own request (EAP) in one read: both answers in this wake-up.
    sent = wire.feed(lcp_frame(4, request.identifier, magic) + lcp_frame(1, 0, [EAP_OPTION]))
    assert lcp_codes(sent) == [1, 3]  # our request again, and a Nak steering EAP towards MS-CHAPv2
    second, nak = only(sent, PppProtocol.LCP)
    assert Sent(PppProtocol.LCP, nak).options == [MSCHAPV2_OPTION]
    assert wire.lcp(2, second.identifier, Sent(PppProtocol.LCP, second).options) == []  # our request acked: nothing to send
    sent = wire.lcp(1, 1, [MSCHAPV2_OPTION])
    assert lcp_codes(sent) == [2]  # acked at once: LCP is open, authentication waits for the challenge
    assert any("Authenticating with MSCHAPV2" in getattr(event, "message", "") for event in wire.events)

    # The challenge is answered, and the Success brings Call Connected and the IPCP request, in one go each.
    after_success = finish_mschapv2(wire, identifier=2)
    assert [s.message_type for s in after_success if s.protocol == "control"] == [MessageType.CALL_CONNECTED]
    (ipcp_request,) = only(after_success, PppProtocol.IPCP)
    assert ipcp_request.code == 1
    assert [o.type for o in Sent(PppProtocol.IPCP, ipcp_request).options] == [3, 129, 131]

    sent = wire.ipcp(4, ipcp_request.identifier, [ip_option(131, 0)])  # the secondary DNS rejected
    (ipcp_again,) = only(sent, PppProtocol.IPCP)
    assert ipcp_again.code == 1 and [o.type for o in Sent(PppProtocol.IPCP, ipcp_again).options] == [3, 129]
    sent = wire.ipcp(1, 3, [ip_option(3, GATEWAY)])  # the server's own request
    assert [(p.code, p.identifier) for p in only(sent, PppProtocol.IPCP)] == [(2, 3)]
    sent = wire.ipcp(3, ipcp_again.identifier, [ip_option(3, ADDRESS), ip_option(129, GATEWAY)])  # the Nak: our address
    (third,) = only(sent, PppProtocol.IPCP)
    assert third.code == 1 and Sent(PppProtocol.IPCP, third).options == [ip_option(3, ADDRESS), ip_option(129, GATEWAY)]
    sent = wire.ipcp(2, third.identifier, [ip_option(3, ADDRESS), ip_option(129, GATEWAY)])
    plans = [event.plan for event in wire.events if isinstance(event, LinkConfigured)]
    assert [plan.address for plan in plans] == [ADDRESS]  # up in this very wake-up
    assert any(s.protocol == PppProtocol.IPV4 for s in sent) == wire.settings.dhcp_inform  # the DHCPINFORM goes with it


def test_no_answer_waits_for_a_timer_in_the_whole_exchange():
    """The same exchange never needed handle_timer: the engine's deadlines are all still ahead."""
    wire = Wire()
    start = wire.now
    request = wire.lcp_request
    wire.lcp(2, request.identifier, Sent(PppProtocol.LCP, request).options)
    wire.lcp(1, 1, [MSCHAPV2_OPTION])
    finish_mschapv2(wire, identifier=2)
    assert wire.now == start
    deadline = wire.engine.get_timer()
    assert deadline is not None and deadline > wire.now


def lcp_frame(code: int, identifier: int, options: list[Option]) -> bytes:
    body = b"".join(bytes((option.type, len(option.data) + 2)) + option.data for option in options)
    return encode_data(encode_frame(PppProtocol.LCP, encode_packet(code, identifier, body)))
