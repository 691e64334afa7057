"""The silent install: files, Start-menu entry, uninstall key; the CLI starts; the bundle is trimmed
and holds no test-only DLL."""

from __future__ import annotations

import subprocess
import time

from tests.windows.wine_env import UNINSTALL_KEY, VERSION, wine_build

# Wine-only stand-ins (installer/windows/wine-shims) for DLLs Wine 8.0 lacks: in the prefix's
# system32 during the build and the tests, never in the bundle.
TEST_ONLY_DLLS = wine_build.shim_names()
# Left out by installer/pyinstaller/qt_trim_windows.py (the tray uses QtCore, QtGui and QtWidgets).
TRIMMED = {"opengl32sw.dll", "qt6pdf.dll", "qt6qml.dll", "qt6quick.dll", "qt6virtualkeyboard.dll", "qt6network.dll", "qpdf.dll"}


def test_silent_install_puts_files_start_menu_entry_and_uninstall_key(installed):
    folder = installed.program_folder
    for name in ("sstp-vpn.exe", "sstp-vpn-tray.exe", "unins000.exe", "_internal/sstpvpn/platform/wintun/amd64/wintun.dll"):
        assert (folder / name).is_file(), name
    assert (folder / "_internal/sstpvpn/platform/wintun/LICENSE.txt").read_text().startswith("Prebuilt Binaries License")
    assert (installed.start_menu_folder / "SSTP VPN.lnk").is_file()
    assert (installed.start_menu_folder / "Uninstall SSTP VPN.lnk").is_file()
    key = installed.registry_key(UNINSTALL_KEY)
    assert key is not None
    assert "SSTP VPN" in key and VERSION in key and "unins000.exe" in key


def test_cli_answers_version(installed):
    started = time.monotonic()
    result = installed.wine.run([installed.cli, "--version"], quiet=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip().endswith(VERSION), result.stdout
    print(f"sstp-vpn.exe --version under Wine: {time.monotonic() - started:.1f} s")


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
