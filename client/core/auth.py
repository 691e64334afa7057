"""PPP authentication from the client's side (the authenticatee): PAP (RFC 1334), CHAP-MD5
(RFC 1994), MS-CHAPv2 (RFC 2759) and EAP (RFC 3748) with EAP-MSCHAPv2 and EAP-MD5.

Each method is a small sans-IO machine: the engine feeds it the information field of every
frame with its protocol number and takes out the information fields to send. It finishes by
setting `outcome` once: `AuthSucceeded(hlak)` (the key for the SSTP crypto binding) or a
`Failure` with the sentence the user reads. Peer input never raises: a packet that does not
parse is dropped (RFC 1661 / RFC 3748 say so) with a log line; a packet that parses but makes
no sense becomes a `Failure`.

Log lines name the user but never contain the password or anything derived from it.

A server that asks for no authentication (no Authentication-Protocol option in its LCP
Configure-Request) is refused unless the connection explicitly allows it (`allow_no_auth`,
`sstp-vpn connect --allow-no-auth`). Without authentication the SSTP crypto binding is computed
with a zero HLAK ([MS-SSTP] 3.2.5.2), so nothing ties the tunnel to a user or to a secret the
server shares with us: the only thing that identifies the server is its TLS certificate. A genuine
remote-access server always authenticates its users, so one that skips authentication is either
misconfigured (and hands the tunnel to anyone) or an impostor that merely holds a certificate our
trust store accepts and wants our traffic. Neither is a server to send traffic to without the
user saying so.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import mschapv2
from .crypto_binding import NO_KEY_HLAK, hlak_from_master_keys, hlak_from_msk
from .events import Credentials
from .i18n import _
from .ppp_codec import ControlPacket, MalformedPacket, PppProtocol, encode_packet, parse_packet
from .types import Failure, FailureKind, Layer

if TYPE_CHECKING:  # eap_tls (ssl, cryptography through trust) is loaded only for EAP-TLS and PEAP
    from .eap_tls import TlsMethodSettings, TunnelMethod

Rng = Callable[[int], bytes]
WHERE = Layer.AUTH


class AuthMethod(enum.Enum):
    """An authentication method; the value is its LCP Authentication-Protocol option data."""

    PAP = b"\xc0\x23"
    CHAP_MD5 = b"\xc2\x23\x05"
    MSCHAPV2 = b"\xc2\x23\x81"
    EAP = b"\xc2\x27"

    @property
    def option_data(self) -> bytes:
        return self.value

    @property
    def protocol(self) -> int:
        return PppProtocol(int.from_bytes(self.value[:2], "big"))

    @classmethod
    def from_option_data(cls, data: bytes) -> AuthMethod | None:
        """The method an Authentication-Protocol option names, or None if we do not know it
        (MS-CHAP v1, SHA-1 CHAP, ...)."""
        return cls._value2member_map_.get(bytes(data))  # type: ignore[return-value]


@dataclass(frozen=True)
class AuthPolicy:
    """What the profile allows besides MS-CHAPv2 and EAP (EAP-MSCHAPv2), which are always on.
    EAP-MD5 counts as CHAP-MD5: both let an eavesdropper test passwords offline."""

    allow_pap: bool = False
    allow_chap_md5: bool = False
    tls_method: TlsMethodSettings | None = None  # EAP-TLS or PEAP (eap_tls.py, peap.py), when the profile sets one up
    allow_no_auth: bool = False  # a server that asks for no authentication (see the module docstring)

    def allowed_methods(self) -> list[AuthMethod]:
        """Allowed methods, most preferred first."""
        if self.tls_method is not None:
            return [AuthMethod.EAP]  # the profile asks for EAP-TLS or PEAP: nothing else will do
        methods = [AuthMethod.MSCHAPV2, AuthMethod.EAP]
        if self.allow_chap_md5:
            methods.append(AuthMethod.CHAP_MD5)
        if self.allow_pap:
            methods.append(AuthMethod.PAP)
        return methods


@dataclass(frozen=True)
class AuthSucceeded:
    hlak: bytes = field(repr=False)  # 32 bytes for the crypto binding; zeros when the method has no keys


# --- sentences the user reads -----------------------------------------------------------------


def refused_sentence() -> str:
    return _("The server refused the user name or password. Check them and try again.")


def impostor_sentence() -> str:
    return _(
        "The server could not prove it knows your password (bad MS-CHAPv2 authenticator response): "
        "it may be an impostor. Do not use this connection, and tell the server's administrator."
    )


def skipped_sentence() -> str:
    return _(
        "The server declared the login successful without completing authentication, which a genuine "
        "server never does: it may be an impostor. Do not use this connection, and tell the server's administrator."
    )


def pap_timeout_sentence() -> str:
    return _(
        "The server did not answer the PAP login request after 10 tries in 30 seconds. Try again; if it "
        "keeps happening, ask the server's administrator whether PAP logins are enabled."
    )


def pap_too_long_sentence() -> str:
    return _(
        "The user name or password is longer than the 255 bytes a PAP login can carry. "
        "Use shorter credentials or ask the administrator for MS-CHAPv2."
    )


def malformed_challenge_sentence(method: str) -> str:
    """`method`: the protocol name ("CHAP", "MS-CHAPv2", "EAP-MD5", "EAP-MSCHAPv2")."""
    return _(
        "The server sent a malformed {method} challenge. Try again; if it keeps happening, ask the "
        "server's administrator to check its authentication settings."
    ).format(method=method)


def mschapv2_errors() -> dict[int, str]:
    """The sentence for each MS-CHAPv2 E= code we explain."""
    return {
        646: _(
            "The server refused the login because your account may not sign in at this time of day. "
            "Try again during your permitted hours or ask your administrator."
        ),
        647: _("The server refused the login because your account is disabled. Ask your administrator to enable it."),
        648: _(
            "The server refused the login because the password has expired. Change it (for example by signing in "
            "to a computer of your organisation, or with your administrator's help), then connect again."
        ),
        649: _("The server refused the login because your account has no dial-in permission. Ask your administrator to allow remote access for it."),
        691: refused_sentence(),
        709: _("The server failed to change your password. Change it with your administrator's tools, then try again."),
    }


METHOD_NAMES = {AuthMethod.PAP: "PAP", AuthMethod.CHAP_MD5: "CHAP-MD5", AuthMethod.MSCHAPV2: "MS-CHAPv2", AuthMethod.EAP: "EAP"}

EAP_TYPE_NAMES = {4: "EAP-MD5", 5: "EAP-OTP", 6: "EAP-GTC", 13: "EAP-TLS", 21: "EAP-TTLS", 25: "PEAP", 43: "EAP-FAST"}
EXPANDED_EAP_TYPE = 254


def eap_type_name(eap_type: int) -> str:
    """An EAP method as people know it, for sentences and log lines."""
    if eap_type == EXPANDED_EAP_TYPE:
        # Translators: stands for an EAP method in a list ("The server requires EAP-TLS, an expanded EAP type, ...")
        return _("an expanded EAP type")
    if eap_type in EAP_TYPE_NAMES:
        return EAP_TYPE_NAMES[eap_type]
    # Translators: an EAP method known only by its number
    return _("EAP type {number}").format(number=eap_type)


def mschapv2_error_sentence(code: int | None) -> str:
    """The sentence for the E= code of an MS-CHAPv2 Failure message (None: no code found)."""
    if code is None:
        return refused_sentence()
    known = mschapv2_errors()
    if code in known:
        return known[code]
    return _(
        "The server refused the login with MS-CHAPv2 error {code}. Check the user name and password, or ask your administrator what the error means."
    ).format(code=code)


def refuses_password(code: int | None) -> bool:
    """An MS-CHAPv2 Failure that says the password was wrong (691, or no code at all), not that
    the account may not sign in (646-649) or a password change failed (709)."""
    return code is None or code == 691


_ERROR_CODE = re.compile(rb"(?:^|\s)E=(\d{1,10})(?:\s|$)")


def parse_mschapv2_error(message: bytes) -> int | None:
    """The E= code of "E=691 R=0 C=... V=3 M=...", or None."""
    match = _ERROR_CODE.search(message)
    return int(match.group(1)) if match else None


def printable_text(data: bytes, limit: int = 200) -> str | None:
    """A server-supplied message fit to show a user, or None (binary, control characters)."""
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return None
    if not text or not text.isprintable():
        return None
    return text if len(text) <= limit else text[:limit] + "…"


MESSAGE_LIMIT = 200
# What servers say that repeats the sentence we already give: not worth appending to it.
GENERIC_MESSAGES = frozenset(
    {
        "authentication failure",
        "authentication failed",
        "access denied",
        "login incorrect",
        "login failed",
        "bad username or password",
        "wrong secret",
        "e=691",
        "unauthorized",
        "error",
    }
)


def server_message(data: bytes) -> str | None:
    """A message from the server (PAP, CHAP, MS-CHAPv2 M=) fit to show a user: decoded leniently,
    control characters removed, white space collapsed, at most MESSAGE_LIMIT characters."""
    text = bytes(data).decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())
    if not text:
        return None
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + "…"


def adds_information(text: str | None, sentence: str = "") -> bool:
    """Whether a server's message tells more than `sentence`: not a stock phrase, and not made
    only of words the sentence already has ("Password expired" after ours about expiry)."""
    if text is None or text.lower().strip(" .!") in GENERIC_MESSAGES:
        return False
    said = set(re.findall(r"\w+", sentence.lower()))
    return not set(re.findall(r"\w+", text.lower())) <= said


def with_server_message(sentence: str, text: str | None) -> str:
    """The sentence, plus what the server said when that tells the user more."""
    if not adds_information(text, sentence):
        return sentence
    # Translators: {sentence} is a whole sentence of ours; {text} is what the server said, quoted
    return _('{sentence} The server said: "{text}".').format(sentence=sentence, text=text)


# " M=" normally; Windows Server 2019 leaves out the space after the S= value (pppd accepts that too).
_MESSAGE_FIELD = re.compile(rb"(?:^|\s|(?<=[0-9A-Fa-f]))M=(.*)\Z", re.S)
_RETRY_FIELD = re.compile(rb"(?:^|\s)R=([01])(?:\s|$)")
_CHALLENGE_FIELD = re.compile(rb"(?:^|\s)C=([0-9A-Fa-f]{32})(?:\s|$)")


def mschapv2_message(message: bytes) -> str | None:
    """The M= text of an MS-CHAPv2 Success or Failure message (it runs to the end), or None."""
    match = _MESSAGE_FIELD.search(message)
    return server_message(match.group(1)) if match else None


def mschapv2_retry_challenge(message: bytes) -> bytes | None:
    """The new authenticator challenge of a Failure that allows a retry (R=1 C=...), or None."""
    retry, challenge = _RETRY_FIELD.search(message), _CHALLENGE_FIELD.search(message)
    if retry is None or retry.group(1) != b"1" or challenge is None:
        return None
    return bytes.fromhex(challenge.group(1).decode("ascii"))


def _describe(data: bytes) -> str:
    """A server-supplied string for a log line."""
    text = printable_text(data)
    if text is not None:
        return repr(text)
    return f"({len(data)} bytes, not printable)" if data else "(empty)"


# --- the machines ------------------------------------------------------------------------------


class Authenticatee:
    """Base of the per-method machines. Subclasses implement `_receive_packet`."""

    method: AuthMethod

    def __init__(self, credentials: Credentials, policy: AuthPolicy = AuthPolicy(), rng: Rng = secrets.token_bytes) -> None:
        self.protocol: int = self.method.protocol
        self.outcome: AuthSucceeded | Failure | None = None
        self._credentials = credentials
        self._policy = policy
        self._rng = rng
        self._output: list[bytes] = []
        self._logs: list[str] = []
        self._messages: list[str] = []  # what the server said, for the user (INFO log lines)
        # Set while the server allows another try (MS-CHAPv2 R=1) and waits for a new password:
        # the sentence for the refusal. `retry_with()` answers it.
        self.retry_prompt: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} user={self._credentials.username!r} outcome={self.outcome!r}>"

    @property
    def method_name(self) -> str:
        """The method as people know it ("MS-CHAPv2", "EAP-MSCHAPv2", ...), for status displays."""
        return METHOD_NAMES[self.method]

    @property
    def _username(self) -> bytes:
        return self._credentials.username.encode("utf-8")

    @property
    def _secret(self) -> bytes:
        """The password as PAP and the MD5 methods send or hash it."""
        return self._credentials.password.encode("utf-8")

    # The engine's side of the interface.

    def start(self, now: float) -> None:
        """The authentication phase begins (LCP Opened)."""

    def receive(self, information: bytes, now: float) -> None:
        """The information field of a frame with `self.protocol`."""
        try:
            packet = parse_packet(information)
        except MalformedPacket as error:
            self._log(f"dropped a malformed {self.method.name} packet ({error})")
            return
        self._receive_packet(packet, now)

    def handle_timer(self, now: float) -> None:
        pass

    def get_timer(self) -> float | None:
        return None

    def take_output(self) -> list[bytes]:
        output, self._output = self._output, []
        return output

    def take_logs(self) -> list[str]:
        logs, self._logs = self._logs, []
        return logs

    def take_messages(self) -> list[str]:
        """Messages from the server (already cleaned for display) since the last call."""
        messages, self._messages = self._messages, []
        return messages

    def retry_with(self, password: str | None) -> None:
        """The user's answer to `retry_prompt`: a new password, or None to give up."""

    # For subclasses.

    def _receive_packet(self, packet: ControlPacket, now: float) -> None:
        raise NotImplementedError

    def _log(self, line: str) -> None:
        self._logs.append(f"{self.method.name}: {line}")

    def _tell(self, text: str | None) -> None:
        if text:
            self._messages.append(text)

    def _send(self, information: bytes) -> None:
        self._output.append(information)

    def _succeed(self, hlak: bytes) -> None:
        if self.outcome is None:
            self.outcome = AuthSucceeded(hlak)
            self._log("authentication succeeded")

    def _fail(self, reason: str, kind: FailureKind, password_refused: bool = False) -> None:
        if self.outcome is None:
            self.outcome = Failure(WHERE, reason, kind, password_refused)
            self._log(f"authentication failed: {reason}")


