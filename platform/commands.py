"""Running the system's own network tools (macOS: ifconfig, route, scutil; Windows: netsh).

Always an argv list with an absolute program path, never a shell: no value we pass (addresses,
interface names) is ever parsed by a shell, and a PATH set by someone else cannot swap the
program for another one while we run with administrator rights. Output is captured as text; what
a failure means is for the caller to decide (e.g. route's "not in table" is fine when undoing).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from sstpvpn.client.core.i18n import _, ngettext
from sstpvpn.platform.errors import PlatformError

TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        """stdout and stderr together: the tools print their complaints to either."""
        return f"{self.stdout}\n{self.stderr}".strip()


# What the configurators call; tests pass a recorded stand-in with the same signature.
CommandRunner = Callable[[list[str], str | None], CommandResult]


def run_command(argv: list[str], stdin: str | None = None) -> CommandResult:
    """Run `argv` (argv[0] an absolute path) with `stdin` as its input; never raises for a
    non-zero exit, only when the program cannot be run at all."""
    try:
        completed = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    except FileNotFoundError as error:
        raise PlatformError(
            _("The system program {program} is missing, so the network cannot be configured for the VPN.").format(program=argv[0])
        ) from error
    except subprocess.TimeoutExpired as error:
        raise PlatformError(
            ngettext(
                "The system program {program} did not finish within {seconds} second; the network may be half configured, disconnect and try again.",
                "The system program {program} did not finish within {seconds} seconds; the network may be half configured, disconnect and try again.",
                TIMEOUT_SECONDS,
            ).format(program=argv[0], seconds=TIMEOUT_SECONDS)
        ) from error
    except OSError as error:
        raise PlatformError(_("The system program {program} cannot be run ({reason}).").format(program=argv[0], reason=error.strerror)) from error
    return CommandResult(completed.returncode, completed.stdout or "", completed.stderr or "")
