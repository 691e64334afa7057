"""What the rest of the program may rely on from a platform implementation: a tunnel device and
a network configurator. tun_linux/tun_macos/tun_windows and netconfig_linux/netconfig_macos/
netconfig_windows satisfy these (tests/platform/test_contract.py checks it).

Structural (typing.Protocol): an implementation does not inherit from these, it has the same
members. Each one's constructor and `open` may take further keyword-only stand-ins for its
system calls (tests pass recorded ones); those are not part of the protocol.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sstpvpn.client.core.types import NetworkPlan, PushedSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TunDevice(Protocol):
    """An open layer-3 tunnel interface moving raw IPv4/IPv6 packets. Closing it removes the
    interface. Usable in a selector (fileno) and as a context manager."""

    name: str
    dropped_packets: int  # packets write_packets() had to drop instead of blocking

    def fileno(self) -> int: ...

    @property
    def closed(self) -> bool: ...

    def read_packets(self, max_count: int = 64) -> list[bytes]: ...

    def write_packets(self, packets: list[bytes]) -> None: ...

    @property
    def mtu(self) -> int: ...

    def set_mtu(self, mtu: int) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> TunDevice: ...

    def __exit__(self, *exc: object) -> None: ...


class NetConfigurator(Protocol):
    """Applies a NetworkPlan (addresses, routes, DNS) to one tunnel interface and undoes it
    exactly, journaled so that a crash is repaired at the next start."""

    ifname: str
    server_address: IPAddress
    full_tunnel: bool
    extra_routes: tuple[IPNetwork, ...]
    use_vpn_dns: bool

    def apply(self, plan: NetworkPlan) -> None: ...

    def add_ipv6_link(self, identifier: bytes) -> None: ...

    def add_ipv6_dns(self, servers: Sequence[ipaddress.IPv6Address], search: Sequence[str]) -> list[str]: ...

    def add_pushed(self, pushed: PushedSettings) -> list[str]: ...

    def follow_server_route(self) -> str | None: ...

    def restore(self) -> list[str]: ...
