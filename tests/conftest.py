"""Makes the shared test helpers importable as `tests.<module>` (tests.netns, tests.realparts, ...).

Test directories have no __init__.py and pytest runs with --import-mode=importlib, which puts no
test directory on sys.path. `python -m pytest` from the repository root already has the root on
sys.path; this keeps `tests.*` importable however pytest is started. Always import the helpers as
`tests.<module>`: importing one under two names would create two copies of its state (e.g. the
namespace and veth name counters in tests.netns).
"""

import sys
from pathlib import Path

_REPO_ROOT = str(Path(__file__).resolve().parent.parent)
if _REPO_ROOT not in sys.path:
    sys.path.insert(0, _REPO_ROOT)
