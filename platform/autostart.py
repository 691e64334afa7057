"""Start the tray app at login, for this user only, each system its own way:

- Linux (and other XDG desktops): `$XDG_CONFIG_HOME/autostart/sstp-vpn-tray.desktop` (default
  `~/.config/autostart`), a Desktop Entry whose Exec line is the installed command, quoted per the
  Desktop Entry Specification. The same name as the package's `/etc/xdg/autostart` file, which it
  overrides for this user: when an administrator has switched that one on, it counts as on, and
  switching off writes a user file with Hidden=true.
- Windows: the value "SSTP VPN" under HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run, a
  quoted command line. (The installer's optional machine-wide HKLM value is separate: this
  setting neither reads nor changes it.)
- macOS: a LaunchAgent, `~/Library/LaunchAgents/org.sstp-vpn.tray.plist` (RunAtLoad).

Windows and macOS are written from their documentation and tested only with recorded registry
calls and files; they have not run on those systems. Every failure raises PlatformError with a
sentence.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.errors import PlatformError

DESKTOP_FILE_NAME = "sstp-vpn-tray.desktop"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "SSTP VPN"
LAUNCH_AGENT_LABEL = "org.sstp-vpn.tray"
TRAY_COMMAND = "sstp-vpn-tray"

# Desktop Entry Specification, "The Exec key": an argument with any of these is quoted.
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


class Autostart(Protocol):
    def is_enabled(self) -> bool: ...

    def enable(self, command: Sequence[str]) -> None: ...

    def disable(self) -> None: ...

    def where(self) -> str:
        """The file or registry value, for sentences."""
        ...


def tray_command() -> list[str]:
    """The installed tray command: the frozen executable itself (PyInstaller bundles), else
    `sstp-vpn-tray` from PATH (absolute), else this Python running the tray module."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    found = shutil.which(TRAY_COMMAND)
    if found:
        return [os.path.abspath(found)]
    return [sys.executable, "-m", "sstpvpn.gui.app"]


# -- Linux / XDG --------------------------------------------------------------------------------


def desktop_exec(command: Sequence[str]) -> str:
    """The Exec value for `command`: an argument with a reserved character is put in double quotes
    with `"`, `` ` ``, `$` and `\\` backslash-escaped, `%` is doubled (field codes), and then the
    whole value gets the string escapes of every Desktop Entry value (`\\` -> `\\\\`)."""
    quoted = []
    for argument in command:
        if any(char in "\n\r\x00" for char in argument):
            raise PlatformError(_("The command {argument!r} cannot be written to a desktop entry (it holds a line break).").format(argument=argument))
        argument = argument.replace("%", "%%")
        if not argument or any(char in _RESERVED for char in argument):
            argument = '"' + "".join("\\" + char if char in '"`$\\' else char for char in argument) + '"'
        quoted.append(argument)
    return " ".join(quoted).replace("\\", "\\\\")


def desktop_entry(command: Sequence[str]) -> str:
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=SSTP VPN\n"
        "Comment=Start the SSTP VPN tray app at login (written by SSTP VPN; switch it off in its tray menu)\n"
        f"Exec={desktop_exec(command)}\n"
        "Icon=sstp-vpn\n"
        "Terminal=false\n"
        "NoDisplay=true\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def xdg_autostart_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    config = environ.get("XDG_CONFIG_HOME", "")
    base = Path(config) if config and os.path.isabs(config) else Path(environ.get("HOME") or Path.home()) / ".config"  # the spec: relative is invalid
    return base / "autostart" / DESKTOP_FILE_NAME


def xdg_system_autostart_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The system-wide autostart files of the same name ($XDG_CONFIG_DIRS, default /etc/xdg), which
    a user's file of that name replaces (the package installs one, off unless an administrator
    switches it on)."""
    environ = os.environ if environ is None else environ
    folders = [folder for folder in (environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":") if os.path.isabs(folder)]
    return [Path(folder) / "autostart" / DESKTOP_FILE_NAME for folder in folders]


def _entry_state(path: Path) -> bool | None:
    """True: the file starts the app; False: it is there but switched off; None: not there."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    lines = {line.strip().replace(" ", "") for line in text.splitlines()}
    return "Hidden=true" not in lines and "X-GNOME-Autostart-enabled=false" not in lines


