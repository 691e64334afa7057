"""DNS on Linux: systemd-resolved per link when it manages the system's resolver, else the
/etc/resolv.conf file itself.

Policy (what the user gets):
- Full tunnel, systemd-resolved: the VPN's servers on the tunnel link plus the routing-only
  domain "~." and default-route on, so every name is asked over the tunnel.
  Undone with `resolvectl revert`; resolved also forgets the link when the interface goes.
- Split tunnel, systemd-resolved: the VPN's servers on the tunnel link with default-route off,
  so only names in the VPN's domains (its DHCP server's domain and search list, added when they
  come) are asked there; every other name stays with the local servers and never crosses the
  VPN, and names of the VPN's domains never go to the local servers.
- Full tunnel, plain file: /etc/resolv.conf gets the VPN's servers and *only* those (the old
  nameserver lines are dropped, so a slow VPN server never makes lookups fall back to the local
  network's resolver and leak); search/options lines are kept.
- Split tunnel, plain file: resolv.conf is left alone. A plain file cannot send only some names
  to the VPN's server, and sending all of them through the tunnel is not what split means.

The file is rewritten *in place* (never renamed over): under `ip netns exec` it is a bind mount
and a rename fails with EBUSY, and when it is a symlink we change the target it points to.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import shutil
import subprocess
from pathlib import Path
from typing import BinaryIO

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.errors import PlatformError

RESOLV_CONF = Path("/etc/resolv.conf")
RESOLVED_RUNTIME = Path("/run/systemd/resolve")
HEADER = b"# Written by sstp-vpn while the VPN is connected; the previous content comes back on disconnect.\n"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def resolved_manages(resolv_conf: Path = RESOLV_CONF) -> bool:
    """True when systemd-resolved answers for this system and can configure our link.

    All of: resolv.conf is resolved's (it names systemd-resolved, or points into
    /run/systemd/resolve), resolved is running (its runtime folder has its socket), resolvectl
    exists, and we are in the network namespace resolved lives in (PID 1's): resolved only sees
    the links of its own namespace, so inside `ip netns exec` we use the bind-mounted file.
    """
    try:
        content = resolv_conf.read_bytes()
    except OSError:
        return False
    target = os.path.realpath(resolv_conf)
    names_resolved = b"systemd-resolved" in content or target.startswith(str(RESOLVED_RUNTIME) + "/")
    running = (RESOLVED_RUNTIME / "io.systemd.Resolve").exists() or (RESOLVED_RUNTIME / "resolv.conf").exists()
    return names_resolved and running and shutil.which("resolvectl") is not None and _in_init_netns()


_remembered_init_netns: bool | None = None


def remember_namespace() -> None:
    """Settle now, while PID 1's namespace can still be looked at, whether this process is in it:
    the helper calls this before it gives up capabilities (looking at another user's process
    needs CAP_SYS_PTRACE), and its forked sessions inherit the answer."""
    global _remembered_init_netns
    _remembered_init_netns = _in_init_netns()


def _in_init_netns() -> bool:
    if _remembered_init_netns is not None:
        return _remembered_init_netns
    try:
        return os.stat("/proc/self/ns/net").st_ino == os.stat("/proc/1/ns/net").st_ino
    except (PermissionError, FileNotFoundError):
        # The helper's systemd sandbox (no CAP_SYS_PTRACE, ProtectProc=invisible) hides PID 1's
        # namespace. A service systemd started itself (INVOCATION_ID, parent PID 1) runs in
        # systemd's namespace unless its unit names another, and the helper's unit does not.
        return os.getppid() == 1 and "INVOCATION_ID" in os.environ
    except OSError:
        return False


def render_resolv_conf(original: bytes | None, servers: list[IPAddress]) -> bytes:
    """The file that sends every lookup to `servers`: their nameserver lines first, then the
    original lines other than nameservers (search, options, comments)."""
    lines = [HEADER]
    lines += [b"nameserver %s\n" % str(server).encode() for server in servers]
    for line in (original or b"").splitlines(keepends=True):
        words = line.split()
        if words and words[0] == b"nameserver":
            continue
        if line == HEADER:
            continue
        lines.append(line if line.endswith(b"\n") else line + b"\n")
    return b"".join(lines)


def with_search_domains(content: bytes, names: list[str]) -> bytes:
    """`content` with `names` first on its search line (the old search and domain entries after
    them), placed after the nameserver lines."""
    kept: list[bytes] = []
    existing: list[str] = []
    for line in content.splitlines(keepends=True):
        words = line.split()
        if words and words[0] in (b"search", b"domain"):
            existing += [word.decode("ascii", "replace") for word in words[1:]]
            continue
        kept.append(line if line.endswith(b"\n") else line + b"\n")
    search = ("search " + " ".join(dict.fromkeys([*names, *existing])) + "\n").encode()
    after = max((number + 1 for number, line in enumerate(kept) if line.split()[:1] == [b"nameserver"]), default=0)
    return b"".join(kept[:after] + [search] + kept[after:])


def read_file(path: Path) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise PlatformError(_("{path} cannot be read ({reason}).").format(path=path, reason=error.strerror)) from error


def write_in_place(path: Path, data: bytes) -> None:
    """Replace the file's content without replacing the file (see the module comment)."""
    try:
        try:
            handle: BinaryIO = open(path, "r+b")  # noqa: SIM115 - closed by the `with` below, whichever mode opened it
        except FileNotFoundError:
            handle = open(path, "xb")  # noqa: SIM115
        with handle:
            # Write first, then cut: a reader never sees an empty file.
            handle.write(data)
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise PlatformError(_file_error(path, error)) from error


def remove_file(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as error:
        raise PlatformError(_file_error(path, error)) from error


def _file_error(path: Path, error: OSError) -> str:
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return _("Changing {path} for the VPN's DNS servers needs administrator rights and a writable file: run sstp-vpn as root.").format(path=path)
    return _("Changing {path} for the VPN's DNS servers failed ({reason}).").format(path=path, reason=error.strerror)


def resolvectl(*arguments: str) -> None:
    """Run resolvectl; a failure becomes a sentence naming the command."""
    command = ["resolvectl", *arguments]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PlatformError(
            _("'{command}' could not be run ({reason}); is systemd-resolved working?").format(command=" ".join(command), reason=error)
        ) from error
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        reason = detail[-1] if detail else _("exit status {status}").format(status=result.returncode)
        raise PlatformError(_("systemd-resolved refused '{command}': {reason}.").format(command=" ".join(command), reason=reason))
