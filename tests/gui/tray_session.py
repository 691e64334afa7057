"""Drives the real tray app the way a person does: clicks on its icon in the tray host and on its
menu entries (real X events through xdotool), then reads what the windows show.

test_tray_end_to_end.py runs this inside the SoftEther fixture's client namespace, so the app's
engine, TUN device, routes and DNS live there:

    ip netns exec NS python -m tests.gui.tray_session connect ARTIFACTS_DIR PROFILE_NAME PING_ADDRESS
    ip netns exec NS setpriv --bounding-set=-net_admin python -m tests.gui.tray_session unprivileged ...

The profile and its password are already in XDG_CONFIG_HOME and the keyring on
DBUS_SESSION_BUS_ADDRESS. Prints one JSON object with what it saw; a step that does not happen
in time raises, so the exit status is 1 with the traceback on stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from PySide6.QtCore import QRect, QtMsgType, qInstallMessageHandler
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QLabel, QMenu, QWidget

from sstpvpn.client.core.i18n import _
from sstpvpn.client.core.types import State
from sstpvpn.gui.app import TrayApp, translate_qt
from sstpvpn.gui.log_window import LogWindow
from sstpvpn.gui.presentation import plain_text
from sstpvpn.platform.language import use_users_language

QT_PROBLEMS = (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg)


def wait_for(condition, seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"{what}: not within {seconds} s")
        QApplication.processEvents()
        time.sleep(0.02)


def pause(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def xdotool(*args: str) -> None:
    subprocess.run(["xdotool", *args], check=True)


def click(x: int, y: int, button: int = 1) -> None:
    xdotool("mousemove", str(x), str(y), "click", str(button))


def screenshot(rect: QRect, path: Path) -> None:
    pause(0.3)  # let the last paint reach the screen
    if not QGuiApplication.primaryScreen().grabWindow(0, *rect.getRect()).save(str(path)):
        raise OSError(f"could not save {path}")


class Person:
    """What a person does with the tray icon."""

    def __init__(self, tray_app: TrayApp) -> None:
        self.app = tray_app
        self.tray = tray_app.tray
        self.menu: QMenu = tray_app.tray.menu

    def icon_centre(self):
        return self.tray.icon.geometry().center()

    def open_menu(self) -> list[str]:
        if self.menu.isVisible():
            raise AssertionError("the menu is already open")
        centre = self.icon_centre()
        click(centre.x(), centre.y(), button=3)
        wait_for(self.menu.isVisible, 10, "the tray menu did not open on a right click")
        pause(0.2)
        return ["---" if action.isSeparator() else plain_text(action.text()) for action in self.menu.actions()]

    def choose(self, text: str) -> None:
        action = self.tray.action(text)
        if action is None:
            raise AssertionError(f"no menu entry {text!r} in {[a.text() for a in self.menu.actions()]}")
        centre = self.menu.mapToGlobal(self.menu.actionGeometry(action).center())
        click(centre.x(), centre.y())
        wait_for(lambda: not self.menu.isVisible(), 10, f"the menu stayed open after clicking {text!r}")

    def menu_and_icon_area(self) -> QRect:
        return self.menu.geometry().united(self.tray.icon.geometry()).adjusted(-12, -1, 12, 12)

    def left_click_icon(self) -> None:
        pause((QApplication.doubleClickInterval() + 200) / 1000)  # not part of a double click
        centre = self.icon_centre()
        click(centre.x(), centre.y())


def status_values(window: QWidget) -> dict[str, str]:
    return {name: label.text() for name, label in window.values.items()}


def connect_disconnect_quit(tray_app: TrayApp, person: Person, profile_name: str, ping_address: str, artifacts: Path, result: dict) -> None:
    """Connect from the menu, status and log windows, disconnect from the menu, connect with a
    left click, quit while connected."""
    controller = tray_app.controller
    result["menu_before"] = person.open_menu()
    screenshot(person.menu_and_icon_area(), artifacts / "tray-menu-disconnected.png")
    person.choose(f"Connect “{profile_name}”")
    wait_for(lambda: controller.status.state is State.CONNECTED, 60, "the tray app did not connect")
    result["address"] = str(controller.status.plan.address)
    result["tooltip"] = tray_app.tray.icon.toolTip()
    result["icon_state"] = tray_app.tray.shown_state.value

    # Some traffic through the tunnel, then the menu again and the status window from it.
    pinged = subprocess.run(["ping", "-c", "5", "-i", "0.2", "-W", "2", ping_address], capture_output=True, text=True)
    result["ping_returncode"] = pinged.returncode
    pause(1.2)
    result["menu_connected"] = person.open_menu()
    screenshot(person.menu_and_icon_area(), artifacts / "tray-menu-connected.png")
    person.choose("Status…")
    window = tray_app.status_window
    wait_for(lambda: window is not None and window.isVisible(), 10, "the status window did not open")
    window.move(40, 60)
    traffic = subprocess.Popen(
        ["ping", "-c", "40", "-i", "0.2", "-s", "1000", "-W", "2", ping_address], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    pause(6.5)  # once-a-second samples for the graph, while the pings flow
    result["status_window"] = status_values(window)
    result["graph_samples"] = len(window.meter.rates)
    screenshot(window.frameGeometry(), artifacts / "status-window.png")
    traffic.wait(30)

    person.open_menu()
    person.choose("Log…")
    log_window: LogWindow = tray_app.log_window
    wait_for(lambda: log_window is not None and log_window.isVisible(), 10, "the log window did not open")
    log_window.setGeometry(560, 60, 700, 420)
    result["log"] = log_window.text.toPlainText().splitlines()
    screenshot(log_window.frameGeometry(), artifacts / "log-window.png")

    # Disconnect from the menu.
    person.open_menu()
    person.choose(f"Disconnect “{profile_name}”")
    wait_for(lambda: not controller.active, 30, "the tray app did not disconnect")
    failure = controller.status.failure
    result["after_disconnect"] = {"state": controller.status.state.value, "failure": failure.reason if failure else None}
    result["status_after_disconnect"] = status_values(window)

    # Connect again with a left click (the profile used last), then Quit while connected.
    person.left_click_icon()
    wait_for(lambda: controller.status.state is State.CONNECTED, 60, "a left click did not connect")
    result["reconnected_address"] = str(controller.status.plan.address)
    person.open_menu()
    person.choose("Quit")


def kill_switch_shown(tray_app: TrayApp, person: Person, profile_name: str, artifacts: Path, result: dict, shot: str) -> None:
    """The profile's kill switch is on while connected: connect, the status window (with IPv6, once a
    global address is on the tunnel, when the profile asks for IPv6), the firewall's tables (nft, in
    this namespace), Disconnect, the window and the tables again, Quit."""
    controller = tray_app.controller
    person.open_menu()
    person.choose(f"Connect “{profile_name}”")
    wait_for(lambda: controller.status.state is State.CONNECTED, 60, "the tray app did not connect")
    person.open_menu()
    person.choose("Status…")
    window = tray_app.status_window
    wait_for(lambda: window is not None and window.isVisible(), 10, "the status window did not open")
    window.move(40, 60)
    wait_for(lambda: window.values["kill_switch"].text() != "off", 10, "the status window did not show the kill switch")
    if controller.profile is not None and controller.profile.ipv6:
        # SLAAC after SoftEther's late IPV6CP; the window reads the addresses with every tenth look.
        def global_address_shown() -> bool:
            shown = window.values["ipv6"].text().split(": ", 1)[-1].split(", ")
            return any(":" in address and not address.startswith("fe80:") for address in shown)

        wait_for(global_address_shown, 60, "no global IPv6 address shown")
    pause(1.2)
    result["status_window"] = status_values(window)
    result["tables_connected"] = nft_tables()
    screenshot(window.frameGeometry(), artifacts / shot)
    person.open_menu()
    person.choose(f"Disconnect “{profile_name}”")
    wait_for(lambda: not controller.active, 30, "the tray app did not disconnect")
    pause(0.5)
    result["status_after_disconnect"] = status_values(window)
    result["tables_disconnected"] = nft_tables()
    person.open_menu()
    person.choose("Quit")


def nft_tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout


def without_network_admin(tray_app: TrayApp, person: Person, profile_name: str, artifacts: Path, result: dict) -> None:
    """Started without CAP_NET_ADMIN: told at start, and again when the tunnel cannot be created."""
    controller = tray_app.controller
    person.open_menu()
    person.choose(f"Connect “{profile_name}”")
    wait_for(
        lambda: controller.status.state is State.DISCONNECTED and controller.status.failure is not None, 60, "the connection attempt did not end"
    )
    failure = controller.status.failure
    result["failure"] = {"where": failure.where, "reason": failure.reason}
    result["icon_state"] = tray_app.tray.shown_state.value
    pause(0.5)
    balloon = next((w for w in QApplication.topLevelWidgets() if w.metaObject().className() == "QBalloonTip" and w.isVisible()), None)
    if balloon is not None:
        screenshot(balloon.frameGeometry().adjusted(-4, -4, 4, 4), artifacts / "notification-no-admin.png")
    person.open_menu()
    person.choose("Status…")
    window = tray_app.status_window
    wait_for(lambda: window is not None and window.isVisible(), 10, "the status window did not open")
    result["status_problem"] = window.problem.text()
    person.open_menu()
    person.choose("Quit")


def refused_password_asked_again(tray_app: TrayApp, person: Person, profile_name: str, artifacts: Path, result: dict) -> None:
    """The keyring holds a wrong password: the server refuses it, the tray asks for it again (no
    trip to the editor), the person types the right one (real key events) and presses Try again;
    the new attempt connects and the keyring now holds the right password. Then Quit."""
    from sstpvpn.gui.password_dialog import PasswordDialog

    controller = tray_app.controller
    person.open_menu()
    person.choose(f"Connect “{profile_name}”")
    wait_for(lambda: any(isinstance(d, PasswordDialog) and d.isVisible() for d in tray_app.dialogs), 60, "no password prompt after the refusal")
    dialog = next(d for d in tray_app.dialogs if isinstance(d, PasswordDialog))
    failure = controller.status.failure
    result["refusal"] = {"state": controller.status.state.value, "failure": failure.reason if failure else None}
    result["prompt"] = {
        "title": dialog.windowTitle(),
        "reason": dialog.reason.text(),
        "remember": [dialog.remember.text(), dialog.remember.isChecked(), dialog.remember.isVisible()],
        "ok": dialog.ok_button.text(),
        "echo_hidden": dialog.password.echoMode() is dialog.password.EchoMode.Password,
        "toggle": dialog.password.toggle_button.accessibleName(),
    }
    dialog.move(60, 80)
    pause(0.5)
    field = dialog.password.mapToGlobal(dialog.password.rect().center())
    click(field.x() - 20, field.y())
    wait_for(dialog.password.hasFocus, 10, "a click did not put the focus in the password field")
    xdotool("type", "--delay", "15", os.environ["SSTP_VPN_TEST_PASSWORD"])
    wait_for(lambda: len(dialog.password.text()) == len(os.environ["SSTP_VPN_TEST_PASSWORD"]), 10, "the typed password did not arrive")
    result["typed_matches"] = dialog.password.text() == os.environ["SSTP_VPN_TEST_PASSWORD"]
    screenshot(dialog.frameGeometry().adjusted(-2, -2, 2, 2), artifacts / "password-refused-prompt.png")
    ok = dialog.ok_button.mapToGlobal(dialog.ok_button.rect().center())
    click(ok.x(), ok.y())
    wait_for(lambda: controller.status.state is State.CONNECTED, 60, "Try again did not connect")
    result["address"] = str(controller.status.plan.address)
    result["log"] = [entry.message for entry in controller.log_entries]
    person.open_menu()
    person.choose("Quit")


def in_the_users_language(tray_app: TrayApp, person: Person, profile_name: str, artifacts: Path, result: dict) -> None:
    """Started with the environment's language (LANGUAGE=de for test_german_session.py): the menu,
    a failed attempt's sentence in the menu, the notification and the status window, the profiles
    window and the editor, as the person sees them. The profile's server refuses connections."""
    controller = tray_app.controller
    result["menu_before"] = person.open_menu()
    screenshot(person.menu_and_icon_area(), artifacts / "german-tray-menu.png")
    person.choose(_("Connect “{name}”").format(name=profile_name))
    wait_for(
        lambda: controller.status.state is State.DISCONNECTED and controller.status.failure is not None, 60, "the connection attempt did not end"
    )
    failure = controller.status.failure
    assert failure is not None
    result["failure"] = failure.reason
    result["tooltip"] = tray_app.tray.icon.toolTip()
    pause(0.5)
    balloon = next((w for w in QApplication.topLevelWidgets() if w.metaObject().className() == "QBalloonTip" and w.isVisible()), None)
    if balloon is not None:
        screenshot(balloon.frameGeometry().adjusted(-4, -4, 4, 4), artifacts / "german-notification.png")
    result["menu_after"] = person.open_menu()
    screenshot(person.menu_and_icon_area(), artifacts / "german-tray-menu-failed.png")
    person.choose(_("Status…"))
    window = tray_app.status_window
    wait_for(lambda: window is not None and window.isVisible(), 10, "the status window did not open")
    window.move(40, 60)
    pause(0.3)
    result["status_window"] = {
        "title": window.windowTitle(),
        "problem": window.problem.text(),
        "buttons": [window.disconnect_button.text(), window.close_button.text()],
    }
    screenshot(window.frameGeometry(), artifacts / "german-status-window.png")
    window.close()
    person.open_menu()
    person.choose(_("Edit profiles…"))
    profiles = tray_app.profiles_window
    wait_for(lambda: profiles is not None and profiles.isVisible(), 10, "the profiles window did not open")
    profiles.move(40, 60)
    pause(0.3)
    screenshot(profiles.frameGeometry(), artifacts / "german-profiles-window.png")
    editor = profiles.open_editor(tray_app.store.load().profiles[0])
    wait_for(editor.isVisible, 10, "the editor did not open")
    editor.move(0, 0)
    pause(0.5)
    result["profiles_window"] = {
        "title": profiles.windowTitle(),
        "buttons": [b.text() for b in (profiles.add_button, profiles.edit_button, profiles.remove_button, profiles.connect_button)],
    }
    result["editor"] = {
        "title": editor.windowTitle(),
        "labels": [label.text() for label in editor.findChildren(QLabel) if label.text().endswith(":")],
    }
    screenshot(editor.frameGeometry(), artifacts / "german-profile-editor.png")
    editor.close()
    profiles.close()
    person.open_menu()
    person.choose(_("Quit"))


