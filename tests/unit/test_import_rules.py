"""What may import what (ARCHITECTURE.md): checked on every module's syntax tree, imports inside
functions included, so a layer cannot quietly reach past its edge.

- client/core/ (the sans-IO protocol core) imports no socket, thread, clock or OS module, nothing of
  sstpvpn outside the core and no PySide6; the few exceptions are listed in CORE_EXCEPTIONS with why.
- client/ and platform/ import no PySide6.
- platform/ takes from client/ only the shared types, sstpvpn.client.core.types, and the sentence
  lookup, sstpvpn.client.core.i18n.
- gui/ asks platform/ for OS facts: it imports no OS module and does not test sys.platform.
- No import cycle among sstpvpn modules at module level (imports inside functions and under
  `if TYPE_CHECKING:` do not run at import time, so they are left out of that one).
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

CORE = "sstpvpn.client.core"
SHARED_TYPES = "sstpvpn.client.core.types"
SHARED_WITH_PLATFORM = (SHARED_TYPES, "sstpvpn.client.core.i18n")

# Sockets, threads, clocks, processes, files and the OS. ssl is allowed: its MemoryBIO is sans-IO.
CORE_FORBIDDEN = (
    "socket", "selectors", "select", "threading", "multiprocessing", "asyncio", "time", "os", "sys", "signal",
    "subprocess", "tempfile", "pathlib", "shutil", "ctypes", "fcntl", "platform", "urllib.request", "http.client",
    "pyroute2", "keyring", "truststore", "PySide6",
)  # fmt: skip

# (module, import) -> why the core needs it. Exact pairs: any other violation fails.
CORE_EXCEPTIONS = {
    ("sstpvpn.client.core.eap_tls", "os"): "Python's ssl gives TLS secrets only through a key-log file (EAP key derivation)",
    ("sstpvpn.client.core.eap_tls", "tempfile"): "a private folder for that key-log file and for the client certificate",
    ("sstpvpn.client.core.eap_tls", "pathlib"): "ssl loads a client certificate only from a file",
    ("sstpvpn.client.core.eap_tls", "sstpvpn.client.trust"): "the EAP server's certificate gets the same checks as the SSTP server's",
}

GUI_FORBIDDEN = ("os", "socket", "signal", "subprocess", "ctypes", "fcntl", "select", "selectors", "pyroute2")


@dataclass(frozen=True)
class Import:
    names: tuple[str, ...]  # every module name the statement may load: "x" and "x.y" for `from x import y`
    target: str  # the most specific module named, for messages and the sstpvpn rules
    line: int
    at_import_time: bool  # runs when the module is imported (not in a function, not only for type checkers)


# -- reading modules --------------------------------------------------------------------------


def package_folders() -> dict[str, str]:
    """{"client": "sstpvpn.client", ...}, the mapping in [tool.setuptools.package-dir]."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {folder: package for package, folder in pyproject["tool"]["setuptools"]["package-dir"].items()}


def project_modules() -> dict[str, Path]:
    """Every sstpvpn module name -> its file."""
    modules = {}
    for folder, package in package_folders().items():
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, at_import_time: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        runs_now = at_import_time
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) or _is_type_checking_block(child):
            runs_now = False
        yield child, runs_now
        yield from _walk(child, runs_now)


def imports_of(module: str, source: str, is_package: bool, known_modules: Iterable[str] = ()) -> list[Import]:
    """The imports of a module, relative ones resolved to absolute names."""
    known = set(known_modules)
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node, at_import_time in _walk(ast.parse(source), True):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import((alias.name,), alias.name, node.lineno, at_import_time))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                # `from x import y` loads x, and x.y when y is a module (unknown outside sstpvpn: try both).
                target = submodule if submodule in known or not base.startswith("sstpvpn") else base
                found.append(Import((base, submodule), target, node.lineno, at_import_time))
    return found


def reads_sys_platform(source: str) -> list[int]:
    """Lines that read sys.platform (`sys.platform` or `from sys import platform`)."""

    def reads_it(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute):
            return node.attr == "platform" and isinstance(node.value, ast.Name) and node.value.id == "sys"
        if isinstance(node, ast.ImportFrom):
            return node.module == "sys" and "platform" in {alias.name for alias in node.names}
        return False

    return sorted(node.lineno for node in ast.walk(ast.parse(source)) if reads_it(node))


