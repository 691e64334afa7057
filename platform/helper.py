"""`sstp-vpn-helper`: the privileged network helper of this system (helper_linux, helper_macos, and
on Windows the network service, helper_windows)."""

from __future__ import annotations

import sys

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.language import use_users_language


def main(argv: list[str] | None = None) -> int:
    # The helper's sentences reach the user as its refusals: in the system's language (the
    # service's environment), the one the tray most likely shows.
    use_users_language()
    if sys.platform == "darwin":
        from sstpvpn.platform import helper_macos

        return helper_macos.main(argv)
    if sys.platform.startswith("linux"):
        from sstpvpn.platform import helper_linux

        return helper_linux.main(argv)
    if sys.platform == "win32":
        from sstpvpn.platform import helper_windows

        return helper_windows.main(argv)
    print(_("sstp-vpn-helper runs on Linux, macOS and Windows, not on {system}.").format(system=sys.platform), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
