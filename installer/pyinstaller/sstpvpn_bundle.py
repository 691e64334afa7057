"""What every SSTP VPN PyInstaller bundle holds; the Linux, Windows and macOS spec files share it.

One Analysis of all entry scripts, then one executable per command, all in one folder: the
commands share a single copy of Python, Qt and the libraries. PyInstaller runs every script in
an executable's script list in turn, so each executable gets the bootstrap and runtime hooks plus
only its own entry script (`scripts_for`).

Analyse a normal (non-editable) install: PyInstaller cannot follow setuptools' editable-install
finder, and the bundle must hold exactly what a user's install holds (installer/build.py builds
from a temporary venv).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
ICONS = REPO_ROOT / "assets" / "icons"
APP_ICON_PNG = ICONS / "sstp-vpn-app-256.png"  # PyInstaller turns it into .ico/.icns (with Pillow)
BUNDLE_NAME = "sstp-vpn"  # the folder: dist/sstp-vpn/


@dataclass(frozen=True)
class Command:
    name: str  # the executable's file name (without .exe)
    script: Path  # its entry script
    gui: bool  # windowed: no console window on Windows


TRAY = Command("sstp-vpn-tray", HERE / "entry_sstp_vpn_tray.py", gui=True)
CLI = Command("sstp-vpn", HERE / "entry_sstp_vpn.py", gui=False)
HELPER = Command("sstp-vpn-helper", HERE / "entry_sstp_vpn_helper.py", gui=False)  # Linux, macOS; Windows: the service

# Never imported by SSTP VPN, but pulled in by a hook or a module's optional import; left out to
# keep the bundle smaller.
EXCLUDES = [
    "tkinter",
    "PySide6.QtQml",
    "PySide6.QtQuick",
    "PySide6.QtNetwork",
    "PySide6.QtOpenGL",
    "PySide6.QtPdf",
    "PySide6.QtVirtualKeyboard",
]


def project_version() -> str:
    with open(REPO_ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]["version"]


def collected_data() -> list[tuple[str, str]]:
    """The tray icons (package data), the project's metadata, which `--version` reads, the
    Public Suffix List that `publicsuffixlist` opens from its package folder, and dukpy's JavaScript
    runtime files, which every interpreter it starts reads (the PAC evaluator; PyInstaller follows
    imports, not data files)."""
    from PyInstaller.utils.hooks import collect_data_files, copy_metadata

    return (
        collect_data_files("sstpvpn.assets")
        + copy_metadata("sstp-vpn")
        + collect_data_files("publicsuffixlist")
        + collect_data_files("dukpy", includes=["jsruntime/*.js"])
    )


def hidden_imports() -> list[str]:
    """Modules nothing imports in Python, so PyInstaller cannot see them: python-gssapi's Cython
    extensions import each other from C (gssapi.raw.cython_converters, the _enum_extensions), and
    krb5's likewise; without them Kerberos proxy sign-in (client/proxy_auth.py) fails in the bundle.
    Only where they are installed (Linux)."""
    import importlib.util

    from PyInstaller.utils.hooks import collect_submodules

    modules: list[str] = []
    for package in ("gssapi", "krb5"):
        if importlib.util.find_spec(package) is not None:
            modules += collect_submodules(package, filter=lambda name: not name.startswith("gssapi.tests"))
    return modules


def scripts_for(analysis, command: Command, commands: list[Command]) -> list:
    """The analysis' bootstrap and runtime-hook scripts plus `command`'s own entry script."""
    others = {other.script.stem for other in commands if other is not command}
    chosen = [entry for entry in analysis.scripts if entry[0] not in others]
    if command.script.stem not in {entry[0] for entry in chosen}:
        raise SystemExit(f"{command.script.name} is missing from the analysis' scripts")
    return chosen
