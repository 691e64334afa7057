"""A recorded command runner: what netconfig_macos and netconfig_windows run (argv, stdin) is
recorded in order, and answered from rules the test gives (by argv prefix), so tests can assert
the exact commands without running any of them."""

from __future__ import annotations

from collections.abc import Callable

from sstpvpn.platform.commands import CommandResult

Answer = CommandResult | Callable[[list[str], str | None], CommandResult]


class RecordedCommands:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], str | None]] = []
        self._rules: list[tuple[tuple[str, ...], Answer]] = []

    def answer(self, *argv_prefix: str, stdout: str = "", stderr: str = "", returncode: int = 0, result: Answer | None = None) -> None:
        """Commands starting with `argv_prefix` get this answer (the newest matching rule wins)."""
        self._rules.insert(0, (argv_prefix, result or CommandResult(returncode, stdout, stderr)))

    def __call__(self, argv: list[str], stdin: str | None = None) -> CommandResult:
        assert all(isinstance(part, str) for part in argv), argv  # an argv list, never a shell line
        self.calls.append((tuple(argv), stdin))
        for prefix, answer in self._rules:
            if tuple(argv[: len(prefix)]) == prefix:
                return answer(argv, stdin) if callable(answer) else answer
        return CommandResult(0)

    def argvs(self, *programs: str) -> list[tuple[str, ...]]:
        """The argv of every call (of only these programs, when given)."""
        return [argv for argv, _stdin in self.calls if not programs or argv[0] in programs]
