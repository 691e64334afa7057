"""Asks for the passwords a connection needs when the keyring has none (or there is no keyring)."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from .connection import CredentialsRequest


class PasswordDialog(QDialog):
    def __init__(self, request: CredentialsRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request = request
        profile = request.profile
        self.setWindowTitle(f"Connect to {profile.name}")
        layout = QVBoxLayout(self)
        reason = QLabel(request.reason)
        reason.setWordWrap(True)
        layout.addWidget(reason)
        form = QFormLayout()
        self.password = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.password.setObjectName("password")
        self.proxy_password = QLineEdit(echoMode=QLineEdit.EchoMode.Password)
        self.proxy_password.setObjectName("proxy_password")
        if request.need_password:
            form.addRow(f"Password for {profile.username}:", self.password)
        if request.need_proxy_password:
            form.addRow(f"Proxy password for {profile.proxy.username}:", self.proxy_password)
        layout.addLayout(form)
        self.remember = QCheckBox("Save in the system keyring")
        self.remember.setObjectName("remember")
        self.remember.setChecked(request.can_remember)
        self.remember.setEnabled(request.can_remember)
        layout.addWidget(self.remember)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Try again" if request.retry else "Connect")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
