"""The windows and dialogs of the tray app, put together by TrayApp: status, log, profiles, the
password prompt, the pin offer after a trust failure, and quitting."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from PySide6.QtGui import QGuiApplication

from sstpvpn.client.core.types import Failure, FailureKind, Layer, State
from sstpvpn.client.runner import Connect, Disconnect, Shutdown
from sstpvpn.client.secret_store import SecretKind
from sstpvpn.gui.app import TrayApp
from sstpvpn.gui.password_dialog import PasswordDialog
from sstpvpn.gui.pin_dialog import PinDialog
from sstpvpn.gui.status_window import ROUTES_EVERY
from sstpvpn.platform import current
from sstpvpn.platform.traffic_counters import TrafficCounters
from tests.gui.saved_profiles import add_profile as add
from tests.gui.scripted_runner import ScriptedRunner
from tests.gui.tls_server import SelfSignedHttpsServer


def connected_engine(qtbot, tray_app, profile, **connected) -> ScriptedRunner:
    tray_app.controller.connect_profile(profile)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    engine = ScriptedRunner.instances[-1]
    for line in (
        "Connecting to vpn.example.com:443.",
        "TLS is up (TLSv1.2, ECDHE-RSA-AES256-GCM-SHA384).",
        "Authenticating with MSCHAPV2.",
        "Authenticated; crypto binding sent (SHA256).",
    ):
        engine.log(line)
    engine.log("Call Connect Ack: crypto binding with SHA256.", level=logging.DEBUG)
    engine.connected(**connected)
    qtbot.waitUntil(lambda: tray_app.controller.status.state is State.CONNECTED)
    return engine


def test_status_window_shows_the_session(qtbot, tray_app, store, secrets):
    profile = add(store, secrets, "pw", full_tunnel=False)
    connected_engine(
        qtbot,
        tray_app,
        profile,
        connected_at=time.monotonic() - 3,
        interface="lo",
        ipv6_identifier=bytes.fromhex("0211223344556677"),
        revocation="good (OCSP, http://ocsp.example.com)",
    )
    window = tray_app.show_status()
    qtbot.waitUntil(lambda: window.meter.latest is not None)  # loopback's real counters
    values = {name: label.text() for name, label in window.values.items()}
    assert values["state"] == "Connected" and values["profile"] == "Office"
    assert values["address"] == "198.18.30.10" and values["dns"] == "198.18.30.1"
    assert values["ipv6"] == f"through the tunnel: {', '.join(current.ipv6_addresses('lo') or ['fe80::211:2233:4455:6677'])}"  # read like the routes
    assert values["routing"] == "only the VPN's network (split tunnel)"
    assert values["kill_switch"] == "off"
    assert "127.0.0.0/8" not in values["routes"]  # loopback's routes live in the local table
    assert values["tls"] == "TLSv1.2, ECDHE-RSA-AES256-GCM-SHA384"
    assert values["revocation"] == "good (OCSP, http://ocsp.example.com)"  # Status.revocation, as the runner sets it
    assert values["binding"] == "SHA-256 with the MS-CHAPv2 key"
    assert values["duration"].startswith("0:00:0")
    assert values["received"].endswith(("B", "KiB", "MiB", "GiB")) or "(" in values["received"]
    assert not window.problem.isVisible()
    ScriptedRunner.instances[-1].dropped(Failure(Layer.SSTP, "The server aborted the call (status 0x7).", FailureKind.PROTOCOL))
    qtbot.waitUntil(lambda: window.values["state"].text() == "Failed")
    assert window.problem.text() == "The server aborted the call (status 0x7)."
    assert window.values["address"].text() == "—"
    assert window.values["revocation"].text() == "—"


def test_status_window_reads_the_system_off_the_gui_thread_and_drops_stale_readings(qtbot, tray_app, store, secrets, monkeypatch):
    """The counters, routes and the tunnel check come from the platform layer on a worker thread; a
    reading of the session's previous interface that comes back late is not shown."""
    old_reading_may_finish = threading.Event()
    readers: list[threading.Thread] = []

    def counters(interface: str) -> TrafficCounters:
        readers.append(threading.current_thread())
        if interface == "old0":
            old_reading_may_finish.wait(10)  # a slow system
            return TrafficCounters(10**9, 10**9)
        return TrafficCounters(2048, 1024)

    monkeypatch.setattr(current, "read_traffic_counters", counters)
    monkeypatch.setattr(current, "routes_through", {"old0": ["10.1.0.0/16"], "new0": ["0.0.0.0/1", "128.0.0.0/1"]}.get)
    monkeypatch.setattr(current, "tunnel_problem", lambda: readers.append(threading.current_thread()) or "No helper.")
    engine = connected_engine(qtbot, tray_app, add(store, secrets, "pw"), interface="old0")
    window = tray_app.show_status()
    qtbot.waitUntil(lambda: len(readers) == 1)
    assert window.values["routes"].text() == "—" and window.values["received"].text() == "—"  # not read yet
    engine.connected(interface="new0")
    qtbot.waitUntil(lambda: window.values["interface"].text() == "new0")
    old_reading_may_finish.set()
    qtbot.waitUntil(lambda: window.meter.latest is not None)
    assert window.meter.latest == TrafficCounters(2048, 1024)  # not old0's late 1 GB
    assert window.values["routes"].text() == "0.0.0.0/1, 128.0.0.0/1"
    assert window.values["received"].text() == "2.0 KiB" and window.values["sent"].text() == "1.0 KiB"
    assert window.problem.text() == "No helper." and window.problem.isVisible()
    assert threading.main_thread() not in readers


