"""A real SSTP server on loopback for tests of the edges: TLS on 127.0.0.1 with a self-signed
certificate for "localhost", and behind it, for each accepted connection, a fresh ScriptedServer
(tests/unit/scripted_server.py) whose crypto binding check uses that very certificate. Tests read
what each connection's server saw in `servers`."""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import replace
from pathlib import Path
from typing import Self

from tests.gui.tls_server import self_signed_certificate
from tests.unit.scripted_server import ScriptedServer, ServerConfig


class LoopbackSstpServer:
    def __init__(self, folder: Path, config: ServerConfig | None = None) -> None:
        self.cert_path, key_path, self.der = self_signed_certificate(folder)
        self.config = replace(config or ServerConfig(), certificate=self.der)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.cert_path, key_path)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.servers: list[ScriptedServer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-sstp", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._listener.close()

    @property
    def signed_in(self) -> list[ScriptedServer]:
        """The connections on which the client completed a sign-in (Call Connected sent)."""
        return [server for server in self.servers if server.call_connected_count]

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._listener.accept()
            except TimeoutError:
                continue
            with raw:
                raw.settimeout(0.2)
                try:
                    with self._context.wrap_socket(raw, server_side=True) as tls:
                        self._converse(tls)
                except (ssl.SSLError, OSError):
                    continue  # a client that only looked at the certificate, or went away

    def _converse(self, tls: ssl.SSLSocket) -> None:
        server = ScriptedServer(replace(self.config))
        self.servers.append(server)
        idle = 0
        while not self._stop.is_set() and idle < 150:  # 30 s of silence ends a connection
            try:
                data = tls.recv(65536)
            except TimeoutError:
                idle += 1
                continue
            if not data:
                return
            idle = 0
            server.receive(data)
            reply = server.data_to_send()
            if reply:
                tls.sendall(reply)
            if server.stage in ("disconnected", "aborted"):
                return
