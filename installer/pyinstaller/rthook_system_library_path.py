"""Runtime hook (Linux): programs we start get the system's library path, not the bundle's.

The bootloader points LD_LIBRARY_PATH at the bundle's own folder and keeps the caller's value in
LD_LIBRARY_PATH_ORIG. The dynamic loader has read it by the time this runs, so this process keeps
finding its libraries; but resolvectl and other system programs started from here would otherwise
load the bundle's copies of libraries (built for the build host) in place of their own.
"""

import os


def _restore_library_path() -> None:
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is not None:
        os.environ["LD_LIBRARY_PATH"] = original
    else:
        os.environ.pop("LD_LIBRARY_PATH", None)


_restore_library_path()
del _restore_library_path
