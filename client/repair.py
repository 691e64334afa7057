"""`sstp-vpn repair`: removes whatever of ours a session left on this computer (its routes, DNS
settings, kill switch table and tunnel interface), through the platform layer's
`repair_everything()`. The way out when a crashed or killed client left the machine cut off."""

from __future__ import annotations

import sys
from typing import TextIO

from sstpvpn.platform import current
from sstpvpn.platform.errors import PlatformError

from .core.i18n import _


def run_repair(out: TextIO | None = None, err: TextIO | None = None) -> int:
    """One line per thing removed, or one saying nothing was left (on `out`, stdout): exit 0. A
    part that could not be removed: its sentence on `err` (stderr), exit 1."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        removed = current.repair_everything()
    except PlatformError as error:
        print(f"sstp-vpn: {error.sentence}", file=err)
        return 1
    for line in removed:
        print(line, file=out)
    if not removed:
        print(_("Nothing of SSTP VPN was left on this computer."), file=out)
    return 0
