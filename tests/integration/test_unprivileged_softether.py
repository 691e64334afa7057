"""`sstp-vpn connect` as the ordinary user nobody against the real SoftEther server: the engine and
TLS run unprivileged, and sstp-vpn-helper (root, in the same client namespace) creates the tunnel
interface, hands over its descriptor and applies/restores routes and DNS.
"""

from __future__ import annotations

import grp
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.client_process import ClientProcess, network_state
from tests.integration.softether import VIRTUAL_HOST
from tests.netns import Namespace
from tests.network_helper import RunningHelper, running_helper
from tests.unprivileged import NOBODY, as_nobody

pytestmark = pytest.mark.realparts

NOGROUP = grp.getgrgid(NOBODY.pw_gid).gr_name


class AsNobody:
    """A namespace whose popen() starts the command as nobody (for ClientProcess)."""

    def __init__(self, ns: Namespace) -> None:
        self.ns = ns

    def popen(self, *command: str, **kwargs):
        return self.ns.popen(*as_nobody(command), **kwargs)


@pytest.fixture
def helper(softether, tmp_path: Path) -> Iterator[RunningHelper]:
    with running_helper(softether.client_ns, NOGROUP, tmp_path) as running:
        yield running


def ping(ns: Namespace, address: str):
    return ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", address, check=False)


def unprivileged_client(softether, helper: RunningHelper, *extra: str, socket: Path | None = None) -> ClientProcess:
    args = [
        f"{softether.server_name}:{softether.port}",
        "--user",
        softether.username,
        "--ca-file",
        str(helper.share(softether.ca_path)),
        "--ifname",
        "sstp40",
        *extra,
    ]
    return ClientProcess(AsNobody(softether.client_ns), args, softether.password, env={"SSTP_VPN_HELPER_SOCKET": str(socket or helper.socket)})


def process_uid(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[2])  # effective


def test_unprivileged_connect_ping_disconnect_restores_network(softether, helper):
    ns = softether.client_ns
    before = network_state(ns)
    client = unprivileged_client(softether, helper, "--route", "198.18.31.0/24")
    line = client.wait_for_line("connected:")
    assert line.split(": ", 1)[1].startswith("198.18.30.")
    assert process_uid(client.process.pid) == NOBODY.pw_uid  # the engine and TLS are not root
    during = network_state(ns)
    assert "198.18.30.1" in during.resolv_conf
    assert any(r.get("dst") == "0.0.0.0/1" and r.get("dev") == "sstp40" for r in during.routes)
    assert any(r.get("dst") == "198.18.31.0/24" and r.get("dev") == "sstp40" for r in during.routes)
    result = ping(ns, VIRTUAL_HOST)
    assert result.returncode == 0 and " 0% packet loss" in result.stdout, result.stdout + result.stderr
    client.interrupt(signal.SIGINT)
    assert client.finish() == 0, (client.lines, client.stderr)
    assert client.stderr == ""
    deadline = time.monotonic() + 5  # the helper's process for this session finishes a moment later
    while network_state(ns, settle_seconds=0) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert network_state(ns) == before


def test_killed_unprivileged_client_is_restored_by_the_helper_at_once(softether, helper):
    ns = softether.client_ns
    before = network_state(ns)
    client = unprivileged_client(softether, helper)
    client.wait_for_line("connected:")
    client.kill()
    deadline = time.monotonic() + 5
    while network_state(ns, settle_seconds=0) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert network_state(ns) == before  # no second start needed


def test_without_the_helper_an_unprivileged_client_says_what_to_do(softether, helper):
    before = network_state(softether.client_ns)
    client = unprivileged_client(softether, helper, socket=helper.socket.with_name("absent.sock"))
    assert client.finish() == 1, (client.lines, client.stderr)
    lines = [line for line in client.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "sudo systemctl enable --now sstp-vpn-helper.socket" in lines[0], lines
    assert not any(line.startswith("connected:") for line in client.lines)
    assert network_state(softether.client_ns) == before


def test_routes_the_dhcp_server_pushes_reach_the_helper(softether, helper):
    ns = softether.client_ns
    before = network_state(ns)
    with softether.dhcp_pushing("corp.test", ["198.18.40.0/255.255.255.0/198.18.30.1", "198.18.20.0/255.255.255.128/198.18.30.1"]):  # half of the LAN
        client = unprivileged_client(softether, helper, "--no-default-route")
        client.wait_for_line("connected:")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            routes = network_state(ns, settle_seconds=0).routes
            if any(r.get("dst") == "198.18.40.0/24" for r in routes):
                break
            time.sleep(0.1)
        assert [r.get("dev") for r in routes if r.get("dst") == "198.18.40.0/24"] == ["sstp40"], routes
        assert not any(r.get("dst") == "198.18.20.0/25" for r in routes)  # the helper left it out
        client.interrupt(signal.SIGINT)
        assert client.finish() == 0, (client.lines, client.stderr)
    assert any(line.startswith("Left out the route 198.18.20.0/25 that the VPN's DHCP server sent") for line in client.lines), client.lines
    deadline = time.monotonic() + 5
    while network_state(ns, settle_seconds=0) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert network_state(ns) == before
