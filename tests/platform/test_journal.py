"""The undo journal (pure file logic) and start-up repair from it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.journal import UndoJournal
from sstpvpn.platform.netconfig_linux import repair_from_journal
from sstpvpn.platform.owners_linux import owner as _owner

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
    assert contents.steps == [{"op": "route", "dst": "0.0.0.0", "prefixlen": 1}, {"op": "resolv_conf", "backup": "nameserver 1.2.3.4\n\u00ff"}]
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


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\xff garbage",
        b'{"format": "sstp-vpn undo journal", "version": 1, "owner": {}, "steps": [',
        b'{"format": "something else", "version": 1, "owner": {}, "steps": []}',
        b'{"format": "sstp-vpn undo journal", "version": 1, "owner": {}, "steps": {"op": "x"}}',
        b'{"format": "sstp-vpn undo journal", "version": 1, "owner": [], "steps": []}',
        b"[]",
    ],
)
def test_a_damaged_journal_is_a_sentence(tmp_path, content):
    path = tmp_path / "j.json"
    path.write_bytes(content)
    with pytest.raises(PlatformError) as caught:
        UndoJournal(path).load()
    assert caught.value.sentence == (
        f"The network undo journal {path} is damaged, so the changes a crashed sstp-vpn made "
        "cannot be undone automatically; check the routes and /etc/resolv.conf by hand."
    )
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
        "Check that its folder is writable."
    )


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
    return {"op": "resolv_conf", "path": str(path), "ours": ours.decode("latin-1"), "backup": None if backup is None else backup.decode("latin-1")}


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


def test_a_journal_the_previous_version_wrote_is_repaired(tmp_path):
    """The file exactly as the version with {"op": ...} dicts wrote it: kernel steps on an
    interface that is gone are skipped, resolv.conf comes back."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_bytes(b"nameserver 198.18.30.1\n")
    me = _owner()
    document = {
        "format": "sstp-vpn undo journal",
        "version": 1,
        "owner": {**me, "pid": 2**22 + 12345, "start_time": 1},
        "steps": [
            {"op": "link", "ifname": "sstp-gone", "index": 2**30, "mtu": 1500, "up": False},
            {"op": "address", "ifname": "sstp-gone", "index": 2**30, "family": 2, "local": "198.18.30.10", "address": "198.18.30.1", "prefixlen": 32},
            {
                "op": "route",
                "family": 2,
                "dst": "0.0.0.0",
                "prefixlen": 1,
                "gateway": None,
                "ifname": "sstp-gone",
                "index": 2**30,
                "table": 254,
                "priority": 0,
            },
            {"op": "resolved_link", "ifname": "sstp-gone", "index": 2**30},
            {"op": "resolv_conf", "path": str(resolv), "backup": "nameserver 192.0.2.53\n", "ours": "nameserver 198.18.30.1\n"},
        ],
    }
    path = tmp_path / "j.json"
    path.write_text(json.dumps(document))
    assert repair_from_journal(path) is True
    assert resolv.read_bytes() == b"nameserver 192.0.2.53\n"
    assert not path.exists()


# -- one session at a time, and files nobody else can plant (issue 12) -------------------------


def test_the_lock_admits_one_holder_until_it_lets_go(tmp_path):
    first, second = UndoJournal(tmp_path / "j.json"), UndoJournal(tmp_path / "j.json")
    assert first.try_hold() and first.try_hold()  # taking it again is fine
    assert not second.try_hold()
    first.begin(OWNER)
    first.discard()
    assert not second.try_hold()  # an empty (or removed) journal still belongs to its session
    first.release()
    assert second.try_hold()
    del second  # an abandoned journal object lets go, as a dead process would
    assert first.try_hold()


def test_another_process_holding_the_lock_blocks_this_one(tmp_path):
    import subprocess
    import sys

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, fcntl, os; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX);"
                "print('held', flush=True); sys.stdin.read()"
            ),
            str(tmp_path / "j.json.lock"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        assert not UndoJournal(tmp_path / "j.json").try_hold()
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert UndoJournal(tmp_path / "j.json").try_hold()  # the kernel dropped it with the process


def test_a_planted_symlink_is_never_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    folder = tmp_path / "journal"
    folder.mkdir()
    for pid in range(2, 2000):  # every name a predictable temporary file could have had
        (folder / f".j.json.{pid}.tmp").symlink_to(victim)
    (folder / "j.json.lock").symlink_to(victim)
    journal = UndoJournal(folder / "j.json")
    with pytest.raises(PlatformError, match="lock of the network undo journal"):
        journal.try_hold()  # O_NOFOLLOW: the lock is not taken through the link
    journal.begin(OWNER)
    journal.record({"op": "route"})
    assert victim.read_text() == "root's file\n"
    assert json.loads((folder / "j.json").read_text())["steps"] == [{"op": "route"}]
    assert not (folder / "j.json").is_symlink()


def test_private_folder_problem(tmp_path):
    from sstpvpn.platform.journal import private_folder_problem

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    assert private_folder_problem(private) is None
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    assert "Other users may write in the folder" in private_folder_problem(sticky)  # /tmp itself: no
    inside = sticky / "root-only"
    inside.mkdir(mode=0o700)
    assert private_folder_problem(inside) is None  # a root folder inside a sticky one: fine
    group_writable = tmp_path / "group"
    group_writable.mkdir()
    group_writable.chmod(0o770)
    assert "Other users may write" in private_folder_problem(group_writable)
    beneath = group_writable / "sub"
    beneath.mkdir(mode=0o700)
    assert "Other users may write in the folder" in private_folder_problem(beneath)  # could be renamed away
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 65534, 65534)
    assert "belongs to user 65534" in private_folder_problem(foreign)
    link = tmp_path / "link"
    link.symlink_to(sticky)
    assert "Other users may write" in private_folder_problem(link)  # judged where it really leads
