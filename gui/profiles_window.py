"""The list of profiles: add, edit, remove (with its passwords), connect."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMessageBox, QPushButton, QVBoxLayout, QWidget

from sstpvpn.client.core.i18n import _
from sstpvpn.client.profiles import Profile, ProfileFileError, ProfileStore
from sstpvpn.client.secret_store import KeyringUnavailable, SecretStore

from .background import run_in_background
from .connection import ConnectionController, Notice, NoticeLevel
from .editor import ProfileEditor
from .icons import app_icon
from .presentation import in_a_sentence, state_text
from .switch_question import ask_to_switch

ITEM_TEXT = Qt.ItemDataRole.UserRole + 1  # the item's text without the session's state


class ProfilesWindow(QWidget):
    def __init__(self, store: ProfileStore, secrets: SecretStore, controller: ConnectionController) -> None:
        super().__init__()
        self.store = store
        self.secrets = secrets
        self.controller = controller
        self.editor: ProfileEditor | None = None
        self.question: QMessageBox | None = None  # "Disconnect A and connect B?", while it is open
        # Translators: window title
        self.setWindowTitle(_("SSTP VPN profiles"))
        self.setWindowIcon(app_icon())
        self.list = QListWidget()
        self.list.setObjectName("profiles")
        self.list.itemDoubleClicked.connect(lambda _item: self.edit_selected())
        self.list.currentRowChanged.connect(lambda _row: self._update_buttons())
        self.error = QLabel(wordWrap=True)
        self.error.setObjectName("error")
        self.error.hide()
        # Translators: button in the profiles window: adds a profile
        self.add_button = QPushButton(_("Add…"))
        self.add_button.setObjectName("add")
        # Translators: button in the profiles window: edits the selected profile
        self.edit_button = QPushButton(_("Edit…"))
        self.edit_button.setObjectName("edit")
        # Translators: button in the profiles window: removes the selected profile
        self.remove_button = QPushButton(_("Remove"))
        self.remove_button.setObjectName("remove")
        # Translators: button in the profiles window: connects the selected profile
        self.connect_button = QPushButton(_("Connect"))
        self.connect_button.setObjectName("connect")
        self.add_button.clicked.connect(self.add)
        self.edit_button.clicked.connect(self.edit_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        self.connect_button.clicked.connect(self.connect_selected)
        buttons = QVBoxLayout()
        for button in (self.add_button, self.edit_button, self.remove_button, self.connect_button):
            buttons.addWidget(button)
        buttons.addStretch()
        from .import_dialog import ImportButton  # Import profiles…: a file, a user name if it has none, a summary

        self.import_button = ImportButton(self, self.store, lambda: self.refresh())
        buttons.addWidget(self.import_button)
        row = QHBoxLayout()
        row.addWidget(self.list)
        row.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.error)
        self.resize(520, 300)
        self.refresh()
        controller.changed.connect(self._show_state)

    def refresh(self, select_id: str | None = None) -> None:
        selected = select_id or self._selected_id()
        self.list.clear()
        try:
            profiles = self.store.load().profiles
            self.error.hide()
        except ProfileFileError as error:
            profiles = ()
            self.error.setText(str(error))
            self.error.show()
        for profile in profiles:
            item = QListWidgetItem(f"{profile.name}  —  {profile.username}@{profile.server}")
            item.setData(Qt.ItemDataRole.UserRole, profile.id)
            item.setData(ITEM_TEXT, item.text())
            self.list.addItem(item)
            if profile.id == selected:
                self.list.setCurrentItem(item)
        if self.list.currentRow() < 0 and self.list.count():
            self.list.setCurrentRow(0)
        self._show_state()

    def _active_id(self) -> str | None:
        """The profile of the session that is connecting, connected or waiting to reconnect."""
        profile = self.controller.profile if self.controller.active else None
        return profile.id if profile else None

    def _show_state(self) -> None:
        """The session's profile says its state in the list; the buttons follow the selection."""
        active_id = self._active_id()
        words = in_a_sentence(state_text(self.controller.status, self.controller.reconnect_in))
        for row in range(self.list.count()):
            item = self.list.item(row)
            text = item.data(ITEM_TEXT)
            item.setText(f"{text}  ·  {words}" if item.data(Qt.ItemDataRole.UserRole) == active_id else text)
        self._update_buttons()

    def _selected_id(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _selected(self) -> Profile | None:
        profile_id = self._selected_id()
        try:
            return self.store.load().by_id(profile_id) if profile_id else None
        except ProfileFileError:
            return None

    def _update_buttons(self) -> None:
        selected = self._selected_id()
        for button in (self.edit_button, self.remove_button, self.connect_button):
            button.setEnabled(selected is not None and not self.controller.shutting_down)
        if selected is not None and selected == self._active_id():
            # Translators: button in the profiles window: disconnects the selected profile's session
            self.connect_button.setText(_("Disconnect"))
        else:
            # Translators: button in the profiles window: connects the selected profile
            self.connect_button.setText(_("Connect"))

    def add(self) -> ProfileEditor:
        return self.open_editor(None)

    def edit_selected(self) -> ProfileEditor | None:
        profile = self._selected()
        return self.open_editor(profile) if profile else None

    def open_editor(self, profile: Profile | None) -> ProfileEditor:
        if self.editor is not None and self.editor.isVisible():
            self.editor.raise_()
            self.editor.activateWindow()
            return self.editor
        self.editor = ProfileEditor(self.store, self.secrets, profile, self)
        self.editor.setWindowFlag(Qt.WindowType.Window)
        self.editor.saved.connect(lambda saved: self.refresh(saved.id))
        self.editor.open()
        return self.editor

    def connect_selected(self) -> None:
        """Connect the selected profile, or disconnect it if it is the session's; switching from
        another session asks first."""
        profile = self._selected()
        if profile is None:
            return
        controller = self.controller
        current = controller.profile if controller.active else None
        if current is None:
            controller.connect_profile(profile)
        elif current.id == profile.id:
            controller.disconnect_session()
        else:
            self._ask_to_switch(current, profile)

    def _ask_to_switch(self, current: Profile, profile: Profile) -> None:
        if self.question is not None:
            self.question.close()

        def closed() -> None:
            self.question = None

        self.question = ask_to_switch(self, self.controller, self.store, current, profile, closed)

    def remove_selected(self, confirm: bool = True) -> None:
        profile = self._selected()
        if profile is None:
            return
        if confirm:
            answer = QMessageBox.question(
                self,
                # Translators: title of the question before a profile is removed
                _("Remove profile"),
                _("Remove the profile {name} and its saved passwords?").format(name=repr(profile.name)),
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self.remove(profile)

    def remove(self, profile: Profile) -> None:
        if self.controller.active and self.controller.profile and self.controller.profile.id == profile.id:
            self.controller.disconnect_session()
        try:
            self.store.remove(profile.id)
        except ProfileFileError as error:
            self.error.setText(str(error))
            self.error.show()
            return
        self.refresh()

        def forgotten(_result: object, error: BaseException | None) -> None:
            if isinstance(error, KeyringUnavailable):
                # Translators: notification title; the keyring's problem follows
                self.controller.tell(Notice(_("Passwords not removed"), error.sentence, NoticeLevel.WARNING))

        run_in_background(lambda: self.secrets.forget_profile(profile.id), forgotten, name="sstp-vpn-keyring")
