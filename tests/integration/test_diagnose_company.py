"""`sstp-vpn diagnose` behind a company proxy, against the real SoftEther server: the Proxy choice
step shows what a PAC file (served by http.server in the client namespace) decided and which
candidate answered, a broken PAC file fails that step with its sentence, `--proxy system` says
where the system's proxy came from, and the Revocation step says what was checked (SoftEther's
certificate names no revocation service: "not checked", in hard mode too); `diagnose --profile`
checks a saved PAC profile as the editor's Test does."""

from __future__ import annotations

import os
import re
import time

import pytest

from tests.integration.client_process import CLI
from tests.integration.softether import SERVER_NAME
from tests.integration.test_pac_softether import PROXY_ADDRESS, PacSite, pac_js, proxy_b, site  # noqa: F401 - fixtures
from tests.proxies import Proxy, dead_proxy

pytestmark = pytest.mark.realparts


def diagnose(softether, *extra: str, env: dict[str, str] | None = None):
    return softether.client_ns.run(
        *CLI, "diagnose", f"{softether.server_name}:{softether.port}", "--ca-file", str(softether.ca_path), "--timeout", "2", *extra,
        check=False, env={**os.environ, **(env or {})},
    )  # fmt: skip


def step(output: str, state: str, name: str) -> list[str]:
    """The detail lines of the step `name` that ended `state` ("ok" or "FAILED")."""
    match = re.search(rf"^\s*{state}\s+{name} \(\d+ ms\)\n((?:        .*\n?)*)", output, re.M)
    assert match, (state, name, output)
    return [line.strip() for line in match.group(1).splitlines()]


def test_diagnose_shows_the_pac_decision_and_goes_the_way_found(softether, site: PacSite, proxy_b: Proxy) -> None:
    dead = dead_proxy(site.ns)
    url = site.serve("proxy.pac", pac_js(f"PROXY {dead.host}:{dead.port}; PROXY {proxy_b.host}:{proxy_b.port}; DIRECT"))
    began = time.monotonic()
    result = diagnose(softether, "--proxy-pac", url)
    seconds = time.monotonic() - began
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert step(out, "ok", "Proxy choice") == [
        f"PAC {url} → PROXY {PROXY_ADDRESS}:{proxy_b.port} (PROXY {dead.host}:{dead.port}: refused the connection)"
    ]
    assert step(out, "ok", "TCP") == [f"connected to {PROXY_ADDRESS}:{proxy_b.port} (the proxy)"]
    assert step(out, "ok", "Proxy")[0] == f"CONNECT {SERVER_NAME}:{softether.port}: 200 Connection established"
    revocation = step(out, "ok", "Revocation")
    assert revocation[-1] == "if revocation cannot be checked: connect and warn (soft)"
    assert all("not checked" in line for line in revocation[:-1]), revocation
    headers = [re.sub(r" \(\d+ ms\)$", "", line).split(maxsplit=1)[1] for line in out.splitlines() if re.match(r"\s+(ok|FAILED)  ", line)]
    assert headers == ["Proxy choice", "CA file", "DNS", "TCP", "Proxy", "TLS", "Certificate chain", "Name", "Trust", "Revocation", "SSTP"]
    assert out.rstrip().endswith(f"Result: SSTP VPN can reach the SSTP service at {SERVER_NAME}:{softether.port}.")
    print(f"diagnose with a PAC file (dead proxy, then tinyproxy): {seconds:.2f} s")


def test_diagnose_with_a_pac_file_that_is_not_there(softether, site: PacSite) -> None:
    missing = site.url("missing.pac")
    result = diagnose(softether, "--proxy-pac", missing)
    assert result.returncode == 5, result.stdout + result.stderr  # unreachable
    sentence = f"The web server answered HTTP 404 File not found for the proxy auto-config file {missing}: check the PAC address."
    assert step(result.stdout, "FAILED", "Proxy choice") == [sentence]
    assert "DNS" not in result.stdout  # nothing after the failed step
    assert result.stdout.rstrip().endswith(f"Result: {sentence}")


def test_diagnose_says_where_the_systems_proxy_comes_from(softether, proxy_b: Proxy) -> None:
    result = diagnose(softether, "--proxy", "system", env={"https_proxy": f"http://{proxy_b.host}:{proxy_b.port}", "no_proxy": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert step(result.stdout, "ok", "Proxy choice") == [f"System proxy (the environment): {PROXY_ADDRESS}:{proxy_b.port}."]
    assert step(result.stdout, "ok", "Proxy")[0] == f"CONNECT {SERVER_NAME}:{softether.port}: 200 Connection established"


def test_hard_revocation_passes_a_certificate_without_revocation_service(softether) -> None:
    result = diagnose(softether, "--revocation", "hard")
    assert result.returncode == 0, result.stdout + result.stderr
    revocation = step(result.stdout, "ok", "Revocation")
    assert revocation[-1] == "if revocation cannot be checked: refuse to connect (hard)"
    assert all("not checked" in line for line in revocation[:-1]), revocation


def test_diagnose_a_saved_pac_profile(softether, site: PacSite, proxy_b: Proxy, tmp_path) -> None:
    url = site.serve("office.pac", pac_js(f"PROXY {proxy_b.host}:{proxy_b.port}"))
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    ns = softether.client_ns
    added = ns.run(
        *CLI, "profiles", "add", "Office", f"{softether.server_name}:{softether.port}", "--user", softether.username,
        "--ca-file", str(softether.ca_path), "--proxy-pac", url, "--revocation", "hard", env=env, check=False,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    result = ns.run(*CLI, "diagnose", "--profile", "Office", env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert step(result.stdout, "ok", "Proxy choice") == [f"PAC {url} → PROXY {PROXY_ADDRESS}:{proxy_b.port}"]
    assert step(result.stdout, "ok", "Revocation")[-1] == "if revocation cannot be checked: refuse to connect (hard)"
    mixed = ns.run(*CLI, "diagnose", "--profile", "Office", "--proxy", "system", env=env, check=False)
    assert mixed.returncode == 2 and "leave out --proxy." in mixed.stderr, mixed.stderr
