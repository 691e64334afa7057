"""The platform implementation for this operating system, picked once by `sys.platform`.

    from sstpvpn.platform import current
    tun = current.TunDevice.open()
    config = current.NetConfigurator(tun.name, server_address)

Linux, Windows (Wintun) and macOS (utun) have implementations; the Windows and macOS ones have not
run on a real system yet (`untested_note()` says so, for the log). On an operating system without
an implementation, importing this module still works (a GUI can start and explain); using any of
the names raises PlatformError with `unsupported_sentence()`.

The front ends (the tray and the CLI) ask it their OS questions too, with the same names on every
system: `prepare_session()` before connecting, `uses_network_helper()`, `tunnel_problem()`,
`read_traffic_counters(ifname)`, `routes_through(ifname)`, `ipv6_addresses(ifname)`, `watch_stop_signals()`. Where a system
has no answer yet they say so with None.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import applied_routes, interfaces, session_preparation, traffic_counters
from sstpvpn.platform.autostart import Autostart, tray_command
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.kill_switch import KillSwitch
from sstpvpn.platform.session_preparation import SessionPreparation
from sstpvpn.platform.stop_signals import StopSignals, watch_stop_signals
from sstpvpn.platform.traffic_counters import TrafficCounters
from sstpvpn.platform.tunnel_access import tunnel_problem, uses_network_helper

__all__ = [
    "PlatformError",
    "SUPPORTED",
    "TunDevice",
    "NetConfigurator",
    "repair_from_journal",
    "default_journal_path",
    "unsupported_sentence",
    "untested_note",
    "route_problem_before_connecting",
    "SessionPreparation",
    "prepare_session",
    "StopSignals",
    "watch_stop_signals",
    "TrafficCounters",
    "read_traffic_counters",
    "routes_through",
    "ipv6_addresses",
    "tunnel_problem",
    "uses_network_helper",
    "open_tunnel",
    "load_tunnel_modules",
    "Autostart",
    "autostart",
    "tray_command",
    "open_kill_switch",
    "repair_everything",
]


def _supported(platform_name: str) -> bool:
    return platform_name.startswith("linux") or platform_name in ("win32", "darwin")


def unsupported_sentence(platform_name: str = sys.platform) -> str | None:
    """None when `platform_name` (a sys.platform value) has an implementation, else the sentence to show."""
    if _supported(platform_name):
        return None
    if platform_name == "cygwin":
        return _("Under Cygwin SSTP VPN cannot create its tunnel; run its Windows version instead.")
    return _("SSTP VPN runs on Linux, Windows and macOS; this system ({system}) is not supported.").format(system=platform_name)


def untested_note(platform_name: str = sys.platform) -> str | None:
    """A sentence to log where the implementation has never run on a real system yet."""
    names = {"win32": "Windows", "darwin": "macOS"}
    if platform_name not in names:
        return None
    return _("The {system} support of SSTP VPN has not yet been run on a real {system} system; please report what works and what does not.").format(
        system=names[platform_name]
    )


SUPPORTED = _supported(sys.platform)


def _no_early_route_check(full_tunnel: bool, extra_routes: Any) -> str | None:
    """Windows and macOS have no reader of the routing table for route_safety yet: no early check."""
    return None


route_problem_before_connecting = _no_early_route_check

if sys.platform == "linux":
    # netconfig_linux and route_snapshot_linux bring pyroute2 (about a tenth of a second of
    # imports): loaded when a tunnel is configured, a journal is repaired or routes are checked,
    # never before the command line's first packet (issue 18).
    from sstpvpn.platform.journal import linux_journal_path as default_journal_path
    from sstpvpn.platform.tun_linux import TunDevice

    def repair_from_journal(journal_path: Path) -> bool:
        """netconfig_linux.repair_from_journal, when there is a journal to repair."""
        if not journal_path.exists():
            return False  # nothing a dead client left (repair would find the same, after taking the lock)
        from sstpvpn.platform import netconfig_linux

        return netconfig_linux.repair_from_journal(journal_path)

    def route_problem_before_connecting(full_tunnel: bool, extra_routes: Sequence[IPv4Network | IPv6Network]) -> str | None:
        """route_snapshot_linux's early check; None at once when no route is known before connecting."""
        if not full_tunnel and not extra_routes:
            return None  # routing_policy.known_routes gives none: not even its imports before the first packets
        from sstpvpn.platform import routing_policy

        if not routing_policy.known_routes(full_tunnel, extra_routes):
            return None
        from sstpvpn.platform import route_snapshot_linux

        return route_snapshot_linux.route_problem_before_connecting(full_tunnel, extra_routes)

    if TYPE_CHECKING:
        from sstpvpn.platform.netconfig_linux import NetConfigurator
    else:

        def __getattr__(name: str) -> Any:
            if name == "NetConfigurator":
                from sstpvpn.platform.netconfig_linux import NetConfigurator

                return NetConfigurator
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
elif sys.platform == "win32":
    from sstpvpn.platform.netconfig_windows import NetConfigurator, default_journal_path, repair_from_journal
    from sstpvpn.platform.tun_windows import TunDevice
elif sys.platform == "darwin":
    from sstpvpn.platform.netconfig_macos import NetConfigurator, default_journal_path, repair_from_journal
    from sstpvpn.platform.tun_macos import TunDevice
