"""First contact with a certificate nobody here trusts (self-signed, or from a private CA), or a
pinned server's certificate that changed: show it with its thumbprints and let the user decide.
Nothing is trusted unless a trust button is clicked; `choice` then says which."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from sstpvpn.client.core.i18n import _
from sstpvpn.client.first_contact import ChangedCertificate, Choice, PresentedCertificate
from sstpvpn.client.trust import CertificateFacts


def pin_text() -> str:
    """The button that pins the server's certificate."""
    # Translators: button of the certificate dialog
    return _("Trust this server's certificate")


def ca_text() -> str:
    """The button that trusts the CA that issued the server's certificate."""
    # Translators: button of the certificate dialog; CA = certificate authority
    return _("Trust the issuing CA")


def new_pin_text() -> str:
    """The button that pins a pinned server's new certificate."""
    # Translators: button of the certificate dialog when the server's certificate changed
    return _("Trust the new certificate")


def _common_name(facts: CertificateFacts, issuer: bool = False) -> str:
    """The CN of the subject (or issuer), else the whole name."""
    name = facts.issuer if issuer else facts.subject
    for part in name.split(","):
        if part.startswith("CN="):
            return part[3:]
    return name


def _validity(facts: CertificateFacts) -> str:
    """The dates a certificate is valid between, as "2025-01-01 to 2026-01-01"."""
    # Translators: certificate dialog, the value of "Valid:"; {start} and {end} are dates
    return _("{start} to {end}").format(start=f"{facts.not_before:%Y-%m-%d}", end=f"{facts.not_after:%Y-%m-%d}")


class PinDialog(QDialog):
    def __init__(
        self, server: str, certificate: PresentedCertificate, parent: QWidget | None = None, changed: ChangedCertificate | None = None
    ) -> None:
        super().__init__(parent)
        self.certificate = certificate
        self.changed = changed
        self.choice: Choice | None = None  # what was trusted, once accepted
        if changed:
            self.setWindowTitle(_("Server certificate changed"))
        else:
            self.setWindowTitle(_("Unknown server certificate"))
        self.mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        layout = QVBoxLayout(self)
        intro = QLabel(self._intro(server))
        intro.setObjectName("intro")
        intro.setWordWrap(True)
        intro.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(intro)
        facts = certificate.facts
        # Translators: certificate dialog, form-row label: the certificate's subject (its distinguished name)
        subject_label = _("Subject:")
        # Translators: certificate dialog, form-row label: the dates between which a certificate is valid
        valid_label = _("Valid:")
        sha256_label = "SHA-256:"  # not translated: the hash algorithm's name
        sha1_label = "SHA-1:"  # not translated: the hash algorithm's name
        # Translators: certificate dialog, the value of "Names:" when the certificate names no host
        no_names = _("(none)")
        rows = [
            (subject_label, facts.subject, "subject"),
            # Translators: certificate dialog, form-row label: the host names the certificate is for
            (_("Names:"), ", ".join(facts.names) or no_names, "names"),
        ]
        if not certificate.self_signed:
            # Translators: certificate dialog, form-row label: the authority that issued the certificate
            rows.append((_("Issued by:"), facts.issuer, "issuer"))
        rows.append((valid_label, _validity(facts), "validity"))
        if changed is not None:  # the two thumbprints one above the other, easier to compare than in the sentence
            # Translators: certificate dialog, form-row label: the thumbprint of the certificate trusted until now
            rows.append((_("Trusted SHA-256:"), changed.old_sha256, "old_sha256"))
        rows += [
            # Translators: certificate dialog, form-row label: the thumbprint of the certificate the server now presents
            (_("New SHA-256:") if changed else sha256_label, certificate.sha256_colons, "sha256"),
            (sha1_label, certificate.sha1_colons, "sha1"),
        ]
        ca = certificate.issuing_ca if changed is None and certificate.can_trust_ca else None
        # Translators: certificate dialog, title of the group showing the server's own certificate
        layout.addWidget(self._facts(_("The server's certificate") if ca is not None else "", rows))
        if ca is not None:
            ca_rows = [
                (subject_label, ca.facts.subject, "ca_subject"),
                (valid_label, _validity(ca.facts), "ca_validity"),
                (sha256_label, ca.sha256_colons, "ca_sha256"),
                (sha1_label, ca.sha1_colons, "ca_sha1"),
            ]
            # Translators: certificate dialog, title of the group showing the CA's certificate
            layout.addWidget(self._facts(_("The issuing CA (sent by the server)"), ca_rows))
        elif changed is None and certificate.ca_missing:
            missing = QLabel(
                _(
                    "The server does not send the certificate of the authority that issued its own ({issuer}), "
                    "so only this server's certificate can be trusted here. To trust that authority instead, ask your "
                    "administrator for its certificate and choose it as the profile's Extra CA file."
                ).format(issuer=_common_name(facts, issuer=True))
            )
            missing.setObjectName("ca_missing")
            missing.setWordWrap(True)
            layout.addWidget(missing)
        buttons = QDialogButtonBox()
        self.trust_button: QPushButton = buttons.addButton(new_pin_text() if changed else pin_text(), QDialogButtonBox.ButtonRole.AcceptRole)
        self.ca_button: QPushButton | None = None
        if ca is not None:
            self.ca_button = buttons.addButton(ca_text(), QDialogButtonBox.ButtonRole.AcceptRole)
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
            # Translators: {change} is a sentence saying how the server's certificate changed
            return _(
                "{change} If your administrator did not tell you the server got a new certificate, someone may "
                "be intercepting the connection: cancel and ask. Trust the new certificate only if its thumbprints below are the "
                "ones your administrator gave you."
            ).format(change=self.changed.sentence())
        if certificate.self_signed:
            return _(
                "The server {server} presents a self-signed certificate: no authority vouches for it, so SSTP VPN "
                "cannot tell it from an impostor's. Compare the thumbprints below with the ones your administrator "
                "gave you, and trust it only if they match. It is then pinned: a different certificate is refused."
            ).format(server=server)
        issuer = _common_name(certificate.facts, issuer=True)
        if certificate.can_trust_ca:
            return _(
                "The server {server} presents a certificate issued by {issuer}, an authority this computer does not trust, so "
                "SSTP VPN cannot tell it from an impostor's. Compare the thumbprints below with the ones your administrator "
                "gave you, and trust only what matches: this server's certificate alone (it is pinned: a different one is refused), "
                "or the issuing CA (every certificate it issues for this server's name is accepted for this profile)."
            ).format(server=server, issuer=issuer)
        return _(
            "The server {server} presents a certificate issued by {issuer}, an authority this computer does not trust, so "
            "SSTP VPN cannot tell it from an impostor's. Compare the thumbprints below with the ones your administrator "
            "gave you, and trust only what matches: this server's certificate alone (it is pinned: a different one is refused)."
        ).format(server=server, issuer=issuer)

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
