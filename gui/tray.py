"""The tray icon: its state icon and tooltip, notifications, and the menu, which is rebuilt each
time it is about to show so it always tells the truth (the profiles on disk, the live state)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QMessageBox, QSystemTrayIcon

from sstpvpn.client.core.i18n import _
from sstpvpn.client.core.types import State
from sstpvpn.client.profiles import Profile, ProfileFileError, ProfileStore

from .connection import ConnectionController, Notice, NoticeLevel
from .icons import TrayState, state_icon
from .presentation import in_gui_words, menu_label, plain_text, summary_lines, tooltip, tray_state, with_accelerators
from .switch_question import ask_to_switch

NOTICE_MILLISECONDS = 6000


def accelerators_first() -> frozenset[str]:
    """These entries always get their first letter as accelerator (&Status…, &Quit); the others
    choose after them. The texts as rebuild_menu writes them, in the user's language."""
    return frozenset({_status_entry(), _edit_profiles_entry(), _log_entry(), _quit_entry(), _add_profile_entry()})


def _status_entry() -> str:
    # Translators: tray menu entry, opens the status window; no &: the menu chooses its accelerator
    return _("Status…")


def _edit_profiles_entry() -> str:
    # Translators: tray menu entry, opens the profiles window; no &: the menu chooses its accelerator
    return _("Edit profiles…")


def _log_entry() -> str:
    # Translators: tray menu entry, opens the log window; no &: the menu chooses its accelerator
    return _("Log…")


def _quit_entry() -> str:
    # Translators: tray menu entry, quits the tray app (disconnecting first); no &: the menu chooses its accelerator
    return _("Quit")


def _add_profile_entry() -> str:
    # Translators: tray menu entry while there is no profile yet; no &: the menu chooses its accelerator
    return _("Add a profile…")


_NOTICE_ICONS = {
    NoticeLevel.INFO: QSystemTrayIcon.MessageIcon.Information,
    NoticeLevel.WARNING: QSystemTrayIcon.MessageIcon.Warning,
    NoticeLevel.ERROR: QSystemTrayIcon.MessageIcon.Critical,
}


