"""Saved passwords go to Windows Credential Manager (keyring's WinVaultKeyring), and persist
across processes, as the tray and `connect --profile` need."""

from __future__ import annotations

import uuid

from tests.windows.wine_env import run_windows_python

SCRIPT = """
import sys
import keyring
backend = keyring.get_keyring()
print("backend", type(backend).__module__, type(backend).__name__)
service, user, step = "sstp-vpn-wine-test", "{user}", "{step}"
if step == "set":
    keyring.set_password(service, user, "pa\\u00df w\\u00f6rd \\u2603")
elif step == "get":
    print("password", ascii(keyring.get_password(service, user)))
elif step == "delete":
    keyring.delete_password(service, user)
    print("password", ascii(keyring.get_password(service, user)))
"""


def test_password_round_trip_through_credential_manager(wine, tmp_path):
    user = f"alice-{uuid.uuid4().hex[:8]}"

    def step(name: str) -> str:
        return run_windows_python(wine, SCRIPT.format(user=user, step=name), tmp_path)

    assert "backend keyring.backends.Windows WinVaultKeyring" in step("set")
    assert "password 'pa\\xdf w\\xf6rd \\u2603'" in step("get")  # a new process reads it back
    assert "password None" in step("delete")
    assert "password None" in step("get")