class PapClient(Authenticatee):
    """PAP: send the name and password until the server acks or naks (RFC 1334 2)."""

    method = AuthMethod.PAP
    RESTART_INTERVAL = 3.0
    MAX_REQUESTS = 10  # transmissions in all, like the LCP Max-Configure counter

    REQUEST, ACK, NAK = 1, 2, 3

    def __init__(self, credentials: Credentials, policy: AuthPolicy = AuthPolicy(), rng: Rng = secrets.token_bytes) -> None:
        super().__init__(credentials, policy, rng)
        self._identifier = 0
        self._sent_identifiers: set[int] = set()
        self._requests_sent = 0
        self._deadline: float | None = None

    def start(self, now: float) -> None:
        if self._requests_sent or self.outcome is not None:
            return
        if len(self._username) > 255 or len(self._secret) > 255:
            self._fail(pap_too_long_sentence(), FailureKind.AUTHENTICATION)
            return
        self._send_request(now)

    def _send_request(self, now: float) -> None:
        # RFC 1334 2.2.1: the Identifier changes with every request sent, retransmissions included.
        self._identifier = (self._identifier + 1) & 0xFF
        self._sent_identifiers.add(self._identifier)
        self._requests_sent += 1
        username, secret = self._username, self._secret
        data = bytes((len(username),)) + username + bytes((len(secret),)) + secret
        self._send(encode_packet(self.REQUEST, self._identifier, data))
        self._deadline = now + self.RESTART_INTERVAL
        self._log(f"sent login request {self._identifier} for {self._credentials.username!r} (try {self._requests_sent})")

    def handle_timer(self, now: float) -> None:
        if self.outcome is not None or self._deadline is None or now < self._deadline:
            return
        if self._requests_sent >= self.MAX_REQUESTS:
            self._deadline = None
            self._fail(pap_timeout_sentence(), FailureKind.AUTHENTICATION)
        else:
            self._send_request(now)

    def get_timer(self) -> float | None:
        return self._deadline if self.outcome is None else None

    def _receive_packet(self, packet: ControlPacket, now: float) -> None:
        if packet.code not in (self.ACK, self.NAK):
            self._log(f"ignored a packet with code {packet.code}")
            return
        if packet.identifier not in self._sent_identifiers:
            self._log(f"ignored a reply to request {packet.identifier}, which we never sent")
            return
        if self.outcome is not None:
            self._log("ignored a reply after authentication finished")
            return
        message = self._message(packet.data)
        self._deadline = None
        text = server_message(message)
        self._tell(text)
        if packet.code == self.ACK:
            self._log(f"server accepted the login, message {_describe(message)}")
            self._succeed(NO_KEY_HLAK)
        else:
            self._log(f"server refused the login, message {_describe(message)}")
            self._fail(_refused(text), FailureKind.AUTHENTICATION, password_refused=True)

    @staticmethod
    def _message(data: bytes) -> bytes:
        """Msg-Length + Message; a bad length only loses the message, not the verdict."""
        if not data or 1 + data[0] > len(data):
            return b""
        return data[1 : 1 + data[0]]


