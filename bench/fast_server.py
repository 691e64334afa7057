"""A fast SSTP test server, so that on the data path the CLIENT is the bottleneck.

    ip netns exec SERVER-NS python3 bench/fast_server.py --listen 198.18.41.1:443 --workdir DIR \\
        --user alice --password-stdin [--ifname sstpsrv0] [--name vpn.bench]

At start it makes a self-signed certificate for `--name` (DIR/server.pem, DIR/server.key), opens
its own TUN device (sstpvpn.platform.tun_linux.TunDevice, the client's own, so it gets the same TUN
improvements) with 198.18.30.1 peer 198.18.30.10 in the namespace it runs in, and prints `ready`
once it listens. It accepts any number of connections, one at a time (a new one replaces the one
before).

The control plane is tests/unit/scripted_server.py's ScriptedServer (HTTP, SSTP, LCP, MS-CHAPv2 with
the crypto binding checked against this certificate, IPCP: the client gets 198.18.30.10). The data
plane is as cheap as Python allows:

- TLS through `ssl.SSLObject` and memory BIOs: one `recv` of up to 256 KiB from the socket per
  wake-up whatever the record count, and one `send` of all records written since;
- client -> TUN: SSTP packets sliced out of the decrypted stream by offset (a slice per IPv4
  packet, no other object), all packets of a wake-up handed to `write_packets` at once;
- TUN -> client: `read_packets` in batches, each packet framed by a header from a table built at
  start (SSTP + PPP IPv4 header per length), one `b"".join` and one TLS write per batch;
- back-pressure: the TUN is not read while more than 4 MiB of ciphertext waits for the socket;
- the TUN, three ways (`--tun`), all behind TunDevice's read_packets/write_packets:
  `gso` (default, GsoWriteTun below): one finished packet per read; writes join consecutive TCP
  segments into GSO super-packets by their headers alone, so the kernel (and the iperf3 behind it)
  handles one 64 KiB packet instead of ~45; a sample of the client's TCP checksums is checked.
  `plain`: a bare IFF_TUN | IFF_NO_PI descriptor, one packet per read and write, everything
  verified by the kernel; about the same server CPU per Gbit/s (less Python, more kernel), but
  more CPU for the rest of the machine, so lower throughput on 2 cores.
  `device`: TunDevice.open(), as the client opens its own (whatever offloads it asks for); when
  it segmented and checksummed in Python this cost the server twice the CPU per Gbit/s.

Everything that is not an IPv4 data frame goes to the ScriptedServer (LCP echo, SSTP echo, Call
Disconnect ...). At the end of each connection a line on stderr gives its bytes, packets, CPU
seconds and what the ScriptedServer found (`problems`, crypto binding).
"""

from __future__ import annotations

import argparse
import fcntl
import os
import resource
import selectors
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # `tests.` imports, as in the test suite

from sstpvpn.platform.tun_linux import IFF_NO_PI, IFF_TUN, TUNSETIFF, TunDevice  # noqa: E402
from tests.gui.tls_server import self_signed_certificate  # noqa: E402
from tests.unit.scripted_server import ScriptedServer, ServerConfig  # noqa: E402

SERVER_ADDRESS = IPv4Address("198.18.30.1")  # the server's end of the tunnel (iperf3 runs there)
CLIENT_ADDRESS = IPv4Address("198.18.30.10")  # what IPCP gives the client
READ_SIZE = 256 * 1024
MAX_PENDING = 4 * 1024 * 1024  # ciphertext waiting for the socket before the TUN is left unread
TUN_BATCH = 256  # packets per read_packets() call
TUN_MTU = 1500
IPV4_FRAME = b"\xff\x03\x00\x21"  # PPP address, control, protocol IPv4
# SSTP data header + PPP IPv4 header, by IP packet length: framing a packet is one list lookup.
FRAME_HEADERS = [struct.pack("!BBH", 0x10, 0, n + 8) + IPV4_FRAME if n + 8 <= 0x0FFF else b"" for n in range(0x1000)]
HTTP_END = b"\r\n\r\n"


class ConnectionEnded(Exception):
    pass


