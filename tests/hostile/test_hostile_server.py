"""`sstp-vpn connect` against a server that misbehaves on purpose (tests/hostile/scenarios.py).

Every case runs the real command line as root in a client namespace of its own making and
checks: the exit code, the one sentence on stderr, the time it took, no traceback, no tunnel
device left, the client namespace's addresses, routes and resolver exactly as before, and what
the client last said to the server (Call Abort, Call Disconnect, its Ack, or nothing).

Namespaces: client 198.18.40.2/24 -- veth -- 198.18.40.1/24 server (default route via the server,
so a full-tunnel client visibly replaces it). The tunnel addresses come from 198.18.30.0/24.
The stalls that only the spec's 60 s negotiation timer (or LCP's 10 x 3 s restart timer) can end
run in their own client namespaces, started when the module starts, so they overlap the rest.
"""

from __future__ import annotations

import functools
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sstpvpn.client.core.sstp_codec import MessageType
from tests.hostile.hostile_server import PASSWORD, USERNAME, HostileServer
from tests.hostile.scenarios import FLOOD_ECHOES, SCENARIOS
from tests.integration.certificates import make_test_pki
from tests.integration.client_process import ClientProcess, NetworkState, network_state
from tests.netns import Namespace, veth_pair
from tests.realparts import require_program, require_root

pytestmark = pytest.mark.realparts

SERVER_NAME, OTHER_NAME = "vpn.test", "other.test"
SERVER_NS_PREFIX, CLIENT_NS_PREFIX = "hstsrv", "hstcli"
NAMESPACE_PREFIXES = (SERVER_NS_PREFIX, CLIENT_NS_PREFIX)
TUNNEL_IFNAME = "hostile0"
KEEPALIVE = 2.0  # seconds: a dead link is noticed after twice this
STEP_TIMEOUT = 5.0  # --timeout, for TCP and TLS
NOTHING = "nothing"  # the server closed the connection; the client had nothing more to say
SILENT_CLOSE = "silent close"  # the client closed the connection without a word (TLS is broken)
UNHEARD = "unheard"  # the client's last words cannot reach the server: nothing to check there

ABORTED = " The connection was aborted; report this to the server's administrator if it persists."
LOST = r"The connection to {server} was lost\. Check your network; if it keeps happening, the server may be restarting\."
SERVER_ABORTED = r"The server aborted the call{detail}\. Try again; if it keeps happening, ask the server's administrator to check its log\."
TLS_BROKEN = (
    r"The encrypted connection to {server} broke \(.+\): data was changed on the way, by a faulty network "
    r"device or a program that intercepts HTTPS\. Connect again; if it keeps happening, try another network\."
)
SERVER_ENDED = r"The server ended the session\. Connect again; if it keeps happening, ask the server's administrator why\."


@dataclass(frozen=True)
class Case:
    scenario: str
    exit_code: int
    sentence: str  # a regular expression for the whole stderr line after "sstp-vpn: "; {server} is vpn.test:PORT
    bound: float  # seconds from start to exit
    client_says_last: int | str | None  # MessageType the client sent last, NOTHING, SILENT_CLOSE, UNHEARD, or None (no SSTP at all)
    connects: bool = False  # the client prints `connected:` first; then the test orders the misbehaviour


