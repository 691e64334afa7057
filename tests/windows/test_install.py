"""The silent install: files, Start-menu entry, uninstall key, the service SstpVpnHelper as the
registry holds it, no autostart (the task is off by default) and no scheduled task; no executable
asks for elevation; the CLI starts; the bundle is trimmed and holds no test-only DLL. Whether the
service runs and answers on its pipe is test_service.py's matter: these tests do not need it to."""

from __future__ import annotations

import gettext
import re
import struct
import subprocess
import time

import pytest

from tests.windows.wine_env import AUTOSTART_VALUE, REPO_ROOT, RUN_KEY, SERVICE_KEY, UNINSTALL_KEY, VERSION, wine_build

# Wine-only stand-ins (installer/windows/wine-shims) for DLLs Wine 8.0 lacks: in the prefix's
# system32 during the build and the tests, never in the bundle.
TEST_ONLY_DLLS = wine_build.shim_names()
# Left out by installer/pyinstaller/qt_trim_windows.py (the tray uses QtCore, QtGui and QtWidgets).
TRIMMED = {"opengl32sw.dll", "qt6pdf.dll", "qt6qml.dll", "qt6quick.dll", "qt6virtualkeyboard.dll", "qt6network.dll", "qpdf.dll"}
EXECUTABLES = ("sstp-vpn-tray.exe", "sstp-vpn.exe", "sstp-vpn-helper.exe")
SERVICE_WIN32_OWN_PROCESS = 0x10
SERVICE_AUTO_START = 2
SC_ACTION_RESTART = 1


def test_silent_install_puts_files_start_menu_entry_and_uninstall_key(installed):
    folder = installed.program_folder
    for name in (*EXECUTABLES, "unins000.exe", "_internal/sstpvpn/platform/wintun/amd64/wintun.dll"):
        assert (folder / name).is_file(), name
    assert (folder / "_internal/sstpvpn/platform/wintun/LICENSE.txt").read_text().startswith("Prebuilt Binaries License")
    assert (installed.start_menu_folder / "SSTP VPN.lnk").is_file()
    assert (installed.start_menu_folder / "Uninstall SSTP VPN.lnk").is_file()
    key = installed.registry_key(UNINSTALL_KEY)
    assert key is not None
    assert "SSTP VPN" in key and VERSION in key and "unins000.exe" in key


def test_helper_is_an_automatic_localsystem_service_with_a_quoted_path(installed):
    """sc create as the installer runs it, read back from the registry: ImagePath must carry its own
    quotes, or Windows would try C:\\Program.exe first (an unquoted service path with spaces)."""
    service = installed.registry_values(SERVICE_KEY)
    assert service is not None, f"{SERVICE_KEY} is missing: the installer did not create the service"
    assert service["ImagePath"] == f'"{installed.helper}"', service["ImagePath"]
    assert " " in installed.helper  # what makes the quotes matter
    assert service["Start"] == SERVICE_AUTO_START
    assert service["Type"] == SERVICE_WIN32_OWN_PROCESS
    assert service["ObjectName"] == "LocalSystem"
    assert service["DisplayName"] == "SSTP VPN network service"
    assert "Wintun" in str(service.get("Description")), service.get("Description")


def test_service_is_restarted_after_a_crash(installed):
    """sc failure: restart after 5 s, three times, counted afresh after a day (86400 s). The value is
    SERVICE_FAILURE_ACTIONS as the SCM stores it: reset period, two string offsets, the number of
    actions, their offset, then (type, delay) pairs."""
    service = installed.registry_values(SERVICE_KEY)
    assert service is not None
    if "FailureActions" not in service:
        pytest.skip(
            "Wine 8.0 stores no failure actions: its services.exe answers ChangeServiceConfig2W(SERVICE_CONFIG_FAILURE_ACTIONS) "
            "with success and a FIXME, so the installer's `sc failure` cannot be checked here"
        )
    data = service["FailureActions"]
    reset, _reboot_message, _command, count, _actions = struct.unpack_from("<5I", data)
    actions = list(struct.iter_unpack("<2I", data[20 : 20 + 8 * count]))
    assert reset == 86400
    assert actions == [(SC_ACTION_RESTART, 5000)] * 3


