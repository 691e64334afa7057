"""The kill switch, once for every operating system: what it lets through while it is on.
Pure: the rules as data; kill_switch_linux (nftables), kill_switch_macos (a pf anchor) and
kill_switch_windows (WFP) turn them into their system's firewall objects.

While on, only these pass, both ways:
- the tunnel interfaces (`tunnels`): everything the VPN carries;
- loopback;
- TCP to each of `endpoints`: the SSTP server, or the proxy the connection goes through;
- what keeps the machine on its physical network: DHCPv4, DHCPv6, and IPv6 router and neighbour
  discovery (ICMPv6 133-136) on the local links;
- with `allow_lan`, the local networks too (LAN_NETWORKS: private ranges, link-local, multicast),
  for a printer or a file share beside the VPN, but never DNS (port 53): names stay with the VPN.
Everything else, DNS to the local network's servers included, is dropped; what the machine
routes for others (containers, virtual machines) too, unless it goes into or comes out of a
tunnel (or, with `allow_lan`, goes to the local networks).

When it is on (client/core/types.KillSwitchMode): CONNECTED from the first tunnel up until the
session ends, so reconnecting leaks nothing; ALWAYS from Connect, before the first packet to the
server (the server's name is looked up before, once). The session's end (Disconnect, the command
line's exit, a final failure) removes it exactly; a crash leaves it in place, journaled, until the
next start or `sstp-vpn repair` removes it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol

from sstpvpn.client.core.i18n import _

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOCK_WAIT_SECONDS = 2.0  # a repair looking at a kill switch's journal holds its lock for a moment

# The local networks allow_lan lets through: private, link-local, multicast (and broadcast).
LAN_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(network)
    for network in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "224.0.0.0/4",
        "255.255.255.255/32",
        "fe80::/10",
        "fc00::/7",
        "ff00::/8",
    )
)


@dataclass(frozen=True)
class AllowedEndpoint:
    """TCP to `address`:`port` passes: the VPN server, or the proxy in between."""

    address: IPAddress
    port: int


@dataclass(frozen=True)
class KillSwitchRules:
    endpoints: tuple[AllowedEndpoint, ...]
    tunnels: tuple[str, ...] = ()  # interface names; empty before the first tunnel is up
    allow_lan: bool = False


class KillSwitch(Protocol):
    """One session's kill switch. `set` puts the rules in place, or replaces the ones in place in
    one step (nothing passes in between); `remove` undoes exactly what `set` did and may be called
    again. Both raise PlatformError with a sentence for the user."""

    def set(self, rules: KillSwitchRules) -> None: ...

    def remove(self) -> None: ...


def busy_sentence() -> str:
    """Another session holds this machine's kill switch (every system has one at a time)."""
    return _("The kill switch of another VPN connection on this computer is on; disconnect that connection first, then connect again.")
