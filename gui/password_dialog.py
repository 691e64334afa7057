"""Asks for the passwords a connection needs: when the keyring has none (or there is no keyring),
when the profile asks every time, and when the server refused the password (as Windows and
NetworkManager do: enter it again, and choose whether to remember it)."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from .connection import CredentialsRequest
from .password_field import PasswordField


class PasswordDialog(QDialog):
    def __init__(self, request: CredentialsRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request = request
        profile = request.profile
        self.setWindowTitle(f"Connect to {profile.name}")
        self.setMinimumWidth(420)
        layout = QVBoxLayout(self)
        self.reason = QLabel(request.reason)
        self.reason.setObjectName("reason")
        self.reason.setWordWrap(True)
        layout.addWidget(self.reason)
        form = QFormLayout()
        self.password = PasswordField(f"Password for {profile.username}")
        self.password.setObjectName("password")
        self.proxy_password = PasswordField(f"Proxy password for {profile.proxy.username}")
        self.proxy_password.setObjectName("proxy_password")
        if request.need_password:
            form.addRow(f"Password for {profile.username}:", self.password)
        if request.need_proxy_password:
            form.addRow(f"Proxy password for {profile.proxy.username}:", self.proxy_password)
        layout.addLayout(form)
        # A profile that asks every time never keeps its password (the proxy's still can be kept).
        keeps_password = request.need_password and profile.remember_password
        if keeps_password and request.need_proxy_password:
            words = "Remember these passwords"
        elif request.need_proxy_password:
            words = "Remember the proxy password"
        else:
            words = "Remember this password"
        self.remember = QCheckBox(words)
        self.remember.setObjectName("remember")
        self.remember.setToolTip("Keep it in the system keyring, so that it is not asked for next time")
        self.remember.setChecked(request.can_remember and (keeps_password or not request.need_password))
        self.remember.setEnabled(request.can_remember)
        self.remember.setVisible(keeps_password or request.need_proxy_password)
        layout.addWidget(self.remember)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Try again" if request.retry or request.refused else "Connect")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        (self.password if request.need_password else self.proxy_password).setFocus()
