"""The sandbox of sstp-vpn-helper@.service, as `systemd-analyze security` rates it: the unit the
.deb installs (installer/linux/, copied unchanged by installer/deb_package.py) and the one
enable-helper.sh writes for a checkout (its `--units-only` step). Both must stay at an exposure of
2.0 or less, parse without warnings, and keep CAP_NET_ADMIN as the only capability.

Nothing is installed or started: systemd-analyze reads the unit files offline.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.realparts import missing, require_program

REPO_ROOT = Path(__file__).resolve().parents[2]
LINUX = REPO_ROOT / "installer" / "linux"
SERVICE = "sstp-vpn-helper@.service"
SOCKET = "sstp-vpn-helper.socket"
MOST_EXPOSURE = 2.0
INSTALL_SYSTEMD = "apt-get install systemd (systemd 250 or newer, for --offline)"


def checkout_units(folder: Path) -> Path:
    """What enable-helper.sh writes for this checkout, written into `folder`."""
    helper = Path(sysconfig.get_path("scripts")) / "sstp-vpn-helper"
    # Any executable does for the unit's text; the installed helper when there is one.
    env = {**os.environ, "UNIT_DIR": str(folder), "HELPER": str(helper if helper.exists() else sys.executable)}
    result = subprocess.run([str(LINUX / "enable-helper.sh"), "--units-only"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder / SERVICE


def packaged_units(folder: Path) -> Path:
    """The packaged units, copied into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (SERVICE, SOCKET):
        (folder / name).write_text((LINUX / name).read_text())
    return folder / SERVICE


def exposure(service: Path, cwd: Path) -> tuple[float, str]:
    require_program("systemd-analyze", INSTALL_SYSTEMD)
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(service)], cwd=cwd, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    if "--offline" in result.stderr and ("unrecognized" in result.stderr or "Unknown" in result.stderr):
        missing("systemd-analyze security --offline", INSTALL_SYSTEMD)
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", output)
    assert found, output
    # A misspelt or unknown setting is only a warning to systemd, and the unit would silently lose it.
    assert not re.search(r"Unknown (key|section)|Failed to parse|Invalid|ignoring", result.stderr), result.stderr
    return float(found.group(1)), output


def verify(folder: Path) -> None:
    """systemd-analyze verify: the units load; the service's ExecStart must name a real file."""
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", SOCKET, SERVICE], cwd=folder, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def settings(service: Path, name: str) -> list[str]:
    return [line.split("=", 1)[1] for line in service.read_text().splitlines() if line.startswith(f"{name}=")]


@pytest.mark.parametrize("variant", ["packaged", "checkout"])
def test_the_helper_unit_is_sandboxed(variant, tmp_path):
    folder = tmp_path / "units"
    service = packaged_units(folder) if variant == "packaged" else checkout_units(folder)
    score, report = exposure(service, tmp_path)
    print(f"{variant}: exposure {score}")
    assert score <= MOST_EXPOSURE, report

    assert settings(service, "CapabilityBoundingSet") == ["CAP_NET_ADMIN"]
    assert settings(service, "AmbientCapabilities") == []  # root: the bounding set is what it gets
    assert settings(service, "ReadWritePaths") == ["-/etc/resolv.conf"]
    assert settings(service, "ProtectSystem") == ["strict"]
    # The kill switch: nft talks NETLINK_NETFILTER (AF_NETLINK) and needs CAP_NET_ADMIN, nothing more.
    assert "AF_NETLINK" in settings(service, "RestrictAddressFamilies")[0].split()

    if variant == "packaged":
        # verify wants ExecStart's program to exist: /usr/bin/sstp-vpn-helper is the package's.
        service.write_text(re.sub(r"(?m)^ExecStart=\S+", f"ExecStart={sys.executable}", service.read_text()))
    verify(folder)


def test_the_checkout_unit_differs_only_in_the_program_and_home(tmp_path):
    checkout = checkout_units(tmp_path / "units").read_text().splitlines()
    packaged = (LINUX / SERVICE).read_text().splitlines()
    assert len(checkout) == len(packaged)
    changed = [(ours, theirs) for ours, theirs in zip(packaged, checkout, strict=True) if ours != theirs]
    assert [ours.split("=", 1)[0] for ours, _ in changed] == ["ExecStart", "ProtectHome"], changed
    assert dict(line.split("=", 1) for _, line in changed)["ProtectHome"] == "read-only"
    assert (tmp_path / "units" / SOCKET).read_text() == (LINUX / SOCKET).read_text()
