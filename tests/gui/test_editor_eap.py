"""The profile editor's sign-in method: EAP-TLS / PEAP fields are checked as typed, enabled only
for the method that uses them, and an EAP profile keeps its settings through an edit."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication

from sstpvpn.client.profiles import Profile, new_profile_id
from tests.gui.test_editor import fill, open_editor, save_button, visible_errors

PIN = "CD" * 32


def test_eap_fields_are_checked_and_enabled_by_method(qtbot, store, secrets, tmp_path, screenshots):
    editor = open_editor(qtbot, store, secrets)
    fill(editor, name="Office", host="vpn.example.com", username="alice")
    assert not editor.eap_server_name.isEnabled() and not editor.client_certificate.isEnabled()
    editor.auth_method.setCurrentIndex(editor.auth_method.findData("eap-tls"))
    errors = visible_errors(editor)
    assert errors.keys() == {"client_certificate", "eap_server_name"}
    assert errors["client_certificate"].startswith("EAP-TLS needs your certificate file")
    assert editor.client_certificate.isEnabled() and editor.eap_tls13.isEnabled()
    assert "passphrase" in editor.password.toolTip()
    assert not save_button(editor).isEnabled()
    certificate = tmp_path / "me.p12"
    certificate.write_bytes(b"not checked until connecting")
    fill(editor, client_certificate=str(certificate), eap_server_name="nps.corp.example")
    assert visible_errors(editor) == {} and save_button(editor).isEnabled()
    qtbot.wait(200)  # let the window settle before the picture
    QGuiApplication.primaryScreen().grabWindow(0, *editor.frameGeometry().getRect()).save(str(screenshots / "profile-editor-eap-tls.png"))
    profile = editor.current_profile()
    assert (profile.auth_method, profile.client_certificate, profile.eap_server_name) == ("eap-tls", str(certificate), "nps.corp.example")
    editor.auth_method.setCurrentIndex(editor.auth_method.findData("peap"))
    assert not editor.client_certificate.isEnabled() and editor.eap_pin.isEnabled()
    fill(editor, eap_pin="12")
    assert visible_errors(editor).keys() == {"eap_pin_sha256"}
    fill(editor, eap_server_name="", eap_pin="")
    assert visible_errors(editor).keys() == {"eap_server_name"}


def test_an_eap_profile_keeps_its_settings_through_the_editor(qtbot, store, secrets):
    profile = Profile(
        id=new_profile_id(),
        name="Corp",
        host="vpn.example.com",
        username="alice",
        auth_method="peap",
        eap_server_name="nps.corp.example",
        eap_pin_sha256=PIN,
    )
    editor = open_editor(qtbot, store, secrets, profile)
    assert editor.current_profile() == profile
    assert editor.auth_method.currentData() == "peap"
