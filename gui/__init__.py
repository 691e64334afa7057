"""The PySide6 tray app. Only this package imports Qt."""
