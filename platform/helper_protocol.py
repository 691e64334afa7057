"""The conversation between the unprivileged client and the privileged network helper: message
schema, strict validation, and the rules of one session. Pure: no sockets, no system calls.

One connection is one session. Each message is one JSON object of at most MAX_MESSAGE_BYTES, in
one SOCK_SEQPACKET packet on Linux and behind a 4-byte length on macOS (helper_transport).
Requests (client -> helper):

    {"version": 1, "request": "open",    "ifname": "sstp0" | null}
    {"version": 1, "request": "set_mtu", "ifname": "sstp0", "mtu": 1400}
    {"version": 1, "request": "apply",   "ifname": "sstp0", "server": "198.18.20.1", "full_tunnel": true,
     "extra_routes": ["10.20.0.0/16"], "use_vpn_dns": true,
     "plan": {"address": "198.18.30.10", "peer": "198.18.30.1" | null, "dns": ["198.18.30.1"],
              "mtu": 1400, "ipv6_identifier": "0123456789abcdef" | null}}
    {"version": 1, "request": "push",    "ifname": "sstp0", "routes": ["10.20.0.0/16"], "domain": "corp.example" | null,
     "search": ["corp.example"]}   (what the VPN's DHCP server sent after "apply"; client/dhcp_inform)
    {"version": 1, "request": "restore", "ifname": "sstp0"}
    {"version": 1, "request": "ipv6_link", "ifname": "sstp0", "ipv6_identifier": "0123456789abcdef"}
     (IPV6CP opened after "apply": the link-local address and router advertisements; once)
    {"version": 1, "request": "ipv6_dns", "ifname": "sstp0", "servers": ["fd18:30::53"], "search": ["corp.example"]}
     (what the VPN's router or DHCPv6 server named, once the IPv6 link is there; twice at most)
    {"version": 1, "request": "follow_route", "ifname": "sstp0"}   (after a network change: the helper
     moves the server's host route to where the system routes the server now; nothing else named)
    {"version": 1, "request": "kill_switch", "endpoints": [{"address": "198.18.20.1", "port": 443}],
     "tunnels": ["sstp0"], "allow_lan": false}   (puts the session's kill switch in place, or replaces it)
    {"version": 1, "request": "repair"}   (removes what ended sessions left; the reply's notes say what)

Replies (helper -> client): {"ok": true, ...} or {"ok": false, "error": "<sentence for the user>"};
the reply to "open" carries the TUN file descriptor as SCM_RIGHTS ancillary data (Linux, macOS),
or on Windows {"relay": "<32 hex digits>"}: the name of the session's packet pipe (helper_windows).

The helper derives the tunnel's routes from the plan (the address, the server, full or split
tunnel) exactly as a root client would; the only routes a client names are its extra routes,
which are checked here (never all addresses, loopback, link-local, multicast) and, with the
address and peer, against the local networks and gateways before any change (route_safety).
"open" carries the client's network-namespace descriptor (SCM_RIGHTS, Linux). Anything not in
this schema (unknown fields, wrong types, non-canonical addresses, names the kernel or a command
line could misread) is refused with a sentence, never with an exception.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any

from sstpvpn.client.core.i18n import _, ngettext
from sstpvpn.client.core.types import NetworkPlan, PushedSettings
from sstpvpn.platform.kill_switch import AllowedEndpoint, KillSwitchRules

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 4096
IFNAMSIZ = 16  # linux/if.h: the name and its terminating NUL
MIN_MTU = 68  # the smallest IPv4 MTU (RFC 791)
MAX_MTU = 65535
MAX_DNS_SERVERS = 3  # resolv.conf reads at most three nameserver lines (MAXNS)
IPV6_IDENTIFIER_BYTES = 8

# Letters, digits and "_.-", starting with a letter or digit: what the kernel accepts (no "/",
# ":", whitespace, "." or "..") minus anything a command line could read as an option ("-x").
_IFNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Windows: the Wintun adapter's interface alias, which the network service chooses ("SSTP VPN",
# or "SSTP VPN 2" ... when the name is taken); no client picks it.
_WINDOWS_ADAPTER = re.compile(r"SSTP VPN(?: [2-9]| [1-9][0-9]{1,2})?")
_HEX_IDENTIFIER = re.compile(r"[0-9a-f]{16}")
_RELAY_TOKEN = re.compile(r"[0-9a-f]{32}")
_DOMAIN = re.compile(r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_EXTRA_ROUTES = 32


class BrokenFraming(Exception):
    """The connection cannot be read as messages any more; `sentence` says why."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


