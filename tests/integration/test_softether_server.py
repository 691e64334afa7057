"""Smoke tests of the real-server fixtures: the SoftEther SSTP server and the HTTP proxies.

These use no product code: a small script inside the client namespace speaks TLS and the SSTP HTTP
handshake ([MS-SSTP] 3.2.4.1, protocol.md 1.2) itself, optionally through an HTTP proxy.
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.integration.softether import (
    BRIDGE_PEER_ADDRESS,
    CLIENT_ADDRESS,
    SERVER_ADDRESS,
    STATE_DIRS,
    TAP_DEVICE,
    VIRTUAL_HOST,
    SoftEtherServer,
    ping_once,
)
from tests.netns import Namespace
from tests.proxies import DeadProxy, Proxy

pytestmark = pytest.mark.realparts

# Reads its parameters as JSON on stdin (so proxy passwords stay out of argv), prints JSON.
_SSTP_HANDSHAKE = r"""
import base64, hashlib, json, socket, ssl, sys, uuid
p = json.load(sys.stdin)
out = {}

def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    lines = data.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
    return lines[0], headers

target = f"{p['host']}:{p['port']}"
try:
    if p.get("proxy"):
        sock = socket.create_connection((p["proxy"]["host"], p["proxy"]["port"]), 5)
        request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
        if p["proxy"].get("user") is not None:
            token = base64.b64encode(f"{p['proxy']['user']}:{p['proxy']['password']}".encode()).decode()
            request += f"Proxy-Authorization: Basic {token}\r\n"
        sock.sendall((request + "\r\n").encode())
        line, headers = read_head(sock)
        out["proxy_status"], out["proxy_headers"] = int(line.split()[1]), headers
        if out["proxy_status"] != 200:
            raise SystemExit
    else:
        sock = socket.create_connection((p["host"], p["port"]), 5)
    if p.get("cafile"):
        context = ssl.create_default_context(cafile=p["cafile"])
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        tls = context.wrap_socket(sock, server_hostname=p["sni"])
    except ssl.SSLCertVerificationError as error:
        out["tls_error"] = error.verify_message
        raise SystemExit
    out["cert_sha256"] = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
    tls.sendall((
        "SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\r\n"
        f"Host: {p['sni']}\r\n"
        "Content-Length: 18446744073709551615\r\n"
        f"SSTPCORRELATIONID: {{{str(uuid.uuid4()).upper()}}}\r\n\r\n").encode())
    out["status_line"], out["headers"] = read_head(tls)
    tls.close()
except OSError as error:
    out["os_error"] = f"{type(error).__name__}: {error}"
except SystemExit:
    pass
