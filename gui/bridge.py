"""From the runner's and the route watcher's threads to the GUI thread.

They call `post` (status snapshots, the route watcher's answers, a password retry) and `on_log`
on their own threads. Both only emit Qt signals; because this object lives in the GUI thread, Qt
queues each emission and delivers it there, so slots connected to `posted` and `log` always run
on the GUI thread and never share state with the other threads. The session driver also posts on
the GUI thread (a status again with the kill switch's new state): the controller connects with
Qt.QueuedConnection, so that such an item too comes after those posted before it, not at once.
The items are immutable, so nothing needs a lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from sstpvpn.client.core.events import LogRecord


@dataclass(frozen=True)
class LogEntry:
    """A log record with the wall-clock time it arrived (for the log window)."""

    time: float  # time.time()
    level: int
    message: str


class RunnerBridge(QObject):
    posted = Signal(object)  # a Status, or what client/session_driver.py posts
    log = Signal(object)  # LogEntry

    # -- called on another thread ------------------------------------------------------------

    def post(self, item: object) -> None:
        self.posted.emit(item)

    def on_log(self, record: LogRecord) -> None:
        self.log.emit(LogEntry(time.time(), record.level, record.message))