CASES = [
    Case(
        "bad-packet-length",
        6,
        re.escape(
            "The server sent data that is not SSTP (SSTP packet length 2 is shorter than its header); the connection was dropped. "
            "Check that the server is an SSTP server, or report the problem to its administrator."
        ),
        10,
        MessageType.CALL_CONNECT_REQUEST,
    ),
    Case(
        "bad-attribute-length",
        6,
        re.escape("The server sent a malformed SSTP control message (SSTP attribute 4 has a bad length 4000)." + ABORTED),
        12,
        MessageType.CALL_ABORT,
    ),
    Case(
        "unknown-message-type",
        6,
        re.escape("The server sent an SSTP 0x0042 message that is not valid in state Client_Connect_Request_Sent." + ABORTED),
        12,
        MessageType.CALL_ABORT,
    ),
    Case(
        "unknown-message-connected",
        6,
        re.escape("The server sent an SSTP 0x0042 message that is not valid in state Client_Call_Connected." + ABORTED),
        15,
        MessageType.CALL_ABORT,
        connects=True,
    ),
    Case("oversized-ip-packet", 6, SERVER_ENDED, 12, MessageType.CALL_DISCONNECT_ACK, connects=True),
    Case(
        "endless-http-headers",
        6,
        r"The server {server} sent a malformed HTTP reply to the SSTP request \(.+\): it may not be an SSTP server\.",
        10,
        None,
    ),
    Case("attribute-flood", 0, "", 15, MessageType.CALL_DISCONNECT, connects=True),
    Case(
        "lcp-nak-loop",
        6,
        re.escape(
            "The server did not complete PPP link negotiation. Try again; if it keeps happening, the server may be overloaded or misconfigured."
        ),
        10,
        MessageType.CALL_DISCONNECT,
    ),
    Case(
        "ipcp-nak-loop",
        6,
        re.escape(
            "The server did not complete IPv4 configuration (IPCP). Try again; if it keeps happening, the server's address pool may be exhausted."
        ),
        10,
        MessageType.CALL_DISCONNECT,
    ),
    Case(
        "stall-in-ipcp",
        5,
        re.escape(f"The server stopped answering (nothing received for {2 * KEEPALIVE:.0f} s): the network or the server is down. Try again later."),
        12,
        MessageType.ECHO_REQUEST,
    ),
    Case(
        "garbage-after-tls",
        6,
        r"The server {server} sent a malformed HTTP reply to the SSTP request \(.+\): it may not be an SSTP server\.",
        10,
        None,
    ),
    Case(
        "garbage-after-http",
        6,
        re.escape(
            "The server sent data that is not SSTP (SSTP version 0x77 is not 1.0); the connection was dropped. "
            "Check that the server is an SSTP server, or report the problem to its administrator."
        ),
        10,
        MessageType.CALL_CONNECT_REQUEST,
    ),
    Case(
        "wrong-authenticator",
        6,
        re.escape(
            "The server could not prove it knows your password (bad MS-CHAPv2 authenticator response): it may be an impostor. "
            "Do not use this connection, and tell the server's administrator."
        ),
        10,
        MessageType.CALL_DISCONNECT,
    ),
    Case(
        "no-authentication",
        3,
        re.escape(
            "The server asked for no authentication, which this client refuses: nothing would bind the tunnel to your account, "
            "so a misconfigured server or an impostor holding a valid certificate could carry your traffic. "
            "Ask the server's administrator to require MS-CHAPv2 or EAP."
        ),
        10,
        MessageType.CALL_DISCONNECT,
    ),
    Case("call-connect-nak", 6, re.escape("The server refused the SSTP call 4 times (value not supported)." + ABORTED), 12, MessageType.CALL_ABORT),
    Case("abort-at-connect", 6, SERVER_ABORTED.format(detail=""), 10, MessageType.CALL_ABORT),
    Case("abort-in-lcp", 6, SERVER_ABORTED.format(detail=""), 10, MessageType.CALL_ABORT),
    Case(
        "abort-in-auth",
        6,
        SERVER_ABORTED.format(detail=r" \(status 6: retry count exceeded, about the encapsulated protocol attribute\)"),
        10,
        MessageType.CALL_ABORT,
    ),
    Case("abort-in-ipcp", 6, SERVER_ABORTED.format(detail=""), 10, MessageType.CALL_ABORT),
    Case("abort-connected", 6, SERVER_ABORTED.format(detail=""), 12, MessageType.CALL_ABORT, connects=True),
    Case(
        "drop-after-tls",
        6,
        r"The server {server} closed the connection instead of answering the SSTP request: it may not be an SSTP server, "
        r"or SSTP may be disabled on it\.",
        10,
        None,
    ),
    Case("drop-after-http", 5, LOST, 10, NOTHING),
    Case("drop-in-auth", 5, LOST, 10, NOTHING),
    Case("drop-connected", 5, LOST, 12, NOTHING, connects=True),
    Case("reset-connected", 5, LOST, 12, NOTHING, connects=True),
    Case("tls-garbage-after-handshake", 6, TLS_BROKEN, 10, None),
    Case("tls-garbage-connected", 6, TLS_BROKEN, 12, SILENT_CLOSE, connects=True),
    Case(
        "lcp-renegotiation-connected",
        6,
        re.escape(
            "The server restarted PPP link negotiation during the session, which this client does not support. Connect again; "
            "if it keeps happening, ask the server's administrator to check its log."
        ),
        12,
        MessageType.CALL_DISCONNECT,
        connects=True,
    ),
    Case(
        "ipcp-terminate-connected",
        6,
        re.escape(
            "The server ended IPv4 on this link (IPCP Terminate-Request). Connect again; "
            "if it keeps happening, ask the server's administrator to check its log."
        ),
        15,
        MessageType.CALL_DISCONNECT,
        connects=True,
    ),
    Case(
        "ipcp-loopback-address",
        6,
        re.escape(
            "The server assigned the IPv4 address 127.0.0.5, which cannot be the address of this computer. "
            "Ask the server's administrator to check the address pool."
        ),
        12,
        MessageType.CALL_DISCONNECT,
    ),
    Case(
        "ipcp-multicast-address",
        6,
        re.escape(
            "The server assigned the IPv4 address 224.0.0.9, which cannot be the address of this computer. "
            "Ask the server's administrator to check the address pool."
        ),
        12,
        MessageType.CALL_DISCONNECT,
    ),
    # Taking the server's own address would route the TLS connection into the tunnel itself.
    Case(
        "ipcp-server-address",
        6,
        r"The server assigned this computer the address 198\.18\.\d+\.\d+, which is where the VPN connection itself goes, so it cannot be used\. "
        r"Ask the server's administrator to check the address pool\.",
        12,
        MessageType.CALL_DISCONNECT,
    ),
    Case("ipcp-loopback-dns", 0, "", 12, MessageType.CALL_DISCONNECT, connects=True),
    Case("echo-flood", 6, SERVER_ENDED, 20, MessageType.CALL_DISCONNECT_ACK, connects=True),
    Case(
        "mitm-other-ca",
        4,
        re.escape(
            "The server's certificate was not issued by a trusted authority (unable to get local issuer certificate): if you trust this server, "
            "add its CA certificate to the profile (--ca-file)."
        ),
        10,
        None,
    ),
    Case(
        "mitm-wrong-name",
        4,
        re.escape(f"The server's certificate is for {OTHER_NAME}, not {SERVER_NAME}. Check the host name in the profile."),
        10,
        None,
    ),
]