class RequestRefused(Exception):
    """A request the helper will not carry out; `sentence` tells the user why."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


# -- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenTun:
    ifname: str | None  # None: the helper lets the kernel pick sstp0, sstp1, ...


@dataclass(frozen=True)
class SetMtu:
    ifname: str
    mtu: int


@dataclass(frozen=True)
class ApplyPlan:
    ifname: str
    server: IPAddress
    full_tunnel: bool
    plan: NetworkPlan
    extra_routes: tuple[IPNetwork, ...] = ()  # more networks through the tunnel (the user's choice)
    use_vpn_dns: bool = True


@dataclass(frozen=True)
class PushSettings:
    ifname: str
    settings: PushedSettings


@dataclass(frozen=True)
class Restore:
    ifname: str


@dataclass(frozen=True)
class FollowRoute:
    """After a network change: move the session's host route to the server (roaming)."""

    ifname: str


@dataclass(frozen=True)
class AddIpv6Link:
    ifname: str
    identifier: bytes  # ours, from IPV6CP: 8 bytes, not all zero


@dataclass(frozen=True)
class AddIpv6Dns:
    ifname: str
    servers: tuple[ipaddress.IPv6Address, ...]
    search: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetKillSwitch:
    """The session's kill switch (platform/kill_switch.py): put in place, or replaced."""

    rules: KillSwitchRules


@dataclass(frozen=True)
class Repair:
    """Remove what ended sessions left (their journals, a kill switch no live session holds)."""


Request = OpenTun | SetMtu | ApplyPlan | PushSettings | Restore | SetKillSwitch | Repair | FollowRoute | AddIpv6Link | AddIpv6Dns
MAX_KILL_SWITCH_ENDPOINTS = 8  # the server, a proxy, and the addresses a reconnect may try
MAX_KILL_SWITCH_TUNNELS = 4

_FIELDS: dict[str, set[str]] = {
    "open": {"ifname"},
    "set_mtu": {"ifname", "mtu"},
    "apply": {"ifname", "server", "full_tunnel", "plan", "extra_routes", "use_vpn_dns"},
    "push": {"ifname", "routes", "domain", "search"},
    "restore": {"ifname"},
    "follow_route": {"ifname"},
    "kill_switch": {"endpoints", "tunnels", "allow_lan"},
    "repair": set(),
    "ipv6_link": {"ifname", "ipv6_identifier"},
    "ipv6_dns": {"ifname", "servers", "search"},
}
MAX_SEARCH_DOMAINS = 6  # resolv.conf's historical limit
MAX_IPV6_DNS_REQUESTS = 2  # "ipv6_dns": what the router advertises and what the DHCPv6 server says
_PLAN_FIELDS = {"address", "peer", "dns", "mtu", "ipv6_identifier"}


