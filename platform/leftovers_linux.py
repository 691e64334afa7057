"""Tunnel interfaces of ours that outlived their session (`sstp-vpn repair`, as root): a TUN
interface named like ours (sstp0, sstp1, ...) that was made persistent and that no process holds
any more (the kernel turns its carrier off when the last descriptor goes). A TUN interface of
ours that nobody made persistent vanishes with its process and never needs this."""

from __future__ import annotations

import errno
import re
from pathlib import Path

from pyroute2 import IPRoute, NetlinkError

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.errors import PlatformError

OUR_NAMES = re.compile(r"sstp[0-9]{1,4}")  # helper_linux.OUR_NAMES, tun_linux's default pattern
IFF_PERSIST = 0x0800


def remove_leftover_tunnels(sys_class_net: Path = Path("/sys/class/net")) -> list[str]:
    """Delete such interfaces; one sentence per interface removed."""
    notes = []
    try:
        with IPRoute() as ipr:
            for link in ipr.get_links():
                name = link.get_attr("IFLA_IFNAME")
                if not isinstance(name, str) or not OUR_NAMES.fullmatch(name):
                    continue
                if link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") != "tun" or link.get_attr("IFLA_CARRIER") != 0:
                    continue  # not a TUN, or a process holds it
                try:
                    flags = int((sys_class_net / name / "tun_flags").read_text(), 16)
                except (OSError, ValueError):
                    continue
                if not flags & IFF_PERSIST:
                    continue
                try:
                    ipr.link("del", index=link["index"])
                except NetlinkError as error:
                    if error.code in (errno.ENODEV, errno.ENOENT):
                        continue
                    raise
                notes.append(_("Removed the tunnel interface {name} that an ended sstp-vpn left.").format(name=name))
    except NetlinkError as error:
        raise PlatformError(
            _("The tunnel interfaces could not be checked ({reason}).").format(reason=error.args[-1] if error.args else error)
        ) from error
    return notes
