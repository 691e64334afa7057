"""Runs the Linux configurator's roaming step inside a test's network namespace (`ip netns exec
NAME python route_follow_agent.py SERVER JOURNAL`): opens a TUN device, applies a full tunnel,
then carries out one command per stdin line and answers with one JSON object a line on stdout:
`follow` (follow_server_route: its sentence or its error, and how long it took), `restore`,
`exit` (leaves without restoring, as a killed client would)."""

from __future__ import annotations

import ipaddress
import json
import sys
import time
from pathlib import Path

from sstpvpn.client.core.types import NetworkPlan
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.netconfig_linux import NetConfigurator
from sstpvpn.platform.tun_linux import TunDevice


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    server, journal = sys.argv[1], Path(sys.argv[2])
    tun = TunDevice.open(None)
    config = NetConfigurator(tun.name, ipaddress.ip_address(server), full_tunnel=True, journal_path=journal)
    plan = NetworkPlan(address=ipaddress.IPv4Address("198.18.30.10"), peer=ipaddress.IPv4Address("198.18.30.1"), dns=(), mtu=1400)
    config.apply(plan)
    say(event="applied", ifname=tun.name)
    for line in sys.stdin:
        command = line.strip()
        if command == "follow":
            started = time.perf_counter()
            try:
                say(event="followed", sentence=config.follow_server_route(), seconds=time.perf_counter() - started)
            except PlatformError as error:
                say(event="failed", sentence=error.sentence)
        elif command == "restore":
            say(event="restored", notes=config.restore(), journal_exists=journal.exists())
        elif command == "exit":
            say(event="exiting")
            return
    tun.close()


if __name__ == "__main__":
    main()
