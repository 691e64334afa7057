"""The windows and the tray menu follow the session: the profiles window's button says Connect or
Disconnect, switching to another profile asks first, the status window has Disconnect and Close,
the tray menu has distinct keyboard accelerators, and the tooltip says what the menu says."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMenu, QMessageBox

from sstpvpn.client.core.types import Failure, FailureKind, Layer, State, Status
from sstpvpn.client.runner import Connect, Disconnect
from sstpvpn.client.secret_store import SecretKind
from sstpvpn.gui.presentation import accelerator, plain_text
from tests.gui.saved_profiles import add_profile as add
from tests.gui.scripted_runner import ScriptedRunner
from tests.gui.test_tray_menu import add as add_named
from tests.gui.test_tray_menu import open_menu, tray_ui  # noqa: F401 - a fixture
from tests.gui.test_windows import connected_engine


def rows(window) -> list[str]:
    return [window.list.item(i).text() for i in range(window.list.count())]


def test_profiles_window_follows_the_session_and_asks_before_switching(qtbot, tray_app, store, secrets, screenshots):
    office = add(store, secrets, "office-pw")
    home = add(store, secrets, "home-pw", name="Home")
    window = tray_app.show_profiles()
    window.list.setCurrentRow(0)
    assert window.connect_button.text() == "Connect"
    window.connect_button.click()
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    office_engine = ScriptedRunner.instances[-1]
    office_engine.publish(Status(State.AUTHENTICATING, server=office_engine.server))
    qtbot.waitUntil(lambda: rows(window)[0].endswith("·  connecting (signing in)"))
    assert window.connect_button.text() == "Disconnect"
    office_engine.connected(connected_at=time.monotonic() - 5)
    qtbot.waitUntil(lambda: rows(window)[0] == "Office  —  alice@vpn.example.com  ·  connected")
    assert rows(window)[1] == "Home  —  alice@vpn.example.com"
    assert window.connect_button.text() == "Disconnect"
    window.list.setCurrentRow(1)
    assert window.connect_button.text() == "Connect"
    window.list.setCurrentRow(0)
    window.move(40, 40)
    qtbot.wait(200)  # let it paint
    assert QGuiApplication.primaryScreen().grabWindow(0, *window.frameGeometry().getRect()).save(str(screenshots / "profiles-window-connected.png"))

    window.list.setCurrentRow(1)
    window.connect_button.click()  # Home while Office is connected: asked first
    question = window.question
    assert question is not None and question.isVisible()
    assert question.text() == "Disconnect Office and connect Home?"
    qtbot.wait(200)  # let it paint
    assert QGuiApplication.primaryScreen().grabWindow(0, *question.frameGeometry().getRect()).save(str(screenshots / "profiles-switch-question.png"))
    question.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: window.question is None)
    qtbot.wait(100)
    assert tray_app.controller.profile.id == office.id and tray_app.controller.status.state is State.CONNECTED
    assert [type(command) for command in office_engine.commands] == [Connect]

    window.connect_button.click()
    window.question.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: tray_app.controller.profile.id == home.id, timeout=10000)
    assert Disconnect in [type(command) for command in office_engine.commands]  # Office's session ended first
    qtbot.waitUntil(lambda: any(c.engine.credentials.password == "home-pw" for r in ScriptedRunner.instances for c in r.connects), timeout=10000)
    qtbot.waitUntil(lambda: rows(window)[1].startswith("Home  —  alice@vpn.example.com  ·  "))
    assert rows(window)[0] == "Office  —  alice@vpn.example.com"
    assert window.connect_button.text() == "Disconnect"  # Home is selected
    window.connect_button.click()  # the session's own profile: disconnect, no question
    assert window.question is None
    qtbot.waitUntil(lambda: not tray_app.controller.active, timeout=10000)
    assert window.connect_button.text() == "Connect" and rows(window)[1] == "Home  —  alice@vpn.example.com"


def test_tray_menu_asks_before_switching_like_the_profiles_window(qtbot, tray_ui, store, secrets):
    office = add_named(store, "Office")
    home = add_named(store, "Home")
    secrets.set(office.id, SecretKind.VPN, "office-pw")
    secrets.set(home.id, SecretKind.VPN, "home-pw")
    tray_ui.controller.connect_profile(office)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    office_engine = ScriptedRunner.instances[-1]
    office_engine.connected()
    qtbot.waitUntil(lambda: tray_ui.controller.status.state is State.CONNECTED)

    open_menu(qtbot, tray_ui)
    tray_ui.action("Connect “Home”").trigger()  # Home while Office is connected: asked first, in the same words
    question = tray_ui.question
    assert question is not None and question.isVisible() and question.objectName() == "switch_question"
    assert question.text() == "Disconnect Office and connect Home?"
    assert plain_text(question.button(QMessageBox.StandardButton.Yes).text()) == "Disconnect and connect"
    assert question.defaultButton() is question.button(QMessageBox.StandardButton.Cancel)
    question.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: tray_ui.question is None)
    qtbot.wait(100)
    assert tray_ui.controller.profile.id == office.id and tray_ui.controller.status.state is State.CONNECTED
    assert [type(command) for command in office_engine.commands] == [Connect]

    open_menu(qtbot, tray_ui)
    tray_ui.action("Connect “Home”").trigger()
    tray_ui.question.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: tray_ui.controller.profile.id == home.id, timeout=10000)
    assert Disconnect in [type(command) for command in office_engine.commands]  # Office's session ended first
    qtbot.waitUntil(lambda: any(c.engine.credentials.password == "home-pw" for r in ScriptedRunner.instances for c in r.connects), timeout=10000)
    assert tray_ui.question is None


def test_status_window_has_disconnect_and_close(qtbot, tray_app, store, secrets):
    engine = connected_engine(qtbot, tray_app, add(store, secrets, "pw"))
    window = tray_app.show_status()
    assert window.disconnect_button.isEnabled() and plain_text(window.disconnect_button.text()) == "Disconnect"
    window.disconnect_button.click()
    qtbot.waitUntil(lambda: not tray_app.controller.active, timeout=10000)
    assert Disconnect in [type(command) for command in engine.commands]
    qtbot.waitUntil(lambda: not window.disconnect_button.isEnabled())
    assert window.isVisible()
    assert plain_text(window.close_button.text()) == "Close"
    window.close_button.click()
    assert not window.isVisible()


def menu_keys(menu: QMenu) -> dict[str, str]:
    """Each enabled entry's accelerator in this menu -> its text as shown; every entry has one, no two the same."""
    entries = [action for action in menu.actions() if not action.isSeparator() and action.isEnabled()]
    keys = [accelerator(action.text()) for action in entries]
    assert None not in keys, [action.text() for action in entries]
    assert len(set(keys)) == len(keys), [action.text() for action in entries]
    for action in entries:
        if isinstance(action.menu(), QMenu):
            menu_keys(action.menu())
    return {key: plain_text(action.text()) for key, action in zip(keys, entries, strict=True)}


