"""Entry point of `sstp-vpn-tray`. The tray app itself is built in a later milestone (issue 5);
until then this says so plainly instead of failing with a traceback."""

import sys


def main() -> int:
    print("The SSTP VPN tray app is not available in this version yet; use `sstp-vpn connect` (see `sstp-vpn --help`).", file=sys.stderr)
    return 1