def _refused(text: str | None) -> str:
    """refused_sentence(), quoting the server's message when it tells more."""
    refused = refused_sentence()
    if not adds_information(text, refused):
        return refused
    return _('The server refused the user name or password ("{text}"). Check them and try again.').format(text=text)


def _parse_value_and_name(data: bytes) -> tuple[bytes, bytes] | None:
    """Value-Size, Value, Name (RFC 1994 4.1 Challenge layout), or None if it does not fit."""
    if not data or data[0] == 0 or 1 + data[0] > len(data):
        return None
    return data[1 : 1 + data[0]], data[1 + data[0] :]


def _md5_response(identifier: int, secret: bytes, challenge: bytes) -> bytes:
    return hashlib.md5(bytes((identifier,)) + secret + challenge, usedforsecurity=False).digest()


class _ChapClient(Authenticatee):
    """The CHAP packet flow shared by CHAP-MD5 and MS-CHAPv2 (RFC 1994 4)."""

    CHALLENGE, RESPONSE, SUCCESS, FAILURE = 1, 2, 3, 4

    def __init__(self, credentials: Credentials, policy: AuthPolicy = AuthPolicy(), rng: Rng = secrets.token_bytes) -> None:
        super().__init__(credentials, policy, rng)
        self._answered_identifier: int | None = None
        self._response: bytes | None = None  # the last Response sent, for retransmitted Challenges
        self._verdict_identifier = 0  # of the last Failure

    def _receive_packet(self, packet: ControlPacket, now: float) -> None:
        if packet.code == self.CHALLENGE:
            if self._response is not None and packet.identifier == self._answered_identifier:
                # The server did not get our Response and repeats its Challenge (same Identifier).
                self._send(self._response)
                self._log(f"resent the response to repeated challenge {packet.identifier}")
            elif self.outcome is not None and not self._answers_new_challenges():
                self._log(f"ignored challenge {packet.identifier} after authentication finished")
            else:
                response = self._answer(packet)
                if response is not None:
                    self._answered_identifier, self._response = packet.identifier, response
                    self._send(response)
        elif packet.code in (self.SUCCESS, self.FAILURE):
            if self._response is None or packet.identifier != self._answered_identifier:
                self._log(f"ignored a verdict for identifier {packet.identifier}, which we did not answer")
            elif self.outcome is not None:
                self._log("ignored a verdict after authentication finished")
            elif packet.code == self.SUCCESS:
                self._on_success(packet.data)
            else:
                self._verdict_identifier = packet.identifier
                self._on_failure(packet.data)
        else:
            self._log(f"ignored a packet with code {packet.code}")

    def _answers_new_challenges(self) -> bool:
        """Whether a new Challenge after the verdict (re-authentication) is answered."""
        return False

    def _answer(self, packet: ControlPacket) -> bytes | None:
        raise NotImplementedError

    def _on_success(self, message: bytes) -> None:
        raise NotImplementedError

    def _on_failure(self, message: bytes) -> None:
        raise NotImplementedError


