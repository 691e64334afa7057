"""Negotiate (Kerberos) proxy authentication end to end: `sstp-vpn connect` through squid whose
negotiate_kerberos_auth checks the user's ticket against the proxy's keytab, issued by an MIT KDC
of the test's own realm (tests/kerberos_proxy.py), to the SoftEther server. All of it in the
SoftEther fixture's client namespace: the KDC and squid on 127.0.0.1, the proxy known by the name
localhost (its service principal HTTP/localhost@SSTP.TEST).

- with a ticket (kinit into a private KRB5CCNAME): connected, ping through the tunnel, squid's
  access log names the Kerberos principal, no password anywhere;
- without a ticket, or with an expired one: refused before any request carries a token, with the
  sentence that says to sign in to the domain or run kinit (exit code 5, the proxy's);
- a proxy whose keytab is out of date: the ticket is refused by squid's helper, with the
  Kerberos refusal sentence; where that proxy also takes Basic and the profile has a proxy user
  and password, the client falls back to Basic on a new connection and connects;
- diagnose through the proxy names the principal and the scheme.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.client_process import CLI, ClientProcess, network_state
from tests.integration.softether import VIRTUAL_HOST
from tests.kerberos_proxy import SERVICE_HOST, KerberosProxy, KerberosRealm, cache_log, require_kerberos_parts, start_kdc, start_squid_kerberos
from tests.realparts import require_root

pytestmark = pytest.mark.realparts

USER = "alice"


@pytest.fixture(scope="module")
def realm(softether, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KerberosRealm]:
    require_root("network namespaces, the KDC and squid")
    require_kerberos_parts()
    kdc = start_kdc(softether.client_ns, tmp_path_factory.mktemp("krb5kdc"))
    yield kdc
    kdc.stop()


@pytest.fixture(scope="module")
def kerberos_squid(softether, realm: KerberosRealm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KerberosProxy]:
    proxy = start_squid_kerberos(softether.client_ns, realm, [softether.port], tmp_path_factory.mktemp("squid-kerberos"))
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def stale_squid(softether, realm: KerberosRealm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KerberosProxy]:
    """squid on 127.0.0.2 (its service HTTP/127.0.0.2) offering Negotiate and Basic, whose keytab
    is out of date: it cannot read any ticket, but checks Basic passwords."""
    proxy = start_squid_kerberos(
        softether.client_ns,
        realm,
        [softether.port],
        tmp_path_factory.mktemp("squid-stale"),
        listen="127.0.0.2",
        service_host="127.0.0.2",
        basic_user="bob",
        stale_keytab=True,
    )
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def ticket(realm: KerberosRealm) -> dict[str, str]:
    """The environment of a user signed in to the realm: KRB5_CONFIG and a private ticket cache
    holding alice's ticket-granting ticket."""
    keytab = realm.add_principal(USER, realm.directory / f"{USER}.keytab")
    ccache = realm.directory / f"{USER}.ccache"
    realm.kinit(USER, keytab, ccache)
    return {"KRB5_CONFIG": str(realm.krb5_conf), "KRB5CCNAME": f"FILE:{ccache}"}


def connect_args(server, proxy: KerberosProxy, *extra: str) -> list[str]:
    return [
        f"{server.server_name}:{server.port}",
        "--user",
        server.username,
        "--ca-file",
        str(server.ca_path),
        "--ifname",
        "sstptest0",
        "--proxy",
        f"http://{SERVICE_HOST}:{proxy.port}",
        *extra,
    ]


