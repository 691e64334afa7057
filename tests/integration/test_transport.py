"""The transport edge against real parts on loopback: `openssl s_server` serving certificates made
here with `cryptography`, tinyproxy and squid with Basic authentication (started through
tests/proxies.py, in the host's own network namespace, listening on loopback only), and an empty
network namespace (`unshare --net`) for name-resolution and unreachable-network failures.
Every failure is checked by its exact sentence.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sstpvpn.client.core.sstp_http import HttpReply, ReplyReader
from sstpvpn.client.core.types import FailureKind
from sstpvpn.client.diagnose import diagnose
from sstpvpn.client.proxy import ProxySettings
from sstpvpn.client.transport import TlsConnection, TransportError, TransportSettings, open_connection
from tests.netns import stop_process
from tests.proxies import Proxy, dead_proxy, start_squid, start_tinyproxy
from tests.realparts import require_program, require_root
from tests.unit.os_verifier import OS_UNTRUSTED, behave_like_windows

pytestmark = pytest.mark.realparts

TIMEOUT = 5.0
UNTRUSTED = (
    "The server's certificate was not issued by a trusted authority (unable to get local issuer "
    "certificate): if you trust this server, add its CA certificate to the profile (--ca-file)."
)


# ---------------------------------------------------------------------------------------------
# A throwaway PKI


@dataclass(frozen=True)
class Served:
    cert_path: Path
    key_path: Path
    der: bytes
    not_after: datetime.datetime


@dataclass(frozen=True)
class Pki:
    ca_path: Path
    certificates: dict[str, Served]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str, now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    directory: Path,
    kind: str,
    ca: tuple,
    names: list[x509.GeneralName],
    now: datetime.datetime,
    eku: x509.ObjectIdentifier = ExtendedKeyUsageOID.SERVER_AUTH,
    expired: bool = False,
) -> Served:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = (now - datetime.timedelta(days=2) if expired else now + datetime.timedelta(days=30)).replace(second=0, microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(str(names[0].value)))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=10))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{kind}.pem", directory / f"{kind}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    return Served(cert_path, key_path, cert.public_bytes(serialization.Encoding.DER), not_after)


def make_pki(directory: Path) -> Pki:
    now = datetime.datetime.now(datetime.UTC)
    ca, other_ca = _ca("Transport Test CA", now), _ca("Untrusted Test CA", now)
    (directory / "ca.pem").write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    localhost = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1"))]
    return Pki(
        directory / "ca.pem",
        {
            "good": _leaf(directory, "good", ca, localhost, now),
            "wrong-name": _leaf(directory, "wrong-name", ca, [x509.DNSName("other.test")], now),
            "other-ca": _leaf(directory, "other-ca", other_ca, localhost, now),
            "client-only": _leaf(directory, "client-only", ca, localhost, now, eku=ExtendedKeyUsageOID.CLIENT_AUTH),
            "expired": _leaf(directory, "expired", ca, localhost, now, expired=True),
        },
    )


# ---------------------------------------------------------------------------------------------
# Real servers and proxies


class HostNetwork:
    """The host's own network namespace, with the interface of tests.netns.Namespace that
    tests.proxies uses. Everything started through it listens on loopback only."""

    name = "host"

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen] = []

    def argv(self, *command: str) -> list[str]:
        return list(command)

    def run(self, *command: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(list(command), check=check, **kwargs)

    def popen(self, *command: str, **kwargs) -> subprocess.Popen:
        process = subprocess.Popen(list(command), **kwargs)
        self._processes.append(process)
        return process

    def close(self) -> None:
        for process in reversed(self._processes):
            stop_process(process)


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_listening(host: str, port: int, process: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((host, port), 1).close()
            return
        except OSError as error:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {host}:{port} did not start (status {process.poll()})") from error
            time.sleep(0.05)


@dataclass(frozen=True)
class Servers:
    pki: Pki
    ports: dict[str, int]  # certificate kind -> port on 127.0.0.1
    v6_port: int  # the good certificate on [::1]
    sni_port: int  # "other-ca" by default, "good" when the client sends SNI "localhost"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    openssl = require_program("openssl", "apt-get install openssl")
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    processes: list[subprocess.Popen] = []

    def serve(host: str, served: Served, *extra: str) -> int:
        port = free_port(host)
        accept = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        process = subprocess.Popen(
            [openssl, "s_server", "-accept", accept, "-cert", str(served.cert_path), "-key", str(served.key_path), "-www", "-quiet", *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        processes.append(process)
        wait_listening(host, port, process)
        return port

    try:
        ports = {kind: serve("127.0.0.1", served) for kind, served in pki.certificates.items()}
        v6_port = serve("::1", pki.certificates["good"])
        good = pki.certificates["good"]
        sni_port = serve(
            "127.0.0.1", pki.certificates["other-ca"], "-servername", "localhost", "-cert2", str(good.cert_path), "-key2", str(good.key_path)
        )
        yield Servers(pki, ports, v6_port, sni_port)
    finally:
        for process in processes:
            stop_process(process)


@pytest.fixture(scope="module")
def host_network() -> Iterator[HostNetwork]:
    network = HostNetwork()
    yield network
    network.close()


@pytest.fixture(scope="module")
def tinyproxy(servers: Servers, host_network: HostNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    """tinyproxy on 127.0.0.2, so that its address differs from the servers' (127.0.0.1).
    CONNECT is allowed to every test server except "expired"."""
    require_program("tinyproxy", "apt-get install tinyproxy")
    allowed = [port for kind, port in servers.ports.items() if kind != "expired"]
    proxy = start_tinyproxy(host_network, allowed, tmp_path_factory.mktemp("tinyproxy"), listen="127.0.0.2")
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def squid(servers: Servers, host_network: HostNetwork, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    require_program("squid", "apt-get install squid")
    require_program("htpasswd", "apt-get install apache2-utils")
    proxy = start_squid(host_network, servers.ports.values(), tmp_path_factory.mktemp("squid"))
    yield proxy
    proxy.stop()


def settings(servers: Servers, kind: str = "good", host: str = "localhost", **changes) -> TransportSettings:
    values = dict(host=host, port=servers.ports[kind], ca_file=servers.pki.ca_path, timeout=TIMEOUT)
    values.update(changes)
    return TransportSettings(**values)


def proxied(proxy: Proxy, user: str | None = "", password: str | None = "") -> ProxySettings:
    """The proxy's settings: its own credentials unless others are given (None: leave out)."""
    return ProxySettings(proxy.host, proxy.port, proxy.user if user == "" else user, proxy.password if password == "" else password)


