"""The editor's Test for a profile whose proxy is a PAC file, against real parts on loopback: the PAC
file served by Python's http.server, a proxy that refuses the connection, the TLS + SSTP server of
tests/loopback_sstp.py. The report starts with the Proxy choice step (the PAC's answer and the way
that worked), has the Revocation step after Trust, and signs in."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication

from sstpvpn.client.profiles import ProxyMode
from tests.gui.test_editor import choose, fill
from tests.gui.test_editor_sign_in import PASSWORD, lab_editor, no_tunnel, run_test, sstp_server  # noqa: F401 - fixtures


@pytest.fixture
def pac_site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(folder, base URL) of an http.server on 127.0.0.1, stopped after the test."""
    folder = tmp_path / "site"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="pac-site", daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nobody listens once it is closed: connecting is refused


def test_test_shows_the_pac_decision(qtbot, store, secrets, sstp_server, pac_site, screenshots, no_tunnel):
    folder, base = pac_site
    dead = refused_port()
    (folder / "proxy.pac").write_text(f'function FindProxyForURL(url, host) {{ return "PROXY 127.0.0.1:{dead}; DIRECT"; }}\n')
    editor = lab_editor(qtbot, store, secrets, sstp_server, password=PASSWORD)
    choose(editor.proxy_mode, ProxyMode.PAC)
    fill(editor, pac_url=f"{base}/proxy.pac")
    editor.resize(1100, 760)
    report = run_test(qtbot, editor)
    lines = report.splitlines()
    assert lines[0].startswith("    ok  Proxy choice (")
    assert lines[1] == f"        PAC {base}/proxy.pac → DIRECT (PROXY 127.0.0.1:{dead}: refused the connection)"
    steps = [line.split()[1] for line in lines if line.startswith(("    ok  ", "FAILED  "))]
    assert steps == ["Proxy", "CA", "DNS", "TCP", "TLS", "Certificate", "Name", "Trust", "Revocation", "SSTP", "Sign-in"]
    assert "Result: Signed in as alice with MS-CHAPv2; disconnected before any network change." in report
    assert no_tunnel == []
    qtbot.wait(200)
    QGuiApplication.primaryScreen().grabWindow(0, *editor.frameGeometry().getRect()).save(str(screenshots / "editor-test-pac.png"))
