"""Pure pieces of the tray app: words for states, durations, the crypto binding's description,
traffic arithmetic."""

from __future__ import annotations

import math
from ipaddress import IPv4Address

import pytest

from sstpvpn.client.core.types import Failure, FailureKind, Layer, NetworkPlan, SessionSecurity, State, Status
from sstpvpn.gui.icons import TrayState
from sstpvpn.gui.presentation import (
    accelerator,
    duration_text,
    ipv6_link_local,
    menu_label,
    plain_text,
    state_text,
    summary_lines,
    tooltip,
    tray_state,
    with_accelerators,
)
from sstpvpn.gui.traffic import Rate, TrafficMeter, human_bytes
from sstpvpn.platform.traffic_counters import TrafficCounters

PLAN = NetworkPlan(IPv4Address("198.18.30.10"), IPv4Address("198.18.30.1"))


@pytest.mark.parametrize(
    "status, reconnect_in, state, words",
    [
        (Status(State.IDLE), None, TrayState.DISCONNECTED, "Disconnected"),
        (Status(State.HANDSHAKE), None, TrayState.CONNECTING, "Connecting (contacting the server)"),
        (Status(State.AUTHENTICATING), None, TrayState.CONNECTING, "Connecting (signing in)"),
        (Status(State.CONNECTED, plan=PLAN), None, TrayState.CONNECTED, "Connected"),
        (Status(State.DISCONNECTING), None, TrayState.CONNECTING, "Disconnecting"),
        (Status(State.DISCONNECTED), None, TrayState.DISCONNECTED, "Disconnected"),
        (Status(State.DISCONNECTED, failure=Failure(Layer.TLS, "x", FailureKind.TRUST)), None, TrayState.ERROR, "Failed"),
        (Status(State.DISCONNECTED, failure=Failure(Layer.SSTP, "x")), 4.6, TrayState.CONNECTING, "Reconnecting in 5 s"),
        (Status(State.DISCONNECTED, failure=Failure(Layer.SSTP, "x")), math.inf, TrayState.CONNECTING, "Waiting for a network"),
    ],
)
def test_states_in_words_and_icons(status, reconnect_in, state, words):
    assert tray_state(status, reconnect_in) is state
    assert state_text(status, reconnect_in) == words


def test_durations():
    assert duration_text(0) == "0:00:00"
    assert duration_text(3725.9) == "1:02:05"
    assert duration_text(2 * 86400 + 3 * 3600 + 4 * 60 + 5) == "2 d 03:04:05"


def test_tooltips():
    assert tooltip(None, Status(State.IDLE), 0, active=False) == "SSTP VPN: not connected"
    assert tooltip("Office", Status(State.DISCONNECTED), 0, active=False) == "SSTP VPN: not connected"  # disconnected by the user
    connected = Status(State.CONNECTED, plan=PLAN, connected_at=100.0)
    assert tooltip("Office", connected, 165.0) == "SSTP VPN: Office, connected\nAddress 198.18.30.10 · 0:01:05"
    failed = Status(State.DISCONNECTED, failure=Failure(Layer.AUTH, "The server refused the password.", FailureKind.AUTHENTICATION))
    assert tooltip("Office", failed, 0, active=False) == "SSTP VPN: Office, failed\nLast attempt: sign-in refused\nThe server refused the password."
    assert tooltip("Office", connected, 0, shutting_down=True) == "SSTP VPN: disconnecting and quitting…"


FAILED = Status(State.DISCONNECTED, failure=Failure(Layer.TLS, "The server's certificate has expired.", FailureKind.TRUST))


@pytest.mark.parametrize(
    "status, reconnect_in, active",
    [
        (Status(State.IDLE), None, False),
        (Status(State.HANDSHAKE), None, True),
        (Status(State.AUTHENTICATING), None, True),
        (Status(State.CONNECTED, plan=PLAN, connected_at=10.0), None, True),
        (Status(State.DISCONNECTING), None, True),
        (FAILED, None, False),
        (FAILED, 4.2, True),
        (FAILED, math.inf, True),
        (Status(State.DISCONNECTED), None, False),
    ],
)
def test_tooltip_starts_with_the_menus_words(status, reconnect_in, active):
    lines = summary_lines("Office", status, 75.0, reconnect_in, active=active)
    shown = tooltip("Office", status, 75.0, reconnect_in, active=active).split("\n")
    assert shown[: len(lines)] == lines
    assert shown[len(lines) :] == (["The server's certificate has expired."] if status is FAILED else [])
    if active:
        assert lines[0] == f"SSTP VPN: Office, {state_text(status, reconnect_in).lower()}"


def test_menu_accelerators_are_distinct_and_prefer_first_letters():
    texts = [
        "Disconnect “Office”",
        "Connect “Home”",
        "Connect “Lab”",
        "Connect “R&&D”",
        "Status…",
        "Edit profiles…",
        "Log…",
        "Start at login",
        "Quit",
    ]
    first = frozenset({"Status…", "Edit profiles…", "Log…", "Quit"})
    given = with_accelerators(texts, first)
    assert given == [
        "&Disconnect “Office”",
        "&Connect “Home”",
        "Connect “L&ab”",  # C and L are taken: a letter of the profile's name
        "Connect “&R&&D”",  # the escaped & is not a key
        "&Status…",
        "&Edit profiles…",
        "&Log…",
        "Start a&t login",  # S, l and a (L&ab's) are taken: the next letter of a later word
        "&Quit",
    ]
    assert [plain_text(text) for text in given] == [text.replace("&&", "&") for text in texts]
    keys = [accelerator(text) for text in given]
    assert None not in keys and len(set(keys)) == len(keys)
    assert with_accelerators(["&Quit", "Quiet"]) == ["&Quit", "Q&uiet"]  # a given one is kept and taken


def test_ipv6_link_local_and_menu_labels():
    assert ipv6_link_local(bytes.fromhex("0211223344556677")) == "fe80::211:2233:4455:6677"
    assert ipv6_link_local(None) == ""
    assert menu_label("R&D") == "R&&D"


def test_binding_text_names_the_hash_and_whether_the_method_gave_a_key():
    assert SessionSecurity("MS-CHAPv2", "SHA-256", keyed=True).binding == "SHA-256 with the MS-CHAPv2 key"
    assert SessionSecurity("EAP-MD5", "SHA-1", keyed=False).binding == "SHA-1 with a zero key (EAP-MD5 derives no key)"
    assert SessionSecurity("none", "SHA-256", keyed=False).binding == "SHA-256 with a zero key (no authentication)"


def test_traffic_meter_rates():
    meter = TrafficMeter(history=3)
    meter.sample(10.0, TrafficCounters(1000, 500))
    assert meter.current is None
    meter.sample(12.0, TrafficCounters(3048, 1500))
    assert meter.current == Rate(1024.0, 500.0)
    meter.sample(13.0, TrafficCounters(10, 10))  # a new interface: counters started again
    assert meter.current is None and meter.latest == TrafficCounters(10, 10)
    assert human_bytes(1023) == "1023 B" and human_bytes(1536) == "1.5 KiB" and human_bytes(5 * 2**30) == "5.0 GiB"
