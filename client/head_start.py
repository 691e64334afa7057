"""A head start for the command line's first connection: name resolution and the TCP connect to
the server begin on a thread as soon as `sstp-vpn connect HOST` knows the host and port, while the
rest of start-up (imports, settings, the engine) goes on. transport.resolve and
transport.connect_first then take what the thread found, once, instead of doing it again, so the
addresses tried, their order, the errors and their sentences stay exactly theirs.

Only for a direct connection (no proxy: a proxy's way is decided later) and only after the
password is read (no TCP connection idles behind a prompt). Light on purpose: socket and
threading only, so that the SYN leaves before the heavy imports (issue 18).
"""

from __future__ import annotations

import socket
import threading

from . import system_store

_lock = threading.Lock()
_pending: HeadStart | None = None


class HeadStart:
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.infos: list[tuple] | None = None  # getaddrinfo's answer
        self.resolve_error: BaseException | None = None
        self.sockaddr: tuple | None = None  # the address connected to (or tried)
        self.sock: socket.socket | None = None
        self.connect_error: OSError | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sstp-head-start", daemon=True)

    def _run(self) -> None:
        try:
            try:
                self.infos = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
            except (OSError, UnicodeError) as error:
                self.resolve_error = error
                return
            # The first address transport.resolve would try first (it keeps the resolver's order).
            first = next(((family, sockaddr) for family, _t, _p, _n, sockaddr in self.infos if family in (socket.AF_INET, socket.AF_INET6)), None)
            if first is None:
                return
            family, self.sockaddr = first
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(self.sockaddr)
            except OSError as error:
                sock.close()
                self.connect_error = error
                return
            self.sock = sock
        finally:
            self._done.set()
            # Then the CA certificates the TLS handshake needs, beside the rest of start-up
            # (system_store.py): after the SYN, not competing with it.
            system_store.begin()

    def wait(self) -> None:
        # The thread's own connect is bounded by the timeout, the resolver by its own timeouts.
        self._done.wait()


def begin(host: str, port: int, timeout: float) -> None:
    """Start resolving and connecting to host:port on a thread (one head start per process)."""
    global _pending
    head = HeadStart(host, port, timeout)
    with _lock:
        if _pending is not None:
            return
        _pending = head
    head._thread.start()


def getaddrinfo(host: str, port: int) -> list[tuple]:
    """socket.getaddrinfo(host, port, SOCK_STREAM, TCP), answered by the head start when it
    resolved this very host and port; it raises what the resolver raised."""
    head = _pending
    if head is not None and (head.host, head.port) == (host, port):
        head.wait()
        if head.resolve_error is not None:
            error, head.resolve_error = head.resolve_error, None
            _forget(head)
            raise error
        if head.infos is not None:
            infos, head.infos = head.infos, None
            return infos
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)


def connect(family: int, sockaddr: tuple, timeout: float) -> socket.socket:
    """A connected TCP socket to `sockaddr` (with `timeout` set): the head start's, taken once,
    when it went to this address; else a new connection now. Raises OSError as connect() does."""
    head = _pending
    if head is not None and head.sockaddr == sockaddr:
        head.wait()
        _forget(head)
        if head.connect_error is not None:
            raise head.connect_error
        if head.sock is not None:
            head.sock.settimeout(timeout)
            return head.sock
    return new_connection(family, sockaddr, timeout)


def new_connection(family: int, sockaddr: tuple, timeout: float) -> socket.socket:
    """A new TCP connection to `sockaddr`, never the head start's: for addresses pinned before a
    kill switch went on (TransportSettings.resolved), which the head start's may predate."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(sockaddr)
    except BaseException:
        sock.close()
        raise
    return sock


def _forget(head: HeadStart) -> None:
    global _pending
    with _lock:
        if _pending is head:
            _pending = None