# Cases only an engine timer ends: the spec's 60 s negotiation timer, or LCP's restart timer
# (10 Configure-Requests, 3 s apart). Slow: they run alongside the others from the module's start.
SLOW_CASES = [
    Case("stall-after-tls", 6, r"The server {server} did not answer the SSTP request within 60 s: it may not be an SSTP server\.", 70, None),
    Case("stall-after-http", 6, re.escape("The server did not finish setting up the call within 60 s." + ABORTED), 70, MessageType.CALL_ABORT),
    Case(
        "stall-in-lcp",
        6,
        re.escape(
            "The server did not complete PPP link negotiation. Try again; if it keeps happening, the server may be overloaded or misconfigured."
        ),
        40,
        MessageType.CALL_DISCONNECT,
    ),
]


# ------------------------------------------------------------------------------------- fixtures


@dataclass
class ClientSide:
    ns: Namespace
    ca_path: Path

    @functools.cached_property
    def journal(self) -> Path:
        """The client's undo journal in this namespace: it exists only while the network is changed."""
        code = "from sstpvpn.platform.netconfig_linux import default_journal_path; print(default_journal_path())"
        return Path(self.ns.run(sys.executable, "-c", code).stdout.strip())


def _client_namespace(server_ns: Namespace, subnet: int, ca_path: Path) -> ClientSide:
    """A client namespace linked to the server namespace on 198.18.<subnet>.0/24."""
    ns = Namespace(CLIENT_NS_PREFIX)
    ns.__enter__()
    server_address = f"198.18.{subnet}.1"
    _, client_if = veth_pair(server_ns, server_address, ns, f"198.18.{subnet}.2")
    ns.run("ip", "route", "add", "default", "via", server_address, "dev", client_if)
    # `ip netns exec` bind-mounts this over /etc/hosts for the client only.
    (ns.etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n{server_address}\t{SERVER_NAME} {OTHER_NAME}\n")
    return ClientSide(ns, ca_path)


@dataclass
class SlowRun:
    """A slow case started with the module; a watcher notes when the client exits."""

    side: ClientSide
    before: NetworkState
    client: ClientProcess
    started: float = 0.0
    exited: float | None = None

    def __post_init__(self) -> None:
        self.started = time.monotonic()
        self.watcher = threading.Thread(target=self._watch, name="hostile-slow-watch", daemon=True)
        self.watcher.start()

    def _watch(self) -> None:
        self.client.process.wait()
        self.exited = time.monotonic()


@dataclass
class Bench:
    hostile: HostileServer
    client: ClientSide
    slow: dict[str, SlowRun]


def remove_stale_namespaces() -> None:
    """Namespaces of an earlier run of this module that was killed before its teardown: their
    names carry the creating pytest's PID (tests.netns.Namespace), which is gone."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for name in (line.split()[0] for line in listing.splitlines() if line.strip()):
        prefix, _, rest = name.partition("-")
        creator = rest.split("-")[0]
        if prefix in NAMESPACE_PREFIXES and creator.isdigit() and not Path(f"/proc/{creator}").exists():
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)


@pytest.fixture(scope="module")
def bench(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bench]:
    require_root("network namespaces and a tunnel device")
    require_program("ip", "apt-get install iproute2")
    remove_stale_namespaces()
    pki = make_test_pki(tmp_path_factory.mktemp("hostile-pki"), SERVER_NAME, "198.18.40.1", OTHER_NAME)
    namespaces: list[Namespace] = []
    try:
        server_ns = Namespace(SERVER_NS_PREFIX)
        server_ns.__enter__()
        namespaces.append(server_ns)
        client = _client_namespace(server_ns, 40, pki.ca_path)
        namespaces.append(client.ns)
        with HostileServer(server_ns.name, pki, SCENARIOS) as hostile:
            bench = Bench(hostile, client, {})
            # The slow cases this run will ask for (other modules have parameters named "case" too).
            selected = {
                item.callspec.params["case"].scenario
                for item in request.session.items
                if isinstance(getattr(item, "callspec", None) and item.callspec.params.get("case"), Case)
            }
            for index, case in enumerate(c for c in SLOW_CASES if c.scenario in selected):
                side = _client_namespace(server_ns, 41 + index, pki.ca_path)
                namespaces.append(side.ns)
                before = network_state(side.ns)
                bench.slow[case.scenario] = SlowRun(side, before, start_client(bench, side, case))
            yield bench
    finally:
        for ns in reversed(namespaces):
            ns.close()


def start_client(bench: Bench, side: ClientSide, case: Case, stdin: str = PASSWORD) -> ClientProcess:
    """The real `sstp-vpn connect` against this case's server; `stdin` is what it reads (passwords)."""
    port = bench.hostile.ports[case.scenario]
    args = [
        f"{SERVER_NAME}:{port}",
        "--user",
        USERNAME,
        "--ca-file",
        str(side.ca_path),
        "--ifname",
        TUNNEL_IFNAME,
        "--timeout",
        str(STEP_TIMEOUT),
        "--keepalive",
        str(KEEPALIVE),
    ]
    return ClientProcess(side.ns, args, stdin)


# ---------------------------------------------------------------------------------------- checks


def check_outcome(bench: Bench, side: ClientSide, case: Case, client: ClientProcess, code: int, elapsed: float, before: NetworkState) -> None:
    hostile = bench.hostile
    server = f"{SERVER_NAME}:{hostile.ports[case.scenario]}"
    report = f"{case.scenario}: exit {code} after {elapsed:.1f} s\nstdout: {client.lines}\nstderr: {client.stderr!r}"
    everything = "\n".join(client.lines) + client.stderr
    assert "Traceback" not in everything, report
    assert "internal error" not in everything, report
    assert code == case.exit_code, report
    lines = [line for line in client.stderr.splitlines() if line.strip()]
    if case.exit_code == 0:
        assert lines == [], report
        assert client.lines[-1] == "disconnected", report
    else:
        assert len(lines) == 1, report
        pattern = "sstp-vpn: " + case.sentence.replace("{server}", re.escape(server))
        assert re.fullmatch(pattern, lines[0]), report
    assert elapsed < case.bound, report
    links = side.ns.run("ip", "-o", "link", "show").stdout
    assert TUNNEL_IFNAME not in links, report
    assert network_state(side.ns) == before, report
    assert not side.journal.exists(), report
    assert hostile.errors(case.scenario) == [], report
    check_last_words(hostile, case, report)
    if case.connects:
        binding = hostile.latest(case.scenario).server.binding
        assert binding is not None and binding.ok, report


def check_last_words(hostile: HostileServer, case: Case, report: str) -> None:
    """What the client last sent, and that it closed the connection (unless the server did)."""
    if case.client_says_last is None:  # refused before SSTP began: no SSTP from the client at all
        for connection in hostile.connections[case.scenario]:
            assert connection.server.control_received == [], report
            if case.exit_code == 4:  # a man in the middle learns nothing, not even the HTTP request
                assert connection.server.http_request is None, report
        return
    connection = hostile.latest(case.scenario)
    if case.client_says_last == UNHEARD:
        return
    assert connection.finished.wait(5), report
    assert connection.server.problems == [], (connection.server.problems, report)
    if case.client_says_last == NOTHING:
        assert connection.end == "server closed", report
        return
    if case.client_says_last == SILENT_CLOSE:
        assert connection.end in ("client closed", "client reset"), (connection.end, report)
        return
    received = connection.server.control_received
    assert received and received[-1] == case.client_says_last, (received[-5:], report)
    assert connection.end in ("client closed", "client reset"), (connection.end, report)


# ----------------------------------------------------------------------------------------- tests


def test_correct_server_connects_and_disconnects(bench: Bench):
    """The baseline: the same server without misbehaviour works, the crypto binding checks out, and
    the full tunnel really changes the namespace (so "restored" in the other cases means something)."""
    case = Case("correct", 0, "", 15, MessageType.CALL_DISCONNECT, connects=True)
    side = bench.client
    before = network_state(side.ns)
    start = time.monotonic()
    client = start_client(bench, side, case)
    assert client.wait_for_line("connected:", case.bound) == "connected: 198.18.30.10"
    during = network_state(side.ns)
    assert during.routes != before.routes and "198.18.30.1" in during.resolv_conf
    assert side.journal.exists()
    client.interrupt(signal.SIGINT)
    code = client.finish(case.bound)
    check_outcome(bench, side, case, client, code, time.monotonic() - start, before)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.scenario)
