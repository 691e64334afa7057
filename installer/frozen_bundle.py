"""Builds the PyInstaller one-folder bundle from a normal install of the project.

PyInstaller cannot follow setuptools' editable install (its import finder is invisible to
PyInstaller's analysis), so the project is installed for real, with the gui extra, into a
temporary venv together with PyInstaller, and PyInstaller runs there. Only the files the wheel
needs are copied to the temporary folder first: pip builds in the source tree, and the
checkout must stay untouched (other work may be running in it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

PYINSTALLER_REQUIREMENT = "pyinstaller>=6.10,<7"
SOURCE_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def project_metadata(repo_root: Path) -> dict:
    with open(repo_root / "pyproject.toml", "rb") as file:
        return tomllib.load(file)


def copy_wheel_sources(repo_root: Path, destination: Path) -> Path:
    """pyproject.toml, the readme and the package folders it maps; nothing else (no tests, no .git)."""
    pyproject = project_metadata(repo_root)
    destination.mkdir(parents=True)
    shutil.copy2(repo_root / "pyproject.toml", destination)
    readme = pyproject["project"].get("readme")
    if isinstance(readme, str):
        shutil.copy2(repo_root / readme, destination)
    for folder in sorted(set(pyproject["tool"]["setuptools"]["package-dir"].values())):
        shutil.copytree(repo_root / folder, destination / folder, ignore=SOURCE_IGNORED)
    return destination


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def install_into_venv(sources: Path, venv: Path) -> Path:
    """A fresh venv with the project (gui extra) and PyInstaller, from the package index."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv_python(venv)
    # Pillow: PyInstaller makes the Windows .ico and the macOS .icns from the PNG icon with it.
    icon_converter = ["pillow"] if sys.platform in ("win32", "darwin") else []
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-input", "--quiet", f"{sources}[gui]", PYINSTALLER_REQUIREMENT, *icon_converter], check=True
    )
    return python


def pyinstaller_arguments(spec: Path, work: Path, path: Callable[[Path], str] = str) -> list[str]:
    """PyInstaller's command-line arguments for `spec`, writing into `work`; `path` turns our paths
    into the ones PyInstaller sees (under Wine: Windows paths)."""
    return ["--noconfirm", "--clean", "--log-level", "WARN", "--distpath", path(work / "dist"), "--workpath", path(work / "pyinstaller"), path(spec)]


def run_pyinstaller(python: Path, spec: Path, work: Path) -> Path:
    """Run PyInstaller on `spec`; returns the dist folder it wrote into.

    It runs with the temporary folder as working directory: the checkout's root must not be on
    the analysis' import path (its platform/ folder is only importable as sstpvpn.platform).
    """
    subprocess.run([str(python), "-m", "PyInstaller", *pyinstaller_arguments(spec, work)], check=True, cwd=work)
    return work / "dist"


def build_bundle(repo_root: Path, spec: Path, work: Path) -> Path:
    """The bundle's dist folder (holding sstp-vpn/ or, on macOS, also the .app)."""
    sources = copy_wheel_sources(repo_root, work / "source")
    python = install_into_venv(sources, work / "venv")
    return run_pyinstaller(python, spec, work)