def encode_request(request: Request) -> bytes:
    """The message for `request` (the client's side)."""
    if isinstance(request, OpenTun):
        body: dict[str, Any] = {"request": "open", "ifname": request.ifname}
    elif isinstance(request, SetMtu):
        body = {"request": "set_mtu", "ifname": request.ifname, "mtu": request.mtu}
    elif isinstance(request, ApplyPlan):
        plan = request.plan
        body = {
            "request": "apply",
            "ifname": request.ifname,
            "server": str(request.server),
            "full_tunnel": request.full_tunnel,
            "extra_routes": [str(network) for network in request.extra_routes],
            "use_vpn_dns": request.use_vpn_dns,
            "plan": {
                "address": str(plan.address),
                "peer": None if plan.peer is None else str(plan.peer),
                "dns": [str(server) for server in plan.dns],
                "mtu": plan.mtu,
                "ipv6_identifier": None if plan.ipv6_identifier is None else plan.ipv6_identifier.hex(),
            },
        }
    elif isinstance(request, PushSettings):
        pushed = request.settings
        body = {
            "request": "push",
            "ifname": request.ifname,
            "routes": [str(network) for network in pushed.routes],
            "domain": pushed.domain,
            "search": list(pushed.search),
        }
    elif isinstance(request, Restore):
        body = {"request": "restore", "ifname": request.ifname}
    elif isinstance(request, FollowRoute):
        body = {"request": "follow_route", "ifname": request.ifname}
    elif isinstance(request, SetKillSwitch):
        rules = request.rules
        body = {
            "request": "kill_switch",
            "endpoints": [{"address": str(endpoint.address), "port": endpoint.port} for endpoint in rules.endpoints],
            "tunnels": list(rules.tunnels),
            "allow_lan": rules.allow_lan,
        }
    elif isinstance(request, Repair):
        body = {"request": "repair"}
    elif isinstance(request, AddIpv6Link):
        body = {"request": "ipv6_link", "ifname": request.ifname, "ipv6_identifier": request.identifier.hex()}
    elif isinstance(request, AddIpv6Dns):
        body = {
            "request": "ipv6_dns",
            "ifname": request.ifname,
            "servers": [str(server) for server in request.servers],
            "search": list(request.search),
        }
    else:
        raise TypeError(f"not a helper request: {request!r}")
    return _dump({"version": PROTOCOL_VERSION, **body})


def parse_request(data: bytes) -> Request:
    """The request in `data` (the helper's side), fully validated; RequestRefused otherwise."""
    message = _load(data, "request")
    version = message.get("version")
    if type(version) is not int or version != PROTOCOL_VERSION:
        raise RequestRefused(
            _(
                "The network helper speaks version {version} of its protocol, "
                "but the request came in another one; install the same version of "
                "sstp-vpn and its helper."
            ).format(version=PROTOCOL_VERSION)
        )
    kind = message.get("request")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise RequestRefused(_("The network helper does not know this request (it knows {requests}).").format(requests=", ".join(sorted(_FIELDS))))
    _exact_fields(message, _FIELDS[kind] | {"version", "request"}, "request")
    if kind == "open":
        ifname = message["ifname"]
        return OpenTun(None if ifname is None else interface_name(ifname))
    if kind == "set_mtu":
        return SetMtu(interface_name(message["ifname"]), mtu(message["mtu"]))
    if kind == "restore":
        return Restore(interface_name(message["ifname"]))
    if kind == "follow_route":
        return FollowRoute(interface_name(message["ifname"]))
    if kind == "kill_switch":
        return SetKillSwitch(kill_switch_rules(message))
    if kind == "repair":
        return Repair()
    if kind == "ipv6_link":
        return AddIpv6Link(interface_name(message["ifname"]), ipv6_identifier(message["ipv6_identifier"]))
    if kind == "ipv6_dns":
        servers, search = message["servers"], message["search"]
        if not isinstance(servers, list) or len(servers) > MAX_DNS_SERVERS or not isinstance(search, list) or len(search) > MAX_SEARCH_DOMAINS:
            raise RequestRefused(
                _("The IPv6 DNS servers and domains must be lists of at most {servers} addresses and {domains} names.").format(
                    servers=MAX_DNS_SERVERS, domains=MAX_SEARCH_DOMAINS
                )
            )
        return AddIpv6Dns(interface_name(message["ifname"]), tuple(_ipv6_dns_server(server) for server in servers), tuple(map(domain_name, search)))
    if kind == "push":
        routes = extra_routes(message["routes"])
        ipv4_routes = tuple(network for network in routes if isinstance(network, ipaddress.IPv4Network))
        if len(ipv4_routes) != len(routes):
            raise RequestRefused(_("The routes a DHCP server sends are IPv4 networks."))
        search = message["search"]
        if not isinstance(search, list) or len(search) > MAX_SEARCH_DOMAINS:
            raise RequestRefused(
                ngettext(
                    "The search list must be a list of at most {count} domain name.",
                    "The search list must be a list of at most {count} domain names.",
                    MAX_SEARCH_DOMAINS,
                ).format(count=MAX_SEARCH_DOMAINS)
            )
        domain = None if message["domain"] is None else domain_name(message["domain"])
        return PushSettings(interface_name(message["ifname"]), PushedSettings(ipv4_routes, domain, tuple(domain_name(name) for name in search)))
    return ApplyPlan(
        ifname=interface_name(message["ifname"]),
        server=server_address(message["server"]),
        full_tunnel=_boolean(message["full_tunnel"], "full_tunnel"),
        plan=network_plan(message["plan"]),
        extra_routes=extra_routes(message["extra_routes"]),
        use_vpn_dns=_boolean(message["use_vpn_dns"], "use_vpn_dns"),
    )


