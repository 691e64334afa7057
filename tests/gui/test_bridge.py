"""The bridge carries the real runner's snapshots and log lines onto the GUI thread."""

from __future__ import annotations

import socket
import sys
import threading

from PySide6.QtCore import QThread

from sstpvpn.client.core.auth import AuthPolicy
from sstpvpn.client.core.engine import EngineSettings
from sstpvpn.client.core.events import Credentials
from sstpvpn.client.core.types import FailureKind, State
from sstpvpn.client.runner import Connect, EngineRunner, Shutdown
from sstpvpn.client.transport import TransportSettings
from sstpvpn.gui.bridge import RunnerBridge


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again at once: connecting is refused


def test_runner_snapshots_arrive_on_the_gui_thread(qtbot):
    bridge = RunnerBridge()
    received = []  # (state, failure, thread the slot ran on, thread that emitted)
    logs = []
    emitting_threads = set()

    def on_status(status):
        emitting_threads.add(threading.current_thread().name)
        bridge.post(status)

    bridge.posted.connect(lambda status: received.append((status, QThread.currentThread())))
    bridge.log.connect(lambda entry: logs.append((entry, QThread.currentThread())))
    runner = EngineRunner(on_status, bridge.on_log)
    runner.start()
    port = closed_port()
    runner.submit(Connect(TransportSettings("127.0.0.1", port, timeout=5), EngineSettings(Credentials("alice", "pw"), "127.0.0.1", AuthPolicy())))
    qtbot.waitUntil(lambda: any(s.state is State.DISCONNECTED for s, _ in received), timeout=10000)
    runner.submit(Shutdown())
    runner.join(5)
    gui_thread = QThread.currentThread()  # the test runs on the GUI thread
    assert emitting_threads == {"sstp-engine"}
    assert [s.state for s, _ in received] == [State.HANDSHAKE, State.DISCONNECTED]
    assert all(thread is gui_thread for _, thread in received + logs)
    final = received[-1][0]
    assert final.server == f"127.0.0.1:{port}"
    assert final.failure.kind is FailureKind.UNREACHABLE and "refused" in final.failure.reason
    assert logs and logs[0][0].message == f"Connecting to 127.0.0.1:{port}."


def test_emitting_signals_keeps_pythons_reference_to_true(qtbot):
    """PySide6 6.12.0 returned True from every emit() without a reference of its own, so a long
    session (one emit per log line) made Python abort with "bool_dealloc" (pyproject pins < 6.12)."""
    bridge = RunnerBridge()
    bridge.log.connect(lambda entry: None)
    before = sys.getrefcount(True)
    for _ in range(5000):
        bridge.log.emit(None)
    assert sys.getrefcount(True) >= before - 100  # other threads may drop a few; 6.12.0 drops 5000
