"""What the engine tells its driver: events, failures and the network plan.

Events are past-tense facts. A `Failure` carries one sentence for the user (what happened and
what to do) and a `FailureKind` that the command line maps to its exit code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from .dhcp_inform import PushedSettings


class FailureKind(enum.Enum):
    """Broad class of a failure; the command line turns it into an exit code."""

    AUTHENTICATION = "authentication"  # the server refused the credentials, or no allowed method
    TRUST = "trust"  # certificate or TLS trust
    UNREACHABLE = "unreachable"  # server or proxy unreachable, proxy refused
    PROTOCOL = "protocol"  # malformed input, negotiation failure, server abort
    OTHER = "other"


@dataclass(frozen=True)
class Failure:
    """Why a session ended. `reason` is the one sentence the user reads."""

    where: str  # the layer that failed: "tls", "http", "sstp", "lcp", "auth", "ipcp", "proxy", ...
    reason: str
    kind: FailureKind = FailureKind.PROTOCOL

    def __str__(self) -> str:
        return self.reason


class State(enum.Enum):
    """Coarse session state, for status displays."""

    IDLE = "idle"
    HANDSHAKE = "handshake"  # HTTP request sent, waiting for 200
    NEGOTIATING = "negotiating"  # SSTP call set-up and LCP
    AUTHENTICATING = "authenticating"
    CONFIGURING = "configuring"  # IPCP / IPV6CP
    CONNECTED = "connected"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class NetworkPlan:
    """What the network layer must configure once IPCP is up. Plain data, so that a
    privileged helper can receive it without knowing anything about the engine."""

    address: IPv4Address
    peer: IPv4Address | None
    dns: tuple[IPv4Address, ...] = ()
    mtu: int = 1500
    ipv6_identifier: bytes | None = None  # 8 bytes, when IPV6CP is up


@dataclass(frozen=True)
class SessionSecurity:
    """How the session inside TLS was authenticated and bound to it, for status displays."""

    auth_method: str  # "MS-CHAPv2", "EAP-MSCHAPv2", "EAP-MD5", "PAP", "CHAP-MD5", or "none"
    binding_hash: str  # "SHA-256" or "SHA-1"
    keyed: bool  # the crypto binding used a key from the method (False: zeros, PAP and MD5 methods)

    @property
    def binding(self) -> str:
        """E.g. "SHA-256 with the MS-CHAPv2 key"."""
        if self.keyed:
            return f"{self.binding_hash} with the {self.auth_method} key"
        if self.auth_method == "none":
            return f"{self.binding_hash} with a zero key (no authentication)"
        return f"{self.binding_hash} with a zero key ({self.auth_method} derives no key)"


@dataclass(frozen=True)
class StateChanged:
    state: State


@dataclass(frozen=True)
class LinkConfigured:
    plan: NetworkPlan


@dataclass(frozen=True)
class NetworkPushed:
    """The VPN's DHCP server answered our DHCPINFORM (dhcp_inform): routes and names to add."""

    settings: PushedSettings


@dataclass(frozen=True)
class PasswordRetryRequested:
    """The server refused the password but allows another try (MS-CHAPv2 Failure with R=1).
    Answer with `Engine.retry_password(password or None)`; `reason` is the refusal sentence."""

    reason: str


@dataclass(frozen=True)
class Disconnected:
    failure: Failure | None  # None: a clean disconnect that we (or the server, politely) asked for


@dataclass(frozen=True)
class LogRecord:
    level: int  # a `logging` level
    message: str


Event = StateChanged | LinkConfigured | NetworkPushed | PasswordRetryRequested | Disconnected | LogRecord


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)  # never printed
