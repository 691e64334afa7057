"""A full disk under the undo journal: the platform layer refuses with one sentence and leaves
the network exactly as it was, whether the very first journal write fails or one half-way
through apply() (then the changes already made are undone although the journal cannot shrink).

The tmpfs lives in a private mount namespace of the agent process (see full_disk_agent.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.platform.client_network import REPO, SERVER_BEHIND_GATEWAY, snapshot
from tests.realparts import require_program

AGENT = str(Path(__file__).with_name("full_disk_agent.py"))
# A resolv.conf of several kilobytes: its journal step (old and new text) no longer fits the
# last free page, so the disk runs full at the DNS step, after the link, address and routes.
LONG_RESOLV_CONF = (
    b"# resolv.conf of the test namespace\n"
    + b"# a long comment to make the file big\n" * 80
    + b"search home.test\nnameserver 198.18.20.53\noptions edns0\n"
)
LOCK_FILE = "network-journal.json.lock"  # journal.UndoJournal.lock_path


def run_agent(ns, folder: Path, free_pages: int) -> dict:
    require_program("unshare", "apt-get install util-linux")
    folder.mkdir()
    result = ns.run(
        "unshare",
        "--mount",
        "--propagation",
        "private",
        sys.executable,
        AGENT,
        "--folder",
        str(folder),
        "--free-pages",
        str(free_pages),
        "--server",
        SERVER_BEHIND_GATEWAY,
        cwd=REPO,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert list(folder.iterdir()) == []  # the tmpfs was private to the agent
    return json.loads(result.stdout)


@pytest.mark.parametrize("free_pages", [0, 1, 2], ids=["first-write", "first-step", "dns-step"])
def test_full_disk_refuses_with_one_sentence_and_changes_nothing(client_ns, tmp_path, free_pages):
    (client_ns.etc / "resolv.conf").write_bytes(LONG_RESOLV_CONF)
    before = snapshot(client_ns)
    outcome = run_agent(client_ns, tmp_path / "journal-folder", free_pages)
    assert outcome["error"] == (
        f"Cannot record the network changes in {tmp_path / 'journal-folder'} (no space left "
        "on the device), so nothing was changed; free some space and connect again."
    )
    # Neither a journal nor a half-written temporary file; the (empty) lock file stays by design.
    assert outcome["left_files"] == [LOCK_FILE]
    assert outcome["tunnel_routes_left"] == []
    assert snapshot(client_ns) == before


def test_one_more_free_page_is_enough(client_ns, tmp_path):
    """The control for the case above: with room for the DNS step's journal entry, apply() works."""
    (client_ns.etc / "resolv.conf").write_bytes(LONG_RESOLV_CONF)
    before = snapshot(client_ns)
    outcome = run_agent(client_ns, tmp_path / "journal-folder", 3)
    assert outcome == {"applied": True, "left_files": [LOCK_FILE], "tunnel_routes_left": []}
    assert snapshot(client_ns) == before
