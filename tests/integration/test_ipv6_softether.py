"""IPv6 end to end against a real SoftEther server, in namespaces the fixtures create.

    client ns --veth-- server ns (vpnserver)   hub DEFAULT --tap bridge-- peer ns: radvd, a router
                                                                            fd18:30::2/64 (tap)
                                                                            fd18:31::1 (loopback)

SoftEther opens IPV6CP late (its own request comes after it has asked the hub for a router), so
the client gets its IPv6 link after "connected:": the link-local address from the identifier
IPV6CP agreed on, then a global address in the advertised prefix (SLAAC: the prefix and the same
identifier). ping6 to the peer goes through the tunnel; after disconnect the addresses, routes
and the tunnel's IPv6 settings are gone. Also SSTP itself over IPv6: the server at an IPv6
address of the namespaces' link. ULA prefixes only, only inside these namespaces.

The pings go to the router (its link-local address, and fd18:31::1 behind it), not to another
host in the advertised prefix: SoftEther 5.01.9674 cannot resolve such a neighbour for a PPP
client. IPCIPv6SendUnicast (src/Cedar/IPC.c) passes the solicited-node multicast address as the
*target* of its neighbour solicitation ("who has ff02::1:ff00:2", seen on the tap), which no host
answers, so it queues the packets for ever; towards the router it uses the advertisement's MAC.
"""

from __future__ import annotations

import contextlib
import grp
import ipaddress
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.client_process import ClientProcess, network_state
from tests.integration.softether import TAP_DEVICE, VIRTUAL_HOST
from tests.netns import Namespace, stop_process
from tests.network_helper import running_helper
from tests.realparts import require_program
from tests.unprivileged import NOBODY, as_nobody

pytestmark = pytest.mark.realparts

IFNAME = "sstp46"  # sstpN: a name the helper creates too
PREFIX = ipaddress.IPv6Network("fd18:30::/64")
PEER = "fd18:30::2"
ROUTED = ipaddress.IPv6Network("fd18:31::/64")  # behind the router: the peer's loopback holds fd18:31::1
ROUTED_HOST = "fd18:31::1"
DNS_V6, DOMAIN_V6 = "fd18:30::53", "corp.example"  # what the peer's DHCPv6 server names
RDNSS, DNSSL = "fd18:30::54", "lab.example"  # what its router advertisements name (RFC 8106)
SERVER_V6, CLIENT_V6 = "fd18:20::1", "fd18:20::2"
TAP = f"tap_{TAP_DEVICE}"
NOGROUP = grp.getgrgid(NOBODY.pw_gid).gr_name


@contextlib.contextmanager
def radvd(peer: Namespace, workdir: Path) -> Iterator[None]:
    """radvd on the tap in `peer`, advertising PREFIX (on-link, autonomous), RDNSS and DNSSL every 3-4 s."""
    require_program("radvd", "apt-get install radvd")
    config = workdir / "radvd.conf"
    config.write_text(
        f"interface {TAP} {{\n"
        "  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 4;\n"
        f"  prefix {PREFIX} {{ AdvOnLink on; AdvAutonomous on; }};\n"
        f"  RDNSS {RDNSS} {{ }};\n  DNSSL {DNSSL} {{ }};\n}};\n"
    )
    process = peer.popen(
        "radvd",
        "--nodaemon",
        "--config",
        str(config),
        "--pidfile",
        str(workdir / "radvd.pid"),
        "--logmethod",
        "stderr",
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "radvd.log", "wb"),  # noqa: SIM115 - closed with the process
    )
    try:
        time.sleep(0.3)
        assert process.poll() is None, (workdir / "radvd.log").read_text()
        yield
    finally:
        stop_process(process)