else:

    def _unsupported(*_args: Any, **_kwargs: Any) -> NoReturn:
        raise PlatformError(unsupported_sentence() or _("This system is not supported."))

    class TunDevice:  # type: ignore[no-redef]
        open = staticmethod(_unsupported)

    class NetConfigurator:  # type: ignore[no-redef]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            _unsupported()

    repair_from_journal = _unsupported
    default_journal_path = _unsupported

read_traffic_counters = traffic_counters.read_linux if sys.platform == "linux" else traffic_counters.not_counted
routes_through = applied_routes.routes_through_linux if sys.platform == "linux" else applied_routes.not_shown
ipv6_addresses = applied_routes.ipv6_addresses_linux if sys.platform == "linux" else applied_routes.not_shown


def prepare_session() -> SessionPreparation:
    """Before each connection attempt: refuse an unsupported system, note an untested one, and
    when this process makes the tunnel itself (not through the helper) restore what a crashed
    session left. May block (it undoes routes and DNS): call it before connecting in the CLI and
    on a worker thread in the tray."""
    return session_preparation.prepare(unsupported_sentence(), untested_note(), uses_network_helper, _repair_before_connecting)


def _repair_before_connecting() -> bool:
    repaired = repair_from_journal(default_journal_path())
    if sys.platform == "linux":
        from sstpvpn.platform.journal import kill_switch_journal_path

        journal = kill_switch_journal_path(default_journal_path())
        if journal.exists():  # only a session that set a kill switch leaves this file (no imports before the first packet otherwise)
            from sstpvpn.platform import kill_switch_linux

            repaired = bool(kill_switch_linux.repair_kill_switch(journal)) or repaired
    return repaired


def open_kill_switch() -> KillSwitch:
    """This session's kill switch (kill_switch.KillSwitch; set() puts it in place, remove() takes
    it away): through the privileged helper for an ordinary user, on its own connection; as root
    on Linux the nftables table of this process (kill_switch_linux). Raises PlatformError."""
    if uses_network_helper():
        from sstpvpn.platform.helper_client import HelperKillSwitch

        return HelperKillSwitch()
    if sys.platform == "linux":
        from sstpvpn.platform.kill_switch_linux import NftKillSwitch

        return NftKillSwitch(_kill_switch_journal())
    if sys.platform == "darwin":  # as root, without the helper: the pf anchor of this process
        from sstpvpn.platform import kill_switch_macos

        return kill_switch_macos.MacKillSwitch(kill_switch_macos.kill_switch_journal_path(default_journal_path()))
    raise PlatformError(_("SSTP VPN has no kill switch for this system yet; turn the profile's kill switch off."))


def _kill_switch_journal() -> Path:
    from sstpvpn.platform.journal import kill_switch_journal_path

    return kill_switch_journal_path(default_journal_path())


def repair_everything() -> list[str]:
    """Remove whatever ended sessions left on this machine (`sstp-vpn repair`): routes and DNS
    from a dead session's journal, a kill switch no live session holds, and (Linux, as root)
    tunnel interfaces of ours that nobody holds. Through the helper for an ordinary user. The
    sentences of what was removed ([] when nothing was). Raises PlatformError."""
    if uses_network_helper():
        from sstpvpn.platform.helper_client import repair_through_helper

        return repair_through_helper()
    notes = []
    if repair_from_journal(default_journal_path()):
        notes.append(_("Restored the routes and DNS that an ended sstp-vpn left changed."))
    if sys.platform == "linux":
        from sstpvpn.platform import kill_switch_linux, leftovers_linux

        notes += kill_switch_linux.repair_kill_switch(_kill_switch_journal())
        notes += leftovers_linux.remove_leftover_tunnels()
    if sys.platform == "darwin":
        from sstpvpn.platform import kill_switch_macos

        notes += kill_switch_macos.repair_kill_switch(kill_switch_macos.kill_switch_journal_path(default_journal_path()))
    return notes


def load_tunnel_modules() -> None:
    """Import what configuring the tunnel needs (on Linux pyroute2, through netconfig_linux), so
    that a front end can do it while the server keeps the session waiting (authentication, the
    VPN's DHCP) rather than once the address has come."""
    if sys.platform == "linux":
        from sstpvpn.platform import netconfig_linux  # noqa: F401 - imported for its side effect: loaded


ConfiguratorFactory = Callable[..., interfaces.NetConfigurator]  # (ifname, server_address, full_tunnel=, extra_routes=, use_vpn_dns=)


def open_tunnel(ifname: str | None) -> tuple[interfaces.TunDevice, ConfiguratorFactory]:
    """A tunnel device and the maker of its network configurator: through the privileged helper
    for an ordinary user (Linux, macOS), else this process's own. Raises PlatformError."""
    if uses_network_helper():
        from sstpvpn.platform.helper_client import PrivilegedNetwork

        network = PrivilegedNetwork()
        return network.open_tun(ifname), network.configurator
    if sys.platform == "linux":
        from sstpvpn.platform.netconfig_linux import NetConfigurator as LinuxConfigurator

        return TunDevice.open(ifname), LinuxConfigurator
    return TunDevice.open(ifname), NetConfigurator


def autostart() -> Autostart:
    """Start the tray app at login for this user (platform/autostart.py): an XDG autostart file,
    the HKCU Run value (Windows) or a LaunchAgent (macOS); enable(tray_command()) / disable()."""
    from sstpvpn.platform import autostart as autostart_module

    return autostart_module.for_platform(sys.platform)
