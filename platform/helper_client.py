"""The user side of the privileged network helper (helper_linux, helper_macos) and of the Windows
network service (helper_windows): what the engine runner uses on Linux and macOS when it does not
run as root, and on Windows always.

    network = PrivilegedNetwork()
    tun = network.open_tun(ifname)           # a TunDevice around the descriptor the helper sent
    config = network.configurator(tun.name, server_address, full_tunnel=True)
    config.apply(plan); ...; config.restore(); tun.close()

One PrivilegedNetwork is one connection to the helper, and one session there. Closing the tunnel
device closes the connection; the helper then restores the network at once if that has not
happened yet, also when this process is killed.
"""

from __future__ import annotations

import os
import socket
import sys
from ipaddress import IPv6Address, ip_address
from typing import TYPE_CHECKING

from sstpvpn.client.core.i18n import _
from sstpvpn.platform import helper_protocol as protocol
from sstpvpn.platform import helper_transport as transport
from sstpvpn.platform import interfaces, winpipe
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.helper_protocol import (
    AddIpv6Dns,
    AddIpv6Link,
    ApplyPlan,
    FollowRoute,
    OpenTun,
    PushSettings,
    Repair,
    Request,
    RequestRefused,
    Restore,
    SetKillSwitch,
    SetMtu,
)
from sstpvpn.platform.packet_relay import RelayTunDevice

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sstpvpn.client.core.types import NetworkPlan, PushedSettings
    from sstpvpn.platform.helper_protocol import IPNetwork
    from sstpvpn.platform.kill_switch import KillSwitchRules
    from sstpvpn.platform.netconfig_linux import IPAddress

DEFAULT_SOCKET = "/run/sstp-vpn/helper.sock"  # where sstp-vpn-helper.socket listens
MACOS_SOCKET = "/var/run/sstp-vpn-helper.sock"  # SockPathName in installer/macos/org.sstp-vpn.helper.plist
SOCKET_ENV = "SSTP_VPN_HELPER_SOCKET"  # another path, e.g. for a helper started with --listen
HELPER_GROUP = "sstp-vpn"
MACOS_HELPER_GROUP = "admin"  # helper_macos.DEFAULT_GROUP
MACOS_INSTALL_COMMAND = 'sudo sh "/Applications/SSTP VPN.app/Contents/Resources/install-helper.sh" install'
REPLY_TIMEOUT_SECONDS = 30.0  # DNS changes through systemd-resolved can take a moment
CLOSE_WAIT_SECONDS = 10.0


def windows_not_running_sentence() -> str:
    return _('The SSTP VPN network service is not running: start "SSTP VPN network service" in Services (services.msc), or reinstall SSTP VPN.')


def windows_not_allowed_sentence() -> str:
    return _(
        "Your account may not use the SSTP VPN network service; ask an administrator to add you to the group it "
        "serves (installer/windows/README.md says how)."
    )


def default_socket_path(platform_name: str = sys.platform) -> str:
    return MACOS_SOCKET if platform_name == "darwin" else DEFAULT_SOCKET


def helper_socket_path() -> str:
    return os.environ.get(SOCKET_ENV) or default_socket_path()


def _not_running_sentence(path: str, platform_name: str = sys.platform) -> str:
    if platform_name == "darwin":
        return _(
            "Connecting as an ordinary user needs the SSTP VPN network helper, which is not installed "
            "(nothing listens on {path}): install it once with {command} "
            "(it asks for an administrator password), or run sstp-vpn with sudo."
        ).format(path=path, command=MACOS_INSTALL_COMMAND)
    return _(
        "Connecting as an ordinary user needs the SSTP VPN network helper, which is not running "
        "(nothing listens on {path}): install the sstp-vpn package and start the helper with "
        "'sudo systemctl enable --now sstp-vpn-helper.socket', or run sstp-vpn as root."
    ).format(path=path)


def _not_allowed_sentence(path: str, platform_name: str = sys.platform) -> str:
    if platform_name == "darwin":
        return _(
            "You may not use the SSTP VPN network helper ({path}): it serves administrators (the group "
            "{group}); make your account an administrator in System Settings > Users & "
            "Groups, or reinstall the helper with --group for another group."
        ).format(path=path, group=MACOS_HELPER_GROUP)
    return _(
        "You may not use the SSTP VPN network helper ({path}): add your user to the group "
        "{group} with 'sudo adduser $USER {group}' and log in again, or run sstp-vpn as root."
    ).format(path=path, group=HELPER_GROUP)


def unavailable_sentence(path: str | None = None) -> str | None:
    """None when the helper's socket is there and this user may connect; else the sentence to show
    (for a check at start-up, before any connection is attempted)."""
    if sys.platform == "win32":
        return None if winpipe.pipe_exists(winpipe.CONTROL_PIPE_NAME) else windows_not_running_sentence()
    path = path or helper_socket_path()
    if not os.path.exists(path):
        return _not_running_sentence(path)
    if not os.access(path, os.R_OK | os.W_OK):
        return _not_allowed_sentence(path)
    return None


