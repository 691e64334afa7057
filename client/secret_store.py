"""Passwords in the operating system's keyring (Secret Service, KWallet, macOS Keychain, Windows
Credential Manager) through `keyring`, keyed by the profile's stable id: renaming a profile keeps
its passwords, removing it forgets them. Passwords are never written anywhere else.

Every call can block: the first one picks and starts the backend, and a Secret Service that has
to be activated can take up to two minutes to fail. The tray app therefore calls this only from
worker threads. Backend failures of any kind become `KeyringUnavailable` with one sentence.
"""

from __future__ import annotations

import enum
from contextlib import closing

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from keyring.backends import SecretService
from keyring.backends.chainer import ChainerBackend

from .core.i18n import _
from .profiles import Profile

SERVICE = "sstp-vpn"


def no_keyring_sentence() -> str:
    return _(
        "No system keyring is available, so passwords cannot be saved and are asked for at each connection; "
        "to save them, install and unlock a keyring service (on Debian or Ubuntu: apt install gnome-keyring)."
    )


class SecretKind(enum.Enum):
    VPN = "vpn"  # the VPN user's password
    PROXY = "proxy"  # the manual proxy's password


class KeyringUnavailable(Exception):
    """The keyring cannot be used; `sentence` says why and what to install."""

    def __init__(self, sentence: str) -> None:
        super().__init__(sentence)
        self.sentence = sentence


class SecretStore:
    def __init__(self, backend: KeyringBackend | None = None) -> None:
        self._given_backend = backend  # None: the one `keyring` picks for this system

    def problem(self) -> str | None:
        """None when passwords can be saved and read; else the sentence to show. Blocks."""
        try:
            self._call(lambda backend: backend.get_password(SERVICE, "availability-check"))
        except KeyringUnavailable as error:
            return error.sentence
        return None

    def get(self, profile_id: str, kind: SecretKind) -> str | None:
        def get(backend: KeyringBackend) -> str | None:
            try:
                return backend.get_password(SERVICE, _account(profile_id, kind))
            except _vanished_item_errors():  # deleted by another thread between search and read
                return None

        return self._call(get)

    def set(self, profile_id: str, kind: SecretKind, password: str, label: str | None = None) -> None:
        """Save a password. `label` (see `item_label`) names the item in the keyring's own window
        where the backend lets us (the Secret Service: Seahorse, KWallet's Secret Service); the
        item is found by the same service and account as ever, so items saved before are found."""

        def store(backend: KeyringBackend) -> None:
            secret_service = _secret_service(backend)
            if label is None or secret_service is None:
                backend.set_password(SERVICE, _account(profile_id, kind), password)
                return
            # keyring's SecretService.set_password, with our label instead of "Password for 'x' on 'y'"
            collection = secret_service.get_preferred_collection()
            attributes = secret_service._query(SERVICE, _account(profile_id, kind), application=secret_service.appid)
            with closing(collection.connection):
                collection.create_item(label, attributes, password, replace=True)

        self._call(store)

    def relabel(self, profile: Profile) -> None:
        """Give the profile's saved passwords the labels of its current name and users (after an
        edit); only the Secret Service has labels we can change, elsewhere this does nothing."""

        def relabel(backend: KeyringBackend) -> None:
            secret_service = _secret_service(backend)
            if secret_service is None:
                return
            collection = secret_service.get_preferred_collection()
            with closing(collection.connection):
                for kind in SecretKind:
                    for item in collection.search_items(secret_service._query(SERVICE, _account(profile.id, kind))):
                        if item.get_label() != item_label(profile, kind):
                            item.set_label(item_label(profile, kind))

        self._call(relabel)

    def delete(self, profile_id: str, kind: SecretKind) -> None:
        """Forget one password; one that is not there is fine."""

        def delete(backend: KeyringBackend) -> None:
            try:
                backend.delete_password(SERVICE, _account(profile_id, kind))
            except keyring.errors.PasswordDeleteError:
                pass

        self._call(delete)

    def forget_profile(self, profile_id: str) -> None:
        for kind in SecretKind:
            self.delete(profile_id, kind)

    def _backend(self) -> KeyringBackend:
        backend = self._given_backend or keyring.get_keyring()
        if not _usable(backend):
            raise KeyringUnavailable(no_keyring_sentence())
        return backend

    def _call(self, action):
        try:
            return action(self._backend())
        except KeyringUnavailable:
            raise
        except keyring.errors.NoKeyringError:
            raise KeyringUnavailable(no_keyring_sentence()) from None
        except Exception as error:  # noqa: BLE001 - D-Bus errors (jeepney) are not KeyringErrors
            detail = str(error).strip().rstrip(".") or type(error).__name__
            raise KeyringUnavailable(
                _("The system keyring did not answer ({detail}); unlock it, or the password is asked for at each connection.").format(detail=detail)
            ) from None


def _vanished_item_errors() -> tuple[type[Exception], ...]:
    try:
        from secretstorage.exceptions import ItemNotFoundException
    except ImportError:  # not the Secret Service backend (Windows, macOS)
        return ()
    return (ItemNotFoundException,)


def _account(profile_id: str, kind: SecretKind) -> str:
    return f"{profile_id}/{kind.value}"


def item_label(profile: Profile, kind: SecretKind) -> str:
    """How a person tells the items apart in Seahorse, KWallet or Credential Manager:
    "SSTP VPN: Office (alice) password", "SSTP VPN: Office (bob) proxy password"."""
    user = profile.username if kind is SecretKind.VPN else profile.proxy.username
    if kind is SecretKind.VPN:
        # Translators: the label of a saved password in the system keyring's window: "SSTP VPN: Office (alice) password"
        return (_("SSTP VPN: {profile} ({user}) password") if user else _("SSTP VPN: {profile} password")).format(profile=profile.name, user=user)
    # Translators: as above, for the proxy's password: "SSTP VPN: Office (bob) proxy password"
    return (_("SSTP VPN: {profile} ({user}) proxy password") if user else _("SSTP VPN: {profile} proxy password")).format(
        profile=profile.name, user=user
    )


def _secret_service(backend: KeyringBackend) -> SecretService.Keyring | None:
    """The Secret Service backend that writes go to, if that is what `backend` is."""
    if isinstance(backend, ChainerBackend):
        backend = backend.backends[0] if backend.backends else backend  # writes go to the first one
    return backend if isinstance(backend, SecretService.Keyring) else None


def _usable(backend: KeyringBackend) -> bool:
    """A real keyring: not the fail/null backends, and not a plain-file one (priority below 1,
    such as keyrings.alt's), which would put the password in a file."""
    if isinstance(backend, ChainerBackend):
        chained = backend.backends
        return bool(chained) and chained[0].priority >= 1  # writes go to the first one
    return backend.priority >= 1
