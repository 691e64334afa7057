"""The Windows/macOS trust path, reproduced on Linux against real TLS servers on loopback: truststore
closes the socket when the OS refuses the chain (diagnose crashed with AttributeError reading it),
and never shows the OS a self-signed server certificate given as the CA file (first contact keeps
exactly that). tests/unit/os_verifier.py says what truststore does there and what is stood in for.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from pathlib import Path

import pytest

from sstpvpn.client import trust
from sstpvpn.client.core.eap_tls import TlsClient, TlsMethod, TlsMethodSettings, TlsProblem
from sstpvpn.client.diagnose import diagnose
from sstpvpn.client.first_contact import fetch_presented_certificate
from sstpvpn.client.transport import TransportError, TransportSettings, open_connection
from tests.unit.os_verifier import OS_UNTRUSTED, TlsServer, behave_like_windows, make_certificate


@pytest.fixture
def pki(tmp_path: Path) -> dict:
    ca = make_certificate(tmp_path, "Test", ca=True)
    other_ca = make_certificate(tmp_path, "Other", ca=True)
    return {
        "ca": ca[0],
        "issued": make_certificate(tmp_path, "issued", issuer=(ca[1], ca[2]))[0],
        "other-ca": make_certificate(tmp_path, "other-ca", issuer=(other_ca[1], other_ca[2]))[0],
        "self-signed": make_certificate(tmp_path, "self-signed")[0],
        "self-signed-no-bc": make_certificate(tmp_path, "self-signed-no-bc", basic_constraints=False)[0],
        "another-self-signed": make_certificate(tmp_path, "another-self-signed")[0],
        "expired-self-signed": make_certificate(tmp_path, "expired-self-signed", expired=True)[0],
    }


def settings(port: int, ca_file: Path | None, **changes) -> TransportSettings:
    return TransportSettings(host="localhost", port=port, ca_file=ca_file, timeout=5.0, **changes)


def rejection(transport: TransportSettings) -> str:
    with pytest.raises(TransportError) as caught:  # CertificateRejected, or a name, usage or pin problem
        open_connection(transport).sock.close()
    return caught.value.failure.reason


def request(sock: ssl.SSLSocket) -> bytes:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    return sock.recv(4096).split(b"\r\n")[0]


def both_files(tmp_path: Path, *paths: Path) -> Path:
    combined = tmp_path / "combined.pem"
    combined.write_bytes(b"".join(path.read_bytes() for path in paths))
    return combined


# ---------------------------------------------------------------------------------------------
# What truststore does, and what crashed


def test_truststore_closes_the_socket_when_the_os_refuses_the_chain(monkeypatch: pytest.MonkeyPatch, pki: dict) -> None:
    behave_like_windows(monkeypatch)
    with TlsServer(pki["other-ca"]) as server:
        context = trust.verifying_context(pki["ca"].pem_path)
        tls = context.wrap_socket(socket.create_connection(("127.0.0.1", server.port), 5), do_handshake_on_connect=False)
        with pytest.raises(ssl.SSLCertVerificationError):
            tls.do_handshake()
        assert tls._sslobj is None and tls.fileno() == -1  # truststore's self.close()
        with pytest.raises(AttributeError):  # what diagnose ran into
            tls.getpeercert(binary_form=True)
        assert trust.peer_chain(tls) == []


def test_the_os_never_sees_a_self_signed_server_certificate_given_as_the_ca_file(monkeypatch: pytest.MonkeyPatch, pki: dict) -> None:
    """The second bug, at truststore's level: the CA file is loaded, but get_ca_certs() leaves the
    certificate out, so the OS rejects the very certificate the user chose to trust."""
    behave_like_windows(monkeypatch)
    store = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    store.load_verify_locations(pki["self-signed"].pem_path)
    assert store.get_ca_certs(binary_form=True) == []
    with TlsServer(pki["self-signed"]) as server:
        context = trust.verifying_context(pki["self-signed"].pem_path)
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(socket.create_connection(("127.0.0.1", server.port), 5))


def test_a_chain_to_the_ca_file_is_still_trusted(monkeypatch: pytest.MonkeyPatch, pki: dict) -> None:
    behave_like_windows(monkeypatch)
    with TlsServer(pki["issued"]) as server:
        connection = open_connection(settings(server.port, pki["ca"].pem_path))
        try:
            assert connection.peer_certificate_der == pki["issued"].der
            assert request(connection.sock) == b"HTTP/1.1 200 OK"
        finally:
            connection.sock.close()


def test_refused_chain_gives_the_os_sentence(monkeypatch: pytest.MonkeyPatch, pki: dict) -> None:
    behave_like_windows(monkeypatch)
    with TlsServer(pki["other-ca"]) as server:
        assert rejection(settings(server.port, pki["ca"].pem_path)) == OS_UNTRUSTED
        assert rejection(settings(server.port, None)) == OS_UNTRUSTED


def test_diagnose_shows_the_refused_chain(monkeypatch: pytest.MonkeyPatch, pki: dict) -> None:
    behave_like_windows(monkeypatch)
    with TlsServer(pki["other-ca"]) as server:
        report = diagnose(settings(server.port, pki["ca"].pem_path))
    assert [(step.name, step.ok) for step in report.steps] == [
        ("CA file", True),
        ("DNS", True),
        ("TCP", True),
        ("TLS", True),
        ("Certificate chain", True),
        ("Name", True),
        ("Trust", False),
    ]
    assert report.failure is not None and report.failure.reason == OS_UNTRUSTED
    chain = report.steps[4].details
    assert f"  SHA-256 hash: {hashlib.sha256(pki['other-ca'].der).hexdigest()}" in chain
    assert "certificate 2 (issuer):" in chain and "  subject: CN=Other CA" in chain
    assert server.requests == []  # nothing but handshakes went to a server nobody trusts


def test_first_contact_reads_the_certificate(monkeypatch: pytest.MonkeyPatch, pki: dict) -> None:
    behave_like_windows(monkeypatch)
    with TlsServer(pki["self-signed"]) as server:
        presented = fetch_presented_certificate(settings(server.port, None))
    assert presented.der == pki["self-signed"].der and presented.can_be_pinned


# ---------------------------------------------------------------------------------------------
# A self-signed server certificate as the CA file: trusted as presented


def test_leaf_anchors(monkeypatch: pytest.MonkeyPatch, pki: dict, tmp_path: Path) -> None:
    combined = both_files(tmp_path, pki["ca"].pem_path, pki["self-signed"].pem_path, pki["issued"].pem_path, pki["self-signed-no-bc"].pem_path)
    assert trust.leaf_anchors(combined) == frozenset()  # Linux: OpenSSL trusts them itself
    monkeypatch.setattr(trust, "OS_VERIFIER", True)
    # Only the self-signed non-CA ones: the CA reaches the OS, the issued one is not self-signed.
    assert trust.leaf_anchors(combined) == {pki["self-signed"].der, pki["self-signed-no-bc"].der}
    assert trust.leaf_anchors(None) == frozenset()
    assert trust.leaf_anchors(tmp_path / "missing.pem") == frozenset()


@pytest.mark.parametrize("kind", ["self-signed", "self-signed-no-bc"])
def test_self_signed_certificate_as_the_ca_file(monkeypatch: pytest.MonkeyPatch, pki: dict, kind: str) -> None:
    behave_like_windows(monkeypatch)
    served = pki[kind]
    with TlsServer(served) as server:
        pin = hashlib.sha256(served.der).hexdigest()
        for transport in (
            settings(server.port, served.pem_path),
            settings(server.port, served.pem_path, pin_sha256=pin),
        ):  # first contact pins it too
            connection = open_connection(transport)
            try:
                assert connection.peer_certificate_der == served.der
                assert request(connection.sock) == b"HTTP/1.1 200 OK"
            finally:
                connection.sock.close()
        assert server.connections == 2  # one connection each: no refused handshake before it


def test_the_anchor_is_trusted_only_when_presented_exactly(monkeypatch: pytest.MonkeyPatch, pki: dict, tmp_path: Path) -> None:
    behave_like_windows(monkeypatch)
    with TlsServer(pki["another-self-signed"]) as server:
        assert rejection(settings(server.port, pki["self-signed"].pem_path)) == OS_UNTRUSTED
        assert server.requests == []
    # The pin and the name are still checked on an anchored connection.
    with TlsServer(pki["self-signed"]) as server:
        assert rejection(settings(server.port, pki["self-signed"].pem_path, pin_sha256="00" * 32)).startswith(
            "The server's certificate fingerprint SHA256 "
        )
        assert rejection(settings(server.port, pki["self-signed"].pem_path, sni="vpn.example.org")) == (
            "The server's certificate is for localhost, not vpn.example.org. Check the host name in the profile."
        )
        assert server.requests == []


def test_a_ca_beside_the_anchor_still_works(monkeypatch: pytest.MonkeyPatch, pki: dict, tmp_path: Path) -> None:
    behave_like_windows(monkeypatch)
    combined = both_files(tmp_path, pki["self-signed"].pem_path, pki["ca"].pem_path)
    with TlsServer(pki["issued"]) as server:
        connection = open_connection(settings(server.port, combined))
        try:
            assert connection.peer_certificate_der == pki["issued"].der
            assert request(connection.sock) == b"HTTP/1.1 200 OK"
        finally:
            connection.sock.close()
        assert server.connections == 2  # the look at the certificate, then the verified connection


def test_expired_anchor_gives_the_linux_sentence(monkeypatch: pytest.MonkeyPatch, pki: dict) -> None:
    served = pki["expired-self-signed"]
    date = served.not_after.strftime("%Y-%m-%d %H:%M UTC")
    expected = f"The server's certificate expired on {date}: ask the server's administrator to renew it, or check this computer's date and time."
    with TlsServer(served) as server:
        assert rejection(settings(server.port, served.pem_path)) == expected  # OpenSSL, on Linux
        behave_like_windows(monkeypatch)
        assert rejection(settings(server.port, served.pem_path)) == expected
        assert server.requests == []


def test_linux_trusts_the_self_signed_certificate_itself(pki: dict) -> None:
    served = pki["self-signed"]
    with TlsServer(served) as server:
        connection = open_connection(settings(server.port, served.pem_path))
        try:
            assert connection.peer_certificate_der == served.der
        finally:
            connection.sock.close()
        assert server.connections == 1


def test_diagnose_with_the_anchor(monkeypatch: pytest.MonkeyPatch, pki: dict) -> None:
    behave_like_windows(monkeypatch)
    served = pki["self-signed"]
    with TlsServer(served) as server:
        report = diagnose(settings(server.port, served.pem_path))
    assert report.would_connect, report.failure
    trust_step = next(step for step in report.steps if step.name == "Trust")
    assert trust_step.details[0] == f"the server presented exactly the self-signed certificate in {served.pem_path}"
    assert report.steps[-1].details == ("reply: HTTP/1.1 200 OK",)
    assert server.connections == 1


# ---------------------------------------------------------------------------------------------
# The EAP server's certificate (truststore's memory-BIO object: refused, but not closed)


def eap_handshake(client: TlsClient, server_context: ssl.SSLContext) -> None:
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_context.wrap_bio(incoming, outgoing, server_side=True)
    incoming.write(client.start())
    for _ in range(10):
        try:
            server.do_handshake()
        except ssl.SSLWantReadError:
            pass
        reply = client.feed(outgoing.read())
        if client.established:
            return
        incoming.write(reply)
    raise AssertionError("the handshake did not finish")


@pytest.mark.parametrize("tls13", [False, True])
def test_eap_server_with_a_self_signed_certificate_as_the_ca_file(monkeypatch: pytest.MonkeyPatch, pki: dict, tls13: bool) -> None:
    behave_like_windows(monkeypatch)
    served = pki["self-signed"]
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(served.pem_path, served.key_path)
    client = TlsClient(TlsMethodSettings(TlsMethod.EAP_TLS, server_name="localhost", ca_file=served.pem_path, allow_tls13=tls13))
    eap_handshake(client, server_context)
    assert client.peer_certificate == served.der and client.keys is not None
    assert client.keys.version == ("TLSv1.3" if tls13 else "TLSv1.2")


def test_eap_server_refused_by_the_os(monkeypatch: pytest.MonkeyPatch, pki: dict) -> None:
    behave_like_windows(monkeypatch)
    served = pki["another-self-signed"]
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(served.pem_path, served.key_path)
    client = TlsClient(TlsMethodSettings(TlsMethod.EAP_TLS, server_name="localhost", ca_file=pki["self-signed"].pem_path))
    with pytest.raises(TlsProblem) as caught:
        eap_handshake(client, server_context)
    assert caught.value.failure.reason == "EAP authentication server: " + OS_UNTRUSTED.replace("(--ca-file)", "(--eap-ca-file)")
