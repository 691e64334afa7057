"""First contact with a certificate nobody here trusts (self-signed, or from a private CA), or a
pinned server's certificate that changed: show it with its thumbprints and let the user decide.
Nothing is trusted unless a trust button is clicked; `choice` then says which."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from sstpvpn.client.first_contact import ChangedCertificate, Choice, PresentedCertificate
from sstpvpn.client.trust import CertificateFacts

PIN_TEXT = "Trust this server's certificate"
CA_TEXT = "Trust the issuing CA"
NEW_PIN_TEXT = "Trust the new certificate"


def _common_name(facts: CertificateFacts, issuer: bool = False) -> str:
    """The CN of the subject (or issuer), else the whole name."""
    name = facts.issuer if issuer else facts.subject
    for part in name.split(","):
        if part.startswith("CN="):
            return part[3:]
    return name


class PinDialog(QDialog):
    def __init__(
        self, server: str, certificate: PresentedCertificate, parent: QWidget | None = None, changed: ChangedCertificate | None = None
    ) -> None:
        super().__init__(parent)
        self.certificate = certificate
        self.changed = changed
        self.choice: Choice | None = None  # what was trusted, once accepted
        self.setWindowTitle("Server certificate changed" if changed else "Unknown server certificate")
        self.mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        layout = QVBoxLayout(self)
        intro = QLabel(self._intro(server))
        intro.setObjectName("intro")
        intro.setWordWrap(True)
        intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(intro)
        facts = certificate.facts
        rows = [
            ("Subject:", facts.subject, "subject"),
            ("Names:", ", ".join(facts.names) or "(none)", "names"),
        ]
        if not certificate.self_signed:
            rows.append(("Issued by:", facts.issuer, "issuer"))
        rows.append(("Valid:", f"{facts.not_before:%Y-%m-%d} to {facts.not_after:%Y-%m-%d}", "validity"))
        if changed is not None:  # the two thumbprints one above the other, easier to compare than in the sentence
            rows.append(("Trusted SHA-256:", changed.old_sha256, "old_sha256"))
        rows += [
            ("New SHA-256:" if changed else "SHA-256:", certificate.sha256_colons, "sha256"),
            ("SHA-1:", certificate.sha1_colons, "sha1"),
        ]
        ca = certificate.issuing_ca if changed is None and certificate.can_trust_ca else None
        layout.addWidget(self._facts("The server's certificate" if ca is not None else "", rows))
        if ca is not None:
            ca_rows = [
                ("Subject:", ca.facts.subject, "ca_subject"),
                ("Valid:", f"{ca.facts.not_before:%Y-%m-%d} to {ca.facts.not_after:%Y-%m-%d}", "ca_validity"),
                ("SHA-256:", ca.sha256_colons, "ca_sha256"),
                ("SHA-1:", ca.sha1_colons, "ca_sha1"),
            ]
            layout.addWidget(self._facts("The issuing CA (sent by the server)", ca_rows))
        elif changed is None and certificate.ca_missing:
            missing = QLabel(
                f"The server does not send the certificate of the authority that issued its own ({_common_name(facts, issuer=True)}), "
                "so only this server's certificate can be trusted here. To trust that authority instead, ask your administrator "
                "for its certificate and choose it as the profile's Extra CA file."
            )
            missing.setObjectName("ca_missing")
            missing.setWordWrap(True)
            layout.addWidget(missing)
        buttons = QDialogButtonBox()
        self.trust_button: QPushButton = buttons.addButton(NEW_PIN_TEXT if changed else PIN_TEXT, QDialogButtonBox.ButtonRole.AcceptRole)
        self.ca_button: QPushButton | None = None
        if ca is not None:
            self.ca_button = buttons.addButton(CA_TEXT, QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        # Not `accepted`: which trust button it was matters, so each button accepts with its choice.
        self.trust_button.clicked.connect(lambda: self._trust(Choice.PIN))
        if self.ca_button is not None:
            self.ca_button.clicked.connect(lambda: self._trust(Choice.CA))
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(620, self.sizeHint().height())

    def _intro(self, server: str) -> str:
        certificate = self.certificate
        if self.changed is not None:
            return (
                f"{self.changed.sentence()} If your administrator did not tell you the server got a new certificate, someone may "
                "be intercepting the connection: cancel and ask. Trust the new certificate only if its thumbprints below are the "
                "ones your administrator gave you."
            )
        if certificate.self_signed:
            return (
                f"The server {server} presents a self-signed certificate: no authority vouches for it, so SSTP VPN "
                "cannot tell it from an impostor's. Compare the thumbprints below with the ones your administrator "
                "gave you, and trust it only if they match. It is then pinned: a different certificate is refused."
            )
        issuer = _common_name(certificate.facts, issuer=True)
        text = (
            f"The server {server} presents a certificate issued by {issuer}, an authority this computer does not trust, so "
            "SSTP VPN cannot tell it from an impostor's. Compare the thumbprints below with the ones your administrator "
            "gave you, and trust only what matches: this server's certificate alone (it is pinned: a different one is refused)"
        )
        if certificate.can_trust_ca:
            return text + ", or the issuing CA (every certificate it issues for this server's name is accepted for this profile)."
        return text + "."

    def _facts(self, title: str, rows: list[tuple[str, str, str]]) -> QWidget:
        box = QGroupBox(title) if title else QWidget()
        form = QFormLayout(box)
        if not title:
            form.setContentsMargins(0, 0, 0, 0)
        for label, value, name in rows:
            field = QLabel(value)
            field.setObjectName(name)
            field.setWordWrap(True)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if name.endswith(("sha256", "sha1")):
                field.setFont(self.mono)
            form.addRow(label, field)
        return box

    def _trust(self, choice: Choice) -> None:
        self.choice = choice
        self.accept()
