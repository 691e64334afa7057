"""`sstp-vpn-helper`: the privileged network helper of this system (see helper_linux and helper_macos)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    if sys.platform == "darwin":
        from sstpvpn.platform import helper_macos

        return helper_macos.main(argv)
    if sys.platform.startswith("linux"):
        from sstpvpn.platform import helper_linux

        return helper_linux.main(argv)
    print("sstp-vpn-helper is for Linux and macOS; on Windows the app itself runs elevated.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
