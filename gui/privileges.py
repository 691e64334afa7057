"""Whether this process may create the tunnel. Until SSTP VPN has its privileged helper, the tray
app itself needs root or CAP_NET_ADMIN on Linux; it says so at start, not only after a failed
connection."""

from __future__ import annotations

import os
import sys

CAP_NET_ADMIN = 12  # linux/capability.h

TRAY_ADMIN_SENTENCE = ("Connecting needs administrator rights until SSTP VPN gets its privileged helper: "
                       "start the tray app with sudo sstp-vpn-tray (or give it CAP_NET_ADMIN).")


def network_admin_problem(status_file: str = "/proc/self/status") -> str | None:
    """None when the tunnel can be created (or the system is not Linux); else the sentence."""
    if not sys.platform.startswith("linux") or os.geteuid() == 0:
        return None
    try:
        with open(status_file) as status:
            effective = next((line.split()[1] for line in status if line.startswith("CapEff:")), "0")
    except OSError:
        return None  # cannot tell: let the connection attempt say what happens
    return None if int(effective, 16) >> CAP_NET_ADMIN & 1 else TRAY_ADMIN_SENTENCE
