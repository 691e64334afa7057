"""Packets handed from a reader thread to a selectors loop: the queue between a tunnel device's
own reader (Wintun's ring, a relay's byte stream) and the EngineRunner thread.

A selector can wait only on descriptors, and neither a Win32 event nor a thread blocked in a pipe
read is one. So the reader thread queues what it read and writes one byte to a socketpair whose
other end is `fileno()`: the runner's selector wakes exactly as it does for a Linux TUN descriptor.

The queue is bounded: while the engine is behind, `hand_over` blocks the reader, which then stops
taking packets from its source, so the source's own buffer fills and drops, as a kernel queue would.
A reader that fails leaves its sentence here, and `take` raises it once the packets before the
failure have been taken.
"""

from __future__ import annotations

import collections
import socket
import threading

from sstpvpn.platform.errors import PlatformError


class PacketInbox:
    """A bounded packet queue with a descriptor that is readable while packets wait (or the reader
    failed). One reader thread calls hand_over/fail; one consumer calls take."""

    def __init__(self, max_packets: int) -> None:
        self.max_packets = max_packets  # hand_over waits while this many are queued
        self._queue: collections.deque[bytes] = collections.deque()
        self._room = threading.Condition()  # guards _queue, _stopping and _failure
        self._stopping = False
        self._failure: PlatformError | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def __len__(self) -> int:
        """Packets waiting to be taken."""
        return len(self._queue)

    def fileno(self) -> int:
        return self._wake_r.fileno()

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- the reader's side -----------------------------------------------------------------

    def hand_over(self, batch: list[bytes]) -> bool:
        """Queue a batch, first waiting while the queue is full. False (batch dropped) once stop()
        was called: the reader should then return."""
        with self._room:
            while len(self._queue) >= self.max_packets and not self._stopping:
                self._room.wait()
            if self._stopping:
                return False
            was_empty = not self._queue
            self._queue.extend(batch)
        if was_empty:
            self._wake()  # one byte per empty-to-waiting change: take() wakes again for the rest
        return True

    def fail(self, sentence: str) -> None:
        """The reader stopped for good: take() raises PlatformError(sentence) once the queue is empty."""
        with self._room:
            self._failure = PlatformError(sentence)
        self._wake()

    # -- the consumer's side ---------------------------------------------------------------

    def take(self, max_count: int = 64) -> list[bytes]:
        """The packets waiting, at most `max_count`; [] if none. Raises the reader's failure once
        nothing is left before it."""
        self._drain_wake_socket()
        with self._room:
            packets = [self._queue.popleft() for _ in range(min(max_count, len(self._queue)))]
            failure = self._failure if not packets and not self._queue else None
            # The selector must wake again for the rest, and for a failure that came in behind
            # these packets: its wake-up byte was drained above.
            more = bool(self._queue) or (bool(packets) and self._failure is not None)
            if packets:
                self._room.notify()  # the reader may be waiting for room
        if more:
            self._wake()
        if failure is not None:
            raise failure
        return packets

    def stop(self) -> None:
        """Make hand_over return (now and from now on) without queueing. Safe from any thread."""
        with self._room:
            self._stopping = True
            self._room.notify_all()

    def close(self) -> None:
        """Stop, and close the descriptors. Call it once the reader thread has ended. Safe twice."""
        self.stop()
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # the buffer is full (a wake-up is pending anyway) or we are closing

    def _drain_wake_socket(self) -> None:
        while True:
            try:
                if not self._wake_r.recv(4096):
                    return
            except (BlockingIOError, InterruptedError):
                return
