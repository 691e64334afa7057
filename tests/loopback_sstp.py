"""A real SSTP server on loopback for tests of the edges: TLS on 127.0.0.1 with a self-signed
certificate for "localhost", and behind it, for each accepted connection, a fresh ScriptedServer
(tests/unit/scripted_server.py) whose crypto binding check uses that very certificate. Tests read
what each connection's server saw in `servers`."""

from __future__ import annotations

import ssl
from dataclasses import replace
from pathlib import Path

from tests.gui.tls_server import LoopbackTlsServer, self_signed_certificate
from tests.unit.scripted_server import ScriptedServer, ServerConfig


class LoopbackSstpServer(LoopbackTlsServer):
    read_timeout = 0.2  # the conversation below counts these to end a silent connection

    def __init__(self, folder: Path, config: ServerConfig | None = None) -> None:
        self.cert_path, key_path, self.der = self_signed_certificate(folder)
        self.config = replace(config or ServerConfig(), certificate=self.der)
        self.servers: list[ScriptedServer] = []
        super().__init__(self.cert_path, key_path)

    @property
    def signed_in(self) -> list[ScriptedServer]:
        """The connections on which the client completed a sign-in (Call Connected sent)."""
        return [server for server in self.servers if server.call_connected_count]

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
            if server.stage in ("disconnected", "aborted") or server.gave_up:
                return  # closes the connection, as SoftEther does after ending the link
