"""The unprivileged side of the helper tests: runs as `nobody` in the test's client namespace and
talks to sstp-vpn-helper there, reporting each step as one JSON line on stdout.

`session` goes through the calls the engine runner makes (open the interface, apply the plan,
packets both ways through the received descriptor, restore, close), waiting for a line on stdin
before each step after the first, so the test can look at the namespace in between.
`raw` sends hand-made messages (one hex-encoded message per stdin line) and prints each reply;
like the real client, each message carries the agent's network-namespace descriptor unless
--no-namespace (the helper looks at it with "open" only).
"""

from __future__ import annotations

import argparse
import array
import fcntl
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import threading
import time

from sstpvpn.client.core.types import NetworkPlan
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.helper_client import PrivilegedNetwork
from sstpvpn.platform.tun_linux import TunDevice

TUNSETPERSIST = 0x400454CB
TUNSETOWNER = 0x400454CC
TUNNEL_ADDRESS = "198.18.30.10"
TUNNEL_PEER = "198.18.30.1"


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def wait_for_go() -> None:
    if not sys.stdin.readline():
        raise SystemExit("the test closed stdin")


def capabilities() -> str:
    with open("/proc/self/status") as status:
        return next(line.split()[1] for line in status if line.startswith("CapEff:"))


def session(args: argparse.Namespace) -> None:
    try:
        TunDevice.open()  # the direct way must be closed to this user
        direct = "opened"
    except PlatformError as error:
        direct = error.sentence
    network = PrivilegedNetwork(args.socket)
    try:
        tun = network.open_tun(args.ifname)
    except PlatformError as error:
        say(event="failed", sentence=error.sentence)
        return
    say(
        event="opened",
        ifname=tun.name,
        euid=os.geteuid(),
        capabilities=capabilities(),
        direct_open=direct,
        nonblocking=bool(os.get_blocking(tun.fileno()) is False),
    )
    wait_for_go()
    config = network.configurator(tun.name, ipaddress.ip_address(args.server), full_tunnel=args.mode == "full")
    plan = NetworkPlan(
        address=ipaddress.IPv4Address(TUNNEL_ADDRESS), peer=ipaddress.IPv4Address(TUNNEL_PEER), dns=(ipaddress.IPv4Address(TUNNEL_PEER),), mtu=1400
    )
    try:
        tun.set_mtu(plan.mtu)
        config.apply(plan)
    except PlatformError as error:
        say(event="failed", sentence=error.sentence)
        return
    say(event="applied", mtu=tun.mtu)
    wait_for_go()
    if not args.no_packets:
        say(event="packets", **packets_both_ways(tun))
        wait_for_go()
    try:
        notes = config.restore()
    except PlatformError as error:
        say(event="failed", sentence=error.sentence)
        return
    say(event="restored", notes=notes)
    wait_for_go()
    tun.close()
    say(event="closed")


