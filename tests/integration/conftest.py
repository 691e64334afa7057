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
