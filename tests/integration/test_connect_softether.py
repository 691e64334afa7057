"""`sstp-vpn connect` against a real SoftEther server, in namespaces the fixtures create.

Every case checks what the user sees (the `connected:` line, the one sentence, the exit code) and
that the client namespace's addresses, routes and resolver are exactly as before.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.integration.client_process import ClientProcess, network_state
from tests.integration.softether import VIRTUAL_HOST

pytestmark = pytest.mark.realparts


def connect_args(server, *extra: str) -> list[str]:
    return [f"{server.server_name}:{server.port}", "--user", server.username, "--ca-file", str(server.ca_path), "--ifname", "sstptest0", *extra]


def ping(ns, address: str) -> subprocess.CompletedProcess:
    return ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", address, check=False)


def assert_single_failure(client: ClientProcess, code: int, *fragments: str) -> None:
    assert client.finish() == code, (client.lines, client.stderr)
    lines = [line for line in client.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not any(line.startswith("connected:") for line in client.lines)


def test_console_script_prints_version():
    result = subprocess.run(["sstp-vpn", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("sstp-vpn ")


def test_connect_ping_disconnect_restores_network(softether):
    ns = softether.client_ns
    before = network_state(ns)
    client = ClientProcess(ns, connect_args(softether), softether.password)
    line = client.wait_for_line("connected:")
    address = line.split(": ", 1)[1]
    assert address.startswith("198.18.30.")
    during = network_state(ns)
    assert "198.18.30.1" in during.resolv_conf
    assert any(r.get("dst") == "0.0.0.0/1" and r.get("dev") == "sstptest0" for r in during.routes)
    result = ping(ns, VIRTUAL_HOST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0% packet loss" in result.stdout
    client.interrupt(signal.SIGINT)
    assert client.finish() == 0, (client.lines, client.stderr)
    assert client.stderr == ""
    assert sum(line.startswith("connected:") for line in client.lines) == 1
    assert network_state(ns) == before


def test_sigterm_disconnects_cleanly(softether):
    ns = softether.client_ns
    before = network_state(ns)
    client = ClientProcess(ns, connect_args(softether), softether.password)
    client.wait_for_line("connected:")
    client.interrupt(signal.SIGTERM)
    assert client.finish() == 0, (client.lines, client.stderr)
    assert network_state(ns) == before


def test_split_tunnel_keeps_default_route(softether):
    ns = softether.client_ns
    before = network_state(ns)
    client = ClientProcess(ns, connect_args(softether, "--no-default-route"), softether.password)
    client.wait_for_line("connected:")
    during = network_state(ns)
    assert not any(r.get("dst") in ("0.0.0.0/1", "128.0.0.0/1") for r in during.routes)
    assert [r for r in during.routes if r.get("dst") == "default"] == [r for r in before.routes if r.get("dst") == "default"]
    assert ping(ns, VIRTUAL_HOST).returncode == 0
    client.interrupt()
    assert client.finish() == 0
    assert network_state(ns) == before


def test_extra_routes_enter_the_tunnel_and_own_dns_is_kept(softether):
    """Split tunnel plus one more network (198.18.31.0/24, beside the VPN's own 198.18.30.0/24)
    through the tunnel, with this machine's DNS servers kept."""
    ns = softether.client_ns
    before = network_state(ns)
    client = ClientProcess(ns, connect_args(softether, "--no-default-route", "--route", "198.18.31.0/24", "--no-vpn-dns"), softether.password)
    client.wait_for_line("connected:")
    during = network_state(ns)
    tunnel = next(r["dev"] for r in during.routes if r.get("dst") == "198.18.31.0/24")
    assert tunnel.startswith("sstp")
    assert json.loads(ns.run("ip", "-j", "route", "get", "198.18.31.7").stdout)[0]["dev"] == tunnel
    assert during.resolv_conf == before.resolv_conf  # the VPN offers 198.18.30.1; not taken, as asked
    assert ping(ns, VIRTUAL_HOST).returncode == 0
    client.interrupt()
    assert client.finish() == 0
    assert network_state(ns) == before


def test_wrong_password_exits_3(softether):
    before = network_state(softether.client_ns)
    client = ClientProcess(softether.client_ns, connect_args(softether), "not-the-password")
    assert_single_failure(client, 3, "refused the user name or password")
    assert network_state(softether.client_ns) == before


def test_certificate_for_another_name_exits_4(softether):
    with softether.serving("wrong-name"):
        client = ClientProcess(softether.client_ns, connect_args(softether), softether.password)
        assert_single_failure(client, 4, "other.test", "vpn.test")


def test_certificate_from_another_ca_exits_4(softether):
    with softether.serving("other-ca"):
        client = ClientProcess(softether.client_ns, connect_args(softether), softether.password)
        assert_single_failure(client, 4, "trusted")


def test_pin_mismatch_exits_4(softether):
    client = ClientProcess(softether.client_ns, connect_args(softether, "--pin-sha256", "00" * 32), softether.password)
    assert_single_failure(client, 4, "does not match")


def test_pin_match_connects(softether):
    client = ClientProcess(softether.client_ns, connect_args(softether, "--pin-sha256", softether.served_cert_sha256), softether.password)
    client.wait_for_line("connected:")
    client.interrupt()
    assert client.finish() == 0


def test_through_tinyproxy_with_basic_auth(softether, tinyproxy):
    ns = softether.client_ns
    before = network_state(ns)
    client = ClientProcess(
        ns,
        connect_args(softether, "--proxy", f"http://{tinyproxy.user}@{tinyproxy.host}:{tinyproxy.port}"),
        softether.password,
        env={"SSTP_VPN_PROXY_PASSWORD": tinyproxy.password},
    )
    client.wait_for_line("connected:")
    assert ping(ns, VIRTUAL_HOST).returncode == 0
    client.interrupt()
    assert client.finish() == 0
    assert f"CONNECT {softether.server_name}:{softether.port}" in tinyproxy.log_text()
    assert network_state(ns) == before


def test_wrong_proxy_password_exits_5(softether, tinyproxy):
    client = ClientProcess(
        softether.client_ns,
        connect_args(softether, "--proxy", f"http://{tinyproxy.user}@{tinyproxy.host}:{tinyproxy.port}"),
        softether.password,
        env={"SSTP_VPN_PROXY_PASSWORD": "wrong"},
    )
    assert_single_failure(client, 5, "proxy")


def test_dead_proxy_exits_5(softether, dead_proxy_address):
    client = ClientProcess(
        softether.client_ns, connect_args(softether, "--proxy", f"http://{dead_proxy_address.host}:{dead_proxy_address.port}"), softether.password
    )
    assert_single_failure(client, 5, "proxy")


def test_server_stopped_mid_session(softether):
    ns = softether.client_ns
    before = network_state(ns)
    client = ClientProcess(ns, connect_args(softether), softether.password)
    client.wait_for_line("connected:")
    softether.stop()
    code = client.finish()
    assert code in (5, 6), (code, client.lines, client.stderr)
    assert len(client.stderr.strip().splitlines()) == 1
    assert network_state(ns) == before


def test_frozen_server_detected_by_echo(softether):
    ns = softether.client_ns
    before = network_state(ns)
    client = ClientProcess(ns, connect_args(softether, "--keepalive", "2"), softether.password)
    client.wait_for_line("connected:")
    os.kill(softether.pid, signal.SIGSTOP)  # the TCP connection stays open, but nothing answers
    try:
        began = time.monotonic()
        assert client.finish(timeout=20) == 5, (client.lines, client.stderr)
        assert "stopped answering" in client.stderr
        assert time.monotonic() - began < 8
    finally:
        os.kill(softether.pid, signal.SIGCONT)
    assert network_state(ns) == before


def test_kill_9_then_next_start_repairs(softether):
    ns = softether.client_ns
    before = network_state(ns)
    client = ClientProcess(ns, connect_args(softether), softether.password)
    client.wait_for_line("connected:")
    client.kill()
    assert network_state(ns) != before  # routes and resolver were left behind
    second = ClientProcess(ns, connect_args(softether), softether.password)
    second.wait_for_line("Restored the network settings")
    second.wait_for_line("connected:")
    second.interrupt()
    assert second.finish() == 0
    assert network_state(ns) == before


# -- what the VPN's DHCP server sends after the connection is up (DHCPINFORM) -----------------------


def test_split_tunnel_adds_the_routes_the_dhcp_server_pushes(softether):
    ns = softether.client_ns
    before = network_state(ns)
    with softether.dhcp_pushing("corp.test", ["198.18.40.0/255.255.255.0/198.18.30.1"]):
        client = ClientProcess(ns, connect_args(softether, "--no-default-route"), softether.password)
        client.wait_for_line("connected:")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            routes = json.loads(ns.run("ip", "-j", "route", "show").stdout)
            if any(route.get("dst") == "198.18.40.0/24" for route in routes):
                break
            time.sleep(0.1)
        pushed = [route for route in routes if route.get("dst") == "198.18.40.0/24"]
        assert [route.get("dev") for route in pushed] == ["sstptest0"], routes
        assert network_state(ns).resolv_conf == before.resolv_conf  # split tunnel, plain file: left alone
        client.interrupt(signal.SIGINT)
        assert client.finish() == 0, (client.lines, client.stderr)
    assert "The VPN's DHCP server sent routes 198.18.40.0/24 and DNS domains corp.test." in client.lines
    assert network_state(ns) == before


def test_full_tunnel_puts_the_pushed_domain_first_in_the_search_list(softether):
    ns = softether.client_ns
    before = network_state(ns)
    with softether.dhcp_pushing("corp.test", ["198.18.40.0/255.255.255.0/198.18.30.1"]):
        client = ClientProcess(ns, connect_args(softether), softether.password)
        client.wait_for_line("connected:")
        deadline = time.monotonic() + 10
        while "corp.test" not in network_state(ns, settle_seconds=0).resolv_conf and time.monotonic() < deadline:
            time.sleep(0.1)
        resolv = network_state(ns, settle_seconds=0).resolv_conf
        search = [line.split()[1:] for line in resolv.splitlines() if line.startswith("search")]
        assert search and search[0][0] == "corp.test", resolv
        client.interrupt(signal.SIGINT)
        assert client.finish() == 0, (client.lines, client.stderr)
    assert network_state(ns) == before
    # The usual settings are back: the next connection hears of no pushed route.
    client = ClientProcess(ns, connect_args(softether, "--no-default-route", "-v"), softether.password)
    client.wait_for_line("connected:")
    time.sleep(1.5)
    client.interrupt(signal.SIGINT)
    assert client.finish() == 0
    assert not any("198.18.40.0/24" in line for line in client.lines), client.lines
