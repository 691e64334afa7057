"""NTLM proxy authentication checked by a real verifier: squid + Samba's ntlm_auth + winbindd.

First the verifier itself, with curl as the client (a lab of its own: namespace, TLS target,
Samba, squid); then the SSTP client through that squid to the SoftEther server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.client_process import CLI, ClientProcess, network_state
from tests.integration.softether import VIRTUAL_HOST
from tests.netns import Namespace
from tests.nsprobe import free_tcp_port, wait_for_tcp
from tests.ntlm_proxy import NtlmProxy, SambaVerifier, start_squid_ntlm
from tests.proxies import Proxy
from tests.realparts import require_program, require_root

pytestmark = pytest.mark.realparts

NO_TICKET = {"KRB5CCNAME": "FILE:/nonexistent/krb5cc"}  # no Kerberos ticket, whatever the machine has


@dataclass
class Lab:
    ns: Namespace
    verifier: SambaVerifier
    squid: NtlmProxy
    target_port: int
    ca: Path


@pytest.fixture(scope="module")
def ntlm_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A namespace of its own with an HTTPS target (openssl s_server), a standalone Samba's
    winbindd with one user and squid offering Negotiate, NTLM and Basic, all three checked by that
    winbindd through ntlm_auth. Everything is stopped by PID and removed afterwards (namespace,
    /etc/netns files, private directories)."""
    require_root("network namespaces, winbindd and squid")
    require_program("openssl", "apt-get install openssl")
    require_program("curl", "apt-get install curl")
    workdir = tmp_path_factory.mktemp("ntlm-lab")
    with Namespace("ntlmlab") as ns:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(workdir / "key.pem"), "-out", str(workdir / "cert.pem")]
            + ["-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True,
            capture_output=True,
        )
        target_port = free_tcp_port(ns, "127.0.0.1")
        ns.popen(
            "openssl",
            "s_server",
            "-accept",
            f"127.0.0.1:{target_port}",
            "-cert",
            str(workdir / "cert.pem"),
            "-key",
            str(workdir / "key.pem"),
            "-www",
            "-quiet",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_tcp(ns, "127.0.0.1", target_port)
        verifier = SambaVerifier(ns, workdir).start()
        try:
            squid = start_squid_ntlm(ns, verifier, [target_port], workdir, offer=("Negotiate", "NTLM", "Basic"))
            try:
                yield Lab(ns, verifier, squid, target_port, workdir / "cert.pem")
            finally:
                squid.stop()
        finally:
            verifier.stop()


def curl_through(lab: Lab, user: str, password: str, scheme: str = "--proxy-ntlm") -> tuple[int, int, float]:
    """(CONNECT status, HTTPS status, seconds) of curl with `scheme`; the credentials go through
    curl's config on standard input, never its command line."""
    result = lab.ns.run(
        "curl",
        "-sS",
        "-K",
        "-",
        scheme,
        "-p",
        "-x",
        lab.squid.url,
        "--cacert",
        str(lab.ca),
        f"https://localhost:{lab.target_port}/",
        "-o",
        "/dev/null",
        "-w",
        "%{http_connect} %{http_code} %{time_total}",
        input='proxy-user = "' + f"{user}:{password}".replace("\\", "\\\\").replace('"', '\\"') + '"\n',  # curl's quoting
        check=False,
    )
    connect, code, seconds = result.stdout.split()
    return int(connect), int(code), float(seconds)


def test_curl_right_password_tunnels_and_winbind_checked_it(ntlm_lab: Lab) -> None:
    lab = ntlm_lab
    before = len(lab.verifier.checks())
    assert curl_through(lab, lab.verifier.user, lab.verifier.password)[:2] == (200, 200)
    assert curl_through(lab, f"{lab.verifier.domain}\\{lab.verifier.user}", lab.verifier.password)[:2] == (200, 200)
    checks = lab.verifier.checks()[before:]
    assert [(c.client, c.domain, c.user, c.method, c.status) for c in checks] == [
        ("(ntlm_auth)", "", lab.verifier.user, "NTLMv2", "NT_STATUS_OK"),
        ("(ntlm_auth)", lab.verifier.domain, lab.verifier.user, "NTLMv2", "NT_STATUS_OK"),
    ]
    assert {lab.squid.helper_protocol(c.pid) for c in checks} == {"squid-2.5-ntlmssp"}  # squid's NTLM helper asked
    assert "TCP_TUNNEL/200 " in lab.squid.log_text()


def test_curl_wrong_password_is_refused_by_winbind(ntlm_lab: Lab) -> None:
    lab = ntlm_lab
    before = len(lab.verifier.checks())
    assert curl_through(lab, lab.verifier.user, lab.verifier.password + "x")[0] == 407
    assert curl_through(lab, "nosuchuser", lab.verifier.password)[0] == 407
    checks = lab.verifier.checks()[before:]
    assert [(c.client, c.user, c.status) for c in checks] == [
        ("(ntlm_auth)", lab.verifier.user, "NT_STATUS_WRONG_PASSWORD"),
        ("(ntlm_auth)", "nosuchuser", "NT_STATUS_NO_SUCH_USER"),
    ]


def test_curl_basic_is_checked_by_the_same_winbind(ntlm_lab: Lab) -> None:
    lab = ntlm_lab
    before = len(lab.verifier.checks("PAM_AUTH"))
    assert curl_through(lab, lab.verifier.user, lab.verifier.password, "--proxy-basic")[:2] == (200, 200)
    assert curl_through(lab, lab.verifier.user, "wrong", "--proxy-basic")[0] == 407
    checks = lab.verifier.checks("PAM_AUTH")[before:]
    assert [(c.user, c.method, c.status) for c in checks] == [
        (lab.verifier.user, "Plaintext", "NT_STATUS_OK"),
        (lab.verifier.user, "Plaintext", "NT_STATUS_WRONG_PASSWORD"),
    ]


@pytest.fixture(scope="module")
def one_scheme_squids(ntlm_lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, NtlmProxy]]:
    """Two more squids in the lab, offering only NTLM and only Basic (same verifier)."""
    workdir = tmp_path_factory.mktemp("one-scheme")
    squids: dict[str, NtlmProxy] = {}
    try:
        for scheme in ("NTLM", "Basic"):
            squids[scheme] = start_squid_ntlm(ntlm_lab.ns, ntlm_lab.verifier, [ntlm_lab.target_port], workdir, offer=(scheme,))
        yield squids
    finally:
        for squid in squids.values():
            squid.stop()


