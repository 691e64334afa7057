"""The tray and `sstp-vpn connect` share one session lock per profile (client/session_lock.py):
whoever comes second is refused with a sentence naming the other process."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

from sstpvpn.client.core.types import State
from sstpvpn.client.secret_store import SecretKind
from sstpvpn.client.session_lock import SessionInUse, lock_profile
from sstpvpn.gui.connection import ConnectionController, NoticeLevel
from tests.gui.scripted_runner import ScriptedRunner
from tests.gui.test_controller import Recorder, connect_and_wait, make_profile

CLI_HOLDER = textwrap.dedent("""
    import sys
    from sstpvpn.client.session_lock import lock_profile
    lock = lock_profile(sys.argv[1], sys.argv[2], "sstp-vpn connect")
    print("held", flush=True)
    sys.stdin.readline()
""")


@pytest.fixture
def controller(qtbot, store, secrets, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # a lock folder of this test's own
    ScriptedRunner.instances.clear()
    made = ConnectionController(store, secrets, environ={}, runner_factory=ScriptedRunner)
    yield made
    made.shutdown(timeout=1)


def test_a_profile_the_command_line_holds_is_refused_with_a_notice(qtbot, controller, store, secrets):
    profile = make_profile(store)
    secrets.set(profile.id, SecretKind.VPN, "s3cret")
    holder = subprocess.Popen([sys.executable, "-c", CLI_HOLDER, profile.id, profile.name], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        seen = Recorder(controller)
        controller.connect_profile(profile)
        qtbot.waitUntil(lambda: bool(seen.notices))
        (notice,) = seen.notices
        assert notice.title == "Could not connect to Office" and notice.level is NoticeLevel.ERROR
        assert notice.text == (f"The profile Office is already connected by process {holder.pid} (sstp-vpn connect); disconnect it first.")
        assert controller.status.state is State.DISCONNECTED and not controller.active
        assert not ScriptedRunner.instances  # nothing was started
        errors = [(e.level, e.message) for e in controller.log_entries if e.level >= logging.WARNING]
        assert errors == [(logging.ERROR, notice.text)]  # the Log window tells failures before the runner too
    finally:
        holder.kill()
        holder.wait()
    # The command line is gone (killed): the tray gets the profile at once.
    engine = connect_and_wait(qtbot, controller, profile)
    assert len(engine.connects) == 1


def test_the_tray_holds_its_profile_until_the_session_ends(qtbot, controller, store, secrets):
    profile = make_profile(store)
    secrets.set(profile.id, SecretKind.VPN, "s3cret")
    engine = connect_and_wait(qtbot, controller, profile)
    engine.connected("198.18.30.10")
    qtbot.waitUntil(lambda: controller.status.state is State.CONNECTED)
    with pytest.raises(SessionInUse) as refused:
        lock_profile(profile.id, profile.name, "sstp-vpn connect")
    assert "(the SSTP VPN tray app); disconnect it first." in refused.value.sentence
    controller.disconnect_session()
    qtbot.waitUntil(lambda: controller.status.state is State.DISCONNECTED)
    with lock_profile(profile.id, profile.name, "sstp-vpn connect") as lock:
        assert lock.held
