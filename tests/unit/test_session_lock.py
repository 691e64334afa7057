"""client/session_lock.py with real processes and real file locks (in a temporary folder)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sstpvpn.client.session_lock import SessionInUse, lock_folder, lock_profile

HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from sstpvpn.client.session_lock import lock_profile
    lock = lock_profile("abc123", "Office", "sstp-vpn connect", folder=Path(sys.argv[1]))
    print("held", flush=True)
    sys.stdin.readline()
""")


def start_holder(folder: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def test_second_process_is_refused_with_the_holders_pid_and_program(tmp_path):
    holder = start_holder(tmp_path)
    try:
        with pytest.raises(SessionInUse) as refused:
            lock_profile("abc123", "Office", "the SSTP VPN tray app", folder=tmp_path)
        assert refused.value.sentence == (f"The profile Office is already connected by process {holder.pid} (sstp-vpn connect); disconnect it first.")
        # Another profile is not affected.
        with lock_profile("def456", "Home", "the SSTP VPN tray app", folder=tmp_path) as other:
            assert other.held
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_never_blocks_the_next_client(tmp_path):
    holder = start_holder(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    lock = lock_profile("abc123", "Office", "sstp-vpn connect", folder=tmp_path)
    assert lock.held
    assert f'"pid": {os.getpid()}' in lock.path.read_text()
    lock.release()


def test_release_lets_the_next_one_in_and_is_idempotent(tmp_path):
    first = lock_profile("abc123", "Office", "sstp-vpn connect", folder=tmp_path)
    with pytest.raises(SessionInUse):
        lock_profile("abc123", "Office", "sstp-vpn connect", folder=tmp_path)  # also within one process
    first.release()
    first.release()
    assert not first.held
    with lock_profile("abc123", "Office", "sstp-vpn connect", folder=tmp_path) as second:
        assert second.held


def test_an_unusable_folder_is_a_sentence(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SessionInUse) as refused:
        lock_profile("abc123", "Office", "sstp-vpn connect", folder=blocker / "sub")
    assert "Cannot check whether the profile Office is already connected" in refused.value.sentence


def test_a_strange_id_is_refused():
    with pytest.raises(ValueError):
        lock_profile("../x", "Office", "sstp-vpn connect")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG runtime folder is a Linux convention")
def test_folder_is_the_runtime_dir_or_else_the_private_state_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert lock_folder() == tmp_path / "sstp-vpn"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert lock_folder() == tmp_path / "state" / "sstp-vpn" / "sessions"
