"""HTTP proxies with authentication, run inside a test namespace (see real-parts.md section 3).

- tinyproxy 1.11.1 with BasicAuth: good credentials -> CONNECT 200, none -> 407, but a wrong
  password -> **401** (tinyproxy bug #532, fixed upstream after bookworm's version).
- squid with BasicAuth (NCSA): wrong or no credentials -> 407 with Proxy-Authenticate.
- a dead proxy: an address where nothing listens (connection refused).

Passwords stay out of files and argv: tinyproxy reads its config (which must hold the password)
from a pipe; squid's password file holds only a hash, written by `htpasswd -i` from stdin.
Each proxy is stopped by its own PID.
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

# Clients of the proxy: the namespace's loopback and the test address ranges.
_CLIENT_NETWORKS = ("127.0.0.0/8", "198.18.0.0/15")


@dataclass
class Proxy:
    kind: str  # "tinyproxy" or "squid"
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    log_path: Path
    process: subprocess.Popen = field(repr=False)
    _private_dir: Path | None = field(default=None, repr=False)
    _workdir: Path | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """The proxy URL without credentials (give those to the client separately)."""
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_process(self.process)
        if self._private_dir is not None:
            # Keep the log readable after the private directory goes.
            if self._workdir is not None and self.log_path.exists():
                kept = self._workdir / f"{self.kind}-{self.port}.log"
                shutil.copyfile(self.log_path, kept)
                self.log_path = kept
            shutil.rmtree(self._private_dir, ignore_errors=True)
            self._private_dir = None


@dataclass(frozen=True)
class DeadProxy:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _new_password() -> str:
    return secrets.token_urlsafe(12)


def start_tinyproxy(
    ns: Namespace,
    connect_ports: Iterable[int],
    workdir: Path,
    listen: str = "127.0.0.1",
    user: str = "proxyuser",
    password: str | None = None,
    auth: bool = True,
) -> Proxy:
    """tinyproxy with BasicAuth in `ns` (without, when not `auth`), allowing CONNECT only to `connect_ports`."""
    password = password or _new_password()
    port = free_tcp_port(ns, listen)
    log_path = workdir / f"tinyproxy-{port}.log"
    config = [
        f"Port {port}",
        f"Listen {listen}",
        "Timeout 30",
        "LogLevel Info",
        "MaxClients 20",
        *(f"Allow {network}" for network in _CLIENT_NETWORKS),
        *([f"BasicAuth {user} {password}"] if auth else []),
        *(f"ConnectPort {p}" for p in connect_ports),
    ]
    read_end, write_end = os.pipe()
    try:
        # The config is small enough to sit in the pipe buffer; tinyproxy reads it once at start.
        os.write(write_end, ("\n".join(config) + "\n").encode())
        os.close(write_end)
        with open(log_path, "ab") as log:
            # -d: stay in the foreground, so the PID is tinyproxy's and its log goes to `log`.
            process = ns.popen(
                "tinyproxy", "-d", "-c", f"/dev/fd/{read_end}", pass_fds=(read_end,), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
    finally:
        os.close(read_end)
    proxy = Proxy("tinyproxy", listen, port, user, password, log_path, process)
    _wait_ready(ns, proxy)
    return proxy


def start_squid(
    ns: Namespace, connect_ports: Iterable[int], workdir: Path, listen: str = "127.0.0.1", user: str = "proxyuser", password: str | None = None
) -> Proxy:
    """squid with BasicAuth in `ns`; answers 407 to missing *and* wrong credentials.

    It runs from a private directory (squid as root drops to user "proxy", which cannot enter
    pytest's 0700 tmp dirs); its access log is copied to `workdir` when it stops.
    """
    password = password or _new_password()
    port = free_tcp_port(ns, listen)
    private_dir = Path(tempfile.mkdtemp(prefix="squid-"))
    os.chmod(private_dir, 0o755)
    if os.geteuid() == 0:
        proxy_user = pwd.getpwnam("proxy")
        os.chown(private_dir, proxy_user.pw_uid, proxy_user.pw_gid)
    try:
        subprocess.run(["htpasswd", "-i", "-c", str(private_dir / "passwd"), user], input=password, text=True, check=True, capture_output=True)
        os.chmod(private_dir / "passwd", 0o644)
        (private_dir / "squid.conf").write_text(
            squid_config(
                listen,
                port,
                private_dir,
                connect_ports,
                f"auth_param basic program /usr/lib/squid/basic_ncsa_auth {private_dir}/passwd\n"
                "auth_param basic realm testproxy\nauth_param basic children 2 startup=1\n",
            )
        )
        # -N: no daemon, so the PID is squid's master process.
        process = ns.popen(
            "squid", "-N", "-f", str(private_dir / "squid.conf"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
    except BaseException:
        shutil.rmtree(private_dir, ignore_errors=True)
        raise
    proxy = Proxy("squid", listen, port, user, password, private_dir / "access.log", process, private_dir, workdir)
    _wait_ready(ns, proxy)
    return proxy


def squid_config(listen: str, port: int, private_dir: Path, connect_ports: Iterable[int], auth_params: str) -> str:
    """squid.conf for a test proxy: CONNECT only to `connect_ports`, only from the test networks,
    only after one of `auth_params`' schemes (squid's `auth_param` lines) authenticated; no cache,
    logs and pid in `private_dir`."""
    ports = " ".join(str(p) for p in connect_ports)
    return f"""\
http_port {listen}:{port}
pid_filename {private_dir}/squid.pid
access_log stdio:{private_dir}/access.log
cache_log {private_dir}/cache.log
cache deny all
cache_mem 8 MB
coredump_dir {private_dir}
shutdown_lifetime 0 seconds
pinger_enable off
{auth_params}acl authed proxy_auth REQUIRED
acl test_clients src {" ".join(_CLIENT_NETWORKS)}
acl allowed_ports port {ports}
acl CONNECT method CONNECT
http_access deny CONNECT !allowed_ports
http_access allow test_clients authed
http_access deny all
"""


def dead_proxy(ns: Namespace, listen: str = "127.0.0.1") -> DeadProxy:
    """An address in `ns` where nothing listens: connecting is refused at once."""
    return DeadProxy(listen, free_tcp_port(ns, listen))


def _wait_ready(ns: Namespace, proxy: Proxy) -> None:
    try:
        wait_for_tcp(ns, proxy.host, proxy.port, timeout=15)
    except TimeoutError as error:
        status = proxy.process.poll()
        proxy.stop()
        raise RuntimeError(f"{proxy.kind} did not start (exit status {status}): {error}\n{proxy.log_text()[-2000:]}") from None
