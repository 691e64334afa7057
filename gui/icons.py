"""The tray icon for each connection state, and the application icon, from the PNGs in
sstpvpn.assets (rendered from the SVG sources by assets/render_icons.py)."""

from __future__ import annotations

import enum
from functools import cache
from importlib.resources import as_file, files

from PySide6.QtGui import QIcon, QPixmap

SIZES = (16, 22, 24, 32, 48, 64, 128, 256)


class TrayState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    ERROR = "error"


@cache
def state_icon(state: TrayState) -> QIcon:
    return _icon(f"sstp-vpn-{state.value}")


@cache
def app_icon() -> QIcon:
    return _icon("sstp-vpn-app")


def _icon(stem: str) -> QIcon:
    """Needs a QGuiApplication (pixmaps are read at once)."""
    icon = QIcon()
    folder = files("sstpvpn.assets") / "icons"
    for size in SIZES:
        with as_file(folder / f"{stem}-{size}.png") as path:
            pixmap = QPixmap(str(path))  # read now: as_file may hand out a temporary copy
        if pixmap.isNull():
            raise FileNotFoundError(f"the icon {path} is missing from the installation or unreadable")
        icon.addPixmap(pixmap)
    return icon
