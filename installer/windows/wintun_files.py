"""The official wintun.dll and its license in the Windows bundle, unmodified (platform/wintun/README.md).

Wintun's prebuilt-binaries license allows shipping the signed DLL next to software that uses it
only through wintun.h's API, as SSTP VPN does; the DLL must stay byte for byte as released
(no renaming, patching, re-signing or UPX). It goes where platform/tun_windows.py loads it from:
<bundle>/_internal/sstpvpn/platform/wintun/<arch>/wintun.dll, with LICENSE.txt one folder up.

Sources: the official release zip (checked against its pinned SHA-256 and unpacked by
`build.py windows --wintun-zip`), or files a developer put into platform/wintun/ by hand.
"""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

ZIP_URL = "https://www.wintun.net/builds/wintun-0.14.1.zip"
ZIP_SHA256 = "07c256185d6ee3652e09fa55c0b673e2624b565e02c4b9091c79ca7d2f24ef51"
BUNDLE_FOLDER = "sstpvpn/platform/wintun"  # inside the bundle, next to tun_windows' module file


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
