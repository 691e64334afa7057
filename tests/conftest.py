"""Makes the shared test helpers importable as `tests.<module>` (tests.netns, tests.realparts, ...).

Test directories have no __init__.py and pytest runs with --import-mode=importlib, which puts no
test directory on sys.path. `python -m pytest` from the repository root already has the root on
sys.path; this keeps `tests.*` importable however pytest is started. Always import the helpers as
`tests.<module>`: importing one under two names would create two copies of its state (e.g. the
namespace and veth name counters in tests.netns).
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)


@pytest.fixture(scope="session", autouse=True)
def _private_state_folder():
    """The attempt history and recent log the app keeps for `sstp-vpn bundle` go to a folder of this
    run (inherited by every client the tests start), not to the tester's ~/.local/state."""
    folder = tempfile.mkdtemp(prefix="sstp-vpn-test-state-")
    os.chmod(folder, 0o1777)  # like /tmp: clients running as nobody keep their own folder in it
    old = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = folder
    yield
    if old is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = old
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _english():
    """The tests read the English sentences, whatever language the tester's desktop speaks; the
    tests of the translations ask for theirs (tests/unit/test_translations.py)."""
    old = os.environ.get("LANGUAGE")
    os.environ["LANGUAGE"] = "en"  # read before LC_ALL, LC_MESSAGES and LANG (platform/language.py)
    yield
    if old is None:
        os.environ.pop("LANGUAGE", None)
    else:
        os.environ["LANGUAGE"] = old
