"""Leaves Qt plugins and libraries the tray app never uses out of the Linux bundle, together with
the system libraries that only they needed.

PyInstaller's Qt hooks collect every plugin of the plugin types QtGui and QtWidgets use, and its
dependency analysis then copies the build host's libraries those plugins link: the virtual
keyboard plugin pulls in QtQml and QtQuick, the GTK3 platform theme pulls in the whole GTK3, cairo
and pango stack. A bundled GTK3 would also load the target system's GTK modules and themes,
which need not match it; without the theme Qt draws its own Fusion style.

Nothing a kept file links against (ELF NEEDED) is ever removed, so a wrong entry here costs size,
not a broken bundle. Runs inside PyInstaller (from the spec); needs objdump (binutils), which
PyInstaller needs on Linux anyway.
"""

from __future__ import annotations

import re
import subprocess
from collections import defaultdict

FILE_HEADER = re.compile(r"^(?P<path>.+):\s+file format \S+$")  # objdump's line before each file
PLUGINS = "PySide6/Qt/plugins/"
LEFT_OUT_PLUGINS = (
    "platforminputcontexts/libqtvirtualkeyboardplugin.so",  # QtQuick, QtQml
    "imageformats/libqpdf.so",  # QtPdf
    "egldeviceintegrations/",  # EGLFS: embedded systems without X11 or Wayland
    "generic/",  # raw evdev/tuio input, for EGLFS and linuxfb
    "platforms/libqeglfs.so",
    "platforms/libqlinuxfb.so",
    "platforms/libqminimalegl.so",
    "platforms/libqvkkhrdisplay.so",
    "platforms/libqvnc.so",
    "platformthemes/libqgtk3.so",  # the GTK3 stack (see above)
    "wayland-graphics-integration-client/",  # OpenGL surfaces on Wayland; widgets draw to shared memory
)
LEFT_OUT_QT_LIBRARIES = (
    "libQt6EglFSDeviceIntegration.so.6",
    "libQt6EglFsKmsSupport.so.6",
    "libQt6Pdf.so.6",
    "libQt6Qml.so.6",
    "libQt6QmlMeta.so.6",
    "libQt6QmlModels.so.6",
    "libQt6QmlWorkerScript.so.6",
    "libQt6Quick.so.6",
    "libQt6VirtualKeyboard.so.6",
    "libQt6VirtualKeyboardQml.so.6",
)


def _left_out(destination: str) -> bool:
    if destination.startswith(PLUGINS):
        return destination[len(PLUGINS) :].startswith(LEFT_OUT_PLUGINS)
    return destination.rsplit("/", 1)[-1] in LEFT_OUT_QT_LIBRARIES


def needed_libraries(paths: list[str]) -> dict[str, set[str]]:
    """Each ELF file's NEEDED sonames, from one objdump run (non-ELF files get an empty set)."""
    needed: dict[str, set[str]] = defaultdict(set)
    output = subprocess.run(["objdump", "-p", *paths], capture_output=True, text=True).stdout
    current = None
    for line in output.splitlines():
        header = FILE_HEADER.match(line)
        if header:
            current = header["path"]
            continue
        words = line.split()
        if current is not None and len(words) == 2 and words[0] == "NEEDED":
            needed[current].add(words[1])
    return needed


Toc = list[tuple[str, str, str]]  # PyInstaller's (destination, source, type code) entries


def trimmed(binaries: Toc, datas: Toc) -> tuple[Toc, Toc, list[str]]:
    """(the binaries to keep, the datas to keep, the binaries left out).

    The datas hold PyInstaller's SYMLINK entries (a top-level name for a library in a subfolder,
    the source being the library's destination): those of a library left out go too.
    """
    by_soname: dict[str, list[str]] = defaultdict(list)
    for destination, _source, _kind in binaries:
        by_soname[destination.rsplit("/", 1)[-1]].append(destination)
    source_of = {destination: source for destination, source, _kind in binaries}
    needed = needed_libraries(sorted(set(source_of.values())))

    def closure(start: set[str]) -> set[str]:
        seen, todo = set(start), list(start)
        while todo:
            for soname in needed.get(source_of[todo.pop()], ()):
                for destination in by_soname.get(soname, ()):
                    if destination not in seen:
                        seen.add(destination)
                        todo.append(destination)
        return seen

    unwanted = {destination for destination in source_of if _left_out(destination)}
    only_for_unwanted = closure(unwanted)
    kept = closure(set(source_of) - only_for_unwanted)
    left_out = set(source_of) - kept
    return (
        [entry for entry in binaries if entry[0] in kept],
        [entry for entry in datas if not (entry[2] == "SYMLINK" and entry[1] in left_out)],
        sorted(left_out),
    )
