"""Wraps the Linux bundle into a .deb: the file tree, the control data and dpkg-deb.

Layout of the package:
    /usr/lib/sstp-vpn/                   the PyInstaller folder (three executables, _internal/)
    /usr/bin/sstp-vpn, sstp-vpn-tray, sstp-vpn-helper    symbolic links into it
    /usr/lib/systemd/system/sstp-vpn-helper.socket, sstp-vpn-helper@.service
    /usr/lib/sysusers.d/sstp-vpn.conf    the group sstp-vpn
    /usr/share/applications/sstp-vpn-tray.desktop
    /usr/share/icons/hicolor/<size>/apps/sstp-vpn.png, scalable/apps/sstp-vpn.svg
    /etc/xdg/autostart/sstp-vpn-tray.desktop   login autostart, off until enabled (a conffile)
    /usr/share/doc/sstp-vpn/copyright
Maintainer scripts: installer/linux/debian/ (group, socket enablement, clean removal and purge).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "sstp-vpn"
INSTALL_DIR = Path("usr/lib/sstp-vpn")
COMMANDS = ("sstp-vpn", "sstp-vpn-tray", "sstp-vpn-helper")
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256)
AUTOSTART = Path("etc/xdg/autostart/sstp-vpn-tray.desktop")
MAINTAINER_SCRIPTS = ("postinst", "prerm", "postrm")
MAINTAINER = "SSTP VPN maintainers <maintainers@sstp-vpn.invalid>"
RECOMMENDS = "nftables"  # the kill switch (kill_switch_linux runs nft); without it the VPN works, the kill switch says what to install
DESCRIPTION = """\
SSTP VPN client with a system-tray app
 An SSTP (MS-SSTP) VPN client with its own userspace SSTP and PPP engine: it
 connects over HTTPS port 443, through NATs, firewalls and web proxies.
 .
 Commands: sstp-vpn (command line), sstp-vpn-tray (tray app) and
 sstp-vpn-helper, the privileged network helper that systemd starts on demand
 for members of the group sstp-vpn. Python, Qt and the other libraries are
 bundled in /usr/lib/sstp-vpn (PyInstaller)."""


@dataclass(frozen=True)
class PackageInfo:
    version: str
    architecture: str
    depends: str


def host_architecture() -> str:
    return subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()


def stage_files(bundle: Path, repo_root: Path, root: Path) -> None:
    """The package's file tree under `root` (the bundle is moved, not copied: it is large)."""
    linux = repo_root / "installer" / "linux"
    (root / INSTALL_DIR).parent.mkdir(parents=True)
    shutil.move(bundle, root / INSTALL_DIR)
    for command in COMMANDS:
        link = root / "usr/bin" / command
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("/") / INSTALL_DIR / command)
    copies = {
        linux / "sstp-vpn-helper.socket": "usr/lib/systemd/system/sstp-vpn-helper.socket",
        linux / "sstp-vpn-helper@.service": "usr/lib/systemd/system/sstp-vpn-helper@.service",
        linux / "sstp-vpn.sysusers": "usr/lib/sysusers.d/sstp-vpn.conf",
        linux / "sstp-vpn-tray.desktop": "usr/share/applications/sstp-vpn-tray.desktop",
        linux / "sstp-vpn-tray-autostart.desktop": str(AUTOSTART),
        linux / "debian" / "copyright": f"usr/share/doc/{PACKAGE}/copyright",
        repo_root / "assets/icons/sstp-vpn-app.svg": "usr/share/icons/hicolor/scalable/apps/sstp-vpn.svg",
    }
    for size in ICON_SIZES:
        icon = f"usr/share/icons/hicolor/{size}x{size}/apps/sstp-vpn.png"
        copies[repo_root / f"assets/icons/sstp-vpn-app-{size}.png"] = icon
    for source, destination in copies.items():
        (root / destination).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, root / destination)


def normalise_modes(root: Path) -> None:
    """0755 for folders and executables, 0644 for the rest, whatever the build's umask was."""
    for folder, _folders, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            path = Path(folder) / name
            if path.is_symlink():
                continue
            executable = path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            os.chmod(path, 0o755 if executable else 0o644)


def installed_size_kib(root: Path) -> int:
    total = 0
    for folder, _folders, files in os.walk(root):
        total += 1  # a folder costs about one block
        for name in files:
            path = Path(folder) / name
            total += 1 if path.is_symlink() else (path.stat().st_size + 1023) // 1024
    return total


def write_control(root: Path, info: PackageInfo, repo_root: Path) -> None:
    debian = root / "DEBIAN"
    debian.mkdir()
    (debian / "control").write_text(
        f"Package: {PACKAGE}\n"
        f"Version: {info.version}\n"
        f"Architecture: {info.architecture}\n"
        f"Maintainer: {MAINTAINER}\n"
        f"Installed-Size: {installed_size_kib(root)}\n"
        f"Depends: {info.depends}\n"
        f"Recommends: {RECOMMENDS}\n"
        "Section: net\n"
        "Priority: optional\n"
        f"Description: {DESCRIPTION}\n"
    )
    (debian / "conffiles").write_text(f"/{AUTOSTART}\n")
    for script in MAINTAINER_SCRIPTS:
        shutil.copyfile(repo_root / "installer/linux/debian" / script, debian / script)
        os.chmod(debian / script, 0o755)
    (debian / "md5sums").write_text("".join(f"{digest}  {name}\n" for name, digest in _md5sums(root)))


def _md5sums(root: Path) -> list[tuple[str, str]]:
    sums = []
    for folder, folders, files in os.walk(root):
        folders[:] = sorted(f for f in folders if not (folder == str(root) and f == "DEBIAN"))
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_symlink() or str(path.relative_to(root)) == str(AUTOSTART):
                continue  # dpkg checks conffiles by their own hashes
            digest = hashlib.md5()
            with open(path, "rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
            sums.append((str(path.relative_to(root)), digest.hexdigest()))
    return sums


def build_deb(bundle: Path, repo_root: Path, info: PackageInfo, stage: Path, output: Path) -> Path:
    """Stage `bundle` and the desktop integration, then dpkg-deb; returns the .deb's path."""
    stage_files(bundle, repo_root, stage)
    normalise_modes(stage)
    write_control(stage, info, repo_root)
    output.mkdir(parents=True, exist_ok=True)
    deb = output / f"{PACKAGE}_{info.version}_{info.architecture}.deb"
    # --root-owner-group: root-owned files without fakeroot. zstd: much faster than xz on a tree
    # this size and smaller than gzip; dpkg reads it since Debian 12 (the oldest the bundle runs on).
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zzstd", "--build", str(stage), str(deb)], check=True, stdout=subprocess.DEVNULL)
    return deb
