"""Issue 19's proof: nothing of the client's crosses the physical link but the SSTP connection.

The client namespace's veth to the server namespace is its "physical" link; tests/leak_capture.py
records every frame on it for a whole scenario, and each stretch of the scenario is judged
separately: allowed are the SSTP TCP connection (and its ARP), DHCPv4/v6 and IPv6 ND, everything
else is a leak. Beyond the physical gateway (the server namespace, like the Internet behind a home
router) sit 198.18.21.1 (ping, TCP) and fd53:21::1 (ping6); the local resolver is dnsmasq at the
gateway, answering the test name with 198.18.21.53, and the VPN's is dnsmasq on the peer bridged
to SoftEther's hub (198.18.30.2, handed out by SecureNAT's DHCP), answering 198.18.30.53. The
server offers no IPv6.

Scenarios: (a) full tunnel without the kill switch; (b) --kill-switch connected, through a
server kill and the reconnection; (c) --kill-switch always while the server is down; (d) after
the disconnect; (e) (b) through an HTTP proxy on the local network; (f) what the machine routes for others, with
'always'; (g) a client killed while connected, then `sstp-vpn repair`; (h) reconnecting to a server whose
name only the (blocked) local resolver knows. While the kill switch is on, a
ping and a ping6 go out every 50 ms, so a leak at a transition would show too. Every scenario also
probes where nothing blocks (before connecting, after disconnecting) and asserts that the capture
sees those probes there: a capture that could not see a leak proves nothing. Frames that come in
are not leaks by themselves (SoftEther sends the client a NetBIOS query now and then).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.client_process import CLI, ClientProcess
from tests.integration.softether import BRIDGE_PEER_ADDRESS, CLIENT_ADDRESS, HUB, SERVER_ADDRESS, VIRTUAL_HOST, dhcp_set_command
from tests.integration.test_connect_softether import connect_args
from tests.leak_capture import (
    Endpoint,
    LinkCapture,
    LinkPolicy,
    ProbeResults,
    ProbeTargets,
    Window,
    judge,
    leak_lines,
    probe_packets,
    run_probes,
)
from tests.netns import Namespace, stop_process, veth_pair
from tests.proxies import start_tinyproxy
from tests.realparts import require_program

pytestmark = pytest.mark.realparts

BEYOND_GATEWAY = "198.18.21.1"  # "the Internet": in the server namespace, reached via the gateway
BEYOND_GATEWAY6 = "fd53:21::1"
LINK6_SERVER, LINK6_CLIENT = "fd53:20::1", "fd53:20::2"  # IPv6 on the physical link (the VPN has none)
TEST_NAME = "where.leak.test"
LOCAL_ANSWER, VPN_ANSWER = "198.18.21.53", "198.18.30.53"
LOCAL_DNS = SERVER_ADDRESS  # the home router's resolver
TCP_PORT = 7070
SERVER_DNS_NAME = "vpn.leak.test"  # the server's name in the local resolver only (not in /etc/hosts)
ALL_PROBES = {"ping", "ping6", "tcp", "dns"}
TABLE = ("nft", "list", "table", "inet", "sstpvpn")

_TCP_LISTENER = r"""
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
while True:
    server.accept()[0].close()
"""


@dataclass
class LeakLab:
    client_ns: Namespace
    server_ns: Namespace
    interface: str  # the client's physical link
    targets: ProbeTargets
    policy: LinkPolicy
    workdir: Path


def dnsmasq(ns: Namespace, address: str, answer: str, log: Path, also: dict[str, str] | None = None):
    """dnsmasq on `address` only, answering TEST_NAME with `answer` (and each name in `also` with
    its address), logging each query to `log`."""
    with open(log, "ab") as out:
        process = ns.popen(
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            f"--listen-address={address}",
            f"--address=/{TEST_NAME}/{answer}",
            *(f"--address=/{name}/{value}" for name, value in (also or {}).items()),
            "--pid-file=",
            "--log-queries",
            "--log-facility=-",
            stdout=out,
            stderr=out,
        )
    deadline = time.monotonic() + 10
    while ns.run("ss", "-Hlun", f"src {address}", "sport = :53", check=False).stdout.strip() == "":
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(f"dnsmasq did not start on {address}: {log.read_text(errors='replace')}")
        time.sleep(0.05)
    return process


def vpn_dns_command(server: str) -> str:
    """SecureNAT's usual DHCP settings, with `server` as the DNS server it hands out (over IPCP too)."""
    usual = dhcp_set_command()
    assert f"/DNS:{VIRTUAL_HOST} " in usual
    return usual.replace(f"/DNS:{VIRTUAL_HOST} ", f"/DNS:{server} ")