class Connection:
    """One client: its TLS session over memory BIOs and its ScriptedServer."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, config: ServerConfig, tun: TunDevice, number: int) -> None:
        self.sock = sock
        self.tun = tun
        self.number = number
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.script = ScriptedServer(replace(config))
        self.pending = bytearray()  # ciphertext for the socket
        self.rest = b""  # plaintext: an unfinished SSTP packet (or the HTTP request so far)
        self.http_done = False
        self.data_open = False  # IPCP is up: packets from the TUN go to the client
        self.tun_takes_views = getattr(tun, "takes_views", False)
        self.tun_counts = _tun_counts(tun)  # the TUN outlives connections: its counters at the start
        self.ended = False
        self.events = 0
        self.began = time.monotonic()
        self.cpu_began = _cpu_seconds()
        self.up_bytes = self.up_packets = self.down_bytes = self.down_packets = 0

    # -- handshake (blocking, once per connection, outside any measured transfer)

    def handshake(self, timeout: float = 10.0) -> None:
        self.sock.settimeout(timeout)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush_blocking()
                data = self.sock.recv(READ_SIZE)
                if not data:
                    raise ConnectionEnded("closed during the TLS handshake") from None
                self.incoming.write(data)
        self._flush_blocking()
        self.sock.setblocking(False)

    def _flush_blocking(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    # -- the data path

    def on_readable(self) -> None:
        """Everything the socket holds, decrypted and dispatched."""
        try:
            data = self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            raise ConnectionEnded(f"socket: {error}") from None
        if not data:
            self.incoming.write_eof()
        else:
            self.incoming.write(data)
        self.drain()

    def drain(self) -> None:
        """Decrypt and dispatch what the incoming BIO holds (after the handshake it may already
        hold the client's first records, which no select() will signal)."""
        chunks: list[bytes] = []
        read = self.tls.read
        while True:
            try:
                chunk = read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                chunk = b""
            except ssl.SSLError as error:
                raise ConnectionEnded(f"TLS: {error}") from None
            if not chunk:
                self._dispatch(b"".join(chunks))
                raise ConnectionEnded("the client closed the connection")
            chunks.append(chunk)
        if chunks:
            self._dispatch(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def _dispatch(self, data: bytes) -> None:
        buffer = self.rest + data if self.rest else data
        offset = 0
        reply_due = False
        if not self.http_done:
            end = buffer.find(HTTP_END)
            if end < 0:
                self.rest = buffer
                return
            self.script.receive(buffer[: end + 4])  # only the request: the SSTP bytes are ours to frame
            self.http_done = reply_due = True
            offset = end + 4
        packets = []
        control = []
        size = len(buffer)
        # Views, not copies, where the TUN takes them: a 1.5 KB slice costs more than the rest of the loop.
        view = memoryview(buffer) if self.tun_takes_views else buffer
        while size - offset >= 4:
            if buffer[offset] != 0x10:
                raise ConnectionEnded(f"not SSTP 1.0 at stream offset {offset}: {buffer[offset : offset + 4].hex()}")
            length = ((buffer[offset + 2] & 0x0F) << 8) | buffer[offset + 3]
            if length < 4:
                raise ConnectionEnded(f"SSTP packet length {length}")
            if size - offset < length:
                break
            if buffer[offset + 1] == 0 and buffer.startswith(IPV4_FRAME, offset + 4):
                packets.append(view[offset + 8 : offset + length])
                self.up_bytes += length - 8
            else:
                control.append(buffer[offset : offset + length])
            offset += length
        self.rest = buffer[offset:]
        if packets:
            self.up_packets += len(packets)
            self.tun.write_packets(packets)
        if control or reply_due:
            for packet in control:
                self.script.receive(packet)
            reply = self.script.data_to_send()
            if reply:
                self.send(reply)
            if self.script.stage in ("disconnected", "aborted", "refused", "broken") or self.script.gave_up:
                self.ended = True

    def send(self, plaintext: bytes) -> None:
        self.tls.write(plaintext)
        self.pending += self.outgoing.read()

    def from_tun(self) -> None:
        """Frame what the TUN holds, up to the back-pressure limit, and send it."""
        if not self.data_open:
            # Before IPCP is up the client may not even have had the HTTP reply: what the TUN
            # holds (late packets of the connection before) is dropped, as a server's would be.
            script = self.script
            if not (script.ipcp_client_acked and script.ipcp_server_acked):
                self.tun.read_packets(TUN_BATCH)
                return
            self.data_open = True
        headers = FRAME_HEADERS
        while len(self.pending) < MAX_PENDING:
            packets = self.tun.read_packets(TUN_BATCH)
            if not packets:
                break
            parts: list[bytes | memoryview] = []
            append = parts.append
            for packet in packets:
                header = headers[len(packet)]
                if header:  # else: larger than one SSTP packet can carry (MTU misconfigured): dropped
                    append(header)
                    append(packet)
            self.down_packets += len(packets)
            self.down_bytes += sum(map(len, packets))
            if parts:
                self.tls.write(b"".join(parts))
                self.pending += self.outgoing.read()
            self.flush()
            if len(packets) < TUN_BATCH:
                break

    def flush(self) -> None:
        while self.pending:
            try:
                sent = self.sock.send(self.pending)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                raise ConnectionEnded(f"socket: {error}") from None
            del self.pending[:sent]

    def summary(self) -> str:
        seconds = time.monotonic() - self.began
        script = self.script
        binding = script.binding
        return (
            f"connection {self.number}: {seconds:.1f} s, cpu {_cpu_seconds() - self.cpu_began:.2f} s; "
            f"up {self.up_packets} packets {self.up_bytes} bytes, down {self.down_packets} packets {self.down_bytes} bytes, "
            f"{_tun_summary(self.tun, self.tun_counts)}; auth {script.auth_method} ok={script.authenticated}, "
            f"binding ok={binding.ok if binding else None}, ipcp={script.ipcp_client_acked and script.ipcp_server_acked}, "
            f"problems={script.problems}"
        )

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _tun_counts(tun: TunDevice) -> tuple[int, ...]:
    return (tun.dropped_packets, *(getattr(tun, name, 0) for name in ("writes", "bad_checksums", "checked")))


def _tun_summary(tun: TunDevice, start: tuple[int, ...]) -> str:
    drops, writes, bad, checked = (now - then for now, then in zip(_tun_counts(tun), start, strict=True))
    if not isinstance(tun, GsoWriteTun):
        return f"tun drops {drops}"
    return f"tun drops {drops}, {writes} TUN writes, bad checksums {bad} of {checked} checked"


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


IFF_VNET_HDR = 0x4000
VNET_HDR = struct.Struct("=BBHHHH")  # virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VNET_HDR_LEN = VNET_HDR.size
NO_VNET_HDR = bytes(VNET_HDR_LEN)  # no GSO, checksum complete
VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4 = 1, 1
# IPv4/TCP fields: version+IHL, flags+fragment (2 bytes), protocol, addresses+ports, sequence,
# acknowledgement, data offset, TCP flags, window
TCP_FIELDS = struct.Struct("!B5xBBxB2x12sI4sBB2s")
MAX_RUN = 64  # segments per GSO write, as the kernel's GRO
CHECK_EVERY = 64  # GsoWriteTun checks the TCP checksum of one segment in this many


class GsoWriteTun(TunDevice):
    """`--tun gso`: IFF_VNET_HDR without offloads asked, so reads are still one finished packet
    each (behind a 10-byte header), but writes join consecutive TCP segments of a flow into one
    GSO super-packet that the kernel takes in one go (as its own GRO would have made it). Only
    headers are looked at: the joined packet is marked CHECKSUM_PARTIAL, so the kernel does not
    verify the client's TCP checksums: one segment in CHECK_EVERY is checked here instead
    (`bad checksums` in the connection's summary; `plain` has the kernel verify every packet).
    IPv4 without options, TCP with ACK or ACK|PSH only; anything else is written as it is."""

    takes_views = True

    def __init__(self, fd: int, name: str) -> None:
        super().__init__(fd, name)
        self.tcp_packets = self.checked = self.bad_checksums = self.writes = 0

    def read_packets(self, max_count: int = 64) -> list[memoryview]:
        fd = self.fileno()
        packets: list[memoryview] = []
        while len(packets) < max_count:
            try:
                frame = os.read(fd, VNET_HDR_LEN + 65535)
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            if len(frame) <= VNET_HDR_LEN:
                break
            packets.append(memoryview(frame)[VNET_HDR_LEN:])  # a view: copying 1.5 KB costs more
        return packets

    def write_packets(self, packets: list) -> None:
        """`packets`: bytes or memoryviews (the fast server hands over views of its stream)."""
        fd = self.fileno()
        unpack = TCP_FIELDS.unpack_from
        run: list = []
        run_size = run_total = next_seq = 0
        run_addresses = run_ack = run_window = run_options = b""
        for packet in packets:
            size = 0
            if len(packet) > 40:
                first, fragment_high, fragment_low, protocol, addresses, seq, ack, offset, flags, window = unpack(packet)
                # IPv4 with a 20-byte header, TCP, not a fragment, flags ACK or ACK|PSH
                if first == 0x45 and protocol == 6 and not (fragment_high & 0x3F or fragment_low) and (flags == 0x10 or flags == 0x18):
                    header = 20 + ((offset >> 4) << 2)
                    size = len(packet) - header
            if size <= 0:
                if run:
                    self._write_run(fd, run, run_total)
                    run = []
                self._write(fd, [NO_VNET_HDR, packet])
                continue
            self.tcp_packets += 1
            if not self.tcp_packets % CHECK_EVERY:
                self._check_sum(packet, len(packet) - 20)
            options = packet[40:header]
            # addresses + ports, acknowledgement number, window and options equal within a run
            if (
                run
                and seq == next_seq
                and addresses == run_addresses
                and ack == run_ack
                and window == run_window
                and options == run_options
                and size <= run_size
                and len(run) < MAX_RUN
                and run_total + size + header <= 65535
            ):
                run.append(packet)
                run_total += size
            else:
                if run:
                    self._write_run(fd, run, run_total)
                run, run_size, run_total = [packet], size, size
                run_addresses, run_ack, run_window, run_options = addresses, ack, window, bytes(options)
            next_seq = (seq + size) & 0xFFFFFFFF
            if size < run_size or flags & 0x08:  # a short segment or PSH ends a run
                self._write_run(fd, run, run_total)
                run = []
        if run:
            self._write_run(fd, run, run_total)

    def _check_sum(self, packet: bytes, tcp_length: int) -> None:
        """The TCP checksum, which the kernel will not verify in a joined packet: every
        CHECK_EVERY-th segment is checked here, so a client that gets them wrong is seen."""
        total = int.from_bytes(packet[12:20], "big") + 6 + tcp_length
        segment = int.from_bytes(packet[20:], "big")
        if tcp_length & 1:
            segment <<= 8
        self.checked += 1
        if (total + segment) % 0xFFFF:
            self.bad_checksums += 1

    def _write_run(self, fd: int, run: list[bytes], payload: int) -> None:
        first = run[0]
        if len(run) == 1:
            self._write(fd, [NO_VNET_HDR, first])
            return
        header = 20 + ((first[32] >> 4) << 2)
        total = header + payload
        ip = bytearray(first[:20])  # bytes or memoryview
        ip[2:4] = total.to_bytes(2, "big")
        ip[10:12] = b"\0\0"
        folded = int.from_bytes(ip, "big") % 0xFFFF
        ip[10:12] = (0xFFFF - folded if folded else 0).to_bytes(2, "big")
        tcp = bytearray(first[20:header])
        tcp[13] = run[-1][33]  # PSH of the last segment
        pseudo = (int.from_bytes(first[12:20], "big") + 6 + total - 20) % 0xFFFF
        tcp[16:18] = (pseudo or 0xFFFF).to_bytes(2, "big")  # CHECKSUM_PARTIAL: the pseudo-header's sum
        vnet = VNET_HDR.pack(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, header, len(first) - header, 20, 16)
        self._write(fd, [vnet, ip, tcp, *[memoryview(packet)[header:] for packet in run]])

    def _write(self, fd: int, parts: list) -> None:
        self.writes += 1
        try:
            os.writev(fd, parts)
        except (BlockingIOError, OSError):
            self.dropped_packets += 1


def _open_raw(name: str, flags: int) -> tuple[int, str]:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        reply = fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), flags))
    except OSError:
        os.close(fd)
        raise
    return fd, reply[:16].split(b"\0", 1)[0].decode()


