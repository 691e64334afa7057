"""Whether this process can get a tunnel interface, checked at start so the tray can say what is
missing before the first connection fails. On Linux root creates the tunnel itself, which needs
CAP_NET_ADMIN (a container or setpriv may have taken it away); an ordinary user's sessions (Linux
and macOS) go through the privileged network helper, whose client says when it is missing."""

from __future__ import annotations

import os
import sys

CAP_NET_ADMIN = 12  # linux/capability.h

ROOT_WITHOUT_NET_ADMIN_SENTENCE = (
    "The tray app runs as root but without CAP_NET_ADMIN, so it cannot create the tunnel interface: start it "
    "without that limit (sudo sstp-vpn-tray), or as your own user with the SSTP VPN network helper.")


def network_admin_problem(status_file: str = "/proc/self/status") -> str | None:
    """None when a tunnel can be had (or the system is not Linux); else the sentence to show."""
    if sys.platform not in ("linux", "darwin"):
        return None  # Windows: the app runs elevated (its manifest asks for it)
    if os.geteuid() != 0:
        from sstpvpn.platform.helper_client import unavailable_sentence

        return unavailable_sentence()
    if sys.platform == "darwin":
        return None  # root on macOS has what utun needs
    try:
        with open(status_file) as status:
            effective = next((line.split()[1] for line in status if line.startswith("CapEff:")), None)
    except OSError:
        effective = None
    if effective is None:
        return None  # cannot tell: let the connection attempt say what happens
    return None if int(effective, 16) >> CAP_NET_ADMIN & 1 else ROOT_WITHOUT_NET_ADMIN_SENTENCE
