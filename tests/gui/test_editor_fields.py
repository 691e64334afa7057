"""The profile editor as it is typed in: host:port in the Server field, inline errors that keep
their room (nothing moves), no errors before a field is typed in or left, the focus after Test,
and the keyring items' labels."""

from __future__ import annotations

import socket

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

from sstpvpn.client.profiles import Profile, ProxyMode, new_profile_id
from sstpvpn.client.secret_store import SecretKind
from sstpvpn.gui.editor import ProfileEditor
from tests.gui.test_editor import choose, fill, open_editor, save_button, visible_errors
from tests.unit.test_secret_store import keyring_items


def type_into(qtbot, widget: QWidget, text: str) -> None:
    """Real key presses, as the user types (select all first, so the text replaces what is there)."""
    widget.setFocus()
    qtbot.keyClick(widget, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    if text:
        qtbot.keyClicks(widget, text)
    else:
        qtbot.keyClick(widget, Qt.Key.Key_Backspace)


def active(qtbot, editor: ProfileEditor) -> ProfileEditor:
    editor.activateWindow()
    qtbot.waitUntil(editor.isActiveWindow, timeout=5000)
    return editor


def test_server_field_takes_a_port_and_fills_the_port_field(qtbot, store, secrets, screenshots):
    editor = active(qtbot, open_editor(qtbot, store, secrets))
    fill(editor, name="Office", username="alice")
    type_into(qtbot, editor.host, "vpn.example.com:8443")
    assert editor.port.value() == 8443
    assert visible_errors(editor) == {} and save_button(editor).isEnabled()
    assert (editor.current_profile().host, editor.current_profile().port) == ("vpn.example.com", 8443)
    type_into(qtbot, editor.host, "[2001:db8::1]:9443")
    assert editor.port.value() == 9443 and editor.current_profile().host == "2001:db8::1"
    assert visible_errors(editor) == {}

    editor.port.setValue(443)  # the Port field alone changed: the two disagree
    assert visible_errors(editor) == {"port": "The Server field says 9443: make them agree."}
    assert not save_button(editor).isEnabled() and not editor.test_button.isEnabled()
    editor.resize(1000, 700)
    qtbot.wait(200)  # let it paint
    assert QGuiApplication.primaryScreen().grabWindow(0, *editor.frameGeometry().getRect()).save(str(screenshots / "profile-editor-inline-error.png"))

    type_into(qtbot, editor.host, "vpn.example.com:99999")
    assert visible_errors(editor) == {"host": "After “:” comes the port, from 1 to 65535."}
    type_into(qtbot, editor.host, "vpn.example.com:4433")
    assert editor.port.value() == 4433 and visible_errors(editor) == {}
    with qtbot.waitSignal(editor.saved, timeout=10000) as saved:
        save_button(editor).click()
    assert (saved.args[0].host, saved.args[0].port) == ("vpn.example.com", 4433)
    again = open_editor(qtbot, store, secrets, saved.args[0])
    assert (again.host.text(), again.port.value()) == ("vpn.example.com", 4433)


def field_positions(editor: ProfileEditor) -> dict[str, tuple[int, int, int, int]]:
    """Where each field's input is in the dialog (and the dialog's size)."""
    places = {name: label.parentWidget() for name, label in editor.errors.items()}
    places["test_output"] = editor.test_output
    places["buttons"] = editor.buttons
    positions = {name: (*tuple(widget.mapTo(editor, QPoint(0, 0)).toTuple()), widget.width(), widget.height()) for name, widget in places.items()}
    positions["dialog"] = (0, 0, editor.width(), editor.height())
    return positions


def typed_in_turn(qtbot, editor: ProfileEditor, steps, expected_positions) -> set[str]:
    """Type each step; nothing may move. Returns the fields whose errors showed on the way."""
    seen: set[str] = set()
    for widget, text in steps:
        type_into(qtbot, widget, text)
        qtbot.wait(30)  # layout requests go up one level per event round
        seen |= visible_errors(editor).keys()
        assert field_positions(editor) == expected_positions, f"after typing {text!r}"
        for label in editor.errors.values():  # every sentence fully shown
            assert not label.text() or label.height() >= label.heightForWidth(label.width())
    return seen


def test_nothing_moves_as_errors_come_and_go(qtbot, store, secrets):
    editor = active(qtbot, open_editor(qtbot, store, secrets))
    editor.resize(900, 760)
    qtbot.wait(100)
    before = field_positions(editor)
    one_line_errors = (
        (editor.name, "Office"),
        (editor.host, "vpn example"),  # spaces: an error under the field
        (editor.host, "vpn.example.com"),
        (editor.username, "alice"),
        (editor.username, ""),  # empty again: an error
        (editor.name, ""),
        (editor.host, "vpn.example.com:"),
        (editor.host, "vpn.example.com:8443"),
        (editor.username, "alice"),
        (editor.name, "Office"),
    )
    assert typed_in_turn(qtbot, editor, one_line_errors, before) == {"name", "host", "username"}
    assert visible_errors(editor) == {}

    type_into(qtbot, editor.pin, "12:34")  # a sentence of several lines: it makes its room once ...
    qtbot.wait(30)
    pin_error = editor.errors["pin_sha256"]
    assert pin_error.text() and pin_error.height() >= 2 * before["port"][3] // 3  # more than one line
    after = field_positions(editor)
    assert after != before
    again = ((editor.pin, ""), (editor.pin, "12"), (editor.pin, ""), (editor.host, "vpn example"), (editor.host, "vpn.example.com"))
    assert typed_in_turn(qtbot, editor, again, after) == {"pin_sha256", "host"}  # ... and keeps it


def test_no_error_before_a_field_is_typed_in_or_left(qtbot, store, secrets):
    editor = active(qtbot, open_editor(qtbot, store, secrets))
    editor.name.setFocus()
    qtbot.waitUntil(editor.name.hasFocus)
    assert visible_errors(editor) == {} and not save_button(editor).isEnabled()
    qtbot.keyClick(editor.name, Qt.Key.Key_Tab)  # left empty
    qtbot.waitUntil(editor.host.hasFocus)
    assert visible_errors(editor) == {"name": "Give the profile a name."}
    qtbot.keyClicks(editor.host, "vpn ex")  # typing in the server field
    assert visible_errors(editor) == {"name": "Give the profile a name.", "host": "The host name must not contain spaces."}
    assert "username" not in visible_errors(editor)  # not reached yet


def test_a_saved_profile_shows_its_problems_at_once(qtbot, store, secrets, tmp_path):
    """Its fields hold what the user typed before: a CA file that has gone since is said at once."""
    profile = Profile(id=new_profile_id(), name="Lab", host="vpn.example.com", username="alice", ca_file=str(tmp_path / "missing.pem"))
    editor = open_editor(qtbot, store, secrets, profile)
    assert visible_errors(editor) == {"ca_file": f"The CA file {tmp_path / 'missing.pem'} does not exist."}


def closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nobody listens once it is closed: the Test fails at TCP at once


def test_focus_stays_where_the_user_was_after_test(qtbot, store, secrets):
    editor = active(qtbot, open_editor(qtbot, store, secrets))
    fill(editor, name="Lab", host="127.0.0.1", port=closed_loopback_port(), username="alice")
    editor.host.setFocus()
    qtbot.waitUntil(editor.host.hasFocus)
    qtbot.mouseClick(editor.test_button, Qt.MouseButton.LeftButton)  # a click on Test
    qtbot.waitUntil(lambda: "Result:" in editor.test_output.toPlainText(), timeout=30000)
    assert "FAILED" in editor.test_output.toPlainText()
    assert editor.focusWidget() is editor.host and editor.host.hasFocus()

    editor.test_button.setFocus()  # Tab to Test, then Space
    qtbot.waitUntil(editor.test_button.hasFocus)
    editor.test_output.clear()
    qtbot.keyClick(editor.test_button, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: "Result:" in editor.test_output.toPlainText(), timeout=30000)
    assert editor.focusWidget() is editor.test_button


def test_keyring_items_carry_the_profile_and_user(qtbot, store, secrets):
    editor = open_editor(qtbot, store, secrets)
    fill(editor, name="Office", host="vpn.example.com", username="alice", password="s3cret-pw")
    choose(editor.proxy_mode, ProxyMode.MANUAL)
    fill(editor, proxy_url="http://bob@proxy:3128", proxy_password="proxy-pw")
    with qtbot.waitSignal(editor.saved, timeout=10000) as saved:
        save_button(editor).click()
    profile = saved.args[0]
    assert keyring_items(profile.id, SecretKind.VPN) == [("SSTP VPN: Office (alice) password", "s3cret-pw")]
    assert keyring_items(profile.id, SecretKind.PROXY) == [("SSTP VPN: Office (bob) proxy password", "proxy-pw")]

    renaming = open_editor(qtbot, store, secrets, profile)
    fill(renaming, name="Head office")  # no password typed: the items are relabelled, not rewritten
    with qtbot.waitSignal(renaming.saved, timeout=10000):
        save_button(renaming).click()
    assert keyring_items(profile.id, SecretKind.VPN) == [("SSTP VPN: Head office (alice) password", "s3cret-pw")]
    assert keyring_items(profile.id, SecretKind.PROXY) == [("SSTP VPN: Head office (bob) proxy password", "proxy-pw")]
