"""A Kerberos realm of the test's own and squid asking for Negotiate, checked by squid's
`negotiate_kerberos_auth` against the proxy's keytab: the real parts behind
tests/integration/test_proxy_kerberos.py.

How the parts fit (MIT krb5 1.20, squid 5.7, Debian 12):

- One private directory per realm holds krb5.conf (readable by squid's helper), kdc.conf, the KDC database, its
  stash and the keytabs. Clients and squid find the realm through `KRB5_CONFIG` only: the
  host's /etc/krb5.conf and /etc/krb5kdc are never read or written. krb5.conf turns off every
  DNS look-up (`dns_lookup_kdc`, `dns_canonicalize_hostname`, `rdns` false), so the proxy's
  service principal is `HTTP/<the proxy's name as the client has it>`: here HTTP/localhost, the
  name the client namespace's hosts file gives 127.0.0.1.
- `kdb5_util create -s` takes a random master key on its standard input; the principals get
  random keys (`addprinc -randkey`), written to keytabs with `ktadd`: no password exists, so none
  can reach a command line. The user's ticket comes from `kinit -k -t <user keytab>` into a
  private ticket cache (`KRB5CCNAME=FILE:...`), as a domain sign-in would leave it.
- `krb5kdc -n` (no daemon) listens on a free TCP/UDP port on 127.0.0.1 in the test namespace.
- squid (as in tests/proxies.py, `-N`, as PID 1 of a PID namespace of its own like
  tests/ntlm_proxy.py's, so its helpers end with it) runs
  `negotiate_kerberos_auth -k <keytab> -s HTTP/localhost@REALM -t none` (no replay cache on
  disk); the keytab is owned by squid's user `proxy`, mode 0600, in squid's own directory.
  squid passes its environment (`KRB5_CONFIG`) to the helper.
- `rekey_service()` gives the proxy's principal a new key in the KDC while squid keeps the old
  keytab: tickets issued afterwards cannot be read by the proxy, which refuses them (a proxy whose
  keytab is out of date).

Timings on the 2-core VM: realm created and KDC listening in about 0.3 s, squid listening in
about 0.6 s; the first Negotiate handshake through squid 30-90 ms (helper start), later ones a few ms.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tests.netns import Namespace, stop_process
from tests.nsprobe import free_tcp_port, wait_for_tcp
from tests.ntlm_proxy import NtlmProxy, listening, popen_in_pid_namespace
from tests.proxies import Proxy, squid_config
from tests.realparts import require_program

REALM = "SSTP.TEST"
SERVICE_HOST = "localhost"  # the proxy's name in its service principal HTTP/<name>


def require_kerberos_parts() -> None:
    require_program("krb5kdc", "apt-get install krb5-kdc")
    require_program("kdb5_util", "apt-get install krb5-kdc")
    require_program("kadmin.local", "apt-get install krb5-admin-server")
    require_program("kinit", "apt-get install krb5-user")
    require_program("squid", "apt-get install squid")
    if not Path("/usr/lib/squid/negotiate_kerberos_auth").exists():
        require_program("negotiate_kerberos_auth", "apt-get install squid")


@dataclass
class KerberosRealm:
    """An MIT KDC in a namespace, for one realm, with its principals' keytabs."""

    realm: str
    ns: Namespace = field(repr=False)
    directory: Path
    kdc_port: int
    workdir: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def krb5_conf(self) -> Path:
        return self.directory / "krb5.conf"

    @property
    def env(self) -> dict[str, str]:
        """What a client (or squid) needs to find this realm, and only this realm."""
        return {"KRB5_CONFIG": str(self.krb5_conf), "KRB5_KDC_PROFILE": str(self.directory / "kdc.conf")}

    @property
    def log_path(self) -> Path:
        return self.workdir / f"krb5kdc-{self.kdc_port}.log"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kadmin(self, query: str) -> str:
        result = subprocess.run(["kadmin.local", "-q", query], env={**os.environ, **self.env}, capture_output=True, text=True, check=False)
        if result.returncode != 0 or "error" in result.stderr.lower():
            raise RuntimeError(f"kadmin.local -q {query!r}: {result.stdout}{result.stderr}")
        return result.stdout

    def add_principal(self, name: str, keytab: Path) -> Path:
        """A principal with a random key, written to `keytab`."""
        self.kadmin(f"addprinc -randkey {name}")
        self.kadmin(f"ktadd -k {keytab} {name}")
        return keytab

    def kinit(self, principal: str, keytab: Path, ccache: Path, lifetime: str | None = None) -> None:
        """A ticket-granting ticket for `principal` in the cache `ccache` (inside the namespace,
        where the KDC listens); `lifetime` as kinit -l takes it ("2s")."""
        options = ["-l", lifetime] if lifetime else []
        env = (f"{k}={v}" for k, v in self.env.items())
        self.ns.run("env", *env, f"KRB5CCNAME=FILE:{ccache}", "kinit", *options, "-k", "-t", str(keytab), principal)

    def rekey_service(self, name: str) -> None:
        """A new random key for `name` in the KDC only (its keytab keeps the old one)."""
        self.kadmin(f"cpw -randkey {name}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
        if self.directory.exists():
            kdc_log = self.directory / "kdc.log"
            if kdc_log.exists():
                shutil.copyfile(kdc_log, self.log_path)
            shutil.rmtree(self.directory, ignore_errors=True)


def start_kdc(ns: Namespace, workdir: Path, realm: str = REALM) -> KerberosRealm:
    """A new realm in a private directory and its KDC listening on 127.0.0.1 in `ns`."""
    directory = Path(tempfile.mkdtemp(prefix="krb5-realm-"))
    os.chmod(directory, 0o755)  # squid's helper (user proxy) reads krb5.conf; the database, stash and keytabs are 0600
    port = free_tcp_port(ns, "127.0.0.1")
    kdc = KerberosRealm(realm, ns, directory, port, workdir)
    try:
        (directory / "krb5.conf").write_text(f"""\
[libdefaults]
 default_realm = {realm}
 dns_lookup_kdc = false
 dns_lookup_realm = false
 dns_canonicalize_hostname = false
 rdns = false
 udp_preference_limit = 1
[realms]
 {realm} = {{
  kdc = 127.0.0.1:{port}
 }}
[domain_realm]
 {SERVICE_HOST} = {realm}
""")
        (directory / "kdc.conf").write_text(f"""\
[kdcdefaults]
 kdc_ports = {port}
 kdc_tcp_ports = {port}
[realms]
 {realm} = {{
  database_name = {directory}/principal
  key_stash_file = {directory}/stash
  acl_file = {directory}/kadm5.acl
  kdc_listen = 127.0.0.1:{port}
  kdc_tcp_listen = 127.0.0.1:{port}
 }}
[logging]
 kdc = FILE:{directory}/kdc.log
""")
        master_key = secrets.token_urlsafe(24)
        subprocess.run(
            ["kdb5_util", "create", "-s", "-r", realm],
            input=f"{master_key}\n{master_key}\n",
            env={**os.environ, **kdc.env},
            capture_output=True,
            text=True,
            check=True,
        )
        kdc.process = ns.popen(
            "env",
            *(f"{k}={v}" for k, v in kdc.env.items()),
            "krb5kdc",
            "-n",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        process = kdc.process
        wait_for_tcp(ns, "127.0.0.1", port, timeout=15, still_worth_waiting=lambda: process.poll() is None)
    except BaseException:
        kdc.stop()
        raise
    return kdc


@dataclass
class KerberosProxy(NtlmProxy):
    """squid asking for Negotiate, its tickets checked with the service keytab."""

    service: str = ""  # e.g. HTTP/localhost@SSTP.TEST


def start_squid_kerberos(
    ns: Namespace,
    kdc: KerberosRealm,
    connect_ports: Iterable[int],
    workdir: Path,
    listen: str = "127.0.0.1",
    service_host: str = SERVICE_HOST,
    basic_user: str | None = None,
    stale_keytab: bool = False,
) -> KerberosProxy:
    """squid in `ns` on `listen` offering Negotiate (negotiate_kerberos_auth), then Basic for
    `basic_user` (NCSA, a random password: the proxy's `password`) if given; CONNECT only to
    `connect_ports`. Its service principal HTTP/<service_host> is created in `kdc`; with
    `stale_keytab` the KDC gives it a new key right after squid's keytab is written, so squid
    cannot read any ticket for it (a proxy whose keytab is out of date)."""
    port = free_tcp_port(ns, listen)
    private_dir = Path(tempfile.mkdtemp(prefix="squid-krb5-"))
    os.chmod(private_dir, 0o755)
    proxy_user = pwd.getpwnam("proxy")
    os.chown(private_dir, proxy_user.pw_uid, proxy_user.pw_gid)
    service = f"HTTP/{service_host}@{kdc.realm}"
    password = secrets.token_urlsafe(12) if basic_user else ""
    basic = ""
    try:
        keytab = kdc.add_principal(f"HTTP/{service_host}", private_dir / "squid.keytab")
        if stale_keytab:
            kdc.rekey_service(f"HTTP/{service_host}")
        os.chown(keytab, proxy_user.pw_uid, proxy_user.pw_gid)
        os.chmod(keytab, 0o600)
        if basic_user:
            # htpasswd reads the password from stdin (-i); the file holds only its hash
            subprocess.run(
                ["htpasswd", "-i", "-c", str(private_dir / "passwd"), basic_user], input=password, text=True, check=True, capture_output=True
            )
            os.chmod(private_dir / "passwd", 0o644)
            basic = (
                f"auth_param basic program /usr/lib/squid/basic_ncsa_auth {private_dir}/passwd\n"
                "auth_param basic realm testproxy\nauth_param basic children 2 startup=1\n"
            )
        negotiate = (
            f"auth_param negotiate program /usr/lib/squid/negotiate_kerberos_auth -k {keytab} -s {service} -t none\n"
            "auth_param negotiate children 2 startup=1\nauth_param negotiate keep_alive on\n"
        )
        (private_dir / "squid.conf").write_text(squid_config(listen, port, private_dir, connect_ports, negotiate + basic))
        process = popen_in_pid_namespace(
            ns,
            "env",
            f"KRB5_CONFIG={kdc.krb5_conf}",
            "KRB5RCACHETYPE=none",
            "squid",
            "-N",
            "-f",
            str(private_dir / "squid.conf"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
    except BaseException:
        shutil.rmtree(private_dir, ignore_errors=True)
        raise
    proxy = KerberosProxy(
        "squid-kerberos", listen, port, basic_user or "", password, private_dir / "access.log", process, private_dir, workdir, service=service
    )
    return listening(ns, proxy)


def cache_log(proxy: Proxy) -> str:
    """squid's cache.log (the helper's refusals), while squid runs."""
    path = proxy.log_path.parent / "cache.log"
    return path.read_text(errors="replace") if path.exists() else ""
