"""Roaming against the real SoftEther server: the client namespace gets two "physical" uplinks
to the server's namespace (the server's address is then behind a gateway on either), connects
with a full tunnel over the first, and mid-session the default route moves to the second.

- The first uplink stays up (cable plugged in beside Wi-Fi): the host route to the server
  follows to the second uplink. Where the network carries the old address over the new path
  (here: the client announces its ARP requests with the asking link's own address,
  arp_announce=2), the TCP connection survives and the session never drops. Where it does not
  (the default: the client's ARP request names the first uplink's address, and the server's
  namespace, where SoftEther turns arp_filter on, does not answer it), the connection dies and
  the session reconnects at once, not after the backoff's delay.
- The first uplink goes down with the move (Wi-Fi off): the connection's source address is on a
  dead link, so the session ends at once and reconnects over the second uplink, again without
  the backoff's delay.

Either way the network is exactly as before once the client has disconnected."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.integration.client_process import ClientProcess, NetworkState, network_state
from tests.integration.softether import SERVER_ADDRESS, VIRTUAL_HOST
from tests.integration.test_connect_softether import connect_args, ping
from tests.netns import Namespace, veth_pair

pytestmark = pytest.mark.realparts

FIRST_GATEWAY, FIRST_ADDRESS = "198.18.24.1", "198.18.24.2"
SECOND_GATEWAY, SECOND_ADDRESS = "198.18.25.1", "198.18.25.2"
FOLLOW_BOUND = 3.0  # seconds from the move to the host route on the new uplink (debounce 0.3 s)
RECONNECT_BOUND = 15.0  # seconds from the move to "connected:" again; the backoff would allow up to 60


@dataclass
class Uplinks:
    ns: Namespace
    first: str
    second: str

    def host_route(self) -> dict | None:
        routes = self.ns.run("ip", "-j", "-4", "route", "show", f"{SERVER_ADDRESS}/32").stdout
        found = json.loads(routes or "[]")
        return found[0] if found else None

    def wait_for_host_route(self, dev: str, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            route = self.host_route()
            if route is not None and route.get("dev") == dev:
                return time.monotonic() - started
            time.sleep(0.02)
        raise AssertionError(f"the host route to {SERVER_ADDRESS} is {self.host_route()}, not on {dev}, after {timeout} s")


@pytest.fixture
def uplinks(softether) -> Iterator[Uplinks]:
    """Two uplinks from the client namespace to the server's; the fixture's own link is down
    meanwhile, so the server's address is reached through a gateway (and needs a host route)."""
    ns = softether.client_ns
    first, first_peer = veth_pair(ns, FIRST_ADDRESS, softether.server_ns, FIRST_GATEWAY)
    second, second_peer = veth_pair(ns, SECOND_ADDRESS, softether.server_ns, SECOND_GATEWAY)
    try:
        ns.run("ip", "link", "set", softether.client_interface, "down")
        ns.run("ip", "route", "replace", "default", "via", FIRST_GATEWAY, "dev", first)
        yield Uplinks(ns, first, second)
    finally:
        for name in (first, second):
            ns.run("ip", "link", "del", name, check=False)
        ns.run("ip", "link", "set", softether.client_interface, "up")
        softether.ensure_default()


def same_network(ns: Namespace, before: NetworkState) -> bool:
    """The network as `before`, in any order (a link taken down and up again lists its routes anew)."""

    def canonical(state: NetworkState) -> tuple:
        return tuple(sorted(json.dumps(item, sort_keys=True) for item in items) for items in (state.addresses, state.routes, state.routes6)) + (
            state.resolv_conf,
        )

    return canonical(network_state(ns)) == canonical(before)


def connected_client(softether, uplinks: Uplinks) -> ClientProcess:
    client = ClientProcess(uplinks.ns, connect_args(softether, "--reconnect"), softether.password)
    assert client.wait_for_line("connected:", 30).startswith("connected: 198.18.30.")
    retries = [line for line in client.lines if line.startswith("reconnecting")]
    if retries:
        print(f"before the move, the first attempt was retried: {retries}")
    route = uplinks.host_route()
    assert route is not None and route["gateway"] == FIRST_GATEWAY and route["dev"] == uplinks.first, route
    result = ping(uplinks.ns, VIRTUAL_HOST)
    assert result.returncode == 0, result.stdout + result.stderr
    return client


def disconnect(client: ClientProcess) -> None:
    client.interrupt(signal.SIGINT)
    assert client.finish() == 0, (client.lines, client.stderr)
    assert client.stderr == ""


def reconnected_at_once(client: ClientProcess, moved: float, seen: int) -> tuple[float, float]:
    """Seconds from the move to the session's end and to "connected:" again; no backoff delay
    (`seen`: the client's lines before the move)."""
    ended = client.wait_for_line(("reconnecting now", "waiting for a network connection"), RECONNECT_BOUND)
    ended_seconds = time.monotonic() - moved
    assert client.wait_for_line("connected:", RECONNECT_BOUND).startswith("connected: 198.18.30.")
    connected_seconds = time.monotonic() - moved
    assert connected_seconds < RECONNECT_BOUND, (ended, client.lines)
    assert not any(line.startswith("reconnecting in ") for line in client.lines[seen:]), client.lines
    return ended_seconds, connected_seconds


