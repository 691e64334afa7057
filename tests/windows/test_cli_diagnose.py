"""`sstp-vpn.exe diagnose` (the installed, frozen CLI) against a loopback TLS server that answers
the SSTP request as an SSTP server does, with our test CA given as --ca-file."""

from __future__ import annotations

import ssl

import pytest

from tests.gui.tls_server import SelfSignedHttpsServer
from tests.integration.certificates import make_test_pki
from tests.windows.wine_env import wine_build


class SstpTestServer(SelfSignedHttpsServer):
    """tests/gui's loopback server (it answers every request "HTTP/1.1 200 OK" with SSTP's
    Content-Length), serving a certificate for localhost and 127.0.0.1 issued by a test CA."""

    def __init__(self, folder, certificate, key) -> None:
        super().__init__(folder)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(certificate, key)


def test_diagnose_reaches_the_sstp_answer_with_the_ca_given(installed, tmp_path):
    pki = make_test_pki(tmp_path / "pki", "localhost", "127.0.0.1", "other.test")
    good = pki.certificates["good"]
    with SstpTestServer(tmp_path, good.cert_path, good.key_path) as server:
        result = installed.wine.run(
            [installed.cli, "diagnose", f"localhost:{server.port}", "--ca-file", wine_build.windows_path(pki.ca_path)],
            check=False,
            quiet=True,
            timeout=120,
        )
    output = result.stdout
    for step in ("DNS", "TCP", "TLS", "Certificate chain", "Name", "Trust", "SSTP"):
        assert any(line.split()[:1] == ["ok"] and f" {step} (" in line for line in output.splitlines()), (step, output)
    assert f"Result: SSTP VPN can reach the SSTP service at localhost:{server.port}." in output, output
    assert result.returncode == 0, output


@pytest.mark.skip(
    reason="Wine cannot judge certificate rejection: its crypt32 accepts chains that stop short of a trusted root "
    "(shared/notes/windows-under-wine.md); the rejection paths stay covered by the recorded-fake and Linux tests"
)
def test_diagnose_rejects_a_server_of_another_ca():
    pass
