"""What crosses a namespace's "physical" link, packet by packet, and which of it is a leak.

`LinkCapture` opens an AF_PACKET socket on one interface of a test namespace (from a short-lived
thread that enters the namespace; the socket stays bound there) and records every frame, both
ways, with the kernel's receive time, until it is closed. Frames a firewall drops on the way out
never reach the device, so they are not seen: what the capture holds is what the link carried.
tcpdump is not needed (use it only to look by hand: `ip netns exec NS tcpdump -ni IFACE`).

`LinkPolicy.classify` sorts each frame: allowed are the SSTP TCP connection (to the server or the
proxy), DHCPv4, DHCPv6, IPv6 neighbour and router discovery (ICMPv6 133-136), and ARP between the
machine and its gateway (the next hop of that TCP connection). Everything else on the link is a
leak, with a one-line summary such as
`+3.142 out IPv4 198.18.20.2:41234 > 198.18.20.1:53 UDP DNS query A leak.test`.
Frames that come in are not leaks in themselves (the server namespace's SoftEther, for one, sends
the client a NetBIOS query); what the machine answers is judged as it goes out.
"""

from __future__ import annotations

import ctypes
import ipaddress
import json
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from tests.netns import Namespace
from tests.nsprobe import run_python

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_TIMESTAMPNS = 35
CLONE_NEWNET = 0x40000000
PACKET_OUTGOING = 4

_ETHERTYPES = {0x0800: "IPv4", 0x86DD: "IPv6", 0x0806: "ARP"}
_ND_TYPES = {133: "router solicitation", 134: "router advertisement", 135: "neighbour solicitation", 136: "neighbour advertisement"}
_ICMP_NAMES = {0: "echo reply", 3: "unreachable", 8: "echo request", 11: "time exceeded"}
_ICMP6_NAMES = {1: "unreachable", 128: "echo request", 129: "echo reply", 143: "MLDv2 report", 131: "MLD report"}


@dataclass(frozen=True)
class Frame:
    """One frame seen on the link: kernel time (time.time() clock), direction and bytes."""

    when: float
    outgoing: bool
    data: bytes


@dataclass(frozen=True)
class Verdict:
    allowed: bool  # not a leak
    kind: str  # "sstp", "dhcp", "dhcpv6", "nd", "arp", "inbound", "answer" or "leak"
    summary: str
    parsed: Parsed


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int


@dataclass
class LinkPolicy:
    """What may cross the physical link while nothing but the tunnel should: `endpoints` are the
    TCP endpoints of the SSTP connection (the server, or the proxy), `local` this machine's
    addresses on the link, `gateways` its next hops (ARP to them is part of the TCP connection)."""

    endpoints: tuple[Endpoint, ...]
    local: tuple[str, ...]
    gateways: tuple[str, ...]
    # An ICMP error the machine sends back about a packet that came in (e.g. port unreachable for
    # SoftEther's NetBIOS query to the client): a leak too, unless this is False.
    answers_are_leaks: bool = True

    def classify(self, frame: Frame, start: float = 0.0) -> Verdict:
        parsed = parse(frame.data)
        head = f"{frame.when - start:+.3f} {'out' if frame.outgoing else 'in '} {parsed.summary}"
        allowed, kind = self._allowed(parsed)
        if not allowed and not frame.outgoing:
            # Someone else's packet (e.g. SoftEther's NetBIOS query to the client): not a leak
            # in itself; what the machine sends back, if anything, is judged on its own.
            return Verdict(True, "inbound", head, parsed)
        if not allowed and parsed.quoted_src == parsed.dst and parsed.quoted_dst in self.local:
            return Verdict(not self.answers_are_leaks, "answer", head, parsed)
        return Verdict(allowed, kind, head, parsed)

    def _allowed(self, p: Parsed) -> tuple[bool, str]:
        if p.protocol == "ARP":
            pair = {p.src, p.dst}
            return (pair <= set(self.local) | set(self.gateways) and bool(pair & set(self.gateways)), "arp")
        if p.protocol == "TCP":
            for endpoint in self.endpoints:
                if (p.dst, p.dport) == (endpoint.address, endpoint.port) and p.src in self.local:
                    return True, "sstp"
                if (p.src, p.sport) == (endpoint.address, endpoint.port) and p.dst in self.local:
                    return True, "sstp"
            return False, "leak"
        if p.protocol == "UDP" and p.family == "IPv4" and {p.sport, p.dport} <= {67, 68}:
            return True, "dhcp"
        if p.protocol == "UDP" and p.family == "IPv6" and {p.sport, p.dport} <= {546, 547}:
            return True, "dhcpv6"
        if p.protocol == "ICMPv6" and p.icmp_type in _ND_TYPES:
            return True, "nd"
        return False, "leak"


