"""The shipped tray icons: every state and size is installed, the PNGs are what their SVG sources
draw, and the states differ at a glance (grey, amber, green, red)."""

from __future__ import annotations

from importlib.resources import files

import pytest
from PySide6.QtGui import QImage

from sstpvpn.assets import render_icons as renderer
from sstpvpn.gui.icons import SIZES, TrayState, app_icon, state_icon

ICONS = files("sstpvpn.assets") / "icons"


@pytest.mark.parametrize("stem", [f"sstp-vpn-{state.value}" for state in TrayState] + ["sstp-vpn-app"])
def test_pngs_match_their_svg_source(qtbot, stem):
    assert renderer.SIZES == SIZES
    for size in SIZES:
        shipped = QImage(str(ICONS / f"{stem}-{size}.png")).convertToFormat(QImage.Format.Format_ARGB32)
        drawn = renderer.render(ICONS / f"{stem}.svg", size)
        assert (shipped.width(), shipped.height()) == (size, size)
        worst = max(
            abs(a - b)
            for x in range(size)
            for y in range(size)
            for a, b in zip(shipped.pixelColor(x, y).getRgb(), drawn.pixelColor(x, y).getRgb(), strict=True)
        )
        assert worst <= 8, f"{stem}-{size}.png differs from its SVG: run python assets/render_icons.py"


def dominant_hue_family(image: QImage) -> str:
    counts = {"grey": 0, "amber": 0, "green": 0, "red": 0, "blue": 0}
    for x in range(image.width()):
        for y in range(image.height()):
            c = image.pixelColor(x, y)
            if c.alpha() < 200 or c.lightness() > 230:
                continue  # transparent surroundings, the white glyph
            if c.hsvSaturation() < 60:
                counts["grey"] += 1
            elif 30 <= c.hsvHue() <= 50:
                counts["amber"] += 1
            elif 100 <= c.hsvHue() <= 160:
                counts["green"] += 1
            elif c.hsvHue() <= 15 or c.hsvHue() >= 345:
                counts["red"] += 1
            elif 200 <= c.hsvHue() <= 230:
                counts["blue"] += 1
    return max(counts, key=counts.get)


def test_states_look_different(qtbot):
    families = {state: dominant_hue_family(state_icon(state).pixmap(22, 22).toImage()) for state in TrayState}
    assert families == {TrayState.DISCONNECTED: "grey", TrayState.CONNECTING: "amber", TrayState.CONNECTED: "green", TrayState.ERROR: "red"}
    assert dominant_hue_family(app_icon().pixmap(64, 64).toImage()) == "blue"
    assert sorted(size.width() for size in state_icon(TrayState.CONNECTED).availableSizes()) == list(SIZES)
