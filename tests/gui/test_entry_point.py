"""`sstp-vpn-tray`, the installed command: it puts its icon in the tray host and quits cleanly on
SIGTERM, with nothing on stderr."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

from PySide6.QtGui import QGuiApplication

from tests.netns import stop_process
from tests.realparts import missing

DISCONNECTED_FILL = (0x8A, 0x90, 0x99)  # assets/icons/sstp-vpn-disconnected.svg


def icon_pixels_in_tray_area() -> int:
    screen = QGuiApplication.primaryScreen()
    width = screen.geometry().width()
    image = screen.grabWindow(0, width - 300, 0, 300, 40).toImage()
    return sum(image.pixelColor(x, y).getRgb()[:3] == DISCONNECTED_FILL for x in range(image.width()) for y in range(image.height()))


def test_tray_command_shows_its_icon_and_quits_on_sigterm(qtbot, desktop, tray, tmp_path):
    command = shutil.which("sstp-vpn-tray")
    if command is None:
        missing("the sstp-vpn-tray command", "pip install -e '.[gui]'")
    qtbot.waitUntil(lambda: icon_pixels_in_tray_area() == 0, timeout=5000)  # icons of earlier tests are gone
    env = {**os.environ, **desktop.env, "XDG_CONFIG_HOME": str(tmp_path)}
    app = subprocess.Popen([command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        qtbot.waitUntil(lambda: icon_pixels_in_tray_area() > 20, timeout=20000)
        app.send_signal(signal.SIGTERM)
        out, err = app.communicate(timeout=20)
    finally:
        stop_process(app)
    assert app.returncode == 0
    assert (out, err) == ("", "")
    qtbot.waitUntil(lambda: icon_pixels_in_tray_area() == 0, timeout=5000)


def test_version():
    if shutil.which("sstp-vpn-tray") is None:
        missing("the sstp-vpn-tray command", "pip install -e '.[gui]'")
    result = subprocess.run(["sstp-vpn-tray", "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.startswith("sstp-vpn-tray ")