def test_hostile_server(bench: Bench, case: Case):
    side = bench.client
    before = network_state(side.ns)
    start = time.monotonic()
    client = start_client(bench, side, case)
    if case.connects:
        client.wait_for_line("connected:", case.bound)
        if case.exit_code == 0:
            client.interrupt(signal.SIGINT)
        else:
            bench.hostile.order(case.scenario)
    code = client.finish(case.bound + 5)
    check_outcome(bench, side, case, client, code, time.monotonic() - start, before)
    if case.scenario == "ipcp-loopback-dns":
        assert "Ignored the DNS servers 127.0.0.1, 0.0.0.1 offered by the server: they cannot be reached through the tunnel." in client.lines
    if case.scenario == "ipcp-terminate-connected":
        assert bench.hostile.latest(case.scenario).server.ipcp_terminate_acks == 1
    if case.scenario == "echo-flood":
        server = bench.hostile.latest(case.scenario).server
        assert server.control_received.count(MessageType.ECHO_RESPONSE) == FLOOD_ECHOES
        assert len(server.lcp_echo_replies) == FLOOD_ECHOES


# Slow: the bound is the spec's timer plus a margin; they have been running since the module started.
@pytest.mark.parametrize("case", SLOW_CASES, ids=lambda case: case.scenario)
def test_hostile_server_slow(bench: Bench, case: Case):
    run = bench.slow[case.scenario]
    code = run.client.finish(max(1.0, case.bound + 5 - (time.monotonic() - run.started)))
    run.watcher.join(5)
    assert run.exited is not None
    check_outcome(bench, run.side, case, run.client, code, run.exited - run.started, run.before)