def test_status_window_looks_at_the_system_only_while_shown_and_at_the_routes_every_tenth_time(qtbot, tray_app, store, secrets, monkeypatch):
    """Its once-a-second look (traffic counters, the graph) runs only while the window is shown; the
    routes and IPv6 addresses, which cost more to read, are read when it opens and with every tenth
    look, and stay shown between."""
    routes_read: list[str] = []
    addresses_read: list[str] = []
    monkeypatch.setattr(current, "read_traffic_counters", lambda interface: TrafficCounters(1000, 1000))
    monkeypatch.setattr(current, "routes_through", lambda interface: routes_read.append(interface) or ["0.0.0.0/1", "128.0.0.0/1"])
    monkeypatch.setattr(current, "ipv6_addresses", lambda interface: addresses_read.append(interface) or ["2001:db8::7"])
    connected_engine(qtbot, tray_app, add(store, secrets, "pw", ipv6=True), interface="tun7", ipv6_identifier=bytes.fromhex("0211223344556677"))
    window = tray_app.show_status()
    assert window.timer.isActive()
    qtbot.waitUntil(lambda: window.values["routes"].text() == "0.0.0.0/1, 128.0.0.0/1")
    assert routes_read == ["tun7"]
    for _ in range(ROUTES_EVERY - 1):
        qtbot.waitUntil(lambda: not window._reading)
        window._tick()
    qtbot.waitUntil(lambda: not window._reading)
    assert routes_read == ["tun7"] and window.values["routes"].text() == "0.0.0.0/1, 128.0.0.0/1"
    assert addresses_read == ["tun7"] and window.values["ipv6"].text() == "through the tunnel: 2001:db8::7"
    window._tick()
    qtbot.waitUntil(lambda: not window._reading)
    assert routes_read == ["tun7", "tun7"] and addresses_read == ["tun7", "tun7"]
    window.close()
    assert not window.isVisible() and not window.timer.isActive()
    window.show()
    assert window.timer.isActive()
    window.close()
    assert not window.timer.isActive()


def test_the_tray_says_at_start_when_no_tunnel_can_be_had(qtbot, tray, store, secrets, monkeypatch):
    checked_on: list[threading.Thread] = []
    monkeypatch.setattr(current, "tunnel_problem", lambda: checked_on.append(threading.current_thread()) or "The helper is not running.")
    app = TrayApp(store, secrets, environ={}, runner_factory=ScriptedRunner)
    notices = []
    app.controller.notice.connect(notices.append)
    app.start()
    qtbot.waitUntil(lambda: bool(notices))
    assert [(notice.title, notice.text) for notice in notices] == [("The VPN tunnel cannot be created", "The helper is not running.")]
    assert checked_on and checked_on[0] is not threading.main_thread()
    with qtbot.waitSignal(app.stopped, timeout=10000):
        app.quit()


