"""The life of the network undo journal, shared by the three configurators (configurator.py
drives it; each OS brings its step types, its owner identity and how one step is undone).

One journal per machine (per network namespace on Linux), owned by the process that made the
changes (its identity is an OS-specific `Owners` probe: process id plus start time, since ids
are reused). The rules:

- One session at a time: apply() takes the journal's lock (UndoJournal.try_hold) before it
  looks at the journal and keeps it until restore() has emptied it; while another session
  holds it, apply() is refused with busy_sentence(), also when that session's journal is still
  empty. apply() first undoes what a *dead* owner left behind (the kernel dropped its lock).
- restore() leaves a live foreign owner's changes alone and says so.
- Undo runs newest step first; a step that is undone leaves the journal at once, a step that
  fails stays (and the first failure is raised after trying all), so a later repair retries. A
  step that is unknown or damaged is such a failure; the others are still undone.
- A step is told whether the interfaces it names can still be ours (Owners.same_interfaces). On
  Windows and macOS only when the journal's owner is this very process: a tunnel interface lives
  exactly as long as the process holding it (utun socket, Wintun adapter handle), and its name is
  soon reused by the next one, so the steps tied to it are never replayed against an interface of
  the same name after a crash. On Linux when the owner ran in this boot and network namespace;
  each step then also checks the interface index it recorded. Machine-wide steps (the host route
  to the server, system DNS, a rewritten resolv.conf) are always undone.
"""

from __future__ import annotations

import logging
import os
import pathlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal import UndoJournal
from sstpvpn.platform.journal_steps import JournalStep, StepCatalog

log = logging.getLogger(__name__)

# (step, its interfaces can still be ours) -> a sentence about something deliberately left alone, or None.
UndoStep = Callable[[JournalStep, bool], "str | None"]


class Owners(Protocol):
    def current(self) -> dict[str, Any]:
        """The identity of this process, as stored in a journal it begins."""

    def is_running(self, owner: dict[str, Any]) -> bool:
        """Whether `owner` is another process that is still running (never this process)."""

    def same_interfaces(self, owner: dict[str, Any]) -> bool:
        """Whether the interfaces named in `owner`'s steps can still be the ones it changed."""


class ProcessOwners:
    """Owners identified by process id plus a start marker, since ids are reused. `start_marker`
    returns the marker of a running process, None when it is gone; it is stored under `key`."""

    def __init__(self, key: str, start_marker: Callable[[int], object | None]) -> None:
        self._key = key
        self._start_marker = start_marker
        self._me: dict[str, Any] | None = None

    def current(self) -> dict[str, Any]:
        if self._me is None:
            self._me = {"pid": os.getpid(), self._key: self._start_marker(os.getpid())}
        return dict(self._me)

    def is_running(self, owner: dict[str, Any]) -> bool:
        pid = owner.get("pid")
        if not isinstance(pid, int) or pid == os.getpid():
            return False
        marker = self._start_marker(pid)
        return marker is not None and marker == owner.get(self._key)

    def same_interfaces(self, owner: dict[str, Any]) -> bool:
        return owner == self.current()  # the tunnel interface dies with the process holding it


@dataclass(frozen=True)
class Replay:
    """What one operating system brings to the journal's life: who owns a journal, the step
    types it writes, and how one step is undone."""

    owners: Owners
    catalog: StepCatalog
    undo_step: UndoStep


def busy_sentence() -> str:
    return _(
        "Another VPN connection on this computer has changed the routes or DNS, or is changing them right now; "
        "disconnect it first, then connect again."
    )


