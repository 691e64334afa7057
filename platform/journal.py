"""The undo journal: a small JSON file listing the changes made to the system, so that they can
be undone in reverse order even after the process that made them was killed.

OS-independent: a step is any JSON-able dict; what a step means and how it is undone belongs to
the OS module that wrote it. The file is replaced atomically (write a temporary file in the same
folder, fsync, rename, fsync the folder), so a crash leaves either the old or the new journal,
never half of one.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sstpvpn.platform.errors import PlatformError

FORMAT = "sstp-vpn undo journal"
VERSION = 1

Step = dict[str, Any]


@dataclass
class JournalContents:
    owner: dict[str, Any] = field(default_factory=dict)  # who made the changes (pid, boot, ...)
    steps: list[Step] = field(default_factory=list)  # in the order the changes were made


class UndoJournal:
    """One journal file. Every method that changes it leaves it on disk before returning."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._contents: JournalContents | None = None

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
                f"The network undo journal {self.path} cannot be read ({error.strerror}); "
                "check its permissions or run sstp-vpn as the user that made it."
            ) from error
        self._contents = _parse(raw, self.path)
        return self._contents

    @property
    def steps(self) -> list[Step]:
        return list(self._current().steps)

    @property
    def owner(self) -> dict[str, Any]:
        return dict(self._current().owner)

    # -- writing -------------------------------------------------------------------------

    def begin(self, owner: dict[str, Any]) -> None:
        """Start a fresh, empty journal owned by `owner`."""
        self._contents = JournalContents(owner=dict(owner))
        self._save()

    def record(self, step: Step) -> None:
        """Append a step; call this *before* making the change it undoes."""
        contents = self._current()
        contents.steps.append(dict(step))
        self._save()

    def forget(self, step: Step) -> None:
        """Drop the last step equal to `step`: its change was undone, or never happened."""
        contents = self._current()
        for position in range(len(contents.steps) - 1, -1, -1):
            if contents.steps[position] == step:
                del contents.steps[position]
                self._save()
                return

    def discard(self) -> None:
        """Delete the journal: nothing is left to undo."""
        self._contents = JournalContents()
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        except OSError as error:
            raise PlatformError(
                f"The network undo journal {self.path} cannot be removed ({error.strerror}); "
                "delete it by hand."
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
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _CLOEXEC, 0o600)
            with open(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
            _fsync_directory(self.path.parent)
        except OSError as error:
            _remove_quietly(temporary)  # a half-written copy must not stay behind
            if error.errno in _NO_SPACE:
                raise PlatformError(
                    f"Cannot record the network changes in {self.path.parent} (no space left on "
                    "the device), so nothing was changed; free some space and connect again."
                ) from error
            raise PlatformError(
                f"The network undo journal {self.path} cannot be written ({error.strerror}); "
                "without it a crash could leave routes or DNS changed, so nothing was changed. "
                "Check that its folder is writable."
            ) from error


def _parse(raw: bytes, path: Path) -> JournalContents:
    damaged = (
        f"The network undo journal {path} is damaged, so the changes a crashed sstp-vpn made "
        "cannot be undone automatically; check the routes and /etc/resolv.conf by hand."
    )
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PlatformError(damaged) from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise PlatformError(damaged)
    if document.get("version") != VERSION:
        raise PlatformError(
            f"The network undo journal {path} was written by another version of sstp-vpn "
            f"(format {document.get('version')!r}); undo its changes with that version, "
            "or check the routes and /etc/resolv.conf by hand and delete the file."
        )
    owner, steps = document.get("owner"), document.get("steps")
    if not isinstance(owner, dict) or not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise PlatformError(damaged)
    return JournalContents(owner=owner, steps=steps)


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)  # absent on Windows, where handles are not inherited by default
_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}  # a full disk, or the quota used up


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass  # never created, or the folder is unusable: the original error is the one to report


def _fsync_directory(directory: Path) -> None:
    # The rename is durable only once the folder itself is on disk.
    if os.name == "nt":
        return  # os.open cannot open a folder on Windows; there the rename alone must do
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
