"""The tray icon for each connection state, and the application icon, from the PNGs in
sstpvpn.assets (rendered from the SVG sources by assets/render_icons.py)."""

from __future__ import annotations

import enum
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path

from PySide6.QtCore import QSize
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
    """Needs a QGuiApplication. PNGs on disk are read when their size is first drawn (the tray
    draws one or two of the eight), others (in a zip) at once, from as_file's temporary copy."""
    icon = QIcon()
    folder = files("sstpvpn.assets") / "icons"
    for size in SIZES:
        resource = folder / f"{stem}-{size}.png"
        if isinstance(resource, Path):
            if not resource.is_file():
                raise FileNotFoundError(f"the icon {resource} is missing from the installation")
            icon.addFile(str(resource), QSize(size, size))
            continue
        with as_file(resource) as path:
            pixmap = QPixmap(str(path))
        if pixmap.isNull():
            raise FileNotFoundError(f"the icon {path} is missing from the installation or unreadable")
        icon.addPixmap(pixmap)
    return icon