def _log_hint(platform_name: str) -> str:
    if platform_name == "darwin":
        return "/var/log/sstp-vpn-helper.log"
    if platform_name == "win32":
        return r"%ProgramData%\SSTP VPN\service\service.log"
    return "journalctl -u 'sstp-vpn-helper@*'"


class HelperChannel:
    """The connection to the helper: one request, one reply, in order."""

    def __init__(self, path: str, timeout: float = REPLY_TIMEOUT_SECONDS, platform_name: str = sys.platform) -> None:
        self.path = path
        self.platform_name = platform_name
        sock = socket.socket(socket.AF_UNIX, transport.socket_type_for(platform_name) | getattr(socket, "SOCK_CLOEXEC", 0))
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as error:
            sock.close()
            raise PlatformError(_not_running_sentence(path, platform_name)) from error
        except PermissionError as error:
            sock.close()
            raise PlatformError(_not_allowed_sentence(path, platform_name)) from error
        except OSError as error:
            sock.close()
            raise PlatformError(
                _("The SSTP VPN network helper at {path} cannot be reached ({reason}).").format(path=path, reason=error.strerror)
            ) from error
        self._sock: socket.socket | None = sock

    @property
    def closed(self) -> bool:
        return self._sock is None

    def request(self, request: Request, fds: Sequence[int] = ()) -> tuple[protocol.Reply, list[int]]:
        """Send `request` (with `fds`); the reply and any descriptors that came with it (the
        caller owns them). A refusal raises PlatformError with the helper's sentence."""
        if self._sock is None:
            raise PlatformError(_("The connection to the SSTP VPN network helper is closed; reconnect."))
        data = protocol.encode_request(request)
        try:
            try:
                transport.send_message(self._sock, data, fds)
            except (BrokenPipeError, ConnectionResetError):
                pass  # a helper that refused us has closed already; its reason waits to be read
            received = transport.receive_message(self._sock, max_fds=4)
        except TimeoutError as error:
            raise PlatformError(_("The SSTP VPN network helper did not answer in time; reconnect.")) from error
        except transport.BrokenFraming as error:
            self.close()
            raise PlatformError(_("{problem} Install the same version of sstp-vpn and its helper.").format(problem=error.sentence)) from error
        except OSError as error:
            raise PlatformError(_("Talking to the SSTP VPN network helper failed ({reason}); reconnect.").format(reason=error.strerror)) from error
        message, fds = received if received is not None else (b"", [])
        if not message:
            _close_all(fds)
            self.close()
        return _reply_of(message, fds, self.platform_name), fds

    def close(self) -> None:
        """End the session. Waits (briefly) until the helper has restored the network and removed
        the interface, so that "disconnected" means what it says and the name is free again."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(CLOSE_WAIT_SECONDS)
            while sock.recv(protocol.MAX_MESSAGE_BYTES + 1):
                pass  # nothing is expected; the helper closes its end when it is done
        except OSError:
            pass  # gone already, or slow: it finishes on its own
        finally:
            sock.close()


def _reply_of(message: bytes, fds: list[int], platform_name: str) -> protocol.Reply:
    """The helper's reply to a request (b"": the helper ended the connection). A refusal raises
    PlatformError with the helper's sentence; the descriptors are closed then."""
    if not message:
        if platform_name == "win32":
            ended = _("The SSTP VPN network service ended the connection unexpectedly; reconnect. If it happens again, its log says why: {log}.")
        else:
            ended = _("The SSTP VPN network helper ended the connection unexpectedly; reconnect. If it happens again, its log says why: {log}.")
        raise PlatformError(ended.format(log=_log_hint(platform_name)))
    try:
        reply = protocol.parse_reply(message)
    except RequestRefused as error:
        _close_all(fds)
        raise PlatformError(error.sentence) from error
    if not reply.ok:
        _close_all(fds)
        raise PlatformError(reply.error or _("The network helper refused the request."))
    return reply


