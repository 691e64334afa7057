"""Applies a full-tunnel plan while the undo journal's folder is a tiny, full tmpfs, and reports
what happened as one JSON line.

Run it as `ip netns exec NS unshare --mount --propagation private python full_disk_agent.py ...`:
the tmpfs exists only in that private mount namespace, so nothing outside ever sees it, and it
goes away with the process even if the test dies.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import subprocess
from pathlib import Path

from sstpvpn.client.core.types import NetworkPlan
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.netconfig_linux import NetConfigurator
from sstpvpn.platform.tun_linux import TunDevice

PAGE = 4096
FILLER_PREFIX = "filler-"


def fill_leaving(folder: Path, free_pages: int) -> None:
    """Fill the tmpfs with one-page files until it refuses, then delete `free_pages` of them."""
    fillers: list[Path] = []
    while True:
        path = folder / f"{FILLER_PREFIX}{len(fillers)}"
        try:
            path.write_bytes(b"\0" * PAGE)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            path.unlink(missing_ok=True)
            break
        fillers.append(path)
    for path in fillers[:free_pages]:
        path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", required=True, help="an empty folder to cover with the tmpfs")
    parser.add_argument("--free-pages", type=int, default=0)
    parser.add_argument("--server", required=True)
    args = parser.parse_args()
    folder = Path(args.folder)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "sstp-full-disk", str(folder)], check=True)
    fill_leaving(folder, args.free_pages)
    journal = folder / "network-journal.json"
    plan = NetworkPlan(
        address=ipaddress.IPv4Address("198.18.30.10"),
        peer=ipaddress.IPv4Address("198.18.30.1"),
        dns=(ipaddress.IPv4Address("198.18.30.1"),),
        mtu=1400,
    )
    with TunDevice.open() as tun:
        config = NetConfigurator(tun.name, ipaddress.ip_address(args.server), full_tunnel=True, journal_path=journal)
        try:
            config.apply(plan)
            outcome = {"applied": True}
            config.restore()
        except PlatformError as error:
            outcome = {"error": error.sentence}
        # What apply() left behind in the folder, besides the filler (no journal, no temporary file).
        outcome["left_files"] = sorted(p.name for p in folder.iterdir() if not p.name.startswith(FILLER_PREFIX))
        # Before the device goes (taking its routes along): did the undo remove them itself?
        routes = json.loads(subprocess.run(["ip", "-j", "route", "show", "table", "all"], capture_output=True, text=True, check=True).stdout)
        routes += json.loads(subprocess.run(["ip", "-j", "-6", "route", "show", "table", "all"], capture_output=True, text=True, check=True).stdout)
        outcome["tunnel_routes_left"] = [r["dst"] for r in routes if r.get("dev") == tun.name and "/1" in r["dst"]]
    print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
