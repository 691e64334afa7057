"""Render the PNG sizes of every icon from its SVG source (run after editing an SVG):

    python assets/render_icons.py

The app loads the PNGs, so it needs no SVG image plugin at run time (a bundle may lack it).
tests/gui/test_icons.py checks that the PNGs match their sources.
"""

from __future__ import annotations

import sys
from pathlib import Path

ICONS_DIR = Path(__file__).resolve().parent / "icons"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256)


def render(svg: Path, size: int):
    """The SVG drawn on a transparent size x size QImage."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise ValueError(f"{svg} is not a valid SVG file")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    return image


def png_path(svg: Path, size: int) -> Path:
    return svg.with_name(f"{svg.stem}-{size}.png")


def main() -> int:
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1] + ["-platform", "offscreen"])
    for svg in sorted(ICONS_DIR.glob("*.svg")):
        for size in SIZES:
            path = png_path(svg, size)
            if not render(svg, size).save(str(path)):
                raise OSError(f"could not write {path}")
            print(path.relative_to(ICONS_DIR.parent.parent))
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
