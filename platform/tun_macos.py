"""The macOS tunnel interface: a utun device, opened through the kernel control socket.

UNTESTED ON macOS: written against XNU's sys/kern_control.h and net/if_utun.h values as given in
the platform note, wireguard-go's tun/tun_darwin.go and CPython's PF_SYSTEM address handling, and
unit-tested on Linux with a recorded stand-in for the kernel (tests/recorded_macos.py). Nothing
here has run on a real Mac yet.

How a utun comes to be (every step a plain socket call, no extension needed):
1. socket(PF_SYSTEM, SOCK_DGRAM, SYSPROTO_CONTROL).
2. ioctl CTLIOCGINFO with struct ctl_info {u32 ctl_id; char ctl_name[96]} naming
   "com.apple.net.utun_control": the kernel fills in the control's id.
3. connect to (ctl_id, unit): CPython builds the struct sockaddr_ctl (sc_family AF_SYSTEM,
   ss_sysaddr AF_SYS_CONTROL, sc_id, sc_unit) from that pair. Unit N+1 asks for utunN, unit 0 lets
   the kernel take the first free one. The utun control is registered CTL_FLAG_PRIVILEGED, so this
   needs root.
4. getsockopt(SYSPROTO_CONTROL, UTUN_OPT_IFNAME) gives the interface name, e.g. b"utun7\\0".
The interface lives exactly as long as the socket: closing it, or any exit of the process
holding it, removes utunN with its addresses and routes.

Framing: every packet read or written carries a 4-byte address-family header in network byte
order: 00 00 00 02 (AF_INET) or 00 00 00 1E (AF_INET6 is 30 on Darwin). The socket is
non-blocking and selectable like a Linux TUN descriptor.
"""

from __future__ import annotations

import errno
import fcntl
import re
import socket
import struct
from typing import Any

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.errors import PlatformError

UTUN_CONTROL_NAME = b"com.apple.net.utun_control"
# Darwin's values (sys/socket.h, sys/sys_domain.h, net/if_utun.h); Python has the first two as
# socket.PF_SYSTEM / socket.SYSPROTO_CONTROL on macOS only.
PF_SYSTEM = 32
SYSPROTO_CONTROL = 2
UTUN_OPT_IFNAME = 2
MAX_KCTL_NAME = 96
CTL_INFO = struct.Struct("=I96s")  # struct ctl_info, 100 bytes
CTLIOCGINFO = 0xC0644E03  # _IOWR('N', 3, struct ctl_info)
IFREQ_MTU = struct.Struct("=16si12x")  # struct ifreq: name, then ifru_mtu; 32 bytes
SIOCGIFMTU = 0xC0206933  # _IOWR('i', 51, struct ifreq)
SIOCSIFMTU = 0x80206934  # _IOW('i', 52, struct ifreq)
IFNAMSIZ = 16
DARWIN_AF_INET = 2
DARWIN_AF_INET6 = 30
AF_HEADER = {4: struct.pack("!I", DARWIN_AF_INET), 6: struct.pack("!I", DARWIN_AF_INET6)}
HEADER_SIZE = 4
MAX_PACKET = 65535
MAX_UNIT = 254  # utun0 .. utun254 (sc_unit is N + 1)

_UTUN_NAME = re.compile(r"utun(0|[1-9][0-9]{0,2})")

# A packet the kernel cannot take now is dropped, as on Linux: IP may drop, TCP retransmits.
_DROPPABLE_WRITE_ERRORS = {errno.EAGAIN, errno.ENOBUFS, errno.EINVAL, errno.EMSGSIZE, errno.EIO}


