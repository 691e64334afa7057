"""The tray app's connection logic: passwords from the keyring or the user, notices, reconnects,
switching profiles, and a clean disconnect before quitting."""

from __future__ import annotations

import logging
import socket

import pytest
from keyring.backends import fail

from sstpvpn.client.core.reconnect import Backoff
from sstpvpn.client.core.types import Failure, FailureKind, Layer, State, Status
from sstpvpn.client.profiles import Profile, ProxyChoice, ProxyMode, new_profile_id
from sstpvpn.client.runner import Connect, Disconnect, Shutdown
from sstpvpn.client.secret_store import SecretKind, SecretStore, no_keyring_sentence
from sstpvpn.gui.connection import ConnectionController, NoticeLevel
from sstpvpn.gui.icons import TrayState
from sstpvpn.gui.presentation import tray_state
from tests.gui.scripted_runner import ScriptedRunner


def make_profile(store, **changes) -> Profile:
    values = dict(id=new_profile_id(), name="Office", host="vpn.example.com", port=8443, username="alice")
    values.update(changes)
    return store.save(Profile(**values))


class Recorder:
    def __init__(self, controller: ConnectionController) -> None:
        self.notices, self.requests, self.finished = [], [], []
        controller.notice.connect(self.notices.append)
        controller.credentials_needed.connect(self.requests.append)
        controller.finished.connect(lambda: self.finished.append(True))


@pytest.fixture
def controller(qtbot, store, secrets):
    ScriptedRunner.instances.clear()
    made = ConnectionController(store, secrets, environ={}, runner_factory=ScriptedRunner)
    yield made
    made.shutdown(timeout=1)


def runner() -> ScriptedRunner:
    return ScriptedRunner.instances[-1]


def connect_and_wait(qtbot, controller, profile) -> ScriptedRunner:
    controller.connect_profile(profile)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and runner().connects), timeout=10000)
    return runner()


def test_connects_with_the_keyring_password_and_reports_it(qtbot, controller, store, secrets):
    profile = make_profile(store)
    secrets.set(profile.id, SecretKind.VPN, "s3cret")
    seen = Recorder(controller)
    engine = connect_and_wait(qtbot, controller, profile)
    (command,) = engine.connects
    assert command.engine.credentials.password == "s3cret"
    assert command.transport.server == "vpn.example.com:8443"
    qtbot.waitUntil(lambda: store.load().last_used == profile.id)  # noted by a worker of its own
    assert tray_state(controller.status) is TrayState.CONNECTING
    engine.connected("198.18.30.10")
    qtbot.waitUntil(lambda: controller.status.state is State.CONNECTED)
    assert tray_state(controller.status) is TrayState.CONNECTED
    assert [(n.title, n.text) for n in seen.notices] == [("Connected to Office", "You are on the VPN with the address 198.18.30.10.")]
    controller.disconnect_session()
    qtbot.waitUntil(lambda: controller.status.state is State.DISCONNECTED)
    assert not controller.active
    assert len(seen.notices) == 1  # a disconnect the user asked for is not announced


def test_asks_for_a_missing_password_and_saves_it(qtbot, controller, store, secrets):
    profile = make_profile(store, proxy=ProxyChoice(ProxyMode.MANUAL, "proxy.example.com", 3128, "bob"))
    seen = Recorder(controller)
    controller.connect_profile(profile)
    qtbot.waitUntil(lambda: bool(seen.requests))
    (request,) = seen.requests
    assert request.need_password and request.need_proxy_password and request.can_remember
    assert request.reason == "No password is saved for this profile."
    controller.provide_credentials(request, "typed", "proxy-typed", remember=True)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and runner().connects))
    command = runner().connects[0]
    assert command.engine.credentials.password == "typed"
    assert command.transport.proxy.password == "proxy-typed"
    qtbot.waitUntil(lambda: secrets.get(profile.id, SecretKind.PROXY) == "proxy-typed", timeout=10000)
    assert secrets.get(profile.id, SecretKind.VPN) == "typed"


def test_without_a_keyring_the_password_is_asked_and_not_saved(qtbot, store):
    controller = ConnectionController(store, SecretStore(fail.Keyring()), environ={}, runner_factory=ScriptedRunner)
    seen = Recorder(controller)
    profile = make_profile(store)
    controller.connect_profile(profile)
    qtbot.waitUntil(lambda: bool(seen.requests))
    (request,) = seen.requests
    assert request.reason == no_keyring_sentence() and not request.can_remember
    controller.cancel_credentials(request)
    assert controller.status.state is State.IDLE and not controller.active


