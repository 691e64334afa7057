"""Start at login and Connect at start: two entries of the tray menu rather than a settings window,
because the menu is rebuilt each time it opens and so shows the truth (the autostart entry the
system has, the profiles on disk) with one click to change either, and there is nothing else
to set.

- "Start at login" (checkable): writes or removes this user's autostart entry through
  platform.current (an XDG autostart file, the Windows Run value or a macOS LaunchAgent).
- "Connect at start" (a submenu: Nothing, or one profile): the tray connects that profile when it
  starts (client/app_settings.py keeps its id).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu

from sstpvpn.client.app_settings import AppSettings, AppSettingsStore
from sstpvpn.client.core.i18n import _
from sstpvpn.client.profiles import Profile, ProfileFileError, ProfileStore
from sstpvpn.platform import current

from .connection import ConnectionController, Notice, NoticeLevel
from .presentation import menu_label


def start_at_login_words() -> str:
    """The tray menu's checkable "Start at login" entry (also the title of its notices)."""
    # Translators: tray menu entry (checkable): start the tray when the user logs in
    return _("Start at login")


def connect_at_start_words() -> str:
    """The tray menu's "Connect at start" submenu (also the title of its notices)."""
    # Translators: tray submenu: the profile the tray connects when it starts
    return _("Connect at start")


def nothing_words() -> str:
    """The "Connect at start" submenu's entry for connecting no profile."""
    # Translators: entry of the tray's "Connect at start" submenu: connect no profile
    return _("Nothing")


def add_start_entries(menu: QMenu, store: ProfileStore, profiles: tuple[Profile, ...], tell: Callable[[Notice], None]) -> None:
    autostart = current.autostart()
    menu.addSeparator()
    start = menu.addAction(start_at_login_words())
    start.setCheckable(True)
    start.setChecked(autostart.is_enabled())
    start.setToolTip(autostart.where())
    start.toggled.connect(lambda on: set_start_at_login(on, tell))

    settings_store = AppSettingsStore.beside(store)
    chosen = settings_store.load().connect_on_start
    submenu = menu.addMenu(connect_at_start_words())
    group = QActionGroup(submenu)
    group.setExclusive(True)
    known = {profile.id for profile in profiles}
    for profile_id, label in [("", nothing_words()), *((p.id, f"“{menu_label(p.name)}”") for p in profiles)]:
        action = QAction(label, submenu)
        action.setCheckable(True)
        action.setChecked(profile_id == chosen or (not profile_id and chosen not in known))
        action.triggered.connect(lambda _checked=False, pid=profile_id: choose_connect_at_start(settings_store, pid, tell))
        group.addAction(action)
        submenu.addAction(action)


def set_start_at_login(on: bool, tell: Callable[[Notice], None]) -> None:
    autostart = current.autostart()
    try:
        if on:
            autostart.enable(current.tray_command())
        else:
            autostart.disable()
    except current.PlatformError as error:
        tell(Notice(_("Start at login not changed"), str(error), NoticeLevel.WARNING))


def choose_connect_at_start(settings: AppSettingsStore, profile_id: str, tell: Callable[[Notice], None]) -> None:
    try:
        settings.save(AppSettings(connect_on_start=profile_id))
    except ProfileFileError as error:
        tell(Notice(_("Connect at start not changed"), str(error), NoticeLevel.WARNING))


def connect_at_start(store: ProfileStore, controller: ConnectionController) -> Profile | None:
    """When the tray starts: connect the chosen profile, if it still exists. Returns it."""
    profile_id = AppSettingsStore.beside(store).load().connect_on_start
    if not profile_id or controller.active:
        return None
    try:
        profile = store.load().by_id(profile_id)
    except ProfileFileError:
        return None
    if profile is None:
        controller.tell(
            Notice(
                connect_at_start_words(),
                _("The profile chosen for Connect at start no longer exists: choose another in the menu."),
                NoticeLevel.WARNING,
            )
        )
        return None
    controller.connect_profile(profile)
    return profile
