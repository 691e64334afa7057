"""The recent log: every `LogRecord` the engine and runner reported (all levels), one line each,
in a small rotating file in the user's state folder, for the support bundle.

Log records are sentences built without passwords (the engine never puts credentials in a log
line; tests/integration/test_secrets_softether.py checks the file), so this file holds none.
Writing never raises: a full disk must not stop the VPN.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from .attempt_history import default_state_dir
from .core.events import LogRecord

LOG_FILE = "recent.log"
MAX_BYTES = 512 * 1024  # then the file becomes recent.log.1 (the older one is dropped)


def format_line(level: int, message: str, at: float) -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
    message = message.replace("\n", " | ")  # one record, one line
    return f"{stamp}  {logging.getLevelName(level):<7}  {message}\n"


class RecentLog:
    def __init__(self, path: Path | None = None, max_bytes: int = MAX_BYTES) -> None:
        self.path = path if path is not None else default_state_dir() / LOG_FILE
        self.max_bytes = max_bytes

    @property
    def older_path(self) -> Path:
        return self.path.with_name(self.path.name + ".1")

    def append(self, record: LogRecord, at: float | None = None) -> None:
        """`record`: a LogRecord, or anything with its `level` and `message` (the GUI's LogEntry)."""
        line = format_line(record.level, record.message, time.time() if at is None else at)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.path.exists() and self.path.stat().st_size + len(line) > self.max_bytes:
                self.path.replace(self.older_path)
            # Private to the user, like the rest of the state folder: it names servers and users.
            with os.fdopen(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a", encoding="utf-8") as file:
                file.write(line)
        except OSError:
            pass

    def tail(self, lines: int = 2000) -> list[str]:
        """The last `lines` lines, oldest first, without their line ends."""
        text = ""
        for path in (self.older_path, self.path):
            try:
                text += path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                pass
        return text.splitlines()[-lines:]
