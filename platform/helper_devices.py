"""The tunnel devices of a Linux or macOS helper session: the TUN descriptor (or utun control
socket) the privileged helper sent, with MTU changes and the end of the session going back to it.
Apart from helper_client so that it imports nothing Unix-only on Windows."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from sstpvpn.platform import tun_macos
from sstpvpn.platform.helper_protocol import SetMtu
from sstpvpn.platform.tun_linux import TunDevice

if TYPE_CHECKING:
    from sstpvpn.platform.helper_client import HelperChannel


class HelperTunDevice(TunDevice):
    """A TUN interface the helper created; packets go through the descriptor it sent, which is
    as fast as one opened here. Closing it ends the helper session (the interface goes)."""

    def __init__(self, fd: int, name: str, channel: HelperChannel) -> None:
        super().__init__(fd, name)
        self._channel = channel

    def set_mtu(self, mtu: int) -> None:
        self.fileno()  # a closed device cannot change
        self._channel.request(SetMtu(self.name, mtu))

    def close(self) -> None:
        super().close()
        self._channel.close()


class HelperUtunDevice(tun_macos.TunDevice):
    """macOS: the utun the helper created, through the kernel-control socket it sent (UNTESTED ON
    macOS). Closing it ends the helper session (the interface goes)."""

    def __init__(self, fd: int, name: str, channel: HelperChannel) -> None:
        control = socket.socket(tun_macos.PF_SYSTEM, socket.SOCK_DGRAM, tun_macos.SYSPROTO_CONTROL, fileno=fd)
        control.setblocking(False)
        super().__init__(control, name, tun_macos.Darwin())
        self._channel = channel

    def set_mtu(self, mtu: int) -> None:
        self.fileno()  # a closed device cannot change
        self._channel.request(SetMtu(self.name, mtu))  # SIOCSIFMTU needs root

    def close(self) -> None:
        super().close()
        self._channel.close()
