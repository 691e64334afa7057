"""sstp-vpn-helper.exe on Windows: the SSTP VPN network service (LocalSystem), the shape of
wireguard-windows' manager service. It owns what needs administrator rights — the Wintun adapter,
its addresses, routes and DNS — so that the tray app and the CLI run as the signed-in user.

UNTESTED ON WINDOWS: written from the Win32 documentation; it runs under Wine 8 (tests/windows:
the installer registers it, it starts, and the pipe's protocol round-trips), where the adapter
itself cannot be made. Nothing here has run on a real Windows system yet.

How a session goes:
- The app connects to the control pipe (winpipe.CONTROL_PIPE_NAME, message mode). Its DACL
  admits SYSTEM and the allowed group only (default BUILTIN\\Users: every local user, as
  Windows' own VPN lets every user dial); on top of that the service reads the client's token
  and serves it only when it holds the Interactive SID and the group (a service or a network
  logon of a group member is refused). At most MAX_SESSIONS_PER_USER sessions per user and
  MAX_SESSIONS in all.
- Then exactly the Linux helper's conversation (helper_conversation, helper_protocol): the same
  requests, the same checks, the same session rules; its network configurator is
  netconfig_windows', journaled in the service's own folder under %ProgramData%.
- Wintun's packet rings live in the process that opened the session and cannot be handed on,
  so the reply to "open" names a packet pipe made for this session only (a random name, its
  DACL admitting this user's SID, one instance, and only the process that asked for it may use
  it); packet_relay carries the packets between it and the adapter.
- When the control pipe closes (the app disconnects, crashes or is killed) the session restores
  the network and removes the adapter. When the service stops, every session does so first. At
  start it repairs what a service that died left (journal_replay).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import logging
import logging.handlers
import secrets
import sys
import threading
import weakref
from collections.abc import Callable
from ctypes import POINTER, Structure, byref, c_uint32, c_void_p, c_wchar_p
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sstpvpn.client.core.i18n import _, ngettext
from sstpvpn.platform import helper_protocol as protocol
from sstpvpn.platform import kill_switch_windows, winapi, winpipe
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.helper_conversation import IDLE_SECONDS, HelperSession, TunnelDevice, refuse
from sstpvpn.platform.helper_protocol import Reply, RequestRefused
from sstpvpn.platform.interfaces import TunDevice
from sstpvpn.platform.kill_switch import KillSwitchRules
from sstpvpn.platform.packet_relay import TunnelRelay

log = logging.getLogger("sstp-vpn-helper")

SERVICE_NAME = "SstpVpnHelper"  # installer/windows/sstp-vpn.iss registers it under this name
DEFAULT_ADAPTER_NAME = "SSTP VPN"  # tun_windows.DEFAULT_ADAPTER_NAME: the service names adapters itself
MAX_SESSIONS_PER_USER = 4  # a tray app and a CLI with a reconnect in flight need 2-3
MAX_SESSIONS = 64
RELAY_CONNECT_SECONDS = 10.0  # the app opens its packet pipe right after the reply to "open"
STOP_SECONDS = 15.0  # each session restores its network before the service stops
ACCEPT_POLL_SECONDS = 0.5
# The service's own folder: journal and log. Protected DACL: SYSTEM and Administrators only, so
# no user can plant a file or a link where the service writes as SYSTEM.
STATE_FOLDER_SDDL = "O:SYD:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
ADMINISTRATORS_SID = "S-1-5-32-544"


# -- who may use the service ----------------------------------------------------------------


@dataclass(frozen=True)
class WindowsPeer:
    """The client process, as its token told the service."""

    process_id: int
    user_sid: str

    def __str__(self) -> str:
        return f"{self.user_sid} (pid {self.process_id})"


def authorization_problem(identity: winpipe.ClientIdentity, group_sid: str) -> str | None:
    """None when this client may use the service; else the sentence it is refused with."""
    if not identity.interactive:
        return _(
            "The SSTP VPN network service serves only users signed in at this computer; "
            "start SSTP VPN from your desktop session (not from a service or a remote shell)."
        )
    if not identity.in_group:
        return _(
            "Your account may not use the SSTP VPN network service: it serves the group {group}. "
            "Ask an administrator to add you to that group, or to change the group (installer/windows/README.md)."
        ).format(group=group_sid)
    return None


class SessionSlots:
    """How many sessions each user has; refuses beyond the limits."""

    def __init__(self, per_user: int = MAX_SESSIONS_PER_USER, total: int = MAX_SESSIONS) -> None:
        self.per_user, self.total = per_user, total
        self._count: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, user_sid: str) -> str | None:
        """None and a slot taken, or the sentence why not."""
        with self._lock:
            if sum(self._count.values()) >= self.total:
                return _("The SSTP VPN network service is serving as many connections as it may; try again later.")
            if self._count.get(user_sid, 0) >= self.per_user:
                return ngettext(
                    "You have {count} connection to the SSTP VPN network service already, the most one user "
                    "may have; disconnect it (or end the program that holds it), then connect again.",
                    "You have {count} connections to the SSTP VPN network service already, the most one user "
                    "may have; disconnect one (or end the program that holds it), then connect again.",
                    self.per_user,
                ).format(count=self.per_user)
            self._count[user_sid] = self._count.get(user_sid, 0) + 1
            return None

    def give_back(self, user_sid: str) -> None:
        with self._lock:
            self._count[user_sid] -= 1
            if not self._count[user_sid]:
                del self._count[user_sid]


# -- one session ------------------------------------------------------------------------------


class PipeChannel:
    """A control-pipe connection as a helper_conversation.Channel: one request or reply per
    pipe message; no descriptors cross a pipe. The first request is read before the session
    starts (the service may look at the client's token only once the client has sent something)
    and is the first the session gets."""

    def __init__(self, stream: winpipe.PipeStream) -> None:
        self.stream = stream
        self._read_ahead: list[bytes] = []

    def read_ahead(self, timeout: float) -> bool:
        """Read the first request now; False when the client closed first. TimeoutError when it
        sent nothing within `timeout`."""
        received = self.receive(0, timeout)
        if received is None:
            return False
        self._read_ahead.append(received[0])
        return True

    def receive(self, max_handles: int, timeout: float | None) -> tuple[bytes, list[int]] | None:
        if self._read_ahead:
            return self._read_ahead.pop(0), []
        try:
            data = self.stream.read(protocol.MAX_MESSAGE_BYTES + 1, timeout)  # longer: cut, and refused by the parser
        except TimeoutError:
            raise
        except OSError:
            return None
        return (data, []) if data else None

    def send(self, data: bytes, handles: object) -> None:
        try:
            self.stream.write(data)
        except OSError:
            pass  # the client is gone; the next receive sees the end and the session ends


class RelayedTunnel:
    """The session's tunnel: a Wintun adapter, and the packet pipe through which the app that
    asked for it sends and receives its packets (packet_relay)."""

    def __init__(self, device: TunDevice, listener: Any, token: str, client: WindowsPeer) -> None:
        self.device, self.name, self.relay_token = device, device.name, token
        self._listener, self._client = listener, client
        self._relay: TunnelRelay | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._waiter = threading.Thread(target=self._accept_client, name=f"packet pipe of {client}", daemon=True)
        self._waiter.start()

    @classmethod
    def open(
        cls,
        requested: str | None,
        client: WindowsPeer,
        create_device: Callable[[str], TunDevice],
        listen: Callable[..., Any] = winpipe.PipeListener,
    ) -> RelayedTunnel:
        if requested not in (None, DEFAULT_ADAPTER_NAME):
            raise RequestRefused(
                _("The SSTP VPN network service names its adapter {adapter} itself; {requested} cannot be asked for.").format(
                    adapter=repr(DEFAULT_ADAPTER_NAME), requested=repr(requested[:40])
                )
            )
        device = create_device(DEFAULT_ADAPTER_NAME)
        try:
            token = secrets.token_hex(16)
            listener = listen(winpipe.relay_pipe_name(token), winpipe.relay_pipe_sddl(client.user_sid), message_mode=False, max_instances=1)
        except BaseException:
            device.close()
            raise
        return cls(device, listener, token, client)

    def set_mtu(self, mtu: int) -> None:
        self.device.set_mtu(mtu)

    def close(self) -> None:
        """End the relay and remove the adapter (the session calls this once, last)."""
        self._closed.set()
        self._listener.close()
        self._waiter.join(RELAY_CONNECT_SECONDS + 5)
        with self._lock:
            relay, self._relay = self._relay, None
        if relay is not None:
            relay.stop()
        self.device.close()

    def _accept_client(self) -> None:
        stream = self._listener.accept(RELAY_CONNECT_SECONDS)
        self._listener.close()  # one connection, ever
        if stream is None:
            if not self._closed.is_set():
                log.warning(
                    "%s: did not open its packet pipe within %.0f s",  # not translated: the service's own log, for administrators
                    self._client,
                    RELAY_CONNECT_SECONDS,
                )
            return
        try:
            process_id = stream.client_process_id()
        except OSError:
            process_id = -1
        if process_id != self._client.process_id:
            # The DACL admits the user's SID; only the very process that asked gets the packets.
            log.warning(
                "%s: process %s opened its packet pipe instead; closed",  # not translated: the service's own log, for administrators
                self._client,
                process_id,
            )
            stream.close()
            return
        relay = TunnelRelay(self.device, stream, lambda problem: self._relay_ended(problem))
        with self._lock:
            if self._closed.is_set():
                stream.close()
                return
            self._relay = relay
        relay.start()

    def _relay_ended(self, problem: str | None) -> None:
        if problem is not None:
            log.warning(
                "%s: the packet relay of %s ended: %s",  # not translated: the service's own log, for administrators
                self._client,
                self.name,
                problem,
            )


def open_reply(tun: TunnelDevice) -> tuple[Reply, int | None]:
    """The reply to "open": the adapter's name and the token naming its packet pipe."""
    assert isinstance(tun, RelayedTunnel)
    return Reply(True, ifname=tun.name, relay=tun.relay_token), None


class SessionKillSwitch:
    """A session's kill switch (kill_switch_windows: WFP filters in a dynamic session, gone with
    the service process), letting through no adapter but the one the service names itself.
    `refresh` sets the rules in place again, for a new adapter's LUID."""

    def __init__(self, make: Callable[[], Any] = kill_switch_windows.WindowsKillSwitch) -> None:
        self.wfp = make()
        self.rules: KillSwitchRules | None = None  # in place now
        self._lock = threading.Lock()  # the session's thread, and the one of a session opening an adapter

    def set(self, rules: KillSwitchRules) -> None:
        for name in rules.tunnels:
            if name != DEFAULT_ADAPTER_NAME:
                raise RequestRefused(
                    _("The SSTP VPN network service names its adapter {adapter} itself; {requested} cannot be asked for.").format(
                        adapter=repr(DEFAULT_ADAPTER_NAME), requested=repr(name[:40])
                    )
                )
        with self._lock:
            self.wfp.set(rules)
            self.rules = rules

    def remove(self) -> None:
        with self._lock:
            self.wfp.remove()
            self.rules = None

    def refresh(self) -> None:
        with self._lock:
            if self.rules is not None and self.rules.tunnels:
                self.wfp.set(self.rules)


@dataclass
class Service:
    """Accepts control-pipe clients and serves each in a thread until stop() is called."""

    group_sid: str
    journal_path: Path
    create_device: Callable[[str], TunDevice]
    make_configurator: Callable[..., Any]
    listen: Callable[..., Any] = winpipe.PipeListener
    make_kill_switch: Callable[[], Any] | None = SessionKillSwitch
    slots: SessionSlots = field(default_factory=SessionSlots)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _sessions: dict[threading.Thread, winpipe.PipeStream] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listener: Any = None
    _kill_switches: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)  # the sessions' kill switches

    def run(self) -> None:
        """Serve until stop(); then end every session (each restores its network) and return."""
        self._listener = self.listen(winpipe.CONTROL_PIPE_NAME, winpipe.control_pipe_sddl(self.group_sid), message_mode=True)
        log.info("listening on %s for interactive members of %s", winpipe.CONTROL_PIPE_NAME, self.group_sid)
        try:
            while not self._stopping.is_set():
                stream = self._listener.accept(ACCEPT_POLL_SECONDS)
                if stream is None:
                    continue
                thread = threading.Thread(target=self._serve, args=(stream,), name="session", daemon=True)
                with self._lock:
                    self._sessions[thread] = stream
                thread.start()
        finally:
            self._listener.close()
            self._end_sessions()

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            self._listener.close()

    def _serve(self, stream: winpipe.PipeStream) -> None:
        channel = PipeChannel(stream)
        try:
            try:
                if not channel.read_ahead(IDLE_SECONDS):
                    return
                identity = stream.client_identity(self.group_sid)
            except TimeoutError:
                log.warning("a client sent nothing within %.0f s; closed", IDLE_SECONDS)  # not translated: the service's own log, for administrators
                return
            except OSError as error:
                refuse(
                    channel,
                    "an unknown client",  # not translated: who, for the service's log
                    _("The SSTP VPN network service cannot tell who connected ({error}); connect again.").format(error=error),
                )
                return
            peer = WindowsPeer(identity.process_id, identity.user_sid)
            problem = authorization_problem(identity, self.group_sid) or self.slots.take(identity.user_sid)
            if problem is not None:
                refuse(channel, peer, problem)
                return
            try:
                log.info("%s: session started", peer)
                HelperSession(
                    channel,
                    peer,
                    self.journal_path,
                    lambda requested: self._open_tunnel(requested, peer),
                    self.make_configurator,
                    open_reply=open_reply,
                    kill_switch_factory=self._make_kill_switch if self.make_kill_switch is not None else None,
                ).serve()
                log.info("%s: session ended", peer)
            finally:
                self.slots.give_back(identity.user_sid)
        except Exception:
            log.exception("a session failed")
        finally:
            stream.close()
            with self._lock:
                self._sessions.pop(threading.current_thread(), None)

    def _open_tunnel(self, requested: str | None, peer: WindowsPeer) -> RelayedTunnel:
        tunnel = RelayedTunnel.open(requested, peer, self.create_device, self.listen)
        self.refresh_kill_switches()
        return tunnel

    def _make_kill_switch(self) -> Any:
        assert self.make_kill_switch is not None
        switch = self.make_kill_switch()
        with self._lock:
            self._kill_switches.add(switch)
        return switch

    def refresh_kill_switches(self) -> None:
        """A new adapter may have a new LUID: every kill switch in place lets the adapter of its
        rules through again (kill_switch_windows looks the LUID up at each set)."""
        with self._lock:
            switches = list(self._kill_switches)
        for switch in switches:
            try:
                switch.refresh()
            except PlatformError as error:
                log.error("kill switch: the new adapter could not be let through: %s", error.sentence)  # not translated: the service's log

    def _end_sessions(self) -> None:
        with self._lock:
            sessions = dict(self._sessions)
        for stream in sessions.values():
            stream.close()  # the session sees the end, restores its network and removes its adapter
        for thread in sessions:
            thread.join(STOP_SECONDS)


