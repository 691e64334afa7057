"""Runs a command as the unprivileged user `nobody`, with this test run's Python still usable.

The tests run as root, and the interpreter with its packages may sit below a folder only root can
enter (a pyenv in /root). The command therefore starts in a private mount namespace in which each
such folder is covered by an empty, world-enterable tmpfs and only the needed subfolders are bound
back into it; then setpriv drops to nobody (no groups but the one asked for, no capabilities, no
new privileges). Nothing changes outside that namespace.
"""

from __future__ import annotations

import os
import pwd
import shlex
import site
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.realparts import require_program

REPO_ROOT = Path(__file__).resolve().parent.parent
NOBODY = pwd.getpwnam("nobody")


def as_nobody(command: Sequence[str], gid: int | None = None) -> list[str]:
    """argv that runs `command` as nobody (primary group `gid`, default nobody's own)."""
    for program in ("unshare", "setpriv", "mount"):
        require_program(program, "apt-get install util-linux mount")
    gid = NOBODY.pw_gid if gid is None else gid
    script = ["set -e", "keep=$(mktemp -d /tmp/sstp-unprivileged.XXXXXX)"]
    for blocked, children in _blocked_folders().items():
        for index, child in enumerate(children):
            script.append(f'mkdir "$keep/{index}"; mount --bind {shlex.quote(str(blocked / child))} "$keep/{index}"')
        script.append(f"mount -t tmpfs -o mode=0755,size=1m sstp-unprivileged {shlex.quote(str(blocked))}")
        for index, child in enumerate(children):
            target = shlex.quote(str(blocked / child))
            script.append(f'mkdir {target}; mount --bind "$keep/{index}" {target}; umount "$keep/{index}"; rmdir "$keep/{index}"')
    script.append('rmdir "$keep"')
    script.append(
        f"exec setpriv --reuid={NOBODY.pw_uid} --regid={gid} --clear-groups --no-new-privs -- "
        f'env HOME={shlex.quote(NOBODY.pw_dir)} USER=nobody LOGNAME=nobody PYTHONDONTWRITEBYTECODE=1 "$@"'
    )
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(script), "sh", *command]


def _blocked_folders() -> dict[Path, list[str]]:
    """Folders that `nobody` cannot enter on the way to the interpreter, its packages or the
    repository, each with the names of its subfolders on those ways."""
    needed = {
        Path(sys.executable),
        Path(os.path.realpath(sys.executable)),
        Path(sys.prefix),
        Path(sys.base_prefix),
        REPO_ROOT,
        *map(Path, site.getsitepackages()),
    }
    needed |= {Path(entry) for entry in sys.path if entry and os.path.isdir(entry)}
    blocked: dict[Path, list[str]] = {}
    for path in needed:
        parts = path.resolve().parts if path.exists() else path.parts
        for depth in range(1, len(parts)):
            folder = Path(*parts[:depth])
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                children = blocked.setdefault(folder, [])
                if parts[depth] not in children:
                    children.append(parts[depth])
                break
    return blocked  # (a second closed folder further down the same way is not handled)