@pytest.fixture(scope="module")
def leak_lab(softether, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LeakLab]:
    require_program("dnsmasq", "apt-get install dnsmasq-base")
    require_program("nft", "apt-get install nftables")
    require_program("ping", "apt-get install iputils-ping")
    workdir = tmp_path_factory.mktemp("leaks")
    client, server = softether.client_ns, softether.server_ns
    client_if, server_if = softether.client_interface, softether.server_interface
    resolv = client.etc / "resolv.conf"
    saved_resolv = resolv.read_text()
    undo: list[tuple[Namespace, tuple[str, ...]]] = []
    processes = []

    def change(ns: Namespace, command: tuple[str, ...], reverse: tuple[str, ...]) -> None:
        ns.run(*command)
        undo.append((ns, reverse))

    def address(ns: Namespace, value: str, device: str) -> None:
        # nodad: usable at once, and no duplicate address detection on the link later
        change(ns, ("ip", "addr", "add", value, "dev", device, "nodad"), ("ip", "addr", "del", value, "dev", device))

    try:
        # On the server namespace's loopback: local there, so reached through the gateway.
        address(server, f"{BEYOND_GATEWAY}/32", "lo")
        address(server, f"{BEYOND_GATEWAY6}/128", "lo")
        address(server, f"{LINK6_SERVER}/64", server_if)
        address(client, f"{LINK6_CLIENT}/64", client_if)
        change(client, ("ip", "-6", "route", "add", "default", "via", LINK6_SERVER, "dev", client_if), ("ip", "-6", "route", "del", "default"))
        processes.append(server.popen(sys.executable, "-c", _TCP_LISTENER, BEYOND_GATEWAY, str(TCP_PORT)))
        processes.append(dnsmasq(server, LOCAL_DNS, LOCAL_ANSWER, workdir / "local-dnsmasq.log", {SERVER_DNS_NAME: SERVER_ADDRESS}))
        resolv.write_text(f"nameserver {LOCAL_DNS}\n")
        # The VPN's DNS server: the bridged peer (test_full_tunnel... starts it there).
        softether.vpncmd_batch([f"Hub {HUB}", vpn_dns_command(BRIDGE_PEER_ADDRESS)])
        # Adding IPv6 addresses sends MLD reports for a moment: let them pass before any capture.
        time.sleep(3)
        yield LeakLab(
            client,
            server,
            client_if,
            ProbeTargets(BEYOND_GATEWAY, TCP_PORT, BEYOND_GATEWAY6, TEST_NAME),
            LinkPolicy(endpoints=(Endpoint(SERVER_ADDRESS, softether.port),), local=(CLIENT_ADDRESS, LINK6_CLIENT), gateways=(SERVER_ADDRESS,)),
            workdir,
        )
    finally:
        for process in processes:
            stop_process(process)
        resolv.write_text(saved_resolv)
        for ns, command in reversed(undo):
            ns.run(*command, check=False)
        if softether.running:
            softether.vpncmd_batch([f"Hub {HUB}", dhcp_set_command()])


@pytest.fixture(autouse=True)
def _lab_back_to_default(leak_lab: LeakLab) -> Iterator[None]:
    """After a test whose client had to be killed: what a killed client leaves (its resolver,
    firewall table, tunnel) is removed, so the next test starts from the lab's own state."""
    yield
    (leak_lab.client_ns.etc / "resolv.conf").write_text(f"nameserver {LOCAL_DNS}\n")
    leak_lab.client_ns.run("nft", "delete", "table", "inet", "sstpvpn", check=False)
    leak_lab.client_ns.run("ip", "link", "del", "sstptest0", check=False)
    leak_lab.client_ns.run("ip", "route", "del", f"{SERVER_ADDRESS}/32", check=False)


