"""The Windows network service's logic, on Linux: who it serves, its session limits, the session
over the control pipe (the same conversation as the Linux helper) and the packet pipe that only
the asking process may open. The pipes, the adapter and the configurator are stand-ins that
record what they were asked; the real pipes run under Wine (tests/windows/test_service.py)."""

from __future__ import annotations

import ctypes
import json
import queue
import re
import threading
from dataclasses import dataclass, field

import pytest

from sstpvpn.platform import helper_protocol as protocol
from sstpvpn.platform import helper_windows, winpipe
from sstpvpn.platform.helper_windows import Service, SessionSlots, authorization_problem
from sstpvpn.platform.winpipe import ClientIdentity

USER = "S-1-5-21-1004336348-1177238915-682003330-1001"
OTHER_USER = "S-1-5-21-1004336348-1177238915-682003330-1002"
OPEN = json.dumps({"version": 1, "request": "open", "ifname": None}).encode()
APPLY = json.dumps(
    {
        "version": 1,
        "request": "apply",
        "ifname": "SSTP VPN",
        "server": "198.18.20.1",
        "full_tunnel": True,
        "extra_routes": [],
        "use_vpn_dns": True,
        "plan": {"address": "198.18.30.10", "peer": "198.18.30.1", "dns": ["198.18.30.1"], "mtu": 1400, "ipv6_identifier": None},
    }
).encode()


class FakeStream:
    """One pipe end: what the client sends is queued; what the service writes is recorded."""

    def __init__(self, identity: ClientIdentity | None = None, messages: list[bytes] | None = None) -> None:
        self.identity = identity
        self.incoming: queue.Queue[bytes] = queue.Queue()
        for message in messages or []:
            self.incoming.put(message)
        self.written: list[bytes] = []
        self.replied = threading.Event()
        self.closed = False

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            data = self.incoming.get(timeout=timeout if timeout is not None else 30)
        except queue.Empty:
            raise TimeoutError from None
        return data[:max_bytes]

    def write(self, data: bytes) -> None:
        if self.closed:
            raise BrokenPipeError
        self.written.append(data)
        self.replied.set()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.incoming.put(b"")  # a blocked read returns the end

    def client_identity(self, group_sid: str) -> ClientIdentity:
        assert self.identity is not None
        return self.identity

    def client_process_id(self) -> int:
        assert self.identity is not None
        return self.identity.process_id

    def replies(self) -> list[protocol.Reply]:
        return [protocol.parse_reply(data) for data in self.written]


@dataclass
class FakeListener:
    name: str
    sddl: str
    message_mode: bool
    max_instances: int = 255
    waiting: queue.Queue = field(default_factory=queue.Queue)
    closed: bool = False

    def accept(self, timeout: float | None = None) -> FakeStream | None:
        if self.closed:
            return None
        try:
            stream = self.waiting.get(timeout=timeout)
        except queue.Empty:
            return None
        return stream

    def close(self) -> None:
        self.closed = True
        self.waiting.put(None)


class Listeners:
    def __init__(self) -> None:
        self.made: list[FakeListener] = []

    def __call__(self, name: str, sddl: str, *, message_mode: bool, max_instances: int = 255) -> FakeListener:
        listener = FakeListener(name, sddl, message_mode, max_instances)
        self.made.append(listener)
        return listener

    def relay(self) -> FakeListener:
        [relay] = [listener for listener in self.made if listener.name.startswith(winpipe.RELAY_PIPE_PREFIX)]
        return relay


class FakeDevice:
    def __init__(self, name: str) -> None:
        self.name = name
        self.mtus: list[int] = []
        self.closed = False
        self.dropped_packets = 0

    def set_mtu(self, mtu: int) -> None:
        self.mtus.append(mtu)

    def close(self) -> None:
        self.closed = True


