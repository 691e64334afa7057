"""Opening the kernel's routing interface (pyroute2) and turning its errors into sentences, for
the Linux configurator and the route snapshot."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pyroute2 import IPRoute, NetlinkError

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.errors import PlatformError

# The kernel's reason (strerror) -> the sentence saying what could not be done.
Failed = Callable[[str], str]


def admin_sentence() -> str:
    return _("Configuring the network for the VPN needs administrator rights: run sstp-vpn as root (or give it CAP_NET_ADMIN).")


@contextmanager
def netlink() -> Iterator[IPRoute]:
    try:
        ipr = IPRoute()
    except OSError as error:
        raise PlatformError(_("The kernel's routing interface cannot be opened ({reason}).").format(reason=error.strerror)) from error
    try:
        yield ipr
    finally:
        ipr.close()


def call(action: Callable[[], Any], failed: Failed) -> Any:
    """`action()`, with a refusal of the kernel as a PlatformError saying what could not be done."""
    try:
        return action()
    except NetlinkError as error:
        raise netlink_error(error, failed) from error


def netlink_error(error: NetlinkError, failed: Failed) -> PlatformError:
    if error.code in (errno.EPERM, errno.EACCES):
        return PlatformError(admin_sentence())
    if error.code == errno.ENODEV:
        return PlatformError(_("The tunnel interface disappeared while it was being configured; reconnect."))
    return PlatformError(failed(os.strerror(error.code)))