class PipeHelperChannel:
    """Windows: the connection to the network service, over its control pipe (winpipe): one
    request, one reply, in order. Only a pipe owned by SYSTEM is trusted: anyone can create a
    pipe of that name while the service is not running."""

    def __init__(self, name: str = winpipe.CONTROL_PIPE_NAME, timeout: float = REPLY_TIMEOUT_SECONDS) -> None:
        self.name, self.timeout, self.platform_name = name, timeout, "win32"
        try:
            stream = winpipe.connect(name, timeout, message_mode=True)
        except FileNotFoundError as error:
            raise PlatformError(windows_not_running_sentence()) from error
        except PermissionError as error:
            raise PlatformError(windows_not_allowed_sentence()) from error
        except OSError as error:
            raise PlatformError(_("The SSTP VPN network service cannot be reached ({reason}); reconnect.").format(reason=error)) from error
        _check_service_owns(stream)
        self._stream: winpipe.PipeStream | None = stream

    @property
    def closed(self) -> bool:
        return self._stream is None

    def request(self, request: Request, fds: Sequence[int] = ()) -> tuple[protocol.Reply, list[int]]:
        if self._stream is None:
            raise PlatformError(_("The connection to the SSTP VPN network service is closed; reconnect."))
        try:
            try:
                self._stream.write(protocol.encode_request(request))
            except BrokenPipeError:
                pass  # a service that refused us has closed already; its reason waits to be read
            message = self._stream.read(protocol.MAX_MESSAGE_BYTES + 1, self.timeout)
        except TimeoutError as error:
            raise PlatformError(_("The SSTP VPN network service did not answer in time; reconnect.")) from error
        except OSError as error:
            raise PlatformError(_("Talking to the SSTP VPN network service failed ({reason}); reconnect.").format(reason=error)) from error
        if not message:
            self.close()
        return _reply_of(message, [], self.platform_name), []

    def close(self) -> None:
        """End the session; the service restores the network and removes the adapter."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()


def _check_service_owns(stream: winpipe.PipeStream) -> None:
    try:
        owner = stream.owner_sid()
    except OSError:
        owner = None
    if owner != winpipe.LOCAL_SYSTEM_SID:
        stream.close()
        raise PlatformError(
            _(
                "The pipe {pipe} does not belong to the SSTP VPN network service (its owner is {owner}); "
                "SSTP VPN will not send it anything. Restart Windows, or reinstall SSTP VPN."
            ).format(pipe=winpipe.CONTROL_PIPE_NAME, owner=owner)
        )


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


class HelperNetConfigurator:
    """NetConfigurator's apply()/restore(), carried out by the helper (which journals each step)."""

    def __init__(
        self,
        channel: HelperChannel | PipeHelperChannel,
        ifname: str,
        server_address: IPAddress | str,
        full_tunnel: bool = True,
        extra_routes: Sequence[IPNetwork] = (),
        use_vpn_dns: bool = True,
    ) -> None:
        self._channel = channel
        self.ifname = ifname
        self.server_address = ip_address(server_address)
        self.full_tunnel = full_tunnel
        self.extra_routes = tuple(extra_routes)
        self.use_vpn_dns = use_vpn_dns
        self.notes: list[str] = []

    def apply(self, plan: NetworkPlan) -> None:
        self._channel.request(ApplyPlan(self.ifname, self.server_address, self.full_tunnel, plan, self.extra_routes, self.use_vpn_dns))

    def add_ipv6_link(self, identifier: bytes) -> None:
        _reply, fds = self._channel.request(AddIpv6Link(self.ifname, identifier))
        _close_all(fds)

    def add_ipv6_dns(self, servers: Sequence[IPv6Address], search: Sequence[str]) -> list[str]:
        reply, fds = self._channel.request(AddIpv6Dns(self.ifname, tuple(servers), tuple(search)))
        _close_all(fds)
        return list(reply.notes)

    def add_pushed(self, pushed: PushedSettings) -> list[str]:
        reply, fds = self._channel.request(PushSettings(self.ifname, pushed))
        _close_all(fds)
        return list(reply.notes)

    def follow_server_route(self) -> str | None:
        """The helper moves the host route to the server itself (it names nothing else)."""
        reply, fds = self._channel.request(FollowRoute(self.ifname))
        _close_all(fds)
        return reply.notes[0] if reply.notes else None

    def restore(self) -> list[str]:
        if self._channel.closed:
            return []  # the helper restored the network when the connection was closed
        reply, fds = self._channel.request(Restore(self.ifname))
        _close_all(fds)
        notes = list(reply.notes)
        self.notes.extend(notes)
        return notes


