"""Who made the changes in a Linux undo journal: the process, its start time (process ids are
reused), the boot and the network namespace (journal_replay.Owners)."""

from __future__ import annotations

import os
import pathlib
from typing import Any


def owner(pid: int | None = None) -> dict[str, Any]:
    """The identity of process `pid` (this process when None)."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "start_time": _start_time(pid), "boot_id": _boot_id(), "netns": _netns()}


class LinuxOwners:
    def current(self) -> dict[str, Any]:
        return owner()

    def is_running(self, owner: dict[str, Any]) -> bool:
        pid = owner.get("pid")
        if not isinstance(pid, int) or pid == os.getpid() or owner.get("boot_id") != _boot_id():
            return False
        start_time = _start_time(pid)
        return start_time is not None and start_time == owner.get("start_time")

    def same_interfaces(self, owner: dict[str, Any]) -> bool:
        """Kernel changes of an earlier boot or another network namespace are gone or not ours to
        touch; within this one, each step still checks the interface index it recorded."""
        return owner.get("boot_id") == _boot_id() and owner.get("netns") == _netns()


def _start_time(pid: int) -> int | None:
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces and parentheses.
    return int(stat.rsplit(")", 1)[1].split()[19])


def _boot_id() -> str:
    return pathlib.Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _netns() -> int:
    return os.stat("/proc/self/ns/net").st_ino