# -- field validation (also used by the helper for its own settings) ------------------------------


def interface_name(value: object) -> str:
    if not isinstance(value, str):
        raise RequestRefused(_("An interface name must be text."))
    if (not (_IFNAME.fullmatch(value) or _WINDOWS_ADAPTER.fullmatch(value))) or len(value.encode()) >= IFNAMSIZ:
        raise RequestRefused(
            _(
                "{name!r} cannot be a tunnel interface name: use 1 to {most} letters, digits, '_', '.' or '-', starting with a letter or digit."
            ).format(name=value[:40], most=IFNAMSIZ - 1)
        )
    return value


def kill_switch_rules(message: dict[str, Any]) -> KillSwitchRules:
    """The fields of a "kill_switch" request (exact already) as rules."""
    endpoints = message["endpoints"]
    if not isinstance(endpoints, list) or len(endpoints) > MAX_KILL_SWITCH_ENDPOINTS:
        raise RequestRefused(
            _("The kill switch's endpoints must be a list of at most {most} addresses and ports.").format(most=MAX_KILL_SWITCH_ENDPOINTS)
        )
    tunnels = message["tunnels"]
    if not isinstance(tunnels, list) or len(tunnels) > MAX_KILL_SWITCH_TUNNELS:
        raise RequestRefused(_("The kill switch's tunnels must be a list of at most {most} interface names.").format(most=MAX_KILL_SWITCH_TUNNELS))
    names = tuple(interface_name(name) for name in tunnels)
    if "lo" in names or len(set(names)) != len(names):
        raise RequestRefused(_("The kill switch's tunnels must be tunnel interfaces, each named once (loopback passes anyway)."))
    return KillSwitchRules(tuple(_endpoint(endpoint) for endpoint in endpoints), names, _boolean(message["allow_lan"], "allow_lan"))


def _endpoint(value: object) -> AllowedEndpoint:
    if not isinstance(value, dict):
        raise RequestRefused(_("A kill switch endpoint must be an object with an address and a port."))
    if set(value) != {"address", "port"}:
        raise RequestRefused(_("A kill switch endpoint must be an object with an address and a port."))
    address = _address(value["address"], _("A kill switch endpoint must be an IPv4 or IPv6 address written the usual way."), (4, 6))
    if address.is_unspecified or address.is_multicast:
        raise RequestRefused(_("{address} cannot be a kill switch endpoint: it is not the address of one server.").format(address=address))
    port = value["port"]
    if type(port) is not int or not 1 <= port <= 65535:
        raise RequestRefused(_("A kill switch endpoint's port must be a whole number from 1 to 65535."))
    return AllowedEndpoint(address, port)


def domain_name(value: object) -> str:
    """A DNS domain as resolvectl and resolv.conf take it: lower-case letters, digits, '-', '_',
    two labels at least (a bare top-level domain would send all its names to the VPN)."""
    if not isinstance(value, str) or not _DOMAIN.fullmatch(value) or len(value) > 253:
        raise RequestRefused(_("{name!r} is not a domain name written like corp.example.").format(name=str(value)[:60]))
    return value


def mtu(value: object) -> int:
    if type(value) is not int or not MIN_MTU <= value <= MAX_MTU:
        raise RequestRefused(_("An MTU must be a whole number of bytes from {least} to {most}.").format(least=MIN_MTU, most=MAX_MTU))
    return value


def server_address(value: object) -> IPAddress:
    address = _address(value, _("The VPN server must be an IPv4 or IPv6 address written the usual way."), (4, 6))
    if address.is_unspecified or address.is_multicast:
        raise RequestRefused(_("{address} cannot be the address of a VPN server.").format(address=address))
    return address