# Opens tunnels with the client's own proxy code (client/proxy.py open_tunnel), timing each from
# the TCP connect to the proxy until its 200; settings (with the password) come on stdin.
_TIME_TUNNELS = r"""
import json, socket, sys, time
from sstpvpn.client.proxy import ProxySettings, open_tunnel
job = json.loads(sys.stdin.read())
result = {}
for name, port in job["proxies"].items():
    settings = ProxySettings("127.0.0.1", port, job["user"], job["password"])
    def connect(port=port):
        return socket.create_connection(("127.0.0.1", port), 5)
    times, schemes = [], set()
    for _ in range(job["rounds"]):
        started = time.perf_counter()
        tunnel = open_tunnel(connect(), connect, settings, "localhost", job["target"], 5)
        times.append(time.perf_counter() - started)
        schemes.add(str(tunnel.scheme))
        tunnel.sock.close()
    result[name] = {"seconds": times, "schemes": sorted(schemes)}
print(json.dumps(result))
"""


def test_client_handshake_times_ntlm_negotiate_basic(ntlm_lab: Lab, one_scheme_squids: dict[str, NtlmProxy], record_property) -> None:
    """The client's own handshake against each squid, 6 tunnels each: which scheme it used, that
    winbindd checked every one, and how long it took (the first includes loading pyspnego)."""
    lab, rounds = ntlm_lab, 6
    ports = {"Negotiate+NTLM+Basic": lab.squid.port, "NTLM": one_scheme_squids["NTLM"].port, "Basic": one_scheme_squids["Basic"].port}
    ntlm_before, basic_before = len(lab.verifier.checks()), len(lab.verifier.checks("PAM_AUTH"))
    job = {"proxies": ports, "user": lab.verifier.user, "password": lab.verifier.password, "target": lab.target_port, "rounds": rounds}
    result = lab.ns.run(sys.executable, "-c", _TIME_TUNNELS, input=json.dumps(job), check=False, env={**os.environ, **NO_TICKET})
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    assert {name: m["schemes"] for name, m in measured.items()} == {"Negotiate+NTLM+Basic": ["Negotiate"], "NTLM": ["NTLM"], "Basic": ["Basic"]}
    # Every tunnel was checked by winbindd: 2 x rounds NTLM answers (inside Negotiate and plain),
    # and the Basic ones (squid caches a Basic verdict for a while, so at least one).
    ntlm_checks = lab.verifier.checks()[ntlm_before:]
    assert [c.status for c in ntlm_checks] == ["NT_STATUS_OK"] * (2 * rounds)
    # In the order asked: the corporate squid's Negotiate helper, then the NTLM-only squid's helper.
    assert {lab.squid.helper_protocol(c.pid) for c in ntlm_checks[:rounds]} == {"gss-spnego"}
    assert {one_scheme_squids["NTLM"].helper_protocol(c.pid) for c in ntlm_checks[rounds:]} == {"squid-2.5-ntlmssp"}
    assert len(lab.verifier.checks("PAM_AUTH")[basic_before:]) >= 1
    summary = {
        name: {"first_ms": round(m["seconds"][0] * 1000, 1), "median_ms": round(statistics.median(m["seconds"][1:]) * 1000, 1)}
        for name, m in measured.items()
    }
    record_property("client_handshake_ms", summary)
    print(summary)
    for name, times in summary.items():
        assert times["median_ms"] < 500, (name, summary)  # three round trips on loopback and two winbindd checks


