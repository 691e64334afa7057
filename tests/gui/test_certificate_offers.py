"""Issue 16, "Certificates", in the tray app: a server whose chain comes from a private CA gets the
same first-contact offer as a self-signed one (trust its certificate, or the issuing CA it sends),
a server that does not send its CA is offered only the pin, and a pinned server whose certificate
changed is said to have changed. End to end with the real EngineRunner against a TLS server on
loopback: after either choice the next attempt trusts the server and sends the SSTP request."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel

from sstpvpn.client.core.types import Failure, FailureKind, Layer
from sstpvpn.client.first_contact import Choice
from sstpvpn.client.profiles import Profile
from sstpvpn.client.trust import colon_hex, pem_certificates
from sstpvpn.gui.app import TrayApp
from sstpvpn.gui.pin_dialog import PinDialog, ca_text, new_pin_text, pin_text
from tests.gui.saved_profiles import add_profile
from tests.gui.scripted_runner import ScriptedRunner
from tests.gui.tls_server import LoopbackTlsServer
from tests.unit.trust_pki import Made, make, private_chain

SSTP_REQUEST = b"SSTP_DUPLEX_POST "


def serve(folder: Path, *chain: Made) -> LoopbackTlsServer:
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "chain.pem", folder / "leaf.key"
    cert_path.write_bytes(b"".join(made.pem for made in chain))
    key_path.write_bytes(chain[0].key_pem())
    return LoopbackTlsServer(cert_path, key_path)


def sha256(made: Made) -> str:
    return colon_hex(hashlib.sha256(made.der).digest())


def sha1(made: Made) -> str:
    return colon_hex(hashlib.sha1(made.der).digest())


@pytest.fixture
def real_tray(qtbot, tray, store, secrets):
    """The tray app with the real EngineRunner."""
    app = TrayApp(store, secrets, environ={})
    app.start()
    yield app
    if not app.controller.shutting_down:
        with qtbot.waitSignal(app.stopped, timeout=20000):
            app.quit()


def add(store, secrets, **changes) -> Profile:
    return add_profile(store, secrets, password="pw", **{"host": "localhost", **changes})


def offered_dialog(qtbot, tray_app: TrayApp) -> PinDialog:
    qtbot.waitUntil(lambda: any(isinstance(d, PinDialog) for d in tray_app.dialogs), timeout=30000)
    dialog = next(d for d in tray_app.dialogs if isinstance(d, PinDialog))
    qtbot.waitUntil(dialog.isVisible)
    return dialog


def labels(dialog: PinDialog) -> dict[str, QLabel]:
    return {label.objectName(): label for label in dialog.findChildren(QLabel) if label.objectName()}


def shoot(qtbot, dialog: PinDialog, path: Path) -> None:
    qtbot.wait(300)  # let it paint
    assert QGuiApplication.primaryScreen().grabWindow(0, *dialog.frameGeometry().getRect()).save(str(path))


def sstp_requests(server: LoopbackTlsServer) -> int:
    return sum(1 for request in server.requests if request.startswith(SSTP_REQUEST))


def test_a_private_ca_server_is_offered_both_and_trusting_its_ca_connects(qtbot, real_tray, store, secrets, tmp_path, screenshots):
    root, intermediate, leaf = private_chain()
    with serve(tmp_path / "server", leaf, intermediate, root) as server:
        profile = add(store, secrets, port=server.port)
        real_tray.controller.connect_profile(profile)
        dialog = offered_dialog(qtbot, real_tray)
        assert sstp_requests(server) == 0  # nothing trusted, nothing sent, before the user says so
        assert real_tray.controller.status.failure.kind is FailureKind.TRUST
        shown = labels(dialog)
        assert dialog.windowTitle() == "Unknown server certificate"
        assert "issued by Example Issuing CA, an authority this computer does not trust" in shown["intro"].text()
        assert shown["sha256"].text() == sha256(leaf) and shown["sha1"].text() == sha1(leaf)
        assert shown["issuer"].text() == "CN=Example Issuing CA"
        assert shown["ca_subject"].text() == "CN=Example Private Root CA"  # the top of the presented chain
        assert shown["ca_sha256"].text() == sha256(root) and shown["ca_sha1"].text() == sha1(root)
        assert dialog.trust_button.text() == pin_text() and dialog.ca_button is not None and dialog.ca_button.text() == ca_text()
        assert "ca_missing" not in shown
        shoot(qtbot, dialog, screenshots / "pin-offer-private-ca.png")
        dialog.ca_button.click()
        qtbot.waitUntil(lambda: sstp_requests(server) == 1, timeout=30000)  # the chain is now verified against the CA
    trusted = store.load().by_id(profile.id)
    assert Path(trusted.ca_file) == store.certificates_dir / f"{profile.id}.pem"
    assert pem_certificates(Path(trusted.ca_file).read_bytes()) == [root.der]
    assert trusted.pin_sha256 == "" and trusted.pinned_at == ""
    logged = [entry.message for entry in real_tray.controller.log_entries]
    assert any(f"Trusted the CA CN=Example Private Root CA for localhost:{server.port}" in message for message in logged)


def test_a_private_ca_server_connects_once_its_certificate_is_pinned(qtbot, real_tray, store, secrets, tmp_path):
    root, intermediate, leaf = private_chain()
    with serve(tmp_path / "server", leaf, intermediate, root) as server:
        profile = add(store, secrets, port=server.port)
        real_tray.controller.connect_profile(profile)
        dialog = offered_dialog(qtbot, real_tray)
        dialog.trust_button.click()
        qtbot.waitUntil(lambda: sstp_requests(server) == 1, timeout=30000)  # trusted through the pin alone
    pinned = store.load().by_id(profile.id)
    assert pinned.pin_sha256 == sha256(leaf) and pinned.ca_file == ""
    when = datetime.datetime.fromisoformat(pinned.pinned_at.replace("Z", "+00:00"))
    assert abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) < 120


def test_a_server_that_does_not_send_its_ca_is_offered_only_the_pin(qtbot, tray_app, store, secrets, tmp_path, screenshots):
    _, _, leaf = private_chain()
    with serve(tmp_path / "server", leaf) as server:
        profile = add(store, secrets, port=server.port)
        tray_app.controller.connect_profile(profile)
        qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
        engine = ScriptedRunner.instances[-1]
        engine.dropped(Failure(Layer.TLS, "The server's certificate was not issued by a trusted authority.", FailureKind.TRUST))
        dialog = offered_dialog(qtbot, tray_app)
        shown = labels(dialog)
        assert dialog.ca_button is None and "ca_subject" not in shown
        assert shown["ca_missing"].isVisible()
        missing = shown["ca_missing"].text()
        assert missing.startswith(
            "The server does not send the certificate of the authority that issued its own (Example Issuing CA), "
            "so only this server's certificate can be trusted here."
        )
        shoot(qtbot, dialog, screenshots / "pin-offer-no-ca.png")
        dialog.trust_button.click()
        qtbot.waitUntil(lambda: len(engine.connects) == 2, timeout=10000)
    assert engine.connects[1].transport.pin == hashlib.sha256(leaf.der).digest()


def test_a_changed_certificate_is_said_to_have_changed(qtbot, real_tray, store, secrets, tmp_path, screenshots):
    old, new = make("localhost", dns="localhost"), make("localhost", dns="localhost")
    with serve(tmp_path / "server", new) as server:
        profile = add(store, secrets, port=server.port, pin_sha256=sha256(old), pinned_at="2026-01-02T03:04:05Z")
        notices = []
        real_tray.controller.notice.connect(notices.append)
        real_tray.controller.connect_profile(profile)
        dialog = offered_dialog(qtbot, real_tray)
        assert dialog.windowTitle() == "Server certificate changed"
        intro = labels(dialog)["intro"].text()
        assert intro.startswith(
            f"The certificate of localhost:{server.port} changed since you trusted it on 2026-01-02; old {sha256(old)}, new {sha256(new)}."
        )
        assert labels(dialog)["old_sha256"].text() == sha256(old) and labels(dialog)["sha256"].text() == sha256(new)
        assert dialog.trust_button.text() == new_pin_text() and dialog.ca_button is None
        # The notice says the same thing, not "add its CA certificate": the pin's sentence.
        (notice,) = notices
        assert "does not match the pinned one" in notice.text and "the certificate has changed" in notice.text
        assert "CA certificate" not in notice.text and "issuing CA" not in notice.text  # not a word of a thumbprint's hex
        assert sstp_requests(server) == 0
        shoot(qtbot, dialog, screenshots / "certificate-changed.png")
        dialog.trust_button.click()
        qtbot.waitUntil(lambda: sstp_requests(server) == 1, timeout=30000)
    repinned = store.load().by_id(profile.id)
    assert repinned.pin_sha256 == sha256(new) and repinned.pinned_at[:10] == datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")


def test_cancelling_a_changed_certificate_keeps_the_old_pin(qtbot, tray_app, store, secrets, tmp_path):
    old, new = make("localhost", dns="localhost"), make("localhost", dns="localhost")
    with serve(tmp_path / "server", new) as server:
        profile = add(store, secrets, port=server.port, pin_sha256=sha256(old), pinned_at="2026-01-02T03:04:05Z")
        tray_app.controller.connect_profile(profile)
        qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
        engine = ScriptedRunner.instances[-1]
        engine.dropped(Failure(Layer.TLS, "The server's certificate fingerprint does not match the pinned one.", FailureKind.TRUST))
        dialog = offered_dialog(qtbot, tray_app)
        assert dialog.changed is not None and dialog.changed.old_sha256 == sha256(old)
        dialog.cancel_button.click()
        qtbot.wait(500)
        assert len(engine.connects) == 1 and dialog.choice is None
    assert store.load().by_id(profile.id) == profile


def test_the_pinned_certificate_itself_is_not_offered_again(qtbot, tray_app, store, secrets, tmp_path):
    """A pinned server that presents the pinned certificate fails for another reason: no dialog."""
    leaf = make("localhost", dns="localhost")
    with serve(tmp_path / "server", leaf) as server:
        profile = add(store, secrets, port=server.port, pin_sha256=sha256(leaf))
        tray_app.controller.connect_profile(profile)
        qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
        ScriptedRunner.instances[-1].dropped(Failure(Layer.TLS, "The server's certificate has expired.", FailureKind.TRUST))
        qtbot.waitUntil(lambda: server.connections >= 1, timeout=10000)  # the certificate was read
        qtbot.wait(1000)
        assert not any(isinstance(d, PinDialog) for d in tray_app.dialogs)


def test_the_editor_offers_the_issuing_ca_too(qtbot, store, secrets, tmp_path):
    from sstpvpn.gui.editor import ProfileEditor

    root, intermediate, leaf = private_chain()
    with serve(tmp_path / "server", leaf, intermediate, root) as server:
        profile = add(store, secrets, port=server.port)
        editor = ProfileEditor(store, secrets, profile)
        qtbot.addWidget(editor)
        editor.show()
        qtbot.waitUntil(lambda: editor.keyring is not None, timeout=10000)
        editor.test_button.click()
        qtbot.waitUntil(lambda: getattr(editor, "pin_dialog", None) is not None, timeout=30000)
        dialog = editor.pin_dialog
        assert dialog.ca_button is not None
        dialog.ca_button.click()
        assert dialog.choice is Choice.CA
        assert editor.ca_file.text() == str(store.certificates_dir / f"{profile.id}.pem") and editor.pin.text() == ""
        editor.test_button.click()  # now the chain is verified against the saved CA
        qtbot.waitUntil(lambda: "Result:" in editor.test_output.toPlainText(), timeout=30000)
        report = editor.test_output.toPlainText()
        assert "    ok  Trust" in report and "the chain leads to an authority trusted by" in report, report


def test_the_editor_keeps_the_pin_date_until_the_pin_changes(qtbot, store, secrets):
    from PySide6.QtWidgets import QDialogButtonBox

    from sstpvpn.gui.editor import ProfileEditor

    old, new = make("localhost", dns="localhost"), make("localhost", dns="localhost")
    profile = add(store, secrets, pin_sha256=sha256(old), pinned_at="2026-01-02T03:04:05Z")

    def edit(**fields) -> Profile:
        editor = ProfileEditor(store, secrets, store.load().by_id(profile.id))
        qtbot.addWidget(editor)
        editor.show()
        qtbot.waitUntil(lambda: editor.keyring is not None, timeout=10000)
        for name, value in fields.items():
            getattr(editor, name).setText(value)
        with qtbot.waitSignal(editor.saved, timeout=10000):
            editor.buttons.button(QDialogButtonBox.StandardButton.Save).click()
        return store.load().by_id(profile.id)

    assert edit(name="Head office").pinned_at == "2026-01-02T03:04:05Z"  # another field: the date stays
    repinned = edit(pin=sha256(new))  # a pasted pin counts from when it was saved
    assert repinned.pinned_at[:10] == datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    assert edit(pin="").pinned_at == ""
