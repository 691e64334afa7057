"""How one helper message (helper_protocol) crosses the helper's Unix socket, for the client and
the helper alike, on Linux and macOS.

- Linux: SOCK_SEQPACKET, one message per packet. The kernel keeps the boundaries; a message
  longer than MAX_MESSAGE_BYTES arrives cut to MAX_MESSAGE_BYTES + 1 bytes, which the parser
  refuses with a sentence, and the session goes on.
- macOS: AF_UNIX has no SOCK_SEQPACKET there (XNU offers stream and datagram sockets only), and a
  datagram socket has no end-of-connection, which the helper needs to restore the network when a
  client dies. So SOCK_STREAM, each message behind a 4-byte big-endian length. A length above
  MAX_MESSAGE_BYTES cannot be skipped safely (the stream would have to be read blindly), so it
  raises BrokenFraming and the connection ends after the refusal.

The framing follows the socket's type, so both ends pick the same one from the socket itself.
Descriptors (SCM_RIGHTS) travel with the first bytes of a message; the receiver takes them from
every read of that message. A stream read never asks for more than the rest of the current
message, so it never touches the next one, nor the descriptors sent with it.
"""

from __future__ import annotations

import array
import os
import socket
import struct
import sys
from collections.abc import Sequence

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.helper_protocol import MAX_MESSAGE_BYTES, BrokenFraming

LENGTH_PREFIX = struct.Struct("!I")


def socket_type_for(platform_name: str) -> int:
    """What the helper listens on and the client connects with on this OS (a sys.platform value)."""
    return socket.SOCK_SEQPACKET if platform_name.startswith("linux") else socket.SOCK_STREAM


SOCKET_TYPE = socket_type_for(sys.platform)
_FD_SIZE = array.array("i").itemsize
# Linux marks received descriptors close-on-exec in the same call; elsewhere it is done after.
_CMSG_CLOEXEC = getattr(socket, "MSG_CMSG_CLOEXEC", 0)


def send_message(sock: socket.socket, data: bytes, fds: Sequence[int] = ()) -> None:
    """Send one message, with `fds` as SCM_RIGHTS ancillary data."""
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
    if sock.type == socket.SOCK_SEQPACKET:
        sock.sendmsg([data], ancillary)
        return
    framed = LENGTH_PREFIX.pack(len(data)) + data
    sent = sock.sendmsg([framed], ancillary)  # the descriptors go with these first bytes
    if sent < len(framed):
        sock.sendall(framed[sent:])


def receive_message(sock: socket.socket, max_fds: int = 0) -> tuple[bytes, list[int]] | None:
    """The next message and the descriptors that came with it (the caller owns them), or None
    when the other side has closed the connection (also in the middle of a message). With
    `max_fds` 0, descriptors sent along are discarded by the kernel."""
    if sock.type == socket.SOCK_SEQPACKET:
        return _receive_packet(sock, max_fds)
    fds: list[int] = []
    try:
        header = _receive_exactly(sock, LENGTH_PREFIX.size, max_fds, fds)
        if header is None:
            raise EOFError
        (length,) = LENGTH_PREFIX.unpack(header)
        if length > MAX_MESSAGE_BYTES:
            raise BrokenFraming(_("The message is longer than the network helper accepts ({limit} bytes).").format(limit=MAX_MESSAGE_BYTES))
        body = _receive_exactly(sock, length, max_fds, fds)
        if body is None:
            raise EOFError
    except (BrokenFraming, EOFError, OSError) as error:
        _close_all(fds)
        if isinstance(error, EOFError):
            return None
        raise
    return body, fds


def _receive_packet(sock: socket.socket, max_fds: int) -> tuple[bytes, list[int]] | None:
    fds: list[int] = []
    while True:
        try:
            data, ancillary, flags, _address = sock.recvmsg(
                MAX_MESSAGE_BYTES + 1, socket.CMSG_SPACE(max_fds * _FD_SIZE) if max_fds else 0, _CMSG_CLOEXEC
            )
        except InterruptedError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return None
        fds.extend(_descriptors(ancillary))
        if not data and not flags & socket.MSG_TRUNC:
            _close_all(fds)
            return None  # a zero-length read is the end of the connection
        return data, fds


def _receive_exactly(sock: socket.socket, size: int, max_fds: int, fds: list[int]) -> bytes | None:
    """`size` bytes, or None when the connection ends before the first of them; EOFError when it
    ends after some."""
    chunks = bytearray()
    while len(chunks) < size:
        try:
            data, ancillary, _flags, _address = sock.recvmsg(
                size - len(chunks), socket.CMSG_SPACE(max_fds * _FD_SIZE) if max_fds else 0, _CMSG_CLOEXEC
            )
        except InterruptedError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            data, ancillary = b"", []
        fds.extend(_descriptors(ancillary))
        if not data:
            if chunks:
                raise EOFError
            return None
        chunks += data
    return bytes(chunks)


def _descriptors(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            received = array.array("i")
            received.frombytes(payload[: len(payload) - len(payload) % _FD_SIZE])
            fds.extend(received)
    if not _CMSG_CLOEXEC:
        for fd in fds:
            os.set_inheritable(fd, False)  # never into a program the helper or client runs
    return fds


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
