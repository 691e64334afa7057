"""A password line edit with a show/hide toggle: an eye at its end, hidden (dots) by default.

The toggle is a checkable action inside the field (Qt shows it as a small tool button); its text,
tooltip and the button's accessible name say what a click does ("Show password" / "Hide
password"). The eye is drawn here, in the palette's text colour, so it shows on every desktop
whatever its icon theme."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import QButtonGroup, QHBoxLayout, QLineEdit, QRadioButton, QToolButton, QWidget

from sstpvpn.client.core.i18n import _


def show_words() -> str:
    """What a click on the toggle does while the password is hidden."""
    # Translators: the eye button's text and tooltip at the end of a password field
    return _("Show password")


def hide_words() -> str:
    """What a click on the toggle does while the password is shown."""
    # Translators: the eye button's text and tooltip at the end of a password field
    return _("Hide password")


def eye_icon(color: QColor, crossed: bool, size: int = 32) -> QIcon:
    """An open eye; `crossed`: with a stroke through it (what "hide" looks like)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    pen = QPen(color, size / 14)
    painter.setPen(pen)
    s = float(size)
    outline = QPainterPath(QPointF(0.08 * s, 0.5 * s))
    outline.quadTo(QPointF(0.5 * s, 0.05 * s), QPointF(0.92 * s, 0.5 * s))
    outline.quadTo(QPointF(0.5 * s, 0.95 * s), QPointF(0.08 * s, 0.5 * s))
    painter.drawPath(outline)
    painter.setBrush(color)
    painter.drawEllipse(QRectF(0.38 * s, 0.38 * s, 0.24 * s, 0.24 * s))
    if crossed:
        painter.drawLine(QPointF(0.15 * s, 0.85 * s), QPointF(0.85 * s, 0.15 * s))
    painter.end()
    return QIcon(pixmap)


class PasswordField(QLineEdit):
    """QLineEdit in password mode with `toggle`, a checkable action that shows the text."""

    def __init__(self, accessible_name: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEchoMode(QLineEdit.EchoMode.Password)
        # Translators: accessible name of a password field (what a screen reader says)
        self.setAccessibleName(accessible_name if accessible_name is not None else _("Password"))
        self.toggle = QAction(self)
        self.toggle.setCheckable(True)
        self.toggle.setObjectName("show_password")
        self.toggle.toggled.connect(self._show)
        self.addAction(self.toggle, QLineEdit.ActionPosition.TrailingPosition)
        self._show(False)

    @property
    def toggle_button(self) -> QToolButton:
        """The tool button Qt made for the toggle (what a person clicks)."""
        return next(o for o in self.toggle.associatedObjects() if isinstance(o, QToolButton))

    @property
    def shown(self) -> bool:
        return self.echoMode() is QLineEdit.EchoMode.Normal

    def _show(self, shown: bool) -> None:
        self.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        words = hide_words() if shown else show_words()
        self.toggle.setText(words)
        self.toggle.setToolTip(words)
        self.toggle.setIcon(eye_icon(self.palette().text().color(), crossed=shown))
        for button in self.toggle.associatedObjects():
            if isinstance(button, QToolButton):
                button.setAccessibleName(words)

    def setEnabled(self, enabled: bool) -> None:  # noqa: N802 - Qt's name
        """A disabled field also hides its text again."""
        super().setEnabled(enabled)
        if not enabled:
            self.toggle.setChecked(False)


class PasswordChoice(QWidget):
    """The profile's choice: "Remember the password" (the keyring, the default) or "Ask every time"
    (one-time passwords: asked for at each connection, never kept)."""

    changed = Signal(bool)  # remember

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Translators: profile editor, choice for the password: keep it in the keyring
        self.remember_button = QRadioButton(_("Remember the password"))
        self.remember_button.setObjectName("remember_password")
        self.remember_button.setToolTip(_("Kept in the system keyring and used at each connection"))
        # Translators: profile editor, choice for the password: ask for it at each connection
        self.ask_button = QRadioButton(_("Ask every time"))
        self.ask_button.setObjectName("ask_every_time")
        self.ask_button.setToolTip(_("For one-time passwords: asked for at each connection and never kept (a saved one is removed)"))
        group = QButtonGroup(self)
        group.addButton(self.remember_button)
        group.addButton(self.ask_button)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.remember_button)
        row.addWidget(self.ask_button)
        row.addStretch()
        self.remember_button.setChecked(True)
        self.remember_button.toggled.connect(self.changed.emit)

    @property
    def remember(self) -> bool:
        return self.remember_button.isChecked()

    def set_remember(self, remember: bool) -> None:
        (self.remember_button if remember else self.ask_button).setChecked(True)
