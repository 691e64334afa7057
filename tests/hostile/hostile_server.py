"""HostileServer: a TLS SSTP server that misbehaves on purpose, one named scenario per port.

The protocol side is `ScriptedServer` (tests/unit/scripted_server.py): it answers the HTTP
request, acks the call, runs LCP, MS-CHAPv2, checks the crypto binding with the HLAK it derives
itself, and configures IPCP. This module only adds the socket, TLS and the misbehaviour: a
`Scenario` names a stage and an action run when the conversation first reaches that stage (or when
the test orders it, once the client printed `connected:`), plus two protocol changes that the
scripted server cannot do (endless Configure-Nak for LCP or IPCP).

The server runs as threads of the test process. Its listening sockets are created in the server
namespace by a short-lived thread that joins that namespace (a socket keeps the namespace it was
made in), so the rest of the test process never leaves its own namespace.
"""

from __future__ import annotations

import ctypes
import os
import selectors
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

from sstpvpn.client.core.ppp_codec import Code, ControlPacket, Option, PppProtocol, encode_options
from sstpvpn.client.core.sstp_codec import MessageType
from tests.integration.certificates import ServerPki
from tests.unit.scripted_server import IPCP_ADDRESS, LCP_MRU, MSCHAPV2, ScriptedServer, ServerConfig

CLONE_NEWNET = 0x40000000
USERNAME = "alice"
PASSWORD = "hostile-test-password"  # only ever in memory and on the client's standard input
CONNECTION_LIFETIME = 120.0  # a connection the client never ends is closed after this
POLL_SECONDS = 0.05


class HostileScriptedServer(ScriptedServer):
    """The scripted server, plus the two Configure-Nak loops it has no switch for."""

    def __init__(self, config: ServerConfig, nak_loop: str | None = None) -> None:
        super().__init__(config)
        self.nak_loop = nak_loop  # "lcp", "ipcp" or None
        self.naks_sent = 0
        self.ipcp_terminate_acks = 0

    def _receive_lcp(self, packet: ControlPacket) -> None:
        if self.nak_loop == "lcp" and packet.code == Code.CONFIGURE_REQUEST:
            # A new MRU suggestion every time, so no client can call it a repeat and agree.
            self.naks_sent += 1
            mru = 1000 + self.naks_sent % 400
            self._send_ppp(PppProtocol.LCP, Code.CONFIGURE_NAK, packet.identifier, encode_options([Option(LCP_MRU, struct.pack("!H", mru))]))
            return
        super()._receive_lcp(packet)

    def _receive_ipcp(self, packet: ControlPacket) -> None:
        if packet.code == Code.TERMINATE_ACK:  # the answer to an injected IPCP Terminate-Request
            self.ipcp_terminate_acks += 1
            return
        if self.nak_loop == "ipcp" and packet.code == Code.CONFIGURE_REQUEST:
            self._send_ipcp_request()
            self.naks_sent += 1
            address = IPv4Address("198.18.30.10") + self.naks_sent % 200
            self._send_ppp(PppProtocol.IPCP, Code.CONFIGURE_NAK, packet.identifier, encode_options([Option(IPCP_ADDRESS, address.packed)]))
            return
        super()._receive_ipcp(packet)


# Stages of a conversation, as the server sees them; an action fires once, at the first check
# (after the server handled the client's bytes, before its answer goes out) where the stage holds.
STAGES: dict[str, Callable[[ScriptedServer], bool]] = {
    "tls": lambda server: True,  # the TLS handshake is done; nothing read yet
    "http": lambda server: server.stage == "sstp",  # the HTTP reply is queued
    "connect": lambda server: MessageType.CALL_CONNECT_REQUEST in server.control_received,
    "lcp": lambda server: any(entry[1:] == (PppProtocol.LCP, Code.CONFIGURE_REQUEST) for entry in server.wire_log if entry[0] == "ppp"),
    "auth": lambda server: server.lcp_opened,  # LCP is up; the challenge is queued
    "call-connected": lambda server: server.binding is not None,  # IPCP is next
}
ORDERED = "ordered"  # the action runs when the test calls HostileServer.order(name)


@dataclass(frozen=True)
class Scenario:
    name: str
    when: str | None = None  # a key of STAGES, ORDERED, or None (a correct server)
    act: Callable[[Connection], None] | None = None
    certificate: str = "good"  # a kind from tests.integration.certificates
    config: dict = field(default_factory=dict)  # ServerConfig overrides
    nak_loop: str | None = None


