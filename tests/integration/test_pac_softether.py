"""Proxy auto-config and WPAD against real parts, in the namespaces of the SoftEther fixture:
PAC files served by Python's http.server in the client namespace, a dead proxy (refused) and a
silent one (its packets dropped), tinyproxy as the proxy that works (in the server namespace on an
address of its own, 198.18.20.3, so the route target tells it from the server), squid asking for
credentials, and WPAD through the name wpad.corp.test in a namespace of its own (its /etc/hosts and
resolv.conf search list, bind-mounted by `ip netns exec`).

`sstp-vpn connect --profile` goes through the PAC's second proxy to SoftEther and pings through the
tunnel; the transport cases run `open_connection` inside the client namespace and measure what the
fall-through costs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration import client_process
from tests.integration.client_process import ClientProcess, network_state
from tests.integration.softether import SERVER_ADDRESS, SERVER_NAME, VIRTUAL_HOST
from tests.netns import Namespace, stop_process
from tests.nsprobe import free_tcp_port, wait_for_tcp
from tests.proxies import Proxy, dead_proxy, start_squid, start_tinyproxy
from tests.realparts import require_program, require_root

pytestmark = pytest.mark.realparts

PROXY_ADDRESS = "198.18.20.3"  # tinyproxy's own address in the server namespace
SILENT = "198.18.99.1"  # routed to the server namespace, which does not forward: SYNs vanish
STEP_TIMEOUT = 2.0  # the transport's per-step timeout in these tests
PAC_TIMEOUT = 2.0


def pac_js(answer: str) -> str:
    return f'function FindProxyForURL(url, host) {{\n  if (dnsDomainIs(host, ".test")) return "{answer}";\n  return "DIRECT";\n}}\n'


@dataclass
class PacSite:
    ns: Namespace
    folder: Path
    port: int
    log_path: Path

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def serve(self, name: str, text: str) -> str:
        (self.folder / name).write_text(text)
        return self.url(name)


def start_http_server(ns: Namespace, folder: Path, host: str, port: int, log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        process = ns.popen(
            sys.executable, "-m", "http.server", "--bind", host, str(port), "--directory", str(folder), stdout=log, stderr=subprocess.STDOUT
        )
    wait_for_tcp(ns, host, port, timeout=15)
    return process


@pytest.fixture
def site(softether, tmp_path: Path) -> Iterator[PacSite]:
    """http.server on 127.0.0.1 in the client namespace, serving tmp_path/site; stopped by its PID after the test."""
    folder = tmp_path / "site"
    folder.mkdir()
    ns = softether.client_ns
    port = free_tcp_port(ns, "127.0.0.1")
    log_path = tmp_path / "http.log"
    process = start_http_server(ns, folder, "127.0.0.1", port, log_path)
    yield PacSite(ns, folder, port, log_path)
    stop_process(process)  # now, not when the session's namespace goes


@pytest.fixture
def proxy_b(softether, tmp_path: Path) -> Iterator[Proxy]:
    """tinyproxy without authentication on 198.18.20.3 in the server namespace (it resolves vpn.test
    through that namespace's own hosts file, present only for the test)."""
    require_program("tinyproxy", "apt-get install tinyproxy")
    server_ns = softether.server_ns
    server_ns.run("ip", "addr", "add", f"{PROXY_ADDRESS}/24", "dev", softether.server_interface)
    hosts = server_ns.etc / "hosts"
    hosts.write_text(f"127.0.0.1\tlocalhost\n{SERVER_ADDRESS}\t{SERVER_NAME}\n")
    try:
        proxy = start_tinyproxy(server_ns, [softether.port], tmp_path, listen=PROXY_ADDRESS, auth=False)
        try:
            yield proxy
        finally:
            proxy.stop()
    finally:
        hosts.unlink()
        server_ns.run("ip", "addr", "del", f"{PROXY_ADDRESS}/24", "dev", softether.server_interface, check=False)


# ---------------------------------------------------------------------------------------------
# open_connection inside a namespace

_OPEN = r"""
import json, sys, time
from sstpvpn.client.pac import PacSource
from sstpvpn.client.proxy import ProxySettings
from sstpvpn.client.transport import TransportError, TransportSettings, open_connection
job = json.load(sys.stdin)
template = ProxySettings("", 0, job["user"], job["password"]) if job["user"] else None
settings = TransportSettings(host=job["host"], port=job["port"], ca_file=job["ca"], timeout=job["timeout"],
                             pac=PacSource(job["pac"], template, timeout=job["pac_timeout"]))
began = time.monotonic()
try:
    connection = open_connection(settings)
    out = {"ok": True, "route_target": str(connection.route_target), "decision": connection.proxy_decision,
           "proxy": connection.proxy.address if connection.proxy else None}
    connection.sock.close()
except TransportError as error:
    out = {"ok": False, "reason": error.failure.reason}
out["seconds"] = time.monotonic() - began
print(json.dumps(out))
"""


def open_in(ns: Namespace, softether, pac_url: str, user: str = "", password: str = "") -> dict:
    job = {
        "host": softether.server_name,
        "port": softether.port,
        "ca": str(softether.ca_path),
        "timeout": STEP_TIMEOUT,
        "pac": pac_url,
        "pac_timeout": PAC_TIMEOUT,
        "user": user,
        "password": password,  # on standard input, never on the command line
    }
    done = ns.run(sys.executable, "-c", _OPEN, input=json.dumps(job), check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_pac_direct_connects_directly(softether, site: PacSite) -> None:
    url = site.serve("direct.pac", pac_js("DIRECT"))
    result = open_in(site.ns, softether, url)
    assert result["ok"], result
    assert result["proxy"] is None
    assert result["route_target"] == SERVER_ADDRESS
    assert result["decision"] == f"PAC {url} → DIRECT"
    assert "GET /direct.pac" in site.log_path.read_text()


def test_refused_proxy_falls_through_to_the_next(softether, site: PacSite, proxy_b: Proxy) -> None:
    dead = dead_proxy(site.ns)
    url = site.serve("refused.pac", pac_js(f"PROXY {dead.host}:{dead.port}; PROXY {proxy_b.host}:{proxy_b.port}; DIRECT"))
    result = open_in(site.ns, softether, url)
    assert result["ok"], result
    assert result["proxy"] == f"{PROXY_ADDRESS}:{proxy_b.port}"
    assert result["route_target"] == PROXY_ADDRESS  # the host route outside the tunnel goes to the proxy that worked
    assert result["decision"] == (f"PAC {url} → PROXY {PROXY_ADDRESS}:{proxy_b.port} (PROXY {dead.host}:{dead.port}: refused the connection)")
    assert f"CONNECT {SERVER_NAME}:{softether.port}" in proxy_b.log_text()
    print(f"PAC, refused proxy then tinyproxy, to TLS up: {result['seconds']:.2f} s")


def test_silent_proxy_costs_one_step_timeout(softether, site: PacSite, proxy_b: Proxy) -> None:
    url = site.serve("silent.pac", pac_js(f"PROXY {SILENT}:3128; PROXY {proxy_b.host}:{proxy_b.port}"))
    result = open_in(site.ns, softether, url)
    assert result["ok"], result
    assert result["route_target"] == PROXY_ADDRESS
    assert result["decision"].endswith(f"(PROXY {SILENT}:3128: did not answer within 2 seconds)")
    assert STEP_TIMEOUT <= result["seconds"] < STEP_TIMEOUT + 3.0, result
    print(f"PAC, silent proxy then tinyproxy, to TLS up: {result['seconds']:.2f} s (step timeout {STEP_TIMEOUT:g} s)")


def test_every_way_dead_names_them_all(softether, site: PacSite) -> None:
    dead = dead_proxy(site.ns)
    url = site.serve("dead.pac", pac_js(f"PROXY {dead.host}:{dead.port}; PROXY {SILENT}:3128; PROXY nowhere.invalid:8080"))
    result = open_in(site.ns, softether, url)
    assert not result["ok"]
    assert result["reason"] == (
        f"No way to {SERVER_NAME}:{softether.port} that the proxy auto-config file {url} gives could be opened "
        f"(PROXY {dead.host}:{dead.port}: refused the connection; PROXY {SILENT}:3128: did not answer within 2 seconds; "
        "PROXY nowhere.invalid:8080: its name does not resolve): check your network connection, or ask the administrator "
        "of the proxy auto-config file."
    )


def test_a_proxy_that_answers_with_a_refusal_does_not_fall_through(softether, site: PacSite, tmp_path: Path) -> None:
    require_program("squid", "apt-get install squid")
    require_program("htpasswd", "apt-get install apache2-utils")
    squid = start_squid(site.ns, [softether.port], tmp_path)
    try:
        url = site.serve("auth.pac", pac_js(f"PROXY {squid.host}:{squid.port}; DIRECT"))
        without = open_in(site.ns, softether, url)
        assert not without["ok"]
        assert without["reason"] == (f"The proxy at {squid.host}:{squid.port} requires a user name and password: add them to the proxy settings.")
        wrong = open_in(site.ns, softether, url, squid.user, "not-the-password")
        assert not wrong["ok"] and "refused the user name or password" in wrong["reason"], wrong
        right = open_in(site.ns, softether, url, squid.user, squid.password)
        assert right["ok"] and right["proxy"] == f"{squid.host}:{squid.port}", right
    finally:
        squid.stop()


def test_broken_or_silent_pac_gives_its_sentence_within_the_time_box(softether, site: PacSite) -> None:
    url = site.serve("broken.pac", "function FindProxyForURL(url, host) { return 'PROXY a:1' + ; }\n")
    broken = open_in(site.ns, softether, url)
    assert not broken["ok"]
    assert broken["reason"].startswith(f"The proxy auto-config file {url} cannot be run (")
    assert broken["reason"].endswith("): ask its administrator to fix it, or choose another proxy setting.")

    url = site.serve("loop.pac", "function FindProxyForURL(url, host) { while (true) {} }\n")
    endless = open_in(site.ns, softether, url)
    assert endless["reason"] == (
        f"The proxy auto-config file {url} did not answer FindProxyForURL within 2 seconds: ask its administrator to check it, "
        "or choose another proxy setting."
    )
    assert PAC_TIMEOUT <= endless["seconds"] < PAC_TIMEOUT + 1.5, endless

    missing = open_in(site.ns, softether, site.url("missing.pac"))
    assert missing["reason"] == (
        f"The web server answered HTTP 404 File not found for the proxy auto-config file {site.url('missing.pac')}: check the PAC address."
    )

    # A web server that takes the connection and never answers.
    port = free_tcp_port(site.ns, "127.0.0.1")
    listener = site.ns.popen(
        sys.executable, "-c", f"import socket, time; s = socket.create_server(('127.0.0.1', {port})); c = s.accept(); time.sleep(60)"
    )
    try:
        wait_for_tcp(site.ns, "127.0.0.1", port, timeout=15)
        silent_url = f"http://127.0.0.1:{port}/proxy.pac"
        silent = open_in(site.ns, softether, silent_url)
        assert silent["reason"] == (
            f"The proxy auto-config file {silent_url} did not arrive within 2 seconds: check the PAC address and your network."
        )
        assert PAC_TIMEOUT <= silent["seconds"] < PAC_TIMEOUT + 1.0, silent
    finally:
        stop_process(listener)


# ---------------------------------------------------------------------------------------------
# The whole client: a saved PAC profile, through the second proxy, ping through the tunnel


def test_connect_with_a_pac_profile_through_the_second_proxy(softether, site: PacSite, proxy_b: Proxy, tmp_path: Path) -> None:
    ns = softether.client_ns
    dead = dead_proxy(ns)
    url = site.serve("proxy.pac", pac_js(f"PROXY {dead.host}:{dead.port}; PROXY {proxy_b.host}:{proxy_b.port}; DIRECT"))
    home = tmp_path / "home"
    env = {name: str(home / name.lower()) for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "XDG_CACHE_HOME", "XDG_DATA_HOME")}
    for folder in env.values():
        os.makedirs(folder, mode=0o700)
    added = ns.run(
        *client_process.CLI,
        "profiles",
        "add",
        "Office",
        f"{softether.server_name}:{softether.port}",
        "--user",
        softether.username,
        "--ca-file",
        str(softether.ca_path),
        "--proxy-pac",
        url,
        env={**os.environ, **env},
        check=False,
    )
    assert added.returncode == 0, added.stderr
    before = network_state(ns)
    began = time.monotonic()
    client = ClientProcess(ns, ["--profile", "Office", "--ifname", "sstptest0"], softether.password, env=env)
    try:
        client.wait_for_line("connected:", timeout=60)
        connected_after = time.monotonic() - began
        decision = f"PAC {url} → PROXY {PROXY_ADDRESS}:{proxy_b.port} (PROXY {dead.host}:{dead.port}: refused the connection)"
        assert decision in client.lines, client.lines
        assert f"CONNECT {SERVER_NAME}:{softether.port}" in proxy_b.log_text()
        # The proxy that worked stays reachable outside the tunnel.
        route = json.loads(ns.run("ip", "-j", "route", "get", PROXY_ADDRESS).stdout)[0]
        assert route["dev"] == softether.client_interface, route
        result = ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", VIRTUAL_HOST, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        client.interrupt()
        code = client.finish()
    assert code == 0, (client.lines, client.stderr)
    assert network_state(ns) == before
    print(f"sstp-vpn connect --profile (PAC, dead proxy, tinyproxy): connected after {connected_after:.2f} s")


# ---------------------------------------------------------------------------------------------
# WPAD through a DNS name


_DECIDE = r"""
import json, sys
from sstpvpn.client import pac
try:
    decision = pac.decide(pac.PacSource("", timeout=3.0), "vpn.test", 443)
    print(json.dumps({"ok": True, "url": decision.pac_url, "found_by": decision.found_by, "line": pac.describe(decision)}))
except pac.PacError as error:
    print(json.dumps({"ok": False, "reason": str(error)}))
"""


@pytest.fixture
def wpad_ns(tmp_path: Path) -> Iterator[tuple[Namespace, Path]]:
    require_root("network namespaces")
    require_program("ip", "apt-get install iproute2")
    with Namespace("sstpwpad") as ns:
        (ns.etc / "resolv.conf").write_text("nameserver 127.0.0.53\nsearch eu.corp.test\n")
        (ns.etc / "hosts").write_text("127.0.0.1\tlocalhost wpad.corp.test\n")
        yield ns, tmp_path


def test_wpad_finds_the_pac_file_through_the_search_domain(wpad_ns: tuple[Namespace, Path]) -> None:
    ns, tmp_path = wpad_ns
    folder = tmp_path / "wpad"
    folder.mkdir()
    (folder / "wpad.dat").write_text(pac_js("PROXY 127.0.0.1:3128; DIRECT"))
    log_path = tmp_path / "wpad-http.log"
    start_http_server(ns, folder, "127.0.0.1", 80, log_path)
    done = ns.run(sys.executable, "-c", _DECIDE, timeout=60)
    result = json.loads(done.stdout)
    # wpad.eu.corp.test does not resolve; devolution finds wpad.corp.test.
    assert result == {
        "ok": True,
        "url": "http://wpad.corp.test/wpad.dat",
        "found_by": "wpad-dns",
        "line": "WPAD (DNS) PAC http://wpad.corp.test/wpad.dat → PROXY 127.0.0.1:3128; DIRECT",
    }
    assert "GET /wpad.dat" in log_path.read_text()


def test_wpad_says_where_it_looked_when_nothing_answers(wpad_ns: tuple[Namespace, Path]) -> None:
    ns, _tmp_path = wpad_ns
    done = ns.run(sys.executable, "-c", _DECIDE, timeout=60)
    result = json.loads(done.stdout)
    assert result["ok"] is False
    assert result["reason"].startswith("No proxy auto-config file was found on this network within 3 seconds (WPAD looked at ")
    assert "http://wpad.eu.corp.test/wpad.dat, http://wpad.corp.test/wpad.dat" in result["reason"]