class PrivilegedNetwork:
    """The two platform calls the runner needs, done by the privileged helper."""

    def __init__(self, socket_path: str | None = None, timeout: float = REPLY_TIMEOUT_SECONDS, platform_name: str = sys.platform) -> None:
        self.socket_path = socket_path or helper_socket_path()
        self.timeout = timeout
        self.platform_name = platform_name  # which kind of tunnel device the descriptor is
        self._channel: HelperChannel | PipeHelperChannel | None = None

    def open_tun(self, ifname: str | None = None) -> interfaces.TunDevice:
        """Connect to the helper and have it create the interface. Raises PlatformError saying what
        to install or start when the helper cannot be reached."""
        if self._channel is not None:
            raise PlatformError(_("This connection to the network helper has its tunnel interface already."))
        if self.platform_name == "win32":
            return self._open_relayed(ifname)
        channel = HelperChannel(self.socket_path, self.timeout, self.platform_name)
        try:
            if self.platform_name.startswith("linux"):
                # Shows the helper which network namespace this process is in.
                namespace = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    reply, fds = channel.request(OpenTun(ifname), (namespace,))
                finally:
                    os.close(namespace)
            else:
                reply, fds = channel.request(OpenTun(ifname))
            if len(fds) != 1 or reply.ifname is None:
                _close_all(fds)
                raise PlatformError(_("The SSTP VPN network helper sent no tunnel interface; install the same version of sstp-vpn and its helper."))
        except PlatformError:
            channel.close()
            raise
        self._channel = channel
        from sstpvpn.platform import helper_devices  # Linux and macOS only (fcntl)

        if self.platform_name == "darwin":
            return helper_devices.HelperUtunDevice(fds[0], reply.ifname, channel)
        return helper_devices.HelperTunDevice(fds[0], reply.ifname, channel)

    def _open_relayed(self, ifname: str | None) -> RelayTunDevice:
        """Windows: the service made the Wintun adapter; its packets come through the session's
        own packet pipe (helper_windows), which only this process may open."""
        channel = PipeHelperChannel(timeout=self.timeout)
        try:
            reply, _handles = channel.request(OpenTun(ifname))
            if reply.ifname is None or reply.relay is None:
                raise PlatformError(_("The SSTP VPN network service sent no tunnel adapter; reinstall SSTP VPN."))
            try:
                stream = winpipe.connect(winpipe.relay_pipe_name(reply.relay), self.timeout, message_mode=False)
            except OSError as error:
                raise PlatformError(_("The tunnel adapter's packet pipe cannot be opened ({reason}); reconnect.").format(reason=error)) from error
            _check_service_owns(stream)
        except PlatformError:
            channel.close()
            raise
        self._channel = channel
        name = reply.ifname

        def set_mtu(mtu: int) -> None:
            channel.request(SetMtu(name, mtu))  # the adapter's MTU needs the service's rights

        return RelayTunDevice(stream, name, set_mtu, channel.close)

    def configurator(
        self,
        ifname: str,
        server_address: IPAddress | str,
        full_tunnel: bool = True,
        *,
        extra_routes: Sequence[IPNetwork] = (),
        use_vpn_dns: bool = True,
    ) -> HelperNetConfigurator:
        if self._channel is None:
            raise PlatformError(_("Open the tunnel interface before configuring the network."))
        return HelperNetConfigurator(self._channel, ifname, server_address, full_tunnel, extra_routes, use_vpn_dns)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()


def _connect(socket_path: str | None, timeout: float, platform_name: str) -> HelperChannel | PipeHelperChannel:
    if platform_name == "win32":
        return PipeHelperChannel(timeout=timeout)
    return HelperChannel(socket_path or helper_socket_path(), timeout, platform_name)


def _first_request(channel: HelperChannel | PipeHelperChannel, request: Request) -> protocol.Reply:
    """A session's first request; on Linux with this process's network namespace (the helper
    acts in its own and checks that it is the client's)."""
    if channel.platform_name.startswith("linux"):
        namespace = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            reply, fds = channel.request(request, (namespace,))
        finally:
            os.close(namespace)
    else:
        reply, fds = channel.request(request)
    _close_all(fds)
    return reply


class HelperKillSwitch:
    """The kill switch (kill_switch.KillSwitch) put in place by the helper, over a connection of
    its own that stays open across reconnects: the helper removes the kill switch when this
    connection closes, also when this process is killed."""

    def __init__(self, socket_path: str | None = None, timeout: float = REPLY_TIMEOUT_SECONDS, platform_name: str = sys.platform) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self.platform_name = platform_name
        self._channel: HelperChannel | PipeHelperChannel | None = None

    def set(self, rules: KillSwitchRules) -> None:
        if self._channel is not None and not self._channel.closed:
            try:
                self._channel.request(SetKillSwitch(rules))
                return
            except PlatformError:
                if not self._channel.closed:
                    raise
                # The helper ended that session (stopped, restarted): a new one, at once.
        self._channel = None
        channel = _connect(self.socket_path, self.timeout, self.platform_name)
        try:
            _first_request(channel, SetKillSwitch(rules))
        except PlatformError:
            channel.close()
            raise
        self._channel = channel

    def remove(self) -> None:
        """Close the connection: the helper removes the kill switch before it closes its end,
        which close() waits for."""
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()


def repair_through_helper(socket_path: str | None = None, timeout: float = REPLY_TIMEOUT_SECONDS, platform_name: str = sys.platform) -> list[str]:
    """The helper's "repair": the sentences of what it removed that ended sessions left."""
    channel = _connect(socket_path, timeout, platform_name)
    try:
        return list(_first_request(channel, Repair()).notes)
    finally:
        channel.close()
