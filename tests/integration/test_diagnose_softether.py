"""`sstp-vpn diagnose` against the real SoftEther server: every step timed, exit 0 only when a
connection would be accepted."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.integration.client_process import CLI

pytestmark = pytest.mark.realparts


def diagnose(server, *extra: str):
    return server.client_ns.run(*CLI, "diagnose", f"{server.server_name}:{server.port}", "--ca-file", str(server.ca_path), *extra, check=False)


def test_diagnose_healthy_server(softether):
    result = diagnose(softether)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in ("DNS", "TCP", "TLS", "Certificate chain", "Name", "Trust", "SSTP"):
        assert re.search(rf"^\s+ok\s+{step} \(\d+ ms\)$", out, re.M), (step, out)
    assert softether.served_cert_sha256.lower() in out  # the SHA-256 thumbprint, netsh style
    assert "198.18.20.1" in out
    assert "200" in out


def test_diagnose_wrong_name_exits_4(softether):
    with softether.serving("wrong-name"):
        result = diagnose(softether)
    assert result.returncode == 4, result.stdout + result.stderr
    assert re.search(r"FAILED\s+Name", result.stdout)
    assert "other.test" in result.stdout


def test_diagnose_proxy_without_password_exits_5(softether, tinyproxy):
    result = diagnose(softether, "--proxy", f"http://{tinyproxy.user}@{tinyproxy.host}:{tinyproxy.port}")
    # No password given: the proxy's 407 is reported as its own step, exit 5.
    assert result.returncode == 5, result.stdout + result.stderr
    assert re.search(r"FAILED\s+Proxy", result.stdout)


def test_diagnose_through_proxy_with_password(softether, tinyproxy):
    result = softether.client_ns.run(
        *CLI,
        "diagnose",
        f"{softether.server_name}:{softether.port}",
        "--ca-file",
        str(softether.ca_path),
        "--proxy",
        f"http://{tinyproxy.user}@{tinyproxy.host}:{tinyproxy.port}",
        check=False,
        env={**os.environ, "SSTP_VPN_PROXY_PASSWORD": tinyproxy.password},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^\s+ok\s+Proxy", result.stdout, re.M)


def machine_state(ns) -> tuple[str, str, str]:
    """The client namespace's links, routes and resolver configuration: what a sign-in must not change."""
    links = ns.run("ip", "-o", "link", "show").stdout
    # IPv4 routes of every table, and IPv6 ones but those the kernel adds by itself once a fresh
    # veth's link-local address is through duplicate address detection (timing, not us).
    routes = ns.run("ip", "-4", "route", "show", "table", "all").stdout.splitlines()
    routes += [
        line for line in ns.run("ip", "-6", "route", "show", "table", "all").stdout.splitlines() if "fe80::" not in line and "ff00::" not in line
    ]
    resolv = Path("/etc/resolv.conf").read_text() if Path("/etc/resolv.conf").exists() else ""
    return links, "\n".join(routes), resolv


def diagnose_sign_in(server, password: str):
    return server.client_ns.run(
        *CLI,
        "diagnose",
        f"{server.server_name}:{server.port}",
        "--ca-file",
        str(server.ca_path),
        "--user",
        server.username,
        "--password-stdin",
        check=False,
        input=password + "\n",
    )


def test_diagnose_signs_in_and_out_without_changing_the_machine(softether):
    before = machine_state(softether.client_ns)
    result = diagnose_sign_in(softether, softether.password)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^\s+ok\s+SSTP \(\d+ ms\)$", result.stdout, re.M), result.stdout
    assert re.search(r"^\s+ok\s+Sign-in \(\d+ ms\)$", result.stdout, re.M), result.stdout
    signed_in = rf"^Result: Signed in as {re.escape(softether.username)} with \S+; disconnected before any network change\.$"
    assert re.search(signed_in, result.stdout, re.M), result.stdout
    assert softether.password not in result.stdout + result.stderr
    assert machine_state(softether.client_ns) == before  # no tunnel device, route or DNS change


def test_diagnose_wrong_password_is_refused_exit_3(softether):
    before = machine_state(softether.client_ns)
    result = diagnose_sign_in(softether, "not-" + softether.password)
    assert result.returncode == 3, result.stdout + result.stderr
    assert re.search(r"FAILED\s+Sign-in", result.stdout)
    assert "Result: The server refused the user name or password." in result.stdout
    assert softether.password not in result.stdout + result.stderr
    assert machine_state(softether.client_ns) == before