@dataclass
class Parsed:
    family: str = "?"
    protocol: str = "?"
    src: str = ""
    dst: str = ""
    sport: int = 0
    dport: int = 0
    icmp_type: int = -1
    tcp_flags: int = 0
    payload: bytes = b""
    summary: str = ""
    quoted_src: str | None = None  # of the packet an ICMP error is about
    quoted_dst: str | None = None


def parse(data: bytes) -> Parsed:
    """Ethernet II frame -> the fields the classifier needs, and a readable one-line summary."""
    p = Parsed()
    if len(data) < 14:
        p.summary = f"short frame ({len(data)} bytes)"
        return p
    ethertype = struct.unpack("!H", data[12:14])[0]
    body = data[14:]
    p.family = _ETHERTYPES.get(ethertype, f"ethertype 0x{ethertype:04x}")
    if ethertype == 0x0806 and len(body) >= 28:
        op = struct.unpack("!H", body[6:8])[0]
        p.protocol, p.src, p.dst = "ARP", socket.inet_ntoa(body[14:18]), socket.inet_ntoa(body[24:28])
        p.summary = f"ARP {'request who-has ' + p.dst + ' tell ' + p.src if op == 1 else 'reply ' + p.src + ' is-at ' + body[8:14].hex(':')}"
        return p
    if ethertype == 0x0800 and len(body) >= 20:
        header_length = (body[0] & 0x0F) * 4
        number = body[9]
        p.src, p.dst = socket.inet_ntoa(body[12:16]), socket.inet_ntoa(body[16:20])
        transport = body[header_length:]
    elif ethertype == 0x86DD and len(body) >= 40:
        number = body[6]
        p.src = str(ipaddress.IPv6Address(body[8:24]))
        p.dst = str(ipaddress.IPv6Address(body[24:40]))
        transport = body[40:]
        # Hop-by-hop options (MLD reports carry router alert) before the real header.
        while number == 0 and len(transport) >= 8:
            number, transport = transport[0], transport[(transport[1] + 1) * 8 :]
    else:
        p.summary = f"{p.family} {len(data)} bytes"
        return p
    p.summary = _transport(p, number, transport)
    return p


def _transport(p: Parsed, number: int, transport: bytes) -> str:
    where = f"{p.family} {p.src} > {p.dst}"
    if number in (6, 17) and len(transport) >= 8:
        p.sport, p.dport = struct.unpack("!HH", transport[:4])
        where = f"{p.family} {_join(p.src, p.sport)} > {_join(p.dst, p.dport)}"
        if number == 6 and len(transport) >= 20:
            p.protocol = "TCP"
            p.tcp_flags = transport[13]
            offset = (transport[12] >> 4) * 4
            p.payload = transport[offset:]
            flags = "".join(name for bit, name in ((2, "S"), (16, "."), (1, "F"), (4, "R"), (8, "P")) if p.tcp_flags & bit)
            return f"{where} TCP [{flags}] {len(p.payload)} bytes"
        p.protocol, p.payload = "UDP", transport[8:]
        if 53 in (p.sport, p.dport):
            return f"{where} UDP {_dns_summary(p.payload)}"
        return f"{where} UDP {len(p.payload)} bytes"
    if number == 1 and transport:
        p.protocol, p.icmp_type = "ICMP", transport[0]
        if p.icmp_type in (3, 11) and len(transport) >= 28:
            p.quoted_src, p.quoted_dst = socket.inet_ntoa(transport[20:24]), socket.inet_ntoa(transport[24:28])
        return f"{where} ICMP {_ICMP_NAMES.get(p.icmp_type, f'type {p.icmp_type}')}"
    if number == 58 and transport:
        p.protocol, p.icmp_type = "ICMPv6", transport[0]
        if p.icmp_type in (1, 3) and len(transport) >= 48:
            p.quoted_src, p.quoted_dst = str(ipaddress.IPv6Address(transport[16:32])), str(ipaddress.IPv6Address(transport[32:48]))
        name = _ND_TYPES.get(p.icmp_type) or _ICMP6_NAMES.get(p.icmp_type, f"type {p.icmp_type}")
        return f"{where} ICMPv6 {name}"
    p.protocol = f"protocol {number}"
    return f"{where} protocol {number}"


