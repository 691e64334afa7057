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
from sstpvpn.client.profiles import Profile, ProfileFileError, ProfileStore
from sstpvpn.platform import current

from .connection import ConnectionController, Notice, NoticeLevel
from .presentation import menu_label

START_AT_LOGIN = "Start at login"
CONNECT_AT_START = "Connect at start"
NOTHING = "Nothing"


def add_start_entries(menu: QMenu, store: ProfileStore, profiles: tuple[Profile, ...], tell: Callable[[Notice], None]) -> None:
    autostart = current.autostart()
    menu.addSeparator()
    start = menu.addAction(START_AT_LOGIN)
    start.setCheckable(True)
    start.setChecked(autostart.is_enabled())
    start.setToolTip(autostart.where())
    start.toggled.connect(lambda on: set_start_at_login(on, tell))

    settings_store = AppSettingsStore.beside(store)
    chosen = settings_store.load().connect_on_start
    submenu = menu.addMenu(CONNECT_AT_START)
    group = QActionGroup(submenu)
    group.setExclusive(True)
    known = {profile.id for profile in profiles}
    for profile_id, label in [("", NOTHING), *((p.id, f"“{menu_label(p.name)}”") for p in profiles)]:
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
        tell(Notice("Start at login not changed", str(error), NoticeLevel.WARNING))


def choose_connect_at_start(settings: AppSettingsStore, profile_id: str, tell: Callable[[Notice], None]) -> None:
    try:
        settings.save(AppSettings(connect_on_start=profile_id))
    except ProfileFileError as error:
        tell(Notice("Connect at start not changed", str(error), NoticeLevel.WARNING))


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
            Notice("Connect at start", "The profile chosen for Connect at start no longer exists: choose another in the menu.", NoticeLevel.WARNING)
        )
        return None
    controller.connect_profile(profile)
    return profile
