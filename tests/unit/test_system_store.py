"""The system's CA certificates loaded ahead (client/system_store.py): the context the command
line's start-up thread loads is taken once by trust.verifying_context, holds the very anchors
truststore's own context holds at its handshake, and verifies exactly as strictly."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
import truststore

from sstpvpn.client import head_start, system_store, trust

from .trust_pki import Made, private_chain


@pytest.fixture(autouse=True)
def nothing_left_loading():
    system_store.take()
    yield
    system_store.take()


def server_context(folder: Path, leaf: Made, issuer: Made) -> ssl.SSLContext:
    (folder / "chain.pem").write_bytes(leaf.pem + issuer.pem)
    (folder / "key.pem").write_bytes(leaf.key_pem())
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "chain.pem", folder / "key.pem")
    return context


def handshake(client_context: ssl.SSLContext, server: ssl.SSLContext, name: str) -> ssl.SSLObject:
    """A TLS handshake over memory: the client's verdict is raised as it would be on a socket."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(c_in, c_out, server_hostname=name)
    served = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for side, tls in (("client", client), ("server", served)):
            if not done[side]:
                try:
                    tls.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError:
                    if side == "client":
                        raise
                    done[side] = True  # the server met the client's alert
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return client
    raise AssertionError("the handshake did not finish")


def truststores_anchors() -> set[bytes]:
    """The CA certificates truststore's context holds once it wraps a socket (it loads the
    system's store then)."""
    context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    left, right = socket.socketpair()
    with left, right:
        context.wrap_socket(left, do_handshake_on_connect=False).close()
    return set(context._ctx.get_ca_certs(binary_form=True))  # its OpenSSL context (truststore does not tell)


def test_the_loaded_context_is_taken_once() -> None:
    system_store.begin()
    system_store.begin()  # one at a time
    context = system_store.take()
    assert isinstance(context, ssl.SSLContext)
    assert system_store.take() is None


def test_the_head_start_begins_loading_the_store_once_its_syn_is_out(monkeypatch: pytest.MonkeyPatch) -> None:
    begun = []
    monkeypatch.setattr(system_store, "begin", lambda: begun.append(head._done.is_set()))
    server = socket.socket()
    with server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        head_start.begin("127.0.0.1", server.getsockname()[1], 5.0)
        head = head_start._pending
        assert isinstance(head, head_start.HeadStart)
        head._thread.join(5)
        assert begun == [True]  # after the connection was made
        assert head.sock is not None
        head.sock.close()
        head_start._forget(head)


@pytest.mark.skipif(trust.OS_VERIFIER, reason="truststore asks the OS there")
def test_the_preloaded_store_holds_truststores_own_anchors(tmp_path: Path) -> None:
    system_store.begin()
    context = trust.verifying_context(None)
    assert system_store.take() is None  # verifying_context took it
    assert set(context.get_ca_certs(binary_form=True)) == truststores_anchors()
    assert context.verify_mode is ssl.CERT_REQUIRED and context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert not context.check_hostname and context.verify_flags & ssl.VERIFY_X509_PARTIAL_CHAIN


def test_a_preloaded_context_verifies_as_strictly(tmp_path: Path) -> None:
    root, intermediate, leaf = private_chain("vpn.example.com")
    other_root, other_intermediate, other_leaf = private_chain("vpn.example.com")
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(root.pem)
    system_store.begin()
    trusted = trust.verifying_context(ca_file)
    assert handshake(trusted, server_context(tmp_path, leaf, intermediate), "vpn.example.com").version() is not None
    system_store.begin()
    refusing = trust.verifying_context(ca_file)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(refusing, server_context(tmp_path, other_leaf, other_intermediate), "vpn.example.com")
    system_store.begin()
    without_ca_file = trust.verifying_context(None)
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(without_ca_file, server_context(tmp_path, leaf, intermediate), "vpn.example.com")


@pytest.mark.skipif(trust.OS_VERIFIER, reason="truststore asks the OS there")
def test_without_a_preloaded_store_the_context_is_truststores_and_reads_no_bundle_before_the_connect(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tray and `diagnose` begin nothing before their first connection: reading the bundle
    # in verifying_context would put it before the SYN, where truststore reads it after.
    monkeypatch.setattr(system_store, "load", lambda: pytest.fail("the bundle was read before the TCP connect"))
    context = trust.verifying_context(None)
    assert isinstance(context, truststore.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED and context.minimum_version is ssl.TLSVersion.TLSv1_2
