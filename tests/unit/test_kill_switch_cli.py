"""The kill switch on the command line: `connect --kill-switch ... --kill-switch-allow-lan`, the
same in `profiles add` / `set` / `show`, the lines `connect` prints when it goes on and off (Ctrl-C
included), and `sstp-vpn repair`."""

from __future__ import annotations

import io
import ipaddress
import signal
from collections.abc import Iterator

import pytest

from sstpvpn.client import cli, repair, session_loop
from sstpvpn.client.core.types import KillSwitchMode, NetworkPlan, State, Status
from sstpvpn.client.profile_commands import run_profiles, session_profile
from sstpvpn.client.profile_settings import build_connect
from sstpvpn.client.profiles import Profile, ProfileStore
from sstpvpn.client.runner import Connect, Disconnect
from sstpvpn.client.session_driver import SessionDriver
from sstpvpn.client.transport import TransportSettings
from sstpvpn.platform import current
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.kill_switch import KillSwitchRules


def connect_args(*options: str):
    return cli.build_parser().parse_args(["connect", "vpn.example.com", "--user", "alice", *options])


def test_connect_takes_the_kill_switch_into_the_command() -> None:
    args = connect_args("--kill-switch", "always", "--kill-switch-allow-lan")
    command = build_connect(session_profile(args, "vpn.example.com", 443), TransportSettings("vpn.example.com"), "secret")
    assert command.network.kill_switch is KillSwitchMode.ALWAYS and command.network.kill_switch_allow_lan
    plain = build_connect(session_profile(connect_args(), "vpn.example.com", 443), TransportSettings("vpn.example.com"), "secret")
    assert plain.network.kill_switch is KillSwitchMode.OFF and not plain.network.kill_switch_allow_lan
    connected = session_profile(connect_args("--kill-switch", "connected"), "vpn.example.com", 443)
    assert connected.kill_switch is KillSwitchMode.CONNECTED


def test_an_unknown_kill_switch_mode_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        connect_args("--kill-switch", "sometimes")
    assert exit.value.code == 2
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err


def test_a_profile_brings_its_own_kill_switch(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["connect", "--profile", "Office", "--kill-switch", "always"])
    assert code == cli.EXIT_USAGE
    assert "leave out --kill-switch" in capsys.readouterr().err


def test_a_saved_profiles_kill_switch_reaches_the_command() -> None:
    profile = Profile(
        id="x", name="Office", host="vpn.example.com", username="alice", kill_switch=KillSwitchMode.CONNECTED, kill_switch_allow_lan=True
    )
    network = build_connect(profile, TransportSettings("vpn.example.com"), "secret").network
    assert network.kill_switch is KillSwitchMode.CONNECTED and network.kill_switch_allow_lan


