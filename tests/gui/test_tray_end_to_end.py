"""The tray app against the real SoftEther server: connect from the tray menu, see the address
in the menu and the status window, disconnect, connect with a left click, quit while connected.

The app runs in the SoftEther fixture's client namespace (its TUN device, routes and DNS live
there), on this session's Xvfb with trayer as the tray host, with its password in gnome-keyring.
It is driven by real clicks (tests/gui/tray_session.py). Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from keyring.backends import SecretService

from sstpvpn.client.core.types import KillSwitchMode
from sstpvpn.client.profiles import Profile, ProfileStore, new_profile_id
from sstpvpn.client.secret_store import SecretKind, SecretStore
from sstpvpn.platform.tunnel_access import root_without_net_admin_sentence
from tests.gui.conftest import REPO_ROOT
from tests.gui.desktop import INSTALL_GUI
from tests.integration.client_process import network_state
from tests.integration.softether import VIRTUAL_HOST
from tests.network_helper import running_helper
from tests.realparts import require_program
from tests.unprivileged import NOBODY, as_nobody

pytestmark = pytest.mark.realparts

PROFILE_NAME = "SoftEther test"


def run_tray_session(
    server, desktop, config_home, screenshots, scenario: str, *wrapper: str, saved_password: str = "", **profile_changes: object
) -> tuple[dict, str, str]:
    """Save the profile (with `profile_changes`) and its password (or `saved_password`, and the right
    one for the session to type in SSTP_VPN_TEST_PASSWORD), run tests/gui/tray_session.py in the
    client namespace."""
    require_program("xdotool", INSTALL_GUI)
    store = ProfileStore(config_home / "sstp-vpn" / "profiles.toml")
    profile = store.save(
        Profile(
            id=new_profile_id(),
            name=PROFILE_NAME,
            host=server.server_name,
            port=server.port,
            username=server.username,
            ca_file=str(server.ca_path),
            **profile_changes,  # type: ignore[arg-type]
        )
    )
    SecretStore(SecretService.Keyring()).set(profile.id, SecretKind.VPN, saved_password or server.password)
    env = {**os.environ, **desktop.env, "XDG_CONFIG_HOME": str(config_home)}
    if saved_password:
        env["SSTP_VPN_TEST_PASSWORD"] = server.password
    app = server.client_ns.popen(
        *wrapper,
        sys.executable,
        "-m",
        "tests.gui.tray_session",
        scenario,
        str(screenshots),
        PROFILE_NAME,
        VIRTUAL_HOST,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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

    assert seen["menu_before"] == [
        "SSTP VPN: not connected",
        "---",
        f"Connect “{PROFILE_NAME}”",
        "---",
        "Status…",
        "Edit profiles…",
        "Log…",
        "---",
        "Start at login",
        "Connect at start",
        "---",
        "Quit",
    ]
    address = seen["address"]
    assert address.startswith("198.18.30.")
    assert seen["icon_state"] == "connected"
    assert seen["tooltip"].startswith(f"SSTP VPN: {PROFILE_NAME}, connected\nAddress {address} · 0:00:")
    assert seen["ping_returncode"] == 0
    menu = seen["menu_connected"]
    assert menu[0] == f"SSTP VPN: {PROFILE_NAME}, connected"
    assert menu[1].startswith(f"Address {address} · 0:00:")
    assert menu[3] == f"Disconnect “{PROFILE_NAME}”"

    status = seen["status_window"]
    assert status["state"] == "Connected" and status["profile"] == PROFILE_NAME
    assert status["address"] == address
    assert status["server"] == f"{server.server_name}:{server.port}"
    assert status["dns"] == VIRTUAL_HOST
    assert status["routing"] == "all traffic through the VPN (full tunnel)"
    assert {"0.0.0.0/1", "128.0.0.0/1"} <= set(status["routes"].split(", "))  # read from the kernel
    assert status["ipv6"] == "blocked: the profile does not use IPv6"  # the full tunnel's ::/1 and 8000::/1 go nowhere
    assert status["kill_switch"] == "off"
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


def test_the_status_window_shows_the_real_kill_switch(softether_server, desktop, tray, keyring_service, tmp_path, screenshots):
    """A profile with the kill switch on while connected: the session puts the real nftables table
    in place (in the client namespace) at "connected" and the status window says it is on; after
    Disconnect the table is gone and the window says off. Screenshot: status-window-kill-switch-real.png."""
    require_program("nft", "apt-get install nftables")
    server = softether_server
    before = network_state(server.client_ns)
    seen, _out, err = run_tray_session(server, desktop, tmp_path / "config", screenshots, "kill-switch", kill_switch=KillSwitchMode.CONNECTED)
    assert seen["status_window"]["kill_switch"] == "on: only the tunnel and the connection to the server pass"
    assert seen["status_window"]["state"] == "Connected"
    assert "sstpvpn" in seen["tables_connected"]  # the real table, while connected
    assert seen["status_after_disconnect"]["kill_switch"] == "off"
    assert "sstpvpn" not in seen["tables_disconnected"]
    assert seen["qt_problems"] == [] and err == ""
    assert network_state(server.client_ns) == before
    assert (screenshots / "status-window-kill-switch-real.png").stat().st_size > 1000


def test_the_status_window_shows_ipv6_through_the_tunnel(softether_server, desktop, tray, keyring_service, tmp_path, screenshots):
    """IPv6 and the kill switch together: radvd behind SoftEther's hub advertises a prefix, the
    status window shows the tunnel's global (SLAAC) and link-local addresses as the kernel has them,
    with the kill switch on. Screenshot: status-window-ipv6-real.png."""
    import ipaddress

    from tests.integration.test_ipv6_softether import PEER, PREFIX, TAP, radvd

    require_program("nft", "apt-get install nftables")
    server = softether_server
    before = network_state(server.client_ns)
    with server.bridge_peer(ipv6=True) as peer:
        peer.run("ip", "addr", "add", f"{PEER}/64", "dev", TAP, "nodad")
        with radvd(peer, tmp_path):
            seen, _out, err = run_tray_session(
                server, desktop, tmp_path / "config", screenshots, "kill-switch-ipv6", kill_switch=KillSwitchMode.CONNECTED, ipv6=True
            )
    ipv6 = seen["status_window"]["ipv6"]
    assert ipv6.startswith("through the tunnel: "), ipv6
    addresses = [ipaddress.IPv6Address(a) for a in ipv6.removeprefix("through the tunnel: ").split(", ")]
    assert addresses[0] in PREFIX and addresses[-1].is_link_local, ipv6  # SLAAC's first, then IPV6CP's link-local
    assert addresses[0].packed[8:] == addresses[-1].packed[8:]  # the same interface identifier
    assert seen["status_window"]["kill_switch"] == "on: only the tunnel and the connection to the server pass"
    assert seen["status_after_disconnect"]["ipv6"] == "—" and seen["status_after_disconnect"]["kill_switch"] == "off"
    assert seen["qt_problems"] == [] and err == ""
    assert network_state(server.client_ns) == before


def test_without_cap_net_admin_the_tray_says_how_to_start_it(softether_server, desktop, tray, keyring_service, tmp_path, screenshots):
    """Root creates the tunnel itself, which needs CAP_NET_ADMIN: started as root without it
    (setpriv drops it), the tray app says so at start and when the tunnel cannot be made."""
    require_program("setpriv", "apt-get install util-linux")
    server = softether_server
    before = network_state(server.client_ns)
    seen, _, err = run_tray_session(server, desktop, tmp_path / "config", screenshots, "unprivileged", "setpriv", "--bounding-set=-net_admin")
    admin = root_without_net_admin_sentence()
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


def test_a_refused_password_is_asked_again_and_connects(softether_server, desktop, tray, keyring_service, tmp_path, screenshots):
    """The keyring holds a wrong password: SoftEther refuses it (MS-CHAPv2), the tray asks for it
    again at once instead of sending the user to the editor; the right one typed there connects and
    is remembered. Screenshot: password-refused-prompt.png."""
    server = softether_server
    before = network_state(server.client_ns)
    config_home = tmp_path / "config"
    seen, out, err = run_tray_session(server, desktop, config_home, screenshots, "refused", saved_password="wrong-" + server.password[:6])
    assert seen["refusal"] == {"state": "disconnected", "failure": "The server refused the user name or password. Check them and try again."}
    assert seen["prompt"] == {
        "title": f"Connect to {PROFILE_NAME}",
        "reason": f"The server refused the password for {server.username} on {PROFILE_NAME}. Enter it again:",
        "remember": ["Remember this password", True, True],
        "ok": "Try again",
        "echo_hidden": True,
        "toggle": "Show password",
    }
    assert seen["typed_matches"] is True
    assert seen["address"].startswith("198.18.30.")
    assert any("refused the user name or password" in line for line in seen["log"])
    assert [notice["title"] for notice in seen["notices"]] == [f"Connected to {PROFILE_NAME}"]  # the prompt, not a failure notice
    assert seen["after_quit"]["engine_thread_alive"] is False
    assert seen["qt_problems"] == [] and err == ""
    (profile,) = ProfileStore(config_home / "sstp-vpn" / "profiles.toml").load().profiles
    assert SecretStore(SecretService.Keyring()).get(profile.id, SecretKind.VPN) == server.password  # "Remember" was ticked
    assert network_state(server.client_ns) == before
    assert (screenshots / "password-refused-prompt.png").stat().st_size > 1000


def test_tray_as_an_ordinary_user_connects_through_the_helper(softether_server, desktop, tray, tmp_path, screenshots):
    """What a person on a desktop does: the tray app runs as themselves (here: nobody, with its own
    session bus and gnome-keyring holding the password), and sstp-vpn-helper, running as root,
    creates the tunnel and sets routes and DNS. The same clicks as the root test above."""
    require_program("xdotool", INSTALL_GUI)
    server = softether_server
    ns = server.client_ns
    before = network_state(ns)
    home = Path(tempfile.mkdtemp(prefix="sstp-user-tray-"))
    # nobody's pings go out through an ICMP socket (no_new_privs ignores ping's file capability).
    ping_groups = ns.run("sysctl", "-n", "net.ipv4.ping_group_range").stdout.split()
    ns.run("sysctl", "-q", "-w", f"net.ipv4.ping_group_range={NOBODY.pw_gid} {NOBODY.pw_gid}")
    try:
        with running_helper(ns, grp.getgrgid(NOBODY.pw_gid).gr_name, tmp_path) as helper:
            store = ProfileStore(home / "config" / "sstp-vpn" / "profiles.toml")
            profile = store.save(
                Profile(
                    id=new_profile_id(),
                    name=PROFILE_NAME,
                    host=server.server_name,
                    port=server.port,
                    username=server.username,
                    ca_file=str(helper.share(server.ca_path)),
                )
            )
            for folder in ("runtime", "artifacts"):
                (home / folder).mkdir(mode=0o700)
            for path in (home, *home.rglob("*")):
                os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
            user_env = [
                f"HOME={home}",
                f"XDG_CONFIG_HOME={home / 'config'}",
                f"XDG_CACHE_HOME={home / 'cache'}",
                f"XDG_STATE_HOME={home / 'state'}",
                f"XDG_RUNTIME_DIR={home / 'runtime'}",
            ]
            command = [
                "env",
                *user_env,
                sys.executable,
                "-m",
                "tests.gui.user_tray_session",
                "connect",
                str(home / "artifacts"),
                PROFILE_NAME,
                VIRTUAL_HOST,
                profile.id,
            ]
            env = {**os.environ, **desktop.env, "SSTP_VPN_HELPER_SOCKET": str(helper.socket)}
            app = ns.popen(
                *as_nobody(command), cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            try:
                out, err = app.communicate(server.password + "\n", timeout=240)
            except subprocess.TimeoutExpired:
                app.kill()
                out, err = app.communicate()
                pytest.fail(f"the tray session did not finish:\n{out}\n{err}")
            assert app.returncode == 0, f"{out}\n{err}"
            deadline = time.monotonic() + 5  # the helper restores as soon as the app's session closes
            while network_state(ns, settle_seconds=0) != before and time.monotonic() < deadline:
                time.sleep(0.1)
            helper_log = helper.log.read_text()
        for shot in (home / "artifacts").glob("*.png"):
            shutil.copyfile(shot, screenshots / f"as-user-{shot.name}")
        saved = [path.read_bytes() for path in home.rglob("*") if path.is_file()]
    finally:
        ns.run("sysctl", "-q", "-w", f"net.ipv4.ping_group_range={' '.join(ping_groups)}")
        shutil.rmtree(home, ignore_errors=True)

    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["euid"] == NOBODY.pw_uid  # the app, its engine and TLS ran as the user
    assert seen["address"].startswith("198.18.30.") and seen["icon_state"] == "connected"
    assert seen["ping_returncode"] == 0
    status = seen["status_window"]
    assert status["state"] == "Connected" and status["address"] == seen["address"]
    assert status["interface"].startswith("sstp") and status["dns"] == VIRTUAL_HOST
    assert {"0.0.0.0/1", "128.0.0.0/1"} <= set(status["routes"].split(", "))
    assert seen["after_disconnect"] == {"state": "disconnected", "failure": None}
    assert seen["reconnected_address"].startswith("198.18.30.")
    assert seen["after_quit"] == {"state": "disconnected", "failure": None, "engine_thread_alive": False}
    assert [notice["title"] for notice in seen["notices"]] == [f"Connected to {PROFILE_NAME}"] * 2
    assert seen["qt_problems"] == [] and err == ""
    # The helper did the privileged part, for the user: two sessions (connect, left-click connect).
    assert helper_log.count(f"uid {NOBODY.pw_uid} (pid ") and helper_log.count(": created sstp") == 2, helper_log
    assert "refused" not in helper_log
    # The password went from stdin into the user's keyring, and into no file the app wrote.
    assert not any(server.password.encode() in content for content in saved)
    assert network_state(ns) == before
    for name in ("tray-menu-connected.png", "status-window.png"):
        assert (screenshots / f"as-user-{name}").stat().st_size > 1000, name
