"""The Debian package database of this machine, as the .deb tests read and change it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "artifacts" / "installer"
PACKAGE = "sstp-vpn"
APT_LOCK_WAIT = ["-o", "DPkg::Lock::Timeout=600"]  # another apt run on this machine is waited for


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
