"""The undo journal: a small JSON file listing the changes made to the system, so that they can
be undone in reverse order even after the process that made them was killed.

OS-independent: it stores each step as a JSON record (a dict with an "op"); journal_steps turns
typed steps into records and back, and what a step means and how it is undone belongs to the OS
module that wrote it. The file is replaced atomically (write a temporary file in the same
folder, fsync, rename, fsync the folder), so a crash leaves either the old or the new journal,
never half of one. The temporary file gets a random name and is created exclusively, never
through a symlink (tempfile.mkstemp), so nothing planted in the folder can redirect the write.

One session at a time: a session holds the journal's lock (an flock on `<journal>.lock`) from
the moment it checks the journal until the journal is removed, so two sessions can never both
decide the journal is theirs to begin. The kernel drops the lock when the holder dies, which is
exactly when its journal becomes a repair job for the next session.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.errors import PlatformError

FORMAT = "sstp-vpn undo journal"
VERSION = 1

Record = dict[str, Any]  # one step, as JSON


def linux_journal_path(name: str = "network") -> Path:
    """Where the Linux undo journal lives (netconfig_linux.default_journal_path): one per network
    namespace, so clients in different namespaces (containers, tests) never share one.

    As root: /var/lib/sstp-vpn/, on disk rather than in /run, because one change outlives a
    reboot (a rewritten /etc/resolv.conf); kernel changes made in an earlier boot are skipped on
    repair (the journal records the boot). Otherwise the user's state folder (platformdirs).
    Here rather than in netconfig_linux so that finding it costs no pyroute2 import.
    """
    filename = f"{name}-journal-netns{os.stat('/proc/self/ns/net').st_ino}.json"
    if sys.platform != "win32" and os.geteuid() == 0:  # (mypy also checks this file for Windows)
        return Path("/var/lib/sstp-vpn") / filename
    import platformdirs

    return platformdirs.user_state_path("sstp-vpn") / filename


def kill_switch_journal_path(network_journal: Path | None = None) -> Path:
    """The Linux kill switch's own journal (kill_switch_linux), beside the network's (default:
    linux_journal_path()). Here so that looking for it imports nothing more."""
    network_journal = network_journal if network_journal is not None else linux_journal_path()
    return network_journal.with_name(f"{network_journal.stem}-kill-switch.json")


@dataclass
class JournalContents:
    owner: dict[str, Any] = field(default_factory=dict)  # who made the changes (pid, boot, ...)
    steps: list[Record] = field(default_factory=list)  # in the order the changes were made


class UndoJournal:
    """One journal file. Every method that changes it leaves it on disk before returning."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._contents: JournalContents | None = None
        self._lock_fd: int | None = None

    # -- the session's lock ----------------------------------------------------------------

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @property
    def held(self) -> bool:
        return self._lock_fd is not None

    def hold_within(self, seconds: float) -> bool:
        """try_hold, again every 50 ms for up to `seconds` (another process may hold the lock
        for a moment, e.g. a repair looking at the journal)."""
        deadline = time.monotonic() + seconds
        while not self.try_hold():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def try_hold(self) -> bool:
        """Take the journal's lock for this object. False when another process (or another
        UndoJournal object) holds it; True when this one holds it now or did already."""
        if self._lock_fd is not None:
            return True
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | _CLOEXEC | _NOFOLLOW, 0o600)
        except OSError as error:
            if error.errno in _NO_SPACE:
                raise PlatformError(_no_space_sentence(self.path)) from error
            raise PlatformError(
                _("The lock of the network undo journal {lock} cannot be opened ({reason}); check the permissions of {folder}.").format(
                    lock=self.lock_path, reason=error.strerror, folder=self.path.parent
                )
            ) from error
        try:
            locked = _try_lock(fd)
        except OSError as error:  # e.g. ENOLCK: no lock, so no session
            os.close(fd)
            raise PlatformError(
                _("The network undo journal {path} cannot be locked ({reason}).").format(path=self.path, reason=error.strerror)
            ) from error
        if not locked:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def __del__(self) -> None:
        # An abandoned journal object lets go of the lock, as a dead process would; its journal
        # (if any) is then repaired by the next session.
        self.release()

    def release(self) -> None:
        """Give the lock up (safe to call when not held). The lock file stays: removing it would
        let two sessions lock two different files of the same name."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the lock

    # -- reading -------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> JournalContents:
        """Read the journal from disk. A damaged file raises PlatformError with a sentence."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._contents = JournalContents()
            return self._contents
        except OSError as error:
            raise PlatformError(
                _(
                    "The network undo journal {path} cannot be read ({reason}); check its permissions or run sstp-vpn as the user that made it."
                ).format(path=self.path, reason=error.strerror)
            ) from error
        self._contents = _parse(raw, self.path)
        return self._contents

    @property
    def steps(self) -> list[Record]:
        return list(self._current().steps)

    @property
    def owner(self) -> dict[str, Any]:
        return dict(self._current().owner)

    # -- writing -------------------------------------------------------------------------

    def begin(self, owner: dict[str, Any]) -> None:
        """Start a fresh, empty journal owned by `owner`."""
        self._contents = JournalContents(owner=dict(owner))
        self._save()

    def record(self, step: Record) -> None:
        """Append a step; call this *before* making the change it undoes."""
        contents = self._current()
        contents.steps.append(dict(step))
        self._save()

    def forget(self, step: Record) -> None:
        """Drop the last step equal to `step`: its change was undone, or never happened."""
        contents = self._current()
        for position in range(len(contents.steps) - 1, -1, -1):
            if contents.steps[position] == step:
                del contents.steps[position]
                self._save()
                return

    def discard(self) -> None:
        """Delete the journal: nothing is left to undo. The lock stays held (see release())."""
        self._contents = JournalContents()
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        except OSError as error:
            raise PlatformError(
                _("The network undo journal {path} cannot be removed ({reason}); delete it by hand.").format(path=self.path, reason=error.strerror)
            ) from error
        _fsync_directory(self.path.parent)

    def set_aside(self, suffix: str) -> Path:
        """Rename the journal file (e.g. a damaged one) so that it no longer blocks start-up."""
        target = self.path.with_name(self.path.name + suffix)
        os.replace(self.path, target)
        self._contents = JournalContents()
        return target

    # -- inner workings ------------------------------------------------------------------

    def _current(self) -> JournalContents:
        if self._contents is None:
            self.load()
        assert self._contents is not None
        return self._contents

    def _save(self) -> None:
        contents = self._current()
        document = {"format": FORMAT, "version": VERSION, "owner": contents.owner, "steps": contents.steps}
        data = json.dumps(document, indent=1, sort_keys=True).encode() + b"\n"
        temporary: Path | None = None
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # O_CREAT | O_EXCL | O_NOFOLLOW under a random name, mode 0600.
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
            temporary = Path(name)
            with open(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
            _fsync_directory(self.path.parent)
        except OSError as error:
            if temporary is not None:
                _remove_quietly(temporary)  # a half-written copy must not stay behind
            if error.errno in _NO_SPACE:
                raise PlatformError(_no_space_sentence(self.path)) from error
            raise PlatformError(
                _(
                    "The network undo journal {path} cannot be written ({reason}); "
                    "without it a crash could leave routes or DNS changed, so nothing was changed. "
                    "Check that its folder is writable."
                ).format(path=self.path, reason=error.strerror)
            ) from error


def _parse(raw: bytes, path: Path) -> JournalContents:
    damaged = _(
        "The network undo journal {path} is damaged, so the changes a crashed sstp-vpn made "
        "cannot be undone automatically; check the routes and /etc/resolv.conf by hand."
    ).format(path=path)
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PlatformError(damaged) from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PlatformError(damaged)
    if document.get("version") != VERSION:
        raise PlatformError(
            _(
                "The network undo journal {path} was written by another version of sstp-vpn "
                "(format {version!r}); undo its changes with that version, "
                "or check the routes and /etc/resolv.conf by hand and delete the file."
            ).format(path=path, version=document.get("version"))
        )
    owner, steps = document.get("owner"), document.get("steps")
    if not isinstance(owner, dict) or not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise PlatformError(damaged)
    return JournalContents(owner=owner, steps=steps)


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)  # absent on Windows, where handles are not inherited by default
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # absent on Windows, where unprivileged users make no symlinks


