"""The tray icon under a real tray host (trayer on Xvfb): the menu is rebuilt each time it opens
and tells the live state; the icon and tooltip follow the connection; notices become balloons."""

from __future__ import annotations

import subprocess
import time

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QLabel

from sstpvpn.client.core.types import Failure, FailureKind, Layer, State, Status
from sstpvpn.client.profiles import Profile, new_profile_id
from sstpvpn.client.secret_store import SecretKind
from sstpvpn.gui.connection import ConnectionController, Notice
from sstpvpn.gui.icons import TrayState, state_icon
from sstpvpn.gui.presentation import plain_text
from sstpvpn.gui.tray import Tray
from tests.gui.desktop import INSTALL_GUI
from tests.gui.scripted_runner import ScriptedRunner
from tests.realparts import require_program


class Calls:
    def __init__(self) -> None:
        self.made: list[str] = []

    def __getattr__(self, name: str):
        return lambda: self.made.append(name)


@pytest.fixture
def tray_ui(qtbot, tray, store, secrets):
    ScriptedRunner.instances.clear()
    controller = ConnectionController(store, secrets, environ={}, runner_factory=ScriptedRunner)
    calls = Calls()
    ui = Tray(
        controller,
        store,
        show_status=calls.show_status,
        show_log=calls.show_log,
        show_profiles=calls.show_profiles,
        add_profile=calls.add_profile,
        quit=calls.quit,
    )
    ui.calls = calls
    ui.icon.show()
    qtbot.waitUntil(lambda: ui.icon.geometry().x() > 0, timeout=10000)  # embedded by the tray host
    yield ui
    ui.menu.hide()
    ui.icon.hide()
    controller.shutdown(timeout=1)
    qtbot.waitUntil(lambda: not ScriptedRunner.instances or ScriptedRunner.instances[-1].stopped or not controller.active)


def open_menu(qtbot, ui: Tray) -> list[str]:
    """Pop the real context menu up at the icon (aboutToShow rebuilds it) and read its entries."""
    ui.menu.popup(ui.icon.geometry().bottomLeft())
    qtbot.waitUntil(ui.menu.isVisible, timeout=5000)
    texts = ["---" if action.isSeparator() else plain_text(action.text()) for action in ui.menu.actions()]
    ui.menu.hide()
    return texts


def add(store, name: str, **changes) -> Profile:
    return store.save(Profile(id=new_profile_id(), name=name, host="vpn.example.com", username="alice", **changes))


def test_menu_without_profiles_offers_to_add_one(qtbot, tray_ui):
    assert open_menu(qtbot, tray_ui) == [
        "SSTP VPN: not connected",
        "---",
        "Add a profile…",
        "---",
        "Status…",
        "Edit profiles…",
        "Log…",
        "---",
        "Start at login",
        "Connect at start",
        "---",
        "Quit",
    ]
    tray_ui.action("Add a profile…").trigger()
    tray_ui.action("Status…").trigger()
    tray_ui.action("Quit").trigger()
    assert tray_ui.calls.made == ["add_profile", "show_status", "quit"]


def test_menu_is_rebuilt_each_time_it_opens(qtbot, tray_ui, store):
    add(store, "Office")
    first = open_menu(qtbot, tray_ui)
    add(store, "Home & Garden")
    second = open_menu(qtbot, tray_ui)
    assert first[2:3] == ["Connect “Office”"]
    assert second[2:4] == ["Connect “Office”", "Connect “Home & Garden”"]  # as shown: && shows as one &
    assert tray_ui.action("Connect “Home & Garden”").text() == "Connect “&Home && Garden”"  # H: its accelerator; && one &


def test_menu_follows_the_connection(qtbot, tray_ui, store, secrets):
    office = add(store, "Office")
    add(store, "Home")
    secrets.set(office.id, SecretKind.VPN, "pw")
    open_menu(qtbot, tray_ui)
    tray_ui.action("Connect “Office”").trigger()
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    engine = ScriptedRunner.instances[-1]
    engine.publish(Status(State.AUTHENTICATING, server=engine.server))
    qtbot.waitUntil(lambda: tray_ui.controller.status.state is State.AUTHENTICATING)
    assert open_menu(qtbot, tray_ui)[:4] == ["SSTP VPN: Office, connecting (signing in)", "---", "Cancel “Office”", "Connect “Home”"]
    assert tray_ui.shown_state is TrayState.CONNECTING
    engine.connected("198.18.30.10", connected_at=time.monotonic() - 65)
    qtbot.waitUntil(lambda: tray_ui.controller.status.state is State.CONNECTED)
    entries = open_menu(qtbot, tray_ui)
    assert entries[0] == "SSTP VPN: Office, connected"
    assert entries[1].startswith("Address 198.18.30.10 · 0:01:0")
    assert entries[3:5] == ["Disconnect “Office”", "Connect “Home”"]
    assert tray_ui.shown_state is TrayState.CONNECTED
    assert tray_ui.icon.icon().cacheKey() == state_icon(TrayState.CONNECTED).cacheKey()
    assert tray_ui.icon.toolTip().startswith("SSTP VPN: Office, connected\nAddress 198.18.30.10 · 0:01:0")
    tray_ui.action("Disconnect “Office”").trigger()
    qtbot.waitUntil(lambda: not tray_ui.controller.active)
    assert open_menu(qtbot, tray_ui)[0] == "SSTP VPN: not connected"
    assert tray_ui.shown_state is TrayState.DISCONNECTED


def share_of_icon(ui: Tray, looks_right) -> float:
    """The fraction of the icon's pixels on screen for which `looks_right(colour)` holds."""
    image = QGuiApplication.primaryScreen().grabWindow(0, *ui.icon.geometry().getRect()).toImage()
    pixels = [image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())]
    return sum(map(looks_right, pixels)) / len(pixels)