def failure_of(transport: TransportSettings) -> tuple[str, FailureKind]:
    with pytest.raises(TransportError) as caught:
        open_connection(transport).sock.close()
    return caught.value.failure.reason, caught.value.failure.kind


def http_get(connection: TlsConnection) -> bytes:
    """The s_server -www status page's first line: proves bytes flow both ways over the tunnel."""
    connection.sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
    reply = b""
    while b"\r\n" not in reply:
        chunk = connection.sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply.split(b"\r\n")[0]


# ---------------------------------------------------------------------------------------------
# Direct TLS


@pytest.mark.parametrize("host, expected_target", [("localhost", "127.0.0.1"), ("127.0.0.1", "127.0.0.1")])
def test_good_certificate(servers: Servers, host: str, expected_target: str) -> None:
    connection = open_connection(settings(servers, host=host))
    try:
        assert connection.tls_version in ("TLSv1.2", "TLSv1.3")
        assert connection.cipher
        assert connection.route_target == ipaddress.ip_address(expected_target)
        assert connection.peer_certificate_der == servers.pki.certificates["good"].der
        assert http_get(connection) == b"HTTP/1.0 200 ok"
    finally:
        connection.sock.close()


def test_ipv6_literal(servers: Servers) -> None:
    connection = open_connection(settings(servers, host="::1", port=servers.v6_port))
    try:
        assert connection.route_target == ipaddress.IPv6Address("::1")
        assert http_get(connection) == b"HTTP/1.0 200 ok"
    finally:
        connection.sock.close()