# -- the Service Control Manager --------------------------------------------------------------

SERVICE_WIN32_OWN_PROCESS = 0x10
SERVICE_STOPPED, SERVICE_START_PENDING, SERVICE_STOP_PENDING, SERVICE_RUNNING = 1, 2, 3, 4
SERVICE_CONTROL_STOP, SERVICE_CONTROL_INTERROGATE, SERVICE_CONTROL_SHUTDOWN = 1, 4, 5
SERVICE_ACCEPT_STOP, SERVICE_ACCEPT_SHUTDOWN = 0x1, 0x4
ERROR_FAILED_SERVICE_CONTROLLER_CONNECT = 1063  # not started by the SCM (e.g. from a prompt)
ERROR_CALL_NOT_IMPLEMENTED = 120
NO_ERROR = 0
ERROR_SERVICE_SPECIFIC_ERROR = 1066


class SERVICE_STATUS(Structure):
    _fields_ = [
        ("dwServiceType", c_uint32),
        ("dwCurrentState", c_uint32),
        ("dwControlsAccepted", c_uint32),
        ("dwWin32ExitCode", c_uint32),
        ("dwServiceSpecificExitCode", c_uint32),
        ("dwCheckPoint", c_uint32),
        ("dwWaitHint", c_uint32),
    ]


