"""The undo journal (pure file logic) and start-up repair from it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal import UndoJournal
from sstpvpn.platform.netconfig_linux import _owner, repair_from_journal

OWNER = {"pid": 1234, "start_time": 99, "boot_id": "b", "netns": 1}


def test_steps_written_are_read_back_by_a_new_reader(tmp_path):
    path = tmp_path / "state" / "journal.json"
    journal = UndoJournal(path)
    journal.begin(OWNER)
    journal.record({"op": "route", "dst": "0.0.0.0", "prefixlen": 1})
    journal.record({"op": "resolv_conf", "backup": "nameserver 1.2.3.4\n\u00ff"})

    again = UndoJournal(path)
    contents = again.load()
    assert contents.owner == OWNER
    assert contents.steps == [{"op": "route", "dst": "0.0.0.0", "prefixlen": 1},
                              {"op": "resolv_conf", "backup": "nameserver 1.2.3.4\n\u00ff"}]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert os.listdir(path.parent) == ["journal.json"]  # no temporary file left behind


def test_forget_drops_the_newest_equal_step_and_discard_removes_the_file(tmp_path):
    journal = UndoJournal(tmp_path / "j.json")
    journal.begin(OWNER)
    a, b = {"op": "a"}, {"op": "b"}
    for step in (a, b, a):
        journal.record(step)
    journal.forget(a)
    assert UndoJournal(tmp_path / "j.json").load().steps == [a, b]
    journal.forget({"op": "never recorded"})
    assert journal.steps == [a, b]
    journal.discard()
    assert not (tmp_path / "j.json").exists()
    journal.discard()  # nothing left: still fine
    assert UndoJournal(tmp_path / "j.json").load().steps == []


@pytest.mark.parametrize("content", [
    b"\x00\xff garbage",
    b'{"format": "sstp-vpn undo journal", "version": 1, "owner": {}, "steps": [',
    b'{"format": "something else", "version": 1, "owner": {}, "steps": []}',
    b'{"format": "sstp-vpn undo journal", "version": 1, "owner": {}, "steps": {"op": "x"}}',
    b'{"format": "sstp-vpn undo journal", "version": 1, "owner": [], "steps": []}',
    b"[]",
])
def test_a_damaged_journal_is_a_sentence(tmp_path, content):
    path = tmp_path / "j.json"
    path.write_bytes(content)
    with pytest.raises(PlatformError) as caught:
        UndoJournal(path).load()
    assert caught.value.sentence == (
        f"The network undo journal {path} is damaged, so the changes a crashed sstp-vpn made "
        "cannot be undone automatically; check the routes and /etc/resolv.conf by hand.")
    assert caught.value.to_failure().where == "network"


def test_a_journal_from_another_version_says_so(tmp_path):
    path = tmp_path / "j.json"
    path.write_text(json.dumps({"format": "sstp-vpn undo journal", "version": 7, "owner": {}, "steps": []}))
    with pytest.raises(PlatformError, match="written by another version of sstp-vpn"):
        UndoJournal(path).load()


def test_an_unwritable_journal_is_a_sentence(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    journal = UndoJournal(tmp_path / "file" / "state" / "j.json")
    with pytest.raises(PlatformError) as caught:
        journal.begin(OWNER)
    assert caught.value.sentence == (
        f"The network undo journal {tmp_path / 'file' / 'state' / 'j.json'} cannot be written (Not a directory); "
        "without it a crash could leave routes or DNS changed, so nothing was changed. "
        "Check that its folder is writable.")


def test_repair_moves_a_damaged_journal_aside_and_then_starts_clean(tmp_path):
    path = tmp_path / "j.json"
    path.write_bytes(b"{ not json")
    with pytest.raises(PlatformError) as caught:
        repair_from_journal(path)
    aside = tmp_path / "j.json.damaged"
    assert caught.value.sentence.endswith(f"check the routes and /etc/resolv.conf by hand. It was moved to {aside}.")
    assert aside.read_bytes() == b"{ not json"
    assert repair_from_journal(path) is False


def _resolv_conf_step(path: Path, backup: bytes | None, ours: bytes) -> dict:
    return {"op": "resolv_conf", "path": str(path), "ours": ours.decode("latin-1"),
            "backup": None if backup is None else backup.decode("latin-1")}


def test_repair_restores_a_file_a_dead_client_rewrote(tmp_path):
    resolv = tmp_path / "resolv.conf"
    original, ours = b"nameserver 198.18.20.53\nsearch x\n", b"nameserver 198.18.30.1\n"
    resolv.write_bytes(ours)
    journal = UndoJournal(tmp_path / "j.json")
    dead_owner = {**_owner(), "pid": 2**22 + 12345, "start_time": 1}  # no such process
    journal.begin(dead_owner)
    journal.record(_resolv_conf_step(resolv, original, ours))
    assert repair_from_journal(journal.path) is True
    assert resolv.read_bytes() == original
    assert not journal.path.exists()


def test_repair_leaves_a_running_clients_journal_alone(tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_bytes(b"ours\n")
    journal = UndoJournal(tmp_path / "j.json")
    journal.begin(_owner(os.getppid()))  # a process that is certainly running: pytest's parent
    journal.record(_resolv_conf_step(resolv, b"theirs\n", b"ours\n"))
    assert repair_from_journal(journal.path) is False
    assert resolv.read_bytes() == b"ours\n"
    assert UndoJournal(journal.path).load().steps


def test_repair_of_a_file_that_did_not_exist_removes_it(tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_bytes(b"nameserver 198.18.30.1\n")
    journal = UndoJournal(tmp_path / "j.json")
    journal.begin({**_owner(), "pid": 2**22 + 12345})
    journal.record(_resolv_conf_step(resolv, None, b"nameserver 198.18.30.1\n"))
    assert repair_from_journal(journal.path) is True
    assert not resolv.exists()