class Darwin:
    """The system calls this module makes; tests pass a recorded stand-in with the same methods."""

    def control_socket(self) -> Any:
        return socket.socket(PF_SYSTEM, socket.SOCK_DGRAM, SYSPROTO_CONTROL)

    def ioctl(self, fd: int, request: int, argument: bytes) -> bytes:
        return fcntl.ioctl(fd, request, argument)

    def interface_ioctl(self, request: int, argument: bytes) -> bytes:
        """An interface ioctl (MTU) goes through any AF_INET datagram socket."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
            return fcntl.ioctl(control.fileno(), request, argument)


def unit_for(name: str | None) -> int:
    """The sc_unit that asks for this interface name: 0 (any) for None, N + 1 for utunN."""
    if name is None:
        return 0
    match = _UTUN_NAME.fullmatch(name)
    if match is None or int(match.group(1)) > MAX_UNIT:
        raise PlatformError(
            _(
                "{name} cannot be a tunnel interface name on macOS: macOS names them "
                "utun0, utun1, ...; give one of those, or none to let macOS choose."
            ).format(name=repr(name))
        )
    return int(match.group(1)) + 1


def af_header(packet: bytes) -> bytes | None:
    """The 4-byte header for a packet, from its IP version nibble; None if it is not IP."""
    return AF_HEADER.get(packet[0] >> 4) if packet else None


class TunDevice:
    """An open utun interface. Close it (or leave the `with` block) to remove the interface."""

    def __init__(self, sock: Any, name: str, darwin: Darwin) -> None:
        self._sock: Any | None = sock
        self.name = name
        self.dropped_packets = 0  # packets write_packets() had to drop
        self._darwin = darwin

    @classmethod
    def open(cls, name: str | None = None, *, darwin: Darwin | None = None) -> TunDevice:
        """Create the interface; `name` None lets macOS pick the first free utunN."""
        unit = unit_for(name)
        darwin = Darwin() if darwin is None else darwin
        wanted = name or "utun"
        try:
            sock = darwin.control_socket()
        except OSError as error:
            raise PlatformError(
                _("The kernel control socket for tunnel interfaces cannot be opened ({reason}).").format(reason=error.strerror)
            ) from error
        try:
            request = CTL_INFO.pack(0, UTUN_CONTROL_NAME)
            try:
                reply = darwin.ioctl(sock.fileno(), CTLIOCGINFO, request)
            except OSError as error:
                raise PlatformError(_("This macOS offers no utun tunnel interfaces ({reason}).").format(reason=error.strerror)) from error
            control_id = CTL_INFO.unpack(reply)[0]
            try:
                sock.connect((control_id, unit))
            except OSError as error:
                raise _connect_error(error, wanted) from error
            raw_name = sock.getsockopt(SYSPROTO_CONTROL, UTUN_OPT_IFNAME, IFNAMSIZ * 2)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return cls(sock, raw_name.split(b"\0", 1)[0].decode("ascii"), darwin)

    def fileno(self) -> int:
        if self._sock is None:
            raise PlatformError(_("The tunnel interface {name} is already closed.").format(name=self.name))
        return self._sock.fileno()

    @property
    def closed(self) -> bool:
        return self._sock is None

    def read_packets(self, max_count: int = 64) -> list[bytes]:
        """Read packets until none is waiting or `max_count` were read; [] if none. The 4-byte
        address-family header is removed."""
        self.fileno()
        sock = self._sock
        assert sock is not None  # fileno() raised when closed
        packets: list[bytes] = []
        while len(packets) < max_count:
            try:
                datagram = sock.recv(MAX_PACKET + HEADER_SIZE)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError as error:
                raise PlatformError(
                    _("Reading from the tunnel interface {name} failed ({reason}); reconnect to create it anew.").format(
                        name=self.name, reason=error.strerror
                    )
                ) from error
            if not datagram:
                break
            if len(datagram) > HEADER_SIZE:
                packets.append(datagram[HEADER_SIZE:])
        return packets

    def write_packets(self, packets: list[bytes]) -> None:
        """Send packets into the system, each behind its address-family header. A packet that is
        not IPv4/IPv6 or that the kernel cannot take now is dropped and counted."""
        self.fileno()
        sock = self._sock
        assert sock is not None  # fileno() raised when closed
        for packet in packets:
            header = af_header(packet)
            if header is None:
                self.dropped_packets += 1
                continue
            try:
                sock.send(header + packet)
            except OSError as error:
                if error.errno in _DROPPABLE_WRITE_ERRORS:
                    self.dropped_packets += 1
                    continue
                raise PlatformError(
                    _("Writing to the tunnel interface {name} failed ({reason}); reconnect to create it anew.").format(
                        name=self.name, reason=error.strerror
                    )
                ) from error

    @property
    def mtu(self) -> int:
        reply = self._interface_ioctl(
            SIOCGIFMTU, IFREQ_MTU.pack(self.name.encode(), 0), _("Could not read the MTU of the tunnel interface {name} ({reason}).")
        )
        return IFREQ_MTU.unpack(reply)[1]

    def set_mtu(self, mtu: int) -> None:
        if not 68 <= mtu <= MAX_PACKET:
            raise PlatformError(_("An MTU of {mtu} bytes is not possible: it must be between 68 and {maximum}.").format(mtu=mtu, maximum=MAX_PACKET))
        self._interface_ioctl(
            SIOCSIFMTU,
            IFREQ_MTU.pack(self.name.encode(), mtu),
            _("Could not set an MTU of {mtu} on the tunnel interface {name} ({reason})."),
            mtu=mtu,
        )

    def close(self) -> None:
        """Close the control socket; the kernel then removes the interface. Safe to call twice."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> TunDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<TunDevice {self.name} {'closed' if self._sock is None else 'open'}>"

    def _interface_ioctl(self, request: int, argument: bytes, failure: str, **values: object) -> bytes:
        """The ioctl's reply; on failure PlatformError(`failure`), a sentence with {name} and
        {reason} (and `values`) to fill in."""
        self.fileno()  # a closed device has no interface any more
        try:
            return self._darwin.interface_ioctl(request, argument)
        except OSError as error:
            if error.errno in (errno.EPERM, errno.EACCES):
                raise PlatformError(
                    _("Changing the tunnel interface {name} needs administrator rights: run sstp-vpn as root.").format(name=self.name)
                ) from error
            raise PlatformError(failure.format(name=self.name, reason=error.strerror, **values)) from error


def _connect_error(error: OSError, name: str) -> PlatformError:
    if error.errno in (errno.EPERM, errno.EACCES):
        return PlatformError(_("Creating the tunnel interface needs administrator rights: run sstp-vpn as root."))
    if error.errno == errno.EBUSY:
        return PlatformError(_("The interface {name} is already in use by another program; choose another utun number or none.").format(name=name))
    return PlatformError(_("Creating the tunnel interface {name} failed ({reason}).").format(name=name, reason=error.strerror))
