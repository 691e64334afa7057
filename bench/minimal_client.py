"""A minimal single-file SSTP client: the external baseline of the benchmarks (issue 18).

    echo PASSWORD | python3 bench/minimal_client.py --server 198.18.20.1 --server-name vpn.test \\
        --ca-file ca.pem --user sstpuser --ifname minsstp0 --route 198.18.30.0/24

It does only what an SSTP client needs and no more: TCP, TLS, the HTTP SSTP_DUPLEX_POST, Call
Connect, LCP, MS-CHAPv2 (RFC 2759, authenticator response checked), Call Connected with crypto
binding ([MS-SSTP]: HLAK from the MS-CHAPv2 master keys, SHA-256 or SHA-1 CMK/MAC), IPCP (the
address the server gives), a TUN device (IFF_TUN|IFF_NO_PI, configured with `ip`), then one
`selectors` loop: one os.read per TUN packet, one SSTP frame written per packet; TLS reads parsed
into frames, one os.write per packet to the TUN. Stdlib + `cryptography` (for DES) only; it imports
nothing from sstpvpn or tests, so it is a fair external baseline. Runs as root.

The password is read from stdin. On stdout it prints one line per phase, "<seconds since process
start> <phase>", phases: tcp-connect tls http call-connect-ack lcp-open auth-ok ipcp-open
tunnel-up (these lines are parsed by other benches: keep them stable). The start time comes from
/proc/self/stat in clock ticks (10 ms at CLK_TCK 100), rounded down by the kernel, so the times
read up to one tick late. SIGTERM/SIGINT: Call Disconnect, exit 0. Any error: one line on
stderr, exit 1.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import hmac
import os
import selectors
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid


def _process_start() -> float:
    """The process's start time on CLOCK_BOOTTIME (from /proc/self/stat, 1/CLK_TCK resolution)."""
    with open("/proc/self/stat") as f:
        text = f.read()
    return int(text[text.rindex(")") + 2 :].split()[19]) / os.sysconf("SC_CLK_TCK")


START = _process_start()


def phase(name: str) -> None:
    print(f"{time.clock_gettime(time.CLOCK_BOOTTIME) - START:.3f} {name}", flush=True)


class Failure(Exception):
    pass


# -- MD4 (RFC 1320) and MS-CHAPv2 (RFC 2759, RFC 3079) ---------------------------------------------


def md4(data: bytes) -> bytes:
    try:
        return hashlib.new("md4", data).digest()
    except ValueError:
        pass
    mask = 0xFFFFFFFF

    def rotl(x: int, n: int) -> int:
        return ((x << n) | (x >> (32 - n))) & mask

    message = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", len(data) * 8)
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    for offset in range(0, len(message), 64):
        x = struct.unpack("<16I", message[offset : offset + 64])
        a, b, c, d = h
        for i in range(16):  # round 1
            k, s = i, (3, 7, 11, 19)[i % 4]
            a, b, c, d = d, rotl((a + ((b & c) | (~b & d)) + x[k]) & mask, s), b, c
        for i in range(16):  # round 2
            k, s = (i % 4) * 4 + i // 4, (3, 5, 9, 13)[i % 4]
            a, b, c, d = d, rotl((a + ((b & c) | (b & d) | (c & d)) + x[k] + 0x5A827999) & mask, s), b, c
        for i in range(16):  # round 3
            k, s = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)[i], (3, 9, 11, 15)[i % 4]
            a, b, c, d = d, rotl((a + (b ^ c ^ d) + x[k] + 0x6ED9EBA1) & mask, s), b, c
        h = [(v + n) & mask for v, n in zip(h, (a, b, c, d), strict=True)]
    return struct.pack("<4I", *h)


