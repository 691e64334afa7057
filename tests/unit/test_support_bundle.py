"""The attempt history, the recent log and the support bundle built from them."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from sstpvpn.client.attempt_history import AttemptHistory
from sstpvpn.client.core.events import LogRecord
from sstpvpn.client.core.types import Failure, FailureKind, Layer, State, Status
from sstpvpn.client.profiles import Profile, ProfileStore, ProxyChoice, ProxyMode, new_profile_id
from sstpvpn.client.recent_log import RecentLog
from sstpvpn.client.support_bundle import collect, render_text, write_bundle


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


def run_states(history: AttemptHistory, *states: State, failure: Failure | None = None) -> None:
    for state in states:
        history.observe(Status(state, server="vpn.example.com", failure=failure if state is State.DISCONNECTED else None))


def test_history_records_each_state_change_and_the_outcome(tmp_path: Path) -> None:
    history = AttemptHistory(tmp_path / "attempts.json", clock=Clock())
    run_states(
        history,
        State.HANDSHAKE,
        State.HANDSHAKE,
        State.NEGOTIATING,
        State.AUTHENTICATING,
        State.DISCONNECTED,
        failure=Failure(Layer.AUTH, "The server refused the user name or password.", FailureKind.AUTHENTICATION),
    )
    run_states(
        history, State.HANDSHAKE, State.NEGOTIATING, State.AUTHENTICATING, State.CONFIGURING, State.CONNECTED, State.DISCONNECTING, State.DISCONNECTED
    )
    first, second = AttemptHistory(tmp_path / "attempts.json").load()
    assert [state for _, state in first.steps] == ["handshake", "negotiating", "authenticating", "disconnected"]
    assert first.steps[0][0] == first.started_at and first.steps[-1][0] - first.started_at == 1.5
    assert (first.outcome, first.failure_where, first.failure_kind) == ("The server refused the user name or password.", "auth", "authentication")
    assert [state for _, state in second.steps][-3:] == ["connected", "disconnecting", "disconnected"]
    assert (second.outcome, second.failure_where) == ("Connected, then disconnected.", "")


def test_history_keeps_an_unfinished_attempt_and_only_the_last_ones(tmp_path: Path) -> None:
    path = tmp_path / "attempts.json"
    history = AttemptHistory(path, limit=3, clock=Clock())
    for _ in range(5):
        run_states(history, State.HANDSHAKE, State.DISCONNECTED)
    run_states(history, State.HANDSHAKE, State.NEGOTIATING)  # then the program dies
    attempts = AttemptHistory(path).load()
    assert len(attempts) == 3
    assert attempts[-1].outcome == "" and [s for _, s in attempts[-1].steps] == ["handshake", "negotiating"]
    assert attempts[0].outcome == "Stopped before the connection was up."


def test_a_cancelled_attempt_ends_too(tmp_path: Path) -> None:
    history = AttemptHistory(tmp_path / "attempts.json", clock=Clock())
    run_states(history, State.HANDSHAKE, State.IDLE, State.HANDSHAKE)
    cancelled, running = history.load()
    assert cancelled.outcome == "Stopped before the connection was up." and running.outcome == ""


def test_damaged_or_unwritable_history_never_raises(tmp_path: Path) -> None:
    path = tmp_path / "attempts.json"
    path.write_text("{not json")
    assert AttemptHistory(path).load() == []
    blocked = tmp_path / "file"
    blocked.write_text("")
    history = AttemptHistory(blocked / "attempts.json")  # its folder is a file
    run_states(history, State.HANDSHAKE, State.DISCONNECTED)
    assert history.load() == []


def test_recent_log_rotates_and_tails(tmp_path: Path) -> None:
    log = RecentLog(tmp_path / "recent.log", max_bytes=400)
    for number in range(20):
        log.append(LogRecord(logging.INFO if number % 2 else logging.DEBUG, f"line {number}\nsecond part"), at=1_700_000_000.0)
    assert (tmp_path / "recent.log.1").exists() and (tmp_path / "recent.log").stat().st_size <= 400
    lines = log.tail()
    assert lines[-1].endswith("INFO     line 19 | second part")
    assert lines[-2].split(None, 2)[2].startswith("DEBUG    line 18")
    assert log.tail(3) == lines[-3:]
    assert not list(tmp_path.glob("recent.log.2"))
    assert (tmp_path / "recent.log").stat().st_mode & 0o777 == 0o600


def test_profile_and_proxy_have_no_secret_fields() -> None:
    """What makes the bundle redacted by construction: it prints every field of these."""
    fields = [f for cls in (Profile, ProxyChoice) for f in dataclasses.fields(cls)]
    named_like_secrets = [(f.name, f.type) for f in fields if any(word in f.name.lower() for word in ("password", "secret", "token", "key"))]
    assert named_like_secrets == [("remember_password", "bool")]  # only the yes/no choice "remember it or ask every time"


def test_bundle_holds_versions_system_profiles_attempts_and_log(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "profiles.toml")
    store.save(
        Profile(
            id=new_profile_id(),
            name="Office",
            host="vpn.example.com",
            username="HUB\\alice",
            pin_sha256="ab" * 32,
            proxy=ProxyChoice(ProxyMode.MANUAL, "proxy.example.com", 3128, "bob"),
        )
    )
    history = AttemptHistory(tmp_path / "attempts.json", clock=Clock())
    run_states(history, State.HANDSHAKE, State.DISCONNECTED, failure=Failure(Layer.TLS, "The certificate is not trusted.", FailureKind.TRUST))
    recent = RecentLog(tmp_path / "recent.log")
    recent.append(LogRecord(logging.INFO, "Connecting to vpn.example.com:443."))
    text = render_text(collect(store, history, recent))
    sections = [line for line in text.splitlines() if line and not line.startswith(" ")]
    assert sections[2:] == ["Versions", "System", "Profiles (1)", "Last attempts (1, oldest first)", "Recent log (last 1 lines)"]
    for expected in (
        "  sstp-vpn: 0.1.0",
        "  OpenSSL: OpenSSL",
        "  Python: 3.",
        "  system: Linux",
        "    username: 'HUB\\\\alice'",
        "    proxy.mode: manual",
        "    proxy.username: 'bob'",
        "    proxy.port: 3128",
        "    +   0.50 s  disconnected",
        "    outcome [tls, trust]: The certificate is not trusted.",
        "INFO     Connecting to vpn.example.com:443.",
    ):
        assert expected in text, expected

    write_bundle(tmp_path / "bundle.zip", collect(store, history, recent))
    with zipfile.ZipFile(tmp_path / "bundle.zip") as archive:
        assert archive.namelist() == ["support.txt"]
        assert "Profiles (1)" in archive.read("support.txt").decode()


def test_bundle_command_writes_the_file_and_prints_its_path(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_STATE_HOME": str(tmp_path / "state")}
    state = tmp_path / "state" / "sstp-vpn"
    state.mkdir(parents=True)
    (state / "recent.log").write_text("2025-11-25 22:00:00  INFO     The server accepted the SSTP request.\n")
    (state / "attempts.json").write_text(json.dumps({"attempts": [{"server": "vpn.example.com", "started_at": 1.0, "steps": [[1.0, "handshake"]]}]}))
    output = tmp_path / "out.txt"
    run = subprocess.run(
        [sys.executable, "-m", "sstpvpn.client.cli", "bundle", "--output", str(output)], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(output)
    text = output.read_text()
    assert "The server accepted the SSTP request." in text and "vpn.example.com" in text and "Profiles (0)" in text
    run = subprocess.run(
        [sys.executable, "-m", "sstpvpn.client.cli", "bundle", "--output", str(tmp_path / "no" / "x.txt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1 and "could not be written" in run.stderr