class ChapMd5Client(_ChapClient):
    """CHAP with MD5 (algorithm 5). No keys: the crypto binding uses a zero HLAK."""

    method = AuthMethod.CHAP_MD5

    def _answers_new_challenges(self) -> bool:
        return True  # RFC 1994 allows periodic re-challenges; answering one is stateless

    def _answer(self, packet: ControlPacket) -> bytes | None:
        parsed = _parse_value_and_name(packet.data)
        if parsed is None:
            self._fail(malformed_challenge_sentence("CHAP"), FailureKind.PROTOCOL)
            return None
        challenge, name = parsed
        digest = _md5_response(packet.identifier, self._secret, challenge)
        self._log(f"answered challenge {packet.identifier} from server {_describe(name)} as {self._credentials.username!r}")
        return encode_packet(self.RESPONSE, packet.identifier, bytes((len(digest),)) + digest + self._username)

    def _on_success(self, message: bytes) -> None:
        self._log(f"server accepted the login, message {_describe(message)}")
        self._tell(server_message(message))
        self._succeed(NO_KEY_HLAK)

    def _on_failure(self, message: bytes) -> None:
        self._log(f"server refused the login, message {_describe(message)}")
        text = server_message(message)
        self._tell(text)
        self._fail(_refused(text), FailureKind.AUTHENTICATION, password_refused=True)