def _join(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def dns_question(payload: bytes) -> tuple[bool, str, int] | None:
    """(is_response, name, qtype) of a DNS message, or None if it does not parse."""
    try:
        flags, questions = struct.unpack("!HH", payload[2:6])
        if questions < 1:
            return None
        labels, index = [], 12
        while payload[index]:
            length = payload[index]
            labels.append(payload[index + 1 : index + 1 + length].decode("ascii", "replace"))
            index += 1 + length
        qtype = struct.unpack("!H", payload[index + 1 : index + 3])[0]
        return bool(flags & 0x8000), ".".join(labels), qtype
    except (IndexError, struct.error):
        return None


def _dns_summary(payload: bytes) -> str:
    question = dns_question(payload)
    if question is None:
        return f"DNS? {len(payload)} bytes"
    response, name, qtype = question
    return f"DNS {'response' if response else 'query'} {({1: 'A', 28: 'AAAA'}).get(qtype, qtype)} {name}"


class LinkCapture:
    """Every frame on `interface` in the namespace `netns` (a name under /run/netns), from start()
    to close(). Use as a context manager."""

    def __init__(self, netns: str, interface: str) -> None:
        self.netns, self.interface = netns, interface
        self.frames: list[Frame] = []
        self.kernel_drops = 0  # frames the kernel could not queue for us (must stay 0)
        self._socket: socket.socket | None = None
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self.started = 0.0

    def __enter__(self) -> LinkCapture:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        opened: list[socket.socket | BaseException] = []
        opener = threading.Thread(target=self._open_in_namespace, args=(opened,), name="leak-capture-open")
        opener.start()
        opener.join()
        if isinstance(opened[0], BaseException):
            raise opened[0]
        self._socket = opened[0]
        self.started = time.time()
        self._reader = threading.Thread(target=self._read, name="leak-capture", daemon=True)
        self._reader.start()

    def _open_in_namespace(self, opened: list) -> None:
        # setns changes only this thread's network namespace; the thread ends right after, and
        # the socket stays in the namespace it was made in.
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {self.netns}")
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.bind((self.interface, ETH_P_ALL))
            self._statistics(sock)  # counts from before the bind are dropped here
            opened.append(sock)
        except BaseException as error:  # noqa: BLE001 - handed to start(), which raises it
            opened.append(error)

    def _statistics(self, sock: socket.socket) -> None:
        # Reading PACKET_STATISTICS also resets it, so the drops are summed here.
        _, drops = struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        self.kernel_drops += drops

    def _read(self) -> None:
        sock = self._socket
        assert sock is not None
        while not self._stop.is_set():
            if not select.select([sock], [], [], 0.05)[0]:
                continue
            self._drain(sock)
        self._drain(sock)

    def _drain(self, sock: socket.socket) -> None:
        while True:
            try:
                data, ancillary, _, address = sock.recvmsg(262144, 64, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            when = time.time()
            for level, kind, value in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    when = seconds + nanoseconds / 1e9
            with self._lock:
                self.frames.append(Frame(when, address[2] == PACKET_OUTGOING, data))

    def settle(self, seconds: float = 0.3) -> None:
        """Give frames already on the link time to reach the reader (call before judging a window)."""
        time.sleep(seconds)

    def between(self, start: float, end: float | None = None) -> list[Frame]:
        with self._lock:
            return [frame for frame in self.frames if frame.when >= start and (end is None or frame.when < end)]

    def close(self) -> None:
        if self._socket is None:
            return
        self._stop.set()
        if self._reader is not None:
            self._reader.join(5)
        self._statistics(self._socket)
        self._socket.close()
        self._socket = None


@dataclass
class Window:
    """One stretch of a scenario (e.g. "connected", "reconnecting") and what its frames were."""

    name: str
    start: float
    end: float
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def leaks(self) -> list[Verdict]:
        return [verdict for verdict in self.verdicts if not verdict.allowed]

    def count(self, kind: str) -> int:
        return sum(verdict.kind == kind for verdict in self.verdicts)

    def report(self) -> str:
        kinds = {verdict.kind for verdict in self.verdicts}
        counts = ", ".join(f"{kind} {self.count(kind)}" for kind in sorted(kinds)) or "nothing"
        return f"{self.name}: {self.end - self.start:.2f} s, {len(self.verdicts)} frames ({counts})"


def judge(capture: LinkCapture, policy: LinkPolicy, name: str, start: float, end: float) -> Window:
    window = Window(name, start, end)
    window.verdicts = [policy.classify(frame, capture.started) for frame in capture.between(start, end)]
    return window


def leak_lines(windows: Iterable[Window]) -> str:
    return "\n".join(f"[{window.name}] {verdict.summary}" for window in windows for verdict in window.leaks)


# -- probes, run inside the client namespace ---------------------------------------------------

# All at once, each with a short timeout: a ping and a TCP connect to an IPv4 address beyond the
# physical gateway, a ping of an IPv6 address there, a DNS query for NAME to every nameserver in
# /etc/resolv.conf (as the client left it) and to each extra server given, and the system
# resolver (getent). Prints JSON: what answered, and with which address.
_PROBES = r"""
import json, os, random, socket, struct, subprocess, sys, threading
target4, port, target6, name, extra = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
results = {"dns": {}}

def ping(key, *args):
    done = subprocess.run(["ping", *args, "-n", "-c", "1", "-W", "1"], capture_output=True)
    results[key] = done.returncode == 0

def tcp():
    try:
        socket.create_connection((target4, port), 1.5).close()
        results["tcp"] = True
    except OSError as error:
        results["tcp"] = False
        results["tcp_error"] = repr(error)

def query(server):
    ident = random.randrange(65536)
    question = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".")) + b"\0" + struct.pack("!HH", 1, 1)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    answer = None
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.settimeout(1.5)
            s.sendto(struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question, (server, 53))
            data = s.recv(4096)
            if struct.unpack("!H", data[:2])[0] == ident and struct.unpack("!H", data[6:8])[0]:
                index = 12 + len(question)
                index += 2 if data[index] & 0xC0 == 0xC0 else len(question) - 4
                rtype, _, _, length = struct.unpack("!HHIH", data[index:index + 10])
                if rtype == 1 and length == 4:
                    answer = socket.inet_ntoa(data[index + 10:index + 14])
    except OSError as error:
        answer = None
    results["dns"][server] = answer

def getent():
    done = subprocess.run(["timeout", "4", "getent", "ahostsv4", name], capture_output=True, text=True)
    results["getent"] = done.stdout.split()[0] if done.returncode == 0 and done.stdout.split() else None

with open("/etc/resolv.conf") as f:
    nameservers = [line.split()[1] for line in f if line.startswith("nameserver") and len(line.split()) > 1]
results["nameservers"] = nameservers
work = [threading.Thread(target=ping, args=("ping", target4)), threading.Thread(target=ping, args=("ping6", "-6", target6)),
        threading.Thread(target=tcp), threading.Thread(target=getent)]
work += [threading.Thread(target=query, args=(server,)) for server in dict.fromkeys(nameservers + extra)]
for thread in work:
    thread.start()
for thread in work:
    thread.join()
print(json.dumps(results))
"""


@dataclass(frozen=True)
class ProbeTargets:
    """Where the probes go: `ipv4` and `ipv6` beyond the physical gateway (a TCP listener on
    `ipv4`:`tcp_port`), and `name`, which each side's DNS server answers with its own address."""

    ipv4: str
    tcp_port: int
    ipv6: str
    name: str


@dataclass(frozen=True)
class ProbeResults:
    ping: bool
    ping6: bool
    tcp: bool
    dns: dict[str, str | None]  # server -> the address it answered with (None: no answer)
    getent: str | None  # what the system resolver answered
    nameservers: list[str]  # from /etc/resolv.conf at the time
    seconds: float

    @property
    def anything_answered(self) -> bool:
        return self.ping or self.ping6 or self.tcp or self.getent is not None or any(self.dns.values())


def run_probes(ns: Namespace, targets: ProbeTargets, *extra_dns_servers: str) -> ProbeResults:
    began = time.monotonic()
    result = run_python(ns, _PROBES, targets.ipv4, str(targets.tcp_port), targets.ipv6, targets.name, *extra_dns_servers, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"probes failed in {ns.name}: {result.stderr.strip()}")
    found = json.loads(result.stdout)
    return ProbeResults(found["ping"], found["ping6"], found["tcp"], found["dns"], found["getent"], found["nameservers"], time.monotonic() - began)


def probe_packets(window: Window, targets: ProbeTargets, dns_server: str) -> set[str]:
    """Which probes the capture saw leave on the link in `window`: "ping", "ping6", "tcp", "dns"."""
    seen = set()
    for verdict in window.verdicts:
        p = verdict.parsed
        if p.protocol == "ICMP" and p.icmp_type == 8 and p.dst == targets.ipv4:
            seen.add("ping")
        elif p.protocol == "ICMPv6" and p.icmp_type == 128 and p.dst == targets.ipv6:
            seen.add("ping6")
        elif p.protocol == "TCP" and p.dst == targets.ipv4 and p.dport == targets.tcp_port and p.tcp_flags & 0x02:
            seen.add("tcp")
        elif p.protocol == "UDP" and p.dst == dns_server and p.dport == 53:
            question = dns_question(p.payload)
            if question and not question[0] and question[1] == targets.name:
                seen.add("dns")
    return seen