class XdgAutostart:
    def __init__(self, path: Path | None = None, system_paths: list[Path] | None = None) -> None:
        self.path = path or xdg_autostart_path()
        self.system_paths = xdg_system_autostart_paths() if system_paths is None else system_paths

    def where(self) -> str:
        return str(self.path)

    def _system_enabled(self) -> bool:
        """The first system-wide file decides, as the autostart specification says."""
        return next((state for state in map(_entry_state, self.system_paths) if state is not None), None) is True

    def is_enabled(self) -> bool:
        state = _entry_state(self.path)
        return self._system_enabled() if state is None else state

    def enable(self, command: Sequence[str]) -> None:
        _write_file(self.path, desktop_entry(command).encode("utf-8"))

    def disable(self) -> None:
        """Remove this user's file; when an administrator has switched the system-wide one on, write
        a user file with Hidden=true instead, which switches it off for this user only."""
        try:
            if self._system_enabled():
                _write_file(self.path, b"[Desktop Entry]\nType=Application\nName=SSTP VPN\nHidden=true\n")
            else:
                self.path.unlink(missing_ok=True)
        except OSError as error:
            raise PlatformError(_("{path} cannot be removed ({reason}).").format(path=self.path, reason=error.strerror or error)) from None


# -- macOS --------------------------------------------------------------------------------------


def launch_agent_plist(command: Sequence[str]) -> bytes:
    return plistlib.dumps({"Label": LAUNCH_AGENT_LABEL, "ProgramArguments": list(command), "RunAtLoad": True, "ProcessType": "Interactive"})


class LaunchAgentAutostart:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or Path.home() / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"

    def where(self) -> str:
        return str(self.path)

    def is_enabled(self) -> bool:
        try:
            document = plistlib.loads(self.path.read_bytes())
        except (OSError, plistlib.InvalidFileException, ValueError):
            return False
        return isinstance(document, dict) and document.get("RunAtLoad") is True and not document.get("Disabled", False)

    def enable(self, command: Sequence[str]) -> None:
        _write_file(self.path, launch_agent_plist(command))

    def disable(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as error:
            raise PlatformError(_("{path} cannot be removed ({reason}).").format(path=self.path, reason=error.strerror or error)) from None


# -- Windows ------------------------------------------------------------------------------------


def windows_command_line(command: Sequence[str]) -> str:
    """Each argument quoted as CommandLineToArgvW reads it back (what subprocess.list2cmdline does)."""
    import subprocess

    return subprocess.list2cmdline([str(part) for part in command])


class RunKeyAutostart:
    """HKCU\\...\\Run. `registry` is the winreg module (a recording fake in tests)."""

    def __init__(self, registry: Any = None) -> None:
        if registry is None:
            import importlib

            registry = importlib.import_module("winreg")
        self.registry = registry

    def where(self) -> str:
        return f"HKEY_CURRENT_USER\\{RUN_KEY}\\{RUN_VALUE}"

    def is_enabled(self) -> bool:
        registry = self.registry
        try:
            with registry.OpenKey(registry.HKEY_CURRENT_USER, RUN_KEY, 0, registry.KEY_QUERY_VALUE) as key:
                value, kind = registry.QueryValueEx(key, RUN_VALUE)
        except OSError:
            return False
        return bool(value) and kind in (registry.REG_SZ, registry.REG_EXPAND_SZ)

    def enable(self, command: Sequence[str]) -> None:
        registry = self.registry
        try:
            with registry.CreateKeyEx(registry.HKEY_CURRENT_USER, RUN_KEY, 0, registry.KEY_SET_VALUE) as key:
                registry.SetValueEx(key, RUN_VALUE, 0, registry.REG_SZ, windows_command_line(command))
        except OSError as error:
            raise PlatformError(
                _("The start-at-login value {value} cannot be written ({reason}).").format(value=self.where(), reason=error.strerror or error)
            ) from None

    def disable(self) -> None:
        registry = self.registry
        try:
            with registry.OpenKey(registry.HKEY_CURRENT_USER, RUN_KEY, 0, registry.KEY_SET_VALUE) as key:
                registry.DeleteValue(key, RUN_VALUE)
        except FileNotFoundError:
            return
        except OSError as error:
            raise PlatformError(
                _("The start-at-login value {value} cannot be removed ({reason}).").format(value=self.where(), reason=error.strerror or error)
            ) from None


# -- the one for this system --------------------------------------------------------------------


def for_platform(platform_name: str = sys.platform) -> Autostart:
    if platform_name == "win32":
        return RunKeyAutostart()
    if platform_name == "darwin":
        return LaunchAgentAutostart()
    return XdgAutostart()


def _write_file(path: Path, data: bytes) -> None:
    """Atomically (temporary file, rename), readable by the desktop session that starts it."""
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.chmod(temporary, 0o644)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise PlatformError(_("{path} cannot be written ({reason}).").format(path=path, reason=error.strerror or error)) from None
