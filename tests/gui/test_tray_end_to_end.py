"""The tray app against the real SoftEther server: connect from the tray menu, see the address
in the menu and the status window, disconnect, connect with a left click, quit while connected.

The app runs in the SoftEther fixture's client namespace (its TUN device, routes and DNS live
there), on this session's Xvfb with trayer as the tray host, with its password in gnome-keyring.
It is driven by real clicks (tests/gui/tray_session.py). Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from keyring.backends import SecretService

from sstpvpn.client.profiles import Profile, ProfileStore, new_profile_id
from sstpvpn.client.secret_store import SecretKind, SecretStore
from sstpvpn.gui.privileges import ROOT_WITHOUT_NET_ADMIN_SENTENCE
from tests.gui.conftest import REPO_ROOT
from tests.gui.desktop import INSTALL_GUI
from tests.integration.client_process import network_state
from tests.integration.softether import VIRTUAL_HOST
from tests.realparts import require_program

pytestmark = pytest.mark.realparts

PROFILE_NAME = "SoftEther test"


def run_tray_session(server, desktop, config_home, screenshots, scenario: str, *wrapper: str) -> tuple[dict, str, str]:
    """Save the profile and its password, run tests/gui/tray_session.py in the client namespace."""
    require_program("xdotool", INSTALL_GUI)
    store = ProfileStore(config_home / "sstp-vpn" / "profiles.toml")
    profile = store.save(Profile(id=new_profile_id(), name=PROFILE_NAME, host=server.server_name, port=server.port,
                                 username=server.username, ca_file=str(server.ca_path)))
    SecretStore(SecretService.Keyring()).set(profile.id, SecretKind.VPN, server.password)
    env = {**os.environ, **desktop.env, "XDG_CONFIG_HOME": str(config_home)}
    app = server.client_ns.popen(*wrapper, sys.executable, "-m", "tests.gui.tray_session", scenario, str(screenshots),
                                 PROFILE_NAME, VIRTUAL_HOST, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
    try:
        out, err = app.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        app.kill()
        out, err = app.communicate()
        pytest.fail(f"the tray session did not finish:\n{out}\n{err}")
    assert app.returncode == 0, f"{out}\n{err}"
    assert server.password not in out + err
    assert server.password not in store.path.read_text()
    return json.loads(out.strip().splitlines()[-1]), out, err


def test_tray_menu_connect_status_disconnect_quit(softether_server, desktop, tray, keyring_service, tmp_path, screenshots):
    server = softether_server
    ns = server.client_ns
    before = network_state(ns)
    seen, out, err = run_tray_session(server, desktop, tmp_path / "config", screenshots, "connect")

    assert seen["menu_before"] == ["SSTP VPN: not connected", "---", f"Connect “{PROFILE_NAME}”", "---", "Status…",
                                   "Edit profiles…", "Log…", "---", "Quit"]
    address = seen["address"]
    assert address.startswith("198.18.30.")
    assert seen["icon_state"] == "connected"
    assert seen["tooltip"].startswith(f"SSTP VPN: {PROFILE_NAME}, connected, {address}, 0:00:")
    assert seen["ping_returncode"] == 0
    menu = seen["menu_connected"]
    assert menu[0] == f"{PROFILE_NAME}: Connected"
    assert menu[1].startswith(f"Address {address} · 0:00:")
    assert menu[3] == f"Disconnect “{PROFILE_NAME}”"

    status = seen["status_window"]
    assert status["state"] == "Connected" and status["profile"] == PROFILE_NAME
    assert status["address"] == address
    assert status["server"] == f"{server.server_name}:{server.port}"
    assert status["dns"] == VIRTUAL_HOST
    assert status["routing"] == "all traffic through the VPN (full tunnel)"
    assert {"0.0.0.0/1", "128.0.0.0/1"} <= set(status["routes"].split(", "))  # read from the kernel
    assert status["interface"].startswith("sstp")
    assert status["tls"].startswith("TLSv1.")
    assert status["binding"].startswith("SHA-256 with the ")  # SoftEther offers SHA-256
    assert "KiB" in status["sent"] and "KiB" in status["received"]  # the 1000-byte pings
    assert not status["received"].endswith("(0 B/s)")  # measured while they flow
    assert status["duration"].startswith("0:00:")
    assert seen["graph_samples"] >= 4
    assert any(f"address {address}" in line for line in seen["log"])

    assert seen["after_disconnect"] == {"state": "disconnected", "failure": None}
    assert seen["status_after_disconnect"]["address"] == "—"
    assert seen["reconnected_address"].startswith("198.18.30.")
    assert seen["after_quit"] == {"state": "disconnected", "failure": None, "engine_thread_alive": False}
    assert [notice["title"] for notice in seen["notices"]] == [f"Connected to {PROFILE_NAME}"] * 2
    assert seen["qt_problems"] == []
    assert err == ""

    assert network_state(ns) == before  # routes, addresses and DNS back exactly as they were
    for name in ("tray-menu-disconnected.png", "tray-menu-connected.png", "status-window.png", "log-window.png"):
        assert (screenshots / name).stat().st_size > 1000, name


def test_without_cap_net_admin_the_tray_says_how_to_start_it(softether_server, desktop, tray, keyring_service,
                                                              tmp_path, screenshots):
    """Root creates the tunnel itself, which needs CAP_NET_ADMIN: started as root without it
    (setpriv drops it), the tray app says so at start and when the tunnel cannot be made."""
    require_program("setpriv", "apt-get install util-linux")
    server = softether_server
    before = network_state(server.client_ns)
    seen, _, err = run_tray_session(server, desktop, tmp_path / "config", screenshots, "unprivileged",
                                    "setpriv", "--bounding-set=-net_admin")
    admin = ROOT_WITHOUT_NET_ADMIN_SENTENCE
    tun = "Creating the tunnel interface needs administrator rights: run sstp-vpn as root (or give it CAP_NET_ADMIN)."
    assert seen["notices"] == [
        {"title": "The VPN tunnel cannot be created", "text": admin},
        {"title": f"Could not connect to {PROFILE_NAME}", "text": tun},
    ]
    assert seen["failure"] == {"where": "network", "reason": tun}
    assert seen["icon_state"] == "error"
    assert seen["status_problem"] == tun
    assert seen["after_quit"]["engine_thread_alive"] is False
    assert seen["qt_problems"] == [] and err == ""
    assert network_state(server.client_ns) == before
