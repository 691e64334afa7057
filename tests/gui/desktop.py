"""A throwaway desktop for GUI tests: a virtual X display (Xvfb), a tray host (trayer), a private
D-Bus session bus and a Secret Service keyring (gnome-keyring), each started by its own PID and
stopped again. Recipes and pitfalls: /work/shared/notes/real-parts.md, sections 1, 2 and 5.

Every address handed out is a filesystem path (no abstract sockets), so a process started in a
network namespace with `ip netns exec` can still reach the display and the bus.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.netns import stop_process
from tests.realparts import require_program

INSTALL_GUI = "apt-get install xvfb trayer xdotool imagemagick fonts-dejavu-core"
INSTALL_KEYRING = "apt-get install dbus gnome-keyring libglib2.0-bin"
KEYRING_UNLOCK_PASSWORD = b"test-keyring-password"  # protects the throwaway login keyring only


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _die_with_the_tests() -> None:
    """In the child before exec: get SIGTERM when the test process dies, even if it crashes (a Qt
    abort skips fixture teardown), so no display, bus or keyring is left behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def wait_until(condition, timeout: float, what: str, interval: float = 0.05) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"{what} within {timeout} s")
        time.sleep(interval)


@dataclass(frozen=True)
class Display:
    name: str  # ":N"
    runtime_dir: Path  # XDG_RUNTIME_DIR for Qt (it warns without one)

    @property
    def socket_path(self) -> Path:
        return Path("/tmp/.X11-unix") / f"X{self.name.lstrip(':')}"

    @property
    def env(self) -> dict[str, str]:
        # libxcb tries the abstract socket first and then /tmp/.X11-unix/XN, which a process in
        # another network namespace can still reach.
        return {"DISPLAY": self.name, "XDG_RUNTIME_DIR": str(self.runtime_dir), "QT_QPA_PLATFORM": "xcb"}


@contextlib.contextmanager
def virtual_display(width: int = 1280, height: int = 800) -> Iterator[Display]:
    require_program("Xvfb", INSTALL_GUI)
    runtime_dir = Path(tempfile.mkdtemp(prefix="sstpvpn-xdg-"))  # mode 0700, as Qt wants
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_the_tests,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise RuntimeError(f"Xvfb did not start (exit status {process.poll()})")
        yield Display(f":{number}", runtime_dir)
    finally:
        stop_process(process)
        shutil.rmtree(runtime_dir, ignore_errors=True)


def tray_is_owned(display: str) -> bool:
    """Whether a tray host has claimed the _NET_SYSTEM_TRAY_S0 selection on `display`."""
    x11 = ctypes.CDLL("libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XGetSelectionOwner.argtypes = [ctypes.c_void_p, ctypes.c_ulong]
    x11.XGetSelectionOwner.restype = ctypes.c_ulong
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    connection = x11.XOpenDisplay(display.encode())
    if not connection:
        return False
    try:
        return x11.XGetSelectionOwner(connection, x11.XInternAtom(connection, b"_NET_SYSTEM_TRAY_S0", 0)) != 0
    finally:
        x11.XCloseDisplay(connection)


@contextlib.contextmanager
def tray_host(display: Display) -> Iterator[subprocess.Popen]:
    require_program("trayer", INSTALL_GUI)
    process = subprocess.Popen(
        [
            "trayer",
            "--edge",
            "top",
            "--align",
            "right",
            "--widthtype",
            "request",
            "--height",
            "32",
            "--SetDockType",
            "true",
            "--transparent",
            "false",
        ],
        env={**os.environ, **display.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_the_tests,
    )
    try:
        wait_until(lambda: tray_is_owned(display.name), 10, "trayer did not claim the system tray")
        yield process
    finally:
        stop_process(process)


@contextlib.contextmanager
def session_bus() -> Iterator[str]:
    """A private session bus at a filesystem path; yields its address."""
    require_program("dbus-daemon", INSTALL_KEYRING)
    folder = Path(tempfile.mkdtemp(prefix="sstpvpn-bus-"))
    process = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1", f"--address=unix:path={folder}/bus"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=_die_with_the_tests,
    )
    try:
        address = process.stdout.readline().strip()
        if not address:
            raise RuntimeError(f"dbus-daemon did not start (exit status {process.poll()})")
        yield address
    finally:
        stop_process(process)
        process.stdout.close()
        with contextlib.suppress(OSError):
            (folder / "bus").unlink(missing_ok=True)
            folder.rmdir()


def _secrets_service_registered(bus_address: str) -> bool:
    result = subprocess.run(
        [
            "gdbus",
            "call",
            "--session",
            "--dest",
            "org.freedesktop.DBus",
            "--object-path",
            "/org/freedesktop/DBus",
            "--method",
            "org.freedesktop.DBus.NameHasOwner",
            "org.freedesktop.secrets",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": bus_address},
    )
    return "true" in result.stdout


@contextlib.contextmanager
def secret_service(bus_address: str) -> Iterator[subprocess.Popen]:
    """gnome-keyring-daemon on `bus_address`, with an unlocked throwaway login keyring."""
    require_program("gnome-keyring-daemon", INSTALL_KEYRING)
    require_program("gdbus", INSTALL_KEYRING)
    home = Path(tempfile.mkdtemp(prefix="sstpvpn-keyring-"))
    (home / "run").mkdir(mode=0o700)
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_RUNTIME_DIR": str(home / "run"),
        "DBUS_SESSION_BUS_ADDRESS": bus_address,
    }
    process = subprocess.Popen(
        ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        preexec_fn=_die_with_the_tests,
    )
    try:
        process.stdin.write(KEYRING_UNLOCK_PASSWORD)
        process.stdin.close()
        wait_until(lambda: _secrets_service_registered(bus_address), 10, "gnome-keyring-daemon did not register")
        yield process
    finally:
        stop_process(process)
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the block, then put the old values back."""
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
