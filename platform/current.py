"""The platform implementation for this operating system, picked once by `sys.platform`.

    from sstpvpn.platform import current
    tun = current.TunDevice.open()
    config = current.NetConfigurator(tun.name, server_address)

On an operating system without an implementation, importing this module still works (a GUI can
start and explain); using any of the names raises PlatformError with `UNSUPPORTED_SENTENCE`.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from sstpvpn.platform.errors import PlatformError

__all__ = ["PlatformError", "SUPPORTED", "UNSUPPORTED_SENTENCE", "TunDevice", "NetConfigurator",
           "repair_from_journal", "default_journal_path", "unsupported_sentence"]


def unsupported_sentence(platform_name: str) -> str | None:
    """None when `platform_name` (a sys.platform value) is supported, else the sentence to show."""
    if platform_name.startswith("linux"):
        return None
    if platform_name in ("win32", "cygwin"):
        return ("SSTP VPN cannot create its tunnel on Windows yet; that comes in a later release. "
                "It runs on Linux today.")
    if platform_name == "darwin":
        return ("SSTP VPN cannot create its tunnel on macOS yet; that comes in a later release. "
                "It runs on Linux today.")
    return f"SSTP VPN runs on Linux (Windows and macOS are planned); this system ({platform_name}) is not supported."


UNSUPPORTED_SENTENCE = unsupported_sentence(sys.platform)
SUPPORTED = UNSUPPORTED_SENTENCE is None

if sys.platform == "linux":
    from sstpvpn.platform.netconfig_linux import NetConfigurator, default_journal_path, repair_from_journal
    from sstpvpn.platform.tun_linux import TunDevice
else:

    def _unsupported(*_args: Any, **_kwargs: Any) -> NoReturn:
        raise PlatformError(UNSUPPORTED_SENTENCE or "This system is not supported.")

    class TunDevice:  # type: ignore[no-redef]
        open = staticmethod(_unsupported)

    class NetConfigurator:  # type: ignore[no-redef]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            _unsupported()

    repair_from_journal = _unsupported
    default_journal_path = _unsupported
