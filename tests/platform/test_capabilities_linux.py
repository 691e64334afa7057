"""platform/capabilities_linux.py: a root process keeps CAP_NET_ADMIN and nothing else.

Each check runs in a child Python process (the parent test process keeps its capabilities), in a
network namespace of its own (`unshare --net`), so the TUN interface it creates never touches the
host's network and disappears with the child.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.realparts import missing, require_program, require_root
from tests.unprivileged import as_nobody

REPO_ROOT = Path(__file__).resolve().parents[2]
NET_ADMIN_ONLY = 1 << 12

CHILD = r"""
import errno, json, os, subprocess, sys, tempfile
from sstpvpn.platform.capabilities_linux import keep_only_net_admin
from sstpvpn.platform.tun_linux import TunDevice

def status(text):
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {name: fields[name].strip() for name in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb", "NoNewPrivs")}

keep_only_net_admin()
report = {"status": status(open("/proc/self/status").read())}

with TunDevice.open("sstpcap0") as tun:  # /dev/net/tun and TUNSETIFF need CAP_NET_ADMIN
    tun.set_mtu(1300)                      # SIOCSIFMTU, too
    report["tun"] = [tun.name, tun.mtu]

with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "file")
    with open(path, "w") as file:          # uid 0 still owns and writes its own files
        file.write("x")
    try:
        os.chown(path, 65534, 65534)       # CAP_CHOWN is gone
        report["chown"] = "allowed"
    except PermissionError as error:
        report["chown"] = errno.errorcode[error.errno]

# What a program the helper starts (resolvectl) gets: CAP_NET_ADMIN at most.
report["exec_status"] = status(subprocess.run(["cat", "/proc/self/status"], capture_output=True, text=True,
                                              check=True).stdout)
print(json.dumps(report))
"""


def run_child(*prefix: str) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-c", CHILD], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def test_only_net_admin_is_left_and_it_still_makes_a_tun():
    require_root("dropping capabilities and creating a TUN device")
    unshare = require_program("unshare", "apt-get install util-linux")
    if not Path("/dev/net/tun").exists():
        missing("/dev/net/tun", "modprobe tun")
    result = run_child(unshare, "--net")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)

    caps = {name: int(value, 16) for name, value in report["status"].items() if name.startswith("Cap")}
    assert caps == {"CapEff": NET_ADMIN_ONLY, "CapPrm": NET_ADMIN_ONLY, "CapBnd": NET_ADMIN_ONLY, "CapInh": 0, "CapAmb": 0}, report["status"]
    assert report["status"]["NoNewPrivs"] == "1"
    assert report["tun"] == ["sstpcap0", 1300]
    assert report["chown"] == "EPERM"

    exec_caps = {name: int(value, 16) for name, value in report["exec_status"].items() if name.startswith("Cap")}
    assert exec_caps == caps, report["exec_status"]
    assert report["exec_status"]["NoNewPrivs"] == "1"


def test_without_privileges_it_says_so():
    require_root("starting a process as nobody")
    probe = (
        "from sstpvpn.platform.capabilities_linux import keep_only_net_admin\n"
        "from sstpvpn.platform.errors import PlatformError\n"
        "try:\n"
        "    keep_only_net_admin()\n"
        "except PlatformError as error:\n"
        "    print(error.sentence)\n"
        "else:\n"
        "    print('no error')\n"
    )
    result = subprocess.run(as_nobody([sys.executable, "-c", probe]), cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    sentence = result.stdout.strip()
    assert sentence.startswith("The network helper could not drop capability 0 from its bounding set"), sentence
    assert "start it as root" in sentence
