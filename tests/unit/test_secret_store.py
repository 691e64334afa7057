"""The secret store against a real Secret Service (gnome-keyring on a private session bus), and
what the app says when there is no usable keyring."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from keyring.backends import SecretService, fail, null

from sstpvpn.client.profiles import Profile, ProfileStore, new_profile_id
from sstpvpn.client.secret_store import NO_KEYRING_SENTENCE, KeyringUnavailable, SecretKind, SecretStore
from tests.gui.desktop import INSTALL_KEYRING, environment, secret_service, session_bus
from tests.realparts import require_program

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keyring_bus():
    """A private bus with an unlocked gnome-keyring; DBUS_SESSION_BUS_ADDRESS points at it."""
    with session_bus() as address, secret_service(address), environment(DBUS_SESSION_BUS_ADDRESS=address):
        yield address


@pytest.fixture
def secrets(keyring_bus) -> SecretStore:
    return SecretStore(SecretService.Keyring())


def test_store_read_delete(secrets):
    profile_id = new_profile_id()
    assert secrets.problem() is None
    assert secrets.get(profile_id, SecretKind.VPN) is None
    secrets.set(profile_id, SecretKind.VPN, "vpn-pässword")
    secrets.set(profile_id, SecretKind.PROXY, "proxy-password")
    assert secrets.get(profile_id, SecretKind.VPN) == "vpn-pässword"
    assert secrets.get(profile_id, SecretKind.PROXY) == "proxy-password"
    secrets.delete(profile_id, SecretKind.PROXY)
    assert secrets.get(profile_id, SecretKind.PROXY) is None
    assert secrets.get(profile_id, SecretKind.VPN) == "vpn-pässword"
    secrets.delete(profile_id, SecretKind.PROXY)  # already gone: fine


def test_renaming_keeps_the_secret_and_removing_forgets_it(secrets, tmp_path):
    store = ProfileStore(tmp_path / "profiles.toml")
    profile = store.save(Profile(id=new_profile_id(), name="Office", host="vpn.example.com", username="alice"))
    secrets.set(profile.id, SecretKind.VPN, "s3cret")
    store.save(replace(profile, name="Head office"))
    renamed = store.load().find("Head office")
    assert secrets.get(renamed.id, SecretKind.VPN) == "s3cret"
    assert "s3cret" not in store.path.read_text()
    store.remove(renamed.id)
    secrets.forget_profile(renamed.id)
    assert secrets.get(renamed.id, SecretKind.VPN) is None


def test_profiles_add_saves_the_password_only_in_the_keyring(secrets, keyring_bus, tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "DBUS_SESSION_BUS_ADDRESS": keyring_bus, "SSTP_VPN_PROXY_PASSWORD": "proxy-s3cret"}
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "sstpvpn.client.cli",
            "profiles",
            "add",
            "Office",
            "vpn.example.com",
            "--user",
            "alice",
            "--proxy",
            "http://bob@proxy:3128",
            "--password-stdin",
        ],
        input="vpn-s3cret\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    assert added.stderr == ""
    profile = ProfileStore(tmp_path / "sstp-vpn" / "profiles.toml").load().find("Office")
    assert secrets.get(profile.id, SecretKind.VPN) == "vpn-s3cret"
    assert secrets.get(profile.id, SecretKind.PROXY) == "proxy-s3cret"
    text = (tmp_path / "sstp-vpn" / "profiles.toml").read_text()
    assert "s3cret" not in text
    shown = subprocess.run(
        [sys.executable, "-m", "sstpvpn.client.cli", "profiles", "show", "Office"], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60
    )
    assert "password: saved in the system keyring" in shown.stdout
    assert "s3cret" not in shown.stdout + shown.stderr
    removed = subprocess.run(
        [sys.executable, "-m", "sstpvpn.client.cli", "profiles", "remove", "Office"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert removed.returncode == 0 and removed.stderr == ""
    assert secrets.get(profile.id, SecretKind.VPN) is None
    assert secrets.get(profile.id, SecretKind.PROXY) is None


@pytest.mark.parametrize("backend", [fail.Keyring(), null.Keyring()], ids=["fail", "null"])
def test_no_usable_backend_says_what_to_install(backend):
    secrets = SecretStore(backend)
    assert secrets.problem() == NO_KEYRING_SENTENCE
    assert "apt install gnome-keyring" in NO_KEYRING_SENTENCE
    with pytest.raises(KeyringUnavailable) as raised:
        secrets.set("id", SecretKind.VPN, "pw")
    assert raised.value.sentence == NO_KEYRING_SENTENCE


def test_a_bus_without_secret_service_is_no_keyring(tmp_path):
    """A session bus that cannot activate gnome-keyring: keyring falls back to its fail backend."""
    require_program("dbus-run-session", INSTALL_KEYRING)
    config = tmp_path / "bus.conf"
    config.write_text(
        "<busconfig><type>session</type><listen>unix:tmpdir=/tmp</listen>"
        '<policy context="default"><allow send_destination="*" eavesdrop="true"/>'
        '<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>'
    )
    probe = "from sstpvpn.client.secret_store import SecretStore; import sys; sys.stdout.write(SecretStore().problem() or 'usable')"
    result = subprocess.run(
        ["dbus-run-session", f"--config-file={config}", "--", sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert result.stdout == NO_KEYRING_SENTENCE, result.stderr
