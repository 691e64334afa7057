"""Import profiles…: choose a file (our export, a Windows rasphone.pbk or a NetworkManager
.nmconnection), give a user name when the file has none (the Windows phone book never does), then
a summary of what was imported and what was left out (client/profile_transfer.py). Nothing is
overwritten: a taken name gets " (2)". Each step is a window-modal dialog opened with open(), so
the tray keeps running meanwhile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLineEdit, QMessageBox, QPushButton, QWidget

from sstpvpn.client.core.i18n import _
from sstpvpn.client.profile_import import ImportFormatError, ImportResult
from sstpvpn.client.profile_transfer import ImportReport, TransferError, import_profiles, read_import_file
from sstpvpn.client.profiles import ProfileFileError, ProfileStore


def file_filter() -> str:
    """The file dialog's name filters (Qt's format: "Name (patterns);;Name (patterns)")."""
    # Translators: file dialog filters; translate only "Profiles" and "All files", keep the rest as is
    return _("Profiles (*.toml *.pbk *.nmconnection);;All files (*)")


class ImportFlow(QObject):
    def __init__(self, store: ProfileStore, parent: QWidget, done: Callable[[ImportReport], None]) -> None:
        super().__init__(parent)
        self.store, self.parent_window, self.done = store, parent, done
        self.user_dialog: QInputDialog | None = None
        self.summary: QMessageBox | None = None
        self.report: ImportReport | None = None
        self.file_dialog = QFileDialog(parent, _("Import profiles"), "", file_filter())
        self.file_dialog.setObjectName("import-file")
        self.file_dialog.setOption(QFileDialog.Option.DontUseNativeDialog)  # the same dialog everywhere, and testable
        self.file_dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        self.file_dialog.fileSelected.connect(self.read)

    def start(self) -> None:
        self.file_dialog.open()

    def read(self, path: str) -> None:
        try:
            result = read_import_file(Path(path))
        except (TransferError, ImportFormatError) as error:
            self._tell(_("Nothing imported"), str(error), QMessageBox.Icon.Warning)
            return
        if any(not entry.profile.username for entry in result.entries):
            self._ask_user_name(result)
        else:
            self.add(result, "")

    def _ask_user_name(self, result: ImportResult) -> None:
        dialog = QInputDialog(self.parent_window)
        dialog.setObjectName("import-user")
        dialog.setWindowTitle(_("Import profiles"))
        names = ", ".join(entry.profile.name for entry in result.entries if not entry.profile.username)
        dialog.setLabelText(_("The file keeps no user name for {names}.\nUser name (HUB\\user for SoftEther hubs):").format(names=names))
        dialog.setTextEchoMode(QLineEdit.EchoMode.Normal)
        dialog.textValueSelected.connect(lambda name: self.add(result, name))
        dialog.rejected.connect(lambda: self.add(result, ""))
        self.user_dialog = dialog
        dialog.open()

    def add(self, result: ImportResult, user_name: str) -> None:
        try:
            report = import_profiles(self.store, result, user_name)
        except ProfileFileError as error:
            self._tell(_("Nothing imported"), str(error), QMessageBox.Icon.Warning)
            return
        self.report = report
        lines = report.lines()
        if report.skipped and not user_name:
            # Translators: ends "'Office' has no user name in the file: give one …" in place of the command line's hint
            when_importing = " " + _("when importing")
            lines = [line.replace(" (sstp-vpn profiles import FILE --user NAME)", when_importing) for line in lines]
        title = _("Profiles imported") if report.added else _("Nothing imported")
        self._tell(title, "\n".join(lines), QMessageBox.Icon.Information)
        self.done(report)

    def _tell(self, title: str, text: str, icon: QMessageBox.Icon) -> None:
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self.parent_window)
        box.setObjectName("import-summary")
        self.summary = box
        box.open()


class ImportButton(QPushButton):
    """The profiles window's "Import profiles…" button; `flow` is the last import it started."""

    def __init__(self, window: QWidget, store: ProfileStore, refresh: Callable[[], None]) -> None:
        super().__init__(_("Import profiles…"), window)
        self.setObjectName("import")
        self.store, self.window_, self.refresh = store, window, refresh
        self.flow: ImportFlow | None = None
        self.clicked.connect(self.start)

    def start(self) -> ImportFlow:
        self.flow = ImportFlow(self.store, self.window_, lambda _report: self.refresh())
        self.flow.start()
        return self.flow