def load_stale(journal: UndoJournal, is_running: Callable[[dict[str, Any]], bool]) -> UndoJournal | None:
    """`journal` (whose lock the caller holds) loaded, when a dead client left it behind; None
    when there is nothing to repair (no journal, an empty one, or one whose owner still runs). A
    damaged journal is moved aside, so it does not block every later start, and reported."""
    if not journal.exists():
        return None
    try:
        contents = journal.load()
    except PlatformError as error:
        aside = journal.set_aside(".damaged")
        raise PlatformError(_("{problem} It was moved to {path}.").format(problem=error.sentence, path=aside)) from error
    if not contents.steps:
        journal.discard()
        return None
    if is_running(contents.owner):
        return None  # a live connection's journal (written by a version without the lock)
    return journal


def begin(journal: UndoJournal, replay: Replay) -> None:
    """Take the journal's lock and start a fresh journal for apply(), after undoing what a dead
    owner left behind. The lock stays held until restore() has emptied the journal."""
    if not journal.try_hold():
        raise PlatformError(busy_sentence())
    owners = replay.owners
    try:
        if journal.exists():
            try:
                contents = journal.load()
            except PlatformError:
                repair_held(journal, replay)  # moves the damaged file aside, says so
                raise
            if contents.steps:
                if contents.owner == owners.current():
                    raise PlatformError(_("The network is already configured for this connection; restore it before applying a new plan."))
                if owners.is_running(contents.owner):
                    raise PlatformError(
                        _("Another sstp-vpn (process {pid}) has the network configured; disconnect it first.").format(pid=contents.owner.get("pid"))
                    )
            repair_held(journal, replay)
        journal.begin(owners.current())
    except BaseException:
        journal.release()
        raise


def restore(journal: UndoJournal, replay: Replay) -> list[str]:
    """Undo everything in the journal unless a live foreign process owns it; then give up the
    lock. A step that cannot be undone keeps the lock (and the journal) until this process ends."""
    if not journal.exists():
        journal.release()
        return []
    contents = journal.load()
    if contents.owner != replay.owners.current() and replay.owners.is_running(contents.owner):
        note = _("The network configuration belongs to another sstp-vpn (process {pid}); it was left alone.").format(pid=contents.owner.get("pid"))
        log.warning("%s", note)
        return [note]
    notes = undo_all(journal, replay.owners.same_interfaces(contents.owner), replay)
    journal.release()
    for note in notes:
        log.warning("%s", note)
    return notes


def repair(journal_path: pathlib.Path, replay: Replay) -> bool:
    """Undo what a client that died left behind; True if there was something to undo. A journal
    whose lock a live session holds is left alone."""
    journal = UndoJournal(journal_path)
    if not journal.try_hold():
        return False
    try:
        return repair_held(journal, replay)
    finally:
        journal.release()


def repair_held(journal: UndoJournal, replay: Replay) -> bool:
    """Undo, step by step, the journal (whose lock the caller holds) a dead owner left; True if
    there was one."""
    stale = load_stale(journal, replay.owners.is_running)
    if stale is None:
        return False
    for note in undo_all(stale, replay.owners.same_interfaces(stale.owner), replay):
        log.warning("%s", note)
    return True


def undo_all(journal: UndoJournal, same_interfaces: bool, replay: Replay) -> list[str]:
    """Undo newest first; see the module docstring for what happens on failure. Each note is
    said once, however many steps give it."""
    notes: list[str] = []
    failures: list[PlatformError] = []
    for record in reversed(journal.steps):
        try:
            note = replay.undo_step(replay.catalog.from_json(record), same_interfaces)
        except PlatformError as error:
            failures.append(error)
            continue
        except (KeyError, TypeError, ValueError) as error:  # a field missing or of the wrong kind
            failures.append(
                PlatformError(
                    _("The network undo journal {path} has a damaged step ({step!r}: {error!r}); undo it by hand.").format(
                        path=journal.path, step=record.get("op"), error=error
                    )
                )
            )
            continue
        if note and note not in notes:
            notes.append(note)
        try:
            journal.forget(record)
        except PlatformError:
            # The disk is full (or the folder unwritable): keep undoing. An undone step left in
            # the file is harmless, undoing it again finds it gone.
            pass
    if failures:
        raise failures[0]
    journal.discard()
    return notes
