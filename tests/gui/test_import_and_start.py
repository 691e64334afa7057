"""Import profiles… in the profiles window (file chooser, user name, summary) and the tray's Start at
login and Connect at start entries, clicked through with pytest-qt against a temporary
XDG_CONFIG_HOME."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from sstpvpn.client.app_settings import AppSettingsStore
from sstpvpn.client.profiles import Profile, new_profile_id
from sstpvpn.gui.app import TrayApp
from sstpvpn.gui.connection import ConnectionController
from sstpvpn.gui.profiles_window import ProfilesWindow
from sstpvpn.gui.tray import Tray
from sstpvpn.platform import current
from tests.gui.scripted_runner import ScriptedRunner

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "import"


@pytest.fixture
def config_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "xdg-system"))  # not this machine's /etc/xdg/autostart
    return home


@pytest.fixture
def controller(qtbot, store, secrets):
    ScriptedRunner.instances.clear()
    controller = ConnectionController(store, secrets, environ={}, runner_factory=ScriptedRunner)
    yield controller
    controller.shutdown(timeout=1)


def list_texts(window: ProfilesWindow) -> list[str]:
    return [window.list.item(row).text() for row in range(window.list.count())]


def test_import_a_phone_book_from_the_profiles_window(qtbot, store, secrets, controller, screenshots):
    store.save(Profile(id=new_profile_id(), name="Office SSTP", host="old.example.com", username="bob"))
    window = ProfilesWindow(store, secrets, controller)
    qtbot.addWidget(window)
    window.show()
    assert window.import_button.text() == "Import profiles…"
    qtbot.mouseClick(window.import_button, Qt.MouseButton.LeftButton)
    flow = window.import_button.flow
    assert flow is not None
    qtbot.waitUntil(flow.file_dialog.isVisible)
    flow.file_dialog.selectFile(str(FIXTURES / "rasphone.pbk"))
    flow.file_dialog.accept()
    qtbot.waitUntil(lambda: flow.user_dialog is not None and flow.user_dialog.isVisible())
    assert "Office SSTP, Lab, SSTP first" in flow.user_dialog.labelText()
    flow.user_dialog.setTextValue("CORP\\alice")
    flow.user_dialog.accept()
    qtbot.waitUntil(lambda: flow.summary is not None and flow.summary.isVisible())
    text = flow.summary.text()
    assert text.startswith("Imported 2 profiles from a Windows phone book (rasphone.pbk):")
    assert "Office SSTP (2) (CORP\\alice@vpn.example.com)" in text
    assert "'Branch IKEv2' is not an SSTP entry" in text and "exists already" in text
    flow.summary.grab().save(str(screenshots / "import-summary.png"))
    flow.summary.accept()
    assert list_texts(window) == [
        "Office SSTP  —  bob@old.example.com",
        "Office SSTP (2)  —  CORP\\alice@vpn.example.com",
        "Lab, SSTP first  —  CORP\\alice@lab.example.net:8443",
    ]


def test_a_broken_file_gives_one_sentence_and_imports_nothing(qtbot, store, secrets, controller, tmp_path):
    broken = tmp_path / "broken.nmconnection"
    broken.write_text("[connection]\ntype=vpn\n[vpn]\nservice-type=org.freedesktop.NetworkManager.openvpn\n")
    window = ProfilesWindow(store, secrets, controller)
    qtbot.addWidget(window)
    flow = window.import_button.start()
    flow.file_dialog.selectFile(str(broken))
    flow.file_dialog.accept()
    qtbot.waitUntil(lambda: flow.summary is not None and flow.summary.isVisible())
    assert flow.summary.windowTitle() == "Nothing imported"
    expected = f"{broken} is a org.freedesktop.NetworkManager.openvpn connection, not SSTP (org.freedesktop.NetworkManager.sstp)"
    assert flow.summary.text() == expected + ": there is nothing to import."
    flow.summary.accept()
    assert store.load().profiles == ()


def as_read(text: str) -> str:
    """A menu text as the user reads it, without its accelerator marks ("&Nothing" -> "Nothing")."""
    return re.sub(r"&(.)", r"\1", text)


def make_tray(controller, store) -> Tray:
    def nothing() -> None:
        return None

    return Tray(controller, store, show_status=nothing, show_log=nothing, show_profiles=nothing, add_profile=nothing, quit=nothing)


def test_start_at_login_writes_and_removes_the_autostart_file(qtbot, store, controller, config_home):
    tray = make_tray(controller, store)
    tray.rebuild_menu()
    entry = tray.action("Start at login")
    assert entry is not None and entry.isCheckable() and not entry.isChecked()
    entry.trigger()
    desktop_file = config_home / "autostart" / "sstp-vpn-tray.desktop"
    assert desktop_file.is_file()
    exec_line = next(line for line in desktop_file.read_text().splitlines() if line.startswith("Exec="))
    assert exec_line == "Exec=" + " ".join(current.tray_command())  # no reserved characters in this path
    tray.rebuild_menu()
    entry = tray.action("Start at login")
    assert entry.isChecked()
    entry.trigger()
    assert not desktop_file.exists()
    tray.rebuild_menu()
    assert not tray.action("Start at login").isChecked()


def test_connect_at_start_connects_the_chosen_profile(qtbot, tray, store, secrets, config_home):
    office = store.save(Profile(id=new_profile_id(), name="Office", host="vpn.example.com", username="alice"))
    store.save(Profile(id=new_profile_id(), name="Home", host="home.example.com", username="alice"))
    ScriptedRunner.instances.clear()
    app = TrayApp(store, secrets, environ={}, runner_factory=ScriptedRunner)
    app.tray.rebuild_menu()
    submenu = app.tray.action("Connect at start").menu()
    entries = {as_read(action.text()): action for action in submenu.actions()}
    assert list(entries) == ["Nothing", "“Office”", "“Home”"] and entries["Nothing"].isChecked()
    entries["“Office”"].trigger()
    assert AppSettingsStore.beside(store).load().connect_on_start == office.id
    app.tray.rebuild_menu()
    submenu = app.tray.action("Connect at start").menu()
    assert [as_read(action.text()) for action in submenu.actions() if action.isChecked()] == ["“Office”"]
    app.start()  # as at login: it connects Office by itself
    qtbot.waitUntil(lambda: app.controller.profile is not None and app.controller.profile.id == office.id, timeout=10000)
    with qtbot.waitSignal(app.stopped, timeout=10000):
        app.quit()
