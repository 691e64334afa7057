"""The kill switch's lifetime with `sstp-vpn connect` against the real SoftEther server: the
nftables table `inet sstpvpn` is in the client namespace while the session runs (from the first
"connected", or with 'always' from before the first packet to the server), stays while
reconnecting, and is gone after the command's end, with the namespace's network as before.
(What it lets through is tests/integration/test_leaks_softether.py's.)"""

from __future__ import annotations

import signal

import pytest

from tests.integration.client_process import ClientProcess, network_state
from tests.integration.softether import VIRTUAL_HOST
from tests.integration.test_connect_softether import connect_args, ping
from tests.integration.test_unprivileged_softether import helper, unprivileged_client  # noqa: F401 - helper: the fixture
from tests.realparts import require_program

pytestmark = pytest.mark.realparts

TABLE = "table inet sstpvpn"


def tables(ns) -> list[str]:
    return ns.run("nft", "list", "tables").stdout.splitlines()


def index_of(lines: list[str], prefix: str) -> int:
    return next(index for index, line in enumerate(lines) if line.startswith(prefix))


@pytest.mark.parametrize("mode", ["connected", "always"])
def test_the_table_lives_as_long_as_the_session(softether, mode: str) -> None:
    require_program("nft", "apt-get install nftables")
    ns = softether.client_ns
    before = network_state(ns)
    assert TABLE not in tables(ns)
    client = ClientProcess(ns, connect_args(softether, "--kill-switch", mode), softether.password)
    try:
        client.wait_for_line("Kill switch on:")
        client.wait_for_line("connected:")
        assert TABLE in tables(ns)
        lines = client.lines
        if mode == "always":
            assert index_of(lines, "Kill switch on:") < index_of(lines, "Connecting to ")  # before the first packet to the server
        else:
            assert index_of(lines, "Connecting to ") < index_of(lines, "Kill switch on:") < index_of(lines, "connected:")
        assert f":{softether.port} may pass." in lines[index_of(lines, "Kill switch on:")]
        result = ping(ns, VIRTUAL_HOST)  # the tunnel passes
        assert result.returncode == 0, result.stdout + result.stderr
        client.interrupt(signal.SIGINT)
        assert client.finish() == 0, (client.lines, client.stderr)
    finally:
        if client.process.poll() is None:
            client.kill()
    assert client.stderr == ""
    assert index_of(client.lines, "Kill switch off:") < index_of(client.lines, "disconnected")
    assert TABLE not in tables(ns)
    assert network_state(ns) == before


def test_the_table_stays_while_reconnecting(softether) -> None:
    require_program("nft", "apt-get install nftables")
    ns = softether.client_ns
    before = network_state(ns)
    client = ClientProcess(ns, connect_args(softether, "--kill-switch", "connected", "--reconnect"), softether.password)
    try:
        client.wait_for_line("connected:")
        softether.stop()
        client.wait_for_line("reconnecting in ", 30)
        assert TABLE in tables(ns)  # nothing leaks while the tunnel is down
        softether.start()
        client.wait_for_line("connected:", 90)  # the retry goes to the address the table allows, without DNS
        assert TABLE in tables(ns)
        assert sum(line.startswith("Kill switch on:") for line in client.lines) == 1
        assert ping(ns, VIRTUAL_HOST).returncode == 0  # the new tunnel passes
        client.interrupt(signal.SIGINT)
        assert client.finish() == 0, (client.lines, client.stderr)
    finally:
        if client.process.poll() is None:
            client.kill()
    assert TABLE not in tables(ns)
    assert network_state(ns) == before


def test_an_ordinary_users_kill_switch_goes_through_the_helper(softether, helper) -> None:
    """`connect --kill-switch always` as nobody: the helper (root) puts the table in place and
    takes it away; the command line says so as it does as root."""
    require_program("nft", "apt-get install nftables")
    ns = softether.client_ns
    before = network_state(ns)
    client = unprivileged_client(softether, helper, "--kill-switch", "always")
    try:
        client.wait_for_line("Kill switch on:")
        client.wait_for_line("connected:")
        assert TABLE in tables(ns)
        assert index_of(client.lines, "Kill switch on:") < index_of(client.lines, "Connecting to ")
        assert ping(ns, VIRTUAL_HOST).returncode == 0
        client.interrupt(signal.SIGINT)
        assert client.finish() == 0, (client.lines, client.stderr)
    finally:
        if client.process.poll() is None:
            client.kill()
    assert client.stderr == ""
    assert any(line.startswith("Kill switch off:") for line in client.lines)
    assert TABLE not in tables(ns)
    assert network_state(ns) == before