print(json.dumps(out))
"""


def sstp_handshake(
    ns: Namespace,
    server: SoftEtherServer,
    verify: bool = True,
    sni: str | None = None,
    proxy: Proxy | DeadProxy | None = None,
    credentials: tuple[str, str] | None = None,
) -> dict:
    params: dict = {"host": server.host, "port": server.port, "sni": sni or server.server_name, "cafile": str(server.ca_path) if verify else None}
    if proxy is not None:
        params["proxy"] = {"host": proxy.host, "port": proxy.port}
        if credentials is not None:
            params["proxy"].update(user=credentials[0], password=credentials[1])
    result = ns.run(sys.executable, "-c", _SSTP_HANDSHAKE, input=json.dumps(params), timeout=30)
    return json.loads(result.stdout)


def assert_sstp_accepted(reply: dict) -> None:
    assert reply.get("status_line", "").startswith("HTTP/1.1 200"), reply
    assert reply["headers"].get("content-length") == "18446744073709551615", reply


# -- the server -----------------------------------------------------------------------------------


def test_topology(softether: SoftEtherServer) -> None:
    routes = softether.client_ns.run("ip", "-4", "route", "show", "default").stdout
    assert f"default via {SERVER_ADDRESS}" in routes
    addresses = softether.client_ns.run("ip", "-4", "-o", "addr", "show").stdout
    assert f"{CLIENT_ADDRESS}/24" in addresses
    assert ping_once(softether.client_ns, SERVER_ADDRESS)
    # Inside the client namespace the server's name resolves to its address.
    assert softether.client_ns.run("getent", "hosts", softether.server_name).stdout.split()[0] == SERVER_ADDRESS
    # The server namespace has no route out: nothing it might try reaches beyond our veth.
    assert softether.server_ns.run("ip", "-4", "route", "show", "default").stdout.strip() == ""
    # The server's state lives in the compiled-in directories, which we prepared.
    assert all((d / ".sstpvpn-test-state").exists() for d in STATE_DIRS)
    assert softether.startup_seconds > 0
    print(f"SoftEther fixture startup: {softether.startup_seconds:.2f} s")


def test_server_configuration(softether: SoftEtherServer) -> None:
    shown = softether.vpncmd_batch([f"Hub {softether.hub}", "SecureNatHostGet", "DhcpGet", "NatGet", "ProtoOptionsGet SSTP", "ListenerList"])
    rows = {}
    for line in shown.splitlines():
        name, bar, value = line.partition("|")
        if bar:
            rows.setdefault(name.strip(), value.strip())
    assert rows["IP Address"] == VIRTUAL_HOST
    assert rows["Start Distribution Address Band"] == "198.18.30.10"
    assert rows["End Distribution Address Band"] == "198.18.30.200"
    assert rows["Default Gateway Address"] == VIRTUAL_HOST
    assert rows["DNS Server Address 1"] == VIRTUAL_HOST
    assert rows["DNS Server Address 2"] == "None"
    assert rows["Use Virtual NAT Function"] == "No"  # nothing leaves SoftEther
    assert rows["Enabled"].startswith("Boolean|True")
    assert rows[f"TCP {softether.port}"] == "Listening"


def test_served_certificate_is_ours(softether: SoftEtherServer) -> None:
    reply = sstp_handshake(softether.client_ns, softether)
    assert "tls_error" not in reply and "os_error" not in reply, reply
    assert reply["cert_sha256"] == softether.served_cert_sha256
    assert softether.served_cert_sha256 == softether.certificates["good"].sha256


def test_sstp_http_handshake(softether: SoftEtherServer) -> None:
    reply = sstp_handshake(softether.client_ns, softether)
    assert_sstp_accepted(reply)
    assert reply["headers"].get("server") == "Microsoft-HTTPAPI/2.0"


def test_the_same_certificate_without_matching_name(softether: SoftEtherServer) -> None:
    # SoftEther has one certificate and does no SNI selection: a wrong SNI gets the same one,
    # which then fails the host-name check.
    reply = sstp_handshake(softether.client_ns, softether, sni="wronghost.test")
    assert "Hostname mismatch" in reply.get("tls_error", ""), reply


@pytest.mark.parametrize("kind, reason", [("wrong-name", "Hostname mismatch"), ("other-ca", "unable to get local issuer certificate")])
def test_wrong_certificates_are_served(softether: SoftEtherServer, kind: str, reason: str) -> None:
    with softether.serving(kind) as certificate:
        assert softether.served_cert_sha256 == certificate.sha256
        seen = sstp_handshake(softether.client_ns, softether, verify=False)
        assert seen["cert_sha256"] == certificate.sha256
        assert_sstp_accepted(seen)  # the server itself works; only the certificate is wrong
        verified = sstp_handshake(softether.client_ns, softether)
        assert reason in verified.get("tls_error", ""), verified
    reply = sstp_handshake(softether.client_ns, softether)
    assert reply["cert_sha256"] == softether.certificates["good"].sha256
    assert_sstp_accepted(reply)


def test_stop_then_start(softether: SoftEtherServer) -> None:
    first_pid = softether.pid
    assert first_pid is not None
    softether.stop()
    assert not softether.running and softether.pid is None
    reply = sstp_handshake(softether.client_ns, softether)
    assert "ConnectionRefusedError" in reply.get("os_error", ""), reply
    softether.start()
    assert softether.running and softether.pid != first_pid
    assert_sstp_accepted(sstp_handshake(softether.client_ns, softether))


def test_killed_server_restarts_with_its_configuration(softether: SoftEtherServer) -> None:
    softether.stop(kill=True)
    softether.start()
    reply = sstp_handshake(softether.client_ns, softether)
    assert reply["cert_sha256"] == softether.certificates["good"].sha256
    assert_sstp_accepted(reply)
    users = softether.vpncmd_batch([f"Hub {softether.hub}", f"UserGet {softether.username}"])
    assert "Password Authentication" in users


def test_password_stays_out_of_logs(softether: SoftEtherServer) -> None:
    assert softether.password not in softether.log_path.read_text(errors="replace")
    for directory in STATE_DIRS:
        for path in directory.rglob("*"):
            if path.is_file():
                assert softether.password.encode() not in path.read_bytes(), path


def test_bridge_peer(softether: SoftEtherServer) -> None:
    tap = f"tap_{TAP_DEVICE}"
    with softether.bridge_peer() as peer:
        link = json.loads(peer.run("ip", "-j", "link", "show", tap).stdout)[0]
        assert "UP" in link["flags"] and "LOWER_UP" in link["flags"], link
        assert f"{BRIDGE_PEER_ADDRESS}/24" in peer.run("ip", "-4", "-o", "addr", "show", tap).stdout
        # The tap is on the hub's segment: SecureNAT's virtual host answers the peer.
        assert ping_once(peer, VIRTUAL_HOST, timeout=15)
        assert softether.server_ns.run("ip", "link", "show", tap, check=False).returncode != 0
    assert peer.name not in softether.server_ns.run("ip", "netns", "list").stdout
    assert softether.server_ns.run("ip", "link", "show", tap, check=False).returncode != 0


# -- the proxies ----------------------------------------------------------------------------------


def test_tinyproxy(softether: SoftEtherServer, tinyproxy: Proxy) -> None:
    good = sstp_handshake(softether.client_ns, softether, proxy=tinyproxy, credentials=(tinyproxy.user, tinyproxy.password))
    assert good.get("proxy_status") == 200, good
    assert_sstp_accepted(good)
    assert good["cert_sha256"] == softether.served_cert_sha256

    anonymous = sstp_handshake(softether.client_ns, softether, proxy=tinyproxy)
    assert anonymous["proxy_status"] == 407
    assert anonymous["proxy_headers"]["proxy-authenticate"].startswith("Basic")

    wrong = sstp_handshake(softether.client_ns, softether, proxy=tinyproxy, credentials=(tinyproxy.user, "not-" + tinyproxy.password))
    assert wrong["proxy_status"] == 401  # tinyproxy 1.11.1 quirk; fixed upstream to 407
    assert "www-authenticate" in wrong["proxy_headers"]

    log = tinyproxy.log_text()
    assert f"CONNECT {softether.host}:{softether.port}" in log
    assert tinyproxy.password not in log


def test_squid(softether: SoftEtherServer, squid: Proxy) -> None:
    good = sstp_handshake(softether.client_ns, softether, proxy=squid, credentials=(squid.user, squid.password))
    assert good.get("proxy_status") == 200, good
    assert_sstp_accepted(good)
    wrong = sstp_handshake(softether.client_ns, softether, proxy=squid, credentials=(squid.user, "not-" + squid.password))
    assert wrong["proxy_status"] == 407
    assert wrong["proxy_headers"]["proxy-authenticate"].startswith("Basic")


def test_dead_proxy(softether: SoftEtherServer, dead_proxy_address: DeadProxy) -> None:
    reply = sstp_handshake(softether.client_ns, softether, proxy=dead_proxy_address)
    assert "ConnectionRefusedError" in reply.get("os_error", ""), reply
