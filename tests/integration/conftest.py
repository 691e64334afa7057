"""Fixtures for tests against a real SoftEther SSTP server and real HTTP proxies.

`softether` is session-scoped: one server for the whole run. A test may stop it or serve a wrong
certificate; after every test that uses it, it is put back (running, good certificate).
Proxies run in the client namespace and allow CONNECT to the server's port only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.softether import SoftEtherServer, locate_server_binary, locate_vpncmd
from tests.ntlm_proxy import NtlmProxy, SambaVerifier, start_squid_ntlm
from tests.proxies import DeadProxy, Proxy, dead_proxy, start_squid, start_tinyproxy
from tests.realparts import require_program, require_root

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def softether(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftEtherServer]:
    require_root("network namespaces and the SoftEther server's state directories")
    require_program("ip", "apt-get install iproute2")
    binary = locate_server_binary(REPO_ROOT)
    vpncmd = locate_vpncmd(binary)
    with SoftEtherServer(binary, vpncmd, tmp_path_factory.mktemp("softether")) as server:
        yield server


@pytest.fixture(autouse=True)
def _softether_back_to_default(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used `softether`, restart it / restore its certificate if needed."""
    server = request.getfixturevalue("softether") if "softether" in request.fixturenames else None
    yield
    if server is not None:
        server.ensure_default()


@pytest.fixture
def tinyproxy(softether: SoftEtherServer, tmp_path: Path) -> Iterator[Proxy]:
    """tinyproxy with BasicAuth on 127.0.0.1 in the client namespace (wrong password -> 401)."""
    require_program("tinyproxy", "apt-get install tinyproxy")
    proxy = start_tinyproxy(softether.client_ns, [softether.port], tmp_path)
    yield proxy
    proxy.stop()


@pytest.fixture
def squid(softether: SoftEtherServer, tmp_path: Path) -> Iterator[Proxy]:
    """squid with BasicAuth on 127.0.0.1 in the client namespace (wrong password -> 407)."""
    require_program("squid", "apt-get install squid")
    require_program("htpasswd", "apt-get install apache2-utils")
    proxy = start_squid(softether.client_ns, [softether.port], tmp_path)
    yield proxy
    proxy.stop()


@pytest.fixture
def dead_proxy_address(softether: SoftEtherServer) -> DeadProxy:
    """A proxy address in the client namespace where nothing listens."""
    return dead_proxy(softether.client_ns)


@pytest.fixture(scope="module")
def ntlm_verifier(softether: SoftEtherServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaVerifier]:
    """A real NTLM verifier in the client namespace (the exact setup: tests/ntlm_proxy.py's docstring).

    A private temp dir holds smb.conf (`server role = standalone server`, `passdb backend =
    tdbsam:<dir>/private/passdb.tdb`, private/lock/state/cache/pid/ncalrpc dirs in <dir>,
    `log level = 1 auth_audit:3`) and one user (`pdbedit -a -t`, password on stdin; its Unix
    account only in /etc/netns/<ns>/passwd). winbindd runs in the foreground as PID 1 of its own
    PID namespace, with <dir>/run bound over /run/samba in its mount namespace (libwbclient's fixed
    socket path). Removed afterwards: winbindd (by PID) and all it started, <dir>, the /etc/netns files.
    `.user`, `.password`, `.domain` (PROXYHOST), `.checks()`: winbindd's audit lines."""
    verifier = SambaVerifier(softether.client_ns, tmp_path_factory.mktemp("samba")).start()
    yield verifier
    verifier.stop()


@pytest.fixture(scope="module")
def ntlm_squid(softether: SoftEtherServer, ntlm_verifier: SambaVerifier, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NtlmProxy]:
    """squid asking for NTLM only (`auth_param ntlm program /usr/bin/ntlm_auth
    --configfile=<verifier's smb.conf> --helper-protocol=squid-2.5-ntlmssp`), so every answer is
    checked by `ntlm_verifier`'s winbindd; CONNECT to the server's port only. squid runs as PID 1
    of its own PID namespace with the verifier's /run/samba bind; stopped by PID, its private dir
    removed (access.log kept in the test's tmp dir). user/password: the verifier's account."""
    proxy = start_squid_ntlm(softether.client_ns, ntlm_verifier, [softether.port], tmp_path_factory.mktemp("squid-ntlm"))
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def corporate_squid(softether: SoftEtherServer, ntlm_verifier: SambaVerifier, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NtlmProxy]:
    """squid offering Negotiate (SPNEGO with NTLM inside: no Kerberos here), NTLM and Basic, in that
    order, all checked by `ntlm_verifier`; CONNECT to the server's port only."""
    proxy = start_squid_ntlm(
        softether.client_ns, ntlm_verifier, [softether.port], tmp_path_factory.mktemp("squid-corporate"), offer=("Negotiate", "NTLM", "Basic")
    )
    yield proxy
    proxy.stop()
