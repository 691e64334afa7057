"""sstp-vpn-helper started the way `sudo sstp-vpn-helper --listen PATH` starts it, as root in a test
namespace, for tests whose client runs as the unprivileged user nobody."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.netns import Namespace, stop_process
from tests.realparts import require_program

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RunningHelper:
    socket: Path
    folder: Path  # world-readable: copies of files nobody must read (pytest's folders are root's)
    process: object
    log: Path

    def share(self, path: Path) -> Path:
        """A copy of `path` that nobody can read."""
        copy = self.folder / path.name
        shutil.copyfile(path, copy)
        copy.chmod(0o644)
        return copy


@contextlib.contextmanager
def running_helper(ns: Namespace, group: str, workdir: Path) -> Iterator[RunningHelper]:
    """The helper listening in `ns`, for members of `group`; its log is printed at the end."""
    require_program("setpriv", "apt-get install util-linux")
    folder = Path(tempfile.mkdtemp(prefix="sstp-helper-"))
    folder.chmod(0o755)
    socket_path, log = folder / "helper.sock", workdir / "helper.log"
    with open(log, "w") as log_file:
        process = ns.popen(
            sys.executable,
            "-m",
            "sstpvpn.platform.helper_linux",
            "--listen",
            str(socket_path),
            "--group",
            group,
            "--journal",
            str(workdir / "journal.json"),
            cwd=REPO_ROOT,
            stderr=log_file,
        )
    try:
        deadline = time.monotonic() + 10
        while not socket_path.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert socket_path.exists(), log.read_text()
        yield RunningHelper(socket_path, folder, process, log)
    finally:
        stop_process(process)
        print(log.read_text())
        shutil.rmtree(folder, ignore_errors=True)
