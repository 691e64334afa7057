"""The sign-in check of `diagnose` and the editor's Test: one SSTP connection that authenticates
and disconnects cleanly before IPCP (`EngineSettings.authenticate_only`).

It opens the TLS connection as a session does (`transport.open_connection`) and drives the engine
with a plain blocking loop on this thread. It never opens a tunnel device and never touches
routes or DNS: it does not import `sstpvpn.platform` at all. The password stays in the engine's
settings; nothing here logs or prints it.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, replace

from .core.engine import Engine, EngineSettings
from .core.events import Disconnected, LogRecord, PasswordRetryRequested, SignedIn
from .core.i18n import _
from .core.types import Failure, FailureKind, Layer
from .transport import TransportError, TransportSettings, open_connection

READ_SIZE = 64 * 1024
FINAL_FLUSH_SECONDS = 2.0


@dataclass(frozen=True)
class SignInResult:
    signed_in: SignedIn | None  # set when the server accepted the credentials
    failure: Failure | None  # why not, when it did not
    log: tuple[str, ...] = ()  # the engine's messages, for a detail view (never the password)

    @property
    def sentence(self) -> str:
        if self.signed_in is not None:
            return _("Signed in as {user} with {method}; disconnected before any network change.").format(
                user=self.signed_in.username, method=self.signed_in.method
            )
        assert self.failure is not None
        return self.failure.reason


def sign_in(transport: TransportSettings, engine_settings: EngineSettings) -> SignInResult:
    """Authenticate with `engine_settings`' credentials over a new connection, then disconnect."""
    try:
        connection = open_connection(transport)
    except TransportError as error:
        return SignInResult(None, error.failure)
    proxy = transport.proxy
    settings = replace(engine_settings, authenticate_only=True, dhcp_inform=False, proxy=f"{proxy.host}:{proxy.port}" if proxy else "")
    engine = Engine(settings)
    sock = connection.sock
    signed_in: SignedIn | None = None
    failure: Failure | None = None
    log: list[str] = []
    try:
        engine.set_peer_certificate(connection.peer_certificate_der)
        engine.connect(time.monotonic())
        finished = False
        while not finished:
            data = engine.data_to_send()
            if data:
                try:
                    sock.settimeout(transport.timeout)
                    sock.sendall(data)
                except (OSError, ssl.SSLError):
                    engine.connection_lost(time.monotonic())
            handled = False
            while (event := engine.next_event()) is not None:
                handled = True
                if isinstance(event, LogRecord):
                    log.append(event.message)
                elif isinstance(event, SignedIn):
                    signed_in = event
                elif isinstance(event, PasswordRetryRequested):
                    engine.retry_password(None, time.monotonic())  # a check, not a prompt: the refusal stands
                elif isinstance(event, Disconnected):
                    failure = event.failure
                    finished = True
            if finished:
                break
            if handled:
                continue  # an answer to an event (retry_password) may have output to send first
            deadline = engine.get_timer()
            wait = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                sock.settimeout(max(0.01, min(wait, 1.0)))
                chunk = sock.recv(READ_SIZE)
            except (TimeoutError, ssl.SSLWantReadError):
                chunk = None
            except (OSError, ssl.SSLError):
                engine.connection_lost(time.monotonic())
                continue
            now = time.monotonic()
            if chunk == b"":
                engine.connection_lost(now)
            elif chunk:
                engine.receive_stream_data(chunk, now)
            deadline = engine.get_timer()
            if deadline is not None and time.monotonic() >= deadline:
                engine.handle_timer(time.monotonic())
        last = engine.data_to_send()  # e.g. the Call Disconnect Ack
        if last:
            try:
                sock.settimeout(FINAL_FLUSH_SECONDS)
                sock.sendall(last)
            except (OSError, ssl.SSLError):
                pass
    finally:
        try:
            sock.close()
        except OSError:
            pass
    if signed_in is not None:
        return SignInResult(signed_in, None, tuple(log))
    if failure is None:  # ended cleanly without signing in: cannot happen unless the server hung up politely
        failure = Failure(
            Layer.AUTH, _("The server {server} ended the call before the sign-in finished.").format(server=transport.server), FailureKind.PROTOCOL
        )
    return SignInResult(None, failure, tuple(log))