@contextlib.contextmanager
def dhcpv6_server(peer: Namespace, workdir: Path) -> Iterator[None]:
    """dnsmasq on the tap in `peer` as a stateless DHCPv6 server (no DNS, no RA of its own: radvd
    does those), naming DNS_V6 and DOMAIN_V6."""
    require_program("dnsmasq", "apt-get install dnsmasq-base")
    log = open(workdir / "dnsmasq.log", "wb")  # noqa: SIM115 - closed below
    process = peer.popen(
        "dnsmasq",
        "--no-daemon",
        "--conf-file=/dev/null",
        "--port=0",
        f"--interface={TAP}",
        "--bind-interfaces",
        f"--dhcp-range={PREFIX.network_address},ra-stateless",
        f"--dhcp-option=option6:dns-server,[{DNS_V6}]",
        f"--dhcp-option=option6:domain-search,{DOMAIN_V6}",
        f"--dhcp-leasefile={workdir / 'dnsmasq.leases'}",
        f"--pid-file={workdir / 'dnsmasq.pid'}",
        "--log-dhcp",
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        time.sleep(0.3)
        assert process.poll() is None, (workdir / "dnsmasq.log").read_text()
        yield
    finally:
        stop_process(process)
        log.close()


def ipv6_addresses(ns: Namespace, ifname: str) -> list[dict]:
    result = ns.run("ip", "-j", "-6", "addr", "show", "dev", ifname, check=False)
    if result.returncode != 0:
        return []
    return [info for link in json.loads(result.stdout or "[]") for info in link.get("addr_info", [])]


def wait_for_address(ns: Namespace, ifname: str, wanted, timeout: float) -> tuple[dict, float]:
    """The first IPv6 address on `ifname` for which `wanted(info)` holds, and when it was seen."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for info in ipv6_addresses(ns, ifname):
            if wanted(info) and not info.get("tentative"):
                return info, time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"no such IPv6 address on {ifname} within {timeout} s: {ipv6_addresses(ns, ifname)}")


def sysctl(ns: Namespace, ifname: str, name: str) -> str:
    return ns.run("cat", f"/proc/sys/net/ipv6/conf/{ifname}/{name}").stdout.strip()


def connect_args(server, host: str, *extra: str) -> list[str]:
    return [host, "--user", server.username, "--ca-file", str(server.ca_path), "--ifname", IFNAME, "--ipv6", *extra]


class AsNobody:
    """A namespace whose popen() starts the command as nobody (for ClientProcess)."""

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns

    def popen(self, *command: str, **kwargs):
        return self.ns.popen(*as_nobody(command), **kwargs)


@pytest.mark.parametrize(
    ("full_tunnel", "through_helper"), [(True, False), (False, False), (True, True)], ids=["full-tunnel", "split-tunnel", "full-tunnel-helper"]
)
def test_late_ipv6cp_gives_link_local_and_slaac_address_and_ping6_works(softether, tmp_path, full_tunnel, through_helper):
    """As root, or as nobody through sstp-vpn-helper (its "ipv6_link" and "ipv6_dns" requests)."""
    ns = softether.client_ns
    with softether.bridge_peer(ipv6=True) as peer, contextlib.ExitStack() as stack:
        peer.run("ip", "addr", "add", f"{PEER}/64", "dev", TAP, "nodad")
        peer.run("ip", "link", "set", "lo", "up")
        peer.run("ip", "addr", "add", f"{ROUTED_HOST}/128", "dev", "lo")
        router = next(info["local"] for info in ipv6_addresses(peer, TAP) if info["local"].startswith("fe80:"))
        with radvd(peer, tmp_path), dhcpv6_server(peer, tmp_path):
            before = network_state(ns)
            extra = () if full_tunnel else ("--no-default-route", "--route", str(ROUTED))
            args = connect_args(softether, f"{softether.server_name}:{softether.port}", *extra)
            if through_helper:
                helper = stack.enter_context(running_helper(ns, NOGROUP, tmp_path))
                args[args.index(str(softether.ca_path))] = str(helper.share(softether.ca_path))
                client = ClientProcess(AsNobody(ns), args, softether.password, env={"SSTP_VPN_HELPER_SOCKET": str(helper.socket)})
            else:
                client = ClientProcess(ns, args, softether.password)
            try:
                client.wait_for_line("connected:")
                connected = time.monotonic()
                link_local, link_local_at = wait_for_address(ns, IFNAME, lambda info: info["local"].startswith("fe80:"), 20)
                identifier = ipaddress.IPv6Address(link_local["local"]).packed[8:]
                assert [info["local"] for info in ipv6_addresses(ns, IFNAME) if info["local"].startswith("fe80:")] == [link_local["local"]]
                slaac, slaac_at = wait_for_address(ns, IFNAME, lambda info: ipaddress.IPv6Address(info["local"]) in PREFIX, 30)
                # The advertised prefix and the identifier IPV6CP agreed on (the link-local one's).
                assert ipaddress.IPv6Address(slaac["local"]).packed[8:] == identifier
                assert sysctl(ns, IFNAME, "accept_ra") == "2" and sysctl(ns, IFNAME, "accept_ra_defrtr") == "0"
                assert sysctl(ns, IFNAME, "addr_gen_mode") == "1"
                routes6 = json.loads(ns.run("ip", "-j", "-6", "route", "show").stdout)
                assert not any(route["dst"] == "default" and route.get("dev") == IFNAME for route in routes6), routes6
                assert any(route["dst"] == str(PREFIX) and route.get("dev") == IFNAME for route in routes6), routes6
                assert any(route["dst"] == "::/1" for route in routes6) == full_tunnel
                for target in (f"{router}%{IFNAME}", ROUTED_HOST):
                    # The first answer may take a moment (once in about ten runs the first pings right
                    # after the address came were lost): then three in a row, none lost.
                    ns.run("ping", "-6", "-c", "1", "-w", "5", target, check=False)
                    result = ns.run("ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", target, check=False)
                    assert result.returncode == 0, result.stdout + result.stderr
                    assert " 0% packet loss" in result.stdout
                assert ns.run("ping", "-c", "1", "-W", "2", VIRTUAL_HOST, check=False).returncode == 0  # IPv4 as before
                # Stateless DHCPv6 and the advertisement's RDNSS/DNSSL (client/core/dhcpv6) through
                # SoftEther: the peer's DNS servers and domains, after SecureNAT's IPv4 one in a full tunnel.
                for told in ("The VPN's DHCPv6 server named", "The VPN's router advertised"):  # in either order
                    client._checked = 0
                    client.wait_for_line(told, timeout=15)
                resolv = ns.run("cat", "/etc/resolv.conf").stdout
                if full_tunnel:
                    nameservers = [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver ")]
                    assert nameservers[0] == VIRTUAL_HOST and sorted(nameservers[1:]) == [DNS_V6, RDNSS], resolv
                    search = next(line.split()[1:] for line in resolv.splitlines() if line.startswith("search "))
                    assert {DOMAIN_V6, DNSSL} <= set(search), resolv
                else:
                    assert resolv == before.resolv_conf  # a plain resolv.conf cannot split DNS (as for IPv4)
            finally:
                client.interrupt(signal.SIGINT)
                code = client.finish()
            assert code == 0, (client.lines, client.stderr)
            assert ns.run("ip", "link", "show", IFNAME, check=False).returncode != 0
            assert network_state(ns) == before
    _record(
        ("full" if full_tunnel else "split") + ("-helper" if through_helper else ""),
        {"link_local_after_connected_s": round(link_local_at - connected, 3), "slaac_after_link_local_s": round(slaac_at - link_local_at, 3)},
    )


def test_sstp_over_an_ipv6_server_address(softether):
    """`sstp-vpn connect [fd18:20::1]:PORT`: TLS, SSTP and PPP over IPv6 to SoftEther's IPv6
    listener; the tunnel works and the namespace is as before afterwards."""
    ns = softether.client_ns
    softether.server_ns.run("ip", "addr", "add", f"{SERVER_V6}/64", "dev", softether.server_interface, "nodad")
    ns.run("ip", "addr", "add", f"{CLIENT_V6}/64", "dev", softether.client_interface, "nodad")
    try:
        before = network_state(ns)
        args = [arg for arg in connect_args(softether, f"[{SERVER_V6}]:{softether.port}", "--sni", softether.server_name) if arg != "--ipv6"]
        client = ClientProcess(ns, args, softether.password)
        try:
            began = time.monotonic()
            line = client.wait_for_line("connected:")
            _record("ipv6-server", {"connected_s": round(time.monotonic() - began, 3)})
            assert line.split(": ", 1)[1].startswith("198.18.30.")
            sockets = ns.run("ss", "-Htn", "state", "established").stdout
            assert f"[{SERVER_V6}]:{softether.port}" in sockets, sockets
            assert ns.run("ping", "-c", "2", "-i", "0.2", "-W", "2", VIRTUAL_HOST, check=False).returncode == 0
        finally:
            client.interrupt(signal.SIGINT)
            code = client.finish()
        assert code == 0, (client.lines, client.stderr)
        assert network_state(ns) == before
    finally:
        ns.run("ip", "addr", "del", f"{CLIENT_V6}/64", "dev", softether.client_interface, check=False)
        softether.server_ns.run("ip", "addr", "del", f"{SERVER_V6}/64", "dev", softether.server_interface, check=False)


def _record(name: str, values: dict) -> None:
    """The times measured, for the report (pytest -s shows them); nothing is asserted about them."""
    print(f"ipv6 timing {name}: {json.dumps(values)}")
