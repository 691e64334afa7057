"""The log window's "Save support bundle…" button: a bundle with the profile (proxy user name,
no password), the attempt the tray just made and its log lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QPushButton

from sstpvpn.client.attempt_history import AttemptHistory
from sstpvpn.client.core.types import Failure, FailureKind, Layer, State
from sstpvpn.client.profiles import Profile, ProxyChoice, ProxyMode, new_profile_id
from sstpvpn.client.recent_log import RecentLog
from sstpvpn.client.secret_store import SecretKind
from sstpvpn.gui.app import TrayApp
from tests.gui.scripted_runner import ScriptedRunner

VPN_PASSWORD = "Vpn-Bundle-Secret-7731"
PROXY_PASSWORD = "Proxy-Bundle-Secret-8842"


@pytest.fixture
def tray_app(qtbot, tray, store, secrets, tmp_path: Path):
    ScriptedRunner.instances.clear()
    app = TrayApp(store, secrets, environ={}, runner_factory=ScriptedRunner)
    app.controller.attempt_history = AttemptHistory(tmp_path / "state" / "attempts.json")
    app.controller.recent_log = RecentLog(tmp_path / "state" / "recent.log")
    app.start()
    yield app
    if not app.controller.shutting_down:
        with qtbot.waitSignal(app.stopped, timeout=10000):
            app.quit()


def test_support_bundle_button_saves_attempts_profile_and_log_without_passwords(qtbot, tray_app, store, secrets, tmp_path):
    profile = store.save(
        Profile(
            id=new_profile_id(),
            name="Office",
            host="vpn.example.com",
            username="alice",
            proxy=ProxyChoice(ProxyMode.MANUAL, "proxy.example.com", 3128, "proxyuser"),
        )
    )
    secrets.set(profile.id, SecretKind.VPN, VPN_PASSWORD)
    secrets.set(profile.id, SecretKind.PROXY, PROXY_PASSWORD)
    tray_app.controller.connect_profile(profile)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    engine = ScriptedRunner.instances[-1]
    engine.log("Connecting to vpn.example.com:443.")
    engine.connected()
    qtbot.waitUntil(lambda: tray_app.controller.status.state is State.CONNECTED)
    engine.dropped(Failure(Layer.SSTP, "The server ended the call.", FailureKind.PROTOCOL))
    qtbot.waitUntil(lambda: tray_app.controller.status.state is not State.CONNECTED)

    log = tray_app.show_log()
    button = log.findChild(QPushButton, "bundle")
    assert button is not None and button.text() == "Save support bundle…"
    path = tmp_path / "bundle.txt"
    log.save_bundle_to(path)
    assert log.saved_note.text() == f"Support bundle saved to {path}."

    text = path.read_text(encoding="utf-8")
    assert "profile 'Office'" in text and "proxy.username: 'proxyuser'" in text and "proxy.host: 'proxy.example.com'" in text
    assert "vpn.example.com" in text and "connected" in text
    assert "outcome [sstp, protocol]: The server ended the call." in text
    assert "Connecting to vpn.example.com:443." in text
    assert VPN_PASSWORD not in text and PROXY_PASSWORD not in text


def test_support_bundle_that_cannot_be_written_says_so(qtbot, tray_app, tmp_path):
    log = tray_app.show_log()
    log.save_bundle_to(tmp_path / "missing-folder" / "bundle.txt")
    assert log.saved_note.text() == "Not saved: No such file or directory."
