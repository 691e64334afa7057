"""packet_relay on any system: the named pipe is played by a blocking socketpair (SocketStream,
whose close() shuts the socket down, which ends a read or write blocked in another thread, as
PipeStream.close does), the Wintun adapter by InboxTun (a PacketInbox that drops what arrives while
it is full, as Wintun's ring does). Both directions, batching, back-pressure, a hostile engine, and
every way a session ends, on both sides."""

from __future__ import annotations

import fcntl
import inspect
import select
import selectors
import socket
import struct
import termios
import threading
import time

import pytest

from sstpvpn.platform import interfaces, packet_relay
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.packet_framing import PacketDeframer, frame_packets
from sstpvpn.platform.packet_inbox import PacketInbox
from sstpvpn.platform.packet_relay import RelayTunDevice, TunnelRelay
from tests.platform.test_contract import has_members, protocol_methods, shape

TIMEOUT = 5.0
ENDED = "The SSTP VPN network service ended the tunnel adapter SSTP VPN; reconnect."


def packet(number: int, size: int = 60) -> bytes:
    return number.to_bytes(4, "big") + bytes([number % 251]) * (size - 4)


def returns(call) -> None:
    """Run call on a thread and fail (instead of hanging) unless it returns in time."""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), f"{call} is still blocked"


