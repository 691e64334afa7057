"""tests/gui/tray_session.py for an ordinary user: run as that user (tests/unprivileged.py), it
gives itself what a desktop login gives, a session bus and an unlocked gnome-keyring, saves the VPN
password (read from standard input) in that keyring under the profile's id, then drives the tray
app exactly as tray_session does. Arguments: tray_session's, then the profile id.

    python -m tests.gui.user_tray_session connect ARTIFACTS PROFILE_NAME PING_ADDRESS PROFILE_ID
"""

from __future__ import annotations

import os
import sys

from keyring.backends import SecretService

from sstpvpn.client.secret_store import SecretKind, SecretStore
from tests.gui import tray_session
from tests.gui.desktop import environment, secret_service, session_bus


def main(argv: list[str]) -> int:
    profile_id = argv[5]
    password = sys.stdin.readline().rstrip("\n")
    with session_bus() as bus, environment(DBUS_SESSION_BUS_ADDRESS=bus), secret_service(bus):
        SecretStore(SecretService.Keyring()).set(profile_id, SecretKind.VPN, password)
        del password
        return tray_session.main(argv[:5])


if __name__ == "__main__":
    os.umask(0o077)
    sys.exit(main(sys.argv))