@functools.cache  # one set of types: the prototypes and the table must use the same classes
def _service_types() -> tuple[Any, Any, Any]:
    functype: Any = getattr(ctypes, "WINFUNCTYPE")  # noqa: B009 - Windows only; importing this module works everywhere
    handler = functype(c_uint32, c_uint32, c_uint32, c_void_p, c_void_p)  # LPHANDLER_FUNCTION_EX
    service_main = functype(None, c_uint32, POINTER(c_wchar_p))  # LPSERVICE_MAIN_FUNCTIONW

    class SERVICE_TABLE_ENTRYW(Structure):
        _fields_ = [("lpServiceName", c_wchar_p), ("lpServiceProc", service_main)]

    return handler, service_main, SERVICE_TABLE_ENTRYW


def service_prototypes() -> dict[str, winapi.Prototype]:
    handler, _main, entry = _service_types()
    return {
        "StartServiceCtrlDispatcherW": (ctypes.c_int, [POINTER(entry)]),
        "RegisterServiceCtrlHandlerExW": (c_void_p, [c_wchar_p, handler, c_void_p]),
        "SetServiceStatus": (ctypes.c_int, [c_void_p, POINTER(SERVICE_STATUS)]),
    }


def advapi32() -> winapi.Library:
    return winapi.load(winapi.system32_path("advapi32.dll"), service_prototypes())


