"""A German session (LANGUAGE=de): the tray app, started as sstp-vpn-tray starts, shows German in
its menu, in a failed attempt's sentence (menu header, tooltip, status window), in Qt's own
buttons, in the profiles window and in the editor. Driven by real clicks on Xvfb with trayer as the
tray host (tests/gui/tray_session.py); screenshots german-*.png in artifacts/screenshots/.

The profile's server is a loopback port that refuses connections, so the failure comes from the
real transport, not from a script.
"""

from __future__ import annotations

import gettext
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from keyring.backends import SecretService

from sstpvpn.client.profiles import Profile, ProfileStore, new_profile_id
from sstpvpn.client.secret_store import SecretKind, SecretStore
from tests.gui.conftest import REPO_ROOT
from tests.gui.desktop import INSTALL_GUI
from tests.realparts import require_program

pytestmark = pytest.mark.realparts

PROFILE_NAME = "Büro"
GERMAN = gettext.GNUTranslations((REPO_ROOT / "assets/locale/de/LC_MESSAGES/sstp-vpn.mo").open("rb"))


def german(message: str) -> str:
    assert message in GERMAN._catalog, f"the German catalogue has no {message!r}"  # type: ignore[attr-defined]
    return GERMAN.gettext(message)


def pattern_of(message: str) -> re.Pattern[str]:
    """The German sentence for `message` with any text in its placeholders."""
    parts = re.split(r"\{[a-z_]+(?::[^}]*)?\}", german(message))
    return re.compile(".+?".join(re.escape(part) for part in parts), re.DOTALL)


def refusing_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_german_session_speaks_german(desktop, tray, keyring_service, tmp_path: Path, screenshots: Path) -> None:
    require_program("xdotool", INSTALL_GUI)
    config_home = tmp_path / "config"
    store = ProfileStore(config_home / "sstp-vpn" / "profiles.toml")
    profile = store.save(Profile(id=new_profile_id(), name=PROFILE_NAME, host="127.0.0.1", port=refusing_port(), username="alice"))
    SecretStore(SecretService.Keyring()).set(profile.id, SecretKind.VPN, "not-used")
    env = {**os.environ, **desktop.env, "XDG_CONFIG_HOME": str(config_home), "LANGUAGE": "de"}
    session = subprocess.run(
        [sys.executable, "-m", "tests.gui.tray_session", "language", str(screenshots), PROFILE_NAME, "-"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert session.returncode == 0, session.stderr[-3000:]
    seen = json.loads(session.stdout.strip().splitlines()[-1])
    assert seen["language"] == "de"
    assert seen["qt_problems"] == []

    # The menu, before and after the attempt: German entries, no English one.
    connect = german("Connect “{name}”").format(name=PROFILE_NAME)
    for entry in (connect, german("Status…"), german("Edit profiles…"), german("Log…"), german("Quit")):
        assert entry in seen["menu_before"]
    assert "Quit" not in seen["menu_before"] and "Edit profiles…" not in seen["menu_before"]
    assert pattern_of("{app_name}: not connected").fullmatch(seen["menu_before"][0])

    # The failure: the transport's sentence, the menu header and the tooltip, all in German.
    refused = pattern_of("The server {server} refused the connection: check the port and that the SSTP server is running.")
    assert refused.fullmatch(seen["failure"]), seen["failure"]
    assert pattern_of("Last attempt: {reason}").fullmatch(seen["menu_after"][1]), seen["menu_after"]
    assert seen["failure"] in seen["tooltip"]

    # The status window (Qt's mnemonic & included), the profiles window and the editor.
    status = seen["status_window"]
    assert status["buttons"] == [german("&Disconnect"), german("&Close")]
    assert refused.fullmatch(status["problem"])
    assert seen["profiles_window"]["title"] == german("SSTP VPN profiles")
    assert seen["profiles_window"]["buttons"] == [german("Add…"), german("Edit…"), german("Remove"), german("Connect")]
    assert german("Server:") in seen["editor"]["labels"] and german("User name:") in seen["editor"]["labels"]
    assert "Server:" not in seen["editor"]["labels"] or german("Server:") == "Server:"
    assert "User name:" not in seen["editor"]["labels"]
    for name in (
        "german-tray-menu.png",
        "german-tray-menu-failed.png",
        "german-status-window.png",
        "german-profiles-window.png",
        "german-profile-editor.png",
    ):
        assert (screenshots / name).stat().st_size > 1000
