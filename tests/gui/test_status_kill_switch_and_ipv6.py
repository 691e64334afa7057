"""The status window's Kill switch and IPv6 rows (issue 19) for each state the session reports:
Status.kill_switch (off, on and what passes, the sentence when it could not be put in place or
removed), and IPv6 through the tunnel with the interface's addresses (read by the platform layer
like the routes), blocked in a full tunnel, or not used."""

from __future__ import annotations

import time
from dataclasses import replace
from ipaddress import IPv4Address

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication

from sstpvpn.client.core.types import Failure, FailureKind, KillSwitchMode, KillSwitchState, Layer, NetworkPlan, State, Status
from sstpvpn.client.profiles import Profile, new_profile_id
from sstpvpn.gui.status_window import StatusWindow
from sstpvpn.platform import current
from sstpvpn.platform.traffic_counters import TrafficCounters
from tests.gui.saved_profiles import add_profile as add
from tests.gui.scripted_runner import ScriptedRunner
from tests.gui.test_windows import connected_engine

IDENTIFIER = bytes.fromhex("0211223344556677")
LINK_LOCAL = "fe80::211:2233:4455:6677"
GLOBAL = "2001:db8:30:0:211:2233:4455:6677"  # SLAAC: the advertised prefix and IPV6CP's identifier
ONLY_TUNNEL = "on: only the tunnel and the connection to the server pass"
ONLY_TUNNEL_AND_LAN = "on: only the tunnel, the connection to the server and the local network pass"
LEFT_IN_PLACE = "The kill switch could not be removed (nft: Device or resource busy); run sstp-vpn repair."
PROBLEM = "The firewall table could not be created (nft: Operation not permitted); run sstp-vpn repair to undo what was done."


# -- the status window ---------------------------------------------------------------------------


@pytest.fixture
def system(monkeypatch) -> dict[str, list[str] | None]:
    """The platform layer's readings, as the test sets them: the tunnel's IPv6 addresses."""
    seen: dict[str, list[str] | None] = {"ipv6": [GLOBAL, LINK_LOCAL]}
    monkeypatch.setattr(current, "read_traffic_counters", lambda interface: TrafficCounters(40960, 10240))
    routes = ["0.0.0.0/1", "128.0.0.0/1", "198.18.30.1/32", "::/1", "2001:db8:30::/64", "8000::/1"]  # two lines, as IPv6's
    monkeypatch.setattr(current, "routes_through", lambda interface: routes)
    monkeypatch.setattr(current, "ipv6_addresses", lambda interface: seen["ipv6"])
    monkeypatch.setattr(current, "tunnel_problem", lambda: None)
    return seen


class Controller(QObject):
    """What the status window reads of the tray's ConnectionController, set by the test."""

    changed = Signal()

    def __init__(self, profile: Profile, status: Status, active: bool) -> None:
        super().__init__()
        self.profile, self.status, self.active = profile, status, active
        self.reconnect_in: float | None = None
        self.shutting_down = False

    def disconnect_session(self) -> None:
        pass


def plan(identifier: bytes | None = None) -> NetworkPlan:
    return NetworkPlan(IPv4Address("198.18.30.10"), IPv4Address("198.18.30.1"), (IPv4Address("198.18.30.1"),), 1400, identifier)


CONNECTED = Status(State.CONNECTED, server="vpn.example.com:443", plan=plan(), interface="sstp0")
HANDSHAKE = Status(State.HANDSHAKE, server="vpn.example.com:443")
ENDED = Status(State.DISCONNECTED, server="vpn.example.com:443")
REFUSED = Status(State.DISCONNECTED, server="vpn.example.com:443", failure=Failure(Layer.NETWORK, PROBLEM, FailureKind.OTHER))


