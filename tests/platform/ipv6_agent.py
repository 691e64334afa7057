"""Runs inside a test's client namespace (test_ipv6_link_linux.py): a tunnel whose IPV6CP opens
after the network is configured, with the VPN's router played by this script through the TUN
device (as a server would send it through PPP). One JSON line per step on stdout; a line on
stdin says "go on".

    opened -> (go) applied -> (go) ipv6: the router solicitation the kernel sent, our answer
    to a multicast neighbour solicitation, after the router advertisement -> (go) restored
    -> (go) closed
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import select
import struct
import sys
import time
from pathlib import Path

from sstpvpn.client.core.types import NetworkPlan
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.netconfig_linux import NetConfigurator
from sstpvpn.platform.tun_linux import TunDevice

ROUTER = ipaddress.IPv6Address("fe80::1")
ALL_NODES = ipaddress.IPv6Address("ff02::1")
ICMPV6 = 58
ROUTER_SOLICITATION, ROUTER_ADVERTISEMENT, NEIGHBOUR_SOLICITATION, NEIGHBOUR_ADVERTISEMENT = 133, 134, 135, 136


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def wait_for_go() -> None:
    sys.stdin.readline()


def icmpv6(src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, body: bytes) -> bytes:
    """An IPv6 packet (hop limit 255, as neighbour discovery wants) with ICMPv6 `body` (its
    checksum field zero; filled in here)."""
    pseudo = src.packed + dst.packed + struct.pack("!I3xB", len(body), ICMPV6)
    data = pseudo + body + b"\0" * (len(body) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    checksummed = body[:2] + struct.pack("!H", ~total & 0xFFFF) + body[4:]
    return struct.pack("!IHBB", 6 << 28, len(body), ICMPV6, 255) + src.packed + dst.packed + checksummed


def router_advertisement(prefix: ipaddress.IPv6Network) -> bytes:
    # Hop limit 64, no flags, router lifetime 1800 s; one prefix option: on-link and autonomous.
    option = struct.pack("!BBBBIII", 3, 4, prefix.prefixlen, 0xC0, 86400, 14400, 0) + prefix.network_address.packed
    return icmpv6(ROUTER, ALL_NODES, struct.pack("!BBHBBHII", ROUTER_ADVERTISEMENT, 0, 0, 64, 0, 1800, 0, 0) + option)


def neighbour_solicitation(target: ipaddress.IPv6Address) -> bytes:
    group = ipaddress.IPv6Address(b"\xff\x02" + bytes(9) + b"\x01\xff" + target.packed[13:])
    return icmpv6(ROUTER, group, struct.pack("!BBHI", NEIGHBOUR_SOLICITATION, 0, 0, 0) + target.packed)


def read_icmpv6(tun: TunDevice, wanted: int, timeout: float) -> dict | None:
    """The first ICMPv6 message of type `wanted` the kernel sends into the tunnel."""
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        if not select.select([tun], [], [], left)[0]:
            break
        for packet in tun.read_packets(64):
            if len(packet) >= 48 and packet[0] >> 4 == 6 and packet[6] == ICMPV6 and packet[40] == wanted:
                return {
                    "src": str(ipaddress.IPv6Address(packet[8:24])),
                    "dst": str(ipaddress.IPv6Address(packet[24:40])),
                    "target": str(ipaddress.IPv6Address(packet[48:64])) if wanted == NEIGHBOUR_ADVERTISEMENT else None,
                    "after": round(time.monotonic() - (end - timeout), 3),
                }
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--journal", required=True)
    parser.add_argument("--identifier", required=True, help="16 hex digits")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--mode", choices=["full", "split"], default="split")
    parser.add_argument("--ipv6-off", action="store_true", help="switch IPv6 off on the tunnel before its IPv6 link comes")
    parser.add_argument("--dns", action="append", default=[], help="an IPv6 DNS server the VPN's DHCPv6 server names")
    parser.add_argument("--search", action="append", default=[], help="a domain the VPN's DHCPv6 server names")
    args = parser.parse_args()
    identifier = bytes.fromhex(args.identifier)
    tun = TunDevice.open(None)
    say(event="opened", ifname=tun.name)
    wait_for_go()
    config = NetConfigurator(tun.name, ipaddress.ip_address("198.18.21.1"), full_tunnel=args.mode == "full", journal_path=Path(args.journal))
    config.apply(NetworkPlan(address=ipaddress.IPv4Address("198.18.30.10"), peer=ipaddress.IPv4Address("198.18.30.1"), mtu=1400))
    say(event="applied", notes=config.notes)
    wait_for_go()
    if args.ipv6_off:
        Path(f"/proc/sys/net/ipv6/conf/{tun.name}/disable_ipv6").write_text("1")
        try:
            config.add_ipv6_link(identifier)
        except PlatformError as error:
            say(event="refused", sentence=error.sentence)
        wait_for_go()
        say(event="restored", notes=config.restore(), journal_exists=Path(args.journal).exists())
        wait_for_go()
        tun.close()
        say(event="closed")
        return
    config.add_ipv6_link(identifier)
    solicitation = read_icmpv6(tun, ROUTER_SOLICITATION, 5.0)
    tun.write_packets([router_advertisement(ipaddress.IPv6Network(args.prefix))])
    link_local = ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + identifier)
    tun.write_packets([neighbour_solicitation(link_local)])
    advertisement = read_icmpv6(tun, NEIGHBOUR_ADVERTISEMENT, 3.0)
    # What a DHCPv6 server would name (client/core/dhcpv6): DNS servers and a domain.
    dns_notes = config.add_ipv6_dns([ipaddress.IPv6Address(server) for server in args.dns], args.search)
    say(event="ipv6", solicitation=solicitation, advertisement=advertisement, dns_notes=dns_notes)
    wait_for_go()
    notes = config.restore()
    say(event="restored", notes=notes, journal_exists=Path(args.journal).exists())
    wait_for_go()
    tun.close()
    say(event="closed")


if __name__ == "__main__":
    main()
