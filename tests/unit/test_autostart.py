"""Start at login (platform/autostart.py): the XDG autostart file in a temporary XDG_CONFIG_HOME,
the Exec line quoted per the Desktop Entry Specification; the Windows Run value against a
recording registry; the macOS LaunchAgent plist as a file. Windows and macOS have not run on
those systems: these tests check what would be written."""

from __future__ import annotations

import plistlib
import subprocess
from pathlib import Path

import pytest

from sstpvpn.client.app_settings import AppSettings, AppSettingsStore
from sstpvpn.client.profiles import ProfileStore
from sstpvpn.platform import current
from sstpvpn.platform.autostart import (
    LAUNCH_AGENT_LABEL,
    RUN_KEY,
    RUN_VALUE,
    LaunchAgentAutostart,
    RunKeyAutostart,
    XdgAutostart,
    desktop_exec,
    for_platform,
    xdg_autostart_path,
)
from sstpvpn.platform.errors import PlatformError
from tests.realparts import require_program


def read_desktop_exec(value: str) -> list[str]:
    """The other side of the spec, written from its text: undo the string escapes (\\\\ -> \\),
    then split on spaces outside double quotes, where a backslash before " ` $ or \\ stands for
    that character; then %% -> %."""
    unescaped = value.replace("\\\\", "\\")
    arguments, current_argument, quoted, chars = [], "", False, iter(unescaped)
    started = False
    for char in chars:
        if quoted and char == "\\":
            following = next(chars)
            assert following in '"`$\\', f"a backslash before {following!r} is not allowed in a quoted argument"
            current_argument += following
        elif char == '"':
            quoted, started = not quoted, True
        elif char == " " and not quoted:
            if started:
                arguments.append(current_argument)
            current_argument, started = "", False
        else:
            current_argument, started = current_argument + char, True
    assert not quoted
    if started:
        arguments.append(current_argument)
    return [argument.replace("%%", "%") for argument in arguments]


def test_xdg_path_follows_xdg_config_home(tmp_path):
    assert xdg_autostart_path({"XDG_CONFIG_HOME": str(tmp_path), "HOME": "/nowhere"}) == tmp_path / "autostart" / "sstp-vpn-tray.desktop"
    assert xdg_autostart_path({"HOME": str(tmp_path)}) == tmp_path / ".config" / "autostart" / "sstp-vpn-tray.desktop"
    assert xdg_autostart_path({"XDG_CONFIG_HOME": "relative/path", "HOME": str(tmp_path)}).parent.parent == tmp_path / ".config"


def test_current_autostart_writes_and_removes_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    autostart = current.autostart()
    path = tmp_path / "autostart" / "sstp-vpn-tray.desktop"
    assert autostart.where() == str(path) and not autostart.is_enabled()
    autostart.enable(["/usr/bin/sstp-vpn-tray"])
    assert autostart.is_enabled()
    lines = path.read_text().splitlines()
    assert lines[0] == "[Desktop Entry]" and "Type=Application" in lines and "Exec=/usr/bin/sstp-vpn-tray" in lines
    assert path.stat().st_mode & 0o777 == 0o644
    autostart.disable()
    assert not path.exists() and not autostart.is_enabled()
    autostart.disable()  # nothing there: fine


def test_a_hidden_entry_is_not_enabled(tmp_path):
    path = tmp_path / "sstp-vpn-tray.desktop"
    path.write_text("[Desktop Entry]\nType=Application\nExec=x\nHidden=true\n")
    assert not XdgAutostart(path, system_paths=[]).is_enabled()


def test_the_system_wide_entry_counts_and_is_switched_off_for_this_user_only(tmp_path):
    system = tmp_path / "etc-xdg" / "autostart" / "sstp-vpn-tray.desktop"
    system.parent.mkdir(parents=True)
    system.write_text("[Desktop Entry]\nType=Application\nExec=/usr/bin/sstp-vpn-tray\nHidden=true\n")  # as the package installs it
    user = XdgAutostart(tmp_path / "home" / "autostart" / "sstp-vpn-tray.desktop", system_paths=[system])
    assert not user.is_enabled()
    system.write_text("[Desktop Entry]\nType=Application\nExec=/usr/bin/sstp-vpn-tray\n")  # the administrator switched it on
    assert user.is_enabled()
    user.disable()
    assert "Hidden=true" in user.path.read_text() and not user.is_enabled()
    assert "Hidden=true" not in system.read_text()
    user.enable(["/usr/bin/sstp-vpn-tray"])
    assert user.is_enabled()


def test_system_paths_follow_xdg_config_dirs():
    from sstpvpn.platform.autostart import xdg_system_autostart_paths

    assert xdg_system_autostart_paths({}) == [Path("/etc/xdg/autostart/sstp-vpn-tray.desktop")]
    assert xdg_system_autostart_paths({"XDG_CONFIG_DIRS": "/a:relative:/b"}) == [
        Path("/a/autostart/sstp-vpn-tray.desktop"),
        Path("/b/autostart/sstp-vpn-tray.desktop"),
    ]


