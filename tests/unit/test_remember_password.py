"""The profile's password choice: "remember the password" (the keyring, the default) or "ask every
time" (one-time passwords), kept in profiles.toml; profiles written before the choice existed load
with the default."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sstpvpn.client.profiles import Profile, ProfileFileError, ProfileStore, new_profile_id


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    return ProfileStore(tmp_path / "sstp-vpn" / "profiles.toml")


def test_ask_every_time_is_saved_and_read_back(store):
    profile = store.save(Profile(id=new_profile_id(), name="Token", host="vpn.example.com", username="alice", remember_password=False))
    assert tomllib.loads(store.path.read_text())["profiles"][0]["remember_password"] is False
    assert ProfileStore(store.path).load().by_id(profile.id) == profile
    assert not ProfileStore(store.path).load().by_id(profile.id).remember_password


def test_an_older_profile_remembers_its_password(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_text('schema = 1\n[[profiles]]\nid = "x1"\nname = "A"\nhost = "vpn.example.com"\nusername = "alice"\n')
    (profile,) = store.load().profiles
    assert profile.remember_password is True
    assert Profile(id="x1", name="A", host="h").remember_password is True


def test_a_choice_that_is_not_true_or_false_names_the_field(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_text('schema = 1\n[[profiles]]\nid = "x1"\nname = "A"\nhost = "vpn.example.com"\nremember_password = "no"\n')
    with pytest.raises(ProfileFileError, match="remember_password that is not a bool"):
        store.load()


class _Keyring:
    """Stands in for SecretStore: holds one VPN password and records what was asked."""

    def __init__(self, password: str | None) -> None:
        self.password = password
        self.asked: list[object] = []

    def get(self, profile_id: str, kind: object) -> str | None:
        self.asked.append(kind)
        return self.password


def test_the_command_line_asks_every_time_too(monkeypatch):
    from sstpvpn.client.profile_commands import ProfileCommandError, password_state, profile_passwords

    remembers = Profile(id="p1", name="Office", host="vpn.example.com", username="alice")
    asks = Profile(id="p2", name="Token", host="vpn.example.com", username="alice", remember_password=False)
    keyring = _Keyring("saved")
    assert profile_passwords(remembers, keyring, password_stdin=False) == ("saved", None)  # type: ignore[arg-type]
    assert password_state(keyring, remembers) == "saved in the system keyring"  # type: ignore[arg-type]
    keyring.asked.clear()
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(ProfileCommandError, match="'Token' asks for its password at every connection: pass --password-stdin"):
        profile_passwords(asks, keyring, password_stdin=False)  # type: ignore[arg-type]
    assert keyring.asked == []  # never read from the keyring
    assert password_state(keyring, asks) == "asked for at every connection (never saved)"  # type: ignore[arg-type]
