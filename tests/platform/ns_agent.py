"""Runs the Linux platform layer inside a test's network namespace (`ip netns exec NAME python
ns_agent.py ...`) and reports what happened as one JSON object per line on stdout.

`session` is interactive so that the test can look at the namespace between steps: it prints
an event, then waits for any line on stdin before the next step (open, apply, restore, close).
The other commands run to the end by themselves.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time
from pathlib import Path

from sstpvpn.client.core.types import NetworkPlan, PushedSettings
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.netconfig_linux import NetConfigurator, repair_from_journal
from sstpvpn.platform.tun_linux import TunDevice

TUNNEL_ADDRESS = "198.18.30.10"
TUNNEL_PEER = "198.18.30.1"


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def wait_for_go() -> None:
    if not sys.stdin.readline():
        raise SystemExit("the test closed stdin")


def plan(args: argparse.Namespace) -> NetworkPlan:
    identifier = bytes.fromhex(args.ipv6_identifier) if args.ipv6_identifier else None
    peer = None if args.no_peer else ipaddress.IPv4Address(TUNNEL_PEER)
    return NetworkPlan(
        address=ipaddress.IPv4Address(TUNNEL_ADDRESS), peer=peer, dns=(ipaddress.IPv4Address(TUNNEL_PEER),), mtu=1400, ipv6_identifier=identifier
    )


def session(args: argparse.Namespace) -> None:
    tun = TunDevice.open(args.ifname)
    say(event="opened", ifname=tun.name)
    wait_for_go()
    config = NetConfigurator(
        tun.name,
        ipaddress.ip_address(args.server),
        full_tunnel=args.mode == "full",
        extra_routes=tuple(map(ipaddress.ip_network, args.route)),
        use_vpn_dns=not args.no_vpn_dns,
        journal_path=Path(args.journal),
    )
    started = time.perf_counter()
    try:
        config.apply(plan(args))
    except PlatformError as error:
        say(event="failed", sentence=error.sentence)
        return
    pushed_notes = None
    if args.push_domain or args.push_route:  # what a DHCP server would send after the connection is up
        pushed_notes = config.add_pushed(PushedSettings(tuple(map(ipaddress.IPv4Network, args.push_route)), args.push_domain))
    say(event="applied", seconds=time.perf_counter() - started, mtu=tun.mtu, pushed_notes=pushed_notes)
    wait_for_go()
    started = time.perf_counter()
    notes = config.restore()
    seconds = time.perf_counter() - started
    again = config.restore()  # idempotent: a second restore finds nothing to do
    say(event="restored", seconds=seconds, notes=notes, second_notes=again, mtu=tun.mtu, journal_exists=Path(args.journal).exists())
    wait_for_go()
    tun.close()
    say(event="closed")


def repair(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    try:
        repaired = repair_from_journal(Path(args.journal))
    except PlatformError as error:
        say(error=error.sentence)
        return
    say(repaired=repaired, seconds=time.perf_counter() - started)


def open_tun(args: argparse.Namespace) -> None:
    try:
        with TunDevice.open(args.ifname, clone_device=args.device) as tun:
            say(ifname=tun.name)
    except PlatformError as error:
        say(error=error.sentence)


def configure(args: argparse.Namespace) -> None:
    """Apply to an existing interface (e.g. lo) and report the error or the routes; restore."""
    config = NetConfigurator(args.ifname, ipaddress.ip_address(args.server), full_tunnel=args.mode == "full", journal_path=Path(args.journal))
    try:
        config.apply(plan(args))
    except PlatformError as error:
        say(error=error.sentence, journal_exists=Path(args.journal).exists())
        return
    config.restore()
    say(applied=True)


# -- data path ---------------------------------------------------------------------------


def ipv4_udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    """An IPv4 + UDP packet with a correct header checksum and UDP checksum 0 (allowed)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0x1234, 0x4000, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return header[:10] + struct.pack("!H", ipv4_checksum(header)) + header[12:] + udp


