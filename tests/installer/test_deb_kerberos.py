"""The .deb's frozen `sstp-vpn` signs in to a Kerberos proxy: python-gssapi's and krb5's Cython
modules import each other from C, where PyInstaller cannot see them (installer/pyinstaller/
sstpvpn_bundle.hidden_imports); a bundle without them says a package is missing instead.

The package's files are unpacked (`dpkg-deb -x`) into a temporary folder, not installed. A
namespace of the test's own holds an HTTPS target (openssl s_server), an MIT KDC of the test's own
realm and squid with negotiate_kerberos_auth (tests/kerberos_proxy.py); `diagnose` goes through the
proxy with a `kinit` ticket and without one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kerberos_proxy import SERVICE_HOST, require_kerberos_parts, start_kdc, start_squid_kerberos
from tests.netns import Namespace
from tests.nsprobe import free_tcp_port, wait_for_tcp
from tests.realparts import require_program, require_root

pytestmark = pytest.mark.realparts


@pytest.fixture(scope="module")
def frozen_cli(built_deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    unpacked = tmp_path_factory.mktemp("deb-unpacked")
    subprocess.run(["dpkg-deb", "-x", str(built_deb), str(unpacked)], check=True)
    cli = unpacked / "usr" / "lib" / "sstp-vpn" / "sstp-vpn"
    assert cli.is_file()
    return cli


@pytest.fixture(scope="module")
def kerberos_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    require_root("a network namespace, the KDC and squid")
    require_program("openssl", "apt-get install openssl")
    require_kerberos_parts()
    work = tmp_path_factory.mktemp("kerberos-lab")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(work / "key.pem")]
        + ["-out", str(work / "cert.pem"), "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True,
        capture_output=True,
    )
    with Namespace("debkrb") as ns:
        port = free_tcp_port(ns, "127.0.0.1")
        ns.popen(
            "openssl",
            "s_server",
            "-accept",
            f"127.0.0.1:{port}",
            "-cert",
            str(work / "cert.pem"),
            "-key",
            str(work / "key.pem"),
            "-www",
            "-quiet",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        wait_for_tcp(ns, "127.0.0.1", port)
        kdc = start_kdc(ns, work)
        try:
            squid = start_squid_kerberos(ns, kdc, [port], work)
            try:
                keytab = kdc.add_principal("alice", kdc.directory / "alice.keytab")
                kdc.kinit("alice", keytab, kdc.directory / "alice.ccache")
                yield {"ns": ns, "kdc": kdc, "squid": squid, "port": port, "ca": work / "cert.pem"}
            finally:
                squid.stop()
        finally:
            kdc.stop()


@pytest.mark.parametrize("ticket", [True, False], ids=["ticket", "no-ticket"])
def test_frozen_diagnose_through_the_kerberos_proxy(frozen_cli: Path, kerberos_lab: dict, ticket: bool) -> None:
    kdc, squid = kerberos_lab["kdc"], kerberos_lab["squid"]
    ccache = kdc.directory / ("alice.ccache" if ticket else "nobody.ccache")
    result = kerberos_lab["ns"].run(
        "env",
        f"KRB5_CONFIG={kdc.krb5_conf}",
        f"KRB5CCNAME=FILE:{ccache}",
        str(frozen_cli),
        "diagnose",
        f"localhost:{kerberos_lab['port']}",
        "--ca-file",
        str(kerberos_lab["ca"]),
        "--proxy",
        f"http://{SERVICE_HOST}:{squid.port}",
        check=False,
        timeout=60,
    )
    if ticket:  # the proxy step passes; the SSTP step then fails (s_server is no SSTP server)
        assert "authenticated as alice@SSTP.TEST with Negotiate (Kerberos)" in result.stdout, result.stdout + result.stderr
    else:
        assert (
            f"The proxy at {SERVICE_HOST}:{squid.port} asks for Kerberos (Negotiate) sign-in, and you have no Kerberos ticket: "
            "sign in to the domain (or run kinit), then connect again."
        ) in result.stdout, result.stdout + result.stderr
        assert result.returncode == 5
