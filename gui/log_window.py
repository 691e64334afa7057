"""The log window: what the engine and the app reported (never a secret: the engine's log lines
are built without passwords), with copy, save, and a support bundle (client/support_bundle.py)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import Slot
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import QCheckBox, QFileDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from sstpvpn.client.core.i18n import _
from sstpvpn.client.support_bundle import collect, default_file_name, write_bundle

from .bridge import LogEntry
from .connection import ConnectionController
from .icons import app_icon

MAX_LINES = 5000


def format_entry(entry: LogEntry) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(entry.time))
    return f"{stamp}  {logging.getLevelName(entry.level):<7}  {entry.message}"


class LogWindow(QWidget):
    def __init__(self, controller: ConnectionController) -> None:
        super().__init__()
        self.controller = controller
        # Translators: window title
        self.setWindowTitle(_("SSTP VPN log"))
        self.setWindowIcon(app_icon())
        self.text = QPlainTextEdit(readOnly=True)
        self.text.setObjectName("log")
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setMaximumBlockCount(MAX_LINES)
        # Translators: check box in the log window: also show the DEBUG lines
        self.details = QCheckBox(_("Protocol details"))
        self.details.setObjectName("details")
        self.details.toggled.connect(self.reload)
        # Translators: button in the log window: copies the log to the clipboard
        copy = QPushButton(_("Copy all"))
        copy.setObjectName("copy")
        copy.clicked.connect(self.copy_all)
        # Translators: button in the log window: saves the log to a file
        save = QPushButton(_("Save…"))
        save.setObjectName("save")
        save.clicked.connect(self.choose_file_and_save)
        # Translators: button in the log window: saves a file for a bug report
        bundle = QPushButton(_("Save support bundle…"))
        bundle.setObjectName("bundle")
        bundle.setToolTip(_("Versions, system, profiles, the last attempts and the recent log, for a bug report. No password."))
        bundle.clicked.connect(self.choose_file_and_save_bundle)
        self.saved_note = QLabel()
        self.saved_note.setObjectName("saved_note")
        buttons = QHBoxLayout()
        buttons.addWidget(self.details)
        buttons.addStretch()
        buttons.addWidget(self.saved_note)
        buttons.addWidget(copy)
        buttons.addWidget(save)
        buttons.addWidget(bundle)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addLayout(buttons)
        controller.log.connect(self.append)
        self.resize(760, 420)
        self.reload()

    def _shown(self, entry: LogEntry) -> bool:
        return self.details.isChecked() or entry.level >= logging.INFO

    @Slot()
    def reload(self) -> None:
        self.text.setPlainText("\n".join(format_entry(e) for e in self.controller.log_entries if self._shown(e)))
        self.text.moveCursor(self.text.textCursor().MoveOperation.End)

    @Slot(object)
    def append(self, entry: LogEntry) -> None:
        if self._shown(entry):
            self.text.appendPlainText(format_entry(entry))

    @Slot()
    def copy_all(self) -> None:
        QGuiApplication.clipboard().setText(self.text.toPlainText())
        # Translators: note in the log window after "Copy all"
        self.saved_note.setText(_("Copied."))

    @Slot()
    def choose_file_and_save(self) -> None:
        # Translators: file types in the save dialog; keep the patterns in parentheses as they are
        filters = [_("Log files (*.log *.txt)"), _("All files (*)")]
        # Translators: title of the file dialog that saves the log
        path, _filter = QFileDialog.getSaveFileName(self, _("Save the log"), "sstp-vpn.log", ";;".join(filters))
        if path:
            self.save_to(Path(path))

    def save_to(self, path: Path) -> None:
        try:
            path.write_text(self.text.toPlainText() + "\n", encoding="utf-8")
        except OSError as error:
            self.saved_note.setText(_("Not saved: {reason}.").format(reason=error.strerror))
            return
        self.saved_note.setText(_("Saved to {path}.").format(path=path))

    @Slot()
    def choose_file_and_save_bundle(self) -> None:
        # Translators: file types in the save dialog; keep the patterns in parentheses as they are
        filters = [_("Text files (*.txt)"), _("Zip files (*.zip)")]
        # Translators: title of the file dialog that saves a support bundle
        path, _filter = QFileDialog.getSaveFileName(self, _("Save a support bundle"), default_file_name(), ";;".join(filters))
        if path:
            self.save_bundle_to(Path(path))

    def save_bundle_to(self, path: Path) -> None:
        controller = self.controller
        try:
            write_bundle(path, collect(controller.store, controller.attempt_history, controller.recent_log))
        except OSError as error:
            self.saved_note.setText(_("Not saved: {reason}.").format(reason=error.strerror))
            return
        self.saved_note.setText(_("Support bundle saved to {path}.").format(path=path))