def _no_space_sentence(path: Path) -> str:
    return _(
        "Cannot record the network changes in {folder} (no space left on the device), so nothing was changed; free some space and connect again."
    ).format(folder=path.parent)


def _try_lock(fd: int) -> bool:
    """A non-blocking exclusive lock on the open file `fd`."""
    if sys.platform == "win32":  # no flock: lock the first byte instead
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def private_folder_problem(folder: Path) -> str | None:
    """None when only this process's user can change what is in `folder`: the folder and every
    folder above it belong to that user (or root) and nobody else may write in them, except in a
    sticky folder such as /tmp, where nobody may rename or remove another user's entries. A
    sentence otherwise (POSIX only; None elsewhere). Symbolic links on the way are followed: the
    folders that count are the ones the journal really lands in."""
    if sys.platform == "win32":
        return None
    folder = Path(os.path.realpath(folder))
    owners = {0, os.geteuid()}
    for current in [folder, *folder.parents]:
        try:
            info = os.lstat(current)
        except OSError as error:
            return _("The folder {folder} cannot be checked ({reason}).").format(folder=current, reason=error.strerror)
        writable_by_others = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if info.st_uid not in owners:
            return _(
                "The folder {folder} belongs to user {uid}, who could replace the network undo "
                "journal; keep the journal in a folder owned by root, such as /var/lib/sstp-vpn."
            ).format(folder=current, uid=info.st_uid)
        if writable_by_others and (current == folder or not info.st_mode & stat.S_ISVTX):
            return _(
                "Other users may write in the folder {folder}, so they could plant files where the network "
                "undo journal is written; keep it in a folder only root can write, such as /var/lib/sstp-vpn."
            ).format(folder=current)
    return None


_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}  # a full disk, or the quota used up


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass  # never created, or the folder is unusable: the original error is the one to report


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the folder itself is on disk.
    if sys.platform == "win32":
        return  # os.open cannot open a folder on Windows; there the rename alone must do
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
