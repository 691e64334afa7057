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
