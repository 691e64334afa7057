"""The Linux tunnel interface: a TUN device opened through /dev/net/tun.

IFF_TUN | IFF_NO_PI: every read returns one bare IPv4 or IPv6 packet and every write sends one,
with no 4-byte packet-information header. The file descriptor is non-blocking so that the engine's
selector loop can read in batches until EAGAIN. The device is not persistent: it disappears,
with every address and route on it, when the descriptor is closed, also when the process dies.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from collections.abc import Callable

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.errors import PlatformError

CLONE_DEVICE = "/dev/net/tun"
DEFAULT_NAME_PATTERN = "sstp%d"  # the kernel replaces %d with the first free number

TUNSETIFF = 0x400454CA  # _IOW('T', 202, int) on x86 and ARM
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
SIOCGIFMTU = 0x8921
SIOCSIFMTU = 0x8922
IFNAMSIZ = 16
MAX_PACKET = 65535

# Write errors that lose one packet but leave the device usable: a full queue (EAGAIN,
# ENOBUFS), a packet the kernel rejects as malformed (EINVAL, EMSGSIZE), or the link being down
# for a moment (EIO). The engine's loop must not block or die on these; IP is allowed to drop,
# and TCP inside the tunnel retransmits.
_DROPPABLE_WRITE_ERRORS = {errno.EAGAIN, errno.ENOBUFS, errno.EINVAL, errno.EMSGSIZE, errno.EIO}


class TunDevice:
    """An open TUN device. Close it (or leave the `with` block) to remove the interface."""

    def __init__(self, fd: int, name: str) -> None:
        self._fd: int | None = fd
        self.name = name
        self.dropped_packets = 0  # packets write_packets() had to drop, see _DROPPABLE_WRITE_ERRORS

    @classmethod
    def open(cls, name: str | None = None, *, clone_device: str = CLONE_DEVICE) -> TunDevice:
        """Create the interface. `name` None lets the kernel pick sstp0, sstp1, ..."""
        requested = DEFAULT_NAME_PATTERN if name is None else name
        encoded = requested.encode()
        if not encoded or len(encoded) >= IFNAMSIZ or b"/" in encoded or b" " in encoded:
            raise PlatformError(
                _("{name!r} cannot be an interface name: use 1 to {most} letters or digits.").format(name=requested, most=IFNAMSIZ - 1)
            )
        try:
            fd = os.open(clone_device, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError as error:
            raise PlatformError(
                _(
                    "{device} is missing, so no tunnel interface can be created: load the "
                    "kernel module with 'modprobe tun' (in a container, pass the device in)."
                ).format(device=clone_device)
            ) from error
        except OSError as error:
            raise _tun_error(error, clone_device, requested) from error
        try:
            request = struct.pack("16sH22x", encoded, IFF_TUN | IFF_NO_PI)
            reply = fcntl.ioctl(fd, TUNSETIFF, request)
        except OSError as error:
            os.close(fd)
            raise _tun_error(error, clone_device, requested) from error
        actual = reply[:IFNAMSIZ].split(b"\0", 1)[0].decode()
        return cls(fd, actual)

    def fileno(self) -> int:
        if self._fd is None:
            raise PlatformError(_("The tunnel interface {name} is already closed.").format(name=self.name))
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd is None

    def read_packets(self, max_count: int = 64) -> list[bytes]:
        """Read packets until none is waiting or `max_count` were read; [] if none."""
        fd = self.fileno()
        packets: list[bytes] = []
        while len(packets) < max_count:
            try:
                packet = os.read(fd, MAX_PACKET)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError as error:
                if error.errno == errno.EBADFD:
                    raise PlatformError(self._removed_sentence()) from error
                raise PlatformError(
                    _("Reading from the tunnel interface {name} failed ({reason}); reconnect to create it anew.").format(
                        name=self.name, reason=error.strerror
                    )
                ) from error
            if not packet:
                break
            packets.append(packet)
        return packets

    def write_packets(self, packets: list[bytes]) -> None:
        """Send packets into the system. A packet the kernel cannot take now is dropped and
        counted in `dropped_packets` instead of blocking the caller (see _DROPPABLE_WRITE_ERRORS)."""
        fd = self.fileno()
        for packet in packets:
            try:
                os.write(fd, packet)
            except OSError as error:
                if error.errno in _DROPPABLE_WRITE_ERRORS:
                    self.dropped_packets += 1
                    continue
                if error.errno == errno.EBADFD:
                    raise PlatformError(self._removed_sentence()) from error
                raise PlatformError(
                    _("Writing to the tunnel interface {name} failed ({reason}); reconnect to create it anew.").format(
                        name=self.name, reason=error.strerror
                    )
                ) from error

    def _removed_sentence(self) -> str:
        # The kernel detaches the descriptor (EBADFD) when the interface is deleted under it,
        # e.g. `ip link del` or a network manager cleaning up.
        return _("The tunnel interface {name} was removed by another program, so the VPN disconnected; connect again to create it anew.").format(
            name=self.name
        )

    @property
    def mtu(self) -> int:
        request = struct.pack("16si20x", self.name.encode(), 0)
        reply = self._interface_ioctl(
            SIOCGIFMTU,
            request,
            lambda reason: _("Could not read the MTU of the tunnel interface {name} ({reason}).").format(name=self.name, reason=reason),
        )
        return struct.unpack_from("i", reply, IFNAMSIZ)[0]

    def set_mtu(self, mtu: int) -> None:
        if not 68 <= mtu <= MAX_PACKET:
            raise PlatformError(_("An MTU of {mtu} bytes is not possible: it must be between 68 and {most}.").format(mtu=mtu, most=MAX_PACKET))
        request = struct.pack("16si20x", self.name.encode(), mtu)
        self._interface_ioctl(
            SIOCSIFMTU,
            request,
            lambda reason: _("Could not set an MTU of {mtu} on the tunnel interface {name} ({reason}).").format(
                mtu=mtu, name=self.name, reason=reason
            ),
        )

    def close(self) -> None:
        """Close the descriptor; the kernel then removes the interface. Safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> TunDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd is None else f"fd={self._fd}"
        return f"<TunDevice {self.name} {state}>"

    def _interface_ioctl(self, request_code: int, request: bytes, failed: Callable[[str], str]) -> bytes:
        """The ioctl's reply; `failed(reason)`: the sentence when the kernel refuses it."""
        self.fileno()  # a closed device has no interface any more
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
            try:
                return fcntl.ioctl(control.fileno(), request_code, request)
            except OSError as error:
                if error.errno == errno.EPERM:
                    raise PlatformError(
                        _("Changing the tunnel interface {name} needs administrator rights: run sstp-vpn as root (or give it CAP_NET_ADMIN).").format(
                            name=self.name
                        )
                    ) from error
                raise PlatformError(failed(str(error.strerror))) from error


def _tun_error(error: OSError, clone_device: str, name: str) -> PlatformError:
    if error.errno in (errno.EPERM, errno.EACCES):
        return PlatformError(_("Creating the tunnel interface needs administrator rights: run sstp-vpn as root (or give it CAP_NET_ADMIN)."))
    if error.errno == errno.EBUSY:
        return PlatformError(
            _("The interface name {name} is already in use by another program; choose another name or disconnect the other tunnel.").format(name=name)
        )
    if error.errno == errno.EINVAL:
        return PlatformError(
            _(
                "The kernel refused to create a tunnel interface named {name!r}; choose a name of letters and digits, or an existing TUN device."
            ).format(name=name)
        )
    if error.errno in (errno.ENODEV, errno.ENXIO):
        return PlatformError(_("{device} does not work here: the kernel has no TUN support loaded; run 'modprobe tun'.").format(device=clone_device))
    return PlatformError(_("Creating the tunnel interface {name} failed ({reason}).").format(name=name, reason=error.strerror))
