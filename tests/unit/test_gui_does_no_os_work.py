"""The tray app asks the platform layer (`sstpvpn.platform.current`) every OS question: no module
of gui/ imports an OS module or tests `sys.platform` (sys for argv and exit is fine)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GUI = Path(__file__).resolve().parents[2] / "gui"
OS_MODULES = {"os", "socket", "signal", "subprocess", "ctypes", "fcntl", "select", "selectors", "pyroute2"}


def os_work(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] in OS_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module.split(".")[0] in OS_MODULES:
            found.append(node.module)
        elif isinstance(node, ast.Attribute) and node.attr == "platform" and isinstance(node.value, ast.Name) and node.value.id == "sys":
            found.append("sys.platform")
    return found


@pytest.mark.parametrize("module", sorted(GUI.glob("*.py")), ids=lambda path: path.name)
def test_no_gui_module_does_os_work(module):
    assert os_work(module.read_text()) == []


def test_the_check_finds_what_it_looks_for():
    found = os_work(
        "import os.path\nfrom socket import socketpair\nimport sys\nif sys.platform == 'linux': pass\ndef f():\n    from pyroute2 import IPRoute\n"
    )
    assert sorted(found) == ["os.path", "pyroute2", "socket", "sys.platform"]
    assert os_work("import sys\nfrom .routes import x\nsys.exit(main(sys.argv))\n") == []
