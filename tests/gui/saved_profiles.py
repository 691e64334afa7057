"""A saved profile for the tray tests, with its password in the (real) keyring when one is given."""

from __future__ import annotations

from sstpvpn.client.profiles import Profile, ProfileStore, new_profile_id
from sstpvpn.client.secret_store import SecretKind, SecretStore


def add_profile(store: ProfileStore, secrets: SecretStore | None = None, password: str | None = None, **changes: object) -> Profile:
    """Profile "Office" (alice@vpn.example.com) with `changes`, saved in `store`."""
    values: dict[str, object] = dict(id=new_profile_id(), name="Office", host="vpn.example.com", username="alice")
    values.update(changes)
    profile = store.save(Profile(**values))
    if password is not None:
        assert secrets is not None
        secrets.set(profile.id, SecretKind.VPN, password)
    return profile
