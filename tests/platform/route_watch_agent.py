"""Runs the netlink route watcher inside a test's network namespace (`ip netns exec NAME python
route_watch_agent.py TARGET`) and reports on stdout, one JSON object a line: `ready` with the
first answer, `changed` with each callback, `cpu` (seconds used during an idle second) and
`closed`. Commands on stdin: `target ADDRESS [EXCLUDED_INTERFACE]`, `idle`, `close`."""

from __future__ import annotations

import json
import os
import sys
import time

from sstpvpn.platform.route_watch_linux import RouteWatcher


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def main() -> None:
    watcher = RouteWatcher(lambda usable: say(event="changed", usable=usable, at=time.monotonic()), debounce=0.2)
    watcher.set_target(sys.argv[1])
    watcher.start()
    time.sleep(0.5)
    say(event="ready", usable=watcher.usable)
    for line in sys.stdin:
        command, *args = line.split()
        if command == "target":
            watcher.set_target(args[0], args[1] if len(args) > 1 else None)
        elif command == "idle":
            before = sum(os.times()[:2])
            time.sleep(1.0)
            say(event="cpu", seconds=sum(os.times()[:2]) - before)
        elif command == "close":
            started = time.monotonic()
            watcher.close()
            say(event="closed", seconds=time.monotonic() - started, alive=watcher._thread.is_alive())
            return


if __name__ == "__main__":
    main()
