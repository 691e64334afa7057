"""The kill switch's lifetime in SessionDriver (shared by the command line and the tray): when its
rules go in place, follow the session and go away, with a runner that reports what a test tells it
and a kill switch that records what it is asked; and the transport's pinned addresses."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from sstpvpn.client import head_start, transport
from sstpvpn.client.core.engine import EngineSettings
from sstpvpn.client.core.events import Credentials, LogRecord
from sstpvpn.client.core.reconnect import Backoff
from sstpvpn.client.core.supervisor import Connected, Finished, Output, Prepare, RetryScheduled, Stop
from sstpvpn.client.core.types import Failure, FailureKind, KillSwitchMode, KillSwitchState, Layer, State, Status
from sstpvpn.client.pac import PacSource
from sstpvpn.client.proxy import ProxySettings
from sstpvpn.client.runner import Connect, Disconnect, NetworkOptions
from sstpvpn.client.session_driver import SessionDriver
from sstpvpn.client.transport import Endpoint, TransportSettings
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.kill_switch import AllowedEndpoint, KillSwitchRules

SERVER = ipaddress.ip_address("203.0.113.5")
PROXY = ipaddress.ip_address("198.51.100.7")
DROPPED = Failure(Layer.TCP, "The connection dropped.", FailureKind.UNREACHABLE)


class Journal(list):
    """What happened, in order, across the fakes."""


class RecordingKillSwitch:
    def __init__(self, journal: Journal, refuse_set: str = "", refuse_remove: str = "") -> None:
        self.journal = journal
        self.refuse_set = refuse_set
        self.refuse_remove = refuse_remove

    def set(self, rules: KillSwitchRules) -> None:
        if self.refuse_set:
            raise PlatformError(self.refuse_set)
        self.journal.append(("set", rules))

    def remove(self) -> None:
        if self.refuse_remove:
            raise PlatformError(self.refuse_remove)
        self.journal.append(("remove",))


class ReportingRunner:
    """The runner's side: keeps the commands; `report` publishes a status as the runner would."""

    def __init__(self, journal: Journal, on_status: Callable[[Status], None], *rest: object) -> None:
        self.journal = journal
        self.on_status = on_status

    def start(self) -> None:
        pass

    def submit(self, command: object) -> None:
        self.journal.append(("runner", command))

    def report(self, status: Status) -> None:
        self.on_status(status)


class SteadyRoute:
    usable = True

    def set_target(self, address: str, interface: str | None = None) -> None:
        pass

    def close(self) -> None:
        pass


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Session:
    """A SessionDriver with fakes all round; `pump` delivers what was posted, as a front end does."""

    mode: KillSwitchMode
    refuse_set: str = ""
    refuse_remove: str = ""
    defer_look_up: bool = False
    journal: Journal = field(default_factory=Journal)
    posted: list[object] = field(default_factory=list)
    seen: list[Status] = field(default_factory=list)  # every Status the front end got
    logs: list[LogRecord] = field(default_factory=list)
    looked_up: list[Endpoint] = field(default_factory=list)
    deferred: list[Callable[[], None]] = field(default_factory=list)
    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        self.runners: list[ReportingRunner] = []

        def runner_factory(*args: object) -> ReportingRunner:
            runner = ReportingRunner(self.journal, *args)  # type: ignore[arg-type]
            self.runners.append(runner)
            return runner

        def look_up(endpoint: Endpoint) -> list[tuple[int, tuple]]:
            self.looked_up.append(endpoint)
            self.journal.append(("look up", endpoint.host))
            if endpoint.host == "unknown.example":
                raise endpoint.resolve_failed()
            return [(socket.AF_INET, (str(PROXY if endpoint.role == "proxy" else SERVER), endpoint.port))]

        def background(work: Callable[[], None]) -> None:
            (self.deferred.append if self.defer_look_up else lambda work: work())(work)

        self.driver: SessionDriver[Connect] = SessionDriver(
            self.posted.append,
            self.logs.append,
            runner_factory=runner_factory,
            route_watch_factory=lambda notify: SteadyRoute(),  # type: ignore[arg-type,return-value]
            backoff=Backoff(initial=1.0, cap=1.0),
            clock=self.clock,
            kill_switch_factory=lambda: RecordingKillSwitch(self.journal, self.refuse_set, self.refuse_remove),
            look_up=look_up,
            background=background,
        )

    @property
    def runner(self) -> ReportingRunner:
        return self.runners[-1]

    def command(self, **transport: object) -> Connect:
        settings = TransportSettings(**{"host": "vpn.example.com", **transport})  # type: ignore[arg-type]
        return Connect(settings, EngineSettings(Credentials("alice", "secret"), "vpn.example.com"), NetworkOptions(kill_switch=self.mode))

    def pump(self, outputs: list[Output] | None = None) -> list[Output]:
        """Carry out Prepare with `command`'s Connect and deliver what was posted, until quiet."""
        outputs = list(outputs or [])
        done: list[Output] = []
        while outputs or self.posted:
            if outputs:
                output = outputs.pop(0)
                done.append(output)
                if isinstance(output, Prepare):
                    outputs += self.driver.prepared(output.attempt, self.connect_command)
                continue
            item = self.posted.pop(0)
            if isinstance(item, Status):
                self.seen.append(item)
            outputs += self.driver.deliver(item)
        return done

    def connect(self, reconnect: bool = False, **transport: object) -> list[Output]:
        self.connect_command = self.command(**transport)
        return self.pump(self.driver.connect(self.connect_command, reconnect))

    def report(self, state: State, **changes: object) -> list[Output]:
        self.runner.report(Status(state, server="vpn.example.com:443", **changes))  # type: ignore[arg-type]
        return self.pump()

    def up(self, interface: str, route_target: ipaddress.IPv4Address = SERVER) -> list[Output]:
        self.report(State.HANDSHAKE)
        return self.report(State.CONNECTED, interface=interface, route_target=str(route_target))

    def kill_switch_calls(self) -> list[tuple]:
        return [entry for entry in self.journal if entry[0] in ("set", "remove")]

    def commands(self) -> list[object]:
        return [entry[1] for entry in self.journal if entry[0] == "runner"]


