"""The tray app's connection logic, without widgets.

One EngineRunner thread serves the app's whole life; this object (on the GUI thread) decides
what to submit to it. Everything that can block (the keyring, repairing the network after a
crash, reading a server's certificate) runs on worker threads through `run_in_background`, and
the runner's snapshots arrive through the RunnerBridge, so the GUI thread never waits.

Views never get a widget from here: they listen to `changed` and read the properties, and the
user is told things through `notice` (one message path, rendered by the tray).
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from sstpvpn.client.attempt_history import AttemptHistory
from sstpvpn.client.core.types import Failure, FailureKind, Layer, State
from sstpvpn.client.first_contact import PresentedCertificate, fetch_presented_certificate
from sstpvpn.client.profile_settings import ProfileSettingsError, connect_command, needs_proxy_password
from sstpvpn.client.profiles import Profile, ProfileFileError, ProfileStore
from sstpvpn.client.recent_log import RecentLog
from sstpvpn.client.core.reconnect import Backoff, Decision, ReconnectPolicy, RetryAt, WaitForNetwork
from sstpvpn.client.runner import Disconnect, EngineRunner, RetryPassword, Shutdown, uses_network_helper
from sstpvpn.client.core.types import Status
from sstpvpn.client.secret_store import KeyringUnavailable, SecretKind, SecretStore
from sstpvpn.client.session_lock import SessionInUse, SessionLock, lock_profile
from sstpvpn.client.sleep_watch import SLEEP_CHECK_SECONDS, SleepWatch
from sstpvpn.client.transport import TransportSettings
from sstpvpn.platform.route_watch import RouteWatch, start_route_watch

from .background import run_in_background
from .bridge import LogEntry, RunnerBridge

RECONNECT_BACKOFF = Backoff(initial=2.0, cap=60.0)  # read when the user connects; see client/reconnect.py
LOG_HISTORY = 5000


class NoticeLevel(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Notice:
    """Something to tell the user now (the tray shows it as a notification)."""

    title: str
    text: str
    level: NoticeLevel = NoticeLevel.INFO


@dataclass(frozen=True)
class CredentialsRequest:
    """The passwords a connection still needs, and why they were not in the keyring."""

    profile: Profile
    need_password: bool
    need_proxy_password: bool
    reason: str
    can_remember: bool  # the keyring works, so the answer may be saved
    retry: bool = False  # the server refused the password and allows another (MS-CHAPv2 R=1)


@dataclass(frozen=True)
class PinOffer:
    profile: Profile
    certificate: PresentedCertificate


@dataclass(frozen=True)
class _Prepared:
    """What the worker found before a connection: passwords and the network's state."""

    password: str | None = field(default=None, repr=False)
    proxy_password: str | None = field(default=None, repr=False)
    keyring_problem: str | None = None
    failure: Failure | None = None
    repaired: bool = False