def grey(c) -> bool:
    return 110 < c.red() < 160 and abs(c.red() - c.blue()) < 25 and abs(c.red() - c.green()) < 25


def red(c) -> bool:
    return c.red() > 170 and c.green() < 110 and c.blue() < 110


def test_icon_on_screen_shows_the_state(qtbot, tray_ui, store, secrets):
    profile = add(store, "Office")
    secrets.set(profile.id, SecretKind.VPN, "pw")
    qtbot.waitUntil(lambda: share_of_icon(tray_ui, grey) > 0.15, timeout=5000)
    assert share_of_icon(tray_ui, red) == 0
    tray_ui.controller.connect_profile(profile)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    ScriptedRunner.instances[-1].dropped(Failure(Layer.TLS, "The server's certificate has expired.", FailureKind.TRUST))
    qtbot.waitUntil(lambda: tray_ui.shown_state is TrayState.ERROR)
    qtbot.waitUntil(lambda: share_of_icon(tray_ui, red) > 0.15, timeout=5000)
    assert "The server's certificate has expired." in tray_ui.icon.toolTip()


def test_left_click_toggles_the_last_used_profile(qtbot, tray_ui, store, secrets):
    require_program("xdotool", INSTALL_GUI)
    profile = add(store, "Office")
    add(store, "Home")
    secrets.set(profile.id, SecretKind.VPN, "pw")
    store.set_last_used(profile.id)
    centre = tray_ui.icon.geometry().center()
    subprocess.run(["xdotool", "mousemove", str(centre.x()), str(centre.y()), "click", "1"], check=True)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    assert ScriptedRunner.instances[-1].connects[0].engine.credentials.username == "alice"
    assert tray_ui.controller.profile.id == profile.id
    qtbot.wait(QApplication.doubleClickInterval() + 200)  # a quick second click is a double click
    subprocess.run(["xdotool", "click", "1"], check=True)
    qtbot.waitUntil(lambda: not tray_ui.controller.active, timeout=10000)


def test_notices_show_as_balloons(qtbot, tray_ui, screenshots):
    tray_ui.show_notice(Notice("Connected to Office", "You are on the VPN with the address 198.18.30.10."))

    def balloon():
        return next((w for w in QApplication.topLevelWidgets() if w.metaObject().className() == "QBalloonTip" and w.isVisible()), None)

    qtbot.waitUntil(lambda: balloon() is not None, timeout=5000)
    qtbot.wait(300)  # let it paint
    shot = QGuiApplication.primaryScreen().grabWindow(0, *balloon().geometry().adjusted(-4, -4, 4, 4).getRect())
    assert shot.save(str(screenshots / "notification.png"))
    balloon().hide()


def test_after_a_failure_the_menu_says_why_in_the_editors_words(qtbot, tray_ui, store, secrets, screenshots):
    """A failed attempt: the menu's header says why in a few words, and the tooltip and the
    notification name the editor's field where the shared sentence names a flag."""
    import ssl

    from sstpvpn.client.trust import verification_sentence

    profile = add(store, "Office")
    secrets.set(profile.id, SecretKind.VPN, "pw")
    tray_ui.controller.connect_profile(profile)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    reason = verification_sentence(ssl.SSLCertVerificationError("unable to get local issuer certificate"), [])
    assert "(--ca-file)" in reason
    ScriptedRunner.instances[-1].dropped(Failure(Layer.TLS, reason, FailureKind.TRUST))
    qtbot.waitUntil(lambda: not tray_ui.controller.active and tray_ui.shown_state is TrayState.ERROR)
    assert open_menu(qtbot, tray_ui)[:4] == ["SSTP VPN: Office, failed", "Last attempt: certificate not trusted", "---", "Connect “Office”"]
    shown = reason.replace("(--ca-file)", "(the “Extra CA file” field)")
    assert tray_ui.icon.toolTip() == f"SSTP VPN: Office, failed\nLast attempt: certificate not trusted\n{shown}"

    def balloon():
        return next((w for w in QApplication.topLevelWidgets() if w.metaObject().className() == "QBalloonTip" and w.isVisible()), None)

    qtbot.waitUntil(lambda: balloon() is not None, timeout=5000)
    assert shown in [child.text() for child in balloon().children() if isinstance(child, QLabel)]
    tip = balloon().geometry()
    tray_ui.menu.popup(QPoint(tip.left(), tip.bottom() + 8))  # under the notification, so the shot shows both
    qtbot.waitUntil(tray_ui.menu.isVisible, timeout=5000)
    qtbot.wait(300)  # let both paint
    area = tray_ui.menu.geometry().united(balloon().geometry()).adjusted(-4, -4, 4, 4)
    assert QGuiApplication.primaryScreen().grabWindow(0, *area.getRect()).save(str(screenshots / "tray-menu-last-attempt.png"))
    tray_ui.menu.hide()
    balloon().hide()


def test_the_tooltip_clock_ticks_only_while_the_tooltip_shows_a_time(qtbot, tray_ui, store, secrets):
    """The once-a-second refresh runs while connected (the tooltip's duration), not while idle or
    connecting: a tray app left alone does not wake up for nothing."""
    assert not tray_ui.ticker.isActive()
    profile = add(store, "Office")
    secrets.set(profile.id, SecretKind.VPN, "pw")
    tray_ui.controller.connect_profile(profile)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    assert tray_ui.controller.active and not tray_ui.ticker.isActive()
    ScriptedRunner.instances[-1].connected()
    qtbot.waitUntil(tray_ui.ticker.isActive)
    tray_ui.controller.disconnect_session()
    qtbot.waitUntil(lambda: not tray_ui.controller.active)
    assert not tray_ui.ticker.isActive()