def wait_until(condition, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


class SocketStream:
    """A ByteStream on one end of a blocking socketpair. Counts writes, and which are under way."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.writes_started = 0
        self.writes_done = 0
        self.closes = 0
        self._lock = threading.Lock()

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if timeout is not None and not select.select([self.sock], [], [], timeout)[0]:
            raise TimeoutError
        try:
            return self.sock.recv(max_bytes)
        except OSError:
            return b""

    def write(self, data: bytes) -> None:
        self.writes_started += 1
        self.sock.sendall(data)  # BrokenPipeError once either end shut down
        self.writes_done += 1

    def close(self) -> None:
        with self._lock:
            self.closes += 1
            if self.closes > 1:
                return
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the other end is gone already


class InboxTun:
    """A TunDevice stand-in: arrive() is the system sending a packet into the adapter (dropped
    while the queue is full, as Wintun's ring drops); write_packets records what was delivered."""

    def __init__(self, name: str = "SSTP VPN", max_packets: int = 1024) -> None:
        self.name = name
        self.dropped_packets = 0
        self.inbox = PacketInbox(max_packets)
        self.written: list[bytes] = []
        self.write_calls = 0
        self.ring_drops = 0
        self.most_queued = 0
        self._closed = False
        self._delivered = threading.Condition()

    def arrive(self, *packets: bytes) -> list[bytes]:
        """The packets taken in (not dropped)."""
        taken = []
        for one in packets:
            if len(self.inbox) >= self.inbox.max_packets:
                self.ring_drops += 1
                continue
            self.inbox.hand_over([one])
            taken.append(one)
            self.most_queued = max(self.most_queued, len(self.inbox))
        return taken

    def fileno(self) -> int:
        return self.inbox.fileno()

    @property
    def closed(self) -> bool:
        return self._closed

    def read_packets(self, max_count: int = 64) -> list[bytes]:
        return self.inbox.take(max_count)

    def write_packets(self, packets: list[bytes]) -> None:
        with self._delivered:
            self.written += packets
            self.write_calls += 1
            self._delivered.notify_all()

    def wait_written(self, count: int) -> list[bytes]:
        with self._delivered:
            assert self._delivered.wait_for(lambda: len(self.written) >= count, TIMEOUT), self.written
            return list(self.written)

    @property
    def mtu(self) -> int:
        return 1400

    def set_mtu(self, mtu: int) -> None:
        pass

    def close(self) -> None:
        self._closed = True
        self.inbox.close()

    def __enter__(self) -> InboxTun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Ends:
    """What on_end / on_close were called with, as events a test can wait on."""

    def __init__(self) -> None:
        self.calls: list[object] = []
        self.called = threading.Event()
        self.after: list = []  # run inside the callback, after recording it

    def __call__(self, *reason: object) -> None:
        self.calls.append(reason[0] if reason else None)
        for action in self.after:
            action()
        self.called.set()

    def wait(self) -> list[object]:
        assert self.called.wait(TIMEOUT), "never called"
        return self.calls


@pytest.fixture
def sockets():
    """socketpair() that closes both ends after the test: the first, blocking, for a SocketStream;
    the second for the test, which plays the other side with it."""
    made: list[socket.socket] = []

    def pair() -> tuple[socket.socket, socket.socket]:
        ends = socket.socketpair()
        made.extend(ends)
        ends[1].settimeout(TIMEOUT)  # a test that waits in vain fails instead of hanging
        return ends

    yield pair
    for end in made:
        end.close()


def receive_packets(sock: socket.socket, count: int) -> list[bytes]:
    deframer, packets = PacketDeframer(), []
    while len(packets) < count:
        data = sock.recv(1 << 16)
        assert data, f"the stream ended after {len(packets)} packets"
        packets += deframer.feed(data)
    return packets


def unread(sock: socket.socket) -> int:
    """Bytes waiting in the socket's receive queue."""
    return struct.unpack("i", fcntl.ioctl(sock, termios.FIONREAD, b"\0\0\0\0"))[0]


def wait_for_eof(sock: socket.socket) -> None:
    while sock.recv(1 << 16):
        pass


# -- the service's side: TunnelRelay -----------------------------------------------------------


@pytest.fixture
def service(sockets):
    """A TunnelRelay between an InboxTun and the service's end of a socketpair; yields the
    pieces and the engine's end (a raw socket the test plays the engine on)."""
    relays: list[TunnelRelay] = []

    def make(max_packets: int = 1024, on_end: Ends | None = None, start: bool = True):
        service_end, engine_end = sockets()
        stream, tun, ends = SocketStream(service_end), InboxTun(max_packets=max_packets), on_end or Ends()
        relay = TunnelRelay(tun, stream, ends)
        relays.append(relay)
        if start:
            relay.start()
        return relay, tun, stream, engine_end, ends

    yield make
    for relay in relays:
        returns(relay.stop)


def test_packets_cross_the_relay_both_ways_in_order(service):
    relay, tun, _, engine, ends = service()
    outbound = [packet(n, 40 + n % 1400) for n in range(300)]
    inbound = [packet(n, 1500 - n % 1400) for n in range(300)]
    assert tun.arrive(*outbound) == outbound
    engine.sendall(frame_packets(inbound[:150]))
    engine.sendall(frame_packets(inbound[150:]))
    assert receive_packets(engine, 300) == outbound
    assert tun.wait_written(300) == inbound
    assert relay.running and not ends.called.is_set() and not tun.closed


def test_the_adapters_packets_go_out_framed_in_one_write_per_batch(service):
    relay, tun, stream, engine, _ = service(start=False)
    packets = [packet(n) for n in range(3 * packet_relay.READ_BATCH)]
    tun.arrive(*packets)  # already waiting: the relay takes them 64 at a time
    relay.start()
    assert receive_packets(engine, len(packets)) == packets
    assert stream.writes_done == 3


def test_a_read_of_many_frames_is_one_write_into_the_adapter(service):
    relay, tun, _, engine, _ = service(start=False)
    packets = [packet(n) for n in range(500)]
    engine.sendall(frame_packets(packets))  # already waiting: one read takes it all
    relay.start()
    assert tun.wait_written(500) == packets
    assert tun.write_calls == 1


def test_an_engine_that_does_not_read_blocks_the_relay_and_the_adapter_drops(service):
    relay, tun, stream, engine, _ = service(max_packets=16)
    stream.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * 1024)
    # Packets arrive while there is room, as fast as the relay takes them, until it takes no more
    # (there is no event for "blocked": a pause long enough for any relay that still moves).
    taken: list[bytes] = []
    for n in range(4000):  # 4 MB: far more than any buffer on the way
        if len(tun.inbox) >= 16 and not waited_for_room(tun, 0.3):
            break
        taken += tun.arrive(packet(n, 1000))
    else:
        pytest.fail("the relay went on writing 4 MB that nobody read")
    # The relay is stuck in a write nobody reads, with the queue full: what arrives now is dropped.
    assert stream.writes_started == stream.writes_done + 1
    assert tun.most_queued == 16 and len(taken) < 300
    assert tun.arrive(*[packet(n, 1000) for n in range(5000, 5500)]) == []
    assert tun.ring_drops == 500 and relay.running
    # Once the engine reads, everything taken in arrives, in order, and the relay carries on.
    assert receive_packets(engine, len(taken)) == taken
    assert tun.arrive(packet(9999)) == [packet(9999)]
    assert receive_packets(engine, 1) == [packet(9999)]


def waited_for_room(tun: InboxTun, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while len(tun.inbox) >= tun.inbox.max_packets:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def test_a_zero_length_frame_ends_the_relay_with_a_sentence_and_leaves_the_adapter_open(service):
    relay, tun, _, engine, ends = service()
    engine.sendall(frame_packets([b"\x45fine"]))
    assert tun.wait_written(1) == [b"\x45fine"]
    engine.sendall(b"\x00\x00" + frame_packets([b"\x45never"]))
    [reason] = ends.wait()
    assert reason == (
        "The engine sent damaged packets for the tunnel adapter SSTP VPN, so its tunnel was ended. "
        "A frame announced a packet of 0 bytes, which the relay's framing does not allow."
    )
    assert tun.written == [b"\x45fine"]
    wait_for_eof(engine)  # the stream was closed
    wait_until(lambda: not relay.running)
    assert not tun.closed  # the session owns it
    assert tun.arrive(b"\x45still open")  # and it still works for its owner
    relay.stop()
    assert ends.calls == [reason]


def test_the_engine_closing_the_stream_ends_the_relay_with_none(service):
    relay, tun, _, engine, ends = service()
    engine.sendall(frame_packets([b"\x45last"]))
    engine.shutdown(socket.SHUT_WR)
    assert ends.wait() == [None]
    assert tun.wait_written(1) == [b"\x45last"]
    wait_until(lambda: not relay.running)  # the other direction stopped too
    assert not tun.closed


def test_a_failed_adapter_ends_the_relay_with_its_sentence(service):
    relay, tun, _, engine, ends = service()
    tun.inbox.fail("The tunnel adapter SSTP VPN was removed; reconnect to create it anew.")
    assert ends.wait() == ["The tunnel adapter SSTP VPN was removed; reconnect to create it anew."]
    wait_for_eof(engine)
    wait_until(lambda: not relay.running)


def test_stop_from_on_end_does_not_deadlock(service):
    ends = Ends()
    relay, _, _, engine, _ = service(on_end=ends)
    stopped = threading.Event()
    ends.after.append(lambda: (relay.stop(), stopped.set()))
    engine.shutdown(socket.SHUT_RDWR)
    assert ends.wait() == [None]
    assert stopped.wait(TIMEOUT)
    wait_until(lambda: not relay.running)


def test_stop_ends_both_threads_without_on_end_and_leaves_the_adapter_open(service):
    relay, tun, stream, engine, ends = service()
    returns(relay.stop)  # one thread waits in the stream's read, the other in its selector
    assert not relay.running
    relay.stop()  # twice is fine
    assert stream.closes >= 1
    wait_for_eof(engine)
    assert ends.calls == [] and not tun.closed


def test_stop_before_start_is_fine(service):
    relay, tun, _, _, ends = service(start=False)
    relay.stop()
    assert ends.calls == [] and not relay.running and not tun.closed


# -- the engine's side: RelayTunDevice -------------------------------------------------------


@pytest.fixture
def engine_side(sockets):
    """A RelayTunDevice on the engine's end of a socketpair; the test plays the service on the
    other end (a raw socket)."""
    devices: list[RelayTunDevice] = []

    def make():
        engine_end, service_end = sockets()
        stream, mtus, closes = SocketStream(engine_end), [], Ends()
        device = RelayTunDevice(stream, "SSTP VPN", mtus.append, closes)
        devices.append(device)
        return device, stream, service_end, mtus, closes

    yield make
    for device in devices:
        returns(device.close)


def test_the_device_has_every_member_of_the_tun_device_protocol(engine_side):
    device, *_ = engine_side()
    assert has_members(device, interfaces.TunDevice)
    for method in protocol_methods(interfaces.TunDevice):
        expected, actual = shape(inspect.signature(getattr(interfaces.TunDevice, method))), shape(inspect.signature(getattr(RelayTunDevice, method)))
        if method == "__enter__":  # returns itself, so its own class
            expected[-1] = ("->", "RelayTunDevice")
        assert actual == expected, method
    for prop in ("closed", "mtu"):
        assert shape(inspect.signature(vars(RelayTunDevice)[prop].fget)) == shape(inspect.signature(vars(interfaces.TunDevice)[prop].fget))


def test_packets_from_the_service_wake_the_selector_and_are_read_in_order(engine_side):
    device, _, service, _, _ = engine_side()
    packets = [packet(n, 20 + n) for n in range(100)]
    with selectors.DefaultSelector() as selector:
        selector.register(device, selectors.EVENT_READ)
        assert selector.select(0) == []
        assert device.read_packets() == []
        frames = frame_packets(packets)
        service.sendall(frames[:1001])
        service.sendall(frames[1001:])
        received: list[bytes] = []
        while len(received) < 100:
            assert selector.select(TIMEOUT)
            received += device.read_packets(64)
        assert received == packets
        assert selector.select(0) == []


def test_write_packets_sends_a_batch_in_one_write_and_drops_what_cannot_be_framed(engine_side):
    device, stream, service, _, _ = engine_side()
    good = [packet(n) for n in range(50)]
    device.write_packets([good[0], b"", *good[1:], bytes(0x10000)])
    assert stream.writes_done == 1
    assert receive_packets(service, 50) == good
    assert device.dropped_packets == 2
    device.write_packets([b""])  # nothing to send: no write
    assert stream.writes_done == 1 and device.dropped_packets == 3


def test_close_unblocks_the_reader_closes_the_stream_and_calls_on_close_once(engine_side):
    device, stream, service, _, closes = engine_side()
    assert device._reader.is_alive()  # waiting in the stream's read
    returns(device.close)
    assert closes.calls == [None]
    assert not device._reader.is_alive() and device.closed and stream.closes == 1
    wait_for_eof(service)  # the service sees the session end
    device.close()  # twice is fine
    assert closes.calls == [None]
    for use in (device.fileno, device.read_packets, lambda: device.write_packets([b"\x45"]), lambda: device.mtu):
        with pytest.raises(PlatformError, match="The tunnel interface SSTP VPN is already closed"):
            use()


def test_close_unblocks_a_reader_waiting_for_room(engine_side, monkeypatch):
    monkeypatch.setattr(packet_relay, "MAX_QUEUED_PACKETS", 4)
    device, stream, service, _, closes = engine_side()
    service.sendall(frame_packets([packet(n) for n in range(4)]))
    wait_until(lambda: len(device._inbox) == 4)
    service.sendall(frame_packets([packet(4)]))
    # The reader took that from the stream and holds it: it waits for room that never comes.
    wait_until(lambda: unread(stream.sock) == 0)
    assert len(device._inbox) == 4
    returns(device.close)
    assert not device._reader.is_alive() and closes.calls == [None]


def test_when_the_service_goes_away_the_packets_before_are_read_then_a_sentence(engine_side):
    device, _, service, _, closes = engine_side()
    service.sendall(frame_packets([b"\x45one", b"\x45two"]))
    service.close()
    with selectors.DefaultSelector() as selector:
        selector.register(device, selectors.EVENT_READ)
        assert selector.select(TIMEOUT)
        wait_until(lambda: not device._reader.is_alive())
        assert device.read_packets() == [b"\x45one", b"\x45two"]
        assert selector.select(TIMEOUT)  # still readable: the failure waits to be read
    with pytest.raises(PlatformError) as caught:
        device.read_packets()
    assert caught.value.sentence == ENDED
    with pytest.raises(PlatformError, match=ENDED):
        device.write_packets([b"\x45three"])
    assert closes.calls == [] and not device.closed  # the runner closes it, as any device


def test_a_write_into_a_vanished_service_is_a_sentence(engine_side):
    device, stream, service, _, _ = engine_side()
    device._reader_failed = lambda sentence: None  # as if the reader had not noticed yet
    service.close()
    wait_until(lambda: not device._reader.is_alive())
    with pytest.raises(PlatformError) as caught:
        device.write_packets([b"\x45lost"])
    assert caught.value.sentence == ENDED and stream.writes_started == 1


def test_damaged_frames_from_the_service_are_a_sentence(engine_side):
    device, _, service, _, _ = engine_side()
    service.sendall(b"\x00\x00")
    wait_until(lambda: not device._reader.is_alive())
    with pytest.raises(PlatformError, match=r"The SSTP VPN network service sent damaged packets for the tunnel adapter SSTP VPN; reconnect\."):
        device.read_packets()


def test_the_mtu_is_asked_of_the_service_and_remembered(engine_side):
    device, _, _, mtus, _ = engine_side()
    with pytest.raises(PlatformError, match="The MTU of the tunnel adapter SSTP VPN is not known yet"):
        _ = device.mtu
    device.set_mtu(1400)
    assert mtus == [1400] and device.mtu == 1400
    for impossible in (0, 67, 65536):
        with pytest.raises(PlatformError, match=f"An MTU of {impossible} bytes is not possible"):
            device.set_mtu(impossible)
    assert mtus == [1400]


def test_an_mtu_the_service_refuses_is_not_remembered(sockets):
    engine_end, _ = sockets()

    def refuse(mtu: int) -> None:
        raise PlatformError(f"Windows refused an MTU of {mtu} bytes on the tunnel adapter SSTP VPN.")

    with RelayTunDevice(SocketStream(engine_end), "SSTP VPN", refuse, lambda: None) as device:
        with pytest.raises(PlatformError, match="Windows refused an MTU of 1300 bytes"):
            device.set_mtu(1300)
        with pytest.raises(PlatformError, match="not known yet"):
            _ = device.mtu


# -- both sides together ---------------------------------------------------------------------


def test_engine_and_service_relay_packets_and_the_engine_closing_ends_the_session(sockets):
    engine_end, service_end = sockets()
    service_end.settimeout(None)  # both ends are streams here
    tun, service_ends, closes = InboxTun(), Ends(), Ends()
    relay = TunnelRelay(tun, SocketStream(service_end), service_ends)
    relay.start()
    device = RelayTunDevice(SocketStream(engine_end), tun.name, lambda mtu: None, closes)
    try:
        outbound = [packet(n, 1400) for n in range(200)]
        device.write_packets(outbound[:100])
        device.write_packets(outbound[100:])
        assert tun.wait_written(200) == outbound
        inbound = [packet(n, 100) for n in range(200)]
        tun.arrive(*inbound)
        received: list[bytes] = []
        with selectors.DefaultSelector() as selector:
            selector.register(device, selectors.EVENT_READ)
            while len(received) < 200:
                assert selector.select(TIMEOUT)
                received += device.read_packets()
        assert received == inbound
    finally:
        device.close()
    assert closes.calls == [None]
    assert service_ends.wait() == [None]
    relay.stop()
    assert not relay.running and not tun.closed
