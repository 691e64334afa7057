"""The Windows tunnel relay: IP packets carried between the SSTP VPN network service, which owns
the Wintun adapter, and the unprivileged engine, over one byte stream per session (a named pipe).

Why: a Wintun session needs SYSTEM or an elevated administrator, and its packet rings live in the
process that opened it. Rather than run the engine elevated, a LocalSystem service opens the
adapter and carries the packets; the engine gets a RelayTunDevice, which behaves like any other
TunDevice (interfaces.py), so the runner does not know the difference.

    engine: RelayTunDevice  <--framed packets over a ByteStream-->  service: TunnelRelay <--> Wintun TunDevice

Both ends are written against ByteStream, a small protocol the named pipe (winpipe.PipeStream)
satisfies, so all of this runs and is tested on any system with a socketpair in the pipe's place.
The wire format is packet_framing's: a 2-byte length before each packet, one write per batch.

Back-pressure is kept end to end, as a kernel would keep it: a peer that does not read blocks the
writer's stream.write, the writer stops taking packets from its device, that device's bounded
queue fills, and the packets are dropped at the source (Wintun's ring), never queued without bound.
The service reads what an unprivileged user's process writes: the deframer holds at most one frame
and a bad frame ends that session only.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from sstpvpn.client.core.i18n import _
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.packet_framing import MAX_PACKET, FramingError, PacketDeframer, frame_packets
from sstpvpn.platform.packet_inbox import PacketInbox

if TYPE_CHECKING:
    from sstpvpn.platform import interfaces

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024  # bytes asked of the stream at once: many packets per read
READ_BATCH = 64  # packets the service takes from the adapter per stream write
MAX_QUEUED_PACKETS = 1024  # packets waiting for the engine before the relay reader pauses
MIN_MTU = 68  # IPv4's minimum


class ByteStream(Protocol):
    """A bidirectional byte stream, as winpipe.PipeStream: read and write may run in two threads
    at once, and close() from any thread ends both."""

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to max_bytes, blocking until some arrive; b"" once the other end or this stream closed."""
        ...

    def write(self, data: bytes) -> None:
        """All of data, blocking while the other end does not read; BrokenPipeError once it is gone."""
        ...

    def close(self) -> None:
        """Idempotent and thread-safe; unblocks a read or write waiting in another thread."""
        ...


def _usable(packets: list[bytes]) -> list[bytes]:
    """The packets the framing can carry (1 to 65535 bytes)."""
    return [packet for packet in packets if 0 < len(packet) <= MAX_PACKET]


