"""One session per profile: a lock file per profile id, held while a connection for it runs.

The command line and the tray app of the same user take the same lock, so a second client for a
profile refuses at once with a sentence naming the process that has it, before it asks for a
password or touches the network. The lock is an advisory lock on an open file (flock on Linux and
macOS, a byte-range lock on Windows): the kernel drops it when the process ends, however it
ends, so a crashed client never blocks the next one. The file also holds the holder's process
id and program name, for the sentence; it is never deleted (deleting a lock file races with
the next process opening it).

Where: the user's runtime folder ($XDG_RUNTIME_DIR/sstp-vpn, private to the user and emptied at
logout). Without one (a root shell, cron, ssh without a login session) the user's state folder,
which is private too; never a shared /tmp folder that someone else could create first.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from .core.i18n import _

APP_DIR_NAME = "sstp-vpn"
READ_RETRY_SECONDS = 0.5  # the holder writes its pid just after taking the lock


class SessionInUse(Exception):
    """Another process holds the session; `sentence` names it and says what to do."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


def lock_folder() -> Path:
    if sys.platform.startswith("linux"):
        runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
        if os.path.isdir(runtime) and os.access(runtime, os.W_OK):
            return Path(runtime) / APP_DIR_NAME
    elif sys.platform in ("darwin", "win32"):
        import platformdirs

        return platformdirs.user_runtime_path(APP_DIR_NAME)
    import platformdirs

    return platformdirs.user_state_path(APP_DIR_NAME) / "sessions"


class SessionLock:
    """A held lock; release() (or the end of the process) frees it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the lock

    def __enter__(self) -> SessionLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_profile(profile_id: str, profile_name: str, program: str, folder: Path | None = None) -> SessionLock:
    """Take the lock of one profile for this process, or raise SessionInUse with a sentence such as
    "The profile Office is already connected by process 1234 (sstp-vpn connect); disconnect it
    first." `program` says what this process is, for the sentence another one shows."""
    if not profile_id or any(c in profile_id for c in "/\\\0") or profile_id in (".", ".."):
        raise ValueError(f"{profile_id!r} cannot be a profile id")
    folder = folder if folder is not None else lock_folder()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = folder / f"profile-{profile_id}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as error:
        raise SessionInUse(
            _(
                "Cannot check whether the profile {profile} is already connected: the folder "
                "{folder} cannot be used ({reason}); check its permissions."
            ).format(profile=profile_name, folder=folder, reason=error.strerror)
        ) from error
    if not _try_lock(fd):
        os.close(fd)
        holder = _read_holder(path)
        if holder:
            sentence = _("The profile {profile} is already connected by process {pid} ({program}); disconnect it first.").format(
                profile=profile_name, pid=holder["pid"], program=holder["program"]
            )
        else:
            sentence = _("The profile {profile} is already connected by another process; disconnect it first.").format(profile=profile_name)
        raise SessionInUse(sentence)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "program": program}).encode())
    except OSError:
        pass  # the lock itself holds; only the other process's sentence is less precise
    return SessionLock(path, fd)


def _read_holder(path: Path) -> dict | None:
    # Written right after the holder took the lock: wait a moment for it rather than say nothing.
    end = time.monotonic() + READ_RETRY_SECONDS
    while True:
        try:
            holder = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(holder.get("pid"), int) and isinstance(holder.get("program"), str):
                return holder
        except (OSError, ValueError, AttributeError):
            pass
        if time.monotonic() >= end:
            return None
        time.sleep(0.02)


if sys.platform == "win32":
    import msvcrt

    _LOCK_OFFSET = 1 << 30  # lock a byte far beyond the text, so readers of the pid are not blocked

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        finally:
            os.lseek(fd, 0, os.SEEK_SET)
        return True
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