class NoSecrets:
    def get(self, profile_id: str, kind: object) -> None:
        return None

    def set(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("no password was given")


def profiles(store: ProfileStore, *words: str) -> int:
    return run_profiles(cli.build_parser().parse_args(["profiles", *words]), store, NoSecrets())  # type: ignore[arg-type]


def test_profiles_add_set_and_show_the_kill_switch(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    store = ProfileStore(tmp_path / "profiles.toml")
    assert profiles(store, "add", "Office", "vpn.example.com", "--user", "alice", "--kill-switch", "connected") == 0
    saved = store.load().find("Office")
    assert saved is not None and saved.kill_switch is KillSwitchMode.CONNECTED and not saved.kill_switch_allow_lan
    assert profiles(store, "set", "Office", "--kill-switch-allow-lan") == 0
    changed = store.load().find("Office")
    assert changed is not None and changed.kill_switch is KillSwitchMode.CONNECTED and changed.kill_switch_allow_lan  # the mode stays
    assert profiles(store, "set", "Office", "--kill-switch", "always", "--kill-switch-block-lan") == 0
    changed = store.load().find("Office")
    assert changed is not None and changed.kill_switch is KillSwitchMode.ALWAYS and not changed.kill_switch_allow_lan
    capsys.readouterr()
    profiles(store, "show", "Office")
    assert "kill switch: always, from the start of connecting until you disconnect, local network blocked" in capsys.readouterr().out.splitlines()
    profiles(store, "set", "Office", "--kill-switch", "off")
    profiles(store, "show", "Office")
    assert "kill switch: off" in capsys.readouterr().out.splitlines()
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["profiles", "set", "Office", "--kill-switch-allow-lan", "--kill-switch-block-lan"])


def test_profiles_add_without_a_kill_switch_saves_it_off(tmp_path) -> None:
    store = ProfileStore(tmp_path / "profiles.toml")
    profiles(store, "add", "Office", "vpn.example.com", "--user", "alice")
    saved = store.load().find("Office")
    assert saved is not None and saved.kill_switch is KillSwitchMode.OFF


# -- what `connect` prints ---------------------------------------------------------------------


class RecordingKillSwitch:
    def __init__(self, calls: list[str], refuse_remove: str = "") -> None:
        self.calls = calls
        self.refuse_remove = refuse_remove

    def set(self, rules: KillSwitchRules) -> None:
        self.calls.append("set")

    def remove(self) -> None:
        if self.refuse_remove:
            raise PlatformError(self.refuse_remove)
        self.calls.append("remove")


class InterruptedRunner:
    """Comes up at once; the user presses Ctrl-C once it is connected."""

    def __init__(self, on_status, *rest: object) -> None:
        self.on_status = on_status

    def start(self) -> None:
        pass

    def join(self, timeout: float) -> None:
        pass

    def submit(self, command: object) -> None:
        server = "vpn.example.com:443"
        if isinstance(command, Connect):
            self.on_status(Status(State.HANDSHAKE, server=server))
            plan = NetworkPlan(address=ipaddress.ip_address("198.18.30.10"), peer=None)
            self.on_status(Status(State.CONNECTED, server=server, plan=plan, interface="ppp0", route_target="203.0.113.5"))
            signal.raise_signal(signal.SIGINT)
        elif isinstance(command, Disconnect):
            self.on_status(Status(State.DISCONNECTED, server=server))


@pytest.fixture
def signal_handlers() -> Iterator[None]:
    kept = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in kept.items():
        signal.signal(signum, handler)


def run_until_ctrl_c(mode: KillSwitchMode, calls: list[str], refuse_remove: str = "") -> int:
    profile = Profile(id="", name="", host="vpn.example.com", username="alice", kill_switch=mode)
    command = build_connect(profile, TransportSettings("vpn.example.com"), "secret")

    def driver_factory(post, on_log, late_route_watch: bool) -> SessionDriver[Connect]:
        return SessionDriver(
            post,
            on_log,
            runner_factory=InterruptedRunner,  # type: ignore[arg-type]
            late_route_watch=late_route_watch,
            kill_switch_factory=lambda: RecordingKillSwitch(calls, refuse_remove),
        )

    return session_loop.run_session(command, False, False, cli.fail, lambda: None, driver_factory=driver_factory)


def test_connect_says_when_the_kill_switch_goes_on_and_off_and_ctrl_c_removes_it(signal_handlers, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    assert run_until_ctrl_c(KillSwitchMode.CONNECTED, calls) == 0
    assert calls == ["set", "remove"]
    assert capsys.readouterr().out.splitlines()[-5:] == [
        "Kill switch on: only the VPN and the connection to 203.0.113.5:443 may pass.",
        "connected: 198.18.30.10",
        "disconnecting...",
        "Kill switch off: traffic may leave outside the VPN again.",
        "disconnected",
    ]


def test_connect_without_a_kill_switch_says_nothing_of_it(signal_handlers, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    assert run_until_ctrl_c(KillSwitchMode.OFF, calls) == 0
    assert calls == [] and "Kill switch" not in capsys.readouterr().out


def test_a_kill_switch_left_in_place_is_told_and_fails_the_exit_code(signal_handlers, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []
    assert run_until_ctrl_c(KillSwitchMode.CONNECTED, calls, refuse_remove="Cannot remove the kill switch: run `sstp-vpn repair`.") == 1
    assert capsys.readouterr().err == "sstp-vpn: Cannot remove the kill switch: run `sstp-vpn repair`.\n"


# -- sstp-vpn repair ---------------------------------------------------------------------------


def test_repair_says_what_it_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(current, "repair_everything", lambda: ["Removed the kill switch left by an ended session.", "Removed the interface ppp3."])
    out, err = io.StringIO(), io.StringIO()
    assert repair.run_repair(out, err) == 0
    assert out.getvalue().splitlines() == ["Removed the kill switch left by an ended session.", "Removed the interface ppp3."]
    assert err.getvalue() == ""


def test_repair_with_nothing_left(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(current, "repair_everything", lambda: [])
    assert cli.main(["repair"]) == 0
    assert capsys.readouterr().out == "Nothing of SSTP VPN was left on this computer.\n"


def test_repair_that_cannot_remove_something(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def refused() -> list[str]:
        raise PlatformError("The firewall table sstpvpn could not be removed (permission denied): run sstp-vpn repair as root.")

    monkeypatch.setattr(current, "repair_everything", refused)
    assert cli.main(["repair"]) == 1
    assert capsys.readouterr().err == "sstp-vpn: The firewall table sstpvpn could not be removed (permission denied): run sstp-vpn repair as root.\n"
