"""What happens before a session connects, the same for the CLI and the tray: refuse a system
without an implementation, note one whose implementation has never run on a real system, and
(when this process makes the tunnel itself) restore what a crashed earlier session left behind.
Through the network helper, the helper keeps and repairs the journal instead.

`current.prepare_session()` calls `prepare` with this system's answers. Repairing can block (it
undoes routes and DNS, and may wait for the journal's lock): run it before connecting in the CLI
and on a worker thread in the tray.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sstpvpn.client.core.types import Failure, FailureKind, Layer
from sstpvpn.platform.errors import PlatformError


@dataclass(frozen=True)
class SessionPreparation:
    failure: Failure | None = None  # do not connect: the system is unsupported, or the repair failed
    repaired: bool = False  # a crashed session's network settings were restored
    note: str | None = None  # for the log: this system's implementation has never run on a real one


def prepare(
    unsupported: str | None, untested_note: str | None, uses_network_helper: Callable[[], bool], repair: Callable[[], bool]
) -> SessionPreparation:
    """`unsupported`: the sentence for a system without an implementation (else None);
    `repair`: undo a crashed session's journal, True when there was something to undo."""
    if unsupported:
        return SessionPreparation(failure=Failure(Layer.PLATFORM, unsupported, FailureKind.OTHER))
    if uses_network_helper():
        return SessionPreparation(note=untested_note)
    try:
        repaired = repair()
    except PlatformError as error:
        return SessionPreparation(failure=error.to_failure(), note=untested_note)
    return SessionPreparation(repaired=bool(repaired), note=untested_note)