class Connection:
    """One client connection: the TLS socket, the scripted server behind it, what happened."""

    def __init__(self, scenario: Scenario, tls: ssl.SSLSocket, certificate_der: bytes) -> None:
        self.scenario = scenario
        self.tls = tls
        config = ServerConfig(username=USERNAME, password=PASSWORD, certificate=certificate_der, **{"methods": (MSCHAPV2,), **scenario.config})
        self.server = HostileScriptedServer(config, scenario.nak_loop)
        self.acted = False
        self.ordered = threading.Event()
        self.finished = threading.Event()
        self.end: str | None = None  # "client closed", "client reset", "server closed", "lifetime over"
        self.error: BaseException | None = None  # a bug of this test server
        self.started = time.monotonic()
        self._closed = False

    # -- what actions use ------------------------------------------------------------------------

    def discard_answer(self) -> None:
        """Drop what the scripted server was about to send."""
        self.server.data_to_send()

    def go_silent(self) -> None:
        """From now on the scripted server answers nothing (injected bytes still go out)."""
        self.discard_answer()
        self.server.silent = True

    def send(self, data: bytes) -> None:
        self.server.send_raw(data)

    def close(self, reset: bool = False) -> None:
        """End the TCP connection without a TLS close_notify; `reset` sends a RST instead of FIN."""
        self.flush()
        if reset:
            self.tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._closed = True
        self.end = "server closed"

    def stop(self) -> None:
        """From another thread: end the loop (the socket is closed by the serving thread)."""
        self._closed = True

    # -- the loop ---------------------------------------------------------------------------------

    def flush(self) -> None:
        data = self.server.data_to_send()
        if data:
            self.tls.settimeout(10.0)  # a flood may outrun the client for a moment
            try:
                self.tls.sendall(data)
            finally:
                self.tls.settimeout(POLL_SECONDS)

    def _maybe_act(self) -> None:
        scenario = self.scenario
        if self.acted or scenario.act is None:
            return
        due = self.ordered.is_set() if scenario.when == ORDERED else STAGES[scenario.when](self.server)
        if due:
            self.acted = True
            scenario.act(self)

    def serve(self) -> None:
        try:
            self.tls.settimeout(POLL_SECONDS)
            self._maybe_act()
            self.flush()
            while not self._closed:
                if time.monotonic() - self.started > CONNECTION_LIFETIME:
                    self.end = "lifetime over"
                    break
                try:
                    data = self.tls.recv(65536)
                except (TimeoutError, ssl.SSLWantReadError):
                    data = None
                except (ConnectionResetError, ssl.SSLError, OSError):
                    self.end = "client reset"
                    break
                if data == b"":
                    self.end = "client closed"
                    break
                if data:
                    self.server.receive(data)
                self._maybe_act()
                if not self._closed:
                    self.flush()
        except OSError:  # ssl.SSLError included: the client went away while we were sending
            self.end = self.end or "client reset"
        except BaseException as error:  # noqa: BLE001 - a bug here must fail the test, not vanish
            self.error = error
        finally:
            try:
                self.tls.close()
            except OSError:
                pass
            self.finished.set()


class HostileServer:
    """Listens on one port per scenario inside the server namespace (None: on 127.0.0.1 of this
    process's own, for clients that cannot join a namespace, such as programs under Wine). Use as a
    context manager."""

    def __init__(self, namespace: str | None, pki: ServerPki, scenarios: list[Scenario]) -> None:
        self.scenarios = {scenario.name: scenario for scenario in scenarios}
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._certificates: dict[str, bytes] = {}
        for kind, served in pki.certificates.items():
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(served.cert_path, served.key_path)
            self._contexts[kind] = context
            self._certificates[kind] = ssl.PEM_cert_to_DER_cert(Path(served.cert_path).read_text())
        if namespace is None:
            self._listeners = {name: _listen("127.0.0.1") for name in self.scenarios}
        else:
            self._listeners = _in_namespace(namespace, lambda: {name: _listen("0.0.0.0") for name in self.scenarios})
        self.ports = {name: sock.getsockname()[1] for name, sock in self._listeners.items()}
        self.connections: dict[str, list[Connection]] = {name: [] for name in self.scenarios}
        self.handshake_failures: dict[str, list[str]] = {name: [] for name in self.scenarios}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="hostile-accept", daemon=True)

    def __enter__(self) -> HostileServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._acceptor.join(5)
        for sock in self._listeners.values():
            sock.close()
        with self._lock:
            connections = [c for group in self.connections.values() for c in group]
        for connection in connections:
            connection.stop()
        for thread in self._threads:
            thread.join(5)

    # -- what tests use ---------------------------------------------------------------------------

    def order(self, name: str) -> None:
        """Run an ORDERED scenario's action on its newest connection."""
        self.latest(name).ordered.set()

    def latest(self, name: str, timeout: float = 5.0) -> Connection:
        end = time.monotonic() + timeout
        while True:
            with self._lock:
                if self.connections[name]:
                    return self.connections[name][-1]
            if time.monotonic() > end:
                raise AssertionError(f"no connection reached the {name!r} scenario")
            time.sleep(0.02)

    def errors(self, name: str) -> list[BaseException]:
        """Exceptions in this server's own code while serving the scenario (its bugs)."""
        with self._lock:
            return [c.error for c in self.connections[name] if c.error is not None]

    # -- threads ----------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            for name, sock in self._listeners.items():
                selector.register(sock, selectors.EVENT_READ, name)
            while not self._stop.is_set():
                for key, _ in selector.select(0.2):
                    try:
                        raw, _ = key.fileobj.accept()
                    except OSError:
                        continue
                    thread = threading.Thread(target=self._handle, args=(self.scenarios[key.data], raw), name=f"hostile-{key.data}", daemon=True)
                    self._threads.append(thread)
                    thread.start()

    def _handle(self, scenario: Scenario, raw: socket.socket) -> None:
        raw.settimeout(10.0)
        try:
            tls = self._contexts[scenario.certificate].wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as error:  # a client that refused our certificate
            raw.close()
            with self._lock:
                self.handshake_failures[scenario.name].append(str(error))
            return
        connection = Connection(scenario, tls, self._certificates[scenario.certificate])
        with self._lock:
            self.connections[scenario.name].append(connection)
        connection.serve()


def _listen(address: str) -> socket.socket:
    sock = socket.create_server((address, 0), backlog=8)
    sock.setblocking(False)
    return sock


def _in_namespace(namespace: str, make: Callable[[], dict]) -> dict:
    """Run `make` in a thread that joined the named network namespace; return what it made."""
    result: list = []

    def join_and_make() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                error = ctypes.get_errno()
                raise OSError(error, f"setns into {namespace}: {os.strerror(error)}")
        finally:
            os.close(fd)
        result.append(make())

    failure: list[BaseException] = []

    def guarded() -> None:
        try:
            join_and_make()
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(error)

    thread = threading.Thread(target=guarded, name="hostile-listen")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]