class ServiceControl:
    """Runs `serve` as the service SERVICE_NAME: reports start and stop to the SCM and turns its
    stop/shutdown control into `stop()`. Returns False when this process was not started by the
    SCM (the caller explains); the callbacks must outlive the dispatcher, hence the attributes."""

    def __init__(self, serve: Callable[[], int], stop: Callable[[], None], library: winapi.Library | None = None) -> None:
        self.serve, self.stop = serve, stop
        self.library = advapi32() if library is None else library
        self.handle: Any = None
        self.exit_code = 0
        self._checkpoint = 0
        handler_type, main_type, self._entry_type = _service_types()
        self._handler = handler_type(self._control)
        self._main = main_type(self._service_main)

    def dispatch(self) -> bool:
        end_of_table = self._entry_type(None, type(self._main)())  # a NULL entry ends the table
        table = (self._entry_type * 2)(self._entry_type(SERVICE_NAME, self._main), end_of_table)
        if self.library.StartServiceCtrlDispatcherW(table):
            return True
        if self.library.last_error() == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT:
            return False
        raise PlatformError(
            _("The service control manager refused SSTP VPN's service ({reason}).").format(reason=winapi.describe_error(self.library.last_error()))
        )

    def report(self, state: int, wait_hint_ms: int = 0) -> None:
        accepted = SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN if state == SERVICE_RUNNING else 0
        self._checkpoint = 0 if state in (SERVICE_RUNNING, SERVICE_STOPPED) else self._checkpoint + 1
        exit_code = ERROR_SERVICE_SPECIFIC_ERROR if state == SERVICE_STOPPED and self.exit_code else NO_ERROR
        status = SERVICE_STATUS(SERVICE_WIN32_OWN_PROCESS, state, accepted, exit_code, self.exit_code, self._checkpoint, wait_hint_ms)
        self.library.SetServiceStatus(self.handle, byref(status))

    def _service_main(self, _argc: int, _argv: Any) -> None:
        self.handle = self.library.RegisterServiceCtrlHandlerExW(SERVICE_NAME, self._handler, None)
        if not self.handle:
            log.error("Could not register with the service control manager (%s).", winapi.describe_error(self.library.last_error()))
            return
        self.report(SERVICE_START_PENDING, 5000)
        try:
            self.exit_code = self.serve()
        except Exception:
            log.exception("the service failed")
            self.exit_code = 1
        finally:
            self.report(SERVICE_STOPPED)

    def _control(self, control: int, _event_type: int, _event_data: Any, _context: Any) -> int:
        if control in (SERVICE_CONTROL_STOP, SERVICE_CONTROL_SHUTDOWN):
            self.report(SERVICE_STOP_PENDING, int(STOP_SECONDS * 1000) + 5000)
            self.stop()
            return NO_ERROR
        if control == SERVICE_CONTROL_INTERROGATE:
            return NO_ERROR
        return ERROR_CALL_NOT_IMPLEMENTED


