"""The .deb end to end: built from this checkout (installer/build.py), installed with
`apt-get install ./…deb`, run from the installed copy (the command line against the real SoftEther
server, the tray app under Xvfb with a tray host), then purged: nothing may be left behind.

The tests run in file order on one installation (module fixture `installed_deb`); the last one
purges it. What the machine had of the helper in systemd's folders before (the checkout's quick
start puts its units into /etc/systemd/system) is set aside from before the install until after
the purge, then put back exactly (tests/installer/deb_system.py). Installed programs are always called by absolute path: a development install of the
project may come first on PATH.
"""

from __future__ import annotations

import grp
import os
import pwd
import queue
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import tomllib
from configparser import ConfigParser
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gui.desktop import INSTALL_GUI, session_bus, tray_host, virtual_display
from tests.installer.deb_system import ARTIFACTS, PACKAGE, REPO_ROOT, apt_get, owned_by_a_package, package_status, systemd_state_of_the_helper
from tests.integration.client_process import network_state
from tests.integration.softether import VIRTUAL_HOST
from tests.netns import stop_process
from tests.realparts import require_program

pytestmark = pytest.mark.realparts

BUNDLE = Path("/usr/lib/sstp-vpn")
COMMANDS = ("sstp-vpn", "sstp-vpn-tray", "sstp-vpn-helper")
DESKTOP_FILE = Path("/usr/share/applications/sstp-vpn-tray.desktop")
AUTOSTART_FILE = Path("/etc/xdg/autostart/sstp-vpn-tray.desktop")
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256)
HELPER_SOCKET_ENABLED = Path("/etc/systemd/system/sockets.target.wants/sstp-vpn-helper.socket")
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
# The tray starts disconnected; its icon's fill colour, from the icon's source.
DISCONNECTED_FILL = bytes.fromhex(re.search(r'fill="#([0-9a-f]{6})"', (REPO_ROOT / "assets/icons/sstp-vpn-disconnected.svg").read_text())[1])


def desktop_entry(path: Path) -> dict[str, str]:
    parser = ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(path)
    return dict(parser["Desktop Entry"])