def test_failure_before_connecting_is_told_with_its_sentence(qtbot, controller, store, secrets):
    profile = make_profile(store, auto_reconnect=True)
    secrets.set(profile.id, SecretKind.VPN, "wrong")
    seen = Recorder(controller)
    engine = connect_and_wait(qtbot, controller, profile)
    sentence = "The server refused the user name or password: check them in the profile."
    engine.dropped(Failure(Layer.AUTH, sentence, FailureKind.AUTHENTICATION))
    qtbot.waitUntil(lambda: bool(seen.notices))
    (notice,) = seen.notices
    assert (notice.title, notice.text, notice.level) == ("Could not connect to Office", sentence, NoticeLevel.ERROR)
    assert tray_state(controller.status, controller.reconnect_in) is TrayState.ERROR
    assert controller.reconnect_in is None  # retrying a refused password cannot help


def test_a_dropped_connection_is_reconnected(qtbot, store, secrets):
    ScriptedRunner.instances.clear()
    controller = ConnectionController(store, secrets, environ={}, runner_factory=ScriptedRunner, backoff=Backoff(initial=0.4, cap=0.8, floor=0.2))
    profile = make_profile(store, auto_reconnect=True)
    secrets.set(profile.id, SecretKind.VPN, "s3cret")
    seen = Recorder(controller)
    engine = connect_and_wait(qtbot, controller, profile)
    engine.connected()
    qtbot.waitUntil(lambda: controller.status.state is State.CONNECTED)
    engine.dropped(Failure(Layer.SSTP, "The server stopped answering (no echo reply for 40 seconds).", FailureKind.UNREACHABLE))
    qtbot.waitUntil(lambda: len(seen.notices) == 3)
    assert [n.title for n in seen.notices] == ["Connected to Office", "Connection to Office dropped", "Reconnecting to Office"]
    assert seen.notices[1].text == "The server stopped answering (no echo reply for 40 seconds)."
    assert controller.active and controller.reconnect_in is not None
    assert tray_state(controller.status, controller.reconnect_in) is TrayState.CONNECTING
    qtbot.waitUntil(lambda: len(engine.connects) == 2, timeout=10000)
    assert controller.reconnect_in is None
    controller.shutdown(timeout=1)


def test_switching_profiles_ends_the_first_session_first(qtbot, controller, store, secrets):
    office, home = make_profile(store), make_profile(store, name="Home", host="home.example.com")
    for profile in (office, home):
        secrets.set(profile.id, SecretKind.VPN, "pw")
    engine = connect_and_wait(qtbot, controller, office)
    engine.connected()
    qtbot.waitUntil(lambda: controller.status.state is State.CONNECTED)
    controller.connect_profile(home)
    qtbot.waitUntil(lambda: len(engine.connects) == 2, timeout=10000)
    kinds = [type(command) for command in engine.commands]
    assert kinds == [Connect, Disconnect, Connect]
    assert engine.connects[1].transport.host == "home.example.com"
    assert controller.profile.id == home.id


def test_quitting_while_connected_disconnects_first(qtbot, controller, store, secrets):
    profile = make_profile(store)
    secrets.set(profile.id, SecretKind.VPN, "pw")
    seen = Recorder(controller)
    engine = connect_and_wait(qtbot, controller, profile)
    engine.connected()
    qtbot.waitUntil(lambda: controller.status.state is State.CONNECTED)
    controller.shutdown()
    qtbot.waitUntil(lambda: bool(seen.finished))
    assert [type(command) for command in engine.commands] == [Connect, Disconnect, Shutdown]
    assert controller.status.state is State.DISCONNECTED and controller.status.failure is None