@pytest.mark.parametrize(
    "status, kill_switch, allow_lan, active, shown",
    [
        (CONNECTED, None, False, True, "off"),
        (CONNECTED, KillSwitchState(KillSwitchMode.CONNECTED, active=True), False, True, ONLY_TUNNEL),
        (CONNECTED, KillSwitchState(KillSwitchMode.ALWAYS, active=True), True, True, ONLY_TUNNEL_AND_LAN),
        (HANDSHAKE, KillSwitchState(KillSwitchMode.ALWAYS, active=True), False, True, ONLY_TUNNEL),  # before the first packet
        (HANDSHAKE, KillSwitchState(KillSwitchMode.CONNECTED, active=False), False, True, "off until connected"),
        (ENDED, KillSwitchState(KillSwitchMode.CONNECTED, active=False), False, False, "off"),  # removed at the end
        (ENDED, KillSwitchState(KillSwitchMode.CONNECTED, active=True), False, True, ONLY_TUNNEL),  # waiting to reconnect
        (CONNECTED, KillSwitchState(KillSwitchMode.CONNECTED, active=True, problem=PROBLEM), False, True, PROBLEM),
        (ENDED, KillSwitchState(KillSwitchMode.ALWAYS, active=True, problem=PROBLEM), False, False, PROBLEM),  # not removed
        (REFUSED, KillSwitchState(KillSwitchMode.ALWAYS, active=False, problem=PROBLEM), False, False, "could not be put in place: see below"),
    ],
)
def test_the_kill_switch_row(qtbot, system, status, kill_switch, allow_lan, active, shown):
    profile = Profile(id=new_profile_id(), name="Office", host="vpn.example.com", kill_switch_allow_lan=allow_lan)
    window = StatusWindow(Controller(profile, replace(status, kill_switch=kill_switch), active))
    qtbot.addWidget(window)
    assert window.values["kill_switch"].text() == shown
    assert ("#b3261e" in window.values["kill_switch"].styleSheet()) == bool(kill_switch and kill_switch.problem)  # a problem reads as one
    if status is REFUSED:
        assert window.problem.text() == PROBLEM  # the sentence once, under the rows


def test_the_tray_shows_the_kill_switch_the_session_keeps(qtbot, tray_app, store, secrets, system, kill_switches):
    """Through the session driver the tray shares with the command line (with a fake firewall): on
    at "connected" with the tunnel, still on while waiting to reconnect, off at Disconnect."""
    profile = add(store, secrets, "pw", kill_switch=KillSwitchMode.CONNECTED, auto_reconnect=True)
    tray_app.controller.connect_profile(profile)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    engine = ScriptedRunner.instances[-1]
    window = tray_app.show_status()
    engine.publish(Status(State.HANDSHAKE, server=engine.server))
    qtbot.waitUntil(lambda: window.values["kill_switch"].text() == "off until connected")
    engine.connected(interface="sstp0")
    qtbot.waitUntil(lambda: window.values["kill_switch"].text() == ONLY_TUNNEL)
    assert [rules.tunnels for rules in kill_switches.rules] == [("sstp0",)]
    engine.dropped(Failure(Layer.SSTP, "The connection to vpn.example.com was lost.", FailureKind.UNREACHABLE))
    qtbot.waitUntil(lambda: tray_app.controller.reconnect_in is not None)
    window.refresh()
    assert window.values["state"].text().startswith("Reconnecting") and window.values["kill_switch"].text() == ONLY_TUNNEL
    assert kill_switches.removed == 0
    tray_app.controller.disconnect_session()
    qtbot.waitUntil(lambda: not tray_app.controller.active)
    qtbot.waitUntil(lambda: window.values["kill_switch"].text() == "off")
    assert kill_switches.removed == 1


def test_a_status_that_overtakes_the_kill_switch_does_not_hide_it(qtbot, tray_app, store, secrets, system, kill_switches):
    """The runner's next status (IPv6 up, late, as SoftEther opens IPV6CP) is on its way before the
    first "connected" one puts the rules in place: the window still ends with the kill switch on."""
    profile = add(store, secrets, "pw", kill_switch=KillSwitchMode.CONNECTED, ipv6=True)
    tray_app.controller.connect_profile(profile)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    engine = ScriptedRunner.instances[-1]
    window = tray_app.show_status()
    engine.connected(interface="sstp0")
    engine.connected(interface="sstp0", ipv6_identifier=IDENTIFIER)  # both queued before the first is handled
    qtbot.waitUntil(lambda: window.values["ipv6"].text().startswith("through the tunnel:"))
    qtbot.wait(200)  # anything still queued arrives
    assert tray_app.controller.status.kill_switch == KillSwitchState(KillSwitchMode.CONNECTED, active=True)
    assert window.values["kill_switch"].text() == ONLY_TUNNEL


def test_the_tray_shows_a_kill_switch_that_could_not_be_put_in_place(qtbot, tray_app, store, secrets, system, kill_switches):
    kill_switches.refuse = PROBLEM
    connected = add(store, secrets, "pw", kill_switch=KillSwitchMode.CONNECTED)
    tray_app.controller.connect_profile(connected)
    qtbot.waitUntil(lambda: bool(ScriptedRunner.instances and ScriptedRunner.instances[-1].connects), timeout=10000)
    window = tray_app.show_status()
    ScriptedRunner.instances[-1].connected(interface="sstp0")  # fails closed: the session ends with the sentence
    qtbot.waitUntil(lambda: window.values["state"].text() == "Failed")
    assert window.problem.text() == PROBLEM and window.problem.isVisible()
    assert window.values["kill_switch"].text() == "could not be put in place: see below"


