"""Runs NetConfigurator.apply inside a test's network namespace with a plan from the command line
(address, peer, mode, extra routes), for test_route_rule_linux.py. One JSON object per line on
stdout; after each event it waits for a line on stdin: opened (with the route snapshot the rule
sees), then applied or failed, then restored (only after applied), then closed.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from pathlib import Path

from pyroute2 import IPRoute

from sstpvpn.client.core.types import NetworkPlan
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.netconfig_linux import NetConfigurator
from sstpvpn.platform.route_snapshot_linux import read_route_snapshot
from sstpvpn.platform.tun_linux import TunDevice


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def wait_for_go() -> None:
    if not sys.stdin.readline():
        raise SystemExit("the test closed stdin")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--journal", required=True)
    parser.add_argument("--server", default="198.18.21.1")
    parser.add_argument("--mode", choices=["full", "split"], default="full")
    parser.add_argument("--address", default="198.18.30.10")
    parser.add_argument("--peer", default="198.18.30.1")
    parser.add_argument("--route", action="append", default=[], help="an extra network through the tunnel")
    args = parser.parse_args()
    journal = Path(args.journal)

    tun = TunDevice.open()
    with IPRoute() as ipr:
        seen = read_route_snapshot(ipr, exclude_index=ipr.link_lookup(ifname=tun.name)[0])
    say(
        event="opened",
        ifname=tun.name,
        attached=[f"{a.network} {a.interface}" for a in seen.attached],
        gateways=[f"{g.address} {g.interface}" for g in seen.gateways],
    )
    wait_for_go()
    config = NetConfigurator(
        tun.name,
        ipaddress.ip_address(args.server),
        full_tunnel=args.mode == "full",
        extra_routes=tuple(map(ipaddress.ip_network, args.route)),
        journal_path=journal,
    )
    plan = NetworkPlan(address=ipaddress.IPv4Address(args.address), peer=ipaddress.IPv4Address(args.peer), dns=(), mtu=1400)
    try:
        config.apply(plan)
    except PlatformError as error:
        say(event="failed", sentence=error.sentence, journal_exists=journal.exists())
    else:
        say(event="applied")
        wait_for_go()
        notes = config.restore()
        say(event="restored", notes=notes, journal_exists=journal.exists())
    wait_for_go()
    tun.close()
    say(event="closed")


if __name__ == "__main__":
    main()