def test_sni_is_sent_and_can_be_overridden(servers: Servers) -> None:
    # The server presents the good certificate only to clients that send SNI "localhost".
    connection = open_connection(settings(servers, host="127.0.0.1", port=servers.sni_port, sni="localhost"))
    connection.sock.close()
    assert connection.peer_certificate_der == servers.pki.certificates["good"].der
    open_connection(settings(servers, host="localhost", port=servers.sni_port)).sock.close()
    # An IP literal sends no SNI; sni="" turns it off for a name.
    assert failure_of(settings(servers, host="127.0.0.1", port=servers.sni_port)) == (UNTRUSTED, FailureKind.TRUST)
    assert failure_of(settings(servers, host="localhost", port=servers.sni_port, sni="")) == (UNTRUSTED, FailureKind.TRUST)


def test_wrong_name(servers: Servers) -> None:
    assert failure_of(settings(servers, "wrong-name")) == (
        "The server's certificate is for other.test, not localhost. Check the host name in the profile.",
        FailureKind.TRUST,
    )
    assert failure_of(settings(servers, "good", sni="vpn.example.org")) == (
        "The server's certificate is for localhost, 127.0.0.1 and ::1, not vpn.example.org. Check the host name in the profile.",
        FailureKind.TRUST,
    )


def test_untrusted_issuer(servers: Servers) -> None:
    assert failure_of(settings(servers, "other-ca")) == (UNTRUSTED, FailureKind.TRUST)
    # Without --ca-file the system store alone does not know our test CA either.
    assert failure_of(settings(servers, "good", ca_file=None)) == (UNTRUSTED, FailureKind.TRUST)


def test_client_auth_only_certificate(servers: Servers) -> None:
    assert failure_of(settings(servers, "client-only")) == (
        "The server's certificate is not meant for TLS servers (its extended key usage allows only clientAuth): "
        "the server's administrator must install a certificate for server authentication.",
        FailureKind.TRUST,
    )


def test_expired_certificate(servers: Servers) -> None:
    date = servers.pki.certificates["expired"].not_after.strftime("%Y-%m-%d %H:%M UTC")
    assert failure_of(settings(servers, "expired")) == (
        f"The server's certificate expired on {date}: ask the server's administrator to renew it, or check this computer's date and time.",
        FailureKind.TRUST,
    )


def test_pin(servers: Servers) -> None:
    digest = hashlib.sha256(servers.pki.certificates["good"].der).digest()
    pin = ":".join(f"{b:02x}" for b in digest)
    open_connection(settings(servers, pin_sha256=pin)).sock.close()
    other = hashlib.sha256(b"another certificate").digest()
    assert failure_of(settings(servers, pin_sha256=other.hex())) == (
        f"The server's certificate fingerprint SHA256 {':'.join(f'{b:02X}' for b in digest)} does not match the "
        f"pinned one (SHA256 {':'.join(f'{b:02X}' for b in other)}): the certificate has changed or someone is "
        "intercepting the connection; check with the server's administrator before changing the pin.",
        FailureKind.TRUST,
    )
    # A pinned certificate is trusted as it stands, whoever issued it (issue 16: a pasted pin makes a
    # private CA's server work); without the pin that chain is refused, and the pin of another leaf
    # does not make it acceptable.
    other_ca = hashlib.sha256(servers.pki.certificates["other-ca"].der).hexdigest()
    assert failure_of(settings(servers, "other-ca")) == (UNTRUSTED, FailureKind.TRUST)
    open_connection(settings(servers, "other-ca", pin_sha256=other_ca)).sock.close()
    assert failure_of(settings(servers, "other-ca", pin_sha256=digest.hex()))[0].startswith("The server's certificate fingerprint SHA256 ")
    # Its dates and name are still checked on a pinned certificate.
    expired = hashlib.sha256(servers.pki.certificates["expired"].der).hexdigest()
    assert failure_of(settings(servers, "expired", pin_sha256=expired))[0].startswith("The server's certificate expired on ")
    wrong_name = hashlib.sha256(servers.pki.certificates["wrong-name"].der).hexdigest()
    assert failure_of(settings(servers, "wrong-name", pin_sha256=wrong_name))[0] == (
        "The server's certificate is for other.test, not localhost. Check the host name in the profile."
    )


