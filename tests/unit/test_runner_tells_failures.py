"""EngineRunner logs every session's failure once, with its sentence (the tray's Log window and
the recent log show the runner's log): failures before the engine runs (TCP, TLS, certificate)
as well as the engine's own, which the engine has logged already."""

from __future__ import annotations

import logging
import socket
import threading

from sstpvpn.client.core.events import LogRecord
from sstpvpn.client.core.types import Failure, FailureKind, Layer, State, Status
from sstpvpn.client.profile_settings import connect_command
from sstpvpn.client.profiles import Profile, new_profile_id
from sstpvpn.client.runner import EngineRunner, Shutdown


def test_a_refused_connection_is_logged_once_after_connecting() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    ended = threading.Event()
    statuses: list[Status] = []
    records: list[LogRecord] = []

    def on_status(status: Status) -> None:
        statuses.append(status)
        if status.state is State.DISCONNECTED:
            ended.set()

    runner = EngineRunner(on_status, records.append)
    runner.start()
    profile = Profile(id=new_profile_id(), name="Lab", host="127.0.0.1", port=port, username="alice")
    command = connect_command(profile, "pw", None, environ={})
    assert not isinstance(command, Failure)
    runner.submit(command)
    assert ended.wait(15)
    runner.submit(Shutdown())
    runner.join(10)
    failure = statuses[-1].failure
    assert failure is not None and failure.kind is FailureKind.UNREACHABLE
    assert [(r.level, r.message) for r in records] == [(logging.INFO, f"Connecting to 127.0.0.1:{port}."), (logging.ERROR, failure.reason)]


def test_a_failure_already_logged_in_the_session_is_not_logged_again() -> None:
    records: list[LogRecord] = []
    runner = EngineRunner(lambda status: None, records.append)  # not started: its steps by hand
    told = Failure(Layer.AUTH, "The server refused the user name or password.", FailureKind.AUTHENTICATION)
    runner._forward_log(LogRecord(logging.WARNING, told.reason))  # as the engine logs its failure
    runner._publish(state=State.DISCONNECTED, failure=told)
    runner._publish(state=State.DISCONNECTED, failure=Failure(Layer.TLS, "The encrypted connection broke.", FailureKind.PROTOCOL))
    runner._publish(state=State.DISCONNECTED, failure=None)  # a clean end: nothing to tell
    assert [(r.level, r.message) for r in records] == [
        (logging.WARNING, told.reason),
        (logging.ERROR, "The encrypted connection broke."),
    ]