def open_tun(name: str, mode: str) -> TunDevice:
    """`device`: TunDevice.open(), exactly as the client opens its TUN (with whatever offloads it
    asks for); `plain`: a bare IFF_TUN | IFF_NO_PI descriptor in a TunDevice, one packet per
    read and write, checksums and segmentation left to the kernel; `gso`: GsoWriteTun."""
    if mode == "device":
        tun = TunDevice.open(name)  # given bytes: its packet logic may want them
    elif mode == "gso":
        tun = GsoWriteTun(*_open_raw(name, IFF_TUN | IFF_NO_PI | IFF_VNET_HDR))
    else:
        tun = TunDevice(*_open_raw(name, IFF_TUN | IFF_NO_PI))
        tun.takes_views = True  # type: ignore[attr-defined,unused-ignore]  # os.write takes a memoryview
    tun.set_mtu(TUN_MTU)
    subprocess.run(["ip", "addr", "add", str(SERVER_ADDRESS), "peer", f"{CLIENT_ADDRESS}/32", "dev", tun.name], check=True)
    subprocess.run(["ip", "link", "set", tun.name, "up"], check=True)
    return tun


class Server:
    def __init__(self, listener: socket.socket, context: ssl.SSLContext, config: ServerConfig, tun: TunDevice) -> None:
        self.listener = listener
        self.context = context
        self.config = config
        self.tun = tun
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ, "listen")
        self.selector.register(tun.fileno(), selectors.EVENT_READ, "tun")
        self.tun_events = selectors.EVENT_READ
        self.connection: Connection | None = None
        self.count = 0

    def serve_forever(self) -> None:
        while True:
            for key, events in self.selector.select():
                try:
                    self._on(key.data, events)
                except ConnectionEnded as error:
                    self._end(str(error))
            connection = self.connection
            if connection is not None:
                try:
                    connection.flush()
                except ConnectionEnded as error:
                    self._end(str(error))
                    continue
                if connection.ended and not connection.pending:
                    self._end("the call ended")
                    continue
                self._arm(connection)

    def _on(self, what: str, events: int) -> None:
        connection = self.connection
        if what == "listen":
            self._accept()
        elif what == "tun":
            if connection is None:
                self.tun.read_packets(TUN_BATCH)  # nobody to send them to
            else:
                connection.from_tun()
        elif connection is not None:
            if events & selectors.EVENT_READ:
                connection.on_readable()
            if events & selectors.EVENT_WRITE:
                connection.flush()

    def _accept(self) -> None:
        sock, peer = self.listener.accept()
        if self.connection is not None:
            self._end("replaced by a new connection")
        self.count += 1
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = Connection(sock, self.context, self.config, self.tun, self.count)
        try:
            connection.handshake()
        except (OSError, ssl.SSLError, ConnectionEnded) as error:
            print(f"connection {self.count} from {peer[0]}: TLS handshake failed: {error}", file=sys.stderr, flush=True)
            connection.close()
            return
        print(f"connection {self.count} from {peer[0]}: {connection.tls.version()} {connection.tls.cipher()[0]}", file=sys.stderr, flush=True)
        self.connection = connection
        self.selector.register(sock, selectors.EVENT_READ, "tls")
        connection.events = selectors.EVENT_READ
        connection.drain()

    def _arm(self, connection: Connection) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if connection.pending else 0)
        if events != connection.events:
            self.selector.modify(connection.sock, events, "tls")
            connection.events = events
        tun_events = selectors.EVENT_READ if len(connection.pending) < MAX_PENDING else 0
        if tun_events != self.tun_events:
            if tun_events:
                self.selector.register(self.tun.fileno(), tun_events, "tun")
            else:
                self.selector.unregister(self.tun.fileno())
            self.tun_events = tun_events

    def _end(self, why: str) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        print(f"{connection.summary()}; ended: {why}", file=sys.stderr, flush=True)
        if connection.events:
            self.selector.unregister(connection.sock)
        connection.close()
        if not self.tun_events:
            self.selector.register(self.tun.fileno(), selectors.EVENT_READ, "tun")
            self.tun_events = selectors.EVENT_READ


