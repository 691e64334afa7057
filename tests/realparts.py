"""Real external parts (servers, proxies, namespaces) that tests need.

With CI=true a missing part fails the run, because CI must prove the feature; on a developer's
machine the test is skipped with the command that installs what is missing.
"""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(what: str, install: str) -> None:
    """Fail in CI, skip elsewhere, naming what to install."""
    message = f"{what} is missing; install it with: {install}"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def require_program(name: str, install: str) -> str:
    """The path of an executable, or fail/skip with the install command."""
    path = shutil.which(name)
    if path is None:
        missing(f"the program {name!r}", install)
    return path


def require_root(why: str) -> None:
    if os.geteuid() != 0:
        missing(f"root privileges ({why})", "run the test suite as root (sudo)")
