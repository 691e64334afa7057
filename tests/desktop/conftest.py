"""A private desktop for the system-proxy tests: a home, XDG folders and a session bus of the test's
own, so GNOME's settings (dconf) and KDE's kioslaverc are written there and the tester's own
settings are never read or touched."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.realparts import missing, require_program

GSETTINGS_PACKAGES = "apt-get install dbus dconf-service dconf-gsettings-backend dconf-cli libglib2.0-bin gsettings-desktop-schemas"


@dataclass(frozen=True)
class Desktop:
    home: Path
    environ: dict[str, str]  # what the function under test reads the desktop in

    @property
    def dconf_file(self) -> Path:
        return self.home / ".config" / "dconf" / "user"

    @property
    def kioslaverc(self) -> Path:
        return self.home / ".config" / "kioslaverc"

    def gsettings_set(self, *settings: tuple[str, str, str]) -> None:
        """`gsettings set SCHEMA KEY VALUE` for each, on a private session bus (dbus-run-session
        starts dconf-service there, which writes this home's dconf database and ends with the bus)."""
        script = " && ".join(shlex.join(["gsettings", "set", *setting]) for setting in settings)
        result = subprocess.run(
            ["dbus-run-session", "--", "sh", "-c", script],
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert self.dconf_file.is_file(), "gsettings did not write to dconf: is dconf-gsettings-backend installed?"

    def kwriteconfig(self, key: str, value: str) -> None:
        """KDE's own writer (kwriteconfig5) sets [Proxy Settings] KEY in this home's kioslaverc."""
        subprocess.run(
            ["kwriteconfig5", "--file", "kioslaverc", "--group", "Proxy Settings", "--key", key, value],
            env=self.environ,
            capture_output=True,
            timeout=30,
            check=True,
        )


@pytest.fixture
def desktop(tmp_path: Path) -> Desktop:
    home = tmp_path / "home"
    runtime = tmp_path / "runtime"
    (home / ".config").mkdir(parents=True)
    runtime.mkdir(mode=0o700)
    environ = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_RUNTIME_DIR": str(runtime),
        "LANG": "C.UTF-8",
    }
    return Desktop(home, environ)


@pytest.fixture
def gnome_desktop(desktop: Desktop) -> Desktop:
    for program in ("gsettings", "dbus-run-session"):
        require_program(program, GSETTINGS_PACKAGES)
    schemas = subprocess.run(["gsettings", "list-schemas"], env=desktop.environ, capture_output=True, text=True, timeout=30)
    if "org.gnome.system.proxy" not in schemas.stdout.split():
        missing("the GSettings schema org.gnome.system.proxy", GSETTINGS_PACKAGES)
    return desktop