def processes_running_from(folder: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            executable = os.readlink(proc / "exe")
        except OSError:
            continue
        if executable.startswith(f"{folder}/"):
            found.append(f"{proc.name}: {executable}")
    return found


def test_package_declares_what_it_needs(built_deb: Path):
    def field(name: str) -> str:
        return subprocess.run(["dpkg-deb", "-f", str(built_deb), name], capture_output=True, text=True, check=True).stdout.strip()

    assert field("Package") == PACKAGE
    assert field("Version") == VERSION
    depends = [entry.strip() for entry in field("Depends").split(",")]
    assert re.fullmatch(r"libc6 \(>= 2\.\d+\)", depends[0]), depends
    for needed in ("libegl1", "libgl1", "libfontconfig1", "fonts-dejavu-core"):
        assert needed in depends
    assert field("Recommends") == "nftables"  # the kill switch's nft
    conffiles = subprocess.run(["dpkg-deb", "-I", str(built_deb), "conffiles"], capture_output=True, text=True, check=True).stdout.split()
    assert conffiles == [str(AUTOSTART_FILE)]
    listing = subprocess.run(["dpkg-deb", "-c", str(built_deb)], capture_output=True, text=True, check=True).stdout
    assert all(line.split()[1] == "root/root" for line in listing.splitlines())


def test_install_puts_commands_desktop_entry_icons_and_helper_in_place(installed_deb):
    for command in COMMANDS:
        link = Path("/usr/bin") / command
        assert link.is_symlink() and os.readlink(link) == str(BUNDLE / command)
        assert os.access(link, os.X_OK)

    require_program("desktop-file-validate", "apt-get install desktop-file-utils")
    for entry_file in (DESKTOP_FILE, AUTOSTART_FILE):
        result = subprocess.run(["desktop-file-validate", str(entry_file)], capture_output=True, text=True)
        assert result.returncode == 0 and result.stdout == "", result.stdout
    entry = desktop_entry(DESKTOP_FILE)
    assert entry["Exec"] == "/usr/bin/sstp-vpn-tray" and entry["Icon"] == "sstp-vpn"
    autostart = desktop_entry(AUTOSTART_FILE)
    assert autostart["Exec"] == entry["Exec"] and autostart["Hidden"] == "true"  # off until enabled
    icons = Path("/usr/share/icons/hicolor")
    for size in ICON_SIZES:
        assert (icons / f"{size}x{size}/apps/sstp-vpn.png").read_bytes() == (REPO_ROOT / f"assets/icons/sstp-vpn-app-{size}.png").read_bytes()
    assert (icons / "scalable/apps/sstp-vpn.svg").is_file()

    # The privileged helper: its group, its units, its socket enabled for the next boot (this
    # machine may not run systemd, so nothing is started here).
    grp.getgrnam("sstp-vpn")
    service = Path("/usr/lib/systemd/system/sstp-vpn-helper@.service").read_text()
    assert "ExecStart=/usr/bin/sstp-vpn-helper --group sstp-vpn" in service
    assert HELPER_SOCKET_ENABLED.is_symlink()
    assert os.path.realpath(HELPER_SOCKET_ENABLED) == os.path.realpath("/usr/lib/systemd/system/sstp-vpn-helper.socket")


def test_installed_commands_start(installed_deb, measurements):
    times = []
    for _ in range(5):
        began = time.monotonic()
        result = subprocess.run(["/usr/bin/sstp-vpn", "--version"], capture_output=True, text=True, timeout=60)
        times.append(time.monotonic() - began)
        assert (result.returncode, result.stdout, result.stderr) == (0, f"sstp-vpn {VERSION}\n", "")
    measurements["cli_version_seconds_median"] = round(statistics.median(times), 3)
    tray = subprocess.run(["/usr/bin/sstp-vpn-tray", "--version"], capture_output=True, text=True, timeout=60)
    assert (tray.returncode, tray.stdout) == (0, f"sstp-vpn-tray {VERSION}\n")
    helper = subprocess.run(["/usr/bin/sstp-vpn-helper", "--help"], capture_output=True, text=True, timeout=60)
    assert helper.returncode == 0 and helper.stdout.startswith("usage: sstp-vpn-helper")


def test_installed_diagnose_against_softether(installed_deb, softether_server):
    server = softether_server
    result = server.client_ns.run(
        "/usr/bin/sstp-vpn", "diagnose", f"{server.server_name}:{server.port}", "--ca-file", str(server.ca_path), check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for step in ("DNS", "TCP", "TLS", "Certificate chain", "Name", "Trust", "SSTP"):
        assert re.search(rf"^\s+ok\s+{step} \(\d+ ms\)$", result.stdout, re.M), (step, result.stdout)
    assert server.served_cert_sha256.lower() in result.stdout


class LineReader:
    """Collects a process' stdout lines on a thread, so a test can wait for one with a timeout."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, prefix: str, timeout: float) -> str:
        end = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {prefix!r} line within {timeout} s: {self.lines}") from None
            if line is None:
                raise AssertionError(f"the process ended before a {prefix!r} line: {self.lines}")
            self.lines.append(line)
            if line.startswith(prefix):
                return line


def connect_ping_disconnect(ns, command: list[str], server, ca_path: Path, env: dict[str, str] | None = None) -> None:
    """`sstp-vpn connect` through `command`: connected, a ping through the tunnel, Ctrl-C, exit 0,
    the namespace's addresses, routes and DNS exactly as before."""
    before = network_state(ns)
    client = ns.popen(
        *command,
        "connect",
        f"{server.server_name}:{server.port}",
        "--user",
        server.username,
        "--ca-file",
        str(ca_path),
        "--ifname",
        "sstp41",
        "--password-stdin",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    reader = LineReader(client.stdout)
    try:
        client.stdin.write(server.password + "\n")
        client.stdin.close()
        address = reader.wait_for("connected:", timeout=60).split(": ", 1)[1]
        assert address.startswith("198.18.30.")
        pinged = ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", VIRTUAL_HOST, check=False)
        assert pinged.returncode == 0, pinged.stdout + pinged.stderr
        client.send_signal(signal.SIGINT)  # `ip netns exec` execs, and so does setpriv: the client itself
        assert client.wait(timeout=30) == 0, reader.lines
        assert client.stderr.read() == ""
    finally:
        stop_process(client)
    assert server.password not in "\n".join(reader.lines)
    deadline = time.monotonic() + 5  # a helper restores a moment after its client has gone
    while network_state(ns, settle_seconds=0) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert network_state(ns) == before


def test_installed_connect_as_root(installed_deb, softether_server):
    """The bundle's engine, TUN device and routes (pyroute2) work from the installed copy."""
    server = softether_server
    connect_ping_disconnect(server.client_ns, ["/usr/bin/sstp-vpn"], server, server.ca_path)


def test_installed_connect_as_a_member_of_the_group_through_the_installed_helper(installed_deb, softether_server):
    """An ordinary user in the group the package created: the engine runs as that user, the
    installed sstp-vpn-helper (started with --listen, as where systemd does not run) makes the
    tunnel and sets routes and DNS."""
    require_program("setpriv", "apt-get install util-linux")
    server = softether_server
    group = grp.getgrnam("sstp-vpn")
    nobody = pwd.getpwnam("nobody")
    folder = Path(tempfile.mkdtemp(prefix="sstp-deb-helper-"))
    folder.chmod(0o755)
    ca_path, socket_path = folder / "ca.pem", folder / "helper.sock"
    shutil.copyfile(server.ca_path, ca_path)
    ca_path.chmod(0o644)
    helper = server.client_ns.popen(
        "/usr/bin/sstp-vpn-helper", "--listen", str(socket_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while not socket_path.exists():
            assert helper.poll() is None and time.monotonic() < deadline, helper.stderr.read() if helper.poll() else ""
            time.sleep(0.05)
        as_member = [
            "setpriv",
            f"--reuid={nobody.pw_uid}",
            f"--regid={nobody.pw_gid}",
            f"--groups={group.gr_gid}",
            "--no-new-privs",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--",
            "env",
            f"HOME={nobody.pw_dir}",
            "/usr/bin/sstp-vpn",
        ]
        connect_ping_disconnect(server.client_ns, as_member, server, ca_path, env={"SSTP_VPN_HELPER_SOCKET": str(socket_path)})
    finally:
        stop_process(helper)
        shutil.rmtree(folder, ignore_errors=True)
    assert helper.returncode == 0, helper.stderr.read()


@dataclass(frozen=True)
class Region:
    x: int
    y: int
    width: int
    height: int

    @property
    def geometry(self) -> str:
        return f"{self.width}x{self.height}+{self.x}+{self.y}"


SCREEN_WIDTH = 1280  # tests.gui.desktop.virtual_display's default
TRAY_STRIP = Region(SCREEN_WIDTH - 300, 0, 300, 40)  # trayer sits at the top right
BELOW_TRAY = Region(SCREEN_WIDTH - 400, 40, 400, 360)  # where the tray menu opens


def screen_pixels(display: str, region: Region) -> bytes:
    """Raw RGB of a screen region (ImageMagick's import, as an 8-bit binary PPM)."""
    ppm = subprocess.run(
        ["import", "-display", display, "-window", "root", "-crop", region.geometry, "+repage", "-depth", "8", "ppm:-"],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    # Header: "P6", width, height, maxval, each followed by whitespace, then the pixels.
    fields = ppm.split(maxsplit=4)
    assert fields[:4] == [b"P6", str(region.width).encode(), str(region.height).encode(), b"255"], fields[:4]
    return fields[4][-region.width * region.height * 3 :]


def save_screenshot(display: str, region: Region, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["import", "-display", display, "-window", "root", "-crop", region.geometry, "+repage", str(path)], check=True, timeout=30)


def icon_points(display: str) -> list[tuple[int, int]]:
    """Screen coordinates of the tray strip's pixels in the disconnected icon's fill colour."""
    pixels = screen_pixels(display, TRAY_STRIP)
    return [
        (TRAY_STRIP.x + (i // 3) % TRAY_STRIP.width, TRAY_STRIP.y + (i // 3) // TRAY_STRIP.width)
        for i in range(0, len(pixels), 3)
        if pixels[i : i + 3] == DISCONNECTED_FILL
    ]


def lit_pixels(display: str, region: Region) -> int:
    """Pixels that are not the bare (black) root window."""
    pixels = screen_pixels(display, region)
    return sum(pixels[i : i + 3] != b"\0\0\0" for i in range(0, len(pixels), 3))


def test_installed_tray_app_shows_its_icon_and_menu(installed_deb, measurements, tmp_path):
    """Started the way the desktop entry starts it, on a virtual display with trayer as tray host:
    the icon appears, a right click opens the menu (drawn with the system's fonts: the bundle
    carries none), SIGTERM quits cleanly."""
    require_program("import", INSTALL_GUI)
    require_program("xdotool", INSTALL_GUI)
    command = shlex.split(desktop_entry(DESKTOP_FILE)["Exec"])
    with virtual_display() as display, session_bus() as bus, tray_host(display):
        env = {**os.environ, **display.env, "DBUS_SESSION_BUS_ADDRESS": bus, "XDG_CONFIG_HOME": str(tmp_path)}
        assert icon_points(display.name) == [] and lit_pixels(display.name, BELOW_TRAY) == 0
        began = time.monotonic()
        app = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            while len(points := icon_points(display.name)) < 20:
                assert app.poll() is None, f"the tray app exited ({app.returncode}): {app.communicate()}"
                assert time.monotonic() - began < 60, "the tray icon did not appear within 60 s"
                time.sleep(0.05)
            measurements["tray_icon_seconds"] = round(time.monotonic() - began, 2)
            save_screenshot(display.name, TRAY_STRIP, ARTIFACTS / "deb-tray-icon.png")

            centre = [str(round(statistics.mean(axis))) for axis in zip(*points, strict=True)]
            subprocess.run(["xdotool", "mousemove", *centre, "click", "3"], env=env, check=True, timeout=30)
            end = time.monotonic() + 15
            while lit_pixels(display.name, BELOW_TRAY) < 5000:
                assert time.monotonic() < end, "no menu opened on a right click on the tray icon"
                time.sleep(0.1)
            time.sleep(0.3)  # let it finish drawing
            menu_and_icon = Region(BELOW_TRAY.x, 0, BELOW_TRAY.width, BELOW_TRAY.y + BELOW_TRAY.height)
            save_screenshot(display.name, menu_and_icon, ARTIFACTS / "deb-tray-menu.png")
            subprocess.run(["xdotool", "key", "Escape"], env=env, check=True, timeout=30)

            app.send_signal(signal.SIGTERM)
            out, err = app.communicate(timeout=30)
        finally:
            stop_process(app)
        assert (app.returncode, out, err) == (0, "", "")
        end = time.monotonic() + 10
        while icon_points(display.name) and time.monotonic() < end:
            time.sleep(0.1)
        assert icon_points(display.name) == [], "the icon stayed after the app quit"
    assert processes_running_from(BUNDLE) == []


def test_remove_purge_leaves_nothing(installed_deb, measurements):
    systemd_state = systemd_state_of_the_helper()
    assert HELPER_SOCKET_ENABLED in systemd_state
    began = time.monotonic()
    result = apt_get("remove", "--purge", "-y", PACKAGE)
    measurements["purge_seconds"] = round(time.monotonic() - began, 1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert package_status() == "not-installed"

    left = []
    for name in installed_deb.files:
        path = Path(name)
        if not os.path.lexists(path):
            continue
        if path.is_dir() and not path.is_symlink() and (any(path.iterdir()) or owned_by_a_package(path)):
            continue  # a shared folder such as /usr/share/icons/hicolor/48x48/apps
        left.append(name)
    assert left == []
    assert not BUNDLE.exists()
    assert systemd_state_of_the_helper() == []
    assert not AUTOSTART_FILE.exists()  # the conffile goes with the purge
    assert processes_running_from(BUNDLE) == []
