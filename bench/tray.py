"""The tray app's speed and footprint, measured from outside as a person uses it (issue 18).

    sudo python3 bench/tray.py [--rounds 7] [--idle 30] [--before /root/before/shadow] [--json FILE]

Starts the real `sstp-vpn-tray` (as root, so its engine makes the TUN itself) in a network
namespace this script creates, on Xvfb with trayer as the tray host, a private session bus and
gnome-keyring holding the profile's password (tests/gui/desktop.py), against the loopback SSTP
server of the tests (tests/loopback_sstp.py: our codecs, TLS on 127.0.0.1 in the namespace, a
full sign-in, IPCP and SSTP echo answers). It clicks the tray icon as a person does (a left click
connects the profile used last, another disconnects) and measures:

- start → icon: from starting the process to its icon window appearing in the tray host;
- click → SYN: the click is sent with XTest, the X extension xdotool uses, from this process
  (motion, press, 12 ms, release, as `xdotool click`), so its time is exact: when the X server
  has taken the press (XSync returned; xdotool itself needs 20-40 ms to start here, which would
  blur a 50 ms goal). The SYN's time is the kernel's timestamp (SO_TIMESTAMPNS) of the client's
  first TCP SYN to the server's port, captured on the namespace's loopback with an AF_PACKET
  socket; both CLOCK_REALTIME. Qt's tray icon acts on the press;
- click → green: until the tray icon's pixels (read from the X server every 5 ms with XGetImage)
  turn green, i.e. what the person sees as "connected";
- RSS and PSS (VmRSS from /proc/PID/status, Pss from /proc/PID/smaps_rollup) of the tray process
  connected, engine in-process, with the status window closed and then open;
- idle CPU: utime+stime of the tray process (all threads, /proc/PID/stat) over --idle seconds
  connected with the status window closed, then open (opened from the tray menu: right click, S),
  and the process's wake-ups per second (voluntary context switches of all its threads).

With --before PATH, the same run is made first with PYTHONPATH=PATH (the code before issue 18),
so the ratios compare figures measured side by side. Figures on a shared machine are indicative.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform as std_platform
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench.cpu_usage import process_cpu_seconds  # noqa: E402

TRAY_CLASS = "sstp-vpn-tray"
STATUS_TITLE = "SSTP VPN status"
PROFILE_NAME = "Bench"
PASSWORD = "correct horse battery"  # the loopback server's (tests/unit/scripted_server.py), not a secret

# -- the X server's pixels -----------------------------------------------------------------------


class _XImage(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("xoffset", ctypes.c_int),
        ("format", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("byte_order", ctypes.c_int),
        ("bitmap_unit", ctypes.c_int),
        ("bitmap_bit_order", ctypes.c_int),
        ("bitmap_pad", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("bytes_per_line", ctypes.c_int),
        ("bits_per_pixel", ctypes.c_int),
    ]


class Screen:
    """Reads a rectangle of the root window (ZPixmap, 32 bits per pixel, BGRX) through Xlib."""

    def __init__(self, display: str) -> None:
        x11 = ctypes.CDLL("libX11.so.6")
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XDefaultRootWindow.restype = ctypes.c_ulong
        x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x11.XGetImage.restype = ctypes.POINTER(_XImage)
        x11.XGetImage.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_ulong,
            ctypes.c_int,
        ]
        x11.XDestroyImage.argtypes = [ctypes.c_void_p]
        x11.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        xtest = ctypes.CDLL("libXtst.so.6")
        xtest.XTestFakeButtonEvent.argtypes = [ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_ulong]
        xtest.XTestFakeMotionEvent.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_ulong]
        self._xtest = xtest
        self._x11 = x11
        self._display = x11.XOpenDisplay(display.encode())
        if not self._display:
            raise RuntimeError(f"cannot open display {display}")
        self._root = x11.XDefaultRootWindow(self._display)

    def pixels(self, x: int, y: int, width: int, height: int) -> list[tuple[int, int, int]]:
        image = self._x11.XGetImage(self._display, self._root, x, y, width, height, 0xFFFFFFFF, 2)  # AllPlanes, ZPixmap
        if not image:
            return []
        try:
            info = image.contents
            if info.bits_per_pixel != 32:
                raise RuntimeError(f"unexpected {info.bits_per_pixel} bits per pixel")
            data = ctypes.string_at(info.data, info.bytes_per_line * info.height)
        finally:
            self._x11.XDestroyImage(ctypes.cast(image, ctypes.c_void_p))
        out = []
        for row in range(height):
            line = data[row * info.bytes_per_line : row * info.bytes_per_line + width * 4]
            out.extend((line[i + 2], line[i + 1], line[i]) for i in range(0, len(line), 4))
        return out

    def click(self, x: int, y: int, button: int = 1) -> tuple[float, float]:
        """A click as xdotool sends it (XTest: motion, press, 12 ms, release). Returns the time
        (CLOCK_REALTIME) just before the press was sent and once the X server had taken it."""
        self._xtest.XTestFakeMotionEvent(self._display, -1, x, y, 0)
        self._x11.XSync(self._display, 0)
        time.sleep(0.05)  # the pointer is over the icon before the press, as under a hand
        before = time.time()
        self._xtest.XTestFakeButtonEvent(self._display, button, 1, 0)
        self._x11.XSync(self._display, 0)
        taken = time.time()
        time.sleep(0.012)
        self._xtest.XTestFakeButtonEvent(self._display, button, 0, 0)
        self._x11.XSync(self._display, 0)
        return before, taken


def icon_colour(pixels: list[tuple[int, int, int]]) -> str:
    """grey, amber, green or red: the state colour most of the icon's pixels have; "none" when
    no icon is drawn there (the tray host's background)."""
    counts = {"grey": 0, "green": 0, "amber": 0, "red": 0}
    for r, g, b in pixels:
        if g > r + 40 and g > b + 20:
            counts["green"] += 1
        elif r > 150 and g > 80 and b < 70 and r > g + 30:
            counts["amber"] += 1
        elif r > 120 and g < 80 and b < 80:
            counts["red"] += 1
        elif 90 < r < 170 and abs(r - g) < 12 and abs(g - b) < 12:
            counts["grey"] += 1
    colour, count = max(counts.items(), key=lambda item: item[1])
    return colour if count >= max(20, len(pixels) // 8) else "none"


# -- the loopback's packets ----------------------------------------------------------------------

SO_TIMESTAMPNS = 35
ETH_P_ALL = 0x0003


class SynCapture:
    """Kernel timestamps (CLOCK_REALTIME) of TCP SYNs (without ACK) to `port` on the loopback."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.syns: list[float] = []
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self._sock.bind(("lo", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="syn-capture", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _flags, _address = self._sock.recvmsg(128, 64)
            except TimeoutError:
                continue
            except OSError:
                return
            at = None
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    at = seconds + nanoseconds / 1e9
            if at is not None and self._is_syn(data[14:], struct.unpack("!H", data[12:14])[0]):
                self.syns.append(at)

    def _is_syn(self, packet: bytes, ethertype: int) -> bool:
        if ethertype == 0x0800 and len(packet) >= 20 and packet[9] == 6:
            tcp = packet[(packet[0] & 0x0F) * 4 :]
        elif ethertype == 0x86DD and len(packet) >= 40 and packet[6] == 6:
            tcp = packet[40:]
        else:
            return False
        if len(tcp) < 14:
            return False
        return struct.unpack("!H", tcp[2:4])[0] == self.port and tcp[13] & 0x12 == 0x02  # SYN, not ACK

    def first_after(self, since: float, timeout: float) -> float | None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = [at for at in self.syns if at >= since]
            if found:
                return min(found)
            time.sleep(0.002)
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


# -- the tray process ----------------------------------------------------------------------------


def xdotool(env: dict[str, str], *args: str) -> str:
    return subprocess.run(["xdotool", *args], env=env, check=True, capture_output=True, text=True).stdout


def find_windows(env: dict[str, str], *how: str) -> list[str]:
    result = subprocess.run(["xdotool", "search", *how], env=env, capture_output=True, text=True)
    return result.stdout.split()


def window_geometry(env: dict[str, str], window: str) -> tuple[int, int, int, int]:
    values = dict(line.split("=", 1) for line in xdotool(env, "getwindowgeometry", "--shell", window).split())
    return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])


def memory_of(pid: int) -> dict[str, float]:
    """VmRSS and Pss in MB (10^6 bytes)."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            pss = int(line.split()[1])
    return {"rss_mb": rss * 1024 / 1e6, "pss_mb": pss * 1024 / 1e6}


def wakeups_of(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def idle_cpu(pid: int, seconds: float) -> dict[str, float]:
    cpu0, wake0, t0 = process_cpu_seconds(pid), wakeups_of(pid), time.monotonic()
    time.sleep(seconds)
    cpu1, wake1, t1 = process_cpu_seconds(pid), wakeups_of(pid), time.monotonic()
    if cpu0 is None or cpu1 is None:
        raise RuntimeError("the tray process ended during the idle measurement")
    return {"cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0), "wakeups_per_s": (wake1 - wake0) / (t1 - t0)}


class Tray:
    """One sstp-vpn-tray process and what a person does with its icon."""

    def __init__(self, env: dict[str, str], screen: Screen, log: Path) -> None:
        self.env = env
        self.screen = screen
        self._log = log.open("w")
        self._started = time.monotonic()
        self.start_to_icon: float | None = None
        self.process = subprocess.Popen([str(Path(sys.executable).parent / "sstp-vpn-tray")], env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.icon = self._wait_for_icon()
        self.wait_colour("grey", 20)

    def _wait_for_icon(self) -> tuple[int, int, int, int]:
        """The icon's place once the tray host has embedded it and stopped moving it."""
        end = time.monotonic() + 60
        seen: tuple[int, int, int, int] | None = None
        since = 0.0
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"sstp-vpn-tray ended with {self.process.returncode}; see {self._log.name}")
            for window in find_windows(self.env, "--onlyvisible", "--classname", TRAY_CLASS):
                geometry = window_geometry(self.env, window)
                if geometry[0] > 0 and geometry[2] > 4:  # embedded in trayer (the others are 1x1 at 0,0)
                    if geometry != seen:
                        seen, since = geometry, time.monotonic()
                        if self.start_to_icon is None:
                            self.start_to_icon = since - self._started
                    elif time.monotonic() - since > 0.5:
                        return geometry
            time.sleep(0.01)
        raise TimeoutError("the tray icon did not appear (and stay in one place) in the tray host within 60 s")

    def colour(self) -> str:
        x, y, width, height = self.icon
        colour = icon_colour(self.screen.pixels(x, y, width, height))
        if colour == "none":  # the tray host moved the icon (it lays its icons out again at times)
            moved = self._embedded_place()
            if moved is not None and moved != self.icon:
                self.icon = moved
                colour = icon_colour(self.screen.pixels(*moved))
        return colour

    def _embedded_place(self) -> tuple[int, int, int, int] | None:
        for window in find_windows(self.env, "--onlyvisible", "--classname", TRAY_CLASS):
            try:
                geometry = window_geometry(self.env, window)
            except subprocess.CalledProcessError:
                continue  # gone since the search
            if geometry[0] > 0 and geometry[2] > 4:
                return geometry
        return None

    def wait_colour(self, colour: str, timeout: float, interval: float = 0.005) -> float:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.colour() == colour:
                return time.time()
            time.sleep(interval)
        raise TimeoutError(f"the tray icon did not turn {colour} within {timeout} s (it is {self.colour()})")

    def click(self, button: int = 1) -> tuple[float, float]:
        x, y, width, height = self.icon
        return self.screen.click(x + width // 2, y + height // 2, button)

    def open_status_window(self) -> None:
        self.click(3)
        time.sleep(0.5)
        xdotool(self.env, "key", "s")  # &Status… in the tray menu
        end = time.monotonic() + 10
        while not find_windows(self.env, "--onlyvisible", "--name", STATUS_TITLE):
            if time.monotonic() > end:
                raise TimeoutError("the status window did not open")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # the tray disconnects cleanly on SIGTERM, then quits
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def measure(label: str, env: dict[str, str], screen: Screen, capture: SynCapture, args: argparse.Namespace, folder: Path) -> dict:
    print(f"[{label}] starting sstp-vpn-tray", file=sys.stderr, flush=True)
    tray = Tray(env, screen, folder / f"tray-{label}.log")
    result: dict = {"start_to_icon_s": tray.start_to_icon, "click_to_syn_ms": [], "click_to_green_ms": [], "press_sync_ms": [], "missed_clicks": 0}
    try:
        for round_number in range(args.rounds):
            time.sleep(1.0)
            for _attempt in range(3):
                before, clicked = tray.click()
                syn = capture.first_after(before, 5)
                if syn is not None or tray.colour() != "grey":
                    break
                result["missed_clicks"] += 1  # nothing happened: counted, and clicked again
                print(f"[{label}] the click was not taken; clicking again", file=sys.stderr, flush=True)
            green = tray.wait_colour("green", 60)
            if syn is None:
                raise TimeoutError("no SYN reached the server within 5 s of the click")
            result["click_to_syn_ms"].append(1000 * (syn - clicked))
            result["click_to_green_ms"].append(1000 * (green - clicked))
            result["press_sync_ms"].append(1000 * (clicked - before))
            print(
                f"[{label}] round {round_number + 1}: click→SYN {1000 * (syn - clicked):.1f} ms, click→green {1000 * (green - clicked):.0f} ms",
                file=sys.stderr,
                flush=True,
            )
            if round_number < args.rounds - 1:
                time.sleep(1.0)
                tray.click()  # disconnect
                tray.wait_colour("grey", 30)
        pid = tray.process.pid
        time.sleep(3.0)  # connected and settled
        result["memory_closed"] = memory_of(pid)
        print(f"[{label}] idle {args.idle:.0f} s, status window closed", file=sys.stderr, flush=True)
        result["idle_closed"] = idle_cpu(pid, args.idle)
        tray.open_status_window()
        time.sleep(2.0)
        result["memory_open"] = memory_of(pid)
        print(f"[{label}] idle {args.idle:.0f} s, status window open", file=sys.stderr, flush=True)
        result["idle_open"] = idle_cpu(pid, args.idle)
    except BaseException:
        tray.stop()
        print(f"[{label}] the tray's output:\n{(folder / f'tray-{label}.log').read_text()[-3000:]}", file=sys.stderr)
        raise
    tray.stop()
    return result


# -- the run ------------------------------------------------------------------------------------


def inner(args: argparse.Namespace) -> int:
    """Inside the namespace: the desktop, the server, the capture, then each variant of the tray."""
    from keyring.backends import SecretService

    from sstpvpn.client.profiles import Profile, ProfileStore, new_profile_id
    from sstpvpn.client.secret_store import SecretKind, SecretStore
    from tests.gui.desktop import environment, secret_service, session_bus, tray_host, virtual_display
    from tests.loopback_sstp import LoopbackSstpServer

    class PatientServer(LoopbackSstpServer):
        read_timeout = 2.0  # the conversation ends a connection after 150 silent reads: 5 minutes

    folder = Path(tempfile.mkdtemp(prefix="sstpvpn-bench-tray-"))
    results: dict = {}
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        display = stack.enter_context(virtual_display())
        bus = stack.enter_context(session_bus())
        stack.enter_context(environment(**display.env, DBUS_SESSION_BUS_ADDRESS=bus))
        stack.enter_context(secret_service(bus))
        stack.enter_context(tray_host(display))
        server = stack.enter_context(PatientServer(folder))
        capture = SynCapture(server.port)
        stack.callback(capture.close)
        screen = Screen(display.name)
        # Not closed: were the X server gone (a Ctrl-C), Xlib would end this process at once, before the clean-up.
        config_home = folder / "config"
        store = ProfileStore(config_home / "sstp-vpn" / "profiles.toml")
        profile = store.save(
            Profile(id=new_profile_id(), name=PROFILE_NAME, host="localhost", port=server.port, username="alice", ca_file=str(server.cert_path))
        )
        SecretStore(SecretService.Keyring()).set(profile.id, SecretKind.VPN, PASSWORD)
        base_env = {**os.environ, "XDG_CONFIG_HOME": str(config_home), "LANGUAGE": "en", "LC_ALL": "C.UTF-8"}
        base_env.pop("PYTHONPATH", None)
        variants = []
        if args.before:
            variants.append(("before", {**base_env, "PYTHONPATH": args.before}))
        variants.append(("now", base_env))
        for label, env in variants:
            results[label] = measure(label, env, screen, capture, args, folder)
    report(results, args)
    return 0


def summary(result: dict) -> dict:
    syn, green = result["click_to_syn_ms"], result["click_to_green_ms"]
    return {
        "start → icon (s)": result["start_to_icon_s"],
        "click → SYN, median (ms)": statistics.median(syn),
        "click → SYN, first click (ms)": syn[0],
        "click → SYN, max (ms)": max(syn),
        "click → green, median (ms)": statistics.median(green),
        "RSS connected (MB)": result["memory_closed"]["rss_mb"],
        "PSS connected (MB)": result["memory_closed"]["pss_mb"],
        "RSS, status window open (MB)": result["memory_open"]["rss_mb"],
        "idle CPU, window closed (% of a core)": result["idle_closed"]["cpu_percent"],
        "idle CPU, window open (% of a core)": result["idle_open"]["cpu_percent"],
        "wake-ups/s, window closed": result["idle_closed"]["wakeups_per_s"],
        "wake-ups/s, window open": result["idle_open"]["wakeups_per_s"],
        "clicks not taken (clicked again)": result["missed_clicks"],
    }


def report(results: dict, args: argparse.Namespace) -> None:
    machine = f"{os.cpu_count()} cores, {std_platform.machine()}, Linux {std_platform.release()}, Python {std_platform.python_version()}"
    summaries = {label: summary(result) for label, result in results.items()}
    labels = list(summaries)
    print(f"\nTray app (sstp-vpn-tray, engine in-process, loopback SSTP server in a namespace); {machine}")
    print(f"{args.rounds} connects per variant, idle over {args.idle:.0f} s; clicks by XTest, SYN by AF_PACKET on lo (kernel timestamps)\n")
    header = "| measure | " + " | ".join(labels) + (" | now / before |" if "before" in summaries else " |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name in summaries[labels[0]]:
        values = [summaries[label][name] for label in labels]
        digits = 3 if name.startswith("start") or "CPU" in name else 1
        cells = [str(value) if isinstance(value, int) else f"{value:.{digits}f}" for value in values]
        line = f"| {name} | " + " | ".join(cells) + " |"
        if "before" in summaries:
            before, now = summaries["before"][name], summaries["now"][name]
            line += f" {now / before:.2f} |" if before else " — |"
        print(line)
    print("\ngoals: click → SYN ≤ 50 ms; RSS connected ≤ 90 MB; idle CPU < 0.5 % of a core (window closed and open)")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"machine": machine, "rounds": args.rounds, "idle_s": args.idle, "results": results, "summary": summaries}, indent=2)
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="connects per variant (median of these)")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of each idle CPU measurement")
    parser.add_argument("--before", metavar="PATH", help="also measure the code at PATH (PYTHONPATH), e.g. /root/before/shadow")
    parser.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        return inner(args)
    if os.geteuid() != 0:
        parser.error("run as root: the namespace and the tunnel need it")
    from tests.netns import Namespace

    with Namespace("sstptray") as ns:
        argv = [sys.executable, str(Path(__file__).resolve()), "--inner", "--rounds", str(args.rounds), "--idle", str(args.idle)]
        if args.before:
            argv += ["--before", args.before]
        if args.json:
            argv += ["--json", str(Path(args.json).resolve())]
        # In a session of its own, so a Ctrl-C reaches it alone (forwarded below), not the X server
        # and the others it started, which it stops in order (the tray app first, politely).
        child = subprocess.Popen(ns.argv(*argv), cwd=REPO_ROOT, start_new_session=True)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            return 130


if __name__ == "__main__":
    sys.exit(main())