# -- start-up -----------------------------------------------------------------------------------


FOLDER_SECURITY_PROTOTYPES: dict[str, winapi.Prototype] = {
    # (name, SE_OBJECT_TYPE, SECURITY_INFORMATION, *owner, *group, *dacl, *sacl, *descriptor) -> error code
    "GetNamedSecurityInfoW": (c_uint32, [c_wchar_p, c_uint32, c_uint32, POINTER(c_void_p), c_void_p, c_void_p, c_void_p, POINTER(c_void_p)]),
}
FOLDER_PROTOTYPES: dict[str, winapi.Prototype] = {
    "CreateDirectoryW": (ctypes.c_int, [c_wchar_p, c_void_p]),
    "LocalFree": (c_void_p, [c_void_p]),
}
SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION = 1, 1


def prepare_state_folder(folder: Path) -> None:
    """Create the service's folder with its protected DACL, or check that the one there is owned
    by SYSTEM or the Administrators (a folder a user made first is not trusted). Wine ignores the
    descriptor (the folder gets Wine's user as owner and a default DACL): judged on Windows only."""
    advapi = winapi.load(winapi.system32_path("advapi32.dll"), FOLDER_SECURITY_PROTOTYPES)
    kernel = winapi.load(winapi.system32_path("kernel32.dll"), FOLDER_PROTOTYPES)
    folder.parent.mkdir(parents=True, exist_ok=True)
    if not folder.exists():
        security = winpipe.SecurityDescriptor(STATE_FOLDER_SDDL)
        try:
            if not kernel.CreateDirectoryW(str(folder), security.address()):
                raise PlatformError(
                    _("Could not create {folder} ({reason}).").format(folder=folder, reason=winapi.describe_error(kernel.last_error()))
                )
        finally:
            security.free()
    owner, descriptor = c_void_p(), c_void_p()
    code = advapi.GetNamedSecurityInfoW(str(folder), SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, byref(owner), None, None, None, byref(descriptor))
    if code != NO_ERROR:
        raise PlatformError(_("Could not read who owns {folder} ({reason}).").format(folder=folder, reason=winapi.describe_error(code)))
    try:
        sid = winpipe.sid_string(owner.value)  # the owner points into the descriptor: read it first
    finally:
        kernel.LocalFree(descriptor)
    # SYSTEM (the service itself; under Wine, Wine's one user) or the Administrators.
    if sid not in (winpipe.process_user_sid(), ADMINISTRATORS_SID):
        raise PlatformError(
            _(
                "{folder} belongs to {owner}, not to SYSTEM or the Administrators; an administrator must delete it, then start the service again."
            ).format(folder=folder, owner=sid)
        )


