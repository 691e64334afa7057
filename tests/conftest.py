"""Makes the shared test helpers in tests/ (netns, realparts, proxies, ...) importable.

Test directories have no __init__.py and pytest runs with --import-mode=importlib, which does not
put test directories on sys.path, so this is done once here for every test below tests/.
"""

import sys
from pathlib import Path

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)