def test_log_window_shows_copies_and_saves(qtbot, tray_app, store, secrets, tmp_path):
    profile = add(store, secrets, "pw")
    connected_engine(qtbot, tray_app, profile)
    log = tray_app.show_log()
    lines = log.text.toPlainText().splitlines()
    assert [line.split(None, 2)[1:] for line in lines] == [
        ["INFO", "Connecting to vpn.example.com:443."],
        ["INFO", "TLS is up (TLSv1.2, ECDHE-RSA-AES256-GCM-SHA384)."],
        ["INFO", "Authenticating with MSCHAPV2."],
        ["INFO", "Authenticated; crypto binding sent (SHA256)."],
    ]
    log.details.setChecked(True)
    assert "DEBUG    Call Connect Ack: crypto binding with SHA256." in log.text.toPlainText()
    ScriptedRunner.instances[-1].log("Link update.")
    qtbot.waitUntil(lambda: log.text.toPlainText().endswith("Link update."))
    log.copy_all()
    assert QGuiApplication.clipboard().text() == log.text.toPlainText()
    log.save_to(tmp_path / "sstp-vpn.log")
    assert (tmp_path / "sstp-vpn.log").read_text() == log.text.toPlainText() + "\n"
    assert "pw" not in log.text.toPlainText().split()


def test_profiles_window_removes_a_profile_with_its_passwords(qtbot, tray_app, store, secrets):
    office = add(store, secrets, "office-pw")
    home = add(store, secrets, "home-pw", name="Home")
    window = tray_app.show_profiles()
    assert [window.list.item(i).text() for i in range(window.list.count())] == ["Office  —  alice@vpn.example.com", "Home  —  alice@vpn.example.com"]
    window.list.setCurrentRow(1)
    window.remove_selected(confirm=False)
    assert [p.id for p in store.load().profiles] == [office.id]
    qtbot.waitUntil(lambda: secrets.get(home.id, SecretKind.VPN) is None, timeout=10000)
    assert secrets.get(office.id, SecretKind.VPN) == "office-pw"
    window.list.setCurrentRow(0)
    window.connect_button.click()
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    editor = window.edit_selected()
    assert editor.name.text() == "Office"


def test_missing_password_is_asked_for_and_saved(qtbot, tray_app, store, secrets):
    profile = add(store)
    tray_app.controller.connect_profile(profile)
    qtbot.waitUntil(lambda: any(isinstance(d, PasswordDialog) for d in tray_app.dialogs), timeout=10000)
    dialog = next(d for d in tray_app.dialogs if isinstance(d, PasswordDialog))
    assert dialog.remember.isChecked() and dialog.isVisible()
    dialog.password.setText("typed-pw")
    dialog.accept()
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    assert ScriptedRunner.instances[-1].connects[0].engine.credentials.password == "typed-pw"
    qtbot.waitUntil(lambda: secrets.get(profile.id, SecretKind.VPN) == "typed-pw", timeout=10000)
    assert tray_app.dialogs == []


def test_trust_failure_with_a_self_signed_certificate_offers_the_pin(qtbot, tray_app, store, secrets, tmp_path: Path):
    with SelfSignedHttpsServer(tmp_path) as server:
        profile = add(store, secrets, "pw", host="localhost", port=server.port)
        tray_app.controller.connect_profile(profile)
        qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
        engine = ScriptedRunner.instances[-1]
        engine.dropped(
            Failure(Layer.TLS, "The server's certificate was not issued by a trusted authority (self-signed certificate).", FailureKind.TRUST)
        )
        qtbot.waitUntil(lambda: any(isinstance(d, PinDialog) for d in tray_app.dialogs), timeout=20000)
        dialog = next(d for d in tray_app.dialogs if isinstance(d, PinDialog))
        assert dialog.certificate.sha256_hex == server.sha256
        assert len(engine.connects) == 1  # nothing is trusted before the user says so
        dialog.trust_button.click()
        qtbot.waitUntil(lambda: len(engine.connects) == 2, timeout=10000)
    pinned = store.load().by_id(profile.id)
    assert pinned.ca_file == str(store.certificates_dir / f"{profile.id}.pem")
    assert pinned.pin_sha256.replace(":", "").lower() == server.sha256
    transport = engine.connects[1].transport
    assert transport.ca_file == Path(pinned.ca_file) and transport.pin.hex() == server.sha256


def test_quit_disconnects_before_stopping(qtbot, tray_app, store, secrets):
    profile = add(store, secrets, "pw")
    engine = connected_engine(qtbot, tray_app, profile)
    tray_app.show_status()
    with qtbot.waitSignal(tray_app.stopped, timeout=10000):
        tray_app.tray.rebuild_menu()
        tray_app.tray.action("Quit").trigger()
    assert [type(c) for c in engine.commands] == [Connect, Disconnect, Shutdown]
    assert not tray_app.tray.icon.isVisible() and not tray_app.status_window.isVisible()