def packets_both_ways(tun: TunDevice) -> dict:
    """Write a UDP packet from the peer into the descriptor and receive it on a socket; send one to
    the peer and read it from the descriptor."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind((TUNNEL_ADDRESS, 0))
    receiver.settimeout(5)
    tun.write_packets([ipv4_udp_packet(TUNNEL_PEER, TUNNEL_ADDRESS, 9, receiver.getsockname()[1], b"from-peer")])
    received, source = receiver.recvfrom(2048)
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"to-peer", (TUNNEL_PEER, 9))
    read = []
    deadline = time.monotonic() + 5
    while not read and time.monotonic() < deadline:
        select.select([tun.fileno()], [], [], max(0.0, deadline - time.monotonic()))
        read = [p for p in tun.read_packets() if p[0] >> 4 == 4 and p[9] == 17]  # skip IPv6 chatter
    return {
        "received": received.decode(),
        "source": source[0],
        "read": [p[28:].decode() for p in read],
        "read_destination": [socket.inet_ntoa(p[16:20]) for p in read],
    }


def ipv4_udp_packet(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload  # UDP checksum 0: none
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
    total = sum(struct.unpack("!10H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return header[:10] + struct.pack("!H", ~total & 0xFFFF) + header[12:] + udp


def raw(args: argparse.Namespace) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(30)
    try:
        sock.connect(args.socket)
    except OSError as error:
        say(connect_error=error.strerror)
        return
    namespace = [] if args.no_namespace else [os.open("/proc/self/ns/net", os.O_RDONLY)]
    for line in sys.stdin:
        message = bytes.fromhex(line.strip())
        try:
            ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", namespace).tobytes())] if namespace else []
            sock.sendmsg([message], ancillary)
            data, ancillary, _flags, _address = sock.recvmsg(65536, socket.CMSG_SPACE(16))
        except OSError as error:
            say(closed=True, error=error.strerror)
            return
        fds = array.array("i")
        for _level, _kind, payload in ancillary:
            fds.frombytes(payload)
        for fd in fds:
            os.close(fd)
        if not data:
            say(closed=True)
            return
        say(reply=json.loads(data), fds=len(fds))


def race(args: argparse.Namespace) -> None:
    """Two sessions of this user apply their plans at the same moment, `--rounds` times; one
    line per round: which applied, and what the other was told."""
    plan = NetworkPlan(
        address=ipaddress.IPv4Address(TUNNEL_ADDRESS), peer=ipaddress.IPv4Address(TUNNEL_PEER), dns=(ipaddress.IPv4Address(TUNNEL_PEER),), mtu=1400
    )
    for _ in range(args.rounds):
        say(event="round", outcome=_race_once(args, plan))


def _race_once(args: argparse.Namespace, plan: NetworkPlan) -> list[object]:
    networks = [PrivilegedNetwork(args.socket), PrivilegedNetwork(args.socket)]
    tuns = [network.open_tun() for network in networks]
    configs = [network.configurator(tun.name, ipaddress.ip_address(args.server)) for network, tun in zip(networks, tuns, strict=True)]
    start = threading.Barrier(2)
    outcome: list[object] = [None, None]

    def apply(which: int) -> None:
        start.wait()
        try:
            configs[which].apply(plan)
            outcome[which] = "applied"
        except PlatformError as error:
            outcome[which] = error.sentence

    threads = [threading.Thread(target=apply, args=(which,)) for which in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for tun in tuns:
        tun.close()  # ends the session: the helper restores what it applied
    return outcome


def persist(args: argparse.Namespace) -> None:
    """Make the received TUN persistent and our own, then end the session and try to get the
    interface back without the helper."""
    network = PrivilegedNetwork(args.socket)
    tun = network.open_tun()
    fcntl.ioctl(tun.fileno(), TUNSETOWNER, os.geteuid())
    fcntl.ioctl(tun.fileno(), TUNSETPERSIST, 1)
    say(event="persisted", ifname=tun.name)
    wait_for_go()
    tun.close()
    try:
        TunDevice.open(tun.name).close()
        again = "attached"
    except PlatformError as error:
        again = error.sentence
    say(event="closed", attach_again=again)


def flood(args: argparse.Namespace) -> None:
    """Open `--count` connections and leave them idle; report what came back at once."""
    connections = []
    for _ in range(args.count):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.connect(args.socket)
        connections.append(sock)
    time.sleep(1.0)  # the helper answers refusals straight away
    refused = []
    for sock in connections:
        ready, _, _ = select.select([sock], [], [], 0)
        if ready:
            data = sock.recv(65536)
            refused.append(json.loads(data)["error"] if data else "closed")
    say(event="flooded", refused=len(refused), sentences=sorted(set(refused)))
    wait_for_go()
    deadline = time.monotonic() + 30
    open_now = [sock for sock in connections if sock.fileno() >= 0]
    while time.monotonic() < deadline:  # the idle ones are closed by the helper in a while
        still = [sock for sock in open_now if not select.select([sock], [], [], 0)[0]]
        if not still:
            break
        time.sleep(0.2)
    say(
        event="idle_closed",
        seconds=round(30 - (deadline - time.monotonic()), 1),
        still_open=len([sock for sock in open_now if not select.select([sock], [], [], 0)[0]]),
    )
    for sock in connections:
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["session", "raw", "race", "persist", "flood"])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--socket", required=True)
    parser.add_argument("--server", default="198.18.21.1")
    parser.add_argument("--mode", choices=["full", "split"], default="full")
    parser.add_argument("--ifname", default=None)
    parser.add_argument("--no-packets", action="store_true", help="go from applied straight to restore")
    parser.add_argument("--no-namespace", action="store_true", help="raw: send no namespace descriptor")
    args = parser.parse_args()
    {"session": session, "raw": raw, "race": race, "persist": persist, "flood": flood}[args.command](args)


if __name__ == "__main__":
    main()
