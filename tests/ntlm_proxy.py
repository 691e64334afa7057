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
- winbindd starts `samba-dcerpcd` (and its `rpcd_*` workers) by itself, and those double-fork;
  squid leaves its helpers behind when it stops. Both therefore run as PID 1 of a PID namespace
  of their own (`unshare --pid --fork --kill-child`): when they end, the kernel ends and reaps
  everything they started, so nothing is left behind (this machine's PID 1 reaps no orphans).
  Each is stopped by its own PID (SIGTERM to the unshare process's only child; unshare ignores
  SIGTERM), then the unshare process is waited for; SIGKILL to unshare is the fallback.
- squid runs as root (`-N`, no daemon) and its helpers as its user `proxy`:
  `auth_param ntlm program /usr/bin/ntlm_auth --configfile=<dir>/smb.conf
  --helper-protocol=squid-2.5-ntlmssp` (Negotiate: `--helper-protocol=gss-spnego`, SPNEGO
  with NTLM inside; Basic: `--helper-protocol=squid-2.5-basic`). `ntlm_auth` reaches winbindd's
  privileged pipe in <dir>/state/winbindd_privileged, created beforehand as mode 0750, owner
  root, group proxy (winbindd checks the owner and the mode, not the group); <dir> and smb.conf
  are world-readable, the private dir is not.
- winbindd logs at `log level = 1 auth_audit:3` to its standard output (a file in the test's
  workdir, kept after the private directory goes), one line per check:
  `Auth: [winbind,NTLM_AUTH, (ntlm_auth), PID] user [DOM]\\[user] ... with [NTLMv2] status [...]`.
  `SambaVerifier.checks()` parses them; PID is the asking helper's inside squid's PID namespace,
  and `NtlmProxy.helper_protocol(pid)` says which of squid's helpers it was.

Timings on the 2-core VM: winbindd ready 0.4-0.6 s, squid listening 0.6 s, both stopped in
about 1.5 s; the first NTLM handshake through squid ~0.2 s (helper start), later ones 5-25 ms.
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
from typing import TypeVar

from tests.netns import Namespace, stop_process
from tests.nsprobe import free_tcp_port, wait_for_tcp
from tests.proxies import Proxy, squid_config
from tests.realparts import require_program

# libwbclient's compiled-in socket directory is /run/samba/winbindd; we bind our own over its parent.
WINBIND_RUN_DIR = Path("/run/samba")
NTLM_AUTH = "/usr/bin/ntlm_auth"
_BIND_AND_EXEC = 'mount --bind "$0" ' + str(WINBIND_RUN_DIR) + ' && exec "$@"'

_AUDIT = re.compile(
    r"Auth: \[winbind,(?P<kind>[A-Z_]+), (?P<client>[^,]*), (?P<pid>\d+)\] user \[(?P<domain>[^\]]*)\]\\\[(?P<user>[^\]]*)\]"
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
    pid: str  # the asking process: for "(ntlm_auth)", one of squid's helpers (NtlmProxy.helper_protocol)
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
            self.process = popen_in_pid_namespace(
                self.ns,
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
                self.winbindd_pid = main_pid(self.process)
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
            stop_pid_namespace(self.process, self.winbindd_pid)
            self.process = None
        for path in self._etc_files:
            path.unlink(missing_ok=True)
        self._etc_files.clear()
        if getattr(self, "directory", None) is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


def popen_in_pid_namespace(ns: Namespace, *command: str, **kwargs) -> subprocess.Popen:
    """`command` in `ns` as PID 1 of a PID namespace of its own: whatever it starts (and leaves
    behind) is ended and reaped by the kernel when it ends. The Popen is the `unshare` process,
    which ignores SIGTERM: stop it with `stop_pid_namespace`."""
    return ns.popen("unshare", "--pid", "--fork", "--kill-child", *command, **kwargs)


def main_pid(process: subprocess.Popen) -> int | None:
    """The host PID of the command under `unshare` (its only child), once it exists."""
    children = _children(process.pid)
    return children[0] if len(children) == 1 else None


SquidProxy = TypeVar("SquidProxy", bound="NtlmProxy")


def listening(ns: Namespace, proxy: SquidProxy) -> SquidProxy:
    """`proxy` once its squid (started in a PID namespace of its own) listens, with the master's
    PID noted; else it is stopped and the error carries squid's cache.log."""
    process = proxy.process
    try:
        wait_for_tcp(ns, proxy.host, proxy.port, timeout=15, still_worth_waiting=lambda: process.poll() is None)
        proxy.squid_pid = main_pid(process)
    except TimeoutError as error:
        cache_log = proxy.log_path.with_name("cache.log")
        tail = cache_log.read_text(errors="replace")[-2000:] if cache_log.exists() else ""
        proxy.stop()
        raise RuntimeError(f"squid did not start (exit status {process.poll()}): {error}\n{tail}") from None
    return proxy


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def stop_pid_namespace(process: subprocess.Popen, pid: int | None, timeout: float = 10.0) -> None:
    """SIGTERM to the command itself (`pid`), wait for `unshare` to follow; else SIGKILL `unshare`,
    whose --kill-child takes the command with it."""
    if process.poll() is None and pid is not None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    stop_process(process, timeout=2)


@dataclass
class NtlmProxy(Proxy):
    """A Proxy whose process is `unshare`, with squid as its only child."""

    squid_pid: int | None = None

    def helper_protocol(self, pid: str) -> str:
        """The --helper-protocol (squid-2.5-ntlmssp, gss-spnego, squid-2.5-basic) of the running
        ntlm_auth helper that winbindd's audit names by `pid` (its PID inside squid's PID
        namespace), or "" when no such helper runs."""
        for child in _children(self.squid_pid) if self.squid_pid else []:
            try:
                status = Path(f"/proc/{child}/status").read_text()
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            nspids = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
            if nspids and nspids[-1] == pid:
                for argument in argv:
                    if argument.startswith(b"--helper-protocol="):
                        return argument.split(b"=", 1)[1].decode()
        return ""

    def stop(self) -> None:
        stop_pid_namespace(self.process, self.squid_pid)
        super().stop()


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
        (private_dir / "squid.conf").write_text(squid_config(listen, port, private_dir, connect_ports, auth_params))
        # -N: no daemon, so squid's master is the command under unshare (sh and ip netns exec
        # exec into it). Its own PID namespace: the ntlm_auth helpers it leaves behind when it
        # stops end with it instead of becoming orphans (this machine's PID 1 reaps none).
        process = popen_in_pid_namespace(
            ns,
            *verifier.wrap("squid", "-N", "-f", str(private_dir / "squid.conf")),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
    except BaseException:
        shutil.rmtree(private_dir, ignore_errors=True)
        raise
    proxy = NtlmProxy("squid-ntlm", listen, port, verifier.user, verifier.password, private_dir / "access.log", process, private_dir, workdir)
    return listening(ns, proxy)
