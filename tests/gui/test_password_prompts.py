"""Passwords in the tray app (issue 16): a refused password opens a prompt (enter it again,
"Remember this password"), as Windows and NetworkManager do; a profile may ask for its password
every time (one-time passwords) and then keeps none in the keyring; every password field has a
show/hide toggle. The engine's part is played by ScriptedRunner; the keyring is the suite's real
gnome-keyring (conftest)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from sstpvpn.client.core.types import Failure, FailureKind, Layer, State
from sstpvpn.client.profiles import ProxyChoice, ProxyMode
from sstpvpn.client.secret_store import SecretKind
from sstpvpn.gui.editor import ProfileEditor
from sstpvpn.gui.password_dialog import PasswordDialog
from sstpvpn.gui.password_field import PasswordField, hide_words, show_words
from tests.gui.saved_profiles import add_profile as add
from tests.gui.scripted_runner import ScriptedRunner

REFUSED = "The server refused the user name or password. Check them and try again."
# What the engine ends a session with after an MS-CHAPv2 Failure E=691 (tests/unit/test_password_refusals.py
# checks that the engine sets the flag for 691, a PAP Nak and a CHAP Failure).
REFUSED_691 = Failure(Layer.AUTH, REFUSED, FailureKind.AUTHENTICATION, password_refused=True)
EAP_TLS_REFUSED = Failure(
    Layer.AUTH,
    "The authentication server refused your certificate: ask the administrator whether it is allowed to connect, or which certificate to use.",
    FailureKind.AUTHENTICATION,
)
NO_COMMON_METHOD = Failure(
    Layer.AUTH,
    "The server offers only PAP, which this profile does not allow. Allow it in the profile only if you trust the network path,"
    " or ask the administrator to enable MS-CHAPv2.",
    FailureKind.AUTHENTICATION,
)


def engine() -> ScriptedRunner:
    return ScriptedRunner.instances[-1]


def connects() -> list:
    return [command for runner in ScriptedRunner.instances for command in runner.connects]


def password_dialog(qtbot, tray_app) -> PasswordDialog:
    qtbot.waitUntil(lambda: any(isinstance(d, PasswordDialog) and d.isVisible() for d in tray_app.dialogs), timeout=10000)
    return next(d for d in tray_app.dialogs if isinstance(d, PasswordDialog))


def refused_once(qtbot, tray_app, profile, failure: Failure = REFUSED_691) -> None:
    tray_app.controller.connect_profile(profile)
    qtbot.waitUntil(lambda: len(connects()) == 1, timeout=10000)
    engine().dropped(failure)
    qtbot.waitUntil(lambda: not tray_app.controller.active, timeout=10000)


def menu_texts(qtbot, tray_app) -> list[str]:
    menu = tray_app.tray.menu
    menu.popup(tray_app.tray.icon.geometry().bottomLeft())
    qtbot.waitUntil(menu.isVisible, timeout=5000)
    texts = [action.text() for action in menu.actions() if not action.isSeparator()]
    menu.hide()
    return texts


# -- a refused password ----------------------------------------------------------------------


def test_a_refused_password_is_asked_again_and_ok_retries_at_once_and_remembers_it(qtbot, tray_app, store, secrets):
    profile = add(store, secrets, "old-password")
    notices = []
    tray_app.controller.notice.connect(notices.append)
    refused_once(qtbot, tray_app, profile)
    dialog = password_dialog(qtbot, tray_app)
    assert dialog.reason.text() == "The server refused the password for alice on Office. Enter it again:"
    assert dialog.remember.text() == "Remember this password" and dialog.remember.isChecked() and dialog.remember.isVisible()
    assert dialog.ok_button.text() == "Try again"
    assert dialog.password.echoMode() is QLineEdit.EchoMode.Password and dialog.password.text() == ""
    assert not [n for n in notices if n.title.startswith("Could not connect")]  # the question says it
    qtbot.keyClicks(dialog.password, "new-password")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(connects()) == 2, timeout=10000)
    assert connects()[1].engine.credentials.password == "new-password"
    qtbot.waitUntil(lambda: secrets.get(profile.id, SecretKind.VPN) == "new-password", timeout=10000)
    engine().connected()
    qtbot.waitUntil(lambda: tray_app.controller.status.state is State.CONNECTED)
    assert tray_app.dialogs == []


def test_without_remember_the_new_password_is_used_but_not_saved(qtbot, tray_app, store, secrets):
    profile = add(store, secrets, "old-password", auto_reconnect=True)
    refused_once(qtbot, tray_app, profile)
    dialog = password_dialog(qtbot, tray_app)
    dialog.password.setText("new-password")
    dialog.remember.setChecked(False)
    dialog.accept()
    qtbot.waitUntil(lambda: len(connects()) == 2, timeout=10000)
    assert connects()[1].engine.credentials.password == "new-password"
    engine().connected()
    qtbot.waitUntil(lambda: tray_app.controller.status.state is State.CONNECTED)
    # A drop and the automatic reconnect: the typed password again, still not in the keyring.
    engine().dropped(Failure(Layer.SSTP, "The server aborted the call (status 0x7).", FailureKind.PROTOCOL))
    qtbot.waitUntil(lambda: len(connects()) == 3, timeout=10000)
    assert connects()[2].engine.credentials.password == "new-password"
    assert secrets.get(profile.id, SecretKind.VPN) == "old-password"


def test_cancel_leaves_the_attempt_failed(qtbot, tray_app, store, secrets):
    profile = add(store, secrets, "old-password")
    refused_once(qtbot, tray_app, profile)
    dialog = password_dialog(qtbot, tray_app)
    dialog.password.setText("never-used")
    dialog.reject()
    qtbot.wait(300)
    assert len(connects()) == 1 and not tray_app.controller.active
    assert tray_app.controller.status.state is State.DISCONNECTED and tray_app.controller.status.failure == REFUSED_691
    assert "Last attempt: sign-in refused" in menu_texts(qtbot, tray_app)
    assert secrets.get(profile.id, SecretKind.VPN) == "old-password"


@pytest.mark.parametrize("failure", [EAP_TLS_REFUSED, NO_COMMON_METHOD], ids=["eap-tls-certificate", "no-common-method"])
def test_a_refusal_that_is_not_the_password_does_not_ask(qtbot, tray_app, store, secrets, failure):
    profile = add(store, secrets, "pw")
    notices = []
    tray_app.controller.notice.connect(notices.append)
    refused_once(qtbot, tray_app, profile, failure)
    qtbot.waitUntil(lambda: bool(notices), timeout=5000)
    qtbot.wait(300)
    assert [(n.title, n.text) for n in notices] == [("Could not connect to Office", failure.reason)]
    assert not any(isinstance(d, PasswordDialog) for d in tray_app.dialogs)
    assert len(connects()) == 1


def test_the_prompt_is_not_shown_when_the_user_moved_on(qtbot, store, secrets):
    """A refusal whose question comes after the user clicked Connect again asks nothing."""
    from sstpvpn.gui.connection import ConnectionController

    ScriptedRunner.instances.clear()
    controller = ConnectionController(store, secrets, environ={}, runner_factory=ScriptedRunner)
    requests = []
    controller.credentials_needed.connect(requests.append)
    profile = add(store, secrets, "pw")
    controller.connect_profile(profile)
    qtbot.waitUntil(lambda: len(connects()) == 1, timeout=10000)

    def click_connect_again() -> None:  # the user's click, handled before the queued question
        if controller.status.failure is not None and not controller.active:
            controller.changed.disconnect(click_connect_again)
            controller.connect_profile(profile)

    controller.changed.connect(click_connect_again)
    engine().dropped(REFUSED_691)
    qtbot.waitUntil(lambda: len(connects()) == 2, timeout=10000)
    qtbot.wait(200)
    assert requests == []
    controller.shutdown(timeout=1)


# -- ask every time --------------------------------------------------------------------------


def test_ask_every_time_asks_at_each_connection_and_keeps_nothing(qtbot, tray_app, store, secrets, screenshots):
    profile = add(store, secrets, "saved-before", remember_password=False, auto_reconnect=True)
    tray_app.controller.connect_profile(profile)
    dialog = password_dialog(qtbot, tray_app)
    assert dialog.reason.text() == "Office asks for the password at every connection (one-time passwords)."
    assert not dialog.remember.isVisible() and not dialog.remember.isChecked()
    qtbot.waitUntil(lambda: secrets.get(profile.id, SecretKind.VPN) is None, timeout=10000)  # the one saved before is gone
    dialog.password.setText("otp-1")
    dialog.password.toggle.setChecked(True)  # a one-time password is often read off a token: shown
    qtbot.wait(100)
    assert dialog.grab().save(str(screenshots / "password-ask-every-time.png"))
    dialog.remember.setChecked(True)  # even so: this profile keeps no password
    dialog.accept()
    qtbot.waitUntil(lambda: len(connects()) == 1, timeout=10000)
    assert connects()[0].engine.credentials.password == "otp-1"
    engine().connected()
    qtbot.waitUntil(lambda: tray_app.controller.status.state is State.CONNECTED)
    # Dropped: the reconnect asks for the next one-time password.
    engine().dropped(Failure(Layer.SSTP, "The server aborted the call (status 0x7).", FailureKind.PROTOCOL))
    dialog = password_dialog(qtbot, tray_app)
    dialog.password.setText("otp-2")
    dialog.accept()
    qtbot.waitUntil(lambda: len(connects()) == 2, timeout=10000)
    assert connects()[1].engine.credentials.password == "otp-2"
    qtbot.wait(300)  # a save would have been started by now
    assert secrets.get(profile.id, SecretKind.VPN) is None


def test_a_refused_one_time_password_is_asked_again_once_and_never_kept(qtbot, tray_app, store, secrets):
    profile = add(store, remember_password=False)
    tray_app.controller.connect_profile(profile)
    dialog = password_dialog(qtbot, tray_app)
    dialog.password.setText("otp-typo")
    dialog.accept()
    qtbot.waitUntil(lambda: len(connects()) == 1, timeout=10000)
    engine().dropped(REFUSED_691)
    dialog = password_dialog(qtbot, tray_app)
    assert dialog.reason.text() == "The server refused the password for alice on Office. Enter it again:"
    assert not dialog.remember.isVisible()
    dialog.password.setText("otp-right")
    dialog.accept()
    qtbot.waitUntil(lambda: len(connects()) == 2, timeout=10000)
    assert connects()[1].engine.credentials.password == "otp-right"
    assert not any(isinstance(d, PasswordDialog) for d in tray_app.dialogs)  # used at once, not asked twice
    qtbot.wait(300)
    assert secrets.get(profile.id, SecretKind.VPN) is None


def test_the_editor_saves_ask_every_time_and_removes_the_saved_password(qtbot, store, secrets, screenshots):
    profile = add(store, secrets, "saved-before")
    editor = ProfileEditor(store, secrets, profile)
    qtbot.addWidget(editor)
    editor.show()
    qtbot.waitExposed(editor)
    qtbot.waitUntil(lambda: editor.keyring is not None, timeout=10000)
    assert editor.password_choice.remember and editor.password.isEnabled()
    assert editor.password.placeholderText() == "saved in the keyring (type to replace)"
    editor.password.setText("typed")
    qtbot.mouseClick(editor.password_choice.ask_button, Qt.MouseButton.LeftButton)
    assert not editor.password_choice.remember
    assert not editor.password.isEnabled() and editor.password.text() == ""
    assert editor.password.placeholderText() == "asked for at each connection, never saved"
    qtbot.wait(100)
    assert editor.grab().save(str(screenshots / "profile-editor-ask-every-time.png"))
    with qtbot.waitSignal(editor.saved, timeout=10000):
        editor.buttons.button(editor.buttons.StandardButton.Save).click()
    assert store.load().by_id(profile.id).remember_password is False
    qtbot.waitUntil(lambda: secrets.get(profile.id, SecretKind.VPN) is None, timeout=10000)
    again = ProfileEditor(store, secrets, store.load().by_id(profile.id))
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: again.keyring is not None, timeout=10000)
    assert again.password_choice.ask_button.isChecked() and not again.password.isEnabled()
    again.password_choice.set_remember(True)
    assert again.password.isEnabled() and again.password.placeholderText() == "not saved: type it to save it"


# -- show / hide -----------------------------------------------------------------------------


def test_the_toggle_shows_and_hides_the_password(qtbot):
    field = PasswordField("Password")
    qtbot.addWidget(field)
    field.show()
    field.setText("s3cret")
    button = field.toggle_button
    assert field.echoMode() is QLineEdit.EchoMode.Password and not field.toggle.isChecked()
    assert button.accessibleName() == show_words() and field.toggle.toolTip() == show_words() and field.accessibleName() == "Password"
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert field.echoMode() is QLineEdit.EchoMode.Normal and field.shown
    assert button.accessibleName() == hide_words() and field.toggle.text() == hide_words()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert field.echoMode() is QLineEdit.EchoMode.Password and button.accessibleName() == show_words()
    field.toggle.setChecked(True)
    field.setEnabled(False)  # e.g. "ask every time": hidden again
    assert field.echoMode() is QLineEdit.EchoMode.Password


def test_every_password_field_has_the_toggle(qtbot, store, secrets):
    profile = add(store, proxy=ProxyChoice(ProxyMode.MANUAL, "proxy.example.com", 3128, "bob"))
    editor = ProfileEditor(store, secrets, profile)
    qtbot.addWidget(editor)
    from sstpvpn.gui.connection import CredentialsRequest

    dialog = PasswordDialog(CredentialsRequest(profile, True, True, "No password is saved for this profile.", can_remember=True))
    qtbot.addWidget(dialog)
    fields = [editor.password, editor.proxy_password, dialog.password, dialog.proxy_password]
    assert all(isinstance(field, PasswordField) for field in fields)
    for field in fields:
        assert field.echoMode() is QLineEdit.EchoMode.Password
        field.toggle.trigger()
        assert field.echoMode() is QLineEdit.EchoMode.Normal
    assert dialog.remember.text() == "Remember these passwords"