# -- the rules --------------------------------------------------------------------------------


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _matching(names: Iterable[str], forbidden: Iterable[str]) -> str | None:
    for entry in forbidden:
        if any(_within(name, entry) for name in names):
            return entry
    return None


def rule_violations(module: str, source: str, is_package: bool = False, known_modules: Iterable[str] = ()) -> list[str]:
    """'module:line: what' for each broken rule; CORE_EXCEPTIONS are not violations."""
    problems = []
    for imported in imports_of(module, source, is_package, known_modules):
        where = f"{module}:{imported.line}"
        if _within(module, CORE):
            entry = _matching(imported.names, CORE_FORBIDDEN)
            if entry is not None and (module, entry) not in CORE_EXCEPTIONS:
                problems.append(f"{where}: the sans-IO core imports {imported.target} (no sockets, threads, clocks or OS calls)")
            if imported.target.startswith("sstpvpn.") and not _within(imported.target, CORE) and (module, imported.target) not in CORE_EXCEPTIONS:
                problems.append(f"{where}: the sans-IO core imports {imported.target}, outside {CORE}")
        if (_within(module, "sstpvpn.client") or _within(module, "sstpvpn.platform")) and _matching(imported.names, ["PySide6"]):
            problems.append(f"{where}: imports {imported.target}: only gui/ may use Qt")
        if (
            _within(module, "sstpvpn.platform")
            and _within(imported.target, "sstpvpn.client")
            and not any(_within(imported.target, shared) for shared in SHARED_WITH_PLATFORM)
        ):
            problems.append(f"{where}: platform/ imports {imported.target}; from client/ it may use only {', '.join(SHARED_WITH_PLATFORM)}")
        if _within(module, "sstpvpn.gui"):
            entry = _matching(imported.names, GUI_FORBIDDEN)
            if entry is not None:
                problems.append(f"{where}: the GUI imports {imported.target}: OS questions go to sstpvpn.platform")
    if _within(module, "sstpvpn.gui"):
        problems += [f"{module}:{line}: the GUI tests sys.platform: ask sstpvpn.platform instead" for line in reads_sys_platform(source)]
    return problems


def used_core_exceptions(module: str, source: str, is_package: bool, known_modules: Iterable[str]) -> set[tuple[str, str]]:
    used = set()
    for imported in imports_of(module, source, is_package, known_modules):
        entry = _matching(imported.names, CORE_FORBIDDEN)
        for key in ((module, entry), (module, imported.target)):
            if key in CORE_EXCEPTIONS:
                used.add(key)
    return used


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """module -> the sstpvpn modules it imports at import time. sources: module -> (source, is_package)."""
    known = set(sources)
    graph: dict[str, set[str]] = {module: set() for module in sources}
    for module, (source, is_package) in sources.items():
        for imported in imports_of(module, source, is_package, known):
            if imported.at_import_time and imported.target in known and imported.target != module:
                graph[module].add(imported.target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) per strongly connected group of modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_path_within(group, graph) for group in groups]


def _path_within(group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A cycle through the group's first module, found breadth-first (the shortest)."""
    start = min(group)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node] & group):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start] if node != start else [start, start]
                if successor not in previous:
                    previous[successor] = node
                    following.append(successor)
        frontier = following
    return sorted(group)


# -- the tree ---------------------------------------------------------------------------------


def _sources() -> dict[str, tuple[str, bool]]:
    return {module: (path.read_text(encoding="utf-8"), path.name == "__init__.py") for module, path in project_modules().items()}


def _rule_test(select: str) -> None:
    sources = _sources()
    problems = [
        problem
        for module, (source, is_package) in sources.items()
        if _within(module, select)
        for problem in rule_violations(module, source, is_package, sources)
    ]
    assert not problems, "\n".join(problems)


def test_the_core_imports_no_io_and_nothing_outside_the_core() -> None:
    _rule_test(CORE)


def test_client_imports_no_qt() -> None:
    _rule_test("sstpvpn.client")


def test_platform_takes_only_the_shared_types_from_client_and_no_qt() -> None:
    _rule_test("sstpvpn.platform")


def test_the_gui_does_no_os_work() -> None:
    _rule_test("sstpvpn.gui")


def test_every_core_exception_is_still_needed() -> None:
    sources = _sources()
    used: set[tuple[str, str]] = set()
    for module, (source, is_package) in sources.items():
        if _within(module, CORE):
            used |= used_core_exceptions(module, source, is_package, sources)
    assert set(CORE_EXCEPTIONS) - used == set(), "remove these from CORE_EXCEPTIONS: the core no longer needs them"


