"""Run a blocking call (keyring, diagnose, file repair) on a worker thread and get its outcome
back on the GUI thread, so the GUI never waits on the system keyring or the network."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot


class _Delivery(QObject):
    """Lives in the GUI thread; its signal, emitted by the worker, is queued to that thread."""

    done = Signal(object, object)  # result, exception

    def __init__(self, on_done: Callable[[Any, BaseException | None], None]) -> None:
        super().__init__()
        self._on_done = on_done
        self.done.connect(self._deliver)

    @Slot(object, object)
    def _deliver(self, result: Any, error: BaseException | None) -> None:
        _in_flight.discard(self)
        self._on_done(result, error)


_in_flight: set[_Delivery] = set()  # keeps each delivery object alive until it has delivered


def run_in_background(work: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None],
                      name: str = "sstp-vpn-worker") -> None:
    """Call `work()` on a new daemon thread; then `on_done(result, None)` or `on_done(None, error)`
    on the GUI thread. Call this from the GUI thread."""
    delivery = _Delivery(on_done)
    _in_flight.add(delivery)

    def run() -> None:
        try:
            result = work()
        except Exception as error:  # noqa: BLE001 - handed to on_done, which decides
            delivery.done.emit(None, error)
        else:
            delivery.done.emit(result, None)

    threading.Thread(target=run, name=name, daemon=True).start()


def pending_work() -> int:
    """How many calls have not delivered yet (tests wait for 0)."""
    return len(_in_flight)
