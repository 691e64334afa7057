"""A real NTLM verifier for the proxy tests: squid whose NTLM helper is Samba's `ntlm_auth`,
checked by a standalone Samba's winbindd against a tdbsam user (real-parts.md, section
"Squid with NTLM checked by Samba").

squid's fake helper (`ntlm_fake_auth`) accepts any password; here a wrong password is refused by
Samba's own NTLMv2 check, and winbindd's authentication audit says so (`NT_STATUS_WRONG_PASSWORD`).

How the parts fit (Samba 4.17, squid 5.7, Debian 12):

- One private directory per verifier holds smb.conf and every directory Samba writes (private,
  lock, state, cache, pid, ncalrpc, log). `server role = standalone server`, `passdb backend =
  tdbsam:<dir>/private/passdb.tdb`; the account is in the local SAM, whose domain is the
  `netbios name` (PROXYHOST). A client may send that domain or none; both are checked against it.
- tdbsam needs a Unix account for the user: it exists only inside the test namespace, as a copy
  of /etc/passwd and /etc/group with one more line in /etc/netns/<ns>/ (`ip netns exec` mounts
  those over /etc); the host's files are never touched. The password reaches `pdbedit -a -t`
  through its standard input only.
- libwbclient (used by `ntlm_auth` and `wbinfo`) looks for winbindd's socket at the compiled-in
  /run/samba/winbindd and ignores smb.conf's `winbindd socket directory`. So every Samba or squid
  process runs as `sh -c 'mount --bind <dir>/run /run/samba && exec ...'` inside `ip netns exec`,
  whose private mount namespace keeps that bind away from the host.
- winbindd starts `samba-dcerpcd` (and its `rpcd_*` workers) by itself, and those double-fork.
  winbindd therefore runs as PID 1 of its own PID namespace (`unshare --pid --fork --kill-child`):
  when winbindd ends, the kernel ends and reaps everything it started, so nothing is left behind
  (this machine's PID 1 reaps no orphans). winbindd is stopped by its own PID (the unshare
  process's only child), then the unshare process is waited for.
- `ntlm_auth` runs as squid's user `proxy` and reaches winbindd's privileged pipe in
  <dir>/state/winbindd_privileged, created beforehand as mode 0750, owner root, group proxy
  (winbindd checks the owner and the mode, not the group).
- winbindd logs at `log level = 1 auth_audit:3` to its standard output, one line per check:
  `Auth: [winbind,NTLM_AUTH, (ntlm_auth), PID] user [DOM]\\[user] ... with [NTLMv2] status [...]`.
  `SambaVerifier.checks()` parses them.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tests.netns import Namespace, stop_process
from tests.nsprobe import free_tcp_port, wait_for_tcp
from tests.proxies import Proxy
from tests.realparts import require_program

# libwbclient's compiled-in socket directory is /run/samba/winbindd; we bind our own over its parent.
WINBIND_RUN_DIR = Path("/run/samba")
NTLM_AUTH = "/usr/bin/ntlm_auth"
_CLIENT_NETWORKS = ("127.0.0.0/8", "198.18.0.0/15")
_BIND_AND_EXEC = 'mount --bind "$0" ' + str(WINBIND_RUN_DIR) + ' && exec "$@"'

_AUDIT = re.compile(
    r"Auth: \[winbind,(?P<kind>[A-Z_]+), (?P<client>[^,]*), \d+\] user \[(?P<domain>[^\]]*)\]\\\[(?P<user>[^\]]*)\]"
    r" at \[[^\]]*\] with \[(?P<method>[^\]]*)\] status \[(?P<status>[^\]]*)\]"
)


def require_samba_parts() -> None:
    """Skip (laptop) or fail (CI) unless Samba, winbind and squid are installed."""
    require_program("squid", "apt-get install squid")
    require_program("ntlm_auth", "apt-get install winbind")
    require_program("winbindd", "apt-get install winbind")
    require_program("wbinfo", "apt-get install winbind")
    require_program("pdbedit", "apt-get install samba")
    require_program("unshare", "apt-get install util-linux")


@dataclass(frozen=True)
class AuthCheck:
    """One line of winbindd's authentication audit."""

    kind: str  # NTLM_AUTH (challenge/response, what ntlm_auth asks), PAM_AUTH (plaintext), PASSDB
    client: str  # "(ntlm_auth)", "wbinfo", ...
    domain: str  # as the client sent it ("" when it sent none)
    user: str
    method: str  # NTLMv2, NTLMv1, Plaintext
    status: str  # NT_STATUS_OK, NT_STATUS_WRONG_PASSWORD, ...