class ConnectionController(QObject):
    changed = Signal()  # status, profile or reconnect plan changed: views re-read the properties
    notice = Signal(object)  # Notice
    log = Signal(object)  # LogEntry
    credentials_needed = Signal(object)  # CredentialsRequest: answer with provide/cancel_credentials
    pin_offered = Signal(object)  # PinOffer: answer with accept_pin, or ignore
    finished = Signal()  # after shutdown(): no session is left and the runner has stopped
    _network_changed = Signal(bool)  # emitted on the route watcher's thread, delivered on the GUI thread

    def __init__(self, store: ProfileStore, secrets: SecretStore, environ: Mapping[str, str] | None = None,
                 parent: QObject | None = None, runner_factory: Callable[..., EngineRunner] = EngineRunner,
                 route_watch_factory: Callable[[Callable[[bool], None]], RouteWatch] = start_route_watch,
                 sleep_watch_factory: Callable[[], SleepWatch] = SleepWatch) -> None:
        super().__init__(parent)
        self.store = store
        self.secrets = secrets
        self._environ = environ  # None: the process environment (for the system proxy)
        self._runner_factory = runner_factory  # EngineRunner(on_status, on_log)
        self._bridge = RunnerBridge(self)
        self._bridge.status.connect(self._on_runner_status)
        self._bridge.log.connect(self._on_runner_log)
        self._bridge.password_retry.connect(self._on_password_retry)
        self._keyring_usable = False  # as found when the last connection was prepared
        self._runner: EngineRunner | None = None
        self._runner_busy = False  # a Connect was submitted and its DISCONNECTED has not come back
        self._profile: Profile | None = None
        self._status = Status(State.IDLE)
        self._attempt = 0  # bumped to make results of older background work stale
        self._prepared: _Prepared | None = None
        self._transport: TransportSettings | None = None  # of the running session, for first contact
        self._user_disconnect = False
        self._was_connected = False
        self._pending: Profile | None = None  # connect this once the current session has ended
        self._reconnect_count = 0
        self._reconnect_timer = QTimer(self)
        self._reconnect_timer.setSingleShot(True)
        self._reconnect_timer.timeout.connect(self._reconnect)
        self._reconnect_at: float | None = None
        # A QTimer runs on the clock that stops during a suspend: while a retry waits, look for one.
        self._sleep_watch_factory = sleep_watch_factory
        self._sleep_watch: SleepWatch | None = None
        self._sleep_check = QTimer(self)
        self._sleep_check.timeout.connect(self._check_for_sleep)
        self._route_watch_factory = route_watch_factory
        self._route_watch: RouteWatch | None = None  # started with the runner, for the app's life
        self._network_changed.connect(self._on_network_changed)
        self._policy = ReconnectPolicy(RECONNECT_BACKOFF)  # a fresh one each time the user connects
        self._waiting_for_network = False  # a reconnect waits for a usable route to the server
        self._shutting_down = False
        self._finished = False
        self._session_lock: SessionLock | None = None  # held from _begin until the session ends
        self.log_entries: deque[LogEntry] = deque(maxlen=LOG_HISTORY)
        # On disk, for the support bundle (log window); tests may point them elsewhere.
        self.attempt_history = AttemptHistory()
        self.recent_log = RecentLog()

    # -- what views read ---------------------------------------------------------------------

    @property
    def profile(self) -> Profile | None:
        """The profile of the current or last session."""
        return self._profile

    @property
    def status(self) -> Status:
        return self._status

    @property
    def active(self) -> bool:
        """Connecting, connected, disconnecting, or waiting to reconnect."""
        return self._runner_busy or self._preparing or self._reconnect_at is not None or self._waiting_for_network

    @property
    def reconnect_in(self) -> float | None:
        """Seconds until the next automatic attempt (math.inf while waiting for a network), or None."""
        if self._waiting_for_network:
            return math.inf
        return None if self._reconnect_at is None else max(0.0, self._reconnect_at - time.monotonic())

    @property
    def waiting_for_network(self) -> bool:
        """A reconnect waits until the server can be reached again."""
        return self._waiting_for_network

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    @property
    def _preparing(self) -> bool:
        return not self._runner_busy and self._status.state is State.HANDSHAKE

    # -- commands from the user --------------------------------------------------------------

    def connect_profile(self, profile: Profile) -> None:
        if self._shutting_down:
            return
        if self._runner_busy:  # one session at a time: end this one, then start the other
            if self._profile is not None and self._profile.id == profile.id and not self._user_disconnect:
                return  # already connecting or connected
            self._pending = profile
            if not self._user_disconnect:
                self._user_disconnect = True
                self._runner.submit(Disconnect())
            return
        self._cancel_reconnect()
        self._reconnect_count = 0
        self._new_policy()
        self._begin(profile)

    def disconnect(self) -> None:
        self._pending = None
        self._cancel_reconnect()
        if self._runner_busy:
            self._user_disconnect = True
            self._runner.submit(Disconnect())
        elif self._preparing:
            self._attempt += 1  # the worker's result will be ignored
            self._release_session_lock()
            self._set_status(Status(State.DISCONNECTED, server=self._status.server))
        else:
            self.changed.emit()

    def provide_credentials(self, request: CredentialsRequest, password: str | None, proxy_password: str | None,
                            remember: bool) -> None:
        """The user's answer to `credentials_needed`."""
        if request.retry:
            if self._runner is not None and self._profile is not None and self._profile.id == request.profile.id:
                if remember and request.can_remember and password:
                    self._remember(request.profile, password, None)  # the saved one was refused
                self._runner.submit(RetryPassword(password or None))
            return
        prepared = self._prepared
        if prepared is None or not self._preparing or self._profile is None or self._profile.id != request.profile.id:
            return  # cancelled or replaced meanwhile
        password = password if request.need_password else prepared.password
        proxy_password = proxy_password if request.need_proxy_password else prepared.proxy_password
        if remember and request.can_remember:
            self._remember(request.profile, password if request.need_password else None,
                           proxy_password if request.need_proxy_password else None)
        self._start(request.profile, password or "", proxy_password)

    def _on_password_retry(self, reason: str) -> None:
        """The server refused the password but lets the user try another (MS-CHAPv2 R=1): ask,
        while the runner waits; the answer goes back through provide/cancel_credentials."""
        if self._profile is None or self._runner is None:
            if self._runner is not None:
                self._runner.submit(RetryPassword(None))
            return
        self.credentials_needed.emit(CredentialsRequest(self._profile, True, False, reason,
                                                        can_remember=self._keyring_usable, retry=True))

    def cancel_credentials(self, request: CredentialsRequest) -> None:
        if request.retry:
            if self._runner is not None:
                self._runner.submit(RetryPassword(None))  # give up: the refusal sentence follows
            return
        if self._preparing and self._profile is not None and self._profile.id == request.profile.id:
            self._attempt += 1
            self._release_session_lock()
            self._set_status(Status(State.IDLE, server=self._status.server))

    def accept_pin(self, offer: PinOffer) -> Profile:
        """Keep the offered certificate as the profile's CA file, pin it, and connect again."""
        path = self.store.save_pinned_certificate(offer.profile.id, offer.certificate.pem)
        current = self.store.load().by_id(offer.profile.id) or offer.profile
        updated = self.store.save(replace(current, ca_file=str(path), pin_sha256=offer.certificate.sha256_colons))
        self._log_line(logging.INFO, f"Pinned the certificate of {updated.server} (SHA-256 {offer.certificate.sha256_colons}).")
        self.connect_profile(updated)
        return updated

    def shutdown(self, timeout: float = 15.0) -> None:
        """End the session politely (routes and DNS restored), stop the runner, then `finished`."""
        if self._shutting_down:
            return
        self._shutting_down = True
        self._pending = None
        self._cancel_reconnect()
        self._attempt += 1
        if self._runner_busy:
            self._user_disconnect = True
            self._runner.submit(Disconnect())
            QTimer.singleShot(int(timeout * 1000), self._finish)  # a server that never answers
        else:
            self._finish()
        self.changed.emit()

    def tell(self, notice: Notice) -> None:
        """Tell the user something through the tray (for the windows, which share this path)."""
        self.notice.emit(notice)

    # -- connecting --------------------------------------------------------------------------

    def _begin(self, profile: Profile) -> None:
        self._attempt += 1
        attempt = self._attempt
        self._profile = profile
        self._prepared = None
        self._user_disconnect = False
        self._was_connected = False
        if not self._take_session_lock(profile):
            return
        self._set_status(Status(State.HANDSHAKE, server=profile.server))
        run_in_background(lambda: self._prepare(profile),
                          lambda result, error: self._on_prepared(attempt, profile, result, error),
                          name="sstp-vpn-prepare")

    def _take_session_lock(self, profile: Profile) -> bool:
        """One client per profile, shared with `sstp-vpn connect` (client/session_lock.py); a
        refusal is a failure notice with the sentence naming the other process."""
        self._release_session_lock()
        try:
            self._session_lock = lock_profile(profile.id, profile.name, "the SSTP VPN tray app")
        except SessionInUse as error:
            self._fail_locally(Failure(Layer.SESSION, error.sentence, FailureKind.OTHER))
            return False
        return True

    def _release_session_lock(self) -> None:
        if self._session_lock is not None:
            self._session_lock.release()
            self._session_lock = None

    def _prepare(self, profile: Profile) -> _Prepared:
        """Worker thread: repair what a crashed session left, read the passwords."""
        from sstpvpn.platform import current

        if current.UNSUPPORTED_SENTENCE:
            return _Prepared(failure=Failure(Layer.PLATFORM, current.UNSUPPORTED_SENTENCE, FailureKind.OTHER))
        try:
            # Through the helper, the helper keeps (and repairs) the journal.
            repaired = not uses_network_helper() and current.repair_from_journal(current.default_journal_path())
        except current.PlatformError as error:
            return _Prepared(failure=error.to_failure())
        try:
            self.store.set_last_used(profile.id)
        except ProfileFileError:
            pass  # only the left-click default is lost
        try:
            password = self.secrets.get(profile.id, SecretKind.VPN)
            proxy_password = self.secrets.get(profile.id, SecretKind.PROXY) if needs_proxy_password(profile) else None
        except KeyringUnavailable as error:
            return _Prepared(keyring_problem=error.sentence, repaired=repaired)
        return _Prepared(password, proxy_password, repaired=repaired)

    def _on_prepared(self, attempt: int, profile: Profile, prepared: _Prepared | None, error: BaseException | None) -> None:
        if attempt != self._attempt or self._shutting_down:
            return
        if error is not None:
            self._fail_locally(Failure(Layer.APP, f"SSTP VPN hit an internal error ({type(error).__name__}: {error}); please report it.",
                                       FailureKind.OTHER))
            return
        self._prepared = prepared
        if prepared.repaired:
            self._log_line(logging.INFO, "Restored the network settings left behind by an earlier session that did not end cleanly.")
        if prepared.failure is not None:
            self._fail_locally(prepared.failure)
            return
        self._keyring_usable = prepared.keyring_problem is None
        need_password = prepared.password is None
        need_proxy_password = needs_proxy_password(profile) and prepared.proxy_password is None
        if need_password or need_proxy_password:
            reason = prepared.keyring_problem or "No password is saved for this profile."
            self.credentials_needed.emit(CredentialsRequest(profile, need_password, need_proxy_password, reason,
                                                            can_remember=prepared.keyring_problem is None))
            return
        self._start(profile, prepared.password, prepared.proxy_password)

    def _start(self, profile: Profile, password: str, proxy_password: str | None) -> None:
        self._prepared = None
        try:
            command = connect_command(profile, password, proxy_password, environ=self._environ)
        except ProfileSettingsError as error:
            self._fail_locally(Failure(Layer.PROFILE, str(error), FailureKind.OTHER))
            return
        if self._runner is None:
            self._runner = self._runner_factory(self._bridge.on_status, self._bridge.on_log,
                                                self._bridge.on_password_retry)
            self._runner.start()
        if self._route_watch is None:
            self._route_watch = self._route_watch_factory(self._network_changed.emit)
            self._policy.network_available = self._route_watch.usable
        self._transport = command.transport
        self._runner_busy = True
        self._runner.submit(command)

    def _remember(self, profile: Profile, password: str | None, proxy_password: str | None) -> None:
        def save() -> None:
            if password:
                self.secrets.set(profile.id, SecretKind.VPN, password)
            if proxy_password:
                self.secrets.set(profile.id, SecretKind.PROXY, proxy_password)

        def saved(_result: object, error: BaseException | None) -> None:
            if error is not None:
                sentence = error.sentence if isinstance(error, KeyringUnavailable) else str(error)
                self.notice.emit(Notice("Password not saved", sentence, NoticeLevel.WARNING))

        run_in_background(save, saved, name="sstp-vpn-keyring")

    # -- what the runner reports -------------------------------------------------------------

    @Slot(object)
    def _on_runner_status(self, status: Status) -> None:
        previous = self._status
        self._status = status
        self.attempt_history.observe(status)
        profile = self._profile
        if status.state is State.CONNECTED and previous.state is not State.CONNECTED:
            self._was_connected = True
            self._reconnect_count = 0
            self._policy.connected(time.monotonic())
            if status.route_target is not None and self._route_watch is not None:
                self._route_watch.set_target(status.route_target, status.interface)
            name = profile.name if profile else status.server
            address = f" with the address {status.plan.address}" if status.plan else ""
            self.notice.emit(Notice(f"Connected to {name}", f"You are on the VPN{address}."))
        if status.state is State.DISCONNECTED:
            self._runner_busy = False
            self._release_session_lock()
            self._session_ended(status)
        self.changed.emit()

    @Slot(object)
    def _on_runner_log(self, entry: LogEntry) -> None:
        self.log_entries.append(entry)
        self.recent_log.append(entry, at=entry.time)
        self.log.emit(entry)

    def _session_ended(self, status: Status) -> None:
        if self._shutting_down:
            self._finish()
            return
        if self._pending is not None:
            profile, self._pending = self._pending, None
            self._reconnect_count = 0
            self._new_policy()
            self._begin(profile)
            return
        if self._user_disconnect or self._profile is None:
            return
        self._report_failure(self._profile, status.failure, dropped=self._was_connected)
        failure = status.failure
        if failure is not None and failure.kind is FailureKind.TRUST and self._transport is not None:
            self._offer_first_contact(self._profile, self._transport)
        if self._profile.auto_reconnect and (self._was_connected or self._reconnect_count > 0):
            self._follow(self._policy.session_ended(time.monotonic(), failure))  # GiveUp: the notice above stands

    def _report_failure(self, profile: Profile, failure: Failure | None, dropped: bool) -> None:
        text = failure.reason if failure is not None else "The server ended the connection."
        if dropped:
            self.notice.emit(Notice(f"Connection to {profile.name} dropped", text, NoticeLevel.WARNING))
        else:
            self.notice.emit(Notice(f"Could not connect to {profile.name}", text, NoticeLevel.ERROR))

    def _fail_locally(self, failure: Failure) -> None:
        """A failure before the runner got the session (settings, keyring, network repair)."""
        self._release_session_lock()
        self._set_status(Status(State.DISCONNECTED, server=self._status.server, failure=failure))
        if self._profile is not None:
            self._report_failure(self._profile, failure, dropped=False)

    def _offer_first_contact(self, profile: Profile, transport: TransportSettings) -> None:
        """After a trust failure: a self-signed certificate for the right name may be pinned."""
        attempt = self._attempt

        def offered(certificate: PresentedCertificate | None, error: BaseException | None) -> None:
            if error is not None or certificate is None or attempt != self._attempt or self._shutting_down:
                return  # unreachable now, or the user moved on: the failure sentence stands
            pinned = profile.pin_sha256.replace(":", "").lower()
            if certificate.can_be_pinned and certificate.sha256_hex != pinned:
                self.pin_offered.emit(PinOffer(profile, certificate))

        run_in_background(lambda: fetch_presented_certificate(transport), offered, name="sstp-vpn-first-contact")

    # -- reconnecting ------------------------------------------------------------------------

    def _new_policy(self) -> None:
        self._policy = ReconnectPolicy(RECONNECT_BACKOFF)
        if self._route_watch is not None:
            self._policy.network_available = self._route_watch.usable

    def _follow(self, decision: Decision, why: str | None = None) -> None:
        """Act on the reconnect policy's decision: a timer, or a wait for the network."""
        profile = self._profile
        if not isinstance(decision, (RetryAt, WaitForNetwork)) or profile is None or self._shutting_down:
            return
        self._cancel_reconnect()
        self._reconnect_count += 1
        if isinstance(decision, WaitForNetwork):
            self._waiting_for_network = True
            self.notice.emit(Notice(f"Reconnecting to {profile.name}", "Waiting for a network connection."))
            self.changed.emit()
            return
        delay = max(0.0, decision.at - time.monotonic())
        self._reconnect_at = decision.at
        self._reconnect_timer.start(int(delay * 1000))
        self._sleep_watch = self._sleep_watch_factory()
        self._sleep_check.start(int(SLEEP_CHECK_SECONDS * 1000))
        text = "Trying again now." if delay < 0.5 else f"Trying again in {delay:.0f} seconds."
        self.notice.emit(Notice(f"Reconnecting to {profile.name}", f"{why} {text}" if why else text))
        self.changed.emit()

    @Slot(bool)
    def _on_network_changed(self, usable: bool) -> None:
        decision = self._policy.network_changed(time.monotonic(), usable)
        if decision is not None and (self._reconnect_at is not None or self._waiting_for_network):
            self._follow(decision, "The network is back." if usable else None)

    @Slot()
    def _check_for_sleep(self) -> None:
        if self._sleep_watch is not None and self._sleep_watch.slept() is not None:
            decision = self._policy.resumed(time.monotonic())
            if decision is not None:
                self._follow(decision, "The computer woke up.")

    def _cancel_reconnect(self) -> None:
        self._reconnect_timer.stop()
        self._sleep_check.stop()
        self._reconnect_at = None
        self._waiting_for_network = False

    @Slot()
    def _reconnect(self) -> None:
        self._sleep_check.stop()
        self._reconnect_at = None
        self._waiting_for_network = False
        self._policy.attempt_started()
        if self._profile is None or self._shutting_down:
            return
        try:
            profile = self.store.load().by_id(self._profile.id)  # it may have been edited meanwhile
        except ProfileFileError:
            profile = self._profile
        if profile is None:
            self.changed.emit()  # the profile was removed: stop trying
            return
        self._begin(profile)

    # -- ending ------------------------------------------------------------------------------

    @Slot()
    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._release_session_lock()
        if self._route_watch is not None:
            self._route_watch.close()
        if self._runner_busy:
            self._log_line(logging.WARNING, "The session did not end in time; quitting anyway (the next start restores the network).")
        runner = self._runner
        if runner is None:
            self.finished.emit()
            return
        runner.submit(Shutdown())
        deadline = time.monotonic() + 5.0

        def wait_for_runner() -> None:
            if runner.is_alive() and time.monotonic() < deadline:
                QTimer.singleShot(20, wait_for_runner)
            else:
                self.finished.emit()

        wait_for_runner()

    # -- helpers -----------------------------------------------------------------------------

    def _set_status(self, status: Status) -> None:
        self._status = status
        self.attempt_history.observe(status)
        self.changed.emit()

    def _log_line(self, level: int, message: str) -> None:
        self._on_runner_log(LogEntry(time.time(), level, message))
