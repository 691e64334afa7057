"""The command line's head start (client/head_start.py): the TCP connection it opened early is the
one the transport uses, once; a refusal it met is reported exactly as the transport's own would be."""

from __future__ import annotations

import socket

import pytest

from sstpvpn.client import head_start, system_store, transport
from sstpvpn.client.transport import Endpoint, TransportError


@pytest.fixture(autouse=True)
def no_head_start_left():
    yield
    head = head_start._pending
    if head is not None:
        head.wait()
        if head.sock is not None:
            head.sock.close()
        head_start._forget(head)
    system_store.take()  # the CA store begin() started loading: not left for another test


def listener() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(5)
    return server


def refused_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # bound, never listening: a connect to it is refused
    return port


def test_the_transport_takes_the_head_starts_connection_and_opens_no_other():
    server = listener()
    with server:
        port = server.getsockname()[1]
        head_start.begin("127.0.0.1", port, 5.0)
        head_start._pending.wait()
        accepted, _ = server.accept()  # the head start's SYN was answered before the transport ran
        endpoint = Endpoint("server", "127.0.0.1", port)
        sock, address = transport.connect_first(endpoint, transport.resolve(endpoint), 5.0)
        with sock, accepted:
            sock.sendall(b"ping")
            assert accepted.recv(4) == b"ping"  # the very connection accepted above
            assert str(address) == "127.0.0.1"
            server.setblocking(False)
            with pytest.raises(BlockingIOError):
                server.accept()  # no second connection was opened
        assert head_start._pending is None  # taken once


def test_a_second_connect_to_the_same_address_opens_its_own_connection():
    server = listener()
    with server:
        port = server.getsockname()[1]
        head_start.begin("127.0.0.1", port, 5.0)
        endpoint = Endpoint("server", "127.0.0.1", port)
        first, _ = transport.connect_first(endpoint, transport.resolve(endpoint), 5.0)
        second, _ = transport.connect_first(endpoint, transport.resolve(endpoint), 5.0)  # a reconnect
        with first, second:
            assert first.getsockname() != second.getsockname()


def test_a_refusal_met_by_the_head_start_reads_as_the_transports_own():
    port = refused_port()
    endpoint = Endpoint("server", "127.0.0.1", port)
    with pytest.raises(TransportError) as without:
        transport.connect_first(endpoint, transport.resolve(endpoint), 5.0)
    head_start.begin("127.0.0.1", port, 5.0)
    with pytest.raises(TransportError) as with_head_start:
        transport.connect_first(endpoint, transport.resolve(endpoint), 5.0)
    assert with_head_start.value.failure == without.value.failure
    assert head_start._pending is None


def test_another_host_is_not_answered_by_the_head_start():
    server, other = listener(), listener()
    with server, other:
        head_start.begin("127.0.0.1", server.getsockname()[1], 5.0)
        endpoint = Endpoint("server", "127.0.0.1", other.getsockname()[1])
        sock, _ = transport.connect_first(endpoint, transport.resolve(endpoint), 5.0)
        with sock:
            accepted, _ = other.accept()
            accepted.close()
