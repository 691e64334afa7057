"""The last attempts to connect, kept across runs for the support bundle: the server, when each
state was reached, and how the attempt ended.

It is built from `Status` snapshots only (state, server, failure), which hold no secret, so the
file cannot contain one. Stored as JSON in the user's state folder (platformdirs), rewritten
atomically at each state change, so an attempt that crashed the program is still there. A
history that cannot be written never stops a connection: the error is swallowed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .core.types import State, Status

APP_DIR_NAME = "sstp-vpn"
HISTORY_FILE = "attempts.json"
LIMIT = 20  # attempts kept

_START_STATES = (State.IDLE, State.DISCONNECTED)  # leaving one of these starts an attempt


def default_state_dir() -> Path:
    import platformdirs

    return platformdirs.user_state_path(APP_DIR_NAME)


@dataclass(frozen=True)
class Attempt:
    server: str
    started_at: float  # time.time()
    steps: tuple[tuple[float, str], ...]  # (time.time(), State.value), in order
    outcome: str = ""  # one sentence; "" while the attempt runs (or when the program died)
    failure_where: str = ""  # the failing layer ("tls", "auth", ...), "" when none
    failure_kind: str = ""  # FailureKind.value, "" when none

    def to_json(self) -> dict:
        return {
            "server": self.server,
            "started_at": self.started_at,
            "steps": [list(step) for step in self.steps],
            "outcome": self.outcome,
            "failure_where": self.failure_where,
            "failure_kind": self.failure_kind,
        }

    @classmethod
    def from_json(cls, data: dict) -> Attempt:
        return cls(
            str(data["server"]),
            float(data["started_at"]),
            tuple((float(t), str(s)) for t, s in data["steps"]),
            str(data.get("outcome", "")),
            str(data.get("failure_where", "")),
            str(data.get("failure_kind", "")),
        )


def outcome_sentence(status: Status, was_connected: bool) -> str:
    if status.failure is not None:
        return status.failure.reason
    return "Connected, then disconnected." if was_connected else "Stopped before the connection was up."


class AttemptHistory:
    """Feed it every `Status` of a session (`observe`); read the stored attempts with `load`."""

    def __init__(self, path: Path | None = None, limit: int = LIMIT, clock: Callable[[], float] = time.time) -> None:
        self.path = path if path is not None else default_state_dir() / HISTORY_FILE
        self.limit = limit
        self._clock = clock
        self._current: Attempt | None = None
        self._last_state = State.IDLE

    def load(self) -> list[Attempt]:
        """Oldest first; an unreadable or damaged file reads as empty."""
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            return [Attempt.from_json(item) for item in document["attempts"]]
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def observe(self, status: Status) -> None:
        if status.state is self._last_state:
            return
        now = self._clock()
        if self._current is None or self._last_state in _START_STATES:
            if status.state in _START_STATES:
                self._last_state = status.state
                return
            self._current = Attempt(status.server, now, ())
        attempt = self._current
        steps = (*attempt.steps, (now, status.state.value))
        attempt = Attempt(status.server or attempt.server, attempt.started_at, steps)
        if status.state in _START_STATES:  # the end (IDLE: the user cancelled, e.g. the password prompt)
            connected = any(state == State.CONNECTED.value for _, state in steps)
            failure = status.failure
            attempt = Attempt(
                attempt.server,
                attempt.started_at,
                steps,
                outcome_sentence(status, connected),
                failure.where if failure else "",
                failure.kind.value if failure else "",
            )
        self._store(self._current, attempt)
        self._current = attempt
        self._last_state = status.state

    def _store(self, previous: Attempt, attempt: Attempt) -> None:
        attempts = [a for a in self.load() if not (a.started_at == previous.started_at and a.server == previous.server)]
        attempts = [*attempts, attempt][-self.limit :]
        try:
            write_atomically(self.path, json.dumps({"attempts": [a.to_json() for a in attempts]}, indent=1))
        except OSError:
            pass  # the history is a convenience; a read-only home must not stop the VPN


def write_atomically(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
