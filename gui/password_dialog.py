"""Asks for the passwords a connection needs: when the keyring has none (or there is no keyring),
when the profile asks every time, and when the server refused the password (as Windows and
NetworkManager do: enter it again, and choose whether to remember it)."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from sstpvpn.client.core.i18n import _

from .connection import CredentialsRequest
from .password_field import PasswordField


class PasswordDialog(QDialog):
    def __init__(self, request: CredentialsRequest, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request = request
        profile = request.profile
        self.setWindowTitle(_("Connect to {name}").format(name=profile.name))
        self.setMinimumWidth(420)
        layout = QVBoxLayout(self)
        self.reason = QLabel(request.reason)
        self.reason.setObjectName("reason")
        self.reason.setWordWrap(True)
        layout.addWidget(self.reason)
        form = QFormLayout()
        self.password = PasswordField(_("Password for {username}").format(username=profile.username))
        self.password.setObjectName("password")
        self.proxy_password = PasswordField(_("Proxy password for {username}").format(username=profile.proxy.username))
        self.proxy_password.setObjectName("proxy_password")
        if request.need_password:
            form.addRow(_("Password for {username}:").format(username=profile.username), self.password)
        if request.need_proxy_password:
            form.addRow(_("Proxy password for {username}:").format(username=profile.proxy.username), self.proxy_password)
        layout.addLayout(form)
        # A profile that asks every time never keeps its password (the proxy's still can be kept).
        keeps_password = request.need_password and profile.remember_password
        if keeps_password and request.need_proxy_password:
            words = _("Remember these passwords")
        elif request.need_proxy_password:
            words = _("Remember the proxy password")
        else:
            words = _("Remember this password")
        self.remember = QCheckBox(words)
        self.remember.setObjectName("remember")
        self.remember.setToolTip(_("Keep it in the system keyring, so that it is not asked for next time"))
        self.remember.setChecked(request.can_remember and (keeps_password or not request.need_password))
        self.remember.setEnabled(request.can_remember)
        self.remember.setVisible(keeps_password or request.need_proxy_password)
        layout.addWidget(self.remember)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        if request.retry or request.refused:
            # Translators: button of the password dialog after the server refused the password
            self.ok_button.setText(_("Try again"))
        else:
            # Translators: button of the password dialog: connect with the password entered
            self.ok_button.setText(_("Connect"))
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        (self.password if request.need_password else self.proxy_password).setFocus()
