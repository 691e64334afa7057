"""IPCP (RFC 1332, RFC 1877): get our IPv4 address and DNS servers from the server."""

from __future__ import annotations

from ipaddress import IPv4Address

from .fsm import OptionPolicy, Verdict
from .ppp_codec import Option

IP_COMPRESSION = 2
IP_ADDRESS = 3
PRIMARY_DNS = 129
PRIMARY_NBNS = 130
SECONDARY_DNS = 131
SECONDARY_NBNS = 132

UNSPECIFIED = IPv4Address(0)


class IpcpPolicy(OptionPolicy):
    """Ask for 0.0.0.0 and let the server's Naks fill in the address and DNS servers."""

    def __init__(self) -> None:
        self.wanted: dict[int, IPv4Address] = {IP_ADDRESS: UNSPECIFIED, PRIMARY_DNS: UNSPECIFIED, SECONDARY_DNS: UNSPECIFIED}
        self.peer_address: IPv4Address | None = None
        self.address_refused = False

    @property
    def address(self) -> IPv4Address:
        return self.wanted.get(IP_ADDRESS, UNSPECIFIED)

    @property
    def dns_servers(self) -> tuple[IPv4Address, ...]:
        servers = (self.wanted.get(PRIMARY_DNS), self.wanted.get(SECONDARY_DNS))
        return tuple(s for s in servers if s is not None and s != UNSPECIFIED)

    def request(self) -> list[Option]:
        return [Option(kind, value.packed) for kind, value in self.wanted.items()]

    def judge(self, options: list[Option]) -> tuple[Verdict, list[Option]]:
        # The server only tells us its own address; DNS options in its request make no sense
        # (we have none to give), and we never compress.
        rejects = [o for o in options if not (o.type == IP_ADDRESS and len(o.data) == 4)]
        if rejects:
            return Verdict.REJECT, rejects
        return Verdict.ACK, options

    def peer_acked(self, options: list[Option]) -> None:
        for option in options:
            if option.type == IP_ADDRESS:
                address = IPv4Address(option.data)
                self.peer_address = address if address != UNSPECIFIED else None

    def naked(self, options: list[Option]) -> None:
        for option in options:
            if option.type in (IP_ADDRESS, PRIMARY_DNS, SECONDARY_DNS) and len(option.data) == 4:
                self.wanted[option.type] = IPv4Address(option.data)

    def rejected(self, options: list[Option]) -> None:
        for option in options:
            if option.type == IP_ADDRESS:
                self.address_refused = True
            self.wanted.pop(option.type, None)
