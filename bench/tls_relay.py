"""A plain single-threaded Python TLS relay: the baseline the tunnel's Python client is held to.

Two halves, each its own process:

    python3 bench/tls_relay.py client --listen 127.0.0.1:15201 --connect 198.18.40.1:8443 --ca CA.pem --server-name vpn.test
    python3 bench/tls_relay.py server --listen 198.18.40.1:8443 --connect 127.0.0.1:5201 --cert CERT.pem --key KEY.pem

The client half accepts plain TCP and forwards it over TLS to the server half, which terminates
TLS and forwards plain TCP to the target. Every accepted connection gets its own upstream
connection, so iperf3's control and data connections both pass.

It does what our engine runner does with its TLS socket, minus SSTP/PPP: one `selectors` loop,
non-blocking sockets, 256 KiB reads (a TLS read takes what OpenSSL has decrypted), one growing
`bytearray` of pending output per socket written with `send()`, and reading paused while the
other side is more than 4 MiB behind. Handshakes are blocking (they happen once per connection,
outside the measured transfer). Prints `ready` on stdout once it listens; logs the negotiated TLS
version and cipher to stderr as `tls: VERSION CIPHER`.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import ssl
import sys

READ_SIZE = 256 * 1024
MAX_PENDING = 4 * 1024 * 1024
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Side:
    """One socket of a relayed connection and the bytes waiting to be written to it."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.pending = bytearray()
        self.events = 0  # what the selector watches for now (0: not registered)
        self.open = True
        self.other: Side = self


def pair(a: Side, b: Side) -> None:
    a.other, b.other = b, a


class Relay:
    def __init__(self, listener: socket.socket, open_upstream) -> None:
        self.listener = listener
        self.open_upstream = open_upstream  # (accepted socket) -> (near socket, upstream socket)
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, None)

    def serve_forever(self) -> None:
        while True:
            for key, _ in self.selector.select():
                if key.data is None:
                    self._accept()
                else:
                    self._pump(key.data)

    def _accept(self) -> None:
        accepted, _ = self.listener.accept()
        try:
            near, far = self.open_upstream(accepted)
        except OSError as error:
            print(f"relay: upstream failed: {error}", file=sys.stderr, flush=True)
            accepted.close()
            return
        a, b = Side(near), Side(far)
        pair(a, b)
        # A TLS socket may already hold decrypted bytes that select() will never signal.
        self._pump(a)
        self._pump(b)

    def _pump(self, side: Side) -> None:
        """Move what `side` can give to its other side, write both, re-arm both."""
        other = side.other
        if side.open:
            self._read_into(side, other)
        self._write(other)
        self._write(side)
        self._arm(side)
        self._arm(other)

    def _read_into(self, source: Side, sink: Side) -> None:
        # Loop until the socket would block: a TLS socket returns one record per recv().
        while source.open and sink.open and len(sink.pending) < MAX_PENDING:
            try:
                data = source.sock.recv(READ_SIZE)
            except _WOULD_BLOCK:
                return
            except (OSError, ssl.SSLError):
                data = b""
            if not data:  # EOF: the sink closes once it has written what it holds
                self._close(source)
                return
            sink.pending += data

    def _write(self, side: Side) -> None:
        while side.open and side.pending:
            try:
                sent = side.sock.send(side.pending)
            except _WOULD_BLOCK:
                break
            except (OSError, ssl.SSLError):
                self._close(side)
                self._close(side.other)
                return
            del side.pending[:sent]
        if side.open and not side.pending and not side.other.open:
            self._close(side)

    def _arm(self, side: Side) -> None:
        if not side.open:
            return
        events = selectors.EVENT_WRITE if side.pending else 0
        if side.other.open and len(side.other.pending) < MAX_PENDING:
            events |= selectors.EVENT_READ
        if events != side.events:
            if side.events == 0:
                self.selector.register(side.sock, events, side)
            elif events == 0:
                self.selector.unregister(side.sock)
            else:
                self.selector.modify(side.sock, events, side)
            side.events = events
        # Reading resumed: OpenSSL may hold decrypted bytes that select() does not signal.
        if events & selectors.EVENT_READ and isinstance(side.sock, ssl.SSLSocket) and side.sock.pending():
            self._pump(side)

    def _close(self, side: Side) -> None:
        if not side.open:
            return
        side.open = False
        side.pending.clear()
        if side.events:
            self.selector.unregister(side.sock)
            side.events = 0
        side.sock.close()


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def listen(address: tuple[str, int]) -> socket.socket:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(address)
    listener.listen(16)
    return listener


def connect_tcp(address: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(address, timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def log_tls(tls: ssl.SSLSocket) -> None:
    name, _, _ = tls.cipher()
    print(f"tls: {tls.version()} {name}", file=sys.stderr, flush=True)


def run_client(args: argparse.Namespace) -> Relay:
    context = ssl.create_default_context(cafile=args.ca)

    def open_upstream(accepted: socket.socket) -> tuple[socket.socket, socket.socket]:
        tls = context.wrap_socket(connect_tcp(parse_address(args.connect)), server_hostname=args.server_name)
        log_tls(tls)
        return accepted, tls

    return Relay(listen(parse_address(args.listen)), open_upstream)


def run_server(args: argparse.Namespace) -> Relay:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)

    def open_upstream(accepted: socket.socket) -> tuple[socket.socket, socket.socket]:
        accepted.settimeout(10)
        tls = context.wrap_socket(accepted, server_side=True)
        try:
            return tls, connect_tcp(parse_address(args.connect))
        except OSError:
            tls.close()
            raise

    return Relay(listen(parse_address(args.listen)), open_upstream)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    roles = parser.add_subparsers(dest="role", required=True)
    client = roles.add_parser("client", help="plain TCP in, TLS out")
    client.add_argument("--ca", required=True)
    client.add_argument("--server-name", required=True)
    server = roles.add_parser("server", help="TLS in, plain TCP out")
    server.add_argument("--cert", required=True)
    server.add_argument("--key", required=True)
    for role in (client, server):
        role.add_argument("--listen", required=True, metavar="ADDR:PORT")
        role.add_argument("--connect", required=True, metavar="ADDR:PORT")
    args = parser.parse_args()
    relay = run_client(args) if args.role == "client" else run_server(args)
    print("ready", flush=True)
    try:
        relay.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
