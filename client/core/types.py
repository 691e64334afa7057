"""The types every layer shares: a failure and its kind, the session state, the network plan, what
the VPN's DHCP server pushed, and the status snapshot the front ends show.

Plain data with no behaviour beyond formatting, so that `client/` and `platform/` may both import
this module (and nothing else of each other's; tests/unit/test_import_rules.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address

from .i18n import _


class FailureKind(enum.Enum):
    """Broad class of a failure; the command line turns it into an exit code."""

    AUTHENTICATION = "authentication"  # the server refused the credentials, or no allowed method
    TRUST = "trust"  # certificate or TLS trust
    UNREACHABLE = "unreachable"  # server or proxy unreachable, proxy refused
    PROTOCOL = "protocol"  # malformed input, negotiation failure, server abort
    OTHER = "other"


class KillSwitchMode(enum.Enum):
    """When the kill switch blocks everything but the tunnel and the connection to the server (a
    profile's choice; platform/kill_switch.py says what passes)."""

    OFF = "off"
    CONNECTED = "connected"  # from the first "connected" until the session ends, reconnects included
    ALWAYS = "always"  # from Connect, before the first packet to the server, until the session ends


@dataclass(frozen=True)
class KillSwitchState:
    """What the kill switch is doing now, for the status window and the command line."""

    mode: KillSwitchMode
    active: bool  # the blocking rules are in place now
    problem: str = ""  # one sentence when they could not be put in place, else ""


class Layer(enum.StrEnum):
    """Where a failure happened. A StrEnum, so the attempt history stores the plain word."""

    APP = "app"  # an internal error of this program
    PLATFORM = "platform"  # this operating system is not supported
    PROFILE = "profile"  # the profile's settings cannot be used
    SESSION = "session"  # another client holds this profile
    NETWORK = "network"  # the tunnel device, routes or DNS of this computer
    RUNNER = "runner"  # the I/O loop around the engine
    SLEEP = "sleep"  # the computer slept and the server forgot the session: retry at once
    DNS = "dns"  # the server's name did not resolve
    TCP = "tcp"  # the server did not accept the connection
    PROXY = "proxy"
    TLS = "tls"
    HTTP = "http"
    SSTP = "sstp"
    LCP = "lcp"
    AUTH = "auth"
    IPCP = "ipcp"


@dataclass(frozen=True)
class Failure:
    """Why a session ended. `reason` is the one sentence the user reads."""

    where: Layer  # what failed; the reconnect policy and the attempt history read it
    reason: str
    kind: FailureKind = FailureKind.PROTOCOL
    # The server refused the password itself (MS-CHAPv2 error 691, a PAP Nak, a CHAP Failure, the
    # EAP-MSCHAPv2 or EAP-MD5 inside EAP or PEAP), so asking the user for it again can help; not
    # for a refused certificate, a locked or expired account, or no method both sides allow. A
    # hint for the front ends (the tray asks again), not part of what the failure is.
    password_refused: bool = field(default=False, compare=False)

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
    dns: tuple[IPv4Address | IPv6Address, ...] = ()  # IPCP gives IPv4 servers; the helper also takes IPv6 ones
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
            # Translators: how the SSTP crypto binding was made, e.g. "SHA-256 with the MS-CHAPv2 key"
            return _("{hash} with the {method} key").format(hash=self.binding_hash, method=self.auth_method)
        if self.auth_method == "none":
            # Translators: as above, e.g. "SHA-256 with a zero key (no authentication)"
            return _("{hash} with a zero key (no authentication)").format(hash=self.binding_hash)
        # Translators: as above, e.g. "SHA-256 with a zero key (PAP derives no key)"
        return _("{hash} with a zero key ({method} derives no key)").format(hash=self.binding_hash, method=self.auth_method)


@dataclass(frozen=True)
class PushedSettings:
    """What the VPN's DHCP server told us: networks to route into the tunnel, and names."""

    routes: tuple[IPv4Network, ...] = ()
    domain: str | None = None
    search: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.routes or self.domain or self.search)


@dataclass(frozen=True)
class Status:
    """A snapshot for the user interface. Never holds secrets."""

    state: State
    server: str = ""
    plan: NetworkPlan | None = None
    interface: str | None = None
    failure: Failure | None = None
    connected_at: float | None = None  # time.monotonic()
    tls: str = ""  # e.g. "TLSv1.3, TLS_AES_256_GCM_SHA384", once TLS is up
    security: SessionSecurity | None = None  # authentication and crypto binding, once connected
    route_target: str | None = None  # where the TCP connection goes (server or proxy): the address that needs a route
    revocation: str = ""  # the server chain's revocation check, e.g. "good (OCSP, http://…)", once TLS is up
    kill_switch: KillSwitchState | None = None  # None: the profile's kill switch is off
