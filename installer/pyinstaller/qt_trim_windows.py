"""Leaves Qt plugins and DLLs the tray app never uses out of the Windows bundle.

PyInstaller's Qt hooks collect every plugin of the plugin types QtGui and QtWidgets use, and the
DLLs those plugins import: the virtual keyboard plugin brings QtQml and QtQuick, the PDF image
format QtPdf, the TLS and network-information plugins QtNetwork; `opengl32sw.dll` (20 MB, Mesa's
software OpenGL) is only a fallback for OpenGL, which the tray's widgets do not use.

As on Linux (qt_trim_linux.py), nothing a kept file imports is removed: each PE file's import table
is read (pefile, which PyInstaller itself uses on Windows), so a wrong entry here costs size, not a
broken bundle. Runs inside PyInstaller, from installer/windows/sstp-vpn.spec.
"""

from __future__ import annotations

from collections import defaultdict

PLUGINS = "pyside6/plugins/"
LEFT_OUT_PLUGINS = (
    "platforminputcontexts/",  # the virtual keyboard: QtQuick, QtQml
    "imageformats/qpdf.dll",  # QtPdf
    "generic/",  # raw touch input (TUIO over the network)
    "networkinformation/",  # QtNetwork
    "tls/",  # QtNetwork
    "qmltooling/",
)
LEFT_OUT_DLLS = (
    "opengl32sw.dll",
    "qt6pdf.dll",
    "qt6qml.dll",
    "qt6qmlmeta.dll",
    "qt6qmlmodels.dll",
    "qt6qmlworkerscript.dll",
    "qt6quick.dll",
    "qt6virtualkeyboard.dll",
    "qt6virtualkeyboardqml.dll",
    "qt6network.dll",
    "qt6opengl.dll",
)


def _left_out(destination: str) -> bool:
    name = destination.replace("\\", "/").lower()
    if name.startswith(PLUGINS):
        return name[len(PLUGINS) :].startswith(LEFT_OUT_PLUGINS)
    return name.startswith("pyside6/") and name.rsplit("/", 1)[-1] in LEFT_OUT_DLLS


def imported_dlls(path: str) -> set[str]:
    """The DLL names (lower case) a PE file imports; empty for anything else."""
    import pefile

    try:
        pe = pefile.PE(path, fast_load=True)
    except pefile.PEFormatError:
        return set()
    try:
        pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_IMPORT"]])
        return {entry.dll.decode("ascii", "replace").lower() for entry in getattr(pe, "DIRECTORY_ENTRY_IMPORT", [])}
    finally:
        pe.close()


Toc = list[tuple[str, str, str]]  # PyInstaller's (destination, source, type code) entries


def trimmed(binaries: Toc, datas: Toc) -> tuple[Toc, Toc, list[str]]:
    """(the binaries to keep, the datas to keep, the binaries left out)."""
    unwanted = {entry[0] for entry in binaries if len(entry) == 3 and _left_out(entry[0])}
    if not unwanted:
        return binaries, datas, []
    by_name: dict[str, list[str]] = defaultdict(list)
    source_of = {}
    for destination, source, _kind in binaries:
        by_name[destination.replace("\\", "/").rsplit("/", 1)[-1].lower()].append(destination)
        source_of[destination] = source
    imports = {destination: imported_dlls(source) for destination, source in source_of.items()}

    def closure(start: set[str]) -> set[str]:
        seen, todo = set(start), list(start)
        while todo:
            for name in imports[todo.pop()]:
                for destination in by_name.get(name, ()):
                    if destination not in seen:
                        seen.add(destination)
                        todo.append(destination)
        return seen

    kept = closure(set(source_of) - closure(unwanted))
    left_out = set(source_of) - kept
    return [entry for entry in binaries if entry[0] in kept], datas, sorted(left_out)
