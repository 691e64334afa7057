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

from sstpvpn.client.profiles import Profile, ProfileStore, ProxyChoice, new_profile_id
from sstpvpn.client.secret_store import SERVICE, KeyringUnavailable, SecretKind, SecretStore, item_label, no_keyring_sentence
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
    assert keyring_items(profile.id, SecretKind.VPN) == [("SSTP VPN: Office (alice) password", "vpn-s3cret")]
    assert keyring_items(profile.id, SecretKind.PROXY) == [("SSTP VPN: Office (bob) proxy password", "proxy-s3cret")]
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
    assert secrets.problem() == no_keyring_sentence()
    assert "apt install gnome-keyring" in no_keyring_sentence()
    with pytest.raises(KeyringUnavailable) as raised:
        secrets.set("id", SecretKind.VPN, "pw")
    assert raised.value.sentence == no_keyring_sentence()


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
    assert result.stdout == no_keyring_sentence(), result.stderr


def keyring_items(profile_id: str, kind: SecretKind) -> list[tuple[str, str]]:
    """(label, secret) of every item the Secret Service holds for this profile's password."""
    from contextlib import closing

    import secretstorage

    with closing(secretstorage.dbus_init()) as bus:
        collection = secretstorage.get_default_collection(bus)
        items = collection.search_items({"service": SERVICE, "username": f"{profile_id}/{kind.value}"})
        return [(item.get_label(), item.get_secret().decode()) for item in items]


def test_keyring_items_are_labelled_for_people_and_old_items_are_still_found(secrets):
    profile = Profile(
        id=new_profile_id(), name="Office", host="vpn.example.com", username="alice", proxy=ProxyChoice.manual_from_url("http://bob@proxy:3128")
    )
    SecretService.Keyring().set_password(SERVICE, f"{profile.id}/vpn", "old-pw")  # as saved before items had our labels
    assert keyring_items(profile.id, SecretKind.VPN) == [(f"Password for '{profile.id}/vpn' on 'sstp-vpn'", "old-pw")]
    assert secrets.get(profile.id, SecretKind.VPN) == "old-pw"

    secrets.set(profile.id, SecretKind.VPN, "new-pw", label=item_label(profile, SecretKind.VPN))
    secrets.set(profile.id, SecretKind.PROXY, "proxy-pw", label=item_label(profile, SecretKind.PROXY))
    assert keyring_items(profile.id, SecretKind.VPN) == [("SSTP VPN: Office (alice) password", "new-pw")]  # replaced, not a second item
    assert keyring_items(profile.id, SecretKind.PROXY) == [("SSTP VPN: Office (bob) proxy password", "proxy-pw")]
    assert secrets.get(profile.id, SecretKind.VPN) == "new-pw"
    assert SecretService.Keyring().get_password(SERVICE, f"{profile.id}/vpn") == "new-pw"  # keyring's own lookup finds it too

    secrets.relabel(replace(profile, name="Head office", username="alice2"))
    assert keyring_items(profile.id, SecretKind.VPN) == [("SSTP VPN: Head office (alice2) password", "new-pw")]
    assert keyring_items(profile.id, SecretKind.PROXY) == [("SSTP VPN: Head office (bob) proxy password", "proxy-pw")]
    secrets.forget_profile(profile.id)
    assert keyring_items(profile.id, SecretKind.VPN) == keyring_items(profile.id, SecretKind.PROXY) == []


def test_labels_without_a_user():
    profile = Profile(id="x", name="Lab", host="h")
    assert item_label(profile, SecretKind.VPN) == "SSTP VPN: Lab password"
    assert item_label(profile, SecretKind.PROXY) == "SSTP VPN: Lab proxy password"