@dataclass
class SambaVerifier:
    """A standalone Samba's winbindd in `ns`, with one local user; see the module docstring."""

    ns: Namespace
    workdir: Path  # keeps winbindd's log (the audit) after the private directory is removed
    user: str = "ntlmuser"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12), repr=False)
    domain: str = "PROXYHOST"  # the netbios name: the local SAM's domain
    workgroup: str = "TESTDOM"
    directory: Path = field(init=False)
    process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    winbindd_pid: int | None = field(default=None, init=False)
    _etc_files: list[Path] = field(default_factory=list, init=False, repr=False)

    @property
    def conf(self) -> Path:
        return self.directory / "smb.conf"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"winbindd-{self.ns.name}.log"

    def wrap(self, *command: str) -> list[str]:
        """`command` with this verifier's socket directory bound at /run/samba (run it in `ns`)."""
        return ["sh", "-c", _BIND_AND_EXEC, str(self.directory / "run"), *command]

    def run(self, *command: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return self.ns.run(*self.wrap(*command), check=check, **kwargs)

    def start(self, timeout: float = 30.0) -> SambaVerifier:
        require_samba_parts()
        if not WINBIND_RUN_DIR.is_dir():
            # The winbind package's own runtime directory; a container may start with an empty /run.
            WINBIND_RUN_DIR.mkdir(mode=0o755, parents=True)
        self.directory = Path(tempfile.mkdtemp(prefix="samba-ntlm-"))
        try:
            self._prepare()
            self._add_user()
            self._start_winbindd(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare(self) -> None:
        d = self.directory
        os.chmod(d, 0o755)  # squid's helper runs as "proxy" and must reach smb.conf and the pipes
        for name in ("private", "lock", "state", "cache", "pid", "ncalrpc", "run", "log"):
            (d / name).mkdir(mode=0o700 if name == "private" else 0o755)
        privileged = d / "state" / "winbindd_privileged"
        privileged.mkdir()
        os.chmod(privileged, 0o750)
        os.chown(privileged, 0, pwd.getpwnam("proxy").pw_gid)
        self.conf.write_text(f"""\
[global]
  server role = standalone server
  workgroup = {self.workgroup}
  netbios name = {self.domain}
  passdb backend = tdbsam:{d}/private/passdb.tdb
  private dir = {d}/private
  lock directory = {d}/lock
  state directory = {d}/state
  cache directory = {d}/cache
  pid directory = {d}/pid
  ncalrpc dir = {d}/ncalrpc
  log file = {d}/log/log.%m
  log level = 1 auth_audit:3
  interfaces = lo
  bind interfaces only = yes
  disable netbios = yes
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
""")
        os.chmod(self.conf, 0o644)

    def _add_user(self) -> None:
        # The Unix account exists only in the namespace: /etc/netns/<ns>/passwd and group.
        passwd_text, group_text = Path("/etc/passwd").read_text(), Path("/etc/group").read_text()
        used = {int(line.split(":")[2]) for line in (passwd_text + group_text).splitlines() if line.count(":") >= 3}
        uid = next(n for n in range(61000, 65000) if n not in used)
        self.ns.etc.mkdir(parents=True, exist_ok=True)
        for name, text, line in (
            ("passwd", passwd_text, f"{self.user}:x:{uid}:{uid}:NTLM test user:/nonexistent:/usr/sbin/nologin"),
            ("group", group_text, f"{self.user}:x:{uid}:"),
        ):
            path = self.ns.etc / name
            if path.exists():
                raise RuntimeError(f"{path} exists already: another verifier uses namespace {self.ns.name}")
            path.write_text(text.rstrip("\n") + "\n" + line + "\n")
            self._etc_files.append(path)
        # pdbedit -t reads the new password twice from standard input.
        self.ns.run("pdbedit", "-s", str(self.conf), "-a", "-u", self.user, "-t", input=f"{self.password}\n{self.password}\n")

    def _start_winbindd(self, timeout: float) -> None:
        with open(self.log_path, "ab") as log:
            self.process = self.ns.popen(
                "unshare",
                "--pid",
                "--fork",
                "--kill-child",
                *self.wrap("winbindd", "--foreground", "--no-process-group", "--debug-stdout", "-s", str(self.conf)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )
        end = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"winbindd exited with status {self.process.returncode}:\n{self.log_text()[-2000:]}")
            if self.winbindd_pid is None:
                self.winbindd_pid = _only_child(self.process.pid)
            if self.winbindd_pid is not None and self.run("wbinfo", "--ping", check=False).returncode == 0:
                return
            if time.monotonic() > end:
                raise TimeoutError(f"winbindd did not answer wbinfo --ping within {timeout:.0f} s:\n{self.log_text()[-2000:]}")
            time.sleep(0.05)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def checks(self, kind: str = "NTLM_AUTH") -> list[AuthCheck]:
        """winbindd's audit lines of one kind, oldest first."""
        found = (AuthCheck(**m.groupdict()) for m in _AUDIT.finditer(self.log_text()))
        return [check for check in found if check.kind == kind]

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None and self.winbindd_pid is not None:
                try:
                    os.kill(self.winbindd_pid, signal.SIGTERM)  # winbindd itself; unshare ignores SIGTERM
                except ProcessLookupError:
                    pass
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    pass
            stop_process(self.process, timeout=2)  # SIGKILL of unshare takes winbindd (--kill-child)
            self.process = None
        for path in self._etc_files:
            path.unlink(missing_ok=True)
        self._etc_files.clear()
        if getattr(self, "directory", None) is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def _only_child(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if len(children) == 1 else None


def start_squid_ntlm(
    ns: Namespace,
    verifier: SambaVerifier,
    connect_ports: Iterable[int],
    workdir: Path,
    listen: str = "127.0.0.1",
    offer: Iterable[str] = ("NTLM",),
) -> Proxy:
    """squid in `ns` asking for the schemes in `offer` (in that order), every one checked by
    `verifier`'s winbindd through `ntlm_auth`; CONNECT only to `connect_ports`.

    - "NTLM": `--helper-protocol=squid-2.5-ntlmssp` (audited as NTLM_AUTH, NTLMv2);
    - "Negotiate": `--helper-protocol=gss-spnego`, SPNEGO with NTLM inside (no Kerberos here:
      what a Windows client falls back to without a ticket; audited as NTLM_AUTH too);
    - "Basic": `--helper-protocol=squid-2.5-basic` (audited as PAM_AUTH, Plaintext).
    """
    port = free_tcp_port(ns, listen)
    private_dir = Path(tempfile.mkdtemp(prefix="squid-ntlm-"))
    os.chmod(private_dir, 0o755)
    proxy_user = pwd.getpwnam("proxy")
    os.chown(private_dir, proxy_user.pw_uid, proxy_user.pw_gid)
    helper = f"{NTLM_AUTH} --configfile={verifier.conf}"
    schemes = {
        "NTLM": f"auth_param ntlm program {helper} --helper-protocol=squid-2.5-ntlmssp\n"
        "auth_param ntlm children 2 startup=1\nauth_param ntlm keep_alive on\n",
        "Negotiate": f"auth_param negotiate program {helper} --helper-protocol=gss-spnego\n"
        "auth_param negotiate children 2 startup=1\nauth_param negotiate keep_alive on\n",
        "Basic": f"auth_param basic program {helper} --helper-protocol=squid-2.5-basic\n"
        "auth_param basic realm testproxy\nauth_param basic children 2 startup=1\n",
    }
    auth_params = "".join(schemes[scheme] for scheme in offer)
    try:
        ports = " ".join(str(p) for p in connect_ports)
        (private_dir / "squid.conf").write_text(f"""\
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
""")
        # -N: no daemon, so the PID is squid's master process (sh and ip netns exec exec into it).
        process = ns.popen(
            *verifier.wrap("squid", "-N", "-f", str(private_dir / "squid.conf")),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
    except BaseException:
        shutil.rmtree(private_dir, ignore_errors=True)
        raise
    proxy = Proxy("squid-ntlm", listen, port, verifier.user, verifier.password, private_dir / "access.log", process, private_dir, workdir)
    try:
        wait_for_tcp(ns, listen, port, timeout=15, still_worth_waiting=lambda: process.poll() is None)
    except TimeoutError as error:
        cache_log = (private_dir / "cache.log").read_text(errors="replace") if (private_dir / "cache.log").exists() else ""
        proxy.stop()
        raise RuntimeError(f"squid did not start (exit status {process.poll()}): {error}\n{cache_log[-2000:]}") from None
    return proxy
