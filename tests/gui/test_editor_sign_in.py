"""The editor's Test signs in too when a user name and password are filled in, against a real TLS +
SSTP server on loopback (tests/loopback_sstp.py): it says who signed in with which method, and
that it disconnected before any network change; a refused password says so; without a password
it stays the server check and says it did not sign in. The platform is never asked for a tunnel."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication

from sstpvpn.client.profiles import Profile, new_profile_id
from sstpvpn.client.secret_store import SecretKind
from sstpvpn.platform import current
from tests.gui.test_editor import fill, open_editor
from tests.loopback_sstp import LoopbackSstpServer

PASSWORD = "correct horse battery"


@pytest.fixture
def sstp_server(tmp_path: Path):
    with LoopbackSstpServer(tmp_path) as server:
        yield server


@pytest.fixture(autouse=True)
def no_tunnel(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def refuse(*args: object, **kwargs: object) -> None:
        calls.append("open_tunnel")
        raise AssertionError("Test asked for a tunnel device")

    monkeypatch.setattr(current, "open_tunnel", refuse)
    return calls


def run_test(qtbot, editor) -> str:
    editor.test_button.click()
    qtbot.waitUntil(lambda: "Result:" in editor.test_output.toPlainText(), timeout=60000)
    return editor.test_output.toPlainText()


def lab_editor(qtbot, store, secrets, server: LoopbackSstpServer, **fields: str):
    editor = open_editor(qtbot, store, secrets)
    fill(editor, name="Lab", host="localhost", port=server.port, ca_file=str(server.cert_path), username="alice", **fields)
    return editor


def test_test_signs_in_and_disconnects_before_any_network_change(qtbot, store, secrets, sstp_server, screenshots, no_tunnel):
    editor = lab_editor(qtbot, store, secrets, sstp_server, password=PASSWORD)
    editor.resize(1000, 700)
    report = run_test(qtbot, editor)
    assert "    ok  SSTP" in report and "    ok  Sign-in" in report
    assert "Result: Signed in as alice with MS-CHAPv2; disconnected before any network change." in report
    assert "Did not sign in" not in report and PASSWORD not in report
    (signed_in,) = sstp_server.signed_in
    assert signed_in.binding is not None and signed_in.binding.ok
    assert signed_in.ipcp_requests == [] and signed_in.stage == "disconnected"
    assert no_tunnel == []
    editor.test_output.verticalScrollBar().setValue(editor.test_output.verticalScrollBar().maximum())
    qtbot.wait(200)
    QGuiApplication.primaryScreen().grabWindow(0, *editor.frameGeometry().getRect()).save(str(screenshots / "editor-test-signed-in.png"))


def test_test_says_a_refused_password_was_refused(qtbot, store, secrets, sstp_server):
    editor = lab_editor(qtbot, store, secrets, sstp_server, password="not the password")
    report = run_test(qtbot, editor)
    assert "FAILED  Sign-in" in report
    assert "Result: The server refused the user name or password. Check them and try again." in report
    assert "not the password" not in report
    assert sstp_server.signed_in == []


def test_test_without_a_password_checks_the_server_only_and_says_so(qtbot, store, secrets, sstp_server):
    editor = lab_editor(qtbot, store, secrets, sstp_server)
    report = run_test(qtbot, editor)
    assert "Sign-in" not in report
    assert "Result: SSTP VPN can reach the SSTP service at localhost:" in report
    assert "Did not sign in: fill in the user name and password to check them too." in report
    assert sstp_server.signed_in == []


def test_test_signs_in_with_the_password_saved_in_the_keyring(qtbot, store, secrets, sstp_server):
    profile = Profile(id=new_profile_id(), name="Lab", host="localhost", port=sstp_server.port, username="alice", ca_file=str(sstp_server.cert_path))
    store.save(profile)
    secrets.set(profile.id, SecretKind.VPN, PASSWORD)
    editor = open_editor(qtbot, store, secrets, profile)
    assert editor.password.text() == ""  # nothing typed: the saved password is used
    report = run_test(qtbot, editor)
    assert "Result: Signed in as alice with MS-CHAPv2; disconnected before any network change." in report
    assert PASSWORD not in report
    assert len(sstp_server.signed_in) == 1


def test_test_with_ask_every_time_does_not_sign_in(qtbot, store, secrets, sstp_server):
    profile = Profile(
        id=new_profile_id(),
        name="Lab",
        host="localhost",
        port=sstp_server.port,
        username="alice",
        ca_file=str(sstp_server.cert_path),
        remember_password=False,
    )
    secrets.set(profile.id, SecretKind.VPN, PASSWORD)  # left over: an ask-every-time profile never uses it
    editor = open_editor(qtbot, store, secrets, profile)
    report = run_test(qtbot, editor)
    assert "Did not sign in" in report and sstp_server.signed_in == []
