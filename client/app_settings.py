"""Settings of the app itself (not of a profile), in `settings.toml` beside `profiles.toml`:

    connect_on_start = "3f2a..."   # a profile id the tray connects when it starts; absent: none

Start at login is not kept here: the system's own autostart entry is the truth
(platform/autostart.py). Written atomically like the profiles; an unreadable file reads as the
defaults, because these settings must never keep the tray from starting.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from .core.i18n import _
from .profiles import ProfileFileError, ProfileStore, _write_atomically

SETTINGS_FILE = "settings.toml"


@dataclass(frozen=True)
class AppSettings:
    connect_on_start: str = ""  # a profile id, or ""


class AppSettingsStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def beside(cls, profiles: ProfileStore) -> AppSettingsStore:
        return cls(profiles.path.parent / SETTINGS_FILE)

    def load(self) -> AppSettings:
        try:
            document = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return AppSettings()
        value = document.get("connect_on_start", "")
        return AppSettings(connect_on_start=value if isinstance(value, str) else "")

    def save(self, settings: AppSettings) -> None:
        """Raises ProfileFileError with a sentence."""
        document = {"connect_on_start": settings.connect_on_start} if settings.connect_on_start else {}
        try:
            _write_atomically(self.path, tomli_w.dumps(document).encode("utf-8"))
        except OSError as error:
            raise ProfileFileError(
                _("The settings file {path} cannot be written ({reason}).").format(path=self.path, reason=error.strerror or error)
            ) from None
