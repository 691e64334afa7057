"""The life of the network undo journal, shared by the configurators (Linux brings its own
repair of a held journal; Windows and macOS use repair_held()).

One journal per machine, owned by the process that made the changes (its identity is an
OS-specific `Owners` probe: process id plus start time, since ids are reused). The rules, the
same as netconfig_linux's:

- One session at a time: apply() takes the journal's lock (UndoJournal.try_hold) before it
  looks at the journal and keeps it until restore() has emptied it; while another session
  holds it, apply() is refused with BUSY_SENTENCE, also when that session's journal is still
  empty. apply() first undoes what a *dead* owner left behind (the kernel dropped its lock).
- restore() leaves a live foreign owner's changes alone and says so.
- Undo runs newest step first; a step that is undone leaves the journal at once, a step that
  fails stays (and the first failure is raised after trying all), so a later repair retries.
- A step is told whether the tunnel interface it names is still ours: only when the journal's
  owner is this very process. A tunnel interface lives exactly as long as the process holding
  it (utun socket, Wintun adapter handle), and its name is soon reused by the next one, so the
  steps tied to it (addresses, interface routes, per-interface DNS) are never replayed against
  an interface of the same name after a crash. Machine-wide steps (the host route to the
  server, system DNS) are always undone.
"""

from __future__ import annotations

import logging
import os
import pathlib
from typing import Any, Callable, Protocol

from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal import Step, UndoJournal

log = logging.getLogger(__name__)

# (step, interface_is_ours) -> a sentence about something deliberately left alone, or None.
UndoStep = Callable[[Step, bool], str | None]


class Owners(Protocol):
    def current(self) -> dict[str, Any]:
        """The identity of this process, as stored in a journal it begins."""

    def is_running(self, owner: dict[str, Any]) -> bool:
        """Whether `owner` is another process that is still running (never this process)."""


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


BUSY_SENTENCE = ("Another VPN connection on this computer has changed the routes or DNS, or is changing "
                 "them right now; disconnect it first, then connect again.")


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
        raise PlatformError(f"{error.sentence} It was moved to {aside}.") from error
    if not contents.steps:
        journal.discard()
        return None
    if is_running(contents.owner):
        return None  # a live connection's journal (written by a version without the lock)
    return journal


def begin(journal: UndoJournal, owners: Owners, repair_held: Callable[[UndoJournal], object]) -> None:
    """Take the journal's lock and start a fresh journal for apply(), after `repair_held` has
    undone what a dead owner left behind (see repair_held() below; Linux has its own). The lock
    stays held until restore() has emptied the journal."""
    if not journal.try_hold():
        raise PlatformError(BUSY_SENTENCE)
    try:
        if journal.exists():
            try:
                contents = journal.load()
            except PlatformError:
                repair_held(journal)  # moves the damaged file aside, says so
                raise
            if contents.steps:
                if contents.owner == owners.current():
                    raise PlatformError("The network is already configured for this connection; "
                                        "restore it before applying a new plan.")
                if owners.is_running(contents.owner):
                    raise PlatformError(f"Another sstp-vpn (process {contents.owner.get('pid')}) has "
                                        "the network configured; disconnect it first.")
            repair_held(journal)
        journal.begin(owners.current())
    except BaseException:
        journal.release()
        raise


def restore(journal: UndoJournal, owners: Owners, undo_step: UndoStep) -> list[str]:
    """Undo everything in the journal unless a live foreign process owns it; then give up the
    lock. A step that cannot be undone keeps the lock (and the journal) until this process ends."""
    if not journal.exists():
        journal.release()
        return []
    contents = journal.load()
    me = owners.current()
    if contents.owner != me and owners.is_running(contents.owner):
        note = (f"The network configuration belongs to another sstp-vpn (process "
                f"{contents.owner.get('pid')}); it was left alone.")
        log.warning("%s", note)
        return [note]
    notes = undo_all(journal, interface_is_ours=contents.owner == me, undo_step=undo_step)
    journal.release()
    for note in notes:
        log.warning("%s", note)
    return notes


def repair(journal_path: pathlib.Path, repair_held: Callable[[UndoJournal], bool]) -> bool:
    """Undo what a client that died left behind (`repair_held`, with the lock taken); True if
    there was something to undo. A journal whose lock a live session holds is left alone."""
    journal = UndoJournal(journal_path)
    if not journal.try_hold():
        return False
    try:
        return repair_held(journal)
    finally:
        journal.release()


def repair_held(journal: UndoJournal, owners: Owners, undo_step: UndoStep) -> bool:
    """Undo, step by step, the journal (whose lock the caller holds) a dead owner left; True if
    there was one."""
    stale = load_stale(journal, owners.is_running)
    if stale is None:
        return False
    notes = undo_all(stale, interface_is_ours=stale.owner == owners.current(), undo_step=undo_step)
    for note in notes:
        log.warning("%s", note)
    return True


def undo_all(journal: UndoJournal, *, interface_is_ours: bool, undo_step: UndoStep) -> list[str]:
    """Undo newest first; see the module docstring for what happens on failure."""
    notes: list[str] = []
    failures: list[PlatformError] = []
    for step in reversed(journal.steps):
        try:
            note = undo_step(step, interface_is_ours)
        except PlatformError as error:
            failures.append(error)
            continue
        except (KeyError, TypeError, ValueError) as error:  # a field missing or of the wrong kind
            failures.append(PlatformError(f"The network undo journal {journal.path} has a damaged step "
                                          f"({step.get('op')!r}: {error!r}); undo it by hand."))
            continue
        if note:
            notes.append(note)
        journal.forget(step)
    if failures:
        raise failures[0]
    journal.discard()
    return notes


def unknown_step(step: Step) -> PlatformError:
    return PlatformError(f"The network undo journal has a step this version does not know "
                         f"({step.get('op')!r}); undo it by hand.")