class FakeConfigurator:
    made: list[FakeConfigurator] = []

    def __init__(self, ifname, server, *, full_tunnel, extra_routes, use_vpn_dns, journal_path) -> None:
        self.ifname, self.journal_path = ifname, journal_path
        self.applied: list[object] = []
        self.restored = 0
        FakeConfigurator.made.append(self)

    def apply(self, plan) -> None:
        self.applied.append(plan)

    def add_pushed(self, pushed) -> list[str]:
        return []

    def restore(self) -> list[str]:
        self.restored += 1
        return []


def identity(interactive: bool = True, in_group: bool = True, user: str = USER, pid: int = 4242) -> ClientIdentity:
    return ClientIdentity(process_id=pid, user_sid=user, interactive=interactive, in_group=in_group)


def start_service(tmp_path) -> tuple[Service, threading.Thread]:
    FakeConfigurator.made = []
    devices: list[FakeDevice] = []
    listeners = Listeners()

    def create_device(name: str) -> FakeDevice:
        devices.append(FakeDevice(name))
        return devices[-1]

    service = Service(winpipe.USERS_SID, tmp_path / "journal.json", create_device, FakeConfigurator, listen=listeners)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    service.devices, service.listeners = devices, listeners
    return service, thread


@pytest.fixture
def service(tmp_path):
    service, thread = start_service(tmp_path)
    yield service
    service.stop()
    thread.join(10)
    assert not thread.is_alive()


def connect(service, stream: FakeStream) -> FakeStream:
    while not service.listeners.made:
        threading.Event().wait(0.01)
    service.listeners.made[0].waiting.put(stream)
    return stream


def wait_for_replies(stream: FakeStream, count: int) -> list[protocol.Reply]:
    for _ in range(500):
        if len(stream.written) >= count:
            return stream.replies()
        threading.Event().wait(0.01)
    raise AssertionError(f"{len(stream.written)} replies, expected {count}")


def test_the_control_pipe_admits_the_group_and_never_lets_a_client_create_an_instance(service):
    connect(service, FakeStream(identity(), [OPEN]))
    control = service.listeners.made[0]
    assert control.name == winpipe.CONTROL_PIPE_NAME and control.message_mode
    assert control.sddl == winpipe.control_pipe_sddl(winpipe.USERS_SID)


def test_a_session_opens_the_adapter_with_a_packet_pipe_for_that_user_only_then_restores_and_removes_it(service, tmp_path):
    stream = connect(service, FakeStream(identity(), [OPEN]))
    [reply] = wait_for_replies(stream, 1)
    assert reply.ok and reply.ifname == "SSTP VPN" and re.fullmatch(r"[0-9a-f]{32}", reply.relay)
    relay = service.listeners.relay()
    assert relay.name == winpipe.relay_pipe_name(reply.relay)
    assert relay.sddl == winpipe.relay_pipe_sddl(USER) and not relay.message_mode and relay.max_instances == 1
    stream.incoming.put(APPLY)
    wait_for_replies(stream, 2)
    [configurator] = FakeConfigurator.made
    assert configurator.ifname == "SSTP VPN" and configurator.journal_path == tmp_path / "journal.json" and configurator.applied
    [device] = service.devices
    assert not device.closed
    stream.close()  # the app went away
    for _ in range(500):
        if device.closed:
            break
        threading.Event().wait(0.01)
    assert device.closed and configurator.restored == 1 and relay.closed


@pytest.mark.parametrize(
    "who, sentence",
    [(identity(interactive=False), "only users signed in at this computer"), (identity(in_group=False), "serves the group S-1-5-32-545")],
)
def test_who_may_not_use_the_service_is_told_why_and_gets_nothing(service, who, sentence):
    stream = connect(service, FakeStream(who, [OPEN]))
    [reply] = wait_for_replies(stream, 1)
    assert not reply.ok and sentence in reply.error
    assert not service.devices


def test_the_adapter_name_is_the_services_choice(service):
    request = json.dumps({"version": 1, "request": "open", "ifname": "Ethernet"}).encode()
    stream = connect(service, FakeStream(identity(), [request]))
    [reply] = wait_for_replies(stream, 1)
    assert not reply.ok and "names its adapter 'SSTP VPN' itself" in reply.error
    assert not service.devices


