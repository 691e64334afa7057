"""`sstp-vpn diagnose` against the real SoftEther server: every step timed, exit 0 only when a
connection would be accepted."""

from __future__ import annotations

import os
import re

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
