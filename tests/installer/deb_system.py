"""The Debian package database of this machine, as the .deb tests read and change it, and the
helper's systemd state, which the .deb tests need to themselves while the package is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts" / "installer"
PACKAGE = "sstp-vpn"
APT_LOCK_WAIT = ["-o", "DPkg::Lock::Timeout=600"]  # another apt run on this machine is waited for
# Where systemd units and their enablement live, and where deb-systemd-helper records enablement and
# masks: what the package puts there must all go on purge.
SYSTEMD_STATE = (Path("/etc/systemd/system"), Path("/var/lib/systemd/deb-systemd-helper-enabled"), Path("/var/lib/systemd/deb-systemd-helper-masked"))
HELPER_SOCKET_UNIT = "sstp-vpn-helper.socket"


def package_status(package: str = PACKAGE) -> str:
    """dpkg's status word for the package ("installed", "config-files", "not-installed", ...)."""
    result = subprocess.run(["dpkg-query", "-W", "-f", "${db:Status-Status}", package], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else "not-installed"


def apt_get(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["apt-get", *APT_LOCK_WAIT, *args], capture_output=True, text=True, timeout=timeout, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    )


def owned_by_a_package(path: Path) -> bool:
    return subprocess.run(["dpkg-query", "-S", str(path)], capture_output=True).returncode == 0


def systemd_state_of_the_helper() -> list[Path]:
    """Every sstp-vpn* file, link or folder in SYSTEMD_STATE (not those inside a listed folder)."""
    found = sorted(path for folder in SYSTEMD_STATE if folder.exists() for path in folder.rglob("sstp-vpn*") if path.is_symlink() or path.exists())
    return [path for path in found if not any(other in path.parents for other in found)]


def systemd_runs() -> bool:
    return Path("/run/systemd/system").is_dir()


@contextmanager
def helper_systemd_state_set_aside() -> Iterator[list[Path]]:
    """A machine is never pristine: the checkout's quick start (installer/install-deps.sh --user,
    through installer/linux/enable-helper.sh) writes the helper's units into /etc/systemd/system,
    where they would override the package's and outlive its purge. Whatever systemd_state_of_the_helper()
    finds is moved aside (renamed into a folder next to its state folder: same file system, so
    contents, mode, owner, times and link targets stay exactly as they were) for the package's
    install and purge, then put back, replacing anything of the same name the package left; the
    folders it was in are recreated with their mode and owner if the purge removed them. With
    systemd running, systemd reloads afterwards and a socket that was listening listens again.
    Yields what was set aside."""
    found = systemd_state_of_the_helper()
    was_listening = systemd_runs() and (
        subprocess.run(["systemctl", "is-active", "--quiet", HELPER_SOCKET_UNIT], capture_output=True).returncode == 0
    )
    asides: dict[Path, Path] = {}  # state folder -> its aside folder
    moved: list[tuple[Path, Path, list[tuple[Path, os.stat_result]]]] = []  # original, aside, its parents' stat
    try:
        for path in found:
            folder = next(folder for folder in SYSTEMD_STATE if folder in path.parents)
            if folder not in asides:
                asides[folder] = Path(tempfile.mkdtemp(prefix=".sstp-vpn-tests-set-aside-", dir=folder.parent))
            relative = path.relative_to(folder)
            parents = [(folder / part, (folder / part).stat()) for part in reversed(relative.parents)]  # folder itself first
            aside = asides[folder] / relative
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, aside)
            moved.append((path, aside, parents))
        if found and systemd_runs():
            subprocess.run(["systemctl", "daemon-reload"], check=False)
        yield found
    finally:
        for path, aside, parents in moved:
            for parent, stat in parents:
                if not parent.exists():
                    parent.mkdir()
                    os.chown(parent, stat.st_uid, stat.st_gid)
                    os.chmod(parent, stat.st_mode & 0o7777)
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            os.replace(aside, path)  # a file or link left at the same name is replaced
        for aside_folder in asides.values():
            shutil.rmtree(aside_folder)
        if found and systemd_runs():
            subprocess.run(["systemctl", "daemon-reload"], check=False)
            if was_listening:
                subprocess.run(["systemctl", "start", HELPER_SOCKET_UNIT], check=False)
