"""The Debian packages the bundle needs at run time, checked against the build host.

PyInstaller copies most of the build host's libraries into the bundle, but not libc, libGL/libEGL,
libxcb or the Wayland client libraries, and no data such as fonts. `DEPENDS` names those packages
(reviewed by hand, so the package's metadata stays readable); `check_bundle` runs ldd over every
ELF file of the bundle the way the bootloader runs it (LD_LIBRARY_PATH = the bundle's library
folder) and fails the build when a library is missing, or comes from a package that `DEPENDS` does
not pull in, so a new Qt plugin or extension cannot slip into the .deb undeclared.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

# Libraries the bundle links but does not carry (from ldd, see check_bundle), then data files the
# bundled copies of fontconfig and xkbcommon read from the system.
DEPENDS = [
    "libc6",
    "libegl1",
    "libgl1",
    "libxcb1",
    "libwayland-client0",
    "libwayland-cursor0",
    "libfontconfig1",  # brings /etc/fonts (fontconfig-config)
    "fonts-dejavu-core",  # Qt carries no font
    "xkb-data",  # keyboard layouts for the bundled libxkbcommon
]
ELF_MAGIC = b"\x7fELF"
LDD_LINE = re.compile(r"^\s*(?P<soname>\S+)\s+=>\s+(?P<path>\S+|not found)")
GLIBC_VERSION = re.compile(r"\bGLIBC_(\d+)\.(\d+)\b")


class UndeclaredDependency(Exception):
    pass


def elf_files(bundle: Path) -> list[Path]:
    found = []
    for path in sorted(bundle.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as file:
                if file.read(4) == ELF_MAGIC:
                    found.append(path)
    return found


def external_libraries(bundle: Path, library_folder: Path) -> tuple[set[str], set[str]]:
    """(paths of libraries loaded from outside the bundle, sonames found nowhere)."""
    env = {**os.environ, "LD_LIBRARY_PATH": str(library_folder)}
    outside, missing = set(), set()
    inside = str(bundle.resolve()) + os.sep
    for path in elf_files(bundle):
        result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, env=env)
        for line in result.stdout.splitlines():
            match = LDD_LINE.match(line)
            if match is None:
                continue
            if match["path"] == "not found":
                missing.add(match["soname"])
            elif not os.path.realpath(match["path"]).startswith(inside):
                outside.add(match["path"])
    return outside, missing


def owning_package(library: str) -> str | None:
    """The installed package that ships `library` (dpkg knows /lib or /usr/lib, whichever it shipped)."""
    candidates = [library, os.path.realpath(library)]
    candidates += [c.removeprefix("/usr") if c.startswith("/usr/lib") else "/usr" + c for c in list(candidates)]
    for candidate in dict.fromkeys(candidates):
        result = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout.split(":", 1)[0].strip()
    return None


def installed_closure(packages: list[str]) -> set[str]:
    """The packages plus everything they depend on, as installed on this host."""
    seen: set[str] = set()
    todo = list(packages)
    while todo:
        package = todo.pop()
        if package in seen:
            continue
        seen.add(package)
        result = subprocess.run(["dpkg-query", "-W", "-f", "${Pre-Depends}, ${Depends}", package], capture_output=True, text=True)
        for alternatives in result.stdout.split(","):
            for alternative in alternatives.split("|"):
                name = alternative.strip().split(" ", 1)[0].split(":", 1)[0]
                if name:
                    todo.append(name)
    return seen


def glibc_floor(bundle: Path) -> str:
    """The newest GLIBC_x.y symbol version any file of the bundle asks for."""
    output = subprocess.run(["objdump", "-T", *map(str, elf_files(bundle))], capture_output=True, text=True).stdout
    versions = {(int(major), int(minor)) for major, minor in GLIBC_VERSION.findall(output)}
    major, minor = max(versions)
    return f"{major}.{minor}"


def check_bundle(bundle: Path, library_folder: Path) -> str:
    """The control file's Depends value; raises UndeclaredDependency when DEPENDS falls short."""
    outside, missing = external_libraries(bundle, library_folder)
    if missing:
        raise UndeclaredDependency(f"libraries found neither in the bundle nor on this system: {sorted(missing)}")
    covered = installed_closure(DEPENDS)
    problems = []
    for library in sorted(outside):
        package = owning_package(library)
        if package is None:
            problems.append(f"{library} belongs to no Debian package")
        elif package not in covered:
            problems.append(f"{library} comes from {package}, which DEPENDS does not pull in")
    if problems:
        raise UndeclaredDependency("; ".join(problems) + " (add the package to DEPENDS in installer/deb_dependencies.py)")
    return ", ".join(f"libc6 (>= {glibc_floor(bundle)})" if name == "libc6" else name for name in DEPENDS)