def test_only_the_process_that_asked_gets_the_packets(service):
    stream = connect(service, FakeStream(identity(pid=4242), [OPEN]))
    wait_for_replies(stream, 1)
    intruder = FakeStream(identity(pid=999))  # the same user's other process, which the DACL admits
    service.listeners.relay().waiting.put(intruder)
    for _ in range(500):
        if intruder.closed:
            break
        threading.Event().wait(0.01)
    assert intruder.closed and not intruder.written


def test_a_user_has_at_most_four_sessions_and_others_are_not_held_up():
    slots = SessionSlots(per_user=4, total=6)
    assert [slots.take(USER) for _ in range(4)] == [None] * 4
    assert "4 connections to the SSTP VPN network service already" in slots.take(USER)
    assert slots.take(OTHER_USER) is None and slots.take(OTHER_USER) is None
    assert "as many connections as it may" in slots.take("S-1-5-21-1-2-3-1003")
    slots.give_back(USER)
    assert slots.take(USER) is None


def test_the_fifth_session_of_one_user_is_refused(service):
    streams = [connect(service, FakeStream(identity(pid=100 + n), [OPEN])) for n in range(5)]
    replies = [wait_for_replies(stream, 1)[0] for stream in streams]
    assert sum(reply.ok for reply in replies) == 4
    [refused] = [reply for reply in replies if not reply.ok]
    assert "4 connections" in refused.error


def test_stopping_the_service_ends_every_session_with_its_network_restored(tmp_path):
    service, thread = start_service(tmp_path)
    stream = connect(service, FakeStream(identity(), [OPEN, APPLY]))
    wait_for_replies(stream, 2)
    service.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert service.devices[0].closed and FakeConfigurator.made[0].restored == 1 and stream.closed


def test_authorization_needs_both_the_interactive_logon_and_the_group():
    assert authorization_problem(identity(), winpipe.USERS_SID) is None
    assert authorization_problem(identity(interactive=False, in_group=False), winpipe.USERS_SID).startswith(
        "The SSTP VPN network service serves only"
    )


def test_started_from_a_prompt_it_says_what_it_is(monkeypatch, capsys):
    class NotFromTheScm:
        def __init__(self, serve, stop) -> None:
            pass

        def dispatch(self) -> bool:
            return False

    monkeypatch.setattr(helper_windows, "ServiceControl", NotFromTheScm)
    assert helper_windows.main([]) == 2
    assert "sc start SstpVpnHelper" in capsys.readouterr().err


def test_a_group_that_is_not_a_sid_is_refused_at_start(capsys):
    with pytest.raises(SystemExit):
        helper_windows.main(["--group", "S-1-5-32-545)(A;;GA;;;WD)"])


class RecordedScm:
    """advapi32's service calls as the SCM answers them, each argument first checked against the
    module's own prototypes (as ctypes does on Windows), then played: the dispatcher calls the
    service's main on another thread, the test sends controls through the registered handler."""

    def __init__(self, prototypes) -> None:
        self.prototypes = prototypes
        self.states: list[tuple[int, int, int]] = []  # (state, accepted controls, service exit code)
        self.handler = None
        self.running = threading.Event()

    def _check(self, name, *arguments) -> None:
        for argtype, argument in zip(self.prototypes[name][1], arguments, strict=True):
            argtype.from_param(argument)  # raises ctypes' TypeError for a wrong type

    def StartServiceCtrlDispatcherW(self, table) -> int:
        self._check("StartServiceCtrlDispatcherW", table)
        assert table[0].lpServiceName == helper_windows.SERVICE_NAME and not table[1].lpServiceName
        worker = threading.Thread(target=table[0].lpServiceProc, args=(1, None))
        worker.start()
        worker.join(10)
        return 1

    def RegisterServiceCtrlHandlerExW(self, name, handler, context) -> int:
        self._check("RegisterServiceCtrlHandlerExW", name, handler, context)
        self.handler = handler
        return 0x1234

    def SetServiceStatus(self, handle, status) -> int:
        self._check("SetServiceStatus", handle, status)
        value = status._obj
        self.states.append((value.dwCurrentState, value.dwControlsAccepted, value.dwServiceSpecificExitCode))
        if value.dwCurrentState == helper_windows.SERVICE_RUNNING:
            self.running.set()
        return 1

    @staticmethod
    def last_error() -> int:
        return 0


