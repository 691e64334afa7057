"""The processes of the kill switch tests, one JSON line on stdout per event.

listen --tcp PORT... --udp PORT...   (the far side: report each TCP connection and datagram)
probe --tcp HOST:PORT... --udp HOST:PORT...   (the client side: try each once, report what passed)
flood --udp HOST:PORT --seconds S   (send datagrams as fast as possible; report how many went out)
own --journal PATH [rules]   (root: this process sets an NftKillSwitch and waits, to be killed)
helper --socket PATH [rules]   (HelperKillSwitch: set, "go", set again with --replace-tunnel, "go", remove)
repair --socket PATH   (the helper's "repair" through repair_through_helper)
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import select
import socket
import sys
import time
from pathlib import Path

from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.kill_switch import AllowedEndpoint, KillSwitchRules


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def wait_for_go() -> None:
    if not sys.stdin.readline():
        raise SystemExit("the test closed stdin")


def split(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def rules(args: argparse.Namespace, tunnels: list[str]) -> KillSwitchRules:
    endpoints = tuple(AllowedEndpoint(ipaddress.ip_address(host), port) for host, port in map(split, args.endpoint))
    return KillSwitchRules(endpoints, tuple(tunnels), args.allow_lan)


def listen(args: argparse.Namespace) -> None:
    sockets = []
    for port in args.tcp:
        for fam, any_address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            sock = socket.socket(fam, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((any_address, port))
            sock.listen(64)
            sockets.append(sock)
    for port in args.udp:
        for fam, any_address in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            sock = socket.socket(fam, socket.SOCK_DGRAM)
            if fam == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((any_address, port))
            sockets.append(sock)
    say(event="listening")
    while True:
        readable, _, _ = select.select(sockets, [], [])
        for sock in readable:
            if sock.type == socket.SOCK_STREAM:
                connection, peer = sock.accept()
                say(event="tcp", port=sock.getsockname()[1], local=connection.getsockname()[0], peer=peer[0])
                connection.close()
            else:
                _data, peer = sock.recvfrom(2048)
                say(event="udp", port=sock.getsockname()[1], peer=peer[0])


def probe(args: argparse.Namespace) -> None:
    results = {}
    for target in args.tcp:
        host, port = split(target)
        sock = socket.socket(family(host), socket.SOCK_STREAM)
        sock.settimeout(args.timeout)
        try:
            sock.connect((host, port))
            results[f"tcp {target}"] = "connected"
        except OSError as error:
            results[f"tcp {target}"] = type(error).__name__
        finally:
            sock.close()
    for target in args.udp:
        source, _, target = target.rpartition(">")  # "68>198.18.20.1:67": from that source port
        host, port = split(target)
        sock = socket.socket(family(host), socket.SOCK_DGRAM)
        if source:
            sock.bind(("::" if ":" in host else "0.0.0.0", int(source)))
            target = f"{source}>{target}"
        try:
            sock.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01", (host, port))
            results[f"udp {target}"] = "sent"
        except OSError as error:
            results[f"udp {target}"] = type(error).__name__
        finally:
            sock.close()
    say(**results)


def flood(args: argparse.Namespace) -> None:
    host, port = split(args.udp_target)
    sock = socket.socket(family(host), socket.SOCK_DGRAM)
    sock.setblocking(False)
    say(event="flooding")
    sent = refused = 0
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            sock.sendto(b"x", (host, port))
            sent += 1
        except OSError:
            refused += 1
    say(event="flooded", sent=sent, refused=refused)


def own(args: argparse.Namespace) -> None:
    """Set the kill switch in this process; each stdin line "replace N" replaces the rules N times
    (the LAN allowed and not, in turn); "remove" or the end of stdin removes it."""
    from sstpvpn.platform.kill_switch_linux import NftKillSwitch

    kill_switch = NftKillSwitch(Path(args.journal))
    first = rules(args, args.tunnel)
    try:
        kill_switch.set(first)
    except PlatformError as error:
        say(event="failed", sentence=error.sentence)
        return
    say(event="set")
    for line in sys.stdin:
        if line.startswith("replace"):
            count = int(line.split()[1])
            for number in range(count):
                kill_switch.set(KillSwitchRules(first.endpoints, first.tunnels, allow_lan=number % 2 == 0))
            kill_switch.set(first)
            say(event="replaced", count=count)
        else:
            break
    kill_switch.remove()
    say(event="removed")


def helper(args: argparse.Namespace) -> None:
    from sstpvpn.platform.helper_client import HelperKillSwitch

    kill_switch = HelperKillSwitch(args.socket)
    try:
        kill_switch.set(rules(args, args.tunnel))
    except PlatformError as error:
        say(event="failed", sentence=error.sentence)
        return
    say(event="set")
    wait_for_go()
    try:
        kill_switch.set(rules(args, args.replace_tunnel))
    except PlatformError as error:
        say(event="failed", sentence=error.sentence)
        return
    say(event="replaced")
    wait_for_go()
    kill_switch.remove()
    say(event="removed")


def repair(args: argparse.Namespace) -> None:
    from sstpvpn.platform.helper_client import repair_through_helper

    try:
        say(event="repaired", notes=repair_through_helper(args.socket))
    except PlatformError as error:
        say(event="failed", sentence=error.sentence)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["listen", "probe", "flood", "own", "helper", "repair"])
    parser.add_argument("--tcp", action="append", default=[])
    parser.add_argument("--udp", action="append", default=[])
    parser.add_argument("--udp-target")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=1.5)
    parser.add_argument("--journal")
    parser.add_argument("--socket")
    parser.add_argument("--endpoint", action="append", default=[])
    parser.add_argument("--tunnel", action="append", default=[])
    parser.add_argument("--replace-tunnel", action="append", default=[])
    parser.add_argument("--allow-lan", action="store_true")
    args = parser.parse_args()
    if args.command == "listen":
        args.tcp, args.udp = [int(port) for port in args.tcp], [int(port) for port in args.udp]
    {"listen": listen, "probe": probe, "flood": flood, "own": own, "helper": helper, "repair": repair}[args.command](args)


if __name__ == "__main__":
    main()
