"""The .deb built from this checkout, installed on this machine for the tests of one module and
purged again; and the SoftEther test server for that module only.

The package is built once per test session (`python3 installer/build.py deb`, into dist/), or
taken from SSTP_VPN_DEB when a separate CI step has built it already. Measurements (build and
install time, sizes, start times) go to artifacts/installer/deb-measurements.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.installer.deb_system import ARTIFACTS, PACKAGE, REPO_ROOT, apt_get, helper_systemd_state_set_aside, package_status
from tests.realparts import in_ci, require_program, require_root

PREBUILT_ENV = "SSTP_VPN_DEB"
INSTALL_BUILD_TOOLS = "apt-get install binutils python3-venv libpython3.11 (and run installer/install-deps.sh)"


@pytest.fixture(scope="session")
def measurements() -> Iterator[dict[str, object]]:
    """Figures for the README and the report; written out at the end of the session."""
    figures: dict[str, object] = {}
    yield figures
    if figures:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "deb-measurements.json").write_text(json.dumps(figures, indent=2) + "\n")


@pytest.fixture(scope="session")
def built_deb(measurements) -> Path:
    prebuilt = os.environ.get(PREBUILT_ENV)
    if prebuilt:
        return Path(prebuilt).resolve()
    for program in ("dpkg-deb", "objdump", "ldd"):
        require_program(program, INSTALL_BUILD_TOOLS)
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    architecture = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
    deb = REPO_ROOT / "dist" / f"{PACKAGE}_{version}_{architecture}.deb"
    deb.unlink(missing_ok=True)  # a stale package must not pass for a fresh one
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "installer" / "build.py"), "deb", "--output", str(deb.parent)], capture_output=True, text=True, timeout=1800
    )
    measurements["build_seconds"] = round(time.monotonic() - began, 1)
    assert result.returncode == 0, f"installer/build.py deb failed:\n{result.stdout[-5000:]}\n{result.stderr[-5000:]}"
    assert deb.is_file(), result.stdout
    measurements["deb_megabytes"] = round(deb.stat().st_size / 1e6, 1)
    measurements["build_log"] = [line for line in result.stdout.splitlines() if line.startswith("build.py:")]
    return deb


@dataclass(frozen=True)
class InstalledPackage:
    deb: Path
    files: list[str]  # what `dpkg -L` listed right after the install


@pytest.fixture(scope="module")
def installed_deb(built_deb: Path, measurements) -> Iterator[InstalledPackage]:
    """The package installed with `apt-get install ./…deb`; purged afterwards if a test did not.
    What this machine already has of the helper in systemd's folders (the checkout's quick start
    writes its units into /etc/systemd/system) is set aside meanwhile and put back exactly after
    the purge, so the package's tests see only the package's own units."""
    require_root("installing a Debian package")
    require_program("apt-get", "this test needs a Debian-based system")
    if package_status() != "not-installed":
        message = (
            f"the {PACKAGE} package is already on this machine ({package_status()}); this test installs "
            f"and purges it, so remove it first: apt-get remove --purge {PACKAGE}"
        )
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    with helper_systemd_state_set_aside():
        began = time.monotonic()
        result = apt_get("install", "-y", "--no-install-recommends", str(built_deb))
        measurements["install_seconds"] = round(time.monotonic() - began, 1)
        try:
            assert result.returncode == 0, result.stdout + result.stderr
            files = subprocess.run(["dpkg", "-L", PACKAGE], capture_output=True, text=True, check=True).stdout.splitlines()
            yield InstalledPackage(built_deb, files)
        finally:
            if package_status() != "not-installed":
                apt_get("remove", "--purge", "-y", PACKAGE)


@pytest.fixture(scope="module")
def softether_server(tmp_path_factory):
    """The real SoftEther SSTP server (tests/integration), for this module only: it stops before
    tests/integration starts its own (one server at a time: SoftEtherServer waits its turn)."""
    from tests.integration.softether import SoftEtherServer, locate_server_binary, locate_vpncmd

    require_root("network namespaces and the SoftEther server's state directories")
    require_program("ip", "apt-get install iproute2")
    binary = locate_server_binary(REPO_ROOT)
    with SoftEtherServer(binary, locate_vpncmd(binary), tmp_path_factory.mktemp("softether")) as server:
        yield server