class RelayTunDevice:
    """The engine's side: a TunDevice whose packets travel to and from the service's Wintun
    adapter over `stream`. `set_mtu` asks the service to set the adapter's MTU; `on_close` ends
    the service's session (which removes the adapter)."""

    def __init__(self, stream: ByteStream, name: str, set_mtu: Callable[[int], None], on_close: Callable[[], None]) -> None:
        self.name = name  # the adapter's interface alias, as the service reported it
        self.dropped_packets = 0  # packets write_packets() dropped: empty or over 65535 bytes
        self._stream = stream
        self._ask_mtu = set_mtu
        self._on_close = on_close
        self._mtu: int | None = None
        self._closed = False
        self._close_lock = threading.Lock()
        self._broken: str | None = None  # why the stream cannot carry packets any more
        self._inbox = PacketInbox(MAX_QUEUED_PACKETS)
        self._reader = threading.Thread(target=self._read_loop, name=f"Tunnel relay reader ({name})", daemon=True)
        self._reader.start()

    def fileno(self) -> int:
        """A socket that is readable while packets are waiting (or the stream has ended)."""
        if self._closed:
            raise PlatformError(_("The tunnel interface {name} is already closed.").format(name=self.name))
        return self._inbox.fileno()

    @property
    def closed(self) -> bool:
        return self._closed

    def read_packets(self, max_count: int = 64) -> list[bytes]:
        """The packets waiting, at most `max_count`; [] if none. Once the service has ended the
        tunnel (and every packet before that was read): PlatformError saying so."""
        self.fileno()
        return self._inbox.take(max_count)

    def write_packets(self, packets: list[bytes]) -> None:
        """Send the packets to the service in one stream write. Empty and oversized packets are
        dropped, counted in `dropped_packets`. Blocks while the service does not read."""
        self.fileno()
        if self._broken is not None:
            raise PlatformError(self._broken)
        usable = _usable(packets)
        self.dropped_packets += len(packets) - len(usable)
        if not usable:
            return
        try:
            self._stream.write(frame_packets(usable))
        except OSError as error:  # BrokenPipeError: the service ended the session
            if self._closed:
                raise PlatformError(_("The tunnel interface {name} is already closed.").format(name=self.name)) from None
            self._broken = self._ended_sentence()
            log.debug("Writing to the tunnel relay of %s failed: %s", self.name, error)
            raise PlatformError(self._broken) from None

    @property
    def mtu(self) -> int:
        """The MTU last set: nothing reads it before setting it, and asking the service for it
        would be one more request to secure for no use."""
        self.fileno()
        if self._mtu is None:
            raise PlatformError(_("The MTU of the tunnel adapter {name} is not known yet: it has not been set.").format(name=self.name))
        return self._mtu

    def set_mtu(self, mtu: int) -> None:
        """Ask the service to set the adapter's MTU (its PlatformError passes through)."""
        if not MIN_MTU <= mtu <= MAX_PACKET:
            raise PlatformError(
                _("An MTU of {mtu} bytes is not possible: it must be between {minimum} and {maximum}.").format(
                    mtu=mtu, minimum=MIN_MTU, maximum=MAX_PACKET
                )
            )
        self.fileno()
        self._ask_mtu(mtu)
        self._mtu = mtu

    def close(self) -> None:
        """Stop the reader, close the stream, then end the service's session. Safe twice, and
        from any thread."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._inbox.stop()  # a reader waiting for room returns
            self._stream.close()  # a reader waiting in read() gets b""
            if threading.current_thread() is not self._reader:
                self._reader.join()
            self._inbox.close()
        finally:
            self._on_close()

    def __enter__(self) -> RelayTunDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RelayTunDevice {self.name} {'closed' if self._closed else 'open'}>"

    def _ended_sentence(self) -> str:
        return _("The SSTP VPN network service ended the tunnel adapter {name}; reconnect.").format(name=self.name)

    # -- the reader thread ---------------------------------------------------------------

    def _read_loop(self) -> None:
        try:
            self._relay_packets()
        except Exception:  # a bug must still reach the runner as a failure, not leave it waiting
            log.exception("The tunnel relay reader for %s failed", self.name)
            self._reader_failed(_("The tunnel relay for {name} failed unexpectedly; reconnect.").format(name=self.name))

    def _relay_packets(self) -> None:
        deframer = PacketDeframer()
        while True:
            try:
                data = self._stream.read(READ_SIZE)
            except OSError as error:
                self._reader_failed(
                    _("The connection to the SSTP VPN network service for the tunnel adapter {name} broke ({error}); reconnect.").format(
                        name=self.name, error=error
                    )
                )
                return
            if not data:
                self._reader_failed(self._ended_sentence())
                return
            try:
                packets = deframer.feed(data)
            except FramingError as error:
                self._reader_failed(
                    _("The SSTP VPN network service sent damaged packets for the tunnel adapter {name}; reconnect. ({problem})").format(
                        name=self.name, problem=error.sentence
                    )
                )
                return
            # May wait for room: the service's write then blocks, and its adapter drops.
            if packets and not self._inbox.hand_over(packets):
                return  # close() stopped us

    def _reader_failed(self, sentence: str) -> None:
        if self._inbox.stopping:
            return  # close() ended the stream: nobody reads any more
        self._broken = sentence
        self._inbox.fail(sentence)


class TunnelRelay:
    """The service's side of one session: carries packets between `tun` (the Wintun adapter the
    session opened) and the engine at the other end of `stream`, on two threads.

    The relay ends by itself when the stream ends (on_end(None): the engine closed it), when the
    engine sends a bad frame or the device fails (on_end(sentence)); on_end is called once, on a
    relay thread, and not after stop(). stop() ends it from outside, also from within on_end. The
    device is never closed here: the session owns it, and closes it after stop()."""

    def __init__(self, tun: interfaces.TunDevice, stream: ByteStream, on_end: Callable[[str | None], None]) -> None:
        self.dropped_packets = 0  # packets from the device the framing cannot carry (none, from Wintun)
        self._tun = tun
        self._stream = stream
        self._on_end = on_end
        self._lock = threading.Lock()  # guards _over and the wake sockets' lifetime
        self._over = False  # ended, or stopped: on_end may no longer be called
        self._wake_r, self._wake_w = socket.socketpair()  # wakes the device thread's selector on stop
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_closed = False
        self._threads = [
            threading.Thread(target=self._run, args=(self._device_to_stream,), name=f"Tunnel relay {tun.name} to engine", daemon=True),
            threading.Thread(target=self._run, args=(self._stream_to_device,), name=f"Tunnel relay engine to {tun.name}", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Close the stream and wait for both threads (except the calling one, when on_end calls
        stop). on_end is not called afterwards. Safe twice, and from any thread."""
        with self._lock:
            self._over = True
        self._shut_down()
        current = threading.current_thread()
        for thread in self._threads:
            if thread is not current and thread.ident is not None:
                thread.join()
        if self._threads[0].ident is None:  # never started: the device thread did not close them
            self._close_wake_sockets()

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    # -- ending ----------------------------------------------------------------------------

    def _end(self, reason: str | None) -> None:
        """The relay ended by itself: stop the other thread, then tell the owner, once."""
        with self._lock:
            first = not self._over
            self._over = True
        self._shut_down()
        if first:
            self._on_end(reason)

    def _shut_down(self) -> None:
        """Unblock both threads: the stream's read and write, and the device thread's selector."""
        self._stream.close()
        with self._lock:
            if not self._wake_closed:
                try:
                    self._wake_w.send(b"\0")
                except OSError:
                    pass  # a wake-up is already pending

    def _run(self, loop: Callable[[], str | None]) -> None:
        try:
            reason = loop()
        except Exception:  # a bug must still end the session, not leave it half alive
            log.exception("The tunnel relay for %s failed", self._tun.name)
            reason = _("The tunnel relay for {name} failed unexpectedly (details are in the service's log).").format(name=self._tun.name)
        self._end(reason)

    # -- the two directions ------------------------------------------------------------------

    def _device_to_stream(self) -> str | None:
        """Packets from the adapter to the engine, one framed write per batch. A blocked write
        blocks this thread, so the adapter's queue fills and its ring drops: back-pressure."""
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._wake_r, selectors.EVENT_READ)
                selector.register(self._tun, selectors.EVENT_READ)
                while True:
                    ready = {key.fileobj for key, _ in selector.select()}
                    if self._over:
                        return None
                    if self._tun not in ready:
                        continue
                    packets = self._tun.read_packets(READ_BATCH)
                    usable = _usable(packets)
                    self.dropped_packets += len(packets) - len(usable)
                    if not usable:
                        continue
                    try:
                        self._stream.write(frame_packets(usable))
                    except OSError:
                        return None  # the engine is gone (or stop() closed the stream)
        except PlatformError as error:
            return error.sentence  # the adapter failed or was removed
        finally:
            self._close_wake_sockets()

    def _close_wake_sockets(self) -> None:
        with self._lock:
            self._wake_closed = True
            self._wake_r.close()
            self._wake_w.close()

    def _stream_to_device(self) -> str | None:
        """Packets from the engine into the adapter. The engine may be hostile: at most one frame
        is buffered, and a bad frame ends this session."""
        deframer = PacketDeframer()
        while True:
            try:
                data = self._stream.read(READ_SIZE)
            except OSError as error:
                return _("Reading packets from the engine for the tunnel adapter {name} failed ({error}).").format(name=self._tun.name, error=error)
            if not data:
                return None  # the engine closed the stream (or stop() did)
            try:
                packets = deframer.feed(data)
            except FramingError as error:
                return _("The engine sent damaged packets for the tunnel adapter {name}, so its tunnel was ended. {problem}").format(
                    name=self._tun.name, problem=error.sentence
                )
            if packets:
                try:
                    self._tun.write_packets(packets)  # never blocks: a full ring drops
                except PlatformError as error:
                    return error.sentence


if TYPE_CHECKING:

    def _relay_device_is_a_tun_device(device: RelayTunDevice) -> interfaces.TunDevice:
        return device  # mypy checks that RelayTunDevice has every member of the protocol
