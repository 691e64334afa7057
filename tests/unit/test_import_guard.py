"""The `platform/` folder must never shadow the standard library's `platform` module.

It is mapped onto `sstpvpn.platform` and has no top-level __init__.py, so even with the repository
root on sys.path (as under `python -m pytest` from the root) `import platform` is the stdlib one.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def test_repo_has_a_platform_folder_without_init() -> None:
    assert (REPO_ROOT / "platform").is_dir()
    assert not (REPO_ROOT / "platform" / "__init__.py").exists()


def test_import_platform_gives_the_standard_library_with_the_repo_root_first_on_sys_path() -> None:
    # A fresh interpreter, so no module cached by this test run can hide the problem.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import platform, uuid; print(platform.__file__); print(platform.system()); print(uuid.uuid4().version)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(REPO_ROOT)], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60)
    path, system, uuid_version = result.stdout.split("\n")[:3]
    assert Path(path).resolve().is_relative_to(STDLIB), path
    assert system  # the real module answers; a namespace package would have no system()
    assert uuid_version == "4"


def test_import_platform_in_this_process() -> None:
    import platform

    assert platform.__file__ is not None
    assert Path(platform.__file__).resolve().is_relative_to(STDLIB)
    assert callable(platform.system)


def test_sstpvpn_platform_is_importable() -> None:
    module = importlib.import_module("sstpvpn.platform")
    paths = [Path(p).resolve() for p in module.__path__]
    assert REPO_ROOT / "platform" in paths