def single_failure(client: ClientProcess, code: int) -> str:
    assert client.finish() == code, (client.lines, client.stderr)
    lines = [line for line in client.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert not any(line.startswith("connected:") for line in client.lines)
    return lines[0]


def test_connect_through_squid_with_a_kerberos_ticket(softether, kerberos_squid: KerberosProxy, ticket: dict[str, str]) -> None:
    ns = softether.client_ns
    before = network_state(ns)
    started = time.monotonic()
    client = ClientProcess(ns, connect_args(softether, kerberos_squid), softether.password, env=ticket)
    client.wait_for_line("connected:")
    connect_seconds = time.monotonic() - started
    result = ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", VIRTUAL_HOST, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    client.interrupt()
    assert client.finish() == 0, (client.lines, client.stderr)
    assert client.stderr == ""
    tunnels = [line for line in kerberos_squid.log_text().splitlines() if f"CONNECT {softether.server_name}:{softether.port}" in line]
    assert any("TCP_TUNNEL/200" in line and f"{USER}@SSTP.TEST" in line for line in tunnels), tunnels
    assert network_state(ns) == before
    print(f"connected through the Kerberos proxy in {connect_seconds:.2f} s")


def test_no_ticket_is_refused_with_the_sentence(softether, kerberos_squid: KerberosProxy, realm: KerberosRealm, tmp_path: Path) -> None:
    no_ticket = {"KRB5_CONFIG": str(realm.krb5_conf), "KRB5CCNAME": f"FILE:{tmp_path / 'empty.ccache'}"}
    before = network_state(softether.client_ns)
    client = ClientProcess(softether.client_ns, connect_args(softether, kerberos_squid), softether.password, env=no_ticket)
    sentence = single_failure(client, 5)
    assert sentence.endswith(
        f"The proxy at {SERVICE_HOST}:{kerberos_squid.port} asks for Kerberos (Negotiate) sign-in, and you have no Kerberos ticket: "
        "sign in to the domain (or run kinit), then connect again."
    ), sentence
    assert network_state(softether.client_ns) == before


def test_no_ticket_but_a_password_tries_ntlm_inside_negotiate(softether, kerberos_squid: KerberosProxy, realm: KerberosRealm, tmp_path: Path) -> None:
    """A proxy that knows only Kerberos refuses the NTLM that Negotiate carries without a ticket;
    the sentence names both ways out."""
    no_ticket = {"KRB5_CONFIG": str(realm.krb5_conf), "KRB5CCNAME": f"FILE:{tmp_path / 'empty.ccache'}"}
    args = connect_args(softether, kerberos_squid)
    args[args.index("--proxy") + 1] = f"http://CORP%5Cbob@{SERVICE_HOST}:{kerberos_squid.port}"
    client = ClientProcess(softether.client_ns, args, softether.password, env={**no_ticket, "SSTP_VPN_PROXY_PASSWORD": "Bob-Pa55"})
    sentence = single_failure(client, 5)
    assert sentence.endswith(
        f"The proxy at {SERVICE_HOST}:{kerberos_squid.port} refused the NTLM sign-in (inside Negotiate) as CORP\\bob: check the proxy "
        "user name (DOMAIN\\user or user) and password in the proxy settings, or sign in to the domain (or run kinit) to use Kerberos."
    ), sentence
    assert "Bob-Pa55" not in client.stderr


def test_a_refused_ticket_falls_back_to_basic_with_the_password(softether, stale_squid: KerberosProxy, ticket: dict[str, str]) -> None:
    """The ticket goes first and is refused (squid's helper cannot read it), then Basic with the
    proxy user and password connects, as a browser would fall back."""
    ns = softether.client_ns
    args = connect_args(softether, stale_squid)
    args[args.index("--proxy") + 1] = f"http://{stale_squid.user}@{stale_squid.host}:{stale_squid.port}"
    client = ClientProcess(ns, args, softether.password, env={**ticket, "SSTP_VPN_PROXY_PASSWORD": stale_squid.password})
    client.wait_for_line("connected:")
    client.interrupt()
    assert client.finish() == 0, (client.lines, client.stderr)
    assert "Cannot find key for HTTP/127.0.0.2@SSTP.TEST" in cache_log(stale_squid)
    tunnels = [line for line in stale_squid.log_text().splitlines() if f"CONNECT {softether.server_name}:{softether.port}" in line]
    assert [line.split()[3] for line in tunnels][-1] == "TCP_TUNNEL/200", tunnels
    assert tunnels[-1].split()[7] == stale_squid.user, tunnels


def test_expired_ticket_is_told(softether, kerberos_squid: KerberosProxy, realm: KerberosRealm, ticket: dict[str, str], tmp_path: Path) -> None:
    short = tmp_path / "short.ccache"
    realm.kinit(USER, realm.directory / f"{USER}.keytab", short, lifetime="2s")
    time.sleep(2.5)
    client = ClientProcess(
        softether.client_ns, connect_args(softether, kerberos_squid), softether.password, env={**ticket, "KRB5CCNAME": f"FILE:{short}"}
    )
    sentence = single_failure(client, 5)
    assert sentence.endswith(
        f"The proxy at {SERVICE_HOST}:{kerberos_squid.port} asks for Kerberos (Negotiate) sign-in, and your Kerberos ticket has "
        "expired: sign in to the domain (or run kinit), then connect again."
    ), sentence


@pytest.mark.parametrize("proxy_user", ["", "CORP%5Cbob"], ids=["ticket-only", "with-an-ntlm-user-too"])
def test_diagnose_names_the_principal(softether, kerberos_squid: KerberosProxy, ticket: dict[str, str], proxy_user: str) -> None:
    """With a proxy user and password as well (for NTLM), the ticket still comes first: the
    password is handed to pyspnego for NTLM only."""
    user = f"{proxy_user}@" if proxy_user else ""
    password = ["SSTP_VPN_PROXY_PASSWORD=not-needed-here"] if proxy_user else []
    result = softether.client_ns.run(
        "env",
        *(f"{k}={v}" for k, v in ticket.items()),
        *password,
        *CLI,
        "diagnose",
        f"{softether.server_name}:{softether.port}",
        "--ca-file",
        str(softether.ca_path),
        "--proxy",
        f"http://{user}{SERVICE_HOST}:{kerberos_squid.port}",
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"authenticated as {USER}@SSTP.TEST with Negotiate (Kerberos)" in result.stdout, result.stdout
    print(next((line for line in result.stdout.splitlines() if "Proxy" in line), result.stdout))


def test_a_proxy_with_an_old_keytab_refuses_the_ticket(
    softether, kerberos_squid: KerberosProxy, realm: KerberosRealm, ticket: dict[str, str], tmp_path: Path
) -> None:
    """The KDC gives the proxy's principal a new key; squid still has the old one in its keytab,
    so it cannot read the service ticket the client brings (a fresh cache: no old ticket)."""
    fresh = tmp_path / "fresh.ccache"
    realm.kinit(USER, realm.directory / f"{USER}.keytab", fresh)
    realm.rekey_service(f"HTTP/{SERVICE_HOST}")
    try:
        client = ClientProcess(
            softether.client_ns, connect_args(softether, kerberos_squid), softether.password, env={**ticket, "KRB5CCNAME": f"FILE:{fresh}"}
        )
        sentence = single_failure(client, 5)
        assert sentence.endswith(
            f"The proxy at {SERVICE_HOST}:{kerberos_squid.port} refused the Kerberos sign-in as {USER}@SSTP.TEST: sign in to the domain "
            "again (or run kinit) and check that the proxy's name is the one it has in the domain; if it goes on, ask the proxy's "
            "administrator."
        ), sentence
        assert "Cannot find key for HTTP/localhost@SSTP.TEST" in cache_log(kerberos_squid)
    finally:
        # squid's keytab gets the new key too (appended; kadmin.local keeps the key as it is)
        realm.kadmin(f"ktadd -norandkey -k {kerberos_squid.log_path.parent / 'squid.keytab'} HTTP/{SERVICE_HOST}")


def test_squid_tunnels_only_after_the_ticket(softether, kerberos_squid: KerberosProxy, ticket: dict[str, str]) -> None:
    """The verifier itself, with curl as the client: no ticket -> 407 Negotiate; a ticket -> 200."""
    ns = softether.client_ns
    url = f"https://{softether.server_name}:{softether.port}/"
    proxy = f"http://{SERVICE_HOST}:{kerberos_squid.port}"
    base = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_connect}", "--max-time", "10", "-k", "-p", "-x", proxy]
    anonymous = ns.run(*base, url, check=False)
    assert anonymous.stdout.strip() == "407", anonymous
    kerberos = ns.run("env", *(f"{k}={v}" for k, v in ticket.items()), *base, "--proxy-negotiate", "-U", ":", url, check=False)
    assert kerberos.stdout.strip() == "200", kerberos
