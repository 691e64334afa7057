"""Lint, format and type check, run as CI runs them: ruff and mypy with the settings in pyproject.toml.

A failure prints the tools' own report. Fix with `ruff check --fix`, `ruff format`, and by hand for
mypy. Under CI=true a missing tool fails the test; elsewhere it is skipped, naming what to install.
`python3 tests/unit/test_code_rules.py` runs the same three checks outside pytest.

mypy cannot follow the editable install (an import hook maps client/, gui/, platform/ and assets/
onto `sstpvpn`), so it gets a folder `sstpvpn/` of symbolic links to them on MYPYPATH.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
TIMEOUT_SECONDS = 600
INSTALL_HINT = "pip install -e '.[test]' (or installer/install-deps.sh)"


class MissingTool(Exception):
    pass


def _tool(name: str) -> list[str]:
    """The tool installed for this interpreter, run as a module so PATH does not matter."""
    if importlib.util.find_spec(name) is None:
        raise MissingTool(f"{name} is not installed: {INSTALL_HINT}")
    return [sys.executable, "-m", name]


def _run(command: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    return result.returncode, (result.stdout + result.stderr).strip()


def package_folders() -> dict[str, str]:
    """{"client": "sstpvpn.client", ...} from [tool.setuptools.package-dir]: the one mapping."""
    mapping = PYPROJECT["tool"]["setuptools"]["package-dir"]
    return {folder: package for package, folder in mapping.items()}


def windows_only_modules() -> list[str]:
    """The modules the linux run leaves out ([tool.mypy] exclude): checked with --platform win32."""
    patterns = [re.compile(pattern) for pattern in PYPROJECT["tool"]["mypy"].get("exclude", [])]
    modules = []
    for folder, package in package_folders().items():
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            if any(pattern.search(path.relative_to(REPO_ROOT).as_posix()) or pattern.search(path.as_posix()) for pattern in patterns):
                relative = path.relative_to(REPO_ROOT / folder).with_suffix("")
                modules.append(".".join([package, *relative.parts]))
    return modules


def run_ruff_check() -> tuple[int, str]:
    return _run([*_tool("ruff"), "check", "--no-fix", "--output-format", "concise", "."])


def run_ruff_format_check() -> tuple[int, str]:
    return _run([*_tool("ruff"), "format", "--check", "--output-format", "concise", "."])


def run_mypy() -> tuple[int, str]:
    """Both runs: this platform (linux) over the whole package, then the Windows-only modules."""
    mypy = _tool("mypy")
    with tempfile.TemporaryDirectory(prefix="sstpvpn-mypy-") as scratch:
        import_root = Path(scratch) / "root"
        (import_root / "sstpvpn").mkdir(parents=True)
        folders = package_folders()
        for folder, package in folders.items():
            (import_root / Path(*package.split("."))).symlink_to(REPO_ROOT / folder, target_is_directory=True)
        env = {**os.environ, "MYPYPATH": str(import_root)}
        common = [*mypy, "--config-file", str(REPO_ROOT / "pyproject.toml"), "--cache-dir", str(Path(scratch) / "cache")]
        packages = [argument for package in folders.values() for argument in ("-p", package)]
        linux_status, linux_output = _run([*common, *packages], env)
        windows_modules = [argument for module in windows_only_modules() for argument in ("-m", module)]
        windows_status, windows_output = 0, ""
        if windows_modules:
            # pyroute2 and the like are never imported there: their override sections are unused.
            windows_status, windows_output = _run([*common, "--platform", "win32", "--no-warn-unused-configs", *windows_modules], env)
        output = f"== mypy (linux) ==\n{linux_output}\n== mypy --platform win32 ==\n{windows_output}"
        # Report repository paths, not the links'.
        for folder, package in folders.items():
            output = output.replace(f"{import_root / Path(*package.split('.'))}/", f"{folder}/")
    return max(linux_status, windows_status), output


def _check(run: Callable[[], tuple[int, str]], fix_hint: str) -> None:
    try:
        status, output = run()
    except MissingTool as missing:
        if os.environ.get("CI") == "true":
            pytest.fail(str(missing))
        pytest.skip(str(missing))
    assert status == 0, f"{output}\n\n{fix_hint}"


def test_ruff_check() -> None:
    _check(run_ruff_check, "Fix with `ruff check --fix` or by hand; a deliberate exception gets `# noqa: CODE` and the reason.")


def test_ruff_format() -> None:
    _check(run_ruff_format_check, "Run `ruff format` (files listed above).")


def test_mypy() -> None:
    _check(run_mypy, "Strict in sstpvpn.client.core, lenient elsewhere: see [tool.mypy] in pyproject.toml.")


def test_every_windows_only_module_exists() -> None:
    # A renamed Windows module must not silently drop out of both mypy runs.
    assert {module.rsplit(".", 1)[1] for module in windows_only_modules()} == {
        "winapi",
        "tun_windows",
        "netconfig_windows",
        "helper_windows",
        "kill_switch_windows",
    }


if __name__ == "__main__":
    failed = False
    for name, run in (("ruff check", run_ruff_check), ("ruff format --check", run_ruff_format_check), ("mypy", run_mypy)):
        status, output = run()
        print(f"### {name}: {'ok' if status == 0 else 'FAILED'}\n{output}\n")
        failed |= status != 0
    sys.exit(1 if failed else 0)