def ipv4_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def read_ipv4_udp(tun: TunDevice, wanted: int, timeout: float) -> list[dict]:
    """IPv4 UDP packets read from the TUN (IPv6 chatter such as router solicitations is skipped)."""
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(found) < wanted and time.monotonic() < deadline:
        select.select([tun.fileno()], [], [], max(0.0, deadline - time.monotonic()))
        for packet in tun.read_packets(64):
            if packet[0] >> 4 != 4 or packet[9] != 17:
                continue
            header_length = (packet[0] & 0x0F) * 4
            sport, dport = struct.unpack_from("!HH", packet, header_length)
            found.append(
                {
                    "src": socket.inet_ntoa(packet[12:16]),
                    "dst": socket.inet_ntoa(packet[16:20]),
                    "sport": sport,
                    "dport": dport,
                    "payload": packet[header_length + 8 :].decode(),
                    "checksum_ok": ipv4_checksum(packet[:header_length]) == 0,
                }
            )
    return found


def packets(args: argparse.Namespace) -> None:
    results: dict[str, object] = {}
    with TunDevice.open() as tun:
        config = NetConfigurator(tun.name, ipaddress.ip_address(args.server), journal_path=Path(args.journal))
        config.apply(plan(args))
        try:
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            # One datagram to the peer, one to an address only the half-default routes cover.
            sender.sendto(b"to-peer", (TUNNEL_PEER, 9))
            sender.sendto(b"to-elsewhere", ("198.18.99.1", 9))
            results["single"] = read_ipv4_udp(tun, 2, timeout=5)

            receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            receiver.bind((TUNNEL_ADDRESS, 0))
            port = receiver.getsockname()[1]
            receiver.settimeout(5)
            tun.write_packets([ipv4_udp_packet(TUNNEL_PEER, TUNNEL_ADDRESS, 9, port, b"from-peer")])
            data, source = receiver.recvfrom(2048)
            results["received"] = {"payload": data.decode(), "source": list(source)}

            started = time.perf_counter()
            for i in range(100):
                sender.sendto(b"batch-%d" % i, (TUNNEL_PEER, 10000 + i))
            batch = read_ipv4_udp(tun, 100, timeout=10)
            results["batch_read"] = sorted(p["dport"] for p in batch)
            results["batch_read_seconds"] = time.perf_counter() - started

            started = time.perf_counter()
            tun.write_packets([ipv4_udp_packet(TUNNEL_PEER, TUNNEL_ADDRESS, 9, port, b"batch-%d" % i) for i in range(100)])
            got = []
            receiver.settimeout(2)
            try:
                while len(got) < 100:
                    got.append(receiver.recv(2048).decode())
            except TimeoutError:
                pass
            results["batch_written"] = got
            results["batch_write_seconds"] = time.perf_counter() - started
            results["dropped"] = tun.dropped_packets
            # A packet the kernel rejects (not IPv4/IPv6) is dropped and counted; the device works on.
            garbage = b"\x00 not an IP packet"
            tun.write_packets([garbage, ipv4_udp_packet(TUNNEL_PEER, TUNNEL_ADDRESS, 9, port, b"after")])
            results["dropped_after_garbage"] = tun.dropped_packets
            results["after_garbage"] = receiver.recv(2048).decode()
            results["empty_read"] = len([p for p in tun.read_packets() if p[0] >> 4 == 4])
        finally:
            config.restore()
    say(**results)


def main() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    for name, function in [("session", session), ("repair", repair), ("open-tun", open_tun), ("configure", configure), ("packets", packets)]:
        command = commands.add_parser(name)
        command.set_defaults(function=function)
        command.add_argument("--journal", default=os.devnull)
        command.add_argument("--server", default="198.18.21.1")
        command.add_argument("--mode", choices=["full", "split"], default="full")
        command.add_argument("--ifname", default=None)
        command.add_argument("--device", default="/dev/net/tun")
        command.add_argument("--ipv6-identifier", default=None, help="16 hex digits")
        command.add_argument("--no-peer", action="store_true")
        command.add_argument("--route", action="append", default=[], help="an extra network through the tunnel")
        command.add_argument("--no-vpn-dns", action="store_true")
        command.add_argument("--push-domain", default=None, help="session: a domain a DHCP server sends")
        command.add_argument("--push-route", action="append", default=[], help="session: a route a DHCP server sends")
    args = parser.parse_args()
    args.function(args)


if __name__ == "__main__":
    main()