@dataclass(frozen=True)
class MsChapV2Exchange:
    """One answered MS-CHAPv2 challenge: what we sent and what a genuine server will prove."""

    response_value: bytes = field(repr=False)  # PeerChallenge, 8 zeros, NT-Response, Flags (49 bytes)
    expected_authenticator_response: bytes = field(repr=False)
    hlak: bytes = field(repr=False)

    @classmethod
    def answer(cls, authenticator_challenge: bytes, credentials: Credentials, rng: Rng) -> MsChapV2Exchange:
        peer_challenge = rng(mschapv2.CHALLENGE_SIZE)
        username, password = credentials.username, credentials.password
        nt_response = mschapv2.nt_response(authenticator_challenge, peer_challenge, username, password)
        return cls(
            response_value=peer_challenge + bytes(8) + nt_response + b"\x00",
            expected_authenticator_response=mschapv2.authenticator_response(password, nt_response, peer_challenge, authenticator_challenge, username),
            hlak=hlak_from_master_keys(mschapv2.client_master_keys(password, nt_response)),
        )

    def server_proved(self, success_message: bytes) -> bool:
        return mschapv2.authenticator_response_matches(success_message, self.expected_authenticator_response)


def _parse_mschapv2_challenge(data: bytes) -> tuple[bytes, bytes] | None:
    parsed = _parse_value_and_name(data)
    if parsed is None or len(parsed[0]) != mschapv2.CHALLENGE_SIZE:
        return None
    return parsed