def test_no_executable_asks_for_elevation(installed):
    """Each executable's embedded manifest (read from the file) says asInvoker: the tray and the CLI run
    as the user, and the service gets LocalSystem from the SCM, not from a UAC prompt."""
    for name in EXECUTABLES:
        data = (installed.program_folder / name).read_bytes()
        manifests = re.findall(rb"<assembly\b.*?</assembly>", data, re.DOTALL)
        assert manifests, f"{name} has no embedded manifest"
        levels = {level for manifest in manifests for level in re.findall(rb'requestedExecutionLevel\s+level="(\w+)"', manifest)}
        assert levels == {b"asInvoker"}, (name, levels)
        assert b"requireAdministrator" not in data and b"highestAvailable" not in data, name


def test_default_install_adds_no_autostart_and_no_scheduled_task(installed):
    """The "autostart" task is off by default (the silent install takes the defaults): no Run value.
    (test_uninstall.py installs once more with the task.) No scheduled task either way: Wine keeps
    them as files, in windows\\tasks (.job) and windows\\system32\\tasks (XML)."""
    assert AUTOSTART_VALUE not in (installed.registry_values(RUN_KEY) or {})
    windows = installed.drive_c / "windows"
    ours = [path.name for folder in (windows / "tasks", windows / "system32" / "tasks") for path in folder.rglob("*") if "sstp" in path.name.lower()]
    assert ours == []


def test_cli_answers_version(installed):
    started = time.monotonic()
    result = installed.wine.run([installed.cli, "--version"], quiet=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().endswith(VERSION), result.stdout
    print(f"sstp-vpn.exe --version under Wine: {time.monotonic() - started:.1f} s")


def test_the_bundle_speaks_the_users_language(installed):
    """The catalogues and Qt's own translations are in the bundle, and the frozen CLI loads its
    catalogue: `sstp-vpn.exe --help` with LANGUAGE=de (Wine hands the variable to the program)."""
    internal = installed.program_folder / "_internal"
    for language in ("de", "fr"):
        assert (internal / "sstpvpn" / "assets" / "locale" / language / "LC_MESSAGES" / "sstp-vpn.mo").is_file()
        assert next(internal.rglob(f"qtbase_{language}.qm"), None) is not None, f"Qt's {language} translations are not in the bundle"
    with (REPO_ROOT / "assets" / "locale" / "de" / "LC_MESSAGES" / "sstp-vpn.mo").open("rb") as file:
        german = gettext.GNUTranslations(file)
    result = installed.wine.run([installed.cli, "--help"], env={"LANGUAGE": "de"}, quiet=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout
    assert german.gettext("Connect to an SSTP VPN server.") in result.stdout, result.stdout


def test_helper_is_a_console_program(installed):
    """sstp-vpn-helper.exe is built as a console program, so that what it prints (--help, errors)
    shows in a prompt; a windowed PyInstaller program has no sys.stdout and would print nothing."""
    result = installed.wine.run([installed.helper, "--help"], quiet=True, check=False, timeout=120)
    assert result.stdout.strip(), f"sstp-vpn-helper.exe --help printed nothing (exit code {result.returncode})"


def test_bundle_is_trimmed_and_holds_no_test_only_dll(installed):
    names = {path.name.lower() for path in installed.program_folder.rglob("*") if path.is_file()}
    assert not names & TEST_ONLY_DLLS
    assert not names & TRIMMED
    assert {"qt6core.dll", "qt6gui.dll", "qt6widgets.dll", "qwindows.dll", "python311.dll"} <= names
    size = sum(path.stat().st_size for path in installed.program_folder.rglob("*") if path.is_file())
    print(f"installed: {size / 1e6:.0f} MB in {len(names)} files")


def test_the_bundle_imports_what_the_stand_ins_provide(installed):
    """Why installer/windows/wine-shims exists: cryptography >= 43 (hazmat.decrepit, which
    client/core/mschapv2.py imports) links bcryptprimitives.dll!ProcessPrng and PySide6 6.11's
    Qt6Core.dll icuuc.dll!ucnv_open, which Windows 10 has and Wine 8.0 lacks. If a new version stops
    importing them, the stand-ins can go."""
    internal = installed.program_folder / "_internal"
    for library, dll, function in (
        ("cryptography/hazmat/bindings/_rust.pyd", "bcryptprimitives.dll", "ProcessPrng"),
        ("PySide6/Qt6Core.dll", "icuuc.dll", "ucnv_open"),
    ):
        imports = subprocess.run(["objdump", "-p", str(internal / library)], check=True, capture_output=True, text=True).stdout
        assert f"DLL Name: {dll}" in imports and function in imports, library