_BASIC_FORBIDDEN = r"""
import json, socket, sys
from sstpvpn.client.proxy import ProxyError, ProxySettings, open_tunnel
job = json.loads(sys.stdin.read())
settings = ProxySettings("127.0.0.1", job["port"], job["user"], job["password"], allow_basic=False)
def connect():
    return socket.create_connection(("127.0.0.1", job["port"]), 5)
try:
    open_tunnel(connect(), connect, settings, "localhost", job["target"], 5)
except ProxyError as error:
    print(error.failure.reason)
"""


def test_basic_forbidden_never_reaches_the_verifier(ntlm_lab: Lab, one_scheme_squids: dict[str, NtlmProxy]) -> None:
    """A Basic-only proxy and a profile that forbids Basic: the client says so and sends nothing;
    winbindd sees no check at all."""
    lab, squid = ntlm_lab, one_scheme_squids["Basic"]
    basic_before, logged = len(lab.verifier.checks("PAM_AUTH")), len(squid.log_text().splitlines())
    job = {"port": squid.port, "user": lab.verifier.user, "password": lab.verifier.password, "target": lab.target_port}
    result = lab.ns.run(sys.executable, "-c", _BASIC_FORBIDDEN, input=json.dumps(job), check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"The proxy at 127.0.0.1:{squid.port} accepts only Basic authentication, which sends the password readable by anyone on the way "
        "to the proxy, and the proxy settings forbid it: allow Basic in the proxy settings if you trust this network, "
        "or ask the proxy's administrator for NTLM or Negotiate."
    )
    # Nothing was checked by winbindd, and squid saw only the unauthenticated CONNECT (squid
    # caches Basic verdicts, so its log is what shows that no password was sent).
    assert lab.verifier.checks("PAM_AUTH")[basic_before:] == []
    new_lines = squid.log_text().splitlines()[logged:]
    assert len(new_lines) == 1 and "TCP_DENIED/407" in new_lines[0] and lab.verifier.user not in new_lines[0], new_lines


# ---------------------------------------------------------------------------------------------
# The SSTP client through squid with NTLM, to the SoftEther server (tests/integration/conftest.py:
# ntlm_verifier, ntlm_squid, corporate_squid, all in the client namespace)