def test_the_service_reports_to_the_scm_and_stops_on_its_control(monkeypatch):
    monkeypatch.setattr(ctypes, "WINFUNCTYPE", ctypes.CFUNCTYPE, raising=False)  # Windows' calling convention, here the C one
    getattr(helper_windows._service_types, "cache_clear", lambda: None)()
    scm = RecordedScm(helper_windows.service_prototypes())
    stopped = threading.Event()

    def serve() -> int:
        control.report(helper_windows.SERVICE_RUNNING)
        stopped.wait(10)
        return 0

    control = helper_windows.ServiceControl(serve, stopped.set, scm)
    stopper = threading.Thread(target=lambda: scm.running.wait(10) and scm.handler(helper_windows.SERVICE_CONTROL_STOP, 0, None, None))
    stopper.start()
    assert control.dispatch() is True
    stopper.join(10)
    getattr(helper_windows._service_types, "cache_clear", lambda: None)()
    start_pending, running, stop_pending, stopped_state = scm.states
    assert start_pending[0] == helper_windows.SERVICE_START_PENDING and start_pending[1] == 0
    assert running == (helper_windows.SERVICE_RUNNING, helper_windows.SERVICE_ACCEPT_STOP | helper_windows.SERVICE_ACCEPT_SHUTDOWN, 0)
    assert stop_pending[0] == helper_windows.SERVICE_STOP_PENDING
    assert stopped_state == (helper_windows.SERVICE_STOPPED, 0, 0)


def test_the_app_sends_nothing_to_a_pipe_that_is_not_the_services(monkeypatch):
    """Anyone may create a pipe of the service's name while the service is not running: the app
    trusts only a pipe owned by SYSTEM, and closes any other before it writes a byte."""
    from sstpvpn.platform import helper_client
    from sstpvpn.platform.errors import PlatformError

    class SquattedPipe(FakeStream):
        def owner_sid(self) -> str:
            return USER  # an ordinary user's pipe

    squatter = SquattedPipe()
    monkeypatch.setattr(winpipe, "connect", lambda name, timeout, message_mode: squatter)
    with pytest.raises(PlatformError, match="does not belong to the SSTP VPN network service"):
        helper_client.PipeHelperChannel()
    assert squatter.closed and squatter.written == []


def test_the_service_answers_a_malformed_or_oversized_request_with_a_sentence(service):
    stream = connect(service, FakeStream(identity(), [b"{not json", b"x" * (protocol.MAX_MESSAGE_BYTES + 1), OPEN]))
    garbage, too_long, opened = wait_for_replies(stream, 3)
    assert garbage.error == "The request is not a JSON object."
    assert "longer than the network helper accepts" in too_long.error
    assert opened.ok  # the session goes on


def test_a_service_that_hangs_up_is_called_the_network_service_and_its_log_named(monkeypatch):
    from sstpvpn.platform import helper_client
    from sstpvpn.platform.errors import PlatformError
    from sstpvpn.platform.helper_protocol import OpenTun

    class ServicePipe(FakeStream):
        def owner_sid(self) -> str:
            return winpipe.LOCAL_SYSTEM_SID

    pipe = ServicePipe()
    monkeypatch.setattr(winpipe, "connect", lambda name, timeout, message_mode: pipe)
    channel = helper_client.PipeHelperChannel()
    pipe.close()  # the service went away
    with pytest.raises(PlatformError) as caught:
        channel.request(OpenTun(None))
    assert caught.value.sentence.startswith("The SSTP VPN network service ended the connection unexpectedly")
    assert r"%ProgramData%\SSTP VPN\service\service.log" in caught.value.sentence and channel.closed
