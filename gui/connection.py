"""The tray app's connection logic, without widgets: a thin Qt wrapper around the session
supervisor it shares with the command line (client/core/supervisor.py, driven through
client/session_driver.py).

What is the tray's own: preparing an attempt (on a worker thread: the platform's preamble, then
the passwords from the keyring, or a question to the user), telling the user each decision as a
notice, offering to pin a self-signed certificate, and a clean shutdown. Reports from the runner
and the route watcher arrive through the RunnerBridge, so everything here runs on the GUI thread,
and nothing here waits.

Views never get a widget from here: they listen to `changed` and read the properties, and the
user is told things through `notice` (one message path, rendered by the tray).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from sstpvpn.client.attempt_history import AttemptHistory
from sstpvpn.client.core.events import LogRecord
from sstpvpn.client.core.i18n import _, ngettext
from sstpvpn.client.core.reconnect import Backoff, ended_sentence
from sstpvpn.client.core.supervisor import (
    RECONNECT_BACKOFF,
    Connected,
    Finished,
    Output,
    Phase,
    Prepare,
    RetryScheduled,
    SessionEnded,
    WaitingForNetwork,
    Why,
)
from sstpvpn.client.core.types import Failure, FailureKind, Layer, State, Status
from sstpvpn.client.first_contact import (
    ChangedCertificate,
    Choice,
    PresentedCertificate,
    certificate_change,
    fetch_presented_certificate,
    trust_offered,
)
from sstpvpn.client.profile_settings import ProfileSettingsError, connect_command, needs_proxy_password
from sstpvpn.client.profiles import Profile, ProfileFileError, ProfileStore
from sstpvpn.client.recent_log import RecentLog
from sstpvpn.client.runner import EngineRunner
from sstpvpn.client.secret_store import KeyringUnavailable, SecretKind, SecretStore, item_label
from sstpvpn.client.session_driver import PasswordRetry, SessionDriver
from sstpvpn.client.session_lock import SessionInUse, SessionLock, lock_profile
from sstpvpn.client.sleep_watch import SleepWatch
from sstpvpn.client.transport import TransportSettings
from sstpvpn.platform import current
from sstpvpn.platform.route_watch import RouteWatch, start_route_watch

from .background import run_in_background
from .bridge import LogEntry, RunnerBridge
from .presentation import in_gui_words

LOG_HISTORY = 5000


def why_sentences() -> dict[Why, str]:
    """Why a reconnect is tried now, before "Trying again now." in the notice."""
    return {Why.NETWORK_BACK: _("The network is back."), Why.WOKE_UP: _("The computer woke up.")}


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
    refused: bool = False  # the server refused the password of the last attempt: the answer starts a new one


@dataclass(frozen=True)
class PinOffer:
    profile: Profile
    certificate: PresentedCertificate
    changed: ChangedCertificate | None = None  # the profile's pinned certificate was another one


@dataclass(frozen=True)
class _Prepared:
    """What the worker found before a connection: passwords, or why there is no connection."""

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

    def __init__(
        self,
        store: ProfileStore,
        secrets: SecretStore,
        environ: Mapping[str, str] | None = None,
        parent: QObject | None = None,
        runner_factory: Callable[..., EngineRunner] = EngineRunner,
        route_watch_factory: Callable[[Callable[[bool], None]], RouteWatch] = start_route_watch,
        sleep_watch_factory: Callable[[], SleepWatch] = SleepWatch,
        backoff: Backoff = RECONNECT_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.secrets = secrets
        self._environ = environ  # None: the process environment (for the system proxy)
        self._bridge = RunnerBridge(self)
        # Queued also when posted on this thread (the driver posts a status again with the kill
        # switch's new state from here): everything arrives in the order it was posted.
        self._bridge.posted.connect(self._on_posted, Qt.ConnectionType.QueuedConnection)
        self._bridge.log.connect(self._on_log_entry, Qt.ConnectionType.QueuedConnection)
        self.recent_log = RecentLog()  # on disk, for the support bundle (log window); tests may point it elsewhere
        self.log_entries: deque[LogEntry] = deque(maxlen=LOG_HISTORY)
        self._driver: SessionDriver[Profile] = SessionDriver(
            self._bridge.post, self._bridge.on_log, runner_factory, route_watch_factory, sleep_watch_factory, backoff, AttemptHistory(), clock
        )
        self._clock = clock
        self._poll_timer = QTimer(self)  # the scheduled attempt, and a look for a suspend meanwhile
        self._poll_timer.setSingleShot(True)
        self._poll_timer.timeout.connect(self._poll)
        self._status = Status(State.IDLE)
        self._profile: Profile | None = None
        self._prepared: tuple[int, _Prepared] | None = None  # the attempt waiting for the user's passwords
        self._transport: TransportSettings | None = None  # of the last attempt, for first contact
        self._keyring_usable = False  # as found when the last attempt was prepared
        # The password the user typed for the connection under way (profile id, password): used
        # before the keyring's, for every attempt of a profile that remembers passwords (reconnects
        # too, whether or not it was saved), and for the next attempt only of one that asks every time.
        self._typed: tuple[str, str] | None = None
        self._session_lock: SessionLock | None = None  # held from Prepare until the attempt ends
        self._shutting_down = False
        self._finished = False

    # -- what views read ---------------------------------------------------------------------

    @property
    def attempt_history(self) -> AttemptHistory:
        """The last attempts, on disk, for the support bundle; tests may point it elsewhere."""
        return self._driver.history

    @attempt_history.setter
    def attempt_history(self, history: AttemptHistory) -> None:
        self._driver.history = history

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
        return self._driver.supervisor.active

    @property
    def reconnect_in(self) -> float | None:
        """Seconds until the next automatic attempt (math.inf while waiting for a network), or None."""
        if self.waiting_for_network:
            return math.inf
        deadline = self._driver.supervisor.deadline
        return None if deadline is None else max(0.0, deadline - self._clock())

    @property
    def waiting_for_network(self) -> bool:
        """A reconnect waits until the server can be reached again."""
        return self._driver.supervisor.phase is Phase.WAITING_FOR_NETWORK

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    # -- commands from the user --------------------------------------------------------------

    def connect_profile(self, profile: Profile) -> None:
        self._typed = None  # the user's own click: passwords come from the keyring (or a question) again
        self._connect(profile)

    def _connect(self, profile: Profile) -> None:
        if not self._shutting_down:
            self._act(self._driver.connect(profile, reconnect=profile.auto_reconnect))

    def disconnect_session(self) -> None:
        self._typed = None
        self._act(self._driver.disconnect())

    def provide_credentials(self, request: CredentialsRequest, password: str | None, proxy_password: str | None, remember: bool) -> None:
        """The user's answer to `credentials_needed`."""
        keep = remember and request.can_remember
        if request.retry:
            if self._profile is not None and self._profile.id == request.profile.id:
                if keep and password and request.profile.remember_password:
                    self._remember(request.profile, password, None)  # the saved one was refused
                self._keep_typed(request.profile, password)
                self._driver.retry_password(password or None)
            return
        if request.refused:
            self._try_again(request.profile, password or "", keep)
            return
        waiting, self._prepared = self._prepared, None
        if waiting is None or waiting[0] != self._driver.supervisor.attempt or self._profile is None or self._profile.id != request.profile.id:
            return  # cancelled or replaced meanwhile
        attempt, prepared = waiting
        password = password if request.need_password else prepared.password
        proxy_password = proxy_password if request.need_proxy_password else prepared.proxy_password
        if keep:
            save_password = request.need_password and request.profile.remember_password  # "ask every time" keeps none
            self._remember(request.profile, password if save_password else None, proxy_password if request.need_proxy_password else None)
        if request.need_password:
            self._keep_typed(request.profile, password)
        self._start(attempt, request.profile, password or "", proxy_password)

    def cancel_credentials(self, request: CredentialsRequest) -> None:
        if request.refused:
            return  # the attempt has ended: its failure stands ("Last attempt: sign-in refused")
        if request.retry:
            self._driver.retry_password(None)  # give up: the refusal sentence follows
            return
        if self._prepared is not None and self._profile is not None and self._profile.id == request.profile.id:
            self._prepared = None
            self._set_status(Status(State.IDLE, server=self._status.server))
            self._act(self._driver.disconnect())

    def accept_pin(self, offer: PinOffer, choice: Choice = Choice.PIN) -> Profile:
        """Trust what the user chose (first_contact.trust_offered: pin the server's certificate, or
        keep its issuing CA in the profile's CA file), and connect again."""
        current_profile = self.store.load().by_id(offer.profile.id) or offer.profile
        updated = self.store.save(trust_offered(self.store, current_profile, offer.certificate, choice))
        if choice is Choice.CA and offer.certificate.issuing_ca is not None:
            ca = offer.certificate.issuing_ca
            self._log_line(
                logging.INFO,
                _("Trusted the CA {subject} for {server} (SHA-256 {fingerprint}).").format(
                    subject=ca.facts.subject, server=updated.server, fingerprint=ca.sha256_colons
                ),
            )
        else:
            self._log_line(
                logging.INFO,
                _("Pinned the certificate of {server} (SHA-256 {fingerprint}).").format(
                    server=updated.server, fingerprint=offer.certificate.sha256_colons
                ),
            )
        self.connect_profile(updated)
        return updated

    def _keep_typed(self, profile: Profile, password: str | None) -> None:
        """A password typed for this connection is used again by its reconnects, unless the
        profile asks every time (a one-time password)."""
        if password and profile.remember_password:
            self._typed = (profile.id, password)

    def _try_again(self, profile: Profile, password: str, remember: bool) -> None:
        """The answer to a refused password: a new attempt at once with it, saved only if asked."""
        if self._shutting_down:
            return
        try:
            profile = self.store.load().by_id(profile.id) or profile  # edited meanwhile: its latest settings
        except ProfileFileError:
            pass
        if remember and profile.remember_password and password:
            self._remember(profile, password, None)
        self._typed = (profile.id, password)
        self._connect(profile)

    def shutdown(self, timeout: float = 15.0) -> None:
        """End the session politely (routes and DNS restored), stop the runner, then `finished`."""
        if self._shutting_down:
            return
        self._shutting_down = True
        self._prepared = None
        running = self._driver.supervisor.session_running
        self._act(self._driver.shutdown())
        if running:
            QTimer.singleShot(int(timeout * 1000), self._finish)  # a server that never answers
        else:
            self._finish()

    def tell(self, notice: Notice) -> None:
        """Tell the user something through the tray (for the windows, which share this path)."""
        self.notice.emit(notice)

    # -- the supervisor's decisions ----------------------------------------------------------

    def _act(self, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, Prepare):
                self._prepare(output.attempt, output.target, output.first)
            elif isinstance(output, Connected):
                self._announce_connected(output.status)
            elif isinstance(output, SessionEnded):
                self._release_session_lock()
                self._report_end(output)
            elif isinstance(output, RetryScheduled):
                self._announce_retry(output)
            elif isinstance(output, WaitingForNetwork):
                self._tell_reconnecting(_("Waiting for a network connection."))
            elif isinstance(output, Finished):
                self._release_session_lock()
                if output.user_asked and self._status.state not in (State.DISCONNECTED, State.IDLE):
                    self._set_status(Status(State.DISCONNECTED, server=self._status.server))
                if self._shutting_down:
                    self._finish()
        wakeup = self._driver.wakeup_in()
        if wakeup is None:
            self._poll_timer.stop()
        else:
            self._poll_timer.start(int(wakeup * 1000))
        self.changed.emit()

    def _announce_connected(self, status: Status) -> None:
        name = self._profile.name if self._profile else status.server
        text = _("You are on the VPN with the address {address}.").format(address=status.plan.address) if status.plan else _("You are on the VPN.")
        # Translators: notification title; {name} is the profile's name (or the server's)
        self.notice.emit(Notice(_("Connected to {name}").format(name=name), text))

    def _report_end(self, ended: SessionEnded) -> None:
        if self._profile is None or self._shutting_down:
            return
        if ended.failure is not None and ended.failure.password_refused and not ended.was_connected:
            # As Windows and NetworkManager do: ask for it again rather than send the user to the
            # editor. Asked once this attempt's outputs are carried out; the question replaces the
            # notification (the Log window has the server's sentence).
            attempt, profile = self._driver.supervisor.attempt, self._profile
            QTimer.singleShot(0, lambda: self._ask_again(attempt, profile))
            return
        text = ended.failure.reason if ended.failure is not None else ended_sentence()
        if ended.was_connected:
            # Translators: notification title; {name} is the profile's name
            self.notice.emit(Notice(_("Connection to {name} dropped").format(name=self._profile.name), text, NoticeLevel.WARNING))
        else:
            # Translators: notification title; {name} is the profile's name
            self.notice.emit(Notice(_("Could not connect to {name}").format(name=self._profile.name), text, NoticeLevel.ERROR))
        if ended.failure is not None and ended.failure.kind is FailureKind.TRUST and self._transport is not None:
            self._offer_first_contact(self._profile, self._transport)

    def _ask_again(self, attempt: int, profile: Profile) -> None:
        """The server refused the password of `attempt`: ask for it again, unless the user has
        moved on meanwhile (another attempt, or quitting)."""
        if self._shutting_down or attempt != self._driver.supervisor.attempt or self._driver.supervisor.active:
            return
        reason = _("The server refused the password for {username} on {profile}. Enter it again:").format(
            username=profile.username, profile=profile.name
        )
        self.credentials_needed.emit(CredentialsRequest(profile, True, False, reason, can_remember=self._keyring_usable, refused=True))

    def _announce_retry(self, retry: RetryScheduled) -> None:
        if retry.delay < 0.5:
            text = _("Trying again now.")
        else:
            seconds = round(retry.delay)
            text = ngettext("Trying again in {seconds} second.", "Trying again in {seconds} seconds.", seconds).format(seconds=seconds)
        why = why_sentences().get(retry.why)
        self._tell_reconnecting(f"{why} {text}" if why else text)

    def _tell_reconnecting(self, text: str) -> None:
        if self._profile is not None:
            # Translators: notification title; {name} is the profile's name
            self.notice.emit(Notice(_("Reconnecting to {name}").format(name=self._profile.name), text))

    @Slot()
    def _poll(self) -> None:
        self._act(self._driver.poll())

    # -- preparing an attempt ----------------------------------------------------------------

    def _prepare(self, attempt: int, profile: Profile, first: bool) -> None:
        if not first:  # a retry: the profile may have been edited or removed meanwhile
            try:
                stored = self.store.load().by_id(profile.id)
            except ProfileFileError:
                stored = profile
            if stored is None:
                self._act(self._driver.disconnect())  # removed: stop trying
                return
            profile = stored
        self._profile = profile
        self._prepared = None
        if not self._take_session_lock(profile):
            return
        # The worker first, the views after: a connection starts without waiting for them.
        run_in_background(
            lambda: self._read_passwords(profile), lambda result, error: self._on_prepared(attempt, profile, result, error), name="sstp-vpn-prepare"
        )
        run_in_background(lambda: self._note_last_used(profile), lambda _result, _error: None, name="sstp-vpn-last-used")
        self._set_status(Status(State.HANDSHAKE, server=profile.server))

    def _take_session_lock(self, profile: Profile) -> bool:
        """One client per profile, shared with `sstp-vpn connect` (client/session_lock.py); a
        refusal ends the attempt with the sentence naming the other process."""
        self._release_session_lock()
        try:
            # Translators: who holds a profile's session, in another program's sentence "The profile Office is already
            # connected by process 1234 (the SSTP VPN tray app); disconnect it first."
            self._session_lock = lock_profile(profile.id, profile.name, _("the SSTP VPN tray app"))
        except SessionInUse as error:
            self._fail(self._driver.supervisor.attempt, Failure(Layer.SESSION, error.sentence, FailureKind.OTHER))
            return False
        return True

    def _release_session_lock(self) -> None:
        if self._session_lock is not None:
            self._session_lock.release()
            self._session_lock = None

    def _read_passwords(self, profile: Profile) -> _Prepared:
        """Worker thread: the platform's preamble (it may repair a crashed session's network
        settings), then the passwords."""
        preparation = current.prepare_session()
        if preparation.failure is not None:
            return _Prepared(failure=preparation.failure)
        try:
            if profile.remember_password:
                password = self.secrets.get(profile.id, SecretKind.VPN)
            else:  # "ask every time": never from the keyring, and none left there (saved before the choice)
                password = None
                with contextlib.suppress(KeyringUnavailable):
                    self.secrets.delete(profile.id, SecretKind.VPN)
            proxy_password = self.secrets.get(profile.id, SecretKind.PROXY) if needs_proxy_password(profile) else None
        except KeyringUnavailable as error:
            return _Prepared(keyring_problem=error.sentence, repaired=preparation.repaired)
        return _Prepared(password, proxy_password, repaired=preparation.repaired)

    def _note_last_used(self, profile: Profile) -> None:
        """Worker thread: the profile a left click on the icon connects next time (a file write,
        so not on the way to the connection)."""
        try:
            self.store.set_last_used(profile.id)
        except ProfileFileError:
            pass  # only the left-click default is lost

    def _on_prepared(self, attempt: int, profile: Profile, prepared: _Prepared | None, error: BaseException | None) -> None:
        if attempt != self._driver.supervisor.attempt or self._driver.supervisor.phase is not Phase.PREPARING:
            return  # cancelled or replaced meanwhile
        if error is not None or prepared is None:
            self._fail(
                attempt,
                Failure(
                    Layer.APP,
                    _("SSTP VPN hit an internal error ({error_type}: {error}); please report it.").format(
                        error_type=type(error).__name__, error=error
                    ),
                    FailureKind.OTHER,
                ),
            )
            return
        if prepared.repaired:
            self._log_line(logging.INFO, _("Restored the network settings left behind by an earlier session that did not end cleanly."))
        if prepared.failure is not None:
            self._fail(attempt, prepared.failure)
            return
        self._keyring_usable = prepared.keyring_problem is None
        if self._typed is not None and self._typed[0] == profile.id:
            prepared = replace(prepared, password=self._typed[1])
            if not profile.remember_password:
                self._typed = None  # a one-time password: the next attempt asks again
        need_password = prepared.password is None
        need_proxy_password = needs_proxy_password(profile) and prepared.proxy_password is None
        if need_password or need_proxy_password:
            self._prepared = (attempt, prepared)
            if need_password and not profile.remember_password:
                reason = _("{profile} asks for the password at every connection (one-time passwords).").format(profile=profile.name)
            else:
                reason = prepared.keyring_problem or _("No password is saved for this profile.")
            self.credentials_needed.emit(
                CredentialsRequest(profile, need_password, need_proxy_password, reason, can_remember=prepared.keyring_problem is None)
            )
            return
        self._start(attempt, profile, prepared.password or "", prepared.proxy_password)

    def _start(self, attempt: int, profile: Profile, password: str, proxy_password: str | None) -> None:
        try:
            command = connect_command(profile, password, proxy_password, environ=self._environ)
        except ProfileSettingsError as error:
            self._fail(attempt, Failure(Layer.PROFILE, str(error), FailureKind.OTHER))
            return
        self._transport = command.transport
        self._act(self._driver.prepared(attempt, command))

    def _fail(self, attempt: int, failure: Failure) -> None:
        """An attempt that ended before the runner got it (settings, keyring, platform, lock);
        the Log window gets its sentence, as the runner logs the failures of its sessions."""
        self._log_line(logging.ERROR, failure.reason)
        self._set_status(Status(State.DISCONNECTED, server=self._status.server, failure=failure))
        self._act(self._driver.prepared(attempt, failure))

    def _remember(self, profile: Profile, password: str | None, proxy_password: str | None) -> None:
        def save() -> None:
            if password:
                self.secrets.set(profile.id, SecretKind.VPN, password, label=item_label(profile, SecretKind.VPN))
            if proxy_password:
                self.secrets.set(profile.id, SecretKind.PROXY, proxy_password, label=item_label(profile, SecretKind.PROXY))

        def saved(_result: object, error: BaseException | None) -> None:
            if error is not None:
                sentence = error.sentence if isinstance(error, KeyringUnavailable) else str(error)
                # Translators: notification title; the keyring's problem follows
                self.notice.emit(Notice(_("Password not saved"), sentence, NoticeLevel.WARNING))

        run_in_background(save, saved, name="sstp-vpn-keyring")

    def _offer_first_contact(self, profile: Profile, transport: TransportSettings) -> None:
        """After a trust failure: a certificate for the right name that nobody here trusts (self-signed
        or from a private CA) may be trusted; a pinned profile's server that presents another one is
        said to have changed its certificate."""
        attempt = self._driver.supervisor.attempt

        def offered(certificate: PresentedCertificate | None, error: BaseException | None) -> None:
            if error is not None or certificate is None or attempt != self._driver.supervisor.attempt or self._shutting_down:
                return  # unreachable now, or the user moved on: the failure sentence stands
            changed = certificate_change(profile, certificate)
            if certificate.can_be_pinned and (changed is not None or not profile.pin_sha256):
                self.pin_offered.emit(PinOffer(profile, certificate, changed))

        run_in_background(lambda: fetch_presented_certificate(transport), offered, name="sstp-vpn-first-contact")

    # -- what the runner and the route watcher report ----------------------------------------

    @Slot(object)
    def _on_posted(self, item: object) -> None:
        if isinstance(item, PasswordRetry):
            self._ask_retry_password(item.reason)
            return
        if isinstance(item, Status):
            self._status = item
        self._act(self._driver.deliver(item))

    def _ask_retry_password(self, reason: str) -> None:
        """The server refused the password but lets the user try another (MS-CHAPv2 R=1): ask,
        while the runner waits; the answer goes back through provide/cancel_credentials."""
        if self._profile is None:
            self._driver.retry_password(None)
            return
        self.credentials_needed.emit(CredentialsRequest(self._profile, True, False, reason, can_remember=self._keyring_usable, retry=True))

    @Slot(object)
    def _on_log_entry(self, entry: LogEntry) -> None:
        entry = replace(entry, message=in_gui_words(entry.message))  # the editor's fields, not flags
        self.log_entries.append(entry)
        self.recent_log.append(LogRecord(entry.level, entry.message), at=entry.time)
        self.log.emit(entry)

    # -- ending ------------------------------------------------------------------------------

    @Slot()
    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self._release_session_lock()
        if self._driver.supervisor.session_running:
            self._log_line(logging.WARNING, _("The session did not end in time; quitting anyway (the next start restores the network)."))
        runner = self._driver.runner
        self._driver.close()
        if runner is None:
            self.finished.emit()
            return
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
        self._on_log_entry(LogEntry(time.time(), level, message))
