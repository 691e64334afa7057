"""What the engine tells its driver: past-tense facts (the state changed, the link is configured,
the server pushed settings, the session ended) and log records. The data they carry (`Failure`,
`NetworkPlan`, ...) lives in types.py, which platform/ may import too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .dhcpv6 import Dhcpv6Info
from .types import Failure, NetworkPlan, PushedSettings, State


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
class Dhcpv6Answered:
    """The VPN's DHCPv6 server answered our Information-request (dhcpv6): IPv6 DNS servers and
    domains to add (`info` may be empty)."""

    info: Dhcpv6Info


@dataclass(frozen=True)
class RouterAdvertisedDns:
    """The VPN's router advertisement named DNS servers or domains (RDNSS, DNSSL; dhcpv6); told
    for the first such advertisement only."""

    info: Dhcpv6Info


@dataclass(frozen=True)
class PasswordRetryRequested:
    """The server refused the password but allows another try (MS-CHAPv2 Failure with R=1).
    Answer with `Engine.retry_password(password or None)`; `reason` is the refusal sentence."""

    reason: str


@dataclass(frozen=True)
class SignedIn:
    """Only with `EngineSettings.authenticate_only`: the server accepted the credentials and the
    crypto binding was sent (Call Connected). The engine then disconnects at once, before IPCP;
    `Disconnected` follows. `method` is the method as people know it ("MS-CHAPv2", ...)."""

    username: str
    method: str


@dataclass(frozen=True)
class Disconnected:
    failure: Failure | None  # None: a clean disconnect that we (or the server, politely) asked for


@dataclass(frozen=True)
class LogRecord:
    level: int  # a `logging` level
    message: str


Event = (
    StateChanged
    | LinkConfigured
    | NetworkPushed
    | Dhcpv6Answered
    | RouterAdvertisedDns
    | PasswordRetryRequested
    | SignedIn
    | Disconnected
    | LogRecord
)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)  # never printed