@pytest.mark.parametrize(
    "changes, identifier, addresses, shown",
    [
        ({"ipv6": True}, IDENTIFIER, [GLOBAL, LINK_LOCAL], f"through the tunnel: {GLOBAL}, {LINK_LOCAL}"),
        ({"ipv6": True}, IDENTIFIER, None, f"through the tunnel: {LINK_LOCAL}"),  # not read on this system: IPV6CP's
        ({"ipv6": True, "full_tunnel": False}, IDENTIFIER, [LINK_LOCAL], f"through the tunnel: {LINK_LOCAL}"),
        ({"ipv6": True}, None, [], "blocked: the server offers no IPv6"),
        ({"ipv6": False}, None, [], "blocked: the profile does not use IPv6"),
        ({"ipv6": False, "full_tunnel": False}, None, [], "not used"),
        ({"ipv6": True, "full_tunnel": False}, None, [], "not used"),
    ],
)
def test_the_ipv6_row(qtbot, tray_app, store, secrets, system, changes, identifier, addresses, shown):
    system["ipv6"] = addresses
    connected_engine(qtbot, tray_app, add(store, secrets, "pw", **changes), ipv6_identifier=identifier)
    window = tray_app.show_status()
    qtbot.waitUntil(lambda: window.values["ipv6"].text() == shown)


def test_the_ipv6_addresses_are_read_from_the_interface(qtbot, tray_app, store, secrets):
    """The real reader (netlink on Linux), on loopback: its addresses, as the platform layer gives them."""
    connected_engine(qtbot, tray_app, add(store, secrets, "pw", ipv6=True), interface="lo", ipv6_identifier=IDENTIFIER)
    on_loopback = current.ipv6_addresses("lo")
    window = tray_app.show_status()
    qtbot.waitUntil(lambda: window._interface_reading is not None)
    assert window.values["ipv6"].text() == f"through the tunnel: {', '.join(on_loopback or [LINK_LOCAL])}"


def test_the_status_window_shows_the_kill_switch_and_ipv6(qtbot, tray_app, store, secrets, system, screenshots):
    profile = add(store, secrets, "pw", ipv6=True, kill_switch=KillSwitchMode.CONNECTED)
    connected_engine(
        qtbot,
        tray_app,
        profile,
        connected_at=time.monotonic() - 65,
        interface="sstp0",
        ipv6_identifier=IDENTIFIER,
        revocation="good (OCSP, http://ocsp.example.com)",
    )
    window = tray_app.show_status()
    window.move(40, 60)
    qtbot.waitUntil(lambda: window.values["ipv6"].text().startswith("through the tunnel: 2001:"))
    qtbot.waitUntil(lambda: window.values["kill_switch"].text() == ONLY_TUNNEL)
    rows = list(window.values.values())  # every row, the two-line ones too
    qtbot.waitUntil(lambda: all(label.isVisible() and label.height() >= label.heightForWidth(label.width()) for label in rows))  # all of it shows
    qtbot.wait(300)
    assert QGuiApplication.primaryScreen().grabWindow(0, *window.frameGeometry().getRect()).save(str(screenshots / "status-window-kill-switch.png"))


def test_a_kill_switch_left_in_place_is_shown_with_its_sentence(qtbot, system, screenshots):
    """Removing it failed at the end of the session (no failure below to say it): the row says it, in red."""
    profile = Profile(id=new_profile_id(), name="Office", host="vpn.example.com", kill_switch=KillSwitchMode.ALWAYS)
    status = replace(CONNECTED, plan=plan(), kill_switch=KillSwitchState(KillSwitchMode.ALWAYS, active=True, problem=LEFT_IN_PLACE))
    window = StatusWindow(Controller(profile, status, active=True))
    qtbot.addWidget(window)
    window.show()
    window.move(40, 60)
    qtbot.waitUntil(lambda: window.values["ipv6"].text() == "blocked: the profile does not use IPv6")
    label = window.values["kill_switch"]
    assert label.text() == LEFT_IN_PLACE
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()))  # all of it shows, on two lines
    qtbot.wait(300)
    assert (
        QGuiApplication.primaryScreen()
        .grabWindow(0, *window.frameGeometry().getRect())
        .save(str(screenshots / "status-window-kill-switch-problem.png"))
    )