def test_no_import_cycle_at_module_level() -> None:
    found = cycles(import_graph(_sources()))
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(cycle) for cycle in found)


def test_every_package_folder_is_read() -> None:
    modules = project_modules()
    for package in package_folders().values():
        assert any(_within(module, package) for module in modules), package
    assert "sstpvpn.client.core.engine" in modules and "sstpvpn.platform.current" in modules


# -- the checker itself can fail --------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("sstpvpn.client.core.fake", "import socket\n", ["sstpvpn.client.core.fake:1: the sans-IO core imports socket"]),
        ("sstpvpn.client.core.fake", "def f():\n    import time\n", ["sstpvpn.client.core.fake:2: the sans-IO core imports time"]),
        ("sstpvpn.client.core.fake", "from os import path\n", ["sstpvpn.client.core.fake:1: the sans-IO core imports os.path"]),
        ("sstpvpn.client.core.fake", "from urllib import request\n", ["sstpvpn.client.core.fake:1: the sans-IO core imports urllib.request"]),
        (
            "sstpvpn.client.core.fake",
            "from .. import runner\n",
            ["sstpvpn.client.core.fake:1: the sans-IO core imports sstpvpn.client.runner, outside"],
        ),
        ("sstpvpn.client.core.eap_tls", "import socket\n", ["sstpvpn.client.core.eap_tls:1: the sans-IO core imports socket"]),
        ("sstpvpn.client.core.eap_tls", "from .. import runner\n", ["sstpvpn.client.core.eap_tls:1: the sans-IO core imports sstpvpn.client.runner"]),
        ("sstpvpn.client.transport", "from PySide6 import QtCore\n", ["sstpvpn.client.transport:1: imports PySide6.QtCore: only gui/"]),
        ("sstpvpn.platform.fake", "def f():\n    from PySide6.QtCore import QObject\n", ["sstpvpn.platform.fake:2: imports PySide6.QtCore"]),
        ("sstpvpn.platform.fake", "from sstpvpn.client.runner import Status\n", ["sstpvpn.platform.fake:1: platform/ imports sstpvpn.client.runner"]),
        (
            "sstpvpn.platform.fake",
            "from sstpvpn.client.core import engine\n",
            ["sstpvpn.platform.fake:1: platform/ imports sstpvpn.client.core.engine"],
        ),
        ("sstpvpn.gui.fake", "import subprocess\n", ["sstpvpn.gui.fake:1: the GUI imports subprocess"]),
        ("sstpvpn.gui.fake", "import sys\nWINDOWS = sys.platform == 'win32'\n", ["sstpvpn.gui.fake:2: the GUI tests sys.platform"]),
        # Allowed: nothing reported.
        ("sstpvpn.client.core.fake", "import ssl\nimport secrets\nfrom . import types\n", []),
        ("sstpvpn.client.core.eap_tls", "import os\nimport tempfile\nfrom pathlib import Path\nfrom .. import trust\n", []),
        ("sstpvpn.platform.fake", "from sstpvpn.client.core.types import Status\nfrom sstpvpn.client.core import types\n", []),
        ("sstpvpn.gui.fake", "import sys\nfrom sstpvpn.platform import current\n", []),
    ],
)
def test_the_checker_reports_violations(module: str, source: str, expected: list[str]) -> None:
    known = {"sstpvpn.client.runner", "sstpvpn.client.trust", "sstpvpn.client.core.engine", "sstpvpn.client.core.types"}
    problems = rule_violations(module, source, known_modules=known)
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), problem


def test_the_checker_finds_a_cycle_and_ignores_function_level_and_type_checking_imports() -> None:
    sources = {
        "sstpvpn.client.a": ("from sstpvpn.client import b\n", False),
        "sstpvpn.client.b": ("from . import c\n", False),
        "sstpvpn.client.c": ("import sstpvpn.client.a\n", False),
        "sstpvpn.client.d": ("def f():\n    from . import e\n", False),
        "sstpvpn.client.e": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import d\nfrom . import a\n", False),
    }
    assert cycles(import_graph(sources)) == [["sstpvpn.client.a", "sstpvpn.client.b", "sstpvpn.client.c", "sstpvpn.client.a"]]