def extra_routes(value: object) -> tuple[IPNetwork, ...]:
    """Networks the user routes through the tunnel as well: no more than a full tunnel could take
    (never all addresses, this host's own, link-local or multicast ones), written canonically."""
    if not isinstance(value, list):
        raise RequestRefused(_("The extra routes must be a list."))
    if len(value) > MAX_EXTRA_ROUTES:
        raise RequestRefused(_("At most {most} extra routes can be configured, not {count}.").format(most=MAX_EXTRA_ROUTES, count=len(value)))
    networks = []
    for text in value:
        try:
            network = ipaddress.ip_network(text) if isinstance(text, str) else None
        except ValueError:
            network = None
        if network is None or str(network) != text:
            raise RequestRefused(_("{network!r} is not a network written like 10.20.0.0/16.").format(network=str(text)[:50]))
        if network.prefixlen == 0 or any(network.overlaps(special) for special in _NOT_ROUTABLE[network.version]):
            raise RequestRefused(
                _(
                    "{network} cannot be routed through the tunnel: it holds addresses that must "
                    "stay on this machine or its link (all, loopback, link-local or multicast)."
                ).format(network=network)
            )
        networks.append(network)
    return tuple(networks)


_NOT_ROUTABLE = {
    4: [ipaddress.ip_network(n) for n in ("0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4")],
    6: [ipaddress.ip_network(n) for n in ("::/128", "::1/128", "fe80::/10", "ff00::/8")],
}


def network_plan(value: object) -> NetworkPlan:
    if not isinstance(value, dict):
        raise RequestRefused(_("The network plan must be an object."))
    _exact_fields(value, _PLAN_FIELDS, "network plan")
    address = _tunnel_address(value["address"], peer=False)
    peer = None if value["peer"] is None else _tunnel_address(value["peer"], peer=True)
    dns = value["dns"]
    if not isinstance(dns, list):
        raise RequestRefused(_("The DNS servers must be a list."))
    if len(dns) > MAX_DNS_SERVERS:
        raise RequestRefused(_("At most {most} DNS servers can be configured, not {count}.").format(most=MAX_DNS_SERVERS, count=len(dns)))
    servers = tuple(_dns_server(server) for server in dns)
    identifier = None if value["ipv6_identifier"] is None else ipv6_identifier(value["ipv6_identifier"])
    return NetworkPlan(address=address, peer=peer, dns=servers, mtu=mtu(value["mtu"]), ipv6_identifier=identifier)


def ipv6_identifier(value: object) -> bytes:
    """IPV6CP's interface identifier: 16 lower-case hex digits, not all zero."""
    if not isinstance(value, str) or not _HEX_IDENTIFIER.fullmatch(value) or set(value) == {"0"}:
        raise RequestRefused(_("The IPv6 interface identifier must be 16 lower-case hex digits, not all zero."))
    return bytes.fromhex(value)


def _ipv6_dns_server(value: object) -> ipaddress.IPv6Address:
    address = _address(value, _("An IPv6 DNS server must be an IPv6 address written the usual way."), (6,))
    if address.is_unspecified or address.is_multicast or address.is_loopback or address.is_link_local or address.ipv4_mapped:
        raise RequestRefused(_("{address} cannot be a DNS server.").format(address=address))
    return address


def _tunnel_address(value: object, peer: bool) -> ipaddress.IPv4Address:
    """The tunnel's own address, or (`peer`) the server's end of the tunnel."""
    if peer:
        address = _address(value, _("The tunnel peer must be an IPv4 address written the usual way."), (4,))
    else:
        address = _address(value, _("The tunnel address must be an IPv4 address written the usual way."), (4,))
    if address.is_unspecified or address.is_loopback or address.is_multicast or address.is_reserved or address in _THIS_NETWORK:
        if peer:
            raise RequestRefused(_("{address} cannot be the tunnel peer: it is not an address for one host.").format(address=address))
        raise RequestRefused(_("{address} cannot be the tunnel address: it is not an address for one host.").format(address=address))
    return address


_THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")


def _dns_server(value: object) -> IPAddress:
    address = _address(value, _("A DNS server must be an IPv4 or IPv6 address written the usual way."), (4, 6))
    if address.is_unspecified or address.is_multicast:
        raise RequestRefused(_("{address} cannot be a DNS server.").format(address=address))
    return address


