"""Give up every capability but CAP_NET_ADMIN: for `sstp-vpn-helper --listen`, which runs as root
without systemd, so nothing else takes from it what it does not need.

Under systemd the unit does this (CapabilityBoundingSet=CAP_NET_ADMIN, NoNewPrivileges=yes). The
helper stays uid 0, so it still reads and writes root's files (it owns them) without
CAP_DAC_OVERRIDE; it can no longer chown, kill other users' processes, load modules, mount, trace
processes or anything else root's other capabilities allow. Programs it starts (resolvectl) get
CAP_NET_ADMIN at most, since uid 0 regains only what the bounding set holds at execve().

The order matters: dropping from the bounding set needs CAP_SETPCAP, so the bounding set goes
first and capset(), which gives up CAP_SETPCAP with the rest, comes last. Call it once, after the
last step that needs root's other capabilities (helper_linux: after `_listening_socket`, which
chowns the socket), before the first connection is accepted.
"""

from __future__ import annotations

import ctypes
import errno
import os

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.errors import PlatformError

CAP_NET_ADMIN = 12

# linux/prctl.h
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

# linux/capability.h: version 3 carries 64 capability bits as two 32-bit words.
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CAP_LAST_CAP_FILE = "/proc/sys/kernel/cap_last_cap"
_MOST_CAPABILITIES = 64  # the kernel's format has room for no more


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def keep_only_net_admin() -> None:
    """Leave this process CAP_NET_ADMIN alone, in its effective, permitted and bounding sets,
    with no inheritable or ambient capabilities, and set no_new_privs. Children forked later
    inherit all of it. Raises PlatformError when the kernel refuses a step."""
    libc = _libc()
    try:
        _prctl(libc, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError as error:
        if error.errno != errno.EINVAL:  # EINVAL: a kernel before 4.3, which has no ambient set
            raise _refused(
                _(
                    "The network helper could not clear its ambient capabilities ({reason}), so it would keep "
                    "privileges it does not need; start it as root with all capabilities, or "
                    "through systemd (sstp-vpn-helper.socket)."
                ),
                error,
            ) from error
    for capability in range(_last_capability(libc) + 1):
        if capability == CAP_NET_ADMIN or not _prctl(libc, PR_CAPBSET_READ, capability):
            continue  # kept, or gone already (dropping that again would need CAP_SETPCAP too)
        try:
            _prctl(libc, PR_CAPBSET_DROP, capability)
        except OSError as error:
            raise _refused(
                _(
                    "The network helper could not drop capability {capability} from its bounding set ({reason}), so it would keep "
                    "privileges it does not need; start it as root with all capabilities, or "
                    "through systemd (sstp-vpn-helper.socket)."
                ),
                error,
                capability=capability,
            ) from error
    _set_capabilities(libc, 1 << CAP_NET_ADMIN)
    try:
        _prctl(libc, PR_SET_NO_NEW_PRIVS, 1)
    except OSError as error:
        raise _refused(
            _(
                "The network helper could not set no_new_privs ({reason}), so it would keep "
                "privileges it does not need; start it as root with all capabilities, or "
                "through systemd (sstp-vpn-helper.socket)."
            ),
            error,
        ) from error


# -- pieces -----------------------------------------------------------------------------------


def _libc() -> ctypes.CDLL:
    # The C library this interpreter already uses (dlopen(NULL)); no search, no ldconfig.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    libc.prctl.restype = ctypes.c_int
    libc.capset.argtypes = [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData)]
    libc.capset.restype = ctypes.c_int
    libc.capget.argtypes = [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData)]
    libc.capget.restype = ctypes.c_int
    return libc


def _prctl(libc: ctypes.CDLL, option: int, arg2: int = 0) -> int:
    result = libc.prctl(option, arg2, 0, 0, 0)
    if result < 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number))
    return result


def _last_capability(libc: ctypes.CDLL) -> int:
    """The highest capability number this kernel knows."""
    try:
        with open(_CAP_LAST_CAP_FILE) as file:
            return int(file.read())
    except (OSError, ValueError):
        pass
    # /proc/sys hidden (a ProcSubset=pid sandbox): ask the kernel about each number instead.
    last = -1
    for capability in range(_MOST_CAPABILITIES):
        try:
            _prctl(libc, PR_CAPBSET_READ, capability)
        except OSError:
            break  # EINVAL: past the last one
        last = capability
    return last


def _set_capabilities(libc: ctypes.CDLL, mask: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for word in range(2):
        bits = (mask >> (32 * word)) & 0xFFFFFFFF
        data[word].effective = data[word].permitted = bits
        data[word].inheritable = 0
    if libc.capset(ctypes.byref(header), data) != 0:
        number = ctypes.get_errno()
        error = OSError(number, os.strerror(number))
        if not _permitted(libc) & mask:
            raise PlatformError(
                _("The network helper does not have CAP_NET_ADMIN, which it needs for the tunnel interface and routes; start it as root.")
            ) from error
        raise _refused(
            _(
                "The network helper could not limit its capabilities to CAP_NET_ADMIN ({reason}), so it would keep "
                "privileges it does not need; start it as root with all capabilities, or "
                "through systemd (sstp-vpn-helper.socket)."
            ),
            error,
        ) from error


def _permitted(libc: ctypes.CDLL) -> int:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        return 0
    return data[0].permitted | (data[1].permitted << 32)


def _refused(sentence: str, error: OSError, **values: object) -> PlatformError:
    """`sentence` (translated, with {reason} and `values`' placeholders) filled in."""
    return PlatformError(sentence.format(reason=error.strerror, **values))