@pytest.mark.parametrize(
    "command",
    [
        ["/usr/bin/sstp-vpn-tray"],
        ["/home/al ice/.venv/bin/python3", "-m", "sstpvpn.gui.app"],
        ['/opt/we"ird $dir/`x`/back\\slash/100%/tray'],
        ["/opt/semi;colon/(paren)/tray", "--flag=a b"],
    ],
)
def test_exec_line_quoting_reads_back_as_the_same_arguments(command):
    value = desktop_exec(command)
    assert read_desktop_exec(value) == command
    if " " in command[0]:
        assert value.startswith('"')


def test_exec_line_escapes_exactly_as_the_spec_says():
    # a literal backslash in a quoted argument is four backslashes in the file; % is doubled
    assert desktop_exec(["/a b\\c%"]) == '"/a b\\\\\\\\c%%"'
    assert desktop_exec(['a"b']) == '"a\\\\"b"'
    with pytest.raises(PlatformError, match="line break"):
        desktop_exec(["a\nb"])


def test_desktop_file_validates(tmp_path):
    validator = require_program("desktop-file-validate", "apt-get install desktop-file-utils")  # CI=true: missing fails
    autostart = XdgAutostart(tmp_path / "sstp-vpn-tray.desktop")
    autostart.enable(["/home/al ice/bin/sstp-vpn-tray"])
    result = subprocess.run([validator, str(autostart.path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unwritable_folder_gives_a_sentence(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PlatformError, match="cannot be written"):
        XdgAutostart(blocker / "autostart" / "x.desktop").enable(["/usr/bin/sstp-vpn-tray"])


# -- macOS ----------------------------------------------------------------------------------


def test_launch_agent_plist(tmp_path):
    agent = LaunchAgentAutostart(tmp_path / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist")
    assert not agent.is_enabled()
    agent.enable(["/Applications/SSTP VPN.app/Contents/MacOS/sstp-vpn-tray"])
    document = plistlib.loads(agent.path.read_bytes())
    assert document == {
        "Label": "org.sstp-vpn.tray",
        "ProgramArguments": ["/Applications/SSTP VPN.app/Contents/MacOS/sstp-vpn-tray"],
        "RunAtLoad": True,
        "ProcessType": "Interactive",
    }
    assert agent.is_enabled()
    agent.disable()
    assert not agent.path.exists() and not agent.is_enabled()


# -- Windows --------------------------------------------------------------------------------


class RecordedRegistry:
    """The parts of winreg the Run value needs, recording every call."""

    HKEY_CURRENT_USER = "HKCU"
    KEY_QUERY_VALUE, KEY_SET_VALUE = 1, 2
    REG_SZ, REG_EXPAND_SZ = 1, 2

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.values: dict[str, tuple[str, int]] = {}

    class _Key:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def OpenKey(self, root, path, reserved, access):  # noqa: N802 (winreg's names)
        self.calls.append(("OpenKey", root, path, access))
        return self._Key()

    def CreateKeyEx(self, root, path, reserved, access):  # noqa: N802
        self.calls.append(("CreateKeyEx", root, path, access))
        return self._Key()

    def QueryValueEx(self, key, name):  # noqa: N802
        self.calls.append(("QueryValueEx", name))
        if name not in self.values:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return self.values[name]

    def SetValueEx(self, key, name, reserved, kind, value):  # noqa: N802
        self.calls.append(("SetValueEx", name, kind, value))
        self.values[name] = (value, kind)

    def DeleteValue(self, key, name):  # noqa: N802
        self.calls.append(("DeleteValue", name))
        if name not in self.values:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        del self.values[name]


def test_windows_run_value():
    registry = RecordedRegistry()
    run = RunKeyAutostart(registry)
    assert not run.is_enabled()
    run.enable([r"C:\Program Files\SSTP VPN\sstp-vpn-tray.exe"])
    assert registry.calls[-2:] == [
        ("CreateKeyEx", "HKCU", RUN_KEY, registry.KEY_SET_VALUE),
        ("SetValueEx", RUN_VALUE, registry.REG_SZ, '"C:\\Program Files\\SSTP VPN\\sstp-vpn-tray.exe"'),
    ]
    assert RUN_KEY == r"Software\Microsoft\Windows\CurrentVersion\Run" and RUN_VALUE == "SSTP VPN"
    assert run.is_enabled()
    run.disable()
    assert registry.calls[-1] == ("DeleteValue", RUN_VALUE) and not run.is_enabled()
    run.disable()  # already gone: fine


def test_each_system_gets_its_mechanism():
    assert isinstance(for_platform("linux"), XdgAutostart)
    assert isinstance(for_platform("darwin"), LaunchAgentAutostart)
    assert isinstance(for_platform("freebsd14"), XdgAutostart)


def test_tray_command_is_absolute():
    command = current.tray_command()
    assert Path(command[0]).is_absolute()


# -- connect on start: the app's own setting ---------------------------------------------------


def test_app_settings_round_trip_and_survive_damage(tmp_path):
    profiles = ProfileStore(tmp_path / "sstp-vpn" / "profiles.toml")
    settings = AppSettingsStore.beside(profiles)
    assert settings.path == tmp_path / "sstp-vpn" / "settings.toml"
    assert settings.load() == AppSettings()
    settings.save(AppSettings(connect_on_start="abc123"))
    assert settings.load().connect_on_start == "abc123"
    settings.path.write_text("connect_on_start = [")
    assert settings.load() == AppSettings()
    settings.save(AppSettings())
    assert settings.path.read_text() == ""
