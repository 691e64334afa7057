"""GUI tests run on a virtual X display with a private session bus (set before pytest-qt creates
its QApplication), a real tray host where a test needs one, and a real gnome-keyring."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from keyring.backends import SecretService

from sstpvpn.client.profiles import ProfileStore
from sstpvpn.client.secret_store import SecretStore
from tests.gui.desktop import Display, environment, secret_service, session_bus, tray_host, virtual_display

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
def desktop() -> Iterator[Display]:
    """Xvfb and a private bus, exported to this process (and so to Qt) for the whole session."""
    with virtual_display() as display, session_bus() as bus:
        with environment(**display.env, DBUS_SESSION_BUS_ADDRESS=bus):
            yield display


@pytest.fixture(scope="session")
def qapp_args(desktop) -> list[str]:
    """pytest-qt's QApplication is created with these; depending on `desktop` makes it wait for it."""
    return ["sstp-vpn-tests"]


@pytest.fixture(scope="session")
def tray(desktop) -> Iterator[None]:
    with tray_host(desktop):
        yield


@pytest.fixture(scope="session")
def keyring_service(desktop) -> Iterator[None]:
    import os

    with secret_service(os.environ["DBUS_SESSION_BUS_ADDRESS"]):
        yield


@pytest.fixture
def secrets(keyring_service) -> SecretStore:
    return SecretStore(SecretService.Keyring())


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    return ProfileStore(tmp_path / "config" / "sstp-vpn" / "profiles.toml")


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(autouse=True)
def _background_work_finished(request) -> Iterator[None]:
    """Worker threads of one test must deliver before the next test starts (their callbacks touch
    widgets that the test's teardown deletes)."""
    yield
    if "qtbot" not in request.fixturenames:
        return
    from PySide6.QtWidgets import QApplication

    from sstpvpn.gui.background import pending_work

    end = time.monotonic() + 30
    while pending_work() and time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.01)
    with contextlib.suppress(RuntimeError):
        QApplication.processEvents()