def rules(*tunnels: str, endpoint: AllowedEndpoint | None = None) -> KillSwitchRules:
    return KillSwitchRules((endpoint or AllowedEndpoint(SERVER, 443),), tunnels)


# -- CONNECTED ---------------------------------------------------------------------------------


def test_connected_sets_at_the_first_connected_follows_a_reconnect_and_goes_with_the_disconnect() -> None:
    session = Session(KillSwitchMode.CONNECTED)
    session.connect(reconnect=True)
    assert session.kill_switch_calls() == []  # nothing before the tunnel is up
    (first,) = session.commands()
    assert isinstance(first, Connect) and first.transport.resolved == ()  # the name is looked up as usual

    outputs = session.up("ppp0")
    assert any(isinstance(output, Connected) for output in outputs)
    assert session.kill_switch_calls() == [("set", rules("ppp0"))]
    assert session.seen[-1].kill_switch == KillSwitchState(KillSwitchMode.CONNECTED, active=True)

    outputs = session.report(State.DISCONNECTED, failure=DROPPED)
    assert any(isinstance(output, RetryScheduled) for output in outputs)
    assert session.kill_switch_calls() == [("set", rules("ppp0"))]  # kept while reconnecting
    assert session.seen[-1].kill_switch == KillSwitchState(KillSwitchMode.CONNECTED, active=True)

    session.clock.now += 5
    session.pump(session.driver.poll())
    second = session.commands()[-1]
    assert isinstance(second, Connect)
    assert second.transport.resolved == (str(SERVER),)  # DNS is blocked now: the address the rules allow
    session.up("ppp1")
    assert session.kill_switch_calls() == [("set", rules("ppp0")), ("set", rules("ppp0", "ppp1"))]

    outputs = session.pump(session.driver.disconnect())
    assert any(isinstance(output, Stop) for output in outputs)
    assert isinstance(session.commands()[-1], Disconnect)
    assert session.kill_switch_calls()[-1] == ("set", rules("ppp0", "ppp1"))  # until the session has ended
    outputs = session.report(State.DISCONNECTED)
    assert any(isinstance(output, Finished) for output in outputs)
    assert session.kill_switch_calls()[-1] == ("remove",)
    assert session.seen[-1].kill_switch == KillSwitchState(KillSwitchMode.CONNECTED, active=False)
    session.driver.close()
    assert session.kill_switch_calls().count(("remove",)) == 1
    said = [record.message for record in session.logs if record.level == 20]
    assert said == [
        "Kill switch on: only the VPN and the connection to 203.0.113.5:443 may pass.",
        "Kill switch off: traffic may leave outside the VPN again.",
    ]


