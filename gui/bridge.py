"""From the engine's runner thread to the GUI thread.

The runner calls `on_status` and `on_log` on its own thread. They only emit Qt signals; because
this object lives in the GUI thread, Qt queues each emission and delivers it there, so slots
connected to `status` and `log` always run on the GUI thread and never share state with the
runner. Snapshots are immutable, so nothing needs a lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from sstpvpn.client.core.events import LogRecord
from sstpvpn.client.core.types import Status


@dataclass(frozen=True)
class LogEntry:
    """A log record with the wall-clock time it arrived (for the log window)."""

    time: float  # time.time()
    level: int
    message: str


class RunnerBridge(QObject):
    status = Signal(object)  # Status
    log = Signal(object)  # LogEntry
    password_retry = Signal(str)  # the server allows another password (MS-CHAPv2 R=1): why

    # -- called on the runner thread ---------------------------------------------------------

    def on_status(self, status: Status) -> None:
        self.status.emit(status)

    def on_log(self, record: LogRecord) -> None:
        self.log.emit(LogEntry(time.time(), record.level, record.message))

    def on_password_retry(self, reason: str) -> None:
        self.password_retry.emit(reason)
