"""The installed tray app under Wine on a virtual X display: its icon appears in Wine's own
"Wine System Tray" window (there is no X tray host), a right-click opens the real menu, and
Quit ends it. Screenshots: artifacts/screenshots/wine-tray-icon.png and wine-tray-menu.png."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

TRAY_WINDOW = "^Wine System Tray$"
MENU_WINDOW = "^SSTP VPN$"  # the context menu's window carries the application name


def visible_window(name: str, timeout: float) -> tuple[str, dict[str, int]] | None:
    """(id, geometry) of the first visible X window whose name matches, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", name], capture_output=True, text=True).stdout.split()
        if found:
            shell = subprocess.run(["xdotool", "getwindowgeometry", "--shell", found[0]], capture_output=True, text=True).stdout
            geometry = {
                key: int(value) for key, value in (line.split("=") for line in shell.split() if "=" in line) if key in ("X", "Y", "WIDTH", "HEIGHT")
            }
            if geometry.get("WIDTH", 0) > 1:
                return found[0], geometry
        time.sleep(0.5)
    return None


def screenshot(path: Path, geometry: dict[str, int], margin: int = 0) -> None:
    x, y = max(0, geometry["X"] - margin), max(0, geometry["Y"] - margin)
    crop = f"{geometry['WIDTH'] + 2 * margin}x{geometry['HEIGHT'] + 2 * margin}+{x}+{y}"
    subprocess.run(["import", "-window", "root", "-crop", crop, "+repage", str(path)], check=True)


def colours(path: Path) -> int:
    return int(subprocess.run(["convert", str(path), "-format", "%k", "info:"], capture_output=True, text=True, check=True).stdout)


def test_tray_icon_shows_and_its_menu_opens(installed, screenshots):
    wine = installed.wine
    tray = subprocess.Popen(
        ["wine", installed.tray], env=wine.environment(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        found = visible_window(TRAY_WINDOW, 90)
        assert found is not None, "Wine's system tray window did not appear: the tray app did not put an icon there"
        tray_window, tray_geometry = found
        icon_shot = screenshots / "wine-tray-icon.png"
        deadline = time.monotonic() + 20
        screenshot(icon_shot, tray_geometry)
        while colours(icon_shot) < 8 and time.monotonic() < deadline:  # an empty tray window is plain white
            time.sleep(0.5)
            screenshot(icon_shot, tray_geometry)
        assert colours(icon_shot) >= 8, "the tray window stayed empty"

        # The first icon sits at the window's left edge (Wine draws icons of 16 pixels in 20).
        subprocess.run(["xdotool", "mousemove", "--window", tray_window, "10", "10", "click", "3"], check=True)
        found = visible_window(MENU_WINDOW, 20)
        assert found is not None, "right-clicking the tray icon opened no menu"
        menu_window, menu_geometry = found
        assert menu_geometry["HEIGHT"] > 100  # the menu's entries, not an empty popup
        union = {
            "X": tray_geometry["X"],
            "Y": tray_geometry["Y"],
            "WIDTH": max(tray_geometry["X"] + tray_geometry["WIDTH"], menu_geometry["X"] + menu_geometry["WIDTH"]) - tray_geometry["X"],
            "HEIGHT": menu_geometry["Y"] + menu_geometry["HEIGHT"] - tray_geometry["Y"],
        }
        screenshot(screenshots / "wine-tray-menu.png", union, margin=10)

        # Quit is the last entry: the app ends by itself.
        subprocess.run(["xdotool", "mousemove", "--window", menu_window, "40", str(menu_geometry["HEIGHT"] - 14), "click", "1"], check=True)
        output, _ = tray.communicate(timeout=30)
        assert tray.returncode == 0, output
    finally:
        if tray.poll() is None:
            wine.stop()
            tray.wait(30)
