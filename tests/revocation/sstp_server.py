"""The loopback SSTP server (tests/loopback_sstp.py's conversation) presenting a given chain, as a
program to run inside a test's network namespace:

    python3 -m tests.revocation.sstp_server CHAIN.pem KEY.pem

prints the port it listens on (127.0.0.1), then serves until stdin closes or it is terminated."""

from __future__ import annotations

import signal
import sys
from dataclasses import replace
from pathlib import Path

from sstpvpn.client.trust import pem_certificates
from tests.gui.tls_server import LoopbackTlsServer
from tests.loopback_sstp import LoopbackSstpServer
from tests.unit.scripted_server import ServerConfig


class ChainSstpServer(LoopbackSstpServer):
    def __init__(self, chain: Path, key: Path) -> None:  # the parent's own certificate is replaced by `chain`
        self.cert_path = chain
        self.der = pem_certificates(chain.read_bytes())[0]  # the first certificate: the leaf, for the crypto binding
        self.config = replace(ServerConfig(), certificate=self.der)
        self.servers = []
        LoopbackTlsServer.__init__(self, chain, key)


def main() -> None:
    chain, key = Path(sys.argv[1]), Path(sys.argv[2])
    with ChainSstpServer(chain, key) as server:
        print(server.port, flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        sys.stdin.read()


if __name__ == "__main__":
    main()