def main(argv: list[str]) -> int:
    scenario, artifacts, profile_name, ping_address = argv[1], Path(argv[2]), argv[3], argv[4]
    artifacts.mkdir(parents=True, exist_ok=True)
    qt_problems: list[str] = []
    qInstallMessageHandler(lambda kind, _context, message: qt_problems.append(message) if kind in QT_PROBLEMS else None)
    language = use_users_language()  # as sstp-vpn-tray starts (gui/app.py main)
    app = QApplication(["sstp-vpn-tray"])
    translate_qt(app, language)
    app.setQuitOnLastWindowClosed(False)
    tray_app = TrayApp()
    stopped: list[bool] = []
    tray_app.stopped.connect(lambda: stopped.append(True))
    notices: list[dict[str, str]] = []
    tray_app.controller.notice.connect(lambda notice: notices.append({"title": notice.title, "text": notice.text}))
    tray_app.start()
    person = Person(tray_app)
    result: dict[str, object] = {}
    wait_for(lambda: tray_app.tray.icon.geometry().x() > 0, 15, "the tray host did not embed the icon")
    if scenario == "connect":
        connect_disconnect_quit(tray_app, person, profile_name, ping_address, artifacts, result)
    elif scenario == "refused":
        refused_password_asked_again(tray_app, person, profile_name, artifacts, result)
    elif scenario == "kill-switch":
        kill_switch_shown(tray_app, person, profile_name, artifacts, result, "status-window-kill-switch-real.png")
    elif scenario == "kill-switch-ipv6":
        kill_switch_shown(tray_app, person, profile_name, artifacts, result, "status-window-ipv6-real.png")
    elif scenario == "language":
        in_the_users_language(tray_app, person, profile_name, artifacts, result)
    else:
        without_network_admin(tray_app, person, profile_name, artifacts, result)
    wait_for(lambda: bool(stopped), 30, "Quit did not stop the app")
    controller = tray_app.controller
    failure = controller.status.failure
    result["after_quit"] = {
        "state": controller.status.state.value,
        "failure": failure.reason if failure else None,
        "engine_thread_alive": any(t.name == "sstp-engine" for t in threading.enumerate()),
    }
    result["notices"] = notices
    result["qt_problems"] = qt_problems
    result["euid"] = os.geteuid()
    result["language"] = language
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