def des_encrypt(key7: bytes, block: bytes) -> bytes:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    bits = int.from_bytes(key7, "big")
    key = bytes(((bits >> (49 - 7 * i)) & 0x7F) << 1 for i in range(8))  # 7 bits per byte, parity ignored
    encryptor = Cipher(TripleDES(key * 3), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def mschapv2(user: str, password: str, auth_challenge: bytes, peer_challenge: bytes) -> tuple[bytes, bytes, bytes]:
    """(NT-Response, expected authenticator response "S=...", HLAK)."""
    name = user.rsplit("\\", 1)[-1].encode()
    challenge = hashlib.sha1(peer_challenge + auth_challenge + name).digest()[:8]
    password_hash = md4(password.encode("utf-16-le"))
    z = password_hash + bytes(5)
    nt_response = b"".join(des_encrypt(z[i : i + 7], challenge) for i in (0, 7, 14))
    hash_hash = md4(password_hash)
    d1 = hashlib.sha1(hash_hash + nt_response + b"Magic server to client signing constant").digest()
    d2 = hashlib.sha1(d1 + challenge + b"Pad to make it do more than one iteration").digest()
    master = hashlib.sha1(hash_hash + nt_response + b"This is the MPPE Master Key").digest()[:16]

    def start_key(magic: bytes) -> bytes:
        return hashlib.sha1(master + bytes(40) + magic + b"\xf2" * 40).digest()[:16]

    send = start_key(b"On the client side, this is the send key; on the server side, it is the receive key.")
    receive = start_key(b"On the client side, this is the receive key; on the server side, it is the send key.")
    return nt_response, b"S=" + d2.hex().upper().encode(), send + receive


# -- SSTP and PPP framing --------------------------------------------------------------------------

CALL_CONNECT_REQUEST, CALL_CONNECT_ACK, CALL_CONNECT_NAK, CALL_CONNECTED = 1, 2, 3, 4
CALL_ABORT, CALL_DISCONNECT, CALL_DISCONNECT_ACK, ECHO_REQUEST, ECHO_RESPONSE = 5, 6, 7, 8, 9
LCP, CHAP, IPCP, IPV4 = 0xC021, 0xC223, 0x8021, 0x0021
CONF_REQ, CONF_ACK, CONF_NAK, CONF_REJ, TERM_REQ, TERM_ACK, CODE_REJ, PROTO_REJ, ECHO_REQ, ECHO_REP = range(1, 11)
MSCHAPV2 = b"\xc2\x23\x81"


def control(message_type: int, attributes: bytes = b"", count: int = 0) -> bytes:
    return struct.pack("!BBHHH", 0x10, 1, 8 + len(attributes), message_type, count) + attributes


def data_frame(protocol: int, payload: bytes) -> bytes:
    return struct.pack("!BBHBBH", 0x10, 0, 8 + len(payload), 0xFF, 0x03, protocol) + payload


def ppp_packet(code: int, ident: int, body: bytes) -> bytes:
    return struct.pack("!BBH", code, ident, 4 + len(body)) + body


def options(body: bytes) -> list[tuple[int, bytes]]:
    found, i = [], 0
    while i + 2 <= len(body) and body[i + 1] >= 2:
        found.append((body[i], body[i : i + body[i + 1]]))
        i += body[i + 1]
    return found


def crypto_binding(ack: bytes, hlak: bytes, cert_der: bytes) -> bytes:
    """Call Connected with the Crypto Binding attribute ([MS-SSTP] 2.2.7, 3.2.5.2)."""
    bitmask, nonce = ack[15], ack[16:48]
    if bitmask & 2:
        chosen, digest, size = 2, hashlib.sha256, 32
    elif bitmask & 1:
        chosen, digest, size = 1, hashlib.sha1, 20
    else:
        raise Failure(f"the server offers no usable crypto binding hash (bitmask {bitmask:#x})")
    cmk = hmac.new(hlak, b"SSTP inner method derived CMK" + struct.pack("<H", size) + b"\x01", digest).digest()
    cert_hash = digest(cert_der).digest().ljust(32, b"\x00")
    attribute = struct.pack("!BBH3xB", 0, 3, 104, chosen) + nonce + cert_hash
    message = control(CALL_CONNECTED, attribute + bytes(32), 1)
    mac = hmac.new(cmk, message, digest).digest().ljust(32, b"\x00")
    return message[:80] + mac


# -- the client ------------------------------------------------------------------------------------

TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000


class Client:
    def __init__(self, args: argparse.Namespace, password: str) -> None:
        self.args, self.password = args, password
        self.tls: ssl.SSLSocket | None = None
        self.outgoing = bytearray()  # TLS bytes not yet accepted by the socket
        self.incoming = bytearray()
        self.tun = -1
        self.ack: bytes | None = None
        self.hlak = b""
        self.expected_success = b""
        self.lcp_ours = self.lcp_theirs = self.ipcp_ours = self.ipcp_theirs = False
        self.lcp_open = self.authenticated = self.up = False
        self.address = "0.0.0.0"
        self.peer_address = ""
        self.mru = args.mtu
        self.ident = 0
        self.last_request = 0.0
        self.disconnect_acked = False

    # -- output

    def send(self, data: bytes) -> None:
        if self.outgoing:
            self.outgoing += data
            return
        try:
            sent = self.tls.send(data)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            sent = 0
        if sent < len(data):
            self.outgoing += data[sent:]

    def flush(self) -> None:
        try:
            sent = self.tls.send(self.outgoing)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
            return
        del self.outgoing[:sent]

    def ppp(self, protocol: int, code: int, ident: int, body: bytes) -> None:
        self.send(data_frame(protocol, ppp_packet(code, ident, body)))

    def lcp_request(self) -> None:
        self.ident = (self.ident + 1) & 0xFF
        self.ppp(LCP, CONF_REQ, self.ident, struct.pack("!BBH", 1, 4, self.mru))
        self.last_request = time.monotonic()

    def ipcp_request(self) -> None:
        self.ident = (self.ident + 1) & 0xFF
        self.ppp(IPCP, CONF_REQ, self.ident, b"\x03\x06" + socket.inet_aton(self.address))
        self.last_request = time.monotonic()

    # -- connecting

    def connect(self) -> None:
        a = self.args
        sock = socket.create_connection((a.server, a.port), timeout=a.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        phase("tcp-connect")
        if a.insecure:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=a.ca_file)
        self.tls = context.wrap_socket(sock, server_hostname=a.server_name)
        phase("tls")
        self.tls.sendall(
            f"SSTP_DUPLEX_POST /sra_{{BA195980-CD49-458b-9E23-C84EE0ADCD75}}/ HTTP/1.1\r\nHost: {a.server_name}\r\n"
            f"Content-Length: 18446744073709551615\r\nSSTPCORRELATIONID: {{{str(uuid.uuid4()).upper()}}}\r\n\r\n".encode()
        )
        while b"\r\n\r\n" not in self.incoming:
            chunk = self.tls.recv(4096)
            if not chunk:
                raise Failure("the server closed the connection before its HTTP reply")
            self.incoming += chunk
        head, _, rest = bytes(self.incoming).partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        if status.split()[1:2] != ["200"]:
            raise Failure(f"the server answered {status!r}")
        self.incoming = bytearray(rest)
        phase("http")
        self.tls.setblocking(False)
        self.send(control(CALL_CONNECT_REQUEST, struct.pack("!BBHH", 0, 1, 6, 1), 1))

    def open_tun(self) -> None:
        self.tun = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(self.tun, TUNSETIFF, struct.pack("16sH", self.args.ifname.encode(), IFF_TUN | IFF_NO_PI))
        os.set_blocking(self.tun, False)
        name = self.args.ifname
        commands = [["ip", "addr", "add", f"{self.address}/32", "dev", name], ["ip", "link", "set", name, "mtu", str(self.mru), "up"]]
        commands += [["ip", "route", "add", prefix, "dev", name] for prefix in self.args.route]
        for command in commands:
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise Failure(f"{' '.join(command)} failed: {result.stderr.strip()}")

    # -- what arrives

    def packet(self, packet: bytes) -> None:
        if packet[1] & 1:
            self.control_packet(packet)
            return
        if packet[4:6] != b"\xff\x03":
            return
        protocol = struct.unpack_from("!H", packet, 6)[0]
        if protocol == IPV4:
            if self.up:
                try:
                    os.write(self.tun, packet[8:])
                except BlockingIOError:
                    pass  # the TUN queue is full: drop, as the kernel would
            return
        if len(packet) < 12:
            return
        code, ident, length = struct.unpack_from("!BBH", packet, 8)
        body = packet[12 : 8 + length]
        if protocol == LCP:
            self.lcp(code, ident, body)
        elif protocol == CHAP:
            self.chap(code, ident, body)
        elif protocol == IPCP:
            self.ipcp(code, ident, body)
        elif self.lcp_ours and self.lcp_theirs:
            self.ident = (self.ident + 1) & 0xFF
            self.ppp(LCP, PROTO_REJ, self.ident, packet[6:8] + packet[8 : 8 + min(length, self.mru - 8)])

    def control_packet(self, packet: bytes) -> None:
        message_type = struct.unpack_from("!H", packet, 4)[0]
        if message_type == CALL_CONNECT_ACK and self.ack is None:
            if len(packet) < 48 or packet[9] != 4:
                raise Failure("the Call Connect Ack carries no crypto binding request")
            self.ack = packet
            phase("call-connect-ack")
            self.lcp_request()
        elif message_type == ECHO_REQUEST:
            self.send(control(ECHO_RESPONSE))
        elif message_type == CALL_DISCONNECT_ACK:
            self.disconnect_acked = True
        elif message_type == CALL_DISCONNECT:
            self.send(control(CALL_DISCONNECT_ACK))
            raise Failure("the server disconnected (Call Disconnect)")
        elif message_type in (CALL_ABORT, CALL_CONNECT_NAK):
            raise Failure(f"the server sent SSTP message {message_type} ({'Call Abort' if message_type == CALL_ABORT else 'Call Connect Nak'})")

    def lcp(self, code: int, ident: int, body: bytes) -> None:
        if code == CONF_REQ:
            reject, nak = b"", b""
            for kind, option in options(body):
                if kind == 3 and option[2:] != MSCHAPV2:  # another auth protocol: ask for MS-CHAPv2
                    nak += b"\x03\x05" + MSCHAPV2
                elif kind not in (1, 2, 3, 5):  # MRU, ACCM, auth, magic: fine; PFC, ACFC, the rest: no
                    reject += option
            if reject:
                self.ppp(LCP, CONF_REJ, ident, reject)
            elif nak:
                self.ppp(LCP, CONF_NAK, ident, nak)
            else:
                self.ppp(LCP, CONF_ACK, ident, body)
                self.lcp_theirs = True
        elif code == CONF_ACK and ident == self.ident:
            self.lcp_ours = True
        elif code in (CONF_NAK, CONF_REJ) and ident == self.ident:
            for kind, option in options(body):
                if kind == 1 and code == CONF_NAK:
                    self.mru = struct.unpack("!H", option[2:4])[0]
            self.lcp_request()
        elif code == ECHO_REQ:
            self.ppp(LCP, ECHO_REP, ident, b"\x00\x00\x00\x00" + body[4:])
        elif code == TERM_REQ:
            self.ppp(LCP, TERM_ACK, ident, b"")
            raise Failure("the server ended the link (LCP Terminate-Request)")
        if self.lcp_ours and self.lcp_theirs and not self.lcp_open:
            self.lcp_open = True
            phase("lcp-open")

    def chap(self, code: int, ident: int, body: bytes) -> None:
        if code == 1 and body[:1] == b"\x10":  # Challenge
            peer_challenge = os.urandom(16)
            nt_response, self.expected_success, self.hlak = mschapv2(self.args.user, self.password, body[1:17], peer_challenge)
            value = peer_challenge + bytes(8) + nt_response + b"\x00"
            self.ppp(CHAP, 2, ident, b"\x31" + value + self.args.user.encode())
        elif code == 3 and not self.authenticated:  # Success
            if not hmac.compare_digest(body[:42], self.expected_success):
                raise Failure("the server's MS-CHAPv2 authenticator response is wrong")
            self.authenticated = True
            phase("auth-ok")
            self.send(crypto_binding(self.ack, self.hlak, self.tls.getpeercert(binary_form=True)))
            self.ipcp_request()
        elif code == 4:
            raise Failure(f"authentication failed: {body.decode(errors='replace')}")

    def ipcp(self, code: int, ident: int, body: bytes) -> None:
        if code == CONF_REQ:
            rejected = b"".join(option for kind, option in options(body) if kind != 3)
            if rejected:
                self.ppp(IPCP, CONF_REJ, ident, rejected)
                return
            for _kind, option in options(body):
                self.peer_address = socket.inet_ntoa(option[2:6])
            self.ppp(IPCP, CONF_ACK, ident, body)
            self.ipcp_theirs = True
        elif code == CONF_NAK and ident == self.ident:
            for kind, option in options(body):
                if kind == 3:
                    self.address = socket.inet_ntoa(option[2:6])
            self.ipcp_request()
        elif code == CONF_REJ and ident == self.ident:
            raise Failure("the server rejected the IP-Address option")
        elif code == CONF_ACK and ident == self.ident:
            self.ipcp_ours = True
        elif code == TERM_REQ:
            self.ppp(IPCP, TERM_ACK, ident, b"")
        if self.ipcp_ours and self.ipcp_theirs and not self.up:
            phase("ipcp-open")
            self.open_tun()
            self.up = True
            phase("tunnel-up")

    def read_tls(self) -> bool:
        """Everything the TLS socket has now, parsed into packets; False at EOF."""
        while True:
            try:
                chunk = self.tls.recv(262144)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            if not chunk:
                return False
            self.incoming += chunk
            if not self.tls.pending():
                break
        buffer = self.incoming
        while len(buffer) >= 4:
            length = ((buffer[2] << 8) | buffer[3]) & 0x0FFF
            if length < 8 or buffer[0] != 0x10:
                raise Failure("the server sent a malformed SSTP packet")
            if len(buffer) < length:
                break
            packet = bytes(buffer[:length])
            del buffer[:length]
            self.packet(packet)
        return True

    # -- the loop

    def run(self, stop_fd: int) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.tls, selectors.EVENT_READ, "tls")
        selector.register(stop_fd, selectors.EVENT_READ, "stop")
        deadline = time.monotonic() + self.args.timeout
        writing = tun_registered = False
        while True:
            if bool(self.outgoing) != writing:  # TLS backed up: wait until it takes more
                writing = bool(self.outgoing)
                selector.modify(self.tls, selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0), "tls")
            if (self.up and not writing) != tun_registered:  # and read no TUN packets meanwhile
                tun_registered = not tun_registered
                if tun_registered:
                    selector.register(self.tun, selectors.EVENT_READ, "tun")
                else:
                    selector.unregister(self.tun)
            timeout = None
            if not self.up:
                now = time.monotonic()
                if now > deadline:
                    raise Failure(f"not connected within {self.args.timeout:g} s")
                if self.ack and now - self.last_request > 3.0:  # restart timer (RFC 1661)
                    if not self.lcp_ours:
                        self.lcp_request()
                    elif self.authenticated and not self.ipcp_ours:
                        self.ipcp_request()
                timeout = 0.5
            for key, events in selector.select(timeout):
                if key.data == "stop":
                    return
                if key.data == "tun":
                    try:
                        packet = os.read(self.tun, 65536)
                    except BlockingIOError:
                        continue
                    if packet[:1] and packet[0] >> 4 == 4:
                        self.send(data_frame(IPV4, packet))
                    continue
                if events & selectors.EVENT_WRITE:
                    self.flush()
                if events & selectors.EVENT_READ and not self.read_tls():
                    raise Failure("the server closed the connection")

    def disconnect(self) -> None:
        """Call Disconnect, then wait up to 2 s for the Ack."""
        self.send(control(CALL_DISCONNECT))
        self.tls.setblocking(True)
        self.tls.settimeout(2.0)
        deadline = time.monotonic() + 2.0
        try:
            if self.outgoing:
                self.tls.sendall(self.outgoing)
            while not self.disconnect_acked and time.monotonic() < deadline:
                self.tls.settimeout(max(0.01, deadline - time.monotonic()))
                if not self.read_tls():
                    break
        except (OSError, Failure):
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description="Minimal SSTP client (benchmark baseline). Password on stdin.")
    parser.add_argument("--server", required=True, help="server address or host name to connect to")
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--server-name", help="TLS server name and HTTP Host (default: --server)")
    parser.add_argument("--ca-file", help="CA certificates to verify the server with")
    parser.add_argument("--insecure", action="store_true", help="do not verify the server certificate (benches only)")
    parser.add_argument("--user", required=True)
    parser.add_argument("--ifname", default="minsstp0")
    parser.add_argument("--route", action="append", default=[], metavar="PREFIX", help="route this prefix into the tunnel (repeatable)")
    parser.add_argument("--mtu", type=int, default=1500, help="MRU asked for, and the TUN's MTU (default 1500)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds allowed for connecting (default 30)")
    args = parser.parse_args()
    args.server_name = args.server_name or args.server
    if not args.insecure and not args.ca_file:
        parser.error("give --ca-file, or --insecure")
    password = sys.stdin.readline().rstrip("\r\n")
    stop_read, stop_write = os.pipe()
    os.set_blocking(stop_write, False)
    signal.set_wakeup_fd(stop_write)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: None)
    client = Client(args, password)
    try:
        client.connect()
        client.run(stop_read)
        client.disconnect()
    except (Failure, OSError, ssl.SSLError) as error:
        print(f"minimal_client: error: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        if client.tls is not None:
            client.tls.close()
        if client.tun >= 0:
            os.close(client.tun)
    return 0


if __name__ == "__main__":
    sys.exit(main())