@pytest.fixture
def arp_from_the_asking_link(uplinks):
    """ARP requests name the address of the link they are sent on (arp_announce=2), so the
    second uplink's gateway answers while the connection still has the first uplink's address."""
    ns = uplinks.ns
    keys = [f"net.ipv4.conf.{name}.arp_announce" for name in ("all", uplinks.first, uplinks.second)]
    before = [ns.run("sysctl", "-n", key).stdout.strip() for key in keys]
    ns.run("sysctl", "-qw", *(f"{key}=2" for key in keys))
    yield
    ns.run("sysctl", "-qw", *(f"{key}={value}" for key, value in zip(keys, before, strict=True)))


def test_a_second_uplink_takes_the_route_and_the_session_goes_on(softether, uplinks, arp_from_the_asking_link):
    ns = uplinks.ns
    before = network_state(ns)
    client = connected_client(softether, uplinks)
    try:
        seen = len(client.lines)
        ns.run("ip", "route", "replace", "default", "via", SECOND_GATEWAY, "dev", uplinks.second)  # the first stays up
        follow_seconds = uplinks.wait_for_host_route(uplinks.second, FOLLOW_BOUND)
        assert uplinks.host_route()["gateway"] == SECOND_GATEWAY
        for _ in range(2):  # now, and after the close watch that follows a change (the runner's ROAMING_PROBE_SECONDS)
            result = ping(ns, VIRTUAL_HOST)  # through the tunnel, over the same TCP connection
            assert result.returncode == 0, result.stdout + result.stderr
            time.sleep(16.0)
        print(f"machine-measured: move -> host route on the new uplink {follow_seconds:.2f} s; the session went on")
        disconnect(client)
    finally:
        if client.process.poll() is None:
            client.kill()
    assert sum(line.startswith("connected:") for line in client.lines[seen:]) == 0, client.lines  # never dropped
    assert not any(line.startswith(("reconnecting", "waiting")) for line in client.lines[seen:]), client.lines
    ns.run("ip", "route", "replace", "default", "via", FIRST_GATEWAY, "dev", uplinks.first)
    assert network_state(ns) == before


def test_a_second_uplink_that_does_not_carry_the_old_connection_reconnects_at_once(softether, uplinks):
    ns = uplinks.ns
    before = network_state(ns)
    client = connected_client(softether, uplinks)
    try:
        seen = len(client.lines)
        moved = time.monotonic()
        ns.run("ip", "route", "replace", "default", "via", SECOND_GATEWAY, "dev", uplinks.second)  # the first stays up
        follow_seconds = uplinks.wait_for_host_route(uplinks.second, FOLLOW_BOUND)
        ping(ns, VIRTUAL_HOST)  # traffic for the dead connection: its TCP user timeout runs
        ended_seconds, connected_seconds = reconnected_at_once(client, moved, seen)
        assert uplinks.host_route()["gateway"] == SECOND_GATEWAY
        result = ping(ns, VIRTUAL_HOST)
        assert result.returncode == 0, result.stdout + result.stderr
        print(
            f"machine-measured: move -> host route on the new uplink {follow_seconds:.2f} s, "
            f"-> session ended {ended_seconds:.2f} s, -> connected again {connected_seconds:.2f} s"
        )
        disconnect(client)
    finally:
        if client.process.poll() is None:
            client.kill()
    assert sum(line.startswith("connected:") for line in client.lines[seen:]) == 1, client.lines
    ns.run("ip", "route", "replace", "default", "via", FIRST_GATEWAY, "dev", uplinks.first)
    assert network_state(ns) == before


def test_the_first_uplink_going_down_reconnects_at_once_over_the_second(softether, uplinks):
    ns = uplinks.ns
    before = network_state(ns)
    client = connected_client(softether, uplinks)
    try:
        seen = len(client.lines)
        moved = time.monotonic()
        ns.run("ip", "-batch", "-", input=f"route replace default via {SECOND_GATEWAY} dev {uplinks.second}\nlink set {uplinks.first} down\n")
        ended_seconds, connected_seconds = reconnected_at_once(client, moved, seen)
        route = uplinks.host_route()
        assert route is not None and route["gateway"] == SECOND_GATEWAY and route["dev"] == uplinks.second, route
        result = ping(ns, VIRTUAL_HOST)
        assert result.returncode == 0, result.stdout + result.stderr
        print(f"machine-measured: move -> session ended {ended_seconds:.2f} s, -> connected again {connected_seconds:.2f} s")
        disconnect(client)
    finally:
        if client.process.poll() is None:
            client.kill()
    assert sum(line.startswith("connected:") for line in client.lines[seen:]) == 1, client.lines
    ns.run("ip", "-batch", "-", input=f"link set {uplinks.first} up\nroute replace default via {FIRST_GATEWAY} dev {uplinks.first}\n")
    assert same_network(ns, before)