@dataclass
class Scenario:
    """One capture for a whole test, cut into named windows that are judged one by one."""

    lab: LeakLab
    policy: LinkPolicy | None = None  # the lab's unless given
    capture: LinkCapture | None = None
    windows: list[Window] = field(default_factory=list)
    began: float = 0.0

    def __enter__(self) -> Scenario:
        self.began = time.monotonic()
        self.policy = self.policy or self.lab.policy
        self.capture = LinkCapture(self.lab.client_ns.name, self.lab.interface)
        self.capture.start()
        return self

    def __exit__(self, *exc) -> None:
        assert self.capture is not None
        self.capture.close()
        print(f"\n{len(self.capture.frames)} frames captured in {time.monotonic() - self.began:.1f} s, kernel drops {self.capture.kernel_drops}")
        for window in self.windows:
            print("  " + window.report())
            for verdict in window.leaks[:12]:
                print("     not allowed: " + verdict.summary)
        if exc[0] is None:
            assert self.capture.kernel_drops == 0, "the capture missed frames: it cannot vouch for them"

    @contextlib.contextmanager
    def window(self, name: str) -> Iterator[list[Window]]:
        assert self.capture is not None
        start = time.time()
        holder: list[Window] = []
        yield holder
        self.capture.settle()
        assert self.policy is not None
        window = judge(self.capture, self.policy, name, start, time.time())
        self.windows.append(window)
        holder.append(window)

    def probe(self, name: str, *extra_dns: str) -> tuple[ProbeResults, Window]:
        with self.window(name) as holder:
            results = run_probes(self.lab.client_ns, self.lab.targets, *extra_dns)
        return results, holder[0]

    def assert_open(self, name: str) -> None:
        """Nothing blocks: every probe gets through on the physical link and the capture sees it."""
        results, window = self.probe(name)
        assert results.ping and results.ping6 and results.tcp, results
        assert results.nameservers == [LOCAL_DNS] and results.getent == LOCAL_ANSWER, results
        assert probe_packets(window, self.lab.targets, LOCAL_DNS) == ALL_PROBES, leak_lines([window])
        assert len(window.leaks) >= 4

    def assert_sealed(self, name: str) -> ProbeResults:
        """Probes (and a direct query to the local resolver) leave nothing on the physical link."""
        results, window = self.probe(name, LOCAL_DNS)
        assert window.leaks == [], f"{len(window.leaks)} packets leaked:\n{leak_lines([window])}"
        assert results.dns.get(LOCAL_DNS) is None, results  # the local resolver was not reached
        assert LOCAL_ANSWER not in (results.getent, *results.dns.values()), results
        return results