class Tray(QObject):
    def __init__(
        self,
        controller: ConnectionController,
        store: ProfileStore,
        *,
        show_status: Callable[[], object],
        show_log: Callable[[], object],
        show_profiles: Callable[[], object],
        add_profile: Callable[[], None],
        quit: Callable[[], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.store = store
        self._show_status, self._show_log = show_status, show_log
        self._show_profiles, self._add_profile, self._quit = show_profiles, add_profile, quit
        self.icon = QSystemTrayIcon(state_icon(TrayState.DISCONNECTED), self)
        self.menu = QMenu()
        self.menu.aboutToShow.connect(self.rebuild_menu)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self.shown_state = TrayState.DISCONNECTED
        self.question: QMessageBox | None = None  # "Disconnect A and connect B?", while it is open
        controller.changed.connect(self.refresh)
        controller.notice.connect(self.show_notice)
        self.ticker = QTimer(self)  # keeps the tooltip's duration or countdown current, while it shows one
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self.refresh)
        self.refresh()

    # -- icon, tooltip, notifications --------------------------------------------------------

    @Slot()
    def refresh(self) -> None:
        controller = self.controller
        state = tray_state(controller.status, controller.reconnect_in)
        if state is not self.shown_state:
            self.shown_state = state
            self.icon.setIcon(state_icon(state))
        profile = controller.profile
        text = tooltip(
            profile.name if profile else None,
            controller.status,
            time.monotonic(),
            controller.reconnect_in,
            active=controller.active,
            shutting_down=controller.shutting_down,
        )
        if self.icon.toolTip() != text:
            self.icon.setToolTip(text)
        reconnect_in = controller.reconnect_in
        ticking = controller.status.state is State.CONNECTED or (reconnect_in is not None and math.isfinite(reconnect_in))
        if ticking and not self.ticker.isActive():
            self.ticker.start()
        elif not ticking and self.ticker.isActive():
            self.ticker.stop()  # no wake-ups while the tooltip says nothing that changes with time

    def _summary(self, now: float) -> list[str]:
        """The menu's first lines: the words the tooltip starts with."""
        controller = self.controller
        profile = controller.profile
        return summary_lines(
            profile.name if profile else None,
            controller.status,
            now,
            controller.reconnect_in,
            active=controller.active,
            shutting_down=controller.shutting_down,
        )

    @Slot(object)
    def show_notice(self, notice: Notice) -> None:
        self.icon.showMessage(notice.title, in_gui_words(notice.text), _NOTICE_ICONS[notice.level], NOTICE_MILLISECONDS)

    # -- the menu ----------------------------------------------------------------------------

    @Slot()
    def rebuild_menu(self) -> None:
        menu = self.menu
        menu.clear()
        controller = self.controller
        status = controller.status
        active = controller.profile if controller.active else None

        def info(text: str) -> None:
            action = menu.addAction(menu_label(text))
            action.setEnabled(False)

        for line in self._summary(time.monotonic()):  # the tooltip's words
            info(line)
        menu.addSeparator()

        try:
            profiles = self.store.load().profiles
        except ProfileFileError as error:
            profiles = ()
            info(str(error))
        for profile in profiles:
            name = menu_label(profile.name)
            if active is not None and active.id == profile.id:
                if status.state is not State.CONNECTED:
                    # Translators: tray menu entry, stops the connection attempt under way; {name} is the profile's name
                    action = menu.addAction(_("Cancel “{name}”").format(name=name))
                else:
                    # Translators: tray menu entry; {name} is the profile's name
                    action = menu.addAction(_("Disconnect “{name}”").format(name=name))
                action.triggered.connect(controller.disconnect_session)
            else:
                # Translators: tray menu entry; {name} is the profile's name
                action = menu.addAction(_("Connect “{name}”").format(name=name))
                action.triggered.connect(lambda _checked=False, p=profile: self.connect_from_menu(p))
            action.setEnabled(not controller.shutting_down)
        if not profiles:
            menu.addAction(_add_profile_entry()).triggered.connect(self._add_profile)
        menu.addSeparator()
        menu.addAction(_status_entry()).triggered.connect(self._show_status)
        menu.addAction(_edit_profiles_entry()).triggered.connect(self._show_profiles)
        menu.addAction(_log_entry()).triggered.connect(self._show_log)
        from .start_settings import add_start_entries  # Start at login, Connect at start

        add_start_entries(menu, self.store, profiles, self.controller.tell)
        menu.addSeparator()
        menu.addAction(_quit_entry()).triggered.connect(self._quit)
        _give_accelerators(menu, accelerators_first())

    def connect_from_menu(self, profile: Profile) -> None:
        """Connect `profile`; while another profile's session is up, ask first (as the profiles window does)."""
        controller = self.controller
        current = controller.profile if controller.active else None
        if current is None or current.id == profile.id:
            controller.connect_profile(profile)
            return
        if self.question is not None:
            self.question.close()

        def closed() -> None:
            self.question = None

        self.question = ask_to_switch(None, controller, self.store, current, profile, closed)

    def action(self, text: str) -> QAction | None:
        """The menu entry with this text as the user reads it (after the menu was built)."""
        return next((a for a in self.menu.actions() if plain_text(a.text()) == text), None)

    # -- left click --------------------------------------------------------------------------

    @Slot(QSystemTrayIcon.ActivationReason)
    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason is QSystemTrayIcon.ActivationReason.Trigger:
            self.toggle_last_used()

    def toggle_last_used(self) -> None:
        """Disconnect if active; otherwise connect the profile used last (or the only one)."""
        controller = self.controller
        if controller.shutting_down:
            return
        if controller.active:
            controller.disconnect_session()
            return
        try:
            book = self.store.load()
        except ProfileFileError:
            self._show_profiles()
            return
        profile = book.by_id(book.last_used) or (book.profiles[0] if len(book.profiles) == 1 else None)
        if profile is not None:
            controller.connect_profile(profile)
        elif book.profiles:
            self._show_profiles()
        else:
            self._add_profile()


def _give_accelerators(menu: QMenu, first: frozenset[str] = frozenset()) -> None:
    """Alt-less keys for the menu's entries, no two the same in one menu (a submenu has its own)."""
    actions = [action for action in menu.actions() if not action.isSeparator() and action.isEnabled()]
    for action, text in zip(actions, with_accelerators([action.text() for action in actions], first), strict=True):
        action.setText(text)
        submenu = action.menu()
        if isinstance(submenu, QMenu):
            _give_accelerators(submenu)