def _address(value: object, wrong: str, versions: tuple[int, ...]) -> Any:
    """`value` as an address of one of `versions`; RequestRefused(`wrong`) otherwise."""
    refused = RequestRefused(wrong)
    if not isinstance(value, str) or len(value) > 45:
        raise refused
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise refused from None
    # Canonical spelling only, and no zone suffix ("fe80::1%eth0": an interface name in disguise).
    if address.version not in versions or str(address) != value or getattr(address, "scope_id", None):
        raise refused
    return address


def _boolean(value: object, name: str) -> bool:
    if type(value) is not bool:
        raise RequestRefused(_("The field {name} must be true or false.").format(name=name))
    return value


def _exact_fields(message: dict, wanted: set[str], what: str) -> None:
    """`what`: "request" or "network plan" (picks the sentences)."""
    unknown = set(message) - wanted
    if unknown:
        names = ", ".join(sorted(repr(name[:40]) for name in unknown))
        if what == "request":
            raise RequestRefused(_("The request has fields the network helper does not take ({names}).").format(names=names))
        raise RequestRefused(_("The network plan has fields the network helper does not take ({names}).").format(names=names))
    missing = ", ".join(sorted(wanted - set(message)))
    if missing:
        if what == "request":
            raise RequestRefused(_("The request lacks {names}.").format(names=missing))
        raise RequestRefused(_("The network plan lacks {names}.").format(names=missing))


# -- replies ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    ok: bool
    error: str | None = None
    ifname: str | None = None  # the reply to "open"
    relay: str | None = None  # the reply to "open" on Windows: the token naming the session's packet pipe
    notes: tuple[str, ...] = ()  # the reply to "restore": things deliberately left alone


def encode_reply(reply: Reply) -> bytes:
    if not reply.ok:
        return _dump({"ok": False, "error": reply.error or _("The network helper refused the request.")})
    body: dict[str, Any] = {"ok": True}
    if reply.ifname is not None:
        body["ifname"] = reply.ifname
    if reply.relay is not None:
        body["relay"] = reply.relay
    if reply.notes:
        body["notes"] = list(reply.notes)
    return _dump(body)


def parse_reply(data: bytes) -> Reply:
    """The helper's reply (the client's side). A malformed one raises RequestRefused."""
    message = _load(data, "reply")
    ok = message.get("ok")
    if type(ok) is not bool:
        raise RequestRefused(_("The network helper's reply makes no sense; install the same version of sstp-vpn and its helper."))
    if not ok:
        error = message.get("error")
        return Reply(False, error=error if isinstance(error, str) else _("The network helper refused the request."))
    ifname, relay = message.get("ifname"), message.get("relay")
    notes = message.get("notes", [])
    if (
        (ifname is not None and not isinstance(ifname, str))
        or (relay is not None and not (isinstance(relay, str) and _RELAY_TOKEN.fullmatch(relay)))
        or not isinstance(notes, list)
        or not all(isinstance(note, str) for note in notes)
    ):
        raise RequestRefused(_("The network helper's reply makes no sense; install the same version of sstp-vpn and its helper."))
    return Reply(True, ifname=None if ifname is None else interface_name(ifname), relay=relay, notes=tuple(notes))


# -- the session's rules --------------------------------------------------------------------------


