"""Run a blocking call (keyring, diagnose, file repair) on a worker thread and get its outcome
back on the GUI thread, so the GUI never waits on the system keyring or the network.

The worker never holds the last reference to anything: the job (whose closure usually refers
to widgets) stays in `_jobs` until its outcome has been delivered on the GUI thread, and an
exception travels without its traceback (whose frames would refer to them too). A Qt object
whose last Python reference goes away on a worker thread is deleted in a roundabout way that
can crash.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

Job = tuple[Callable[[], Any], Callable[[Any, BaseException | None], None]]

_jobs: dict[int, Job] = {}  # token -> (work, on_done); added and removed on the GUI thread
_tokens = itertools.count()


class _Dispatcher(QObject):
    """Lives in the GUI thread; its signal, emitted by workers, is queued to that thread."""

    done = Signal(int, object, object)  # token, result, exception

    def __init__(self) -> None:
        super().__init__()
        self.done.connect(self._deliver)

    @Slot(int, object, object)
    def _deliver(self, token: int, result: Any, error: BaseException | None) -> None:
        _work, on_done = _jobs.pop(token)
        on_done(result, error)


_dispatcher: _Dispatcher | None = None  # made on first use, on the GUI thread


def run_in_background(work: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None], name: str = "sstp-vpn-worker") -> None:
    """Call `work()` on a new daemon thread; then `on_done(result, None)` or `on_done(None, error)`
    on the GUI thread. Call this from the GUI thread."""
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = _Dispatcher()
    token = next(_tokens)
    _jobs[token] = (work, on_done)
    threading.Thread(target=_work, args=(token, _dispatcher), name=name, daemon=True).start()


def _work(token: int, dispatcher: _Dispatcher) -> None:
    work = _jobs[token][0]
    try:
        result, error = work(), None
    except Exception as caught:  # noqa: BLE001 - handed to on_done, which decides
        result, error = None, caught.with_traceback(None)
        error.__context__ = error.__cause__ = None
    del work
    dispatcher.done.emit(token, result, error)


def pending_work() -> int:
    """How many calls have not delivered yet (tests wait for 0)."""
    return len(_jobs)