class MsChapV2Client(_ChapClient):
    """MS-CHAPv2 (CHAP algorithm 0x81): mutual authentication; the HLAK is the client's MPPE
    MasterSendKey || MasterReceiveKey."""

    method = AuthMethod.MSCHAPV2
    MAX_RETRIES = 3  # new passwords tried in one session after Failures with R=1
    NO_RETRY_ERRORS = frozenset({646, 647, 648, 649, 709})  # another password cannot help

    def __init__(self, credentials: Credentials, policy: AuthPolicy = AuthPolicy(), rng: Rng = secrets.token_bytes) -> None:
        super().__init__(credentials, policy, rng)
        self._exchange: MsChapV2Exchange | None = None
        self._retries = 0
        self._retry_challenge: tuple[int, bytes] | None = None  # (identifier to answer with, challenge)

    def _answer(self, packet: ControlPacket) -> bytes | None:
        parsed = _parse_mschapv2_challenge(packet.data)
        if parsed is None:
            self._fail(malformed_challenge_sentence("MS-CHAPv2"), FailureKind.PROTOCOL)
            return None
        challenge, name = parsed
        if self.retry_prompt is not None:
            # A new Challenge while the user types the new password: answer this one then.
            self._retry_challenge = (packet.identifier, challenge)
            self._log(f"keeps challenge {packet.identifier} for the retry")
            return None
        self._log(f"answered challenge {packet.identifier} from server {_describe(name)} as {self._credentials.username!r}")
        return self._respond(packet.identifier, challenge)

    def _respond(self, identifier: int, challenge: bytes) -> bytes:
        self._exchange = MsChapV2Exchange.answer(challenge, self._credentials, self._rng)
        value = self._exchange.response_value
        # The Name field carries the full name, domain included; only the hash drops the domain.
        return encode_packet(self.RESPONSE, identifier, bytes((len(value),)) + value + self._username)

    def _on_success(self, message: bytes) -> None:
        if self._exchange is not None and self._exchange.server_proved(message):
            self._log("the server proved it knows the password")
            self._tell(mschapv2_message(message))  # MikroTik sends no M= at all: nothing to show
            self._succeed(self._exchange.hlak)
        else:
            self._log(f"the server's Success message does not hold the expected proof: {_describe(message[:42])}")
            self._fail(impostor_sentence(), FailureKind.PROTOCOL)

    def _on_failure(self, message: bytes) -> None:
        self._log(f"server refused the login: {_describe(message)}")
        code = parse_mschapv2_error(message)
        text = mschapv2_message(message)
        self._tell(text)
        sentence = with_server_message(mschapv2_error_sentence(code), text)
        challenge = mschapv2_retry_challenge(message)
        if challenge is not None and code not in self.NO_RETRY_ERRORS and self._retries < self.MAX_RETRIES:
            # RFC 2759 6: R=1 lets the peer try again with a new password; C= is the challenge to
            # answer, and the retried Response carries the Failure's Identifier plus one.
            self._retry_challenge = ((self._verdict_identifier + 1) & 0xFF, challenge)
            self.retry_prompt = sentence
            self._log("the server allows another try (R=1); waiting for a new password")
            return
        self._fail(sentence, FailureKind.AUTHENTICATION, password_refused=refuses_password(code))

    def retry_with(self, password: str | None) -> None:
        if self.retry_prompt is None or self._retry_challenge is None:
            return
        sentence, self.retry_prompt = self.retry_prompt, None
        if password is None:
            self._fail(sentence, FailureKind.AUTHENTICATION)
            return
        self._retries += 1
        self._credentials = Credentials(self._credentials.username, password)
        identifier, challenge = self._retry_challenge
        self._retry_challenge = None
        self._answered_identifier, self._response = identifier, self._respond(identifier, challenge)
        self._send(self._response)
        self._log(f"answered with a new password (retry {self._retries}), identifier {identifier}")


