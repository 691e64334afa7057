"""First contact with a self-signed certificate: show it with its thumbprints and let the user
decide. Nothing is trusted unless "Trust this certificate" is clicked."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from sstpvpn.client.first_contact import PresentedCertificate


class PinDialog(QDialog):
    def __init__(self, server: str, certificate: PresentedCertificate, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.certificate = certificate
        self.setWindowTitle("Unknown server certificate")
        layout = QVBoxLayout(self)
        intro = QLabel(
            f"The server {server} presents a self-signed certificate: no authority vouches for it, so SSTP VPN "
            "cannot tell it from an impostor's. Compare the thumbprints below with the ones your administrator "
            "gave you, and trust it only if they match. It is then pinned: a different certificate is refused."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        facts = certificate.facts
        form = QFormLayout()
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        for label, value, name in (
            ("Subject:", facts.subject, "subject"),
            ("Names:", ", ".join(facts.names) or "(none)", "names"),
            ("Valid:", f"{facts.not_before:%Y-%m-%d} to {facts.not_after:%Y-%m-%d}", "validity"),
            ("SHA-256:", certificate.sha256_colons, "sha256"),
            ("SHA-1:", certificate.sha1_colons, "sha1"),
        ):
            field = QLabel(value)
            field.setObjectName(name)
            field.setWordWrap(True)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            if name in ("sha256", "sha1"):
                field.setFont(mono)
            form.addRow(label, field)
        layout.addLayout(form)
        buttons = QDialogButtonBox()
        self.trust_button = buttons.addButton("Trust this certificate", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(560, self.sizeHint().height())
