"""The profile editor: inline validation, passwords to the real keyring, and the Test button's
first contact with a self-signed certificate (shown with thumbprints, pinned only on request)."""

from __future__ import annotations

from pathlib import Path

import pytest
from keyring.backends import fail
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox, QLabel

from sstpvpn.client.profiles import Profile, ProxyMode, new_profile_id
from sstpvpn.client.secret_store import SecretKind, SecretStore, no_keyring_sentence
from sstpvpn.client.trust import colon_hex
from sstpvpn.gui.editor import ProfileEditor
from tests.gui.tls_server import SelfSignedHttpsServer


def open_editor(qtbot, store, secrets, profile: Profile | None = None) -> ProfileEditor:
    editor = ProfileEditor(store, secrets, profile)
    qtbot.addWidget(editor)
    editor.show()
    qtbot.waitUntil(lambda: editor.keyring is not None, timeout=10000)  # asked on a worker thread
    return editor


def visible_errors(editor: ProfileEditor) -> dict[str, str]:
    return {field: label.text() for field, label in editor.errors.items() if label.isVisibleTo(editor) and label.text()}


def save_button(editor: ProfileEditor):
    return editor.buttons.button(QDialogButtonBox.StandardButton.Save)


def fill(editor: ProfileEditor, **fields) -> None:
    for name, value in fields.items():
        widget = getattr(editor, name)
        if isinstance(value, int):
            widget.setValue(value)
        else:
            widget.setText(value)


def choose(combo, data) -> None:
    """Select the combo box's item that carries `data` (an enum member: QComboBox.findData cannot compare it)."""
    (index,) = [i for i in range(combo.count()) if combo.itemData(i) == data]
    combo.setCurrentIndex(index)


def test_each_field_is_checked_as_it_is_typed(qtbot, store, secrets, tmp_path):
    editor = open_editor(qtbot, store, secrets)
    assert visible_errors(editor) == {}  # nothing typed yet: no errors, but nothing to save either
    assert not save_button(editor).isEnabled()
    fill(editor, name="x", host="x", username="x")
    fill(editor, name="", host="", username="")
    assert visible_errors(editor) == {
        "name": "Give the profile a name.",
        "host": "Enter the server's host name or address.",
        "username": "Enter the user name (HUB\\user for SoftEther hubs).",
    }
    assert not save_button(editor).isEnabled()
    fill(editor, name="Office", host="vpn.example.com", username="alice")
    assert visible_errors(editor) == {}
    assert save_button(editor).isEnabled()
    fill(editor, host="vpn example", pin="12:34", ca_file=str(tmp_path / "missing.pem"))
    errors = visible_errors(editor)
    assert errors.keys() == {"host", "pin_sha256", "ca_file"}
    assert "spaces" in errors["host"] and "64 hexadecimal digits" in errors["pin_sha256"]
    assert errors["ca_file"] == f"The CA file {tmp_path / 'missing.pem'} does not exist."
    assert not save_button(editor).isEnabled() and not editor.test_button.isEnabled()
    fill(editor, host="vpn.example.com", pin="", ca_file="")
    choose(editor.proxy_mode, ProxyMode.MANUAL)
    fill(editor, proxy_url="http://bob:secret@proxy:3128")
    assert "password field" in visible_errors(editor)["proxy"]
    fill(editor, proxy_url="http://bob@proxy")
    assert "no port" in visible_errors(editor)["proxy"]
    fill(editor, proxy_url="http://bob@proxy:3128")
    assert visible_errors(editor) == {}
    fill(editor, extra_routes="10.20.0.0/16, 10.30.0.1/16")
    assert "'10.30.0.1/16' is not a network" in visible_errors(editor)["extra_routes"]
    fill(editor, extra_routes="10.20.0.0/16, 10.30.0.0/16")
    assert visible_errors(editor) == {}
    assert editor.current_profile().extra_routes == ("10.20.0.0/16", "10.30.0.0/16")
    assert editor.current_profile().use_vpn_dns  # the default
    store.save(Profile(id=new_profile_id(), name="office", host="h.example.com", username="x"))
    fill(editor, name="Office ")
    assert "already called" in visible_errors(editor)["name"]


def test_save_puts_the_password_in_the_keyring_only(qtbot, store, secrets):
    editor = open_editor(qtbot, store, secrets)
    assert editor.keyring_note.text() == "Passwords are kept in the system keyring only."
    fill(editor, name="Office", host="vpn.example.com", port=8443, username="alice", password="s3cret-pw")
    with qtbot.waitSignal(editor.saved, timeout=10000) as saved:
        save_button(editor).click()
    profile = saved.args[0]
    assert store.load().profiles == (profile,)
    assert profile.port == 8443
    assert secrets.get(profile.id, SecretKind.VPN) == "s3cret-pw"
    assert "s3cret-pw" not in store.path.read_text()

    renaming = open_editor(qtbot, store, secrets, profile)
    assert renaming.password.placeholderText() == "saved in the keyring (type to replace)"
    fill(renaming, name="Head office")
    with qtbot.waitSignal(renaming.saved, timeout=10000):
        save_button(renaming).click()
    (renamed,) = store.load().profiles
    assert renamed.id == profile.id and renamed.name == "Head office"
    assert secrets.get(profile.id, SecretKind.VPN) == "s3cret-pw"  # the password followed the rename


