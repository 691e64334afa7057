"""installer/linux/enable-helper.sh, the step of the checkout quick start (`install-deps.sh --user
USER`) that lets USER run the tray app as themselves: group, membership, systemd units that systemd
accepts, and, where systemd is not running (as here), a helper started at once that USER can use.

It runs in a network namespace of its own, with its socket, units and log in temporary places; the
group and the membership it adds are removed again unless they were there before.
"""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns import Namespace
from tests.realparts import require_program, require_root
from tests.unprivileged import NOBODY, as_nobody

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "installer" / "linux" / "enable-helper.sh"
GROUP = "sstp-vpn"
HELPER = Path(sysconfig.get_path("scripts")) / "sstp-vpn-helper"


def group_members(name: str) -> list[str]:
    try:
        return grp.getgrnam(name).gr_mem
    except KeyError:
        return []


@pytest.fixture
def group_put_back() -> Iterator[None]:
    """Whatever the script adds to /etc/group is taken away again."""
    existed = GROUP in {group.gr_name for group in grp.getgrall()}
    was_member = NOBODY.pw_name in group_members(GROUP)
    yield
    if not existed:
        subprocess.run(["groupdel", GROUP], check=False)
    elif not was_member and NOBODY.pw_name in group_members(GROUP):
        subprocess.run(["gpasswd", "-d", NOBODY.pw_name, GROUP], check=False, capture_output=True)


@pytest.fixture
def places() -> Iterator[dict[str, Path]]:
    folder = Path(tempfile.mkdtemp(prefix="sstp-enable-helper-"))
    folder.chmod(0o755)
    yield {"UNIT_DIR": folder / "units", "HELPER_SOCKET": folder / "run" / "helper.sock", "HELPER_LOG": folder / "helper.log"}
    shutil.rmtree(folder, ignore_errors=True)


def run_script(ns: Namespace, places: dict[str, Path]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HELPER": str(HELPER), **{name: str(path) for name, path in places.items()}}
    return ns.run(str(SCRIPT), NOBODY.pw_name, env=env, capture_output=True, text=True, check=False)


def test_enable_helper_lets_an_ordinary_user_get_a_tunnel(group_put_back, places):
    require_root("groups, a root helper and a network namespace")
    for program in ("groupadd", "usermod", "setsid", "systemd-analyze"):
        require_program(program, "apt-get install passwd util-linux systemd")
    if Path("/run/systemd/system").is_dir():
        pytest.skip(
            "systemd runs here: the script would enable the real socket unit; this test covers the path without systemd (CI machines and containers)"
        )
    assert HELPER.exists(), "install the project first (installer/install-deps.sh)"
    with Namespace("sstpenh") as ns:
        first = run_script(ns, places)
        assert first.returncode == 0, first.stdout + first.stderr
        pid = int((places["HELPER_SOCKET"].parent / "helper.sock.pid").read_text())
        try:
            assert NOBODY.pw_name in group_members(GROUP)
            assert "systemd is not running here, so the helper was started now" in first.stdout
            assert ns.run("ip", "netns", "identify", str(pid)).stdout.strip() == ns.name

            # The units systemd would use: this checkout's helper, a home folder it may read.
            service = (places["UNIT_DIR"] / "sstp-vpn-helper@.service").read_text()
            assert f"ExecStart={HELPER} --group {GROUP}\n" in service
            assert "ProtectHome=read-only\n" in service
            verified = subprocess.run(
                ["systemd-analyze", "verify", "--man=no", "sstp-vpn-helper.socket", "sstp-vpn-helper@.service"],
                cwd=places["UNIT_DIR"],
                capture_output=True,
                text=True,
            )
            assert verified.returncode == 0, verified.stdout + verified.stderr

            # Running it again changes nothing and starts no second helper.
            again = run_script(ns, places)
            assert again.returncode == 0 and "already listens" in again.stdout, again.stdout + again.stderr
            assert int((places["HELPER_SOCKET"].parent / "helper.sock.pid").read_text()) == pid

            # nobody, in the group now (as after a new login or `sg sstp-vpn`), gets a tunnel device.
            probe = (
                "from sstpvpn.platform.helper_client import PrivilegedNetwork, unavailable_sentence\n"
                "assert unavailable_sentence() is None, unavailable_sentence()\n"
                "network = PrivilegedNetwork()\n"
                "tun = network.open_tun('sstp43')\n"
                "print(tun.name)\n"
                "tun.close(); network.close()\n"
            )
            gid = grp.getgrnam(GROUP).gr_gid
            result = ns.run(
                *as_nobody([sys.executable, "-c", probe], gid=gid),
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "SSTP_VPN_HELPER_SOCKET": str(places["HELPER_SOCKET"])},
            )
            assert result.returncode == 0 and result.stdout.strip() == "sstp43", result.stdout + result.stderr
            log = places["HELPER_LOG"].read_text()
            assert f"uid {NOBODY.pw_uid} (pid " in log and "created sstp43" in log, log
        finally:
            os.kill(pid, 15)
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "the helper did not stop on SIGTERM"