def test_unreadable_ca_file(servers: Servers, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    assert failure_of(settings(servers, ca_file=missing)) == (
        f"Cannot read the CA certificate file {missing} (No such file or directory): check the CA file in the profile (--ca-file).",
        FailureKind.TRUST,
    )
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    assert failure_of(settings(servers, ca_file=not_pem)) == (
        f"Cannot read the CA certificate file {not_pem} (it holds no PEM certificate): check the CA file in the profile (--ca-file).",
        FailureKind.TRUST,
    )


# ---------------------------------------------------------------------------------------------
# TCP and the network


def test_connection_refused(servers: Servers) -> None:
    port = free_port()
    assert failure_of(settings(servers, host="127.0.0.1", port=port)) == (
        f"The server 127.0.0.1:{port} refused the connection: check the port and that the SSTP server is running.",
        FailureKind.UNREACHABLE,
    )


def test_connect_timeout(servers: Servers) -> None:
    # A listener whose accept queue is full drops further SYNs, so connect() waits until the timeout.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):  # enough to fill a backlog of 0 on Linux
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            time.sleep(0.2)
            started = time.monotonic()
            assert failure_of(settings(servers, host="127.0.0.1", port=port, timeout=1.5)) == (
                f"The server 127.0.0.1:{port} did not answer within 1.5 seconds: check the server name, the port and any firewall in between.",
                FailureKind.UNREACHABLE,
            )
            assert 1.4 < time.monotonic() - started < 5
        finally:
            for filler in fillers:
                filler.close()


class BannerServer:
    """A TCP service that speaks first and never TLS, like an SSH server: writes its banner to
    each connection, then closes it."""

    def __init__(self, banner: bytes = b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n") -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.banner = banner
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(self.banner)
                time.sleep(0.2)  # let the client read the banner before the close

    def close(self) -> None:
        self.listener.close()
        self.thread.join(5)


def test_not_a_tls_server(servers: Servers) -> None:
    banner = BannerServer()
    try:
        assert failure_of(settings(servers, host="127.0.0.1", port=banner.port)) == (
            f"The server 127.0.0.1:{banner.port} did not answer with TLS (wrong version number): check that the port is the server's HTTPS port.",
            FailureKind.TRUST,
        )
    finally:
        banner.close()


def test_http_port_never_completes_the_handshake(servers: Servers, tinyproxy: Proxy) -> None:
    # tinyproxy speaks HTTP and waits for a request line that our ClientHello never finishes.
    assert failure_of(settings(servers, host="127.0.0.2", port=tinyproxy.port, timeout=1.0)) == (
        f"The server 127.0.0.2:{tinyproxy.port} did not complete the TLS handshake within 1 second: check that the port is the server's HTTPS port.",
        FailureKind.UNREACHABLE,
    )


_IN_EMPTY_NAMESPACE = r"""
import json, sys
from sstpvpn.client.proxy import ProxySettings
from sstpvpn.client.transport import TransportError, TransportSettings, open_connection
results = []
for host, port, proxy in json.loads(sys.argv[1]):
    try:
        open_connection(TransportSettings(host, port, proxy=ProxySettings(*proxy) if proxy else None, timeout=5))
        results.append("connected?!")
    except TransportError as error:
        results.append([error.failure.reason, error.failure.kind.value])
print(json.dumps(results))
"""


def test_resolution_and_unreachable_network_in_an_empty_namespace() -> None:
    """`unshare --net` gives the child a fresh namespace with only a loopback that is down: name
    lookups and connections fail at once, and nothing can leave the machine."""
    require_root("unshare --net")
    unshare = require_program("unshare", "apt-get install util-linux")
    cases = [
        ["vpn.example.invalid", 443, None],
        ["vpn.example.invalid", 443, ["proxy.example.invalid", 3128]],
        ["127.0.0.1", 443, None],
        ["vpn.example.invalid", 443, ["127.0.0.1", 3128]],
    ]
    result = subprocess.run(
        [unshare, "--net", sys.executable, "-c", _IN_EMPTY_NAMESPACE, json.dumps(cases)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        ["Cannot resolve vpn.example.invalid: check the server name and your network.", "unreachable"],
        ["Cannot resolve the proxy proxy.example.invalid: check the proxy settings and your network.", "unreachable"],
        ["The server 127.0.0.1:443 cannot be reached from this network (Network is unreachable): check your network connection.", "unreachable"],
        [
            "The proxy at 127.0.0.1:3128 cannot be reached from this network (Network is unreachable): "
            "check your network connection and the proxy settings.",
            "unreachable",
        ],
    ]


# ---------------------------------------------------------------------------------------------
# Through a proxy


def test_tinyproxy_with_credentials(servers: Servers, tinyproxy: Proxy) -> None:
    connection = open_connection(settings(servers, proxy=proxied(tinyproxy)))
    try:
        assert connection.route_target == ipaddress.IPv4Address("127.0.0.2")  # the proxy, not the server
        assert connection.peer_certificate_der == servers.pki.certificates["good"].der
        assert http_get(connection) == b"HTTP/1.0 200 ok"
    finally:
        connection.sock.close()
    assert f"CONNECT localhost:{servers.ports['good']} HTTP/1.1" in tinyproxy.log_text()


def test_tinyproxy_without_credentials(servers: Servers, tinyproxy: Proxy) -> None:
    for user, password in ((None, None), (tinyproxy.user, None)):
        assert failure_of(settings(servers, proxy=proxied(tinyproxy, user, password))) == (
            f"The proxy at 127.0.0.2:{tinyproxy.port} requires a user name and password: add them to the proxy settings.",
            FailureKind.UNREACHABLE,
        )


def test_tinyproxy_wrong_password(servers: Servers, tinyproxy: Proxy) -> None:
    # tinyproxy 1.11.1 answers 401 (not 407) to a wrong password.
    reason, kind = failure_of(settings(servers, proxy=proxied(tinyproxy, password="not-the-password")))
    assert (reason, kind) == (
        f"The proxy at 127.0.0.2:{tinyproxy.port} refused the user name or password: check them in the proxy settings.",
        FailureKind.UNREACHABLE,
    )
    assert "not-the-password" not in reason


def test_tinyproxy_refuses_the_port(servers: Servers, tinyproxy: Proxy) -> None:
    port = servers.ports["expired"]
    assert failure_of(settings(servers, "expired", proxy=proxied(tinyproxy))) == (
        f"The proxy at 127.0.0.2:{tinyproxy.port} refused to connect to localhost:{port} (HTTP 403 Access violation): "
        "check that the proxy allows connections to this server and port.",
        FailureKind.UNREACHABLE,
    )


def test_certificate_checks_through_the_proxy(servers: Servers, tinyproxy: Proxy) -> None:
    assert failure_of(settings(servers, "wrong-name", proxy=proxied(tinyproxy))) == (
        "The server's certificate is for other.test, not localhost. Check the host name in the profile.",
        FailureKind.TRUST,
    )
    assert failure_of(settings(servers, "other-ca", proxy=proxied(tinyproxy))) == (UNTRUSTED, FailureKind.TRUST)


def test_dead_proxy(servers: Servers, host_network: HostNetwork) -> None:
    dead = dead_proxy(host_network)
    assert failure_of(settings(servers, proxy=ProxySettings(dead.host, dead.port, "user", "pw"))) == (
        f"The proxy at 127.0.0.1:{dead.port} refused the connection: check the proxy address and port, and that the proxy is running.",
        FailureKind.UNREACHABLE,
    )


def test_squid_reuses_the_connection_for_credentials(servers: Servers, squid: Proxy) -> None:
    connection = open_connection(settings(servers, proxy=proxied(squid)))
    try:
        assert http_get(connection) == b"HTTP/1.0 200 ok"
    finally:
        connection.sock.close()
    assert failure_of(settings(servers, proxy=proxied(squid, password="wrong"))) == (
        f"The proxy at 127.0.0.1:{squid.port} refused the user name or password: check them in the proxy settings.",
        FailureKind.UNREACHABLE,
    )
    deadline = time.monotonic() + 5  # squid writes its access log asynchronously
    while "TCP_TUNNEL/200" not in squid.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = squid.log_text()
    assert "TCP_DENIED/407" in log and "TCP_TUNNEL/200" in log and f" {squid.user} " in log


# ---------------------------------------------------------------------------------------------
# diagnose


def get_reply(sock: ssl.SSLSocket, host: str) -> HttpReply:
    """Stands in for the SSTP request: s_server -www answers only GET (read by the SSTP reply reader)."""
    connection = h11.Connection(h11.CLIENT)
    sock.sendall(connection.send(h11.Request(method="GET", target="/", headers=[("Host", host)])))
    reader = ReplyReader(connection, host)
    while (reply := reader.feed(sock.recv(4096))) is None:
        pass
    return reply


def step_names(report) -> list[str]:
    return [step.name for step in report.steps]


def test_diagnose_good_server(servers: Servers) -> None:
    report = diagnose(settings(servers), get_reply)
    assert step_names(report) == ["CA file", "DNS", "TCP", "TLS", "Certificate chain", "Name", "Trust", "Revocation", "SSTP"]
    assert all(step.ok for step in report.steps) and report.would_connect and report.failure is None
    steps = {step.name: step for step in report.steps}
    assert steps["DNS"].details == ("localhost: 127.0.0.1",)
    assert steps["TCP"].details == ("connected to 127.0.0.1:" + str(servers.ports["good"]),)
    assert steps["TLS"].details[1] == "server name sent (SNI): localhost"
    chain = steps["Certificate chain"].details
    good = servers.pki.certificates["good"].der
    assert chain[0] == "certificate 1 (server):"
    assert f"  SHA-1 hash: {hashlib.sha1(good).hexdigest()}" in chain
    assert f"  SHA-256 hash: {hashlib.sha256(good).hexdigest()}" in chain
    assert "  names: DNS:localhost, IP:127.0.0.1, IP:::1" in chain
    assert "  extended key usage: serverAuth" in chain
    assert "certificate 2 (issuer):" in chain and "  subject: CN=Transport Test CA" in chain  # the verified chain
    assert steps["Trust"].details[-1] == "no fingerprint is pinned"
    assert steps["SSTP"].details == ("reply: HTTP/1.0 200 ok",)
    assert all(step.seconds >= 0 for step in report.steps)


def test_diagnose_shows_the_chain_of_an_untrusted_server(servers: Servers) -> None:
    report = diagnose(settings(servers, "other-ca"), get_reply)
    assert step_names(report) == ["CA file", "DNS", "TCP", "TLS", "Certificate chain", "Name", "Trust"]
    assert [step.ok for step in report.steps] == [True, True, True, True, True, True, False]
    assert not report.would_connect
    assert report.failure.reason == UNTRUSTED and report.failure_kind is FailureKind.TRUST
    chain = report.steps[4].details
    assert f"  SHA-256 hash: {hashlib.sha256(servers.pki.certificates['other-ca'].der).hexdigest()}" in chain
    assert "  issuer: CN=Untrusted Test CA" in chain


def test_diagnose_when_the_os_verifier_closed_the_socket(servers: Servers, monkeypatch: pytest.MonkeyPatch) -> None:
    """truststore on Windows/macOS closes the socket when the OS refuses the chain (stood in for by
    tests/unit/os_verifier.py): diagnose used to die there with AttributeError reading the chain."""
    behave_like_windows(monkeypatch)
    report = diagnose(settings(servers, "other-ca"), get_reply)
    assert [(step.name, step.ok) for step in report.steps][3:] == [("TLS", True), ("Certificate chain", True), ("Name", True), ("Trust", False)]
    assert report.failure.reason == OS_UNTRUSTED and report.failure_kind is FailureKind.TRUST
    chain = report.steps[4].details
    assert f"  SHA-256 hash: {hashlib.sha256(servers.pki.certificates['other-ca'].der).hexdigest()}" in chain
    assert "  issuer: CN=Untrusted Test CA" in chain
    assert failure_of(settings(servers, "other-ca")) == (OS_UNTRUSTED, FailureKind.TRUST)
    open_connection(settings(servers)).sock.close()  # a chain to the CA file is still trusted


def test_diagnose_wrong_name_and_pin(servers: Servers) -> None:
    report = diagnose(settings(servers, "wrong-name"), get_reply)
    assert [(step.name, step.ok) for step in report.steps][-3:] == [("Certificate chain", True), ("Name", False), ("Trust", True)]
    assert report.failure.reason == "The server's certificate is for other.test, not localhost. Check the host name in the profile."
    report = diagnose(settings(servers, pin_sha256="00" * 32), get_reply)
    assert step_names(report)[-1] == "Trust" and not report.would_connect
    assert report.failure.reason.startswith("The server's certificate fingerprint SHA256 ")


def test_diagnose_trusts_a_pinned_certificate_from_an_unknown_ca(servers: Servers) -> None:
    pin = hashlib.sha256(servers.pki.certificates["other-ca"].der).hexdigest()
    report = diagnose(settings(servers, "other-ca", pin_sha256=pin), get_reply)
    assert report.would_connect, report.failure
    trust_step = {step.name: step for step in report.steps}["Trust"]
    assert trust_step.details[0] == "the server presented exactly the pinned certificate"
    assert trust_step.details[-1] == "its SHA-256 fingerprint matches the pin"


def test_diagnose_through_the_proxy(servers: Servers, tinyproxy: Proxy) -> None:
    report = diagnose(settings(servers, proxy=proxied(tinyproxy)), get_reply)
    assert report.would_connect, report.failure
    steps = {step.name: step for step in report.steps}
    assert steps["DNS"].details == ("127.0.0.2: 127.0.0.2", "localhost is resolved by the proxy")
    assert steps["TCP"].details == (f"connected to 127.0.0.2:{tinyproxy.port} (the proxy)",)
    assert steps["Proxy"].details == (
        f"CONNECT localhost:{servers.ports['good']}: 200 Connection established",
        f"authenticated as {tinyproxy.user} with Basic",
    )
    report = diagnose(settings(servers, proxy=proxied(tinyproxy, None, None)), get_reply)
    assert step_names(report) == ["CA file", "DNS", "TCP", "Proxy"] and not report.would_connect
    assert report.failure.reason == (f"The proxy at 127.0.0.2:{tinyproxy.port} requires a user name and password: add them to the proxy settings.")


def test_diagnose_unreachable_server(servers: Servers) -> None:
    port = free_port()
    report = diagnose(settings(servers, host="127.0.0.1", port=port))
    assert step_names(report) == ["CA file", "DNS", "TCP"] and not report.would_connect
    assert report.failure_kind is FailureKind.UNREACHABLE


def test_diagnose_default_probe_against_a_server_that_is_not_sstp(servers: Servers) -> None:
    # s_server -www answers only GET, so the real SSTP request gets no reply within the timeout.
    report = diagnose(settings(servers, timeout=1.0))
    assert step_names(report)[-1] == "SSTP" and not report.would_connect
    assert report.failure.reason == (
        f"The server localhost:{servers.ports['good']} did not answer the SSTP request within 1 second: it may not be an SSTP server."
    )
    assert report.failure_kind is FailureKind.PROTOCOL