def test_without_a_keyring_the_editor_says_what_to_install(qtbot, store):
    editor = open_editor(qtbot, store, SecretStore(fail.Keyring()))
    assert editor.keyring_note.text() == no_keyring_sentence()
    assert not editor.password.isEnabled()
    fill(editor, name="Office", host="vpn.example.com", username="alice")
    with qtbot.waitSignal(editor.saved, timeout=10000):
        save_button(editor).click()
    assert store.load().find("Office") is not None


@pytest.fixture
def https_server(tmp_path: Path):
    with SelfSignedHttpsServer(tmp_path) as server:
        yield server


def test_first_contact_offers_to_pin_a_self_signed_certificate(qtbot, store, secrets, https_server, screenshots):
    editor = open_editor(qtbot, store, secrets)
    fill(editor, name="Lab", host="localhost", port=https_server.port, username="alice")
    editor.resize(1000, 640)
    editor.test_button.click()
    qtbot.waitUntil(lambda: getattr(editor, "pin_dialog", None) is not None, timeout=30000)
    report = editor.test_output.toPlainText()
    assert "FAILED  Trust" in report and "not issued by a trusted authority" in report
    assert f"SHA-256 hash: {https_server.sha256}" in report
    dialog = editor.pin_dialog
    qtbot.waitUntil(dialog.isVisible)
    labels = {label.objectName(): label.text() for label in dialog.findChildren(QLabel)}
    assert labels["sha256"] == colon_hex(bytes.fromhex(https_server.sha256))
    assert labels["sha1"] == colon_hex(bytes.fromhex(https_server.sha1))
    assert labels["subject"] == "CN=localhost" and labels["names"] == "DNS:localhost"
    qtbot.wait(200)
    QGuiApplication.primaryScreen().grabWindow(0, *dialog.frameGeometry().getRect()).save(str(screenshots / "pin-offer.png"))
    dialog.trust_button.click()
    pinned_file = store.certificates_dir / f"{editor.profile_id}.pem"
    assert editor.ca_file.text() == str(pinned_file) and pinned_file.exists()
    assert editor.pin.text() == colon_hex(bytes.fromhex(https_server.sha256))

    editor.test_button.click()  # now the certificate is trusted through the pin and the CA file
    qtbot.waitUntil(lambda: "Result:" in editor.test_output.toPlainText(), timeout=30000)
    report = editor.test_output.toPlainText()
    assert "    ok  Trust" in report and "its SHA-256 fingerprint matches the pin" in report
    assert "Result: SSTP VPN can reach the SSTP service at localhost:" in report
    QGuiApplication.primaryScreen().grabWindow(0, *editor.frameGeometry().getRect()).save(str(screenshots / "profile-editor.png"))
    with qtbot.waitSignal(editor.saved, timeout=10000):
        save_button(editor).click()
    saved = store.load().find("Lab")
    assert saved.ca_file == str(pinned_file) and saved.pin_sha256 == editor.pin.text()


def test_cancel_removes_a_certificate_pinned_in_the_dialog(qtbot, store, secrets, https_server):
    editor = open_editor(qtbot, store, secrets)
    fill(editor, name="Lab", host="localhost", port=https_server.port, username="alice")
    editor.test_button.click()
    qtbot.waitUntil(lambda: getattr(editor, "pin_dialog", None) is not None, timeout=30000)
    editor.pin_dialog.trust_button.click()
    pinned_file = Path(editor.ca_file.text())
    assert pinned_file.exists()
    editor.reject()
    assert not pinned_file.exists()
    assert store.load().profiles == ()


def test_test_button_waits_for_a_usable_address(qtbot, store, secrets):
    editor = open_editor(qtbot, store, secrets)
    assert not editor.test_button.isEnabled()
    fill(editor, host="vpn.example.com")
    assert editor.test_button.isEnabled()
    assert editor.windowFlags() & Qt.WindowType.Dialog


def test_the_editor_fits_the_screen_and_its_buttons_stay_in_view(qtbot, store, secrets):
    """The form is taller than a laptop's 768 lines (and than this 800-line test screen): the window
    takes the screen's room, the form scrolls, Save and Cancel stay on the screen."""
    editor = open_editor(qtbot, store, secrets)
    room = editor.screen().availableGeometry()
    form = editor.form.sizeHint()
    assert form.height() > room.height() * 0.92  # so this test does prove the scrolling
    assert editor.frameGeometry().height() <= room.height() and editor.frameGeometry().width() <= room.width()
    assert editor.form_area.verticalScrollBar().maximum() > 0
    for button in (QDialogButtonBox.StandardButton.Save, QDialogButtonBox.StandardButton.Cancel):
        corner = editor.buttons.button(button).mapToGlobal(editor.buttons.button(button).rect().bottomRight())
        assert room.contains(corner), (button, corner, room)
