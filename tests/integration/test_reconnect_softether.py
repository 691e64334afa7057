"""`sstp-vpn connect --reconnect` against the real SoftEther server: it reconnects after the
server goes away, waits while the client has no route to the server, reconnects at once when
the route returns, and never loops on a refused password."""

from __future__ import annotations

import signal
import time

import pytest

from tests.integration.client_process import ClientProcess, network_state
from tests.integration.softether import SERVER_ADDRESS, VIRTUAL_HOST
from tests.integration.test_connect_softether import connect_args, ping

pytestmark = pytest.mark.realparts

BACKOFF_CAP = 60.0


def test_reconnects_after_the_server_and_the_route_come_back(softether):
    ns, link = softether.client_ns, softether.client_interface
    before = network_state(ns)
    client = ClientProcess(ns, connect_args(softether, "--reconnect"), softether.password)
    try:
        assert client.wait_for_line("connected:", 30).startswith("connected: 198.18.30.")

        softether.stop()
        line = client.wait_for_line("reconnecting in ", 30)
        assert line.split(": ", 1)[1]  # with the sentence of why

        ns.run("ip", "link", "set", link, "down")  # the route to the server goes with the link
        client.wait_for_line("waiting for a network connection", 10)

        softether.start(wait_for_certificate=False)  # its own check goes through the client namespace: no route yet
        attempts_before = sum(line.startswith("Connecting to ") for line in client.lines)
        started = time.monotonic()
        # link and default route back in one go, as a network manager would
        ns.run("ip", "-batch", "-", input=f"link set dev {link} up\nroute replace default via {SERVER_ADDRESS} dev {link}\n")
        client.wait_for_line("network is back, reconnecting", 10)
        assert client.wait_for_line("connected:", 20).startswith("connected: 198.18.30.")
        back_to_connected = time.monotonic() - started
        print(f"route back -> connected: {back_to_connected:.2f} s")
        assert back_to_connected < 5.0 < BACKOFF_CAP  # at once, not after the backoff's next delay
        # nothing was tried while there was no route
        assert sum(line.startswith("Connecting to ") for line in client.lines) == attempts_before + 1

        result = ping(ns, VIRTUAL_HOST)
        assert result.returncode == 0, result.stdout + result.stderr

        client.interrupt(signal.SIGINT)
        assert client.finish() == 0, (client.lines, client.stderr)
    finally:
        if client.process.poll() is None:
            client.kill()
        ns.run("ip", "link", "set", link, "up", check=False)
    assert client.stderr == ""
    assert sum(line.startswith("connected:") for line in client.lines) == 2
    assert network_state(ns) == before


def test_a_refused_password_ends_reconnecting_at_once(softether):
    ns = softether.client_ns
    before = network_state(ns)
    started = time.monotonic()
    client = ClientProcess(ns, connect_args(softether, "--reconnect"), "not-the-password")
    assert client.finish(30) == 3, (client.lines, client.stderr)
    assert time.monotonic() - started < 20
    lines = [line for line in client.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "password" in lines[0], lines
    assert sum(line.startswith("Connecting to ") for line in client.lines) == 1  # one attempt, no loop
    assert not any(line.startswith(("reconnecting", "connected:")) for line in client.lines)
    assert network_state(ns) == before