def connect_args(server, *extra: str) -> list[str]:
    return [f"{server.server_name}:{server.port}", "--user", server.username, "--ca-file", str(server.ca_path), "--ifname", "sstptest0", *extra]


def proxy_url(proxy: Proxy, user: str | None = None) -> str:
    return f"http://{urllib.parse.quote(user or proxy.user, safe='')}@{proxy.host}:{proxy.port}"


def diagnose(server, proxy: Proxy, password: str, user: str | None = None) -> subprocess.CompletedProcess:
    return server.client_ns.run(
        *CLI,
        "diagnose",
        f"{server.server_name}:{server.port}",
        "--ca-file",
        str(server.ca_path),
        "--proxy",
        proxy_url(proxy, user),
        check=False,
        env={**os.environ, **NO_TICKET, "SSTP_VPN_PROXY_PASSWORD": password},
    )


def proxy_step_ms(output: str) -> int:
    found = re.search(r"^\s+ok\s+Proxy \((\d+) ms\)$", output, re.M)
    assert found, output
    return int(found.group(1))


def ntlm_refused(proxy: Proxy, user: str) -> str:
    """The client's sentence when the proxy refuses its NTLM answer (client/proxy.py)."""
    return (
        f"The proxy at {proxy.host}:{proxy.port} refused the NTLM sign-in as {user}: "
        "check the proxy user name (DOMAIN\\user or user) and password in the proxy settings."
    )


def tunnel_lines(proxy: Proxy, server) -> list[str]:
    return [line for line in proxy.log_text().splitlines() if "TCP_TUNNEL/200" in line and f"CONNECT {server.server_name}:{server.port} " in line]


def test_connect_through_squid_with_ntlm(softether, ntlm_squid: NtlmProxy, ntlm_verifier: SambaVerifier, record_property) -> None:
    ns = softether.client_ns
    before = network_state(ns)
    checked = len(ntlm_verifier.checks())
    started = time.monotonic()
    env = {**NO_TICKET, "SSTP_VPN_PROXY_PASSWORD": ntlm_squid.password}
    client = ClientProcess(ns, connect_args(softether, "--proxy", proxy_url(ntlm_squid)), softether.password, env=env)
    client.wait_for_line("connected:")
    record_property("seconds_to_connected_through_ntlm_squid", round(time.monotonic() - started, 3))
    assert ns.run("ping", "-c", "2", "-i", "0.2", "-W", "2", VIRTUAL_HOST, check=False).returncode == 0
    client.interrupt(signal.SIGINT)
    assert client.finish() == 0, (client.lines, client.stderr)
    assert client.stderr == ""
    checks = ntlm_verifier.checks()[checked:]
    assert [(c.client, c.domain, c.user, c.method, c.status) for c in checks] == [("(ntlm_auth)", "", ntlm_verifier.user, "NTLMv2", "NT_STATUS_OK")]
    assert ntlm_squid.helper_protocol(checks[0].pid) == "squid-2.5-ntlmssp"
    assert len(tunnel_lines(ntlm_squid, softether)) == 1
    assert network_state(ns) == before


def test_wrong_ntlm_password_is_refused_by_winbind(softether, ntlm_squid: NtlmProxy, ntlm_verifier: SambaVerifier) -> None:
    ns = softether.client_ns
    before = network_state(ns)
    checked = len(ntlm_verifier.checks())
    env = {**NO_TICKET, "SSTP_VPN_PROXY_PASSWORD": "not-the-password"}
    client = ClientProcess(ns, connect_args(softether, "--proxy", proxy_url(ntlm_squid)), softether.password, env=env)
    assert client.finish() == 5, (client.lines, client.stderr)
    assert [line for line in client.stderr.splitlines() if line.strip()] == ["sstp-vpn: " + ntlm_refused(ntlm_squid, ntlm_verifier.user)]
    assert not any(line.startswith("connected:") for line in client.lines)
    # The refusal is Samba's: winbindd checked the NTLMv2 answer and found the password wrong.
    checks = ntlm_verifier.checks()[checked:]
    assert [(c.client, c.user, c.method, c.status) for c in checks] == [("(ntlm_auth)", ntlm_verifier.user, "NTLMv2", "NT_STATUS_WRONG_PASSWORD")]
    assert ntlm_squid.helper_protocol(checks[0].pid) == "squid-2.5-ntlmssp"
    assert "ntlm_fake_auth" not in (ntlm_squid.log_path.parent / "squid.conf").read_text()
    assert network_state(ns) == before


