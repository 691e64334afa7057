"""Opening the kernel's routing interface (pyroute2) and turning its errors into sentences, for
the Linux configurator and the route snapshot."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pyroute2 import IPRoute, NetlinkError

from sstpvpn.platform.errors import PlatformError

ADMIN_SENTENCE = "Configuring the network for the VPN needs administrator rights: run sstp-vpn as root (or give it CAP_NET_ADMIN)."


@contextmanager
def netlink() -> Iterator[IPRoute]:
    try:
        ipr = IPRoute()
    except OSError as error:
        raise PlatformError(f"The kernel's routing interface cannot be opened ({error.strerror}).") from error
    try:
        yield ipr
    finally:
        ipr.close()


def call(action: Callable[[], Any], what: str) -> Any:
    """`action()`, with a refusal of the kernel as a PlatformError saying what could not be done."""
    try:
        return action()
    except NetlinkError as error:
        raise netlink_error(error, what) from error


def netlink_error(error: NetlinkError, what: str) -> PlatformError:
    if error.code in (errno.EPERM, errno.EACCES):
        return PlatformError(ADMIN_SENTENCE)
    if error.code == errno.ENODEV:
        return PlatformError("The tunnel interface disappeared while it was being configured; reconnect.")
    return PlatformError(f"Could not {what} ({os.strerror(error.code)}).")
