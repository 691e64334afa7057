"""How this process gets its tunnel interface, and what stands in the way.

On Linux and macOS an ordinary user's sessions ask the privileged network helper
(sstp-vpn-helper) for the tunnel interface, routes and DNS, and the helper repairs what a killed
session left; root does all of it itself (servers, CI). On Linux root needs CAP_NET_ADMIN for that,
which a container or setpriv may have taken away. On Windows every session goes through the SSTP
VPN network service (helper_windows), elevated or not: the app runs as the signed-in user. The
macOS helper and the Windows service have not run on those systems yet.
"""

from __future__ import annotations

import os
import sys

from sstpvpn.client.core.i18n import _

CAP_NET_ADMIN = 12  # linux/capability.h
HELPER_SYSTEMS = ("linux", "darwin", "win32")


def root_without_net_admin_sentence() -> str:
    return _(
        "The tray app runs as root but without CAP_NET_ADMIN, so it cannot create the tunnel interface: start it "
        "without that limit (sudo sstp-vpn-tray), or as your own user with the SSTP VPN network helper."
    )


def uses_network_helper(platform_name: str | None = None) -> bool:
    """True when this process's sessions go through the network helper, False when it makes the
    tunnel itself. `platform_name` is a sys.platform value (default: this system's)."""
    name = platform_name or sys.platform
    if name == "win32":
        return True
    return name in HELPER_SYSTEMS and os.geteuid() != 0


def tunnel_problem(platform_name: str | None = None, status_file: str = "/proc/self/status") -> str | None:
    """None when a tunnel can be had (as far as can be told before trying); else the sentence to
    show, so the tray can say what is missing before the first connection fails. It looks at a
    few files (the helper's socket, /proc), so call it off the GUI thread."""
    name = platform_name or sys.platform
    if name not in HELPER_SYSTEMS:
        return None
    if uses_network_helper(name):
        from sstpvpn.platform.helper_client import unavailable_sentence

        return unavailable_sentence()
    if name == "darwin":
        return None  # root on macOS has what utun needs
    try:
        with open(status_file) as status:
            effective = effective_capabilities(status.read())
    except OSError:
        effective = None
    if effective is None:
        return None  # cannot tell: let the connection attempt say what happens
    return None if effective >> CAP_NET_ADMIN & 1 else root_without_net_admin_sentence()


def effective_capabilities(proc_status: str) -> int | None:
    """The CapEff bit mask of a /proc/<pid>/status text; None when it has none."""
    for line in proc_status.splitlines():
        if line.startswith("CapEff:"):
            try:
                return int(line.split()[1], 16)
            except (IndexError, ValueError):
                return None
    return None
