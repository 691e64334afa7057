"""The support bundle (`sstp-vpn bundle`, and "Save support bundle…" in the log window): what a
maintainer needs to understand a failed connection, in one text file (or a zip holding it).

Redacted by construction: the bundle is rendered only from typed records that cannot hold a
secret: version strings, a few named OS facts, the fields of `Profile` (passwords live in the
keyring, never in a Profile; the proxy's user name is a field, its password is not), the
`Attempt` records of attempt_history (built from Status) and the recent log (LogRecord messages).
No string is scrubbed after the fact, and nothing else (environment, command lines, keyring,
config files) is read.
"""

from __future__ import annotations

import dataclasses
import enum
import platform
import ssl
import sys
import time
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from . import __version__
from .attempt_history import Attempt, AttemptHistory
from .profiles import Profile, ProfileFileError, ProfileStore
from .recent_log import RecentLog

OS_RELEASE_FIELDS = ("PRETTY_NAME", "ID", "VERSION_ID")
LOG_LINES = 2000


@dataclass(frozen=True)
class Bundle:
    created_at: float
    versions: tuple[tuple[str, str], ...]
    system: tuple[tuple[str, str], ...]
    profiles: tuple[Profile, ...]
    profiles_problem: str  # why the profiles could not be read, or ""
    attempts: tuple[Attempt, ...]
    log: tuple[str, ...]


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> tuple[tuple[str, str], ...]:
    qt = "not loaded"
    if "PySide6.QtCore" in sys.modules:  # the tray: the Qt library actually in use
        qt = sys.modules["PySide6.QtCore"].qVersion()
    return (
        ("sstp-vpn", __version__),
        ("Python", platform.python_version() + f" ({platform.python_implementation()})"),
        ("OpenSSL", ssl.OPENSSL_VERSION),
        ("cryptography", _package_version("cryptography")),
        ("h11", _package_version("h11")),
        ("PySide6", _package_version("PySide6")),
        ("Qt", qt),
    )


def system_facts(os_release: Path = Path("/etc/os-release")) -> tuple[tuple[str, str], ...]:
    facts = [("platform", platform.platform()), ("system", platform.system()), ("release", platform.release()), ("machine", platform.machine())]
    try:
        for line in os_release.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            if key in OS_RELEASE_FIELDS:
                facts.append((f"os-release {key}", value.strip().strip('"')))
    except OSError:
        pass
    return tuple(facts)


def collect(store: ProfileStore | None = None, history: AttemptHistory | None = None, recent: RecentLog | None = None) -> Bundle:
    store = store or ProfileStore()
    try:
        profiles, problem = store.load().profiles, ""
    except ProfileFileError as error:
        profiles, problem = (), str(error)
    return Bundle(
        time.time(),
        versions(),
        system_facts(),
        tuple(profiles),
        problem,
        tuple((history or AttemptHistory()).load()),
        tuple((recent or RecentLog()).tail(LOG_LINES)),
    )


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _field_text(value: object) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    return repr(value) if isinstance(value, str) else str(value)


def _profile_lines(profile: Profile) -> list[str]:
    lines = [f"  profile {profile.name!r}"]
    for item in dataclasses.fields(profile):
        value = getattr(profile, item.name)
        if dataclasses.is_dataclass(value):
            for inner in dataclasses.fields(value):
                lines.append(f"    {item.name}.{inner.name}: {_field_text(getattr(value, inner.name))}")
        else:
            lines.append(f"    {item.name}: {_field_text(value)}")
    return lines


def _attempt_lines(attempt: Attempt) -> list[str]:
    lines = [f"  {_stamp(attempt.started_at)}  {attempt.server}"]
    for at, state in attempt.steps:
        lines.append(f"    +{at - attempt.started_at:7.2f} s  {state}")
    if attempt.outcome:
        where = f" [{attempt.failure_where}, {attempt.failure_kind}]" if attempt.failure_where else ""
        lines.append(f"    outcome{where}: {attempt.outcome}")
    else:
        lines.append("    outcome: none recorded (still running, or the program ended first)")
    return lines


def render_text(bundle: Bundle) -> str:
    lines = [
        f"SSTP VPN support bundle, {_stamp(bundle.created_at)}",
        "It holds no password: profiles keep theirs in the system keyring, and log lines never contain one.",
        "",
        "Versions",
    ]
    lines += [f"  {name}: {value}" for name, value in bundle.versions]
    lines += ["", "System"] + [f"  {name}: {value}" for name, value in bundle.system]
    lines += ["", f"Profiles ({len(bundle.profiles)})"]
    if bundle.profiles_problem:
        lines.append(f"  {bundle.profiles_problem}")
    for profile in bundle.profiles:
        lines += _profile_lines(profile)
    lines += ["", f"Last attempts ({len(bundle.attempts)}, oldest first)"]
    for attempt in bundle.attempts:
        lines += _attempt_lines(attempt)
    lines += ["", f"Recent log (last {len(bundle.log)} lines)"] + [f"  {line}" for line in bundle.log]
    return "\n".join(lines) + "\n"


def default_file_name(at: float | None = None) -> str:
    return time.strftime("sstp-vpn-support-%Y%m%d-%H%M%S.txt", time.localtime(at))


def write_bundle(path: Path, bundle: Bundle) -> Path:
    """Write the bundle as text, or as a zip holding support.txt when `path` ends in .zip."""
    text = render_text(bundle)
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("support.txt", text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
