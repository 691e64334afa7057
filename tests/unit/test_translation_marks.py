"""Every sentence a user reads goes through the translators (client/core/i18n.py): checked on
each module's syntax tree, so a sentence written without `_` cannot reach a German screen in
English unnoticed.

- `_` and `ngettext` take string literals (an f-string or a variable cannot be extracted), with
  named placeholders (a translation may reorder them), and run only inside functions (at import
  time no language is chosen yet).
- Text handed to the places a user reads it is marked: the failure and error types whose
  sentences are shown, the tray's notices, Qt's widgets and dialogs, the engine's log lines above
  DEBUG (the Log window), argparse's help and the command line's output. Text that is no sentence
  (a program or protocol name, a number with its unit) is let through when its line says why with
  a comment `# not translated: <why>`.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("client", "gui", "platform")
MARKS = {"_": 1, "ngettext": 2}  # function -> how many leading arguments are messages
EXEMPT = "# not translated:"

# Types and helpers whose text arguments end up in front of the user.
SENTENCE_TYPES = {
    "Failure", "Notice", "PlatformError", "ProxyError", "UsageError", "SessionInUse", "ProfileSettingsError",
    "TransportError", "CertificateRejected", "ProfileCommandError", "ProfileFileError", "UnknownProfile",
    "TransferError", "EndpointError", "KeyringUnavailable", "CertificateFileError", "TlsProblem", "HttpRefused",
    "ImportFormatError", "RequestRefused",
    # Qt
    "QLabel", "QPushButton", "QCheckBox", "QRadioButton", "QGroupBox", "QAction", "QMenu", "QToolButton",
}  # fmt: skip
QT_TEXT_METHODS = {
    "setText", "setWindowTitle", "setToolTip", "setPlaceholderText", "setStatusTip", "setTitle", "addAction",
    "addMenu", "setLabelText", "showMessage", "addRow", "addTab", "addItem", "addItems", "setItemText",
    "setInformativeText", "setDetailedText", "addButton", "setWhatsThis", "setHeaderLabels",
    "question", "warning", "information", "critical",
}  # fmt: skip
ARGPARSE_KEYWORDS = {"help", "description", "title", "epilog"}
ENGINE_LOG_METHODS = {"_log", "_emit_log"}  # (level, message): the Log window shows INFO and above
NON_WORDS = re.compile(r"sstp-vpn(-tray|-helper)?|SSTP VPN|https?://\S+")


def module_files() -> list[Path]:
    return sorted(path for folder in FOLDERS for path in (REPO_ROOT / folder).rglob("*.py"))


def _has_words(text: str) -> bool:
    return re.search(r"[A-Za-z]{2,}", NON_WORDS.sub("", text)) is not None


def _unmarked_text(node: ast.expr) -> bool:
    """Whether `node` is text written in place rather than looked up: a literal with words, an
    f-string with words, "...".format(...) or a concatenation holding such text."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _has_words(node.value)
    if isinstance(node, ast.JoinedStr):
        return any(_unmarked_text(part) for part in node.values if isinstance(part, ast.Constant))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _unmarked_text(node.func.value)
    if isinstance(node, ast.BinOp):
        return _unmarked_text(node.left) or _unmarked_text(node.right)
    if isinstance(node, ast.IfExp):
        return _unmarked_text(node.body) or _unmarked_text(node.orelse)
    return False


def _name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _is_debug_level(node: ast.expr) -> bool:
    return _name(node) == "DEBUG"


def _calls_with_scope(tree: ast.Module) -> Iterator[tuple[ast.Call, bool]]:
    """Every call, with whether it runs inside a function (not at import time)."""

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.Call, bool]]:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Call):
                yield child, in_function
            yield from walk(child, inside)

    yield from walk(tree, False)


def problems_in(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    problems = []

    def report(node: ast.AST, what: str) -> None:
        line = lines[node.lineno - 1] if node.lineno <= len(lines) else ""
        end = getattr(node, "end_lineno", node.lineno) or node.lineno
        if any(EXEMPT in lines[number - 1] for number in range(node.lineno, min(end, len(lines)) + 1)):
            return
        problems.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {what}: {line.strip()[:100]}")

    for call, in_function in _calls_with_scope(ast.parse(source)):
        name = _name(call.func)
        if isinstance(call.func, ast.Name) and name in MARKS:
            messages = call.args[: MARKS[name]]
            if len(messages) < MARKS[name] or not all(isinstance(m, ast.Constant) and isinstance(m.value, str) for m in messages):
                report(call, f"{name}() needs string literals")
                continue
            if not in_function:
                report(call, f"{name}() at import time, before a language is chosen")
            for message in messages:
                assert isinstance(message, ast.Constant)
                fields = [field for _, field, _, _ in string.Formatter().parse(message.value) if field is not None]
                if any(field == "" or field.isdigit() for field in fields):
                    report(call, "unnamed placeholder; name it ({host}) so a translation can reorder it")
            continue
        texts: list[ast.expr] = []
        if name in SENTENCE_TYPES or name in QT_TEXT_METHODS:
            texts = [*call.args, *(keyword.value for keyword in call.keywords)]
        elif name in ENGINE_LOG_METHODS and len(call.args) == 2 and not _is_debug_level(call.args[0]):
            texts = [call.args[1]]
        elif name == "print":
            texts = list(call.args)
        if name in {"add_argument", "add_parser", "ArgumentParser", "add_argument_group", "add_subparsers", "add_mutually_exclusive_group"}:
            texts = [keyword.value for keyword in call.keywords if keyword.arg in ARGPARSE_KEYWORDS]
        for text in texts:
            if _unmarked_text(text):
                report(text, f"text for the user passed to {name}() without _()")
    return problems


@pytest.mark.parametrize("path", module_files(), ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_sentences_are_marked_for_translation(path: Path) -> None:
    assert problems_in(path) == []


def test_the_rule_finds_unmarked_sentences(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.REPO_ROOT", tmp_path)
    module = tmp_path / "example.py"
    module.write_text(
        "TITLE = _('Too early')\n"
        "def f(host, error):\n"
        "    raise PlatformError(f'Cannot reach {host}.')\n"
        "    label.setText('Server:')\n"
        "    log._log(logging.INFO, 'Signed in.')\n"
        "    log._log(logging.DEBUG, 'Dropped a frame.')\n"
        "    print(f'sstp-vpn: {error}')\n"
        "    print(_('Connected to {}.').format(host))\n"
        "    _(f'Connected to {host}.')\n"
        "    parser.add_argument('--port', help='the port')\n"
        "    print('  ' + 'ms')  # not translated: a unit\n"
        "    raise PlatformError(_('Cannot reach {host}.').format(host=host))\n",
        encoding="utf-8",
    )
    found = [problem.split(": ", 2)[1] for problem in problems_in(module)]
    assert found == [
        "_() at import time, before a language is chosen",
        "text for the user passed to PlatformError() without _()",
        "text for the user passed to setText() without _()",
        "text for the user passed to _log() without _()",
        "unnamed placeholder; name it ({host}) so a translation can reorder it",
        "_() needs string literals",
        "text for the user passed to add_argument() without _()",
    ]