@contextlib.contextmanager
def chatter(ns: Namespace, targets: ProbeTargets) -> Iterator[list[tuple[int, int]]]:
    """A ping and a ping6 beyond the gateway every 50 ms for the whole block, so that a leak at
    any moment (a transition included) shows on the link. Yields, after the block, each ping's
    (sent, answered)."""
    pings = [
        ns.popen("ping", *family, "-n", "-q", "-i", "0.05", address, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for family, address in (((), targets.ipv4), (("-6",), targets.ipv6))
    ]
    counts: list[tuple[int, int]] = []
    try:
        yield counts
    finally:
        for ping in pings:
            ping.send_signal(signal.SIGINT)  # ping prints its summary on SIGINT
            try:
                out, _ = ping.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                stop_process(ping)
                out = ""
            found = re.search(r"(\d+) packets transmitted, (\d+) received", out)
            counts.append((int(found[1]), int(found[2])) if found else (0, 0))


def table_present(ns: Namespace) -> bool:
    return ns.run(*TABLE, check=False).returncode == 0


def finish(client: ClientProcess) -> None:
    client.interrupt(signal.SIGINT)
    assert client.finish() == 0, (client.lines, client.stderr)


def test_full_tunnel_asks_only_the_vpn_dns_and_leaks_nothing(softether, leak_lab):
    """(a) Kill switch off, full tunnel, connected: DNS goes to the VPN's server (its answer says
    so), and the probes leave nothing on the physical link."""
    ns = leak_lab.client_ns
    with softether.bridge_peer() as peer:
        dnsmasq(peer, BRIDGE_PEER_ADDRESS, VPN_ANSWER, leak_lab.workdir / "vpn-dnsmasq.log")
        # Without a kill switch nothing stops the machine from answering what comes in (an ICMP
        # port unreachable for SoftEther's NetBIOS query): reported, not counted.
        with Scenario(leak_lab, dataclasses.replace(leak_lab.policy, answers_are_leaks=False)) as scenario:
            scenario.assert_open("before connecting")
            client = ClientProcess(ns, connect_args(softether, "--kill-switch", "off"), softether.password)
            try:
                client.wait_for_line("connected:", 30)
                results, window = scenario.probe("connected")
                assert window.leaks == [], f"{len(window.leaks)} packets leaked:\n{leak_lines([window])}"
                assert results.nameservers == [BRIDGE_PEER_ADDRESS], results
                assert results.dns == {BRIDGE_PEER_ADDRESS: VPN_ANSWER} and results.getent == VPN_ANSWER, results
                assert not (results.ping or results.ping6 or results.tcp), results  # into the tunnel, where nothing answers
                assert window.count("sstp") > 0  # the tunnel carried the DNS queries
                finish(client)
            finally:
                if client.process.poll() is None:
                    client.kill()
            scenario.assert_open("after disconnecting")
    queries = (leak_lab.workdir / "vpn-dnsmasq.log").read_text()
    assert f"query[A] {TEST_NAME} from 198.18.30." in queries, queries


def test_kill_switch_connected_seals_the_link_while_connected_and_reconnecting(softether, leak_lab):
    """(b) --kill-switch connected --reconnect: from the first connection to the disconnect, with
    pings going out all the time, nothing leaks: not while connected, not when the server is
    killed, not while reconnecting (when every probe fails), not on the way back; after the
    disconnect the table is gone and the probes go out again."""
    ns = leak_lab.client_ns
    with Scenario(leak_lab) as scenario:
        scenario.assert_open("before connecting")
        client = ClientProcess(ns, connect_args(softether, "--kill-switch", "connected", "--reconnect"), softether.password)
        try:
            client.wait_for_line("connected:", 30)
            assert table_present(ns)
            with scenario.window("kill switch on, pings throughout") as whole, chatter(ns, leak_lab.targets) as pings:
                scenario.assert_sealed("connected")
                softether.stop(kill=True)
                client.wait_for_line("reconnecting in ", 30)
                results = scenario.assert_sealed("reconnecting")
                assert not results.anything_answered, results
                assert table_present(ns)
                softether.start(wait_for_certificate=False)
                client.wait_for_line("connected:", 60)
                scenario.assert_sealed("connected again")
            assert whole[0].leaks == [], f"{len(whole[0].leaks)} packets leaked:\n{leak_lines(whole)}"
            print(f"\npings (sent, answered) while the kill switch was on: {pings}")
            assert all(sent >= 20 and answered == 0 for sent, answered in pings), pings
            finish(client)
        finally:
            if client.process.poll() is None:
                client.kill()
        assert not table_present(ns)
        scenario.assert_open("after disconnecting")


def test_kill_switch_always_seals_the_link_before_the_first_connection(softether, leak_lab):
    """(c) --kill-switch always with the server down: while the client keeps trying, with pings
    going out all the time, only its connection attempts reach the link."""
    ns = leak_lab.client_ns
    softether.stop()
    with Scenario(leak_lab) as scenario:
        scenario.assert_open("before connecting")
        client = ClientProcess(ns, connect_args(softether, "--kill-switch", "always", "--reconnect"), softether.password)
        try:
            client.wait_for_line("Connecting to ", 30)
            assert table_present(ns)  # 'always': in place before the first packet to the server
            with scenario.window("attempts, pings throughout") as attempts, chatter(ns, leak_lab.targets) as pings:
                client.wait_for_line("reconnecting in ", 30)
                results = scenario.assert_sealed("between attempts")
                assert not results.anything_answered, results
                client.wait_for_line("Connecting to ", 30)  # one more attempt inside the window
                client.wait_for_line("reconnecting in ", 30)
            assert attempts[0].leaks == [], f"{len(attempts[0].leaks)} packets leaked:\n{leak_lines(attempts)}"
            assert attempts[0].count("sstp") >= 2  # the attempts themselves did reach the link
            print(f"\npings (sent, answered) while the kill switch was on: {pings}")
            assert all(sent >= 10 and answered == 0 for sent, answered in pings), pings
            finish(client)
        finally:
            if client.process.poll() is None:
                client.kill()
        assert not table_present(ns)
        scenario.assert_open("after giving up")


def test_after_disconnect_the_link_carries_the_probes_again(softether, leak_lab):
    """(d) --kill-switch always, connected, then disconnected: the table is gone and the
    physical link carries the probes again, where the capture sees them."""
    ns = leak_lab.client_ns
    with Scenario(leak_lab) as scenario:
        client = ClientProcess(ns, connect_args(softether, "--kill-switch", "always"), softether.password)
        try:
            client.wait_for_line("connected:", 30)
            assert table_present(ns)
            scenario.assert_sealed("connected")
            finish(client)
        finally:
            if client.process.poll() is None:
                client.kill()
        assert not table_present(ns)
        scenario.assert_open("after disconnecting")


def test_kill_switch_through_a_proxy_on_the_local_network(softether, leak_lab):
    """(e) The SSTP connection goes through an HTTP proxy on the local network: with --kill-switch
    connected only the TCP connection to the proxy crosses the link (a direct one to the server
    would be a leak), while connected and while reconnecting after the server was killed."""
    require_program("tinyproxy", "apt-get install tinyproxy")
    ns = leak_lab.client_ns
    hosts = leak_lab.server_ns.etc / "hosts"  # the proxy resolves the server's name there
    hosts.write_text(f"127.0.0.1\tlocalhost\n{SERVER_ADDRESS}\t{softether.server_name}\n")
    proxy = start_tinyproxy(leak_lab.server_ns, [softether.port], leak_lab.workdir, listen=SERVER_ADDRESS, auth=False)
    try:
        through_proxy = LinkPolicy(endpoints=(Endpoint(proxy.host, proxy.port),), local=leak_lab.policy.local, gateways=leak_lab.policy.gateways)
        with Scenario(leak_lab, through_proxy) as scenario:
            args = connect_args(softether, "--proxy", proxy.url, "--kill-switch", "connected", "--reconnect")
            client = ClientProcess(ns, args, softether.password)
            try:
                client.wait_for_line("connected:", 30)
                assert table_present(ns)
                with scenario.window("kill switch on, pings throughout") as whole, chatter(ns, leak_lab.targets) as pings:
                    scenario.assert_sealed("connected")
                    softether.stop(kill=True)
                    client.wait_for_line("reconnecting in ", 30)
                    results = scenario.assert_sealed("reconnecting")
                    assert not results.anything_answered, results
                    client.wait_for_line("Connecting to ", 30)  # an attempt through the proxy inside the window
                    client.wait_for_line("reconnecting in ", 30)
                assert whole[0].leaks == [], f"{len(whole[0].leaks)} packets leaked:\n{leak_lines(whole)}"
                assert whole[0].count("sstp") > 0  # to the proxy, allowed
                print(f"\npings (sent, answered) while the kill switch was on: {pings}")
                assert all(sent >= 20 and answered == 0 for sent, answered in pings), pings
                finish(client)
            finally:
                if client.process.poll() is None:
                    client.kill()
            assert not table_present(ns)
            scenario.assert_open("after disconnecting")
    finally:
        proxy.stop()
        hosts.unlink()
    assert f"CONNECT {softether.server_name}:{softether.port}" in proxy.log_text()


GUEST_GATEWAY, GUEST_ADDRESS = "198.18.22.1", "198.18.22.2"


@contextlib.contextmanager
def routed_guest(client_ns: Namespace) -> Iterator[Namespace]:
    """A namespace behind the client namespace, which routes for it (as a machine does for its
    containers or virtual machines): 198.18.22.2, default route via the client at 198.18.22.1."""
    # "sstppeer": the SoftEther fixture's sweep removes it if a killed run leaves it behind.
    guest = Namespace("sstppeer")
    forwarding = client_ns.run("sysctl", "-n", "net.ipv4.ip_forward").stdout.strip()
    try:
        guest.__enter__()
        veth_pair(client_ns, GUEST_GATEWAY, guest, GUEST_ADDRESS)
        guest.run("ip", "route", "add", "default", "via", GUEST_GATEWAY)
        client_ns.run("sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        yield guest
    finally:
        client_ns.run("sysctl", "-q", "-w", f"net.ipv4.ip_forward={forwarding}", check=False)
        guest.close()  # its veth goes with it, the client's end too


def guest_pings_seen(window: Window, target: str) -> int:
    pings = [v.parsed for v in window.verdicts if v.parsed.protocol == "ICMP" and v.parsed.icmp_type == 8]
    return sum(p.src == GUEST_ADDRESS and p.dst == target for p in pings)


def test_kill_switch_always_also_holds_what_the_machine_routes(softether, leak_lab):
    """(f) A machine that routes for containers or virtual machines: with --kill-switch always
    and the server down, what it forwards for them must not reach the physical link either."""
    ns = leak_lab.client_ns
    target = leak_lab.targets.ipv4
    softether.stop()
    with routed_guest(ns) as guest, Scenario(leak_lab) as scenario:
        with scenario.window("before connecting: the guest pings") as before:
            guest.run("ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", target, check=False)  # no way back: no answer
        assert guest_pings_seen(before[0], target) == 3, leak_lines(before)  # forwarded onto the link
        client = ClientProcess(ns, connect_args(softether, "--kill-switch", "always", "--reconnect"), softether.password)
        try:
            client.wait_for_line("Connecting to ", 30)
            assert table_present(ns)
            with scenario.window("attempts: the guest pings") as attempts:
                client.wait_for_line("reconnecting in ", 30)
                guest.run("ping", "-n", "-c", "5", "-i", "0.2", "-W", "1", target, check=False)
            finish(client)
        finally:
            if client.process.poll() is None:
                client.kill()
        assert attempts[0].leaks == [], f"{len(attempts[0].leaks)} packets leaked:\n{leak_lines(attempts)}"


def test_a_crashed_client_leaves_the_link_sealed_until_repair(softether, leak_lab):
    """(g) The client dies (SIGKILL) while connected with the kill switch: the table stays and
    nothing leaks (fail closed); `sstp-vpn repair` removes it, and the probes go out again."""
    ns = leak_lab.client_ns
    with Scenario(leak_lab) as scenario:
        client = ClientProcess(ns, connect_args(softether, "--kill-switch", "connected"), softether.password)
        try:
            client.wait_for_line("connected:", 30)
        finally:
            client.kill()
        assert table_present(ns)
        with scenario.window("crashed, pings throughout") as crashed, chatter(ns, leak_lab.targets) as pings:
            results = scenario.assert_sealed("crashed")
            assert not results.anything_answered, results
        assert crashed[0].leaks == [], f"{len(crashed[0].leaks)} packets leaked:\n{leak_lines(crashed)}"
        print(f"\npings (sent, answered) after the crash: {pings}")
        assert all(sent >= 10 and answered == 0 for sent, answered in pings), pings
        repair = ns.run(*CLI, "repair", check=False)
        assert repair.returncode == 0, repair.stdout + repair.stderr
        print(f"sstp-vpn repair: {repair.stdout.strip()!r}")
        assert not table_present(ns)
        scenario.assert_open("after sstp-vpn repair")


def test_kill_switch_reconnects_to_a_server_named_in_the_local_dns(softether, leak_lab):
    """(h) The server's name is known to the local resolver only: with --kill-switch connected,
    which blocks that resolver, the client still reconnects after the server was killed (it keeps
    the addresses it connected to) and no DNS query for the name, nor anything else, leaks."""
    ns = leak_lab.client_ns
    args = [f"{SERVER_DNS_NAME}:{softether.port}", "--sni", softether.server_name, *connect_args(softether)[1:]]
    log = leak_lab.workdir / "local-dnsmasq.log"
    with Scenario(leak_lab) as scenario:
        client = ClientProcess(ns, [*args, "--kill-switch", "connected", "--reconnect"], softether.password)
        try:
            client.wait_for_line("connected:", 30)
            assert f"query[A] {SERVER_DNS_NAME}" in log.read_text()  # looked up there to connect
            asked_before = len(log.read_text())
            with scenario.window("kill switch on: server killed, restarted, reconnected") as whole:
                softether.stop(kill=True)
                client.wait_for_line("reconnecting in ", 30)
                softether.start(wait_for_certificate=False)
                client.wait_for_line("connected:", 60)
                scenario.assert_sealed("connected again")
            assert whole[0].leaks == [], f"{len(whole[0].leaks)} packets leaked:\n{leak_lines(whole)}"
            finish(client)
        finally:
            if client.process.poll() is None:
                client.kill()
    asked_since = log.read_text()[asked_before:]
    assert SERVER_DNS_NAME not in asked_since, asked_since
