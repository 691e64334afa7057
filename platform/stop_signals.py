"""SIGINT (Ctrl-C) and SIGTERM for a program whose main thread sits in an event loop that is not
Python's (Qt's): Python runs its signal handlers only between bytecodes, which a thread blocked in
C++ never reaches. So the C-level handler writes a byte to a socket (`signal.set_wakeup_fd`), and
the event loop watches the other end (Qt: a QSocketNotifier on `fileno()`), wakes and asks
`drain()`. A socket pair rather than a pipe, because Windows accepts only a socket there.
"""

from __future__ import annotations

import signal
import socket

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Installed by `watch_stop_signals()`, from the main thread; `close()` puts the previous
    handlers back."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._previous_wakeup = signal.set_wakeup_fd(self._writer.fileno())
        # The wake-up byte does the work; the Python-level handler only keeps the default (exit
        # on SIGTERM, KeyboardInterrupt on SIGINT) from happening.
        self._previous_handlers = {signum: signal.signal(signum, _ignore) for signum in STOP_SIGNALS}

    def fileno(self) -> int:
        """Readable when a stop signal has arrived."""
        return self._reader.fileno()

    def drain(self) -> bool:
        """Empty the socket; True when a stop signal had arrived."""
        try:
            return bool(self._reader.recv(64))
        except BlockingIOError:
            return False

    def close(self) -> None:
        signal.set_wakeup_fd(self._previous_wakeup)
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)  # None: set outside Python
        self._reader.close()
        self._writer.close()


def _ignore(_signum: int, _frame: object) -> None:
    pass


def watch_stop_signals() -> StopSignals:
    return StopSignals()