def test_every_status_the_front_end_sees_carries_the_state() -> None:
    session = Session(KillSwitchMode.CONNECTED)
    session.connect()
    session.up("ppp0")
    states = [status.kill_switch for status in session.seen]
    assert states[0] == KillSwitchState(KillSwitchMode.CONNECTED, active=False)  # HANDSHAKE
    assert states[-1] == KillSwitchState(KillSwitchMode.CONNECTED, active=True)
    assert None not in states
    off = Session(KillSwitchMode.OFF)
    off.connect()
    off.up("ppp0")
    assert [status.kill_switch for status in off.seen] == [None, None]
    assert off.kill_switch_calls() == []


def test_through_a_proxy_the_rules_allow_the_proxys_port() -> None:
    session = Session(KillSwitchMode.CONNECTED)
    session.connect(proxy=ProxySettings("proxy.corp", 3128))
    session.up("ppp0", route_target=PROXY)
    assert session.kill_switch_calls() == [("set", rules("ppp0", endpoint=AllowedEndpoint(PROXY, 3128)))]


def test_a_refused_set_at_connected_ends_the_session_with_its_sentence() -> None:
    session = Session(KillSwitchMode.CONNECTED, refuse_set="The firewall refused the kill switch's table.")
    session.connect(reconnect=True)
    outputs = session.up("ppp0")
    assert not any(isinstance(output, Connected) for output in outputs)  # never said connected
    assert isinstance(session.commands()[-1], Disconnect)
    outputs = session.report(State.DISCONNECTED)  # the runner's end of a disconnect: no failure of its own
    (finished,) = [output for output in outputs if isinstance(output, Finished)]
    assert finished.failure is not None and finished.failure.reason == "The firewall refused the kill switch's table."
    assert session.seen[-1].failure == finished.failure
    assert session.seen[-1].kill_switch == KillSwitchState(KillSwitchMode.CONNECTED, False, "The firewall refused the kill switch's table.")


# -- ALWAYS ------------------------------------------------------------------------------------


def test_always_looks_up_then_sets_before_the_runner_gets_the_command() -> None:
    session = Session(KillSwitchMode.ALWAYS)
    session.connect()
    assert [entry[0] for entry in session.journal] == ["look up", "set", "runner"]
    assert session.kill_switch_calls() == [("set", rules())]
    (command,) = session.commands()
    assert isinstance(command, Connect) and command.transport.resolved == (str(SERVER),)
    session.up("ppp0")
    assert session.kill_switch_calls()[-1] == ("set", rules("ppp0"))  # the tunnel passes too
    assert all(status.kill_switch == KillSwitchState(KillSwitchMode.ALWAYS, active=True) for status in session.seen)


def test_always_through_a_proxy_looks_up_the_proxy() -> None:
    session = Session(KillSwitchMode.ALWAYS)
    session.connect(proxy=ProxySettings("proxy.corp", 3128))
    assert [(endpoint.role, endpoint.host, endpoint.port) for endpoint in session.looked_up] == [("proxy", "proxy.corp", 3128)]
    assert session.kill_switch_calls() == [("set", rules(endpoint=AllowedEndpoint(PROXY, 3128)))]
    (command,) = session.commands()
    assert isinstance(command, Connect) and command.transport.resolved == (str(PROXY),)


def test_always_with_a_refused_set_never_connects() -> None:
    session = Session(KillSwitchMode.ALWAYS, refuse_set="nft is not installed: install nftables.")
    outputs = session.connect(reconnect=True)
    assert session.commands() == []  # fail closed: no packet to the server
    (finished,) = [output for output in outputs if isinstance(output, Finished)]
    assert finished.failure is not None and finished.failure.reason == "nft is not installed: install nftables."


def test_always_with_a_name_that_does_not_resolve_ends_the_attempt() -> None:
    session = Session(KillSwitchMode.ALWAYS)
    session.connect_command = session.command(host="unknown.example")
    outputs = session.pump(session.driver.connect(session.connect_command, False))
    (finished,) = [output for output in outputs if isinstance(output, Finished)]
    assert finished.failure is not None and "Cannot resolve unknown.example" in finished.failure.reason
    assert session.kill_switch_calls() == [] and session.commands() == []