# MS-CHAPv2 Failure with R=1 (issue 13): the command line reads one more line of standard input.
RETRY_CASES = [
    (Case("password-retry", 0, "", 15, MessageType.CALL_DISCONNECT, connects=True), "wrong first try\n" + PASSWORD),
    (
        Case(
            "password-retry-declined",
            3,
            re.escape('The server refused the user name or password. Check them and try again. The server said: "Wrong password, 2 tries left".'),
            10,
            MessageType.CALL_DISCONNECT,
        ),
        "wrong first try",
    ),
]


@pytest.mark.parametrize(("case", "stdin"), RETRY_CASES, ids=lambda value: getattr(value, "scenario", ""))
def test_password_retry_on_the_command_line(bench: Bench, case: Case, stdin: str):
    side = bench.client
    before = network_state(side.ns)
    start = time.monotonic()
    client = start_client(bench, side, case, stdin)
    if case.connects:
        assert client.wait_for_line("connected:", case.bound) == "connected: 198.18.30.10"
        client.interrupt(signal.SIGINT)
    code = client.finish(case.bound + 5)
    check_outcome(bench, side, case, client, code, time.monotonic() - start, before)
    assert "The server refused the password but allows another try." in client.lines
    assert "Message from the server: Wrong password, 2 tries left" in client.lines
    server = bench.hostile.latest(case.scenario).server
    assert server.auth_attempts == (2 if case.connects else 1)


def test_every_scenario_has_a_case():
    named = {scenario.name for scenario in SCENARIOS}
    assert named == {case.scenario for case in CASES + SLOW_CASES + [case for case, _ in RETRY_CASES]} | {"correct"}
