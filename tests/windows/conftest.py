"""Smoke tests of the Windows installer under Wine: `python3 -m pytest tests/windows`.

They need what `installer/windows/wine-stage.sh` sets up: Wine (wine64 and wine32:i386), the
installer built by `python3 installer/build.py windows` (dist/sstp-vpn-<version>-setup.exe) and
the cached Wine prefix and Windows Python it used. The default `python3 -m pytest` run never
collects them (pytest_ignore_collect below): only a command that names this folder does. Without
Wine or the build they skip, but under CI=true they fail: the CI stage must not pass by skipping.

The installer is installed once per run (the `installed` fixture) and uninstalled by the last
test (test_uninstall.py, moved to the end whatever order pytest would choose).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.windows.wine_env import HERE, SCREENSHOTS, SETUP_EXE, Installation, unavailable, wine_build


def _asked_for(config: pytest.Config) -> bool:
    for argument in config.args:
        path = Path(argument.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Out of the default run: only `pytest tests/windows[/...]` collects these tests."""
    return None if _asked_for(config) else True


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The uninstall test last: every other test uses the installed program."""
    items.sort(key=lambda item: item.path.name == "test_uninstall.py")


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """A virtual X display for every Wine program of the run: Inno Setup builds its wizard window
    even when it installs silently (without a display it stops with "Error reading
    FPreparingMemo.Lines.Strings"), and the tray needs one."""
    if shutil.which("Xvfb") is None:
        unavailable("Xvfb is not installed (installer/windows/wine-stage.sh installs it)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=[write_end],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    with os.fdopen(read_end) as announced:
        number = announced.readline().strip()
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{number}"  # Wine.environment() passes it on
    try:
        yield os.environ["DISPLAY"]
    finally:
        server.terminate()
        server.wait(10)
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old


@pytest.fixture(scope="session")
def wine(display: str) -> Iterator[wine_build.Wine]:
    if shutil.which("wine") is None:
        unavailable("Wine is not installed (installer/windows/wine-stage.sh installs it)")
    wine = wine_build.Wine()
    if not (wine.prefix / ".sstp-vpn-ready").is_file() or not (wine.python_dir / ".sstp-vpn-ready").is_file():
        unavailable(f"no Wine prefix and Windows Python in {wine.cache}: run `python3 installer/build.py windows` first")
    wine.stop()  # programs of an earlier run (or the build) must not hold on to another display
    with wine.shims():  # Wine-only DLL stand-ins (installer/windows/wine-shims), for this run only
        yield wine


@pytest.fixture(scope="session")
def installed(wine: wine_build.Wine) -> Installation:
    """The installer run silently, once per test run."""
    if not SETUP_EXE.is_file():
        unavailable(f"{SETUP_EXE} is missing: run `python3 installer/build.py windows` first")
    installation = Installation(wine, wine.prefix / "drive_c")
    if (installation.program_folder / "unins000.exe").is_file():  # left by an interrupted run
        wine.run([installation.uninstaller, "/VERYSILENT", "/SUPPRESSMSGBOXES", "/NORESTART"], quiet=True, timeout=300)
        wine.wait()
    wine.run([SETUP_EXE, "/VERYSILENT", "/SUPPRESSMSGBOXES", "/NORESTART", "/SP-"], quiet=True, timeout=300)
    wine.wait()
    return installation


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
