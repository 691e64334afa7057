"""Package data of the tray app: icons/ holds the SVG sources and the PNG sizes rendered from
them by render_icons.py."""
