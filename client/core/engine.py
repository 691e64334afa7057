"""The SSTP + PPP client engine: sans-IO.

It owns no socket, thread or clock. The driver feeds it decrypted TLS bytes, IP packets from the
tunnel device and the time; it hands back bytes for TLS, IP packets for the device, events and
the next timer deadline. A peer fault never raises: it ends the session with a `Failure`.

Layering: HTTP handshake -> SSTP call ([MS-SSTP] 3.2) -> LCP -> authentication -> crypto binding
(Call Connected) -> IPCP / IPV6CP -> IP packets.
"""

from __future__ import annotations

import enum
import logging
import secrets
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address

from . import sstp_http
from .auth import Authenticatee, AuthMethod, AuthPolicy, AuthSucceeded, make_authenticatee
from .crypto_binding import build_call_connected
from .dhcp_inform import InformExchange
from .dhcpv6 import InformationRequest, advertised_dns
from .events import (
    Credentials,
    Dhcpv6Answered,
    Disconnected,
    Event,
    LinkConfigured,
    LogRecord,
    NetworkPushed,
    PasswordRetryRequested,
    RouterAdvertisedDns,
    SignedIn,
    StateChanged,
)
from .fsm import Notice, OptionFsm, St
from .i18n import _, ngettext
from .ipcp import IpcpPolicy
from .ipv6cp import Ipv6cpPolicy
from .lcp import Lcp, LcpPolicy
from .ppp_codec import MAX_INFORMATION, MalformedPacket, PppProtocol, encode_frame, parse_frame, parse_packet
from .sstp_codec import (
    AttributeId,
    AttributeStatus,
    ControlMessage,
    HashProtocol,
    MessageType,
    PacketReader,
    encode_call_connect_request,
    encode_control,
    encode_data,
    parse_control,
    parse_crypto_binding_request,
    parse_status_info,
)
from .types import Failure, FailureKind, Layer, NetworkPlan, SessionSecurity, State

# [MS-SSTP] 3.1.2 / 3.2.2 timer values.
NEGOTIATION_TIMEOUT = 60.0
ABORT_WAIT = 3.0  # TIMER_VAL_ABORT_STATE_TIMER_1
DISCONNECT_WAIT = 5.0  # TIMER_VAL_DISCONNECT_STATE_TIMER_1
MAX_CONNECT_RETRIES = 3  # Call Connect Request resent after a Nak (OSC uses 3 tries)

THIS_NETWORK = IPv4Network("0.0.0.0/8")  # RFC 1122: "this host on this network", never an interface's
IPV4_FRAME_PREFIX = b"\xff\x03\x00\x21"
IPV6_FRAME_PREFIX = b"\xff\x03\x00\x57"
DATA_HEADER_LIMIT = 0x0FFF - 8  # largest IP packet one SSTP data packet can hold
IPV6_KEY = 0x10000
# SSTP data header (version 1.0, data, 12-bit length) + FF 03 + protocol, by IP packet size (+ IPV6_KEY
# for IPv6), made as sizes come: the data path then builds no object per packet
_DATA_HEADERS: dict[int, bytes] = {}


def _data_header(key: int) -> bytes:
    size = key & 0xFFFF
    header = b"\x10\x00" + (size + 8).to_bytes(2, "big") + (IPV6_FRAME_PREFIX if key & IPV6_KEY else IPV4_FRAME_PREFIX)
    _DATA_HEADERS[key] = header
    return header


@dataclass(frozen=True)
class EngineSettings:
    credentials: Credentials
    host: str  # sent as the HTTP Host header, and named in messages
    auth: AuthPolicy = field(default_factory=AuthPolicy)
    ipv6: bool = False  # negotiate IPV6CP; otherwise it is protocol-rejected
    mru: int = 1500
    hello_interval: float = 20.0  # receive silence before an SSTP Echo Request; twice that ends the link
    proxy: str = ""  # "host:port" of the HTTP proxy the connection goes through, for messages
    dhcp_inform: bool = True  # ask the VPN's DHCP server for routes and the DNS domain (dhcp_inform)
    dhcpv6: bool = True  # with ipv6: ask the VPN's DHCPv6 server for DNS servers and domains (dhcpv6)
    # Check the credentials only: once authentication succeeds and the crypto binding is sent,
    # tell `SignedIn` and disconnect cleanly (LCP Terminate, SSTP Call Disconnect) before IPCP,
    # so no address, route or DNS server is ever negotiated (diagnose's Sign-in step).
    authenticate_only: bool = False


class Call(enum.Enum):
    """SSTP client call states ([MS-SSTP] 3.2.1.1.1), plus the HTTP step before them."""

    IDLE = "idle"
    HTTP_SENT = "http request sent"
    CONNECT_REQUEST_SENT = "Client_Connect_Request_Sent"
    CONNECT_ACK_RECEIVED = "Client_Connect_Ack_Received"
    CALL_CONNECTED = "Client_Call_Connected"
    LCP_CLOSING = "terminating PPP before Call Disconnect"
    ABORT_PENDING = "Call_Abort_Pending"
    DISCONNECT_ACK_PENDING = "Call_Disconnect_Ack_Pending"
    CLOSED = "closed"


BINDING_HASH_NAMES = {HashProtocol.SHA256: "SHA-256", HashProtocol.SHA1: "SHA-1"}
LIVE = (Call.CONNECT_REQUEST_SENT, Call.CONNECT_ACK_RECEIVED, Call.CALL_CONNECTED, Call.LCP_CLOSING)
WINDING_UP = (Call.ABORT_PENDING, Call.DISCONNECT_ACK_PENDING)
PPP_CONTROL_ALLOWED = (Call.CONNECT_ACK_RECEIVED, Call.CALL_CONNECTED, Call.LCP_CLOSING)