def test_tray_menu_entries_have_distinct_accelerators(qtbot, tray_ui, store, secrets):
    office = add_named(store, "Office")
    add_named(store, "Home")
    add_named(store, "Lab")
    secrets.set(office.id, SecretKind.VPN, "pw")
    tray_ui.controller.connect_profile(office)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    ScriptedRunner.instances[-1].connected()
    qtbot.waitUntil(lambda: tray_ui.controller.status.state is State.CONNECTED)
    open_menu(qtbot, tray_ui)
    keys = menu_keys(tray_ui.menu)
    assert keys["d"] == "Disconnect “Office”" and keys["c"] == "Connect “Home”"
    assert keys["s"] == "Status…" and keys["e"] == "Edit profiles…" and keys["l"] == "Log…" and keys["q"] == "Quit"
    assert "Connect “Lab”" in keys.values()

    tray_ui.menu.popup(tray_ui.icon.geometry().bottomLeft())  # the keys work: S opens the status window
    qtbot.waitUntil(tray_ui.menu.isVisible, timeout=5000)
    qtbot.keyClick(tray_ui.menu, Qt.Key.Key_S)
    qtbot.waitUntil(lambda: not tray_ui.menu.isVisible(), timeout=5000)
    assert tray_ui.calls.made == ["show_status"]


def menu_summary(qtbot, ui) -> list[str]:
    entries = open_menu(qtbot, ui)
    return entries[: entries.index("---")]


def tooltip_lines(ui) -> list[str]:
    ui.refresh()
    return ui.icon.toolTip().split("\n")


def test_tooltip_and_menu_use_the_same_words(qtbot, tray_ui, store, secrets):
    office = add_named(store, "Office")
    secrets.set(office.id, SecretKind.VPN, "pw")
    seen = []

    def same_words() -> None:
        summary = menu_summary(qtbot, tray_ui)
        assert tooltip_lines(tray_ui)[: len(summary)] == summary
        seen.append(summary)

    same_words()
    tray_ui.controller.connect_profile(office)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    engine = ScriptedRunner.instances[-1]
    engine.publish(Status(State.AUTHENTICATING, server=engine.server))
    qtbot.waitUntil(lambda: tray_ui.controller.status.state is State.AUTHENTICATING)
    same_words()
    engine.connected("198.18.30.10", connected_at=time.monotonic() - 65)
    qtbot.waitUntil(lambda: tray_ui.controller.status.state is State.CONNECTED)
    same_words()
    engine.dropped(Failure(Layer.TLS, "The server's certificate has expired.", FailureKind.TRUST))
    qtbot.waitUntil(lambda: not tray_ui.controller.active)
    same_words()
    assert tooltip_lines(tray_ui)[-1] == "The server's certificate has expired."  # the tooltip adds the whole sentence
    assert seen == [
        ["SSTP VPN: not connected"],
        ["SSTP VPN: Office, connecting (signing in)"],
        ["SSTP VPN: Office, connected", seen[2][1]],
        ["SSTP VPN: Office, failed", "Last attempt: certificate not trusted"],
    ]
    assert seen[2][1].startswith("Address 198.18.30.10 · 0:01:0")
    QApplication.processEvents()


def test_a_password_remembered_from_the_prompt_is_labelled(qtbot, tray_app, store, secrets):
    from sstpvpn.gui.password_dialog import PasswordDialog
    from tests.unit.test_secret_store import keyring_items

    profile = add(store, name="Lab", username="bob")
    tray_app.controller.connect_profile(profile)
    qtbot.waitUntil(lambda: any(isinstance(d, PasswordDialog) for d in tray_app.dialogs), timeout=10000)
    dialog = next(d for d in tray_app.dialogs if isinstance(d, PasswordDialog))
    dialog.password.setText("typed-pw")
    dialog.accept()
    qtbot.waitUntil(lambda: secrets.get(profile.id, SecretKind.VPN) == "typed-pw", timeout=10000)
    assert keyring_items(profile.id, SecretKind.VPN) == [("SSTP VPN: Lab (bob) password", "typed-pw")]