class SessionRules:
    """What one session may still do. The first plan applied becomes the session's plan: the same
    plan may be applied again after a restore (or a failed attempt), a different one never.

    The helper asks `admit()` before acting and reports what it did with `opened()`,
    `network_changed()`; a refused request leaves the rules unchanged.
    """

    def __init__(self) -> None:
        self.ifname: str | None = None  # the interface this session created
        self.plan: ApplyPlan | None = None
        self.network_applied = False
        self.pushed = False  # what the DHCP server sent was added (once per session)
        self.kill_switch_on = False  # the session's kill switch is in place
        self.ipv6_identifier: bytes | None = None  # the IPv6 link ("ipv6_link") was added with this one
        self.ipv6_dns_added = 0  # how often "ipv6_dns" came: the router's and the DHCPv6 server's, at most

    def admit(self, request: Request) -> bool:
        """True: carry the request out. False: it is already so (reply ok, do nothing).
        Raises RequestRefused when the request lies outside this session."""
        if isinstance(request, SetKillSwitch | Repair):
            return True  # a session may start with either; the kill switch may be replaced any time
        if isinstance(request, Restore) and self.ifname is None and self.kill_switch_on:
            return True  # a session of its own for the kill switch: "restore" removes it
        if isinstance(request, OpenTun):
            if self.ifname is not None:
                raise RequestRefused(
                    _("This connection already has its tunnel interface {name}; one interface per connection.").format(name=self.ifname)
                )
            return True
        if self.ifname is None:
            raise RequestRefused(_("Open the tunnel interface first."))
        if request.ifname != self.ifname:
            raise RequestRefused(
                _("The interface {name} was not created by this connection (its interface is {own}); the network helper leaves it alone.").format(
                    name=request.ifname, own=self.ifname
                )
            )
        if isinstance(request, SetMtu):
            if self.plan is not None and request.mtu != self.plan.plan.mtu:
                raise RequestRefused(
                    _("The MTU of {name} is {mtu} by this connection's network plan; {asked} is outside it.").format(
                        name=self.ifname, mtu=self.plan.plan.mtu, asked=request.mtu
                    )
                )
            return True
        if isinstance(request, ApplyPlan):
            if self.plan is None:
                self.plan = request
                return True
            if request != self.plan:
                raise RequestRefused(_("This connection's network plan is set already; a different plan needs a new connection."))
            return not self.network_applied
        if isinstance(request, PushSettings):
            if not self.network_applied:
                raise RequestRefused(_("Apply the network plan before adding what the VPN's DHCP server sent."))
            if self.pushed:
                raise RequestRefused(_("What the VPN's DHCP server sent was added already; once per connection."))
            return True
        if isinstance(request, AddIpv6Link):
            if not self.network_applied or self.plan is None:
                raise RequestRefused(_("Apply the network plan before adding the IPv6 link."))
            if self.plan.plan.ipv6_identifier is not None or self.ipv6_identifier not in (None, request.identifier):
                raise RequestRefused(_("This connection's IPv6 link is set already; a different one needs a new connection."))
            return self.ipv6_identifier is None
        if isinstance(request, AddIpv6Dns):
            if not self.network_applied or self.plan is None or (self.plan.plan.ipv6_identifier is None and self.ipv6_identifier is None):
                raise RequestRefused(_("Add the IPv6 link before its DNS servers."))
            if self.ipv6_dns_added >= MAX_IPV6_DNS_REQUESTS:
                raise RequestRefused(_("The VPN's router and DHCPv6 server have named their DNS servers already; no more in this connection."))
            return True
        if isinstance(request, Restore):
            return True
        if isinstance(request, FollowRoute):
            if not self.network_applied:
                raise RequestRefused(_("Apply the network plan before moving the route to the VPN server."))
            return True
        raise TypeError(f"not a helper request: {request!r}")

    def opened(self, ifname: str) -> None:
        self.ifname = ifname

    def network_changed(self, applied: bool) -> None:
        self.network_applied = applied
        if not applied:
            self.ipv6_identifier, self.ipv6_dns_added = None, 0  # restored with the rest

    def ipv6_link_added(self, identifier: bytes) -> None:
        self.ipv6_identifier = identifier

    def ipv6_dns_was_added(self) -> None:
        self.ipv6_dns_added += 1

    def pushed_added(self) -> None:
        self.pushed = True

    def kill_switch_changed(self, on: bool) -> None:
        self.kill_switch_on = on


# -- JSON ---------------------------------------------------------------------------------------


def _dump(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    if len(data) > MAX_MESSAGE_BYTES:
        raise RequestRefused(_("The message is too long for the network helper."))
    return data


def _load(data: bytes, what: str) -> dict[str, Any]:
    """`what`: "request" or "reply" (picks the sentences)."""
    if len(data) > MAX_MESSAGE_BYTES:
        if what == "request":
            raise RequestRefused(_("The request is longer than the network helper accepts ({limit} bytes).").format(limit=MAX_MESSAGE_BYTES))
        raise RequestRefused(_("The reply is longer than the network helper accepts ({limit} bytes).").format(limit=MAX_MESSAGE_BYTES))
    try:
        message = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        message = None
    if not isinstance(message, dict):
        raise RequestRefused(_("The request is not a JSON object.") if what == "request" else _("The reply is not a JSON object."))
    return message


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate field {key!r}")  # two values for one field: which one counts?
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number")