class Engine:
    def __init__(self, settings: EngineSettings, rng: Callable[[int], bytes] = secrets.token_bytes) -> None:
        self.settings = settings
        self._rng = rng
        self.call = Call.IDLE
        self._state = State.IDLE
        self._events: deque[Event] = deque()
        self._out: list[bytes] = []
        self._deliver: list[bytes] = []
        self._reader = PacketReader()
        self._http: sstp_http.ReplyReader | None = None
        self._certificate: bytes | None = None
        self._failure: Failure | None = None
        self._deadline: float | None = None  # negotiation, abort or disconnect wait, by call state
        self._hello_deadline: float | None = None
        self._echo_outstanding = False
        self._connect_retries = 0
        self._user_disconnect = False
        self._nonce = b""
        self._hash = HashProtocol.SHA256

        self._lcp = Lcp(LcpPolicy(settings.auth, settings.mru, rng))
        self._ipcp_policy = IpcpPolicy()
        send_limit = lambda: self._lcp.policy.send_mru  # noqa: E731 - the NCPs obey LCP's peer MRU
        self._ipcp = OptionFsm("IPCP", self._ipcp_policy, send_limit=send_limit)
        self._ipv6cp_policy = Ipv6cpPolicy(rng)
        self._ipv6cp = OptionFsm("IPV6CP", self._ipv6cp_policy, send_limit=send_limit)
        self._auth: Authenticatee | None = None
        self._retry_announced = False  # PasswordRetryRequested sent for the pending retry
        self._plan: NetworkPlan | None = None
        self.security: SessionSecurity | None = None  # set once the crypto binding is sent
        self._inform: InformExchange | None = None  # DHCPINFORM, while it waits for its answer
        self._dhcpv6: InformationRequest | None = None  # DHCPv6 Information-request, while it waits
        self._dhcpv6_asked = False  # once per session
        self._router_dns_told = False  # RouterAdvertisedDns: the first advertisement naming DNS

    # ----------------------------------------------------------------- inputs

    def set_peer_certificate(self, der: bytes) -> None:
        """The server's leaf certificate (DER) from the TLS handshake, for the crypto binding."""
        self._certificate = der

    def connect(self, now: float) -> None:
        if self.call is not Call.IDLE:
            raise RuntimeError("connect() called twice")
        connection, request = sstp_http.build_request(self.settings.host, uuid.UUID(bytes=self._rng(16), version=4))
        self._http = sstp_http.ReplyReader(connection, self.settings.host)
        self._out.append(request)
        self.call = Call.HTTP_SENT
        self._deadline = now + NEGOTIATION_TIMEOUT
        self._lcp.fsm.open(now)
        self._set_state(State.HANDSHAKE)
        self._log(logging.INFO, _("Sent the SSTP request to {host}.").format(host=self.settings.host))

    def disconnect(self, now: float) -> None:
        """The user asked to end the session: terminate PPP, then the SSTP call."""
        self._user_disconnect = True
        self._hello_deadline = None  # leaving: a dead link must not turn this into a failure
        if self.call in (Call.IDLE, Call.HTTP_SENT):
            self._close()
        elif self.call in (Call.CONNECT_ACK_RECEIVED, Call.CALL_CONNECTED) and self._lcp.fsm.state in (
            St.REQ_SENT,
            St.ACK_RCVD,
            St.ACK_SENT,
            St.OPENED,
        ):
            self._set_state(State.DISCONNECTING)
            self.call = Call.LCP_CLOSING
            self._deadline = None
            self._lcp.fsm.close(now)
            self._pump(now)
        elif self.call in LIVE:
            self._send_call_disconnect(now)

    def retry_password(self, password: str | None, now: float) -> None:
        """The answer to `PasswordRetryRequested`: a new password, or None to give up (which
        ends the session with the refusal)."""
        auth = self._auth
        if auth is None or auth.retry_prompt is None or self.call is not Call.CONNECT_ACK_RECEIVED:
            return
        auth.retry_with(password)
        self._deadline = now + NEGOTIATION_TIMEOUT  # the server waits for the user too
        self._pump(now)

    def _closed(self) -> bool:
        """For a check after a call that may have ended the session: a plain `self.call is Call.CLOSED`
        there looks impossible to mypy, which keeps the state narrowed by an earlier check."""
        return self.call is Call.CLOSED

    def receive_stream_data(self, data: bytes, now: float) -> None:
        if self.call is Call.CLOSED or not data:
            return
        if self.call is Call.HTTP_SENT:
            assert self._http is not None
            try:
                reply = self._http.feed(data)
            except sstp_http.HttpRefused as refusal:
                self._drop(Failure(Layer.HTTP, str(refusal), FailureKind.PROTOCOL))
                return
            if reply is None:
                return
            self._http = None
            self._log(logging.INFO, _("The server accepted the SSTP request."))
            self._out.append(encode_call_connect_request())
            self.call = Call.CONNECT_REQUEST_SENT
            self._deadline = now + NEGOTIATION_TIMEOUT
            self._set_state(State.NEGOTIATING)
            data = reply.after_headers
        if self.call is Call.CALL_CONNECTED and self._inform is None and self._ipcp.is_opened:
            # Fast path: the IPv4 data packets of an established session, straight from the stream.
            taken = len(self._deliver)
            data = self._reader.take_data(data, IPV4_FRAME_PREFIX, self._deliver)
            if len(self._deliver) != taken:
                self._echo_outstanding = False
                if self._hello_deadline is not None:
                    self._hello_deadline = now + self.settings.hello_interval
            if not data:
                return
        while self.call is not Call.CLOSED:
            try:
                packets = self._reader.feed(data)
            except MalformedPacket as error:
                # [MS-SSTP] 3.1.5.1: framing is lost, so drop the connection without a word.
                self._drop(
                    Failure(
                        Layer.SSTP,
                        _(
                            "The server sent data that is not SSTP ({error}); the connection was dropped."
                            " Check that the server is an SSTP server, or report the problem to its administrator."
                        ).format(error=error),
                        FailureKind.PROTOCOL,
                    )
                )
                return
            if not packets:
                return
            data = b""  # ask again: a broken header behind these packets is raised then
            self._echo_outstanding = False
            if self._hello_deadline is not None:
                self._hello_deadline = now + self.settings.hello_interval
            deliver = self._deliver
            for control, body in packets:
                # Fast path: an IPv4 packet in an established session moves no state machine.
                if not control and body[:4] == IPV4_FRAME_PREFIX and self.call is Call.CALL_CONNECTED:
                    if self._ipcp.is_opened and not (self._inform is not None and self._inform_answered(body[4:])):
                        deliver.append(body[4:])
                    continue
                if self._closed():
                    return
                if control:
                    self._receive_control(body, now)
                elif self._receive_frame(body, now):
                    continue  # an IP packet: no state machine moved
                # The next packet may depend on this one (authentication starts when LCP opens,
                # IPCP once the call is connected), so the machines react before reading on.
                self._pump(now)

    def receive_ip_packets(self, packets: list[bytes], now: float) -> None:
        """IP packets from the tunnel device, sent only once the call and IPCP are up."""
        if self.call is not Call.CALL_CONNECTED or not self._ipcp.is_opened:
            return
        append = self._out.append
        headers = _DATA_HEADERS
        v6 = self._ipv6cp.is_opened
        for packet in packets:
            size = len(packet)
            if not 20 <= size <= DATA_HEADER_LIMIT:
                continue
            version = packet[0] >> 4
            if version == 4:
                key = size
            elif version == 6 and v6:
                key = size | IPV6_KEY
            else:
                continue
            append(headers.get(key) or _data_header(key))
            append(packet)  # data_to_send() joins header and packet: one copy, no object per packet

    def connection_lost(self, now: float) -> None:
        """The TLS stream ended (EOF or error) before we closed it."""
        if self.call in (Call.CLOSED, Call.IDLE):
            return
        if self.call in (Call.ABORT_PENDING, Call.DISCONNECT_ACK_PENDING) or self._user_disconnect:
            self._close()
            return
        if self._http is not None:  # closed instead of answering: say so, not "network lost"
            try:
                self._http.feed(b"")
            except sstp_http.HttpRefused as refusal:
                self._drop(Failure(Layer.HTTP, str(refusal), FailureKind.PROTOCOL))
                return
        self._record_method_refusal()
        if self.settings.proxy:
            lost = _(
                "The connection to {host} through the proxy {proxy} was lost. Check "
                "your network; if it keeps happening, the proxy or the server may be restarting."
            ).format(host=self.settings.host, proxy=self.settings.proxy)
        else:
            lost = _("The connection to {host} was lost. Check your network; if it keeps happening, the server may be restarting.").format(
                host=self.settings.host
            )
        self._drop(Failure(Layer.SSTP, lost, FailureKind.UNREACHABLE))

    def handle_timer(self, now: float) -> None:
        if self.call is Call.CLOSED:
            return
        if self._deadline is not None and now >= self._deadline:
            self._deadline = None
            self._deadline_expired(now)
            if self._closed():
                return
        if self._hello_deadline is not None and now >= self._hello_deadline:
            if self._echo_outstanding:
                self._drop(
                    Failure(
                        Layer.SSTP,
                        _(
                            "The server stopped answering (nothing received for {seconds:.0f} s): the network or the server is down. Try again later."
                        ).format(seconds=2 * self.settings.hello_interval),
                        FailureKind.UNREACHABLE,
                    )
                )
                return
            # An LCP echo too: some servers (SoftEther) never answer an SSTP Echo Request, but
            # every server answers LCP, and any answer counts as life.
            self._out.append(encode_control(MessageType.ECHO_REQUEST))
            self._lcp.send_echo_request()
            self._echo_outstanding = True
            self._hello_deadline = now + self.settings.hello_interval
        if self.call in WINDING_UP:
            return  # PPP has nothing more to say while the call is being torn down
        if self._inform is not None:
            self._send_inform(now)
        if self._dhcpv6 is not None:
            self._send_dhcpv6(now)
        for fsm in (self._lcp.fsm, self._ipcp, self._ipv6cp):
            fsm.handle_timer(now)
        if self._auth is not None:
            self._auth.handle_timer(now)
        self._pump(now)

    # ----------------------------------------------------------------- outputs

    def data_to_send(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        return data

    def packets_to_deliver(self) -> list[bytes]:
        packets, self._deliver = self._deliver, []
        return packets

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        if self.call is Call.CLOSED:
            return None
        if self.call in WINDING_UP:
            return self._deadline
        deadlines = [
            self._deadline,
            self._hello_deadline,
            self._lcp.fsm.timer,
            self._ipcp.timer,
            self._ipv6cp.timer,
            self._inform.deadline if self._inform is not None else None,
            self._dhcpv6.deadline if self._dhcpv6 is not None else None,
        ]
        if self._auth is not None:
            deadlines.append(self._auth.get_timer())
        return min((d for d in deadlines if d is not None), default=None)

    @property
    def closed(self) -> bool:
        return self.call is Call.CLOSED

    # ----------------------------------------------------------------- SSTP control

    def _receive_control(self, body: bytes, now: float) -> None:
        try:
            message = parse_control(body)
        except MalformedPacket as error:
            self._abort(_("The server sent a malformed SSTP control message ({error}).").format(error=error), now)
            return
        handler = CONTROL_TABLE.get((self.call, message.type))
        if handler is not None:
            handler(self, message, now)
        elif self.call in LIVE:
            name = MessageType(message.type).name if message.type in MessageType._value2member_map_ else f"{message.type:#06x}"
            self._abort(
                _("The server sent an SSTP {message} message that is not valid in state {state}.").format(message=name, state=self.call.value), now
            )
        # In the abort and disconnect states everything else is ignored ([MS-SSTP] 3.2.5).

    def _on_connect_ack(self, message: ControlMessage, now: float) -> None:
        attribute = message.attribute(AttributeId.CRYPTO_BINDING_REQ)
        if attribute is None:
            self._abort(_("The server's Call Connect Ack has no crypto binding request."), now)
            return
        try:
            request = parse_crypto_binding_request(attribute.value)
        except MalformedPacket as error:
            self._abort(_("The server's crypto binding request is malformed ({error}).").format(error=error), now)
            return
        if request.hash_protocols & HashProtocol.SHA256:
            self._hash = HashProtocol.SHA256
        elif request.hash_protocols & HashProtocol.SHA1:
            self._hash = HashProtocol.SHA1
        else:
            self._abort(
                _("The server asks for a crypto binding hash we do not know (bitmask {bitmask:#04x}).").format(bitmask=request.hash_protocols), now
            )
            return
        self._nonce = request.nonce
        self.call = Call.CONNECT_ACK_RECEIVED
        self._deadline = now + NEGOTIATION_TIMEOUT
        self._log(logging.DEBUG, f"Call Connect Ack: crypto binding with {self._hash.name}.")
        self._lcp.fsm.up(now)  # the spec's "lower layer up" for PPP

    def _on_connect_nak(self, message: ControlMessage, now: float) -> None:
        reasons = []
        for attribute in message.attributes:
            if attribute.id == AttributeId.STATUS_INFO:
                try:
                    info = parse_status_info(attribute.value)
                    reasons.append(_status_name(info.status))
                except MalformedPacket:
                    pass
        self._connect_retries += 1
        if self._connect_retries > MAX_CONNECT_RETRIES:
            detail = f" ({', '.join(reasons)})" if reasons else ""
            count = MAX_CONNECT_RETRIES + 1
            # Translators: {detail} is empty or " (reasons the server gave)"
            refused = ngettext(
                "The server refused the SSTP call {count} time{detail}.", "The server refused the SSTP call {count} times{detail}.", count
            )
            self._abort(refused.format(count=count, detail=detail), now)
            return
        self._out.append(encode_call_connect_request())
        self._deadline = now + NEGOTIATION_TIMEOUT

    def _on_echo_request(self, message: ControlMessage, now: float) -> None:
        self._out.append(encode_control(MessageType.ECHO_RESPONSE))

    def _ignore(self, message: ControlMessage, now: float) -> None:
        pass  # Echo Response: receiving anything already proved the link is alive

    def _on_peer_abort(self, message: ControlMessage, now: float) -> None:
        self._record_method_refusal()
        detail = _status_detail(message)
        self._record(
            Failure(
                Layer.SSTP,
                # Translators: {detail} is empty or " (status 6: retry count exceeded, about the crypto binding attribute)"
                _("The server aborted the call{detail}. Try again; if it keeps happening, ask the server's administrator to check its log.").format(
                    detail=detail
                ),
                FailureKind.PROTOCOL,
            )
        )
        self._out.append(encode_control(MessageType.CALL_ABORT))
        self._close()

    def _on_peer_disconnect(self, message: ControlMessage, now: float) -> None:
        if not self._user_disconnect:
            self._record_method_refusal()
            detail = _status_detail(message)
            self._record(
                Failure(
                    Layer.SSTP,
                    # Translators: {detail} is empty or " (status 6: retry count exceeded, about the crypto binding attribute)"
                    _("The server ended the session{detail}. Connect again; if it keeps happening, ask the server's administrator why.").format(
                        detail=detail
                    ),
                    FailureKind.PROTOCOL,
                )
            )
        # The ack is flushed before the transport closes, so the spec's 1 s wait is not needed.
        self._out.append(encode_control(MessageType.CALL_DISCONNECT_ACK))
        self._close()

    def _on_disconnect_ack(self, message: ControlMessage, now: float) -> None:
        self._close()

    def _on_abort_reply(self, message: ControlMessage, now: float) -> None:
        self._close()

    def _deadline_expired(self, now: float) -> None:
        if self.call in (Call.ABORT_PENDING, Call.DISCONNECT_ACK_PENDING):
            self._close()
        elif self.call is Call.HTTP_SENT:
            self._drop(
                Failure(
                    Layer.HTTP,
                    _("The server {host} did not answer the SSTP request within {seconds:.0f} s: it may not be an SSTP server.").format(
                        host=self.settings.host, seconds=NEGOTIATION_TIMEOUT
                    ),
                    FailureKind.PROTOCOL,
                )
            )
        elif self._auth is not None and self._auth.retry_prompt is not None:
            self._auth.retry_with(None)  # nobody answered: the refusal is what the user must hear
            self._pump(now)
        else:
            self._record_method_refusal()
            self._abort(_("The server did not finish setting up the call within {seconds:.0f} s.").format(seconds=NEGOTIATION_TIMEOUT), now)

    # ----------------------------------------------------------------- PPP

    def _receive_frame(self, frame: bytes, now: float) -> bool:
        """Handle one PPP frame; True if it was an IP packet (delivered or dropped)."""
        if self.call is Call.CALL_CONNECTED and frame[:4] == IPV4_FRAME_PREFIX:
            if self._ipcp.is_opened and not (self._inform is not None and self._inform_answered(frame[4:])):
                self._deliver.append(frame[4:])
            return True
        if self.call not in PPP_CONTROL_ALLOWED:
            return False  # PPP before the Call Connect Ack: dropped ([MS-SSTP] 3.2.5)
        try:
            protocol, information = parse_frame(frame)
        except MalformedPacket as error:
            self._log(logging.DEBUG, f"Dropped a malformed PPP frame: {error}.")
            return False
        if protocol == PppProtocol.IPV6:
            if self.call is Call.CALL_CONNECTED and self._ipv6cp.is_opened and not (self._dhcpv6 is not None and self._dhcpv6_answered(information)):
                if not self._router_dns_told and information[6:7] == b"\x3a":  # ICMPv6: a router advertisement naming DNS?
                    self._read_router_dns(information)
                self._deliver.append(information)  # the kernel takes its prefixes (SLAAC)
            return True
        if protocol == PppProtocol.IPV4:
            if self.call is Call.CALL_CONNECTED and self._ipcp.is_opened and not (self._inform is not None and self._inform_answered(information)):
                self._deliver.append(information)
            return True
        try:
            if protocol == PppProtocol.LCP:
                self._lcp.receive(parse_packet(information), now)
            elif not self._lcp.fsm.is_opened:
                pass  # RFC 1661: non-LCP packets before LCP is Opened are discarded
            elif self._auth is not None and protocol == self._auth.protocol:
                self._auth.receive(information, now)
            elif protocol == PppProtocol.IPCP:
                if self.call is Call.CALL_CONNECTED:  # before that: too early, the peer retries
                    self._ipcp.receive(parse_packet(information), now)
            elif protocol == PppProtocol.IPV6CP and self.settings.ipv6:
                if self.call is Call.CALL_CONNECTED:
                    self._ipv6cp.receive(parse_packet(information), now)
            elif protocol in (PppProtocol.PAP, PppProtocol.CHAP, PppProtocol.EAP):
                pass  # a method we did not agree on, or a late retransmission
            else:
                self._lcp.protocol_reject(protocol, information)  # CCP, IPV6CP when off, unknown
        except MalformedPacket as error:
            self._log(logging.DEBUG, f"Dropped a malformed {_protocol_name(protocol)} packet: {error}.")
        return False

    def _pump(self, now: float) -> None:
        """Move sub-machine output onto the wire and react to what they report, until quiet."""
        while True:
            progressed = self._flush_ppp()
            progressed |= self._handle_lcp(now)
            if self.call is Call.CLOSED:
                return
            progressed |= self._handle_auth(now)
            progressed |= self._handle_ncps(now)
            if not progressed or self._closed():
                return

    def _flush_ppp(self) -> bool:
        sent = False
        for protocol, outputs in (
            (PppProtocol.LCP, self._lcp.fsm.output),
            (PppProtocol.IPCP, self._ipcp.output),
            (PppProtocol.IPV6CP, self._ipv6cp.output),
        ):
            for information in outputs:
                self._send_ppp(protocol, information)
                sent = True
            outputs.clear()
        return sent

    def _send_ppp(self, protocol: int, information: bytes) -> None:
        if len(information) > MAX_INFORMATION:
            # Nothing the machines build should get here (echoes and rejects are truncated), but
            # an over-long packet must never raise out of the engine: SSTP cannot carry it.
            self._log(
                logging.WARNING,
                _("Dropped an outgoing {protocol} packet of {size} bytes: one SSTP packet carries at most {limit}.").format(
                    protocol=_protocol_name(protocol), size=len(information), limit=MAX_INFORMATION
                ),
            )
            return
        self._out.append(encode_data(encode_frame(protocol, information)))

    def _handle_lcp(self, now: float) -> bool:
        if self._lcp.policy.looped and self.call is Call.CONNECT_ACK_RECEIVED:
            # Nobody at the far end speaks PPP; a Terminate-Request would only come back too.
            self._disconnect_with(Failure(Layer.LCP, looped_back_sentence(), FailureKind.PROTOCOL), now, lcp_done=True)
            return True
        notices = self._lcp.fsm.notices
        progressed = bool(notices)
        while notices:
            notice = notices.pop(0)
            if notice is Notice.UP:
                self._start_authentication(now)
            elif notice is Notice.DOWN:
                for ncp in (self._ipcp, self._ipv6cp):
                    if ncp.state is not St.INITIAL:
                        ncp.down(now)
                if self.call is Call.CALL_CONNECTED and self._lcp.fsm.state in (St.REQ_SENT, St.ACK_RCVD, St.ACK_SENT):
                    # LCP renegotiation: the call is bound to the first authentication, and SSTP
                    # has no way to bind a second one, so end the session instead of hanging.
                    self._disconnect_with(
                        Failure(
                            Layer.LCP,
                            _(
                                "The server restarted PPP link negotiation during the session, which this client does not support."
                                " Connect again; if it keeps happening, ask the server's administrator to check its log."
                            ),
                            FailureKind.PROTOCOL,
                        ),
                        now,
                    )
            elif notice is Notice.FINISHED:
                self._lcp_finished(now)
                return True
        if self._lcp.fsm.terminated_by_peer and self.call is Call.CONNECT_ACK_RECEIVED and self._lcp.fsm.state is not St.OPENED:
            # RFC 1661 goes on negotiating after a Terminate-Request (it has been acked), but a
            # server that ends the link before it was ever up is giving up (as after refusing every
            # method we allow): end now with the reason rather than after the negotiation timer.
            self._lcp_finished(now)
            return True
        for protocol in self._lcp.rejected_protocols:
            progressed = True
            if protocol == PppProtocol.IPV6CP and self._ipv6cp.state is not St.INITIAL:
                self._ipv6cp.protocol_rejected(now)
            elif protocol in (PppProtocol.IPCP, PppProtocol.IPV4):
                self._disconnect_with(
                    Failure(
                        Layer.IPCP,
                        _(
                            "The server refused IPv4 on this link, so no address can be configured."
                            " Ask the server's administrator to allow IPv4 for SSTP clients."
                        ),
                        FailureKind.PROTOCOL,
                    ),
                    now,
                )
        self._lcp.rejected_protocols.clear()
        return progressed

    def _lcp_finished(self, now: float) -> None:
        if self.call is Call.LCP_CLOSING:
            self._send_call_disconnect(now)
            return
        self._record_method_refusal()
        if self._lcp.fsm.terminated_by_peer:
            failure = Failure(
                Layer.LCP,
                _("The server ended the PPP session. Connect again; if it keeps happening, ask the server's administrator to check its log."),
                FailureKind.PROTOCOL,
            )
        else:
            failure = Failure(
                Layer.LCP,
                _(
                    "The server did not complete PPP link negotiation. "
                    "Try again; if it keeps happening, the server may be overloaded or misconfigured."
                ),
                FailureKind.PROTOCOL,
            )
        self._disconnect_with(failure, now, lcp_done=True)

    def _record_method_refusal(self) -> None:
        """When the server gives up after offering only methods the profile forbids, that (not
        the way it ended the call) is what the user must hear."""
        if self._auth is not None and self._auth.retry_prompt is not None:
            # Refused, another try allowed, but the server ended the call first (pppd sends R=1
            # yet never takes a second Response): the refusal is still what the user must hear.
            self._record(Failure(Layer.AUTH, self._auth.retry_prompt, FailureKind.AUTHENTICATION))
            return
        refused = self._lcp.policy.refused_methods
        if refused and self._auth is None:
            self._record(_no_allowed_method(refused))

    def _start_authentication(self, now: float) -> None:
        method = self._lcp.policy.auth_method
        self._set_state(State.AUTHENTICATING)
        if method is None:
            refused = self._lcp.policy.refused_methods
            if refused:  # it gave up on the methods we refused: that is what the user must hear
                self._disconnect_with(_no_allowed_method(refused), now)
            elif not self.settings.auth.allow_no_auth:
                self._disconnect_with(Failure(Layer.AUTH, no_authentication_sentence(), FailureKind.AUTHENTICATION), now)
            else:
                self._log(
                    logging.WARNING,
                    _("The server asked for no authentication; allowed by this connection's settings. Nothing binds this tunnel to a user."),
                )
                self._authenticated(AuthSucceeded(bytes(32)), now)
            return
        self._auth = make_authenticatee(method, self.settings.credentials, self.settings.auth, self._rng)
        self._log(logging.INFO, _("Authenticating with {method}.").format(method=method.name))
        self._auth.start(now)

    def _handle_auth(self, now: float) -> bool:
        auth = self._auth
        if auth is None:
            return False
        for line in auth.take_logs():
            self._log(logging.DEBUG, line)
        for message in auth.take_messages():
            self._log(logging.INFO, _("Message from the server: {message}").format(message=message))
        if auth.retry_prompt is not None and not self._retry_announced:
            self._retry_announced = True
            self._log(logging.INFO, _("The server refused the password but allows another try."))
            self._events.append(PasswordRetryRequested(auth.retry_prompt))
        elif auth.retry_prompt is None:
            self._retry_announced = False
        output = auth.take_output()
        for information in output:
            self._send_ppp(auth.protocol, information)
        progressed = bool(output)
        if self.call is Call.CONNECT_ACK_RECEIVED and auth.outcome is not None:
            progressed = True
            if isinstance(auth.outcome, Failure):
                self._disconnect_with(auth.outcome, now)
            else:
                self._authenticated(auth.outcome, now)
        return progressed

    def _authenticated(self, outcome: AuthSucceeded, now: float) -> None:
        if self._certificate is None:
            raise RuntimeError("set_peer_certificate() was not called before authentication finished")
        self._out.append(build_call_connected(outcome.hlak, self._nonce, self._certificate, self._hash))
        method = "none" if self._auth is None else self._auth.method_name
        self.security = SessionSecurity(method, BINDING_HASH_NAMES[self._hash], any(outcome.hlak))
        self.call = Call.CALL_CONNECTED
        self._deadline = None
        self._hello_deadline = now + self.settings.hello_interval
        self._log(logging.INFO, _("Authenticated; crypto binding sent ({hash}).").format(hash=self._hash.name))
        if self.settings.authenticate_only:
            self._events.append(SignedIn(self.settings.credentials.username, method))
            self._log(logging.INFO, _("Signed in; disconnecting before IPCP, as asked (nothing is configured)."))
            # As disconnect() does, without its _pump: the caller's pump flushes the Terminate-Request.
            self._user_disconnect = True
            self._hello_deadline = None
            self._set_state(State.DISCONNECTING)
            self.call = Call.LCP_CLOSING
            self._lcp.fsm.close(now)
            return
        self._set_state(State.CONFIGURING)
        self._ipcp.up(now)
        self._ipcp.open(now)
        if self.settings.ipv6:
            self._ipv6cp.up(now)
            self._ipv6cp.open(now)

    def _handle_ncps(self, now: float) -> bool:
        progressed = False
        while self._ipcp.notices:
            progressed = True
            notice = self._ipcp.notices.pop(0)
            if notice is Notice.UP:
                self._ipcp_up(now)
            elif notice is Notice.FINISHED and self.call is Call.CALL_CONNECTED:
                if self._ipcp_policy.address_refused:
                    reason = _("The server refused to assign an IPv4 address. Ask the server's administrator to check the address pool.")
                elif self._ipcp.terminated_by_peer:  # not a negotiation that never converged
                    reason = _(
                        "The server ended IPv4 on this link (IPCP Terminate-Request)."
                        " Connect again; if it keeps happening, ask the server's administrator to check its log."
                    )
                else:
                    reason = _(
                        "The server did not complete IPv4 configuration (IPCP)."
                        " Try again; if it keeps happening, the server's address pool may be exhausted."
                    )
                self._disconnect_with(Failure(Layer.IPCP, reason, FailureKind.PROTOCOL), now)
                return True
        while self._ipv6cp.notices:
            progressed = True
            notice = self._ipv6cp.notices.pop(0)
            if notice is Notice.UP:
                self._log(logging.INFO, _("IPv6 link is up."))
                if self._plan is not None:
                    self._publish_plan()
                    self._ask_dhcpv6(now)
            elif notice is Notice.FINISHED:
                self._log(logging.INFO, _("The server does not offer IPv6 on this link."))
        return progressed

    def _ipcp_up(self, now: float) -> None:
        policy = self._ipcp_policy
        if policy.address.is_unspecified:
            self._disconnect_with(
                Failure(
                    Layer.IPCP,
                    _("The server did not assign an IPv4 address. Ask the server's administrator to check the address pool."),
                    FailureKind.PROTOCOL,
                ),
                now,
            )
            return
        if not _usable_unicast(policy.address):  # e.g. 127.0.0.5 or 224.0.0.9 on the tunnel
            self._disconnect_with(
                Failure(
                    Layer.IPCP,
                    _(
                        "The server assigned the IPv4 address {address},"
                        " which cannot be the address of this computer. Ask the server's administrator to check the address pool."
                    ).format(address=policy.address),
                    FailureKind.PROTOCOL,
                ),
                now,
            )
            return
        self._publish_plan()
        self._set_state(State.CONNECTED)
        self._ask_dhcpv6(now)
        if self._inform is None and self.settings.dhcp_inform:
            self._inform = InformExchange(policy.address, self._rng(4), now)
            self._send_inform(now)

    def _send_inform(self, now: float) -> None:
        assert self._inform is not None
        for packet in self._inform.packets_due(now):
            self._out.append(b"\x10\x00" + (len(packet) + 8).to_bytes(2, "big") + IPV4_FRAME_PREFIX + packet)
        if self._inform.finished:
            self._log(
                logging.INFO, _("The VPN's DHCP server did not answer (DHCPINFORM): no routes or DNS domain beyond what the connection set up.")
            )
            self._inform = None

    def _inform_answered(self, packet: bytes) -> bool:
        """True when `packet` is the answer to our DHCPINFORM (it is consumed, not delivered)."""
        assert self._inform is not None
        settings = self._inform.answer(packet)
        if settings is None:
            return False
        self._inform = None
        if settings:
            self._events.append(NetworkPushed(settings))
        return True

    def _ask_dhcpv6(self, now: float) -> None:
        """Once the IPv6 link is in the published plan: one Information-request (dhcpv6)."""
        if self._dhcpv6_asked or not self.settings.dhcpv6 or self._plan is None or self._plan.ipv6_identifier is None:
            return
        self._dhcpv6_asked = True
        link_local = IPv6Address(b"\xfe\x80" + bytes(6) + self._plan.ipv6_identifier)
        self._dhcpv6 = InformationRequest(link_local, self._rng(3), now)
        self._send_dhcpv6(now)

    def _send_dhcpv6(self, now: float) -> None:
        assert self._dhcpv6 is not None
        for packet in self._dhcpv6.packets_due(now):
            self._send_ppp(PppProtocol.IPV6, packet)
        if self._dhcpv6.finished:
            self._log(logging.INFO, _("No DHCPv6 server answered: the DNS servers stay as the connection set them up."))
            self._dhcpv6 = None

    def _dhcpv6_answered(self, packet: bytes) -> bool:
        """True when `packet` is the Reply to our Information-request (consumed, not delivered)."""
        assert self._dhcpv6 is not None
        info = self._dhcpv6.answer(packet)
        if info is None:
            return False
        self._dhcpv6 = None
        self._events.append(Dhcpv6Answered(info))
        return True

    def _read_router_dns(self, packet: bytes) -> None:
        info = advertised_dns(packet)
        if info is not None and self.settings.dhcpv6:
            self._router_dns_told = True
            self._events.append(RouterAdvertisedDns(info))

    def _publish_plan(self) -> None:
        lcp = self._lcp.policy
        # A loopback or multicast "DNS server" would send the queries around the tunnel, or nowhere.
        dns = tuple(server for server in self._ipcp_policy.dns_servers if _usable_unicast(server))
        if dns != self._ipcp_policy.dns_servers and self._plan is None:
            ignored = ", ".join(str(server) for server in self._ipcp_policy.dns_servers if server not in dns)
            self._log(
                logging.INFO,
                _("Ignored the DNS servers {servers} offered by the server: they cannot be reached through the tunnel.").format(servers=ignored),
            )
        plan = NetworkPlan(
            address=self._ipcp_policy.address,
            peer=self._ipcp_policy.peer_address,
            dns=dns,
            mtu=min(lcp.mru, lcp.send_mru),
            ipv6_identifier=self._ipv6cp_policy.identifier if self._ipv6cp.is_opened else None,
        )
        if plan != self._plan:  # an NCP renegotiated to the same values: nothing to reconfigure
            self._plan = plan
            self._events.append(LinkConfigured(plan))

    # ----------------------------------------------------------------- teardown

    def _record(self, failure: Failure) -> None:
        if self._failure is None:  # the first cause is the one the user needs
            self._failure = failure
            self._log(logging.WARNING, failure.reason)

    def _disconnect_with(self, failure: Failure, now: float, lcp_done: bool = False) -> None:
        """A polite end: terminate PPP if it is up, then Call Disconnect."""
        self._record(failure)
        if self.call in (Call.LCP_CLOSING, Call.DISCONNECT_ACK_PENDING, Call.ABORT_PENDING, Call.CLOSED):
            return
        self._set_state(State.DISCONNECTING)
        if not lcp_done and self._lcp.fsm.state in (St.REQ_SENT, St.ACK_RCVD, St.ACK_SENT, St.OPENED):
            self.call = Call.LCP_CLOSING
            self._deadline = None
            self._lcp.fsm.close(now)
        else:
            self._send_call_disconnect(now)

    def _send_call_disconnect(self, now: float) -> None:
        self._set_state(State.DISCONNECTING)
        self._out.append(encode_control(MessageType.CALL_DISCONNECT))
        self.call = Call.DISCONNECT_ACK_PENDING
        self._hello_deadline = None
        self._deadline = now + DISCONNECT_WAIT

    def _abort(self, reason: str, now: float) -> None:
        """A protocol violation by the server: Call Abort, then wait briefly for its answer."""
        self._record(
            Failure(
                Layer.SSTP,
                # Translators: {reason} is a whole sentence saying what the server did wrong
                _("{reason} The connection was aborted; report this to the server's administrator if it persists.").format(reason=reason),
                FailureKind.PROTOCOL,
            )
        )
        self._set_state(State.DISCONNECTING)
        self._out.append(encode_control(MessageType.CALL_ABORT))
        self.call = Call.ABORT_PENDING
        self._hello_deadline = None
        self._deadline = now + ABORT_WAIT

    def _drop(self, failure: Failure) -> None:
        """End at once without a word to the server (framing lost, link dead)."""
        self._record(failure)
        self._close()

    def _close(self) -> None:
        if self.call is Call.CLOSED:
            return
        self.call = Call.CLOSED
        self._deadline = self._hello_deadline = None
        self._set_state(State.DISCONNECTED)
        self._events.append(Disconnected(self._failure))

    # ----------------------------------------------------------------- helpers

    def _set_state(self, state: State) -> None:
        if state is not self._state:
            self._state = state
            self._events.append(StateChanged(state))

    def _log(self, level: int, message: str) -> None:
        self._events.append(LogRecord(level, message))


def _status_name(status: int) -> str:
    try:
        return AttributeStatus(status).name.lower().replace("_", " ")
    except ValueError:
        # Translators: an SSTP status the client knows only by its number
        return _("status {status}").format(status=status)


def attribute_names() -> dict[int, str]:
    """[MS-SSTP] 2.2.8 Status Info: the attribute a status is about, in words."""
    return {
        # Translators: the names of SSTP attributes, in "(status 6: retry count exceeded, about the crypto binding attribute)"
        AttributeId.ENCAPSULATED_PROTOCOL_ID: _("encapsulated protocol"),
        AttributeId.STATUS_INFO: _("status info"),
        AttributeId.CRYPTO_BINDING: _("crypto binding"),
        AttributeId.CRYPTO_BINDING_REQ: _("crypto binding request"),
    }


def _status_detail(message: ControlMessage) -> str:
    """ " (status 6: retry count exceeded, about the crypto binding attribute)" for the Status
    Info attribute of a Call Abort or Call Disconnect, or "" when it has none (or a broken one)."""
    attribute = message.attribute(AttributeId.STATUS_INFO)
    if attribute is None:
        return ""
    try:
        info = parse_status_info(attribute.value)
    except MalformedPacket:
        return ""
    known = info.status in AttributeStatus._value2member_map_  # then named as in [MS-SSTP], not translated
    # Translators: an SSTP status the client does not know, in " (status 9: unknown status)"
    words = AttributeStatus(info.status).name.lower().replace("_", " ") if known else _("unknown status")
    names = attribute_names()
    if info.attribute_id in names:
        # Translators: the attribute a status is about: " (status 6: retry count exceeded, about the crypto binding attribute)"
        about = _(", about the {attribute} attribute").format(attribute=names[info.attribute_id])
    elif info.attribute_id:
        # Translators: as above, for an attribute known only by its number
        about = _(", about attribute {number}").format(number=info.attribute_id)
    else:
        about = ""
    # Translators: follows "The server aborted the call" or "The server ended the session"; {about} may be empty
    return _(" (status {status}: {words}{about})").format(status=info.status, words=words, about=about)


def _usable_unicast(address: IPv4Address) -> bool:
    """An address a host on the tunnel can have: not loopback, multicast, 0.0.0.0/8 or 240/4."""
    return not (address.is_loopback or address.is_multicast or address.is_reserved or address in THIS_NETWORK)


def _protocol_name(protocol: int) -> str:
    try:
        return PppProtocol(protocol).name
    except ValueError:
        return f"protocol {protocol:#06x}"


# Authentication-Protocol option data of methods we know by name but do not implement.
OTHER_METHOD_NAMES = {b"\xc2\x23\x80": "MS-CHAPv1", b"\xc2\x23\x06": "SHA-1 CHAP", b"\xc0\x27": "SPAP"}


def _method_name(method: AuthMethod | bytes) -> str:
    if isinstance(method, AuthMethod):
        return method.name.replace("_", "-")
    if bytes(method) in OTHER_METHOD_NAMES:
        return OTHER_METHOD_NAMES[bytes(method)]
    # Translators: an authentication method the client does not know, with the bytes that name it
    return _("unknown ({code})").format(code=bytes(method).hex())


def looped_back_sentence() -> str:
    return _(
        "The PPP link to the server is looped back: every frame this client sends comes straight back "
        "(its own LCP magic number returned again and again), so nothing at the far end speaks PPP. The "
        "server is misconfigured (for example its SSTP front end echoes frames instead of handing them to "
        "PPP); tell its administrator."
    )


def no_authentication_sentence() -> str:
    return _(
        "The server asked for no authentication, which this client refuses: nothing would bind the tunnel "
        "to your account, so a misconfigured server or an impostor holding a valid certificate could carry "
        "your traffic. Ask the server's administrator to require MS-CHAPv2 or EAP."
    )


# The profile settings (named by their command-line flags, as client/ sentences do) that allow a method.
ALLOW_FLAGS = {AuthMethod.PAP: "--allow-pap", AuthMethod.CHAP_MD5: "--allow-chap-md5"}


def _no_allowed_method(refused: list[AuthMethod | bytes]) -> Failure:
    names = ", ".join(map(_method_name, refused))
    allowable = [f"{_method_name(m)} ({ALLOW_FLAGS[m]})" for m in refused if isinstance(m, AuthMethod) and m in ALLOW_FLAGS]
    offers = _("The server offers only {names}, which this profile does not allow.").format(names=names)
    if not allowable:
        advice = _("Allow it in the profile only if you trust the network path, or ask the administrator to enable MS-CHAPv2.")
    else:
        methods = allowable[0]
        for method in allowable[1:]:
            # Translators: two authentication methods the user may allow: "PAP (--allow-pap) or CHAP-MD5 (--allow-chap-md5)"
            methods = _("{first} or {second}").format(first=methods, second=method)
        advice = _("Allow {methods} in the profile only if you trust the network path, or ask the administrator to enable MS-CHAPv2.").format(
            methods=methods
        )
    return Failure(Layer.AUTH, f"{offers} {advice}", FailureKind.AUTHENTICATION)


E = Engine
CONTROL_TABLE: dict[tuple[Call, int], Callable[[Engine, ControlMessage, float], None]] = {
    (Call.CONNECT_REQUEST_SENT, MessageType.CALL_CONNECT_ACK): E._on_connect_ack,
    (Call.CONNECT_REQUEST_SENT, MessageType.CALL_CONNECT_NAK): E._on_connect_nak,
    **{(state, MessageType.ECHO_REQUEST): E._on_echo_request for state in LIVE},
    **{(state, MessageType.ECHO_RESPONSE): E._ignore for state in LIVE},
    **{(state, MessageType.CALL_ABORT): E._on_peer_abort for state in LIVE},
    **{(state, MessageType.CALL_DISCONNECT): E._on_peer_disconnect for state in (*LIVE, Call.DISCONNECT_ACK_PENDING)},
    (Call.DISCONNECT_ACK_PENDING, MessageType.CALL_DISCONNECT_ACK): E._on_disconnect_ack,
    (Call.ABORT_PENDING, MessageType.CALL_ABORT): E._on_abort_reply,
}
del E