def parse_address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", required=True, metavar="ADDR:PORT")
    parser.add_argument("--workdir", required=True, type=Path, help="where the certificate and key are written (server.pem, server.key)")
    parser.add_argument("--name", default="vpn.bench", help="the certificate's name (default vpn.bench)")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from the first line of standard input")
    parser.add_argument("--password-file", type=Path, help="or read it from this file's first line")
    parser.add_argument("--ifname", default="sstpsrv0", help="the server's TUN device (default sstpsrv0)")
    parser.add_argument(
        "--tun",
        choices=("gso", "plain", "device"),
        default="gso",
        help="gso: writes join TCP segments into GSO super-packets (see GsoWriteTun; default); "
        "plain: one packet per read/write, the kernel segments and checksums; "
        "device: opened by TunDevice.open() as the client opens its own (offloads)",
    )
    args = parser.parse_args()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif args.password_file:
        password = args.password_file.read_text().splitlines()[0]
    else:
        parser.error("give the password with --password-stdin or --password-file")

    args.workdir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path, der = self_signed_certificate(args.workdir, args.name)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    config = ServerConfig(username=args.user, password=password, certificate=der, address=CLIENT_ADDRESS, peer_address=SERVER_ADDRESS)
    tun = open_tun(args.ifname, args.tun)
    listener = socket.create_server(parse_address(args.listen), reuse_port=False)
    listener.setblocking(False)
    print("ready", flush=True)
    try:
        Server(listener, context, config, tun).serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        tun.close()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped by PID: clean up as on Ctrl-C
    sys.exit(main())