def test_a_disconnect_during_the_look_up_ends_the_attempt() -> None:
    session = Session(KillSwitchMode.ALWAYS, defer_look_up=True)
    session.connect()
    outputs = session.pump(session.driver.disconnect())
    assert any(isinstance(output, Finished) and output.user_asked for output in outputs)
    session.deferred.pop()()  # the look-up's answer comes late
    session.pump()
    assert session.commands() == [] and session.kill_switch_calls() == []


def test_the_kill_switch_refuses_a_pac_file() -> None:
    session = Session(KillSwitchMode.CONNECTED)
    outputs = session.connect(pac=PacSource("http://wpad/proxy.pac", ProxySettings("", 0)))
    (finished,) = [output for output in outputs if isinstance(output, Finished)]
    assert finished.failure is not None and "proxy auto-config" in finished.failure.reason
    assert session.commands() == []


def test_a_front_end_whose_post_delivers_at_once_sees_the_end() -> None:
    """The tray's signal delivers on its own thread at once: what the driver posts comes after the
    call that made it, never in the middle of it."""
    session = Session(KillSwitchMode.ALWAYS, refuse_set="nft is not installed: install nftables.")
    delivered: list[Output] = []

    def post_at_once(item: object) -> None:
        if isinstance(item, Status):
            session.seen.append(item)
        delivered.extend(session.driver.deliver(item))

    session.driver._post = post_at_once
    command = session.command()
    outputs = session.driver.connect(command, False)
    (prepare,) = [output for output in outputs if isinstance(output, Prepare)]
    session.driver.prepared(prepare.attempt, command)
    (finished,) = [output for output in delivered if isinstance(output, Finished)]
    assert finished.failure is not None and finished.failure.reason == "nft is not installed: install nftables."
    assert session.driver.supervisor.active is False and session.commands() == []


# -- every way out removes it ------------------------------------------------------------------


def ended_by_a_final_failure(session: Session) -> None:
    session.report(State.DISCONNECTED, failure=DROPPED)  # without --reconnect: the end


def ended_by_the_programs_end(session: Session) -> None:
    session.pump(session.driver.shutdown())
    session.report(State.DISCONNECTED)


def ended_by_quitting_before_the_runner_answers(session: Session) -> None:
    session.pump(session.driver.shutdown())
    session.driver.close()


@pytest.mark.parametrize("mode", [KillSwitchMode.CONNECTED, KillSwitchMode.ALWAYS])
@pytest.mark.parametrize("end", [ended_by_a_final_failure, ended_by_the_programs_end, ended_by_quitting_before_the_runner_answers])
def test_every_end_removes_it_once(mode: KillSwitchMode, end: Callable[[Session], None]) -> None:
    session = Session(mode)
    session.connect()
    session.up("ppp0")
    end(session)
    session.driver.close()
    assert session.kill_switch_calls()[-1] == ("remove",)
    assert session.kill_switch_calls().count(("remove",)) == 1


def test_a_removal_that_fails_is_told() -> None:
    session = Session(KillSwitchMode.CONNECTED, refuse_remove="The kill switch could not be removed: run `sstp-vpn repair`.")
    session.connect()
    session.up("ppp0")
    session.report(State.DISCONNECTED)
    assert session.driver.kill_switch_leftover == "The kill switch could not be removed: run `sstp-vpn repair`."
    assert session.seen[-1].kill_switch is not None and session.seen[-1].kill_switch.problem == session.driver.kill_switch_leftover


# -- the transport's pinned addresses ----------------------------------------------------------


def test_pinned_addresses_connect_without_a_look_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_look_up(*args: object, **kwargs: object) -> list[tuple]:
        raise AssertionError("the name was looked up")

    def no_head_start(*args: object) -> socket.socket:
        raise AssertionError("the head start's connection was taken")

    monkeypatch.setattr(socket, "getaddrinfo", no_look_up)
    monkeypatch.setattr(head_start, "getaddrinfo", no_look_up)
    monkeypatch.setattr(head_start, "connect", no_head_start)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        settings = TransportSettings("vpn.example.com", port, resolved=("127.0.0.1",))
        sock, address, _addresses = transport.reach_way(settings, None)
        with sock:
            accepted, peer = listener.accept()
            accepted.close()
            assert address == ipaddress.ip_address("127.0.0.1") and sock.getpeername() == ("127.0.0.1", port)