def _log_to(folder: Path) -> None:
    handler = logging.handlers.RotatingFileHandler(folder / "service.log", maxBytes=1_000_000, backupCount=2, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sstp-vpn-helper",
        description=_(
            "The SSTP VPN network service ({service}): creates the Wintun adapter and sets routes and DNS for the "
            "SSTP VPN app running as an ordinary user. Windows starts it; `sc start SstpVpnHelper` as administrator."
        ).format(service=SERVICE_NAME),
    )
    parser.add_argument(
        "--group",
        default=winpipe.USERS_SID,
        help=_("the SID of the group whose interactive members may use the service (default {sid}, BUILTIN\\Users)").format(sid=winpipe.USERS_SID),
    )
    args = parser.parse_args(argv)
    try:
        group_sid = winpipe.check_sid(args.group)
    except PlatformError as error:
        parser.error(error.sentence)
    from sstpvpn.platform import netconfig_windows, tun_windows  # Windows only; loads no DLL yet

    journal_path = netconfig_windows.default_journal_path()
    folder = journal_path.parent
    service = Service(group_sid, journal_path, tun_windows.TunDevice.open, netconfig_windows.NetConfigurator)

    def serve() -> int:
        try:
            prepare_state_folder(folder)
            _log_to(folder)
        except PlatformError as error:
            log.error("%s", error.sentence)
            return 1
        try:
            if netconfig_windows.repair_from_journal(service.journal_path):
                log.info("restored what a session of a service that ended unexpectedly had changed")
        except PlatformError as error:  # the journal keeps the rest; each session's apply() tries again
            log.error("%s", error.sentence)
        control.report(SERVICE_RUNNING)
        service.run()
        return 0

    control = ServiceControl(serve, service.stop)
    if control.dispatch():
        return control.exit_code
    print(
        _(
            "sstp-vpn-helper is the SSTP VPN network service ({service}); Windows starts it. "
            "To start it by hand, run `sc start {service}` as administrator."
        ).format(service=SERVICE_NAME),
        file=sys.stderr,
    )
    return 2