class EapClient(Authenticatee):
    """EAP (RFC 3748) as the peer, with EAP-MSCHAPv2 (draft-kamath-pppext-eap-mschapv2) and,
    when the profile allows CHAP-MD5, EAP-MD5. Every other method gets a Nak."""

    method = AuthMethod.EAP

    REQUEST, RESPONSE, SUCCESS, FAILURE = 1, 2, 3, 4
    IDENTITY, NOTIFICATION, NAK, MD5_CHALLENGE, MSCHAPV2 = 1, 2, 3, 4, 26
    MS_CHALLENGE, MS_RESPONSE, MS_SUCCESS, MS_FAILURE = 1, 2, 3, 4

    def __init__(self, credentials: Credentials, policy: AuthPolicy = AuthPolicy(), rng: Rng = secrets.token_bytes) -> None:
        super().__init__(credentials, policy, rng)
        self._last_identifier: int | None = None
        self._last_response: bytes | None = None
        self._exchange: MsChapV2Exchange | None = None
        self._method_hlak: bytes | None = None  # set when a method finished on our side
        self._inner_method = "EAP"  # the EAP method that finished on our side
        self._refused_types: list[int] = []
        self._tunnel: TunnelMethod | None = None  # EAP-TLS or PEAP, once the server started one

    @property
    def method_name(self) -> str:
        return self._inner_method

    @property
    def acceptable_types(self) -> list[int]:
        if self._policy.tls_method is not None:
            return [self._policy.tls_method.method.eap_type]
        return [self.MSCHAPV2] + ([self.MD5_CHALLENGE] if self._policy.allow_chap_md5 else [])

    def _receive_packet(self, packet: ControlPacket, now: float) -> None:
        if packet.code == self.REQUEST:
            self._on_request(packet)
        elif packet.code == self.SUCCESS:
            self._on_eap_success()
        elif packet.code == self.FAILURE:
            self._on_eap_failure()
        else:
            self._log(f"ignored a packet with code {packet.code}")

    def _on_request(self, packet: ControlPacket) -> None:
        if not packet.data:
            self._log(f"dropped request {packet.identifier}, which has no type")
            return
        if self._last_response is not None and packet.identifier == self._last_identifier:
            # RFC 3748 4.1: a duplicate Request gets the original Response, without reprocessing.
            self._send(self._last_response)
            self._log(f"resent the response to repeated request {packet.identifier}")
            return
        if self.outcome is not None:
            self._log(f"ignored request {packet.identifier} after authentication finished")
            return
        request_type, type_data = packet.data[0], packet.data[1:]
        response: bytes | None  # None: nothing to answer
        if request_type == self.IDENTITY:
            self._log(f"server asked who we are (prompt {_describe(type_data)}); answered {self._credentials.username!r}")
            response = bytes((self.IDENTITY,)) + self._username
        elif request_type == self.NOTIFICATION:
            self._log(f"server notification: {_describe(type_data)}")
            response = bytes((self.NOTIFICATION,))
        elif request_type == self.MSCHAPV2 and self._policy.tls_method is None:
            response = self._on_mschapv2(type_data)
        elif request_type == self.MD5_CHALLENGE and self._policy.allow_chap_md5 and self._policy.tls_method is None:
            response = self._on_md5(packet.identifier, type_data)
        elif self._policy.tls_method is not None and request_type == self._policy.tls_method.method.eap_type:
            response = self._on_tunnel_method(request_type, type_data)
        else:
            response = self._nak(request_type)
        if response is not None:
            information = encode_packet(self.RESPONSE, packet.identifier, response)
            self._last_identifier, self._last_response = packet.identifier, information
            self._send(information)

    def _nak(self, request_type: int) -> bytes:
        # Legacy Nak (RFC 3748 5.3.1) listing what we accept; never empty, as MS-CHAPv2 always is.
        if request_type not in self._refused_types:
            self._refused_types.append(request_type)
        name = eap_type_name(request_type)
        self._log(f"refused {name}; proposed types {self.acceptable_types}")
        return bytes((self.NAK, *self.acceptable_types))

    def _on_md5(self, identifier: int, type_data: bytes) -> bytes | None:
        parsed = _parse_value_and_name(type_data)
        if parsed is None:
            self._fail(malformed_challenge_sentence("EAP-MD5"), FailureKind.PROTOCOL)
            return None
        challenge, name = parsed
        digest = _md5_response(identifier, self._secret, challenge)
        self._method_hlak = NO_KEY_HLAK
        self._inner_method = "EAP-MD5"
        self._log(f"answered EAP-MD5 challenge {identifier} from server {_describe(name)}")
        return bytes((self.MD5_CHALLENGE, len(digest))) + digest + self._username

    def _on_mschapv2(self, type_data: bytes) -> bytes | None:
        # OpCode, MS-CHAPv2-ID, MS-Length (not trusted: the EAP length already bounds the data).
        if len(type_data) < 4:
            self._log("dropped an EAP-MSCHAPv2 request shorter than its header")
            return None
        opcode, ms_identifier, body = type_data[0], type_data[1], type_data[4:]
        if opcode == self.MS_CHALLENGE:
            parsed = _parse_mschapv2_challenge(body)
            if parsed is None:
                self._fail(malformed_challenge_sentence("EAP-MSCHAPv2"), FailureKind.PROTOCOL)
                return None
            challenge, name = parsed
            self._exchange = MsChapV2Exchange.answer(challenge, self._credentials, self._rng)
            self._method_hlak = None  # a new exchange: nothing is proven yet
            value = self._exchange.response_value
            ms_body = bytes((len(value),)) + value + self._username
            self._log(f"answered EAP-MSCHAPv2 challenge from server {_describe(name)} as {self._credentials.username!r}")
            return bytes((self.MSCHAPV2, self.MS_RESPONSE, ms_identifier)) + struct.pack("!H", 4 + len(ms_body)) + ms_body
        if opcode == self.MS_SUCCESS:
            if self._exchange is None:
                self._fail(skipped_sentence(), FailureKind.PROTOCOL)
                return None
            if not self._exchange.server_proved(body):
                self._log(f"the server's Success message does not hold the expected proof: {_describe(body[:42])}")
                self._fail(impostor_sentence(), FailureKind.PROTOCOL)
                return None
            self._method_hlak = self._exchange.hlak
            self._inner_method = "EAP-MSCHAPv2"
            self._log("the server proved it knows the password")
            return bytes((self.MSCHAPV2, self.MS_SUCCESS))
        if opcode == self.MS_FAILURE:
            self._log(f"server refused the login: {_describe(body)}")
            # Acknowledge, then stop: no retry or password change, so the EAP Failure adds nothing.
            code = parse_mschapv2_error(body)
            self._fail(mschapv2_error_sentence(code), FailureKind.AUTHENTICATION, password_refused=refuses_password(code))
            return bytes((self.MSCHAPV2, self.MS_FAILURE))
        self._log(f"dropped an EAP-MSCHAPv2 request with opcode {opcode}")
        return None

    def _on_tunnel_method(self, request_type: int, type_data: bytes) -> bytes | None:
        """EAP-TLS or PEAP: the method object (eap_tls.py, peap.py) does the work."""
        assert self._policy.tls_method is not None
        if self._tunnel is None:
            from .eap_tls import start_tunnel_method

            self._tunnel = start_tunnel_method(request_type, self._policy.tls_method, self._credentials, self._rng)
            self._method_hlak = None
        data = self._tunnel.respond(type_data)
        for line in self._tunnel.take_logs():
            self._log(line)
        if self._tunnel.failure is not None:
            self._fail(self._tunnel.failure.reason, self._tunnel.failure.kind, self._tunnel.failure.password_refused)
            return None
        if self._tunnel.msk is not None and self._method_hlak is None:
            self._method_hlak = hlak_from_msk(self._tunnel.msk)  # [MS-SSTP] 3.2.5.2: the first 32 MSK bytes
            self._inner_method = self._tunnel.name
        return None if data is None else bytes((request_type,)) + data

    def _on_eap_success(self) -> None:
        if self.outcome is not None:
            self._log("ignored EAP Success after authentication finished")
        elif self._method_hlak is None:
            self._fail(skipped_sentence(), FailureKind.PROTOCOL)
        else:
            self._succeed(self._method_hlak)

    def _on_eap_failure(self) -> None:
        if self.outcome is not None:
            self._log("ignored EAP Failure after authentication finished")
            return
        password_refused = False
        if self._tunnel is not None and self._method_hlak is None:
            reason = self._tunnel.failure_sentence()
            password_refused = self._tunnel.refused_password()
        elif self._exchange is None and self._method_hlak is None and self._refused_types:
            reason = self._unsupported_method_sentence()
        else:
            reason = refused_sentence()
            # After our EAP-MSCHAPv2 or EAP-MD5 answer it was the password; before any, the identity.
            password_refused = self._tunnel is None and (self._exchange is not None or self._method_hlak is not None)
        self._fail(reason, FailureKind.AUTHENTICATION, password_refused)

    def _unsupported_method_sentence(self) -> str:
        if self._refused_types == [self.MD5_CHALLENGE]:
            return _(
                "The server only offers EAP-MD5, which your profile does not allow because it exposes the "
                "password to offline guessing; allow CHAP-MD5 in the profile if you accept that, or ask the "
                "administrator for MS-CHAPv2."
            )
        names = ", ".join(eap_type_name(t) for t in self._refused_types)
        return _(
            "The server requires {names}, which this client does not support; ask the server's administrator to allow MS-CHAPv2 or EAP-MSCHAPv2."
        ).format(names=names)


_MACHINES: dict[AuthMethod, type[Authenticatee]] = {
    AuthMethod.PAP: PapClient,
    AuthMethod.CHAP_MD5: ChapMd5Client,
    AuthMethod.MSCHAPV2: MsChapV2Client,
    AuthMethod.EAP: EapClient,
}


def make_authenticatee(method: AuthMethod, credentials: Credentials, policy: AuthPolicy, rng: Rng = secrets.token_bytes) -> Authenticatee:
    """The machine for the method LCP agreed on. The method must be one the policy allows (LCP
    never agrees to another), so anything else is a bug on our side."""
    if method not in policy.allowed_methods():
        raise ValueError(f"{method.name} is not allowed by {policy}")
    return _MACHINES[method](credentials, policy, rng)
