"""`sstp-vpn-tray`: the system-tray app. It puts together the connection controller, the tray
icon and the windows, and quits only after the connection has ended cleanly (also on SIGINT
and SIGTERM)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from PySide6.QtCore import QLibraryInfo, QObject, QSocketNotifier, QTimer, QTranslator, Signal, Slot
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from sstpvpn.client import __version__
from sstpvpn.client.core.i18n import _, ngettext
from sstpvpn.client.first_contact import Choice
from sstpvpn.client.profiles import ProfileStore
from sstpvpn.client.runner import EngineRunner
from sstpvpn.client.secret_store import SecretStore
from sstpvpn.platform import current, route_watch
from sstpvpn.platform.language import use_users_language

from .background import run_in_background
from .connection import ConnectionController, CredentialsRequest, Notice, NoticeLevel, PinOffer
from .icons import app_icon
from .presentation import APP_NAME
from .tray import Tray

if TYPE_CHECKING:  # the windows and dialogs are imported when first opened: a smaller, quicker start
    from .log_window import LogWindow
    from .profiles_window import ProfilesWindow
    from .status_window import StatusWindow

TRAY_WAIT_SECONDS = 30  # at login the panel may start after us


class TrayApp(QObject):
    stopped = Signal()  # the session has ended and the runner has stopped: the process may exit

    def __init__(
        self,
        store: ProfileStore | None = None,
        secrets: SecretStore | None = None,
        environ: Mapping[str, str] | None = None,
        runner_factory: Callable[..., EngineRunner] = EngineRunner,
    ) -> None:
        super().__init__()
        self.store = store or ProfileStore()
        self.secrets = secrets or SecretStore()
        self.controller = ConnectionController(self.store, self.secrets, environ, self, runner_factory)
        self.status_window: StatusWindow | None = None
        self.log_window: LogWindow | None = None
        self.profiles_window: ProfilesWindow | None = None
        self.tray = Tray(
            self.controller,
            self.store,
            show_status=self.show_status,
            show_log=self.show_log,
            show_profiles=self.show_profiles,
            add_profile=self.add_profile,
            quit=self.quit,
            parent=self,
        )
        self.controller.credentials_needed.connect(self.ask_credentials)
        self.controller.pin_offered.connect(self.offer_pin)
        self.controller.finished.connect(self._stopped)
        self.dialogs: list = []  # open password/pin dialogs, for tests

    def start(self) -> None:
        self.tray.icon.show()
        from .start_settings import connect_at_start  # the profile chosen for Connect at start, if any

        connect_at_start(self.store, self.controller)
        run_in_background(current.tunnel_problem, self._tunnel_problem_found, name="sstp-vpn-privileges")
        run_in_background(_warm_up, lambda _result, _error: None, name="sstp-vpn-warm-up")

    def _tunnel_problem_found(self, problem: str | None, error: BaseException | None) -> None:
        # A failed check (error) tells nothing: the first connection attempt will say what is wrong.
        if problem:
            # Translators: notification title; the reason follows
            self.controller.tell(Notice(_("The VPN tunnel cannot be created"), problem, NoticeLevel.WARNING))

    # -- windows -----------------------------------------------------------------------------

    def show_status(self) -> StatusWindow:
        if self.status_window is None:
            from .status_window import StatusWindow

            self.status_window = StatusWindow(self.controller)
        _bring_up(self.status_window)
        return self.status_window

    def show_log(self) -> LogWindow:
        if self.log_window is None:
            from .log_window import LogWindow

            self.log_window = LogWindow(self.controller)
        _bring_up(self.log_window)
        return self.log_window

    def show_profiles(self) -> ProfilesWindow:
        if self.profiles_window is None:
            from .profiles_window import ProfilesWindow

            self.profiles_window = ProfilesWindow(self.store, self.secrets, self.controller)
        self.profiles_window.refresh()
        _bring_up(self.profiles_window)
        return self.profiles_window

    def add_profile(self) -> None:
        self.show_profiles().add()

    # -- questions from the controller -------------------------------------------------------

    @Slot(object)
    def ask_credentials(self, request: CredentialsRequest) -> None:
        from .password_dialog import PasswordDialog

        dialog = PasswordDialog(request)
        dialog.setWindowIcon(app_icon())
        dialog.accepted.connect(
            lambda: self.controller.provide_credentials(request, dialog.password.text(), dialog.proxy_password.text(), dialog.remember.isChecked())
        )
        dialog.rejected.connect(lambda: self.controller.cancel_credentials(request))
        self._open_dialog(dialog)

    @Slot(object)
    def offer_pin(self, offer: PinOffer) -> None:
        from .pin_dialog import PinDialog

        dialog = PinDialog(offer.profile.server, offer.certificate, changed=offer.changed)
        dialog.setWindowIcon(app_icon())
        dialog.accepted.connect(lambda: self.controller.accept_pin(offer, dialog.choice or Choice.PIN))
        self._open_dialog(dialog)

    def _open_dialog(self, dialog) -> None:
        self.dialogs.append(dialog)
        dialog.finished.connect(lambda _result: self.dialogs.remove(dialog) if dialog in self.dialogs else None)
        _bring_up(dialog)

    # -- quitting ----------------------------------------------------------------------------

    @Slot()
    def quit(self) -> None:
        """Disconnect first (routes and DNS restored), then `stopped`."""
        self.controller.shutdown()

    @Slot()
    def _stopped(self) -> None:
        self.tray.icon.hide()
        for window in (self.status_window, self.log_window, self.profiles_window, *self.dialogs):
            if window is not None:
                window.close()
        self.stopped.emit()


def _warm_up() -> None:
    """Worker thread, while the app waits for its first click: what that connection would wait
    for otherwise, the keyring's choice of back-end (it asks D-Bus which keyrings answer; nothing
    is read, so no keyring asks to be unlocked), the route watcher's imports and the tunnel's."""
    import keyring

    keyring.get_keyring()
    route_watch.load_watcher()
    current.load_tunnel_modules()


def _bring_up(window) -> None:
    window.show()
    window.raise_()
    window.activateWindow()


class _StopSignalWatch(QObject):
    """SIGINT/SIGTERM reach Qt's event loop through a socket the platform layer's signal handling
    writes to (current.watch_stop_signals)."""

    def __init__(self, on_signal: Callable[[], None], parent: QObject) -> None:
        super().__init__(parent)
        self._signals = current.watch_stop_signals()
        self._notifier = QSocketNotifier(self._signals.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._woken)
        self._on_signal = on_signal

    @Slot()
    def _woken(self) -> None:
        if self._signals.drain():
            self._on_signal()


def main(argv: list[str] | None = None) -> int:
    language = use_users_language()
    parser = argparse.ArgumentParser(prog="sstp-vpn-tray", description=_("The SSTP VPN system-tray app."))
    parser.add_argument("--version", action="version", version=f"sstp-vpn-tray {__version__}", help=_("show the version and exit"))
    args, qt_args = parser.parse_known_args(argv)
    app = QApplication([sys.argv[0], *qt_args])
    translate_qt(app, language)
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("sstp-vpn-tray")
    app.setWindowIcon(app_icon())
    app.setQuitOnLastWindowClosed(False)  # closing a window leaves the tray running
    tray_app = TrayApp()
    tray_app.stopped.connect(app.quit)
    _StopSignalWatch(tray_app.quit, tray_app)
    _show_when_tray_appears(app, tray_app)
    return app.exec()


def translate_qt(app: QApplication, language: str) -> None:
    """Qt's own words (the standard buttons OK, Cancel, Yes, No; the text fields' context menu) in
    the language chosen for ours, from the translations that come with Qt."""
    translator = QTranslator(app)
    if translator.load(f"qtbase_{language}", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)):
        app.installTranslator(translator)


def _show_when_tray_appears(app: QApplication, tray_app: TrayApp, waited: float = 0.0) -> None:
    """Start in the tray once one exists; without any, fall back to the windows."""
    if QSystemTrayIcon.isSystemTrayAvailable():
        tray_app.start()
    elif waited >= TRAY_WAIT_SECONDS:
        print(
            ngettext(
                "sstp-vpn-tray: no system tray appeared within {seconds} second; showing the windows instead (closing them quits).",
                "sstp-vpn-tray: no system tray appeared within {seconds} seconds; showing the windows instead (closing them quits).",
                TRAY_WAIT_SECONDS,
            ).format(seconds=TRAY_WAIT_SECONDS),
            file=sys.stderr,
        )
        app.lastWindowClosed.connect(tray_app.quit)  # which disconnects first, then quits
        tray_app.show_profiles()
        tray_app.show_status()
    else:
        QTimer.singleShot(500, lambda: _show_when_tray_appears(app, tray_app, waited + 0.5))


if __name__ == "__main__":
    sys.exit(main())