def test_diagnose_through_squid_with_ntlm_times_the_handshake(softether, ntlm_squid: NtlmProxy, ntlm_verifier: SambaVerifier, record_property):
    checked = len(ntlm_verifier.checks())
    timings = []
    for user in (ntlm_verifier.user, f"{ntlm_verifier.domain}\\{ntlm_verifier.user}"):
        result = diagnose(softether, ntlm_squid, ntlm_squid.password, user)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"authenticated as {user} with NTLM\n" in result.stdout, result.stdout
        timings.append(proxy_step_ms(result.stdout))
    record_property("ntlm_proxy_step_ms", timings)
    # Three round trips to squid, two to winbindd: well under a second even on a busy 2-core VM.
    assert max(timings) < 1000, timings
    checks = ntlm_verifier.checks()[checked:]
    assert [(c.domain, c.user, c.status) for c in checks] == [
        ("", ntlm_verifier.user, "NT_STATUS_OK"),
        (ntlm_verifier.domain, ntlm_verifier.user, "NT_STATUS_OK"),
    ]


def test_diagnose_wrong_ntlm_password_fails_the_proxy_step(softether, ntlm_squid: NtlmProxy, ntlm_verifier: SambaVerifier) -> None:
    checked = len(ntlm_verifier.checks())
    result = diagnose(softether, ntlm_squid, "not-the-password")
    assert result.returncode == 5, result.stdout + result.stderr
    assert re.search(r"FAILED\s+Proxy", result.stdout), result.stdout
    assert ntlm_refused(ntlm_squid, ntlm_verifier.user) in result.stdout
    assert [c.status for c in ntlm_verifier.checks()[checked:]] == ["NT_STATUS_WRONG_PASSWORD"]


def test_corporate_proxy_gets_negotiate_with_ntlm_inside_never_basic(softether, corporate_squid: NtlmProxy, ntlm_verifier: SambaVerifier) -> None:
    """squid offers Negotiate, NTLM and Basic; without a Kerberos ticket the client answers
    Negotiate with NTLM inside, and the password never goes out as Basic."""
    basic_before, ntlm_before = len(ntlm_verifier.checks("PAM_AUTH")), len(ntlm_verifier.checks())
    result = diagnose(softether, corporate_squid, corporate_squid.password)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"authenticated as {ntlm_verifier.user} with Negotiate (NTLM)\n" in result.stdout, result.stdout
    checks = ntlm_verifier.checks()[ntlm_before:]
    assert [(c.user, c.method, c.status) for c in checks] == [(ntlm_verifier.user, "NTLMv2", "NT_STATUS_OK")]
    assert corporate_squid.helper_protocol(checks[0].pid) == "gss-spnego"  # squid's Negotiate helper asked winbindd
    assert ntlm_verifier.checks("PAM_AUTH")[basic_before:] == []
    wrong = diagnose(softether, corporate_squid, "not-the-password")
    assert wrong.returncode == 5, wrong.stdout + wrong.stderr
    assert (
        f"The proxy at {corporate_squid.host}:{corporate_squid.port} refused the NTLM sign-in (inside Negotiate) as {ntlm_verifier.user}: "
        "check the proxy user name (DOMAIN\\user or user) and password in the proxy settings, "
        "or sign in to the domain (or run kinit) to use Kerberos."
    ) in wrong.stdout
    assert [c.status for c in ntlm_verifier.checks()[ntlm_before + 1 :]] == ["NT_STATUS_WRONG_PASSWORD"]
    assert ntlm_verifier.checks("PAM_AUTH")[basic_before:] == []
