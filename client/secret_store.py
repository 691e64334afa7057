"""Passwords in the operating system's keyring (Secret Service, KWallet, macOS Keychain, Windows
Credential Manager) through `keyring`, keyed by the profile's stable id: renaming a profile keeps
its passwords, removing it forgets them. Passwords are never written anywhere else.

Every call can block: the first one picks and starts the backend, and a Secret Service that has
to be activated can take up to two minutes to fail. The tray app therefore calls this only from
worker threads. Backend failures of any kind become `KeyringUnavailable` with one sentence.
"""

from __future__ import annotations

import enum

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from keyring.backends.chainer import ChainerBackend

SERVICE = "sstp-vpn"

NO_KEYRING_SENTENCE = (
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

    def set(self, profile_id: str, kind: SecretKind, password: str) -> None:
        self._call(lambda backend: backend.set_password(SERVICE, _account(profile_id, kind), password))

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
            raise KeyringUnavailable(NO_KEYRING_SENTENCE)
        return backend

    def _call(self, action):
        try:
            return action(self._backend())
        except KeyringUnavailable:
            raise
        except keyring.errors.NoKeyringError:
            raise KeyringUnavailable(NO_KEYRING_SENTENCE) from None
        except Exception as error:  # noqa: BLE001 - D-Bus errors (jeepney) are not KeyringErrors
            detail = str(error).strip().rstrip(".") or type(error).__name__
            raise KeyringUnavailable(
                f"The system keyring did not answer ({detail}); unlock it, or the password is asked for at each connection."
            ) from None


def _vanished_item_errors() -> tuple[type[Exception], ...]:
    try:
        from secretstorage.exceptions import ItemNotFoundException
    except ImportError:  # not the Secret Service backend (Windows, macOS)
        return ()
    return (ItemNotFoundException,)


def _account(profile_id: str, kind: SecretKind) -> str:
    return f"{profile_id}/{kind.value}"


def _usable(backend: KeyringBackend) -> bool:
    """A real keyring: not the fail/null backends, and not a plain-file one (priority below 1,
    such as keyrings.alt's), which would put the password in a file."""
    if isinstance(backend, ChainerBackend):
        chained = backend.backends
        return bool(chained) and chained[0].priority >= 1  # writes go to the first one
    return backend.priority >= 1