def test_real_runner_failure_reaches_the_user(qtbot, store, secrets):
    """The real EngineRunner behind the controller: a refused TCP connection on loopback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = ConnectionController(store, secrets, environ={})
    seen = Recorder(controller)
    profile = make_profile(store, host="127.0.0.1", port=port)
    secrets.set(profile.id, SecretKind.VPN, "pw")
    controller.connect_profile(profile)
    qtbot.waitUntil(lambda: bool(seen.notices), timeout=15000)
    (notice,) = seen.notices
    assert notice.title == "Could not connect to Office" and "refused" in notice.text
    assert controller.status.failure.kind is FailureKind.UNREACHABLE
    messages = [(entry.level, entry.message) for entry in controller.log_entries]
    connecting = messages.index((logging.INFO, f"Connecting to 127.0.0.1:{port}."))
    assert messages[connecting + 1 :] == [(logging.ERROR, controller.status.failure.reason)]  # the failure, once, after it
    controller.shutdown()
    qtbot.waitUntil(lambda: bool(seen.finished), timeout=10000)


def test_a_certificate_failure_reaches_the_log_window_with_the_editors_field(qtbot, store, secrets, tmp_path, screenshots):
    """The real EngineRunner against a self-signed HTTPS server on loopback: the trust failure's
    sentence is in the Log window (not only in the notice), naming the editor's field, not the
    command line's flag."""
    from sstpvpn.client.recent_log import RecentLog
    from sstpvpn.gui.log_window import LogWindow
    from tests.gui.tls_server import SelfSignedHttpsServer

    with SelfSignedHttpsServer(tmp_path) as server:
        controller = ConnectionController(store, secrets, environ={})
        controller.recent_log = RecentLog(tmp_path / "state" / "recent.log")
        window = LogWindow(controller)
        qtbot.addWidget(window)
        seen = Recorder(controller)
        profile = make_profile(store, host="localhost", port=server.port)
        secrets.set(profile.id, SecretKind.VPN, "pw")
        controller.connect_profile(profile)
        qtbot.waitUntil(lambda: bool(seen.notices), timeout=15000)
        failure = controller.status.failure
        assert failure.kind is FailureKind.TRUST and "(--ca-file)" in failure.reason  # the shared sentence, as the CLI prints it
        shown = window.text.toPlainText().splitlines()
        assert f"Connecting to localhost:{server.port}." in shown[0]
        (error_line,) = [line for line in shown if "ERROR" in line]
        assert "--ca-file" not in error_line and "(the “Extra CA file” field)" in error_line
        assert error_line.endswith(failure.reason.replace("(--ca-file)", "(the “Extra CA file” field)"))
        assert failure.reason.replace("(--ca-file)", "(the “Extra CA file” field)") in controller.recent_log.tail(10)[-1]
        window.resize(1100, 200)
        window.show()
        qtbot.waitExposed(window)
        qtbot.wait(200)  # let it paint
        assert window.grab().save(str(screenshots / "log-window-failure.png"))
        controller.shutdown()
        qtbot.waitUntil(lambda: bool(seen.finished), timeout=10000)


def test_an_unasked_clean_end_is_reported_as_a_drop(qtbot, controller, store, secrets):
    """The runner publishes one DISCONNECTED per session, once the network is restored; without
    a failure and without the user asking, it is a drop."""
    profile = make_profile(store)
    secrets.set(profile.id, SecretKind.VPN, "pw")
    seen = Recorder(controller)
    engine = connect_and_wait(qtbot, controller, profile)
    engine.connected()
    qtbot.waitUntil(lambda: controller.status.state is State.CONNECTED)
    engine.publish(Status(State.DISCONNECTED, server=engine.server))
    qtbot.waitUntil(lambda: controller.status.state is State.DISCONNECTED, timeout=5000)
    assert [n.title for n in seen.notices] == ["Connected to Office", "Connection to Office dropped"]
    assert seen.notices[1].text == "The server ended the connection."


def test_a_refused_password_the_server_lets_retry_is_asked_for_and_saved(qtbot, controller, store, secrets):
    from sstpvpn.client.runner import RetryPassword

    profile = make_profile(store)
    secrets.set(profile.id, SecretKind.VPN, "old-password")
    seen = Recorder(controller)
    engine = connect_and_wait(qtbot, controller, profile)
    reason = "The server refused the password and allows another try."
    engine.on_password_retry(reason)  # MS-CHAPv2 Failure with R=1, from the runner thread
    qtbot.waitUntil(lambda: bool(seen.requests))
    (request,) = seen.requests
    assert request.retry and request.need_password and not request.need_proxy_password
    assert request.reason == reason and request.can_remember
    controller.provide_credentials(request, "new-password", None, remember=True)
    assert engine.commands[-1] == RetryPassword("new-password")
    qtbot.waitUntil(lambda: secrets.get(profile.id, SecretKind.VPN) == "new-password", timeout=10000)
    assert len(engine.connects) == 1  # the same session goes on: no second connection

    engine.on_password_retry(reason)  # refused again; this time the user gives up
    qtbot.waitUntil(lambda: len(seen.requests) == 2)
    controller.cancel_credentials(seen.requests[-1])
    assert engine.commands[-1] == RetryPassword(None)
    assert secrets.get(profile.id, SecretKind.VPN) == "new-password"
