"""GUI tests run on a virtual X display with a private session bus (set before pytest-qt creates
its QApplication), a real tray host where a test needs one, and a real gnome-keyring."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from keyring.backends import SecretService

from sstpvpn.client.profiles import ProfileStore
from sstpvpn.client.secret_store import SecretStore
from sstpvpn.gui.app import TrayApp
from tests.gui.desktop import Display, environment, secret_service, session_bus, tray_host, virtual_display
from tests.gui.scripted_runner import ScriptedRunner

if TYPE_CHECKING:
    from tests.integration.softether import SoftEtherServer

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"


@pytest.fixture(scope="session")
def desktop() -> Iterator[Display]:
    """Xvfb and a private bus, exported to this process (and so to Qt) for the whole session."""
    with virtual_display() as display, session_bus() as bus, environment(**display.env, DBUS_SESSION_BUS_ADDRESS=bus):
        yield display
        _close_qt_display_connection()


def _close_qt_display_connection() -> None:
    """Qt exits the process ("The X11 connection broke") if the X server goes away under a live
    QApplication, so the session's application is deleted before Xvfb is stopped."""
    import sys

    if "PySide6.QtWidgets" not in sys.modules:
        return
    import shiboken6
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is not None:
        app.processEvents()
        shiboken6.delete(app)


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
def tray_app(qtbot, tray, store, secrets) -> Iterator[TrayApp]:
    """The tray app with scripted engines (tests/gui/scripted_runner.py); on the way out its
    dialogs are closed and it quits."""
    ScriptedRunner.instances.clear()
    app = TrayApp(store, secrets, environ={}, runner_factory=ScriptedRunner)
    app.start()
    yield app
    for dialog in list(app.dialogs):
        dialog.close()
    if not app.controller.shutting_down:
        with qtbot.waitSignal(app.stopped, timeout=10000):
            app.quit()


class FakeKillSwitches:
    """Stands in for the platform's kill switch (current.open_kill_switch) in every GUI test: the
    rules each switch was given, and a sentence to refuse them with (`refuse`), as a firewall can."""

    def __init__(self) -> None:
        self.rules: list[object] = []  # every set(), in order
        self.removed = 0
        self.refuse: str | None = None

    def open(self) -> FakeKillSwitches.Switch:
        return FakeKillSwitches.Switch(self)

    class Switch:
        def __init__(self, switches: FakeKillSwitches) -> None:
            self.switches = switches

        def set(self, rules: object) -> None:
            from sstpvpn.platform.errors import PlatformError

            if self.switches.refuse:
                raise PlatformError(self.switches.refuse)
            self.switches.rules.append(rules)

        def remove(self) -> None:
            self.switches.removed += 1


@pytest.fixture(autouse=True)
def kill_switches(monkeypatch) -> FakeKillSwitches:
    """No GUI test touches this machine's firewall: a profile with the kill switch on gets a fake."""
    from sstpvpn.platform import current

    switches = FakeKillSwitches()
    monkeypatch.setattr(current, "open_kill_switch", switches.open, raising=False)
    return switches


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(autouse=True)
def _gui_test_cleaned_up(request) -> Iterator[None]:
    """After a GUI test: its worker threads have delivered (their callbacks touch its widgets), and
    the Qt objects it dropped are collected now, on the GUI thread. Left to the cyclic garbage
    collector, they could be collected on any thread, e.g. a keyring worker of the next test,
    and Qt objects freed there are deleted in a roundabout way that can crash."""
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
    gc.collect()


@pytest.fixture(scope="module")
def softether_server(tmp_path_factory) -> Iterator[SoftEtherServer]:
    """The real SoftEther SSTP server of the integration tests, for this module only: it stops
    before tests/integration starts its own (one server at a time: SoftEtherServer waits its turn)."""
    from tests.integration.softether import SoftEtherServer, locate_server_binary, locate_vpncmd
    from tests.realparts import require_program, require_root

    require_root("network namespaces and the SoftEther server's state directories")
    require_program("ip", "apt-get install iproute2")
    binary = locate_server_binary(REPO_ROOT)
    with SoftEtherServer(binary, locate_vpncmd(binary), tmp_path_factory.mktemp("softether")) as server:
        yield server
