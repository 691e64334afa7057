"""NTLM proxy authentication checked by a real verifier: squid + Samba's ntlm_auth + winbindd.

First the verifier itself, with curl as the client (a lab of its own: namespace, TLS target,
Samba, squid); then the SSTP client through that squid to the SoftEther server.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.netns import Namespace
from tests.nsprobe import free_tcp_port, wait_for_tcp
from tests.ntlm_proxy import SambaVerifier, start_squid_ntlm
from tests.proxies import Proxy
from tests.realparts import require_program, require_root

pytestmark = pytest.mark.realparts


@dataclass
class Lab:
    ns: Namespace
    verifier: SambaVerifier
    squid: Proxy
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
