"""A real SoftEther VPN Server as the SSTP peer of the integration tests.

Topology (all in namespaces this module creates and removes):

    client ns  198.18.20.2/24  --veth--  198.18.20.1/24  server ns: vpnserver on :443
    (default route via 198.18.20.1)                    hub DEFAULT, SecureNAT 198.18.30.0/24 (.1)

The client under test runs in the client namespace. The server's state directories are compiled
into the binary (/var/lib/softether, /var/log/softether, /run/softether), so only one server can run
at a time; whatever was there before is moved aside and put back afterwards.
See /work/shared/notes/softether.md for the measured behaviour of this server.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests import netns
from tests.integration.certificates import CERTIFICATE_KINDS, ServerCertificate, make_test_pki
from tests.netns import Namespace, stop_process, veth_pair
from tests.nsprobe import served_certificate_sha256, wait_for_tcp
from tests.realparts import in_ci, missing

SERVER_ADDRESS = "198.18.20.1"
CLIENT_ADDRESS = "198.18.20.2"
SERVER_NAME = "vpn.test"
OTHER_SERVER_NAME = "other.test"
HUB = "DEFAULT"
USERNAME = "sstpuser"
TUNNEL_NETWORK = "198.18.30.0/24"
VIRTUAL_HOST = "198.18.30.1"  # SecureNAT's virtual host: gateway, DHCP server and DNS; answers ping
DHCP_FIRST, DHCP_LAST = "198.18.30.10", "198.18.30.200"
BRIDGE_PEER_ADDRESS = "198.18.30.2"
TAP_DEVICE = "setap"  # SoftEther names the interface "tap_" + this

DEFAULT_BINARY = Path("/opt/softether-sstp/bin/vpnserver")
BINARY_ENV = "SSTP_TEST_VPNSERVER"
STATE_DIRS = (Path("/var/lib/softether"), Path("/var/log/softether"), Path("/run/softether"))
_STATE_MARKER = ".sstpvpn-test-state"  # marks a state directory as ours (safe to wipe)
_BACKUP_SUFFIX = ".sstpvpn-test-backup"
# Held for a server's whole life: test runs (and parallel pytest invocations) take turns.
TURN_LOCK = Path("/run/lock/sstp-vpn-softether-test.lock")
TURN_WAIT_SECONDS = float(os.environ.get("SSTP_TEST_SERVER_WAIT", "2400"))

# Seeded before the first start, so the Internet-facing features (DDNS, keep-alive pings, NAT
# traversal, VPN Azure) are off from the very first second, and only SSTP is served.
_SEED_CONFIG = """\
# Software Configuration File
# ---------------------------
declare root
{{
	uint ConfigRevision 0
	declare DDnsClient
	{{
		bool Disabled true
	}}
	declare IPsec
	{{
		bool EtherIP_IPsec false
		string L2TP_DefaultHub {hub}
		bool L2TP_IPsec false
		bool L2TP_Raw false
	}}
	declare ListenerList
	{{
		declare Listener0
		{{
			bool DisableDos false
			bool Enabled true
			uint Port {port}
		}}
	}}
	declare ServerConfiguration
	{{
		bool DisableCoreDumpOnUnix true
		bool DisableIPv6Listener false
		bool DisableNatTraversal true
		bool EnableVpnAzure false
		bool EnableVpnOverDns false
		bool EnableVpnOverIcmp false
		bool NoDebugDump true
		bool UseKeepConnect false
		bool UseWebUI false
		declare Proto
		{{
			declare OpenVPN
			{{
				bool Enabled false
			}}
			declare SSTP
			{{
				bool Enabled true
			}}
		}}
	}}
	declare VirtualHUB
	{{
		declare {hub}
		{{
			bool Online true
			uint Type 0
			declare Option
			{{
				bool DisableIpRawModeSecureNAT true
				bool DisableKernelModeSecureNAT true
			}}
		}}
	}}
}}
"""


def locate_server_binary(repo_root: Path) -> Path:
    """The vpnserver to test against: $SSTP_TEST_VPNSERVER, else the shared build.

    Under CI=true the shared build script is run (idempotent, ~30 s the first time); elsewhere a
    missing build skips the tests with the command that makes it.
    """
    configured = os.environ.get(BINARY_ENV)
    if configured:
        path = Path(configured)
        if not os.access(path, os.X_OK):
            missing(f"{BINARY_ENV}={configured} (not an executable)", "point it at an SSTP-capable SoftEther vpnserver (upstream >= 5.02)")
        return path
    build_script = repo_root.parent / "shared" / "softether" / "build.sh"
    if in_ci() and build_script.exists():
        # The script writes only below its DEST argument, never beside itself, so it runs fine
        # from CI's read-only copy of shared/.
        result = subprocess.run(["bash", str(build_script), str(DEFAULT_BINARY.parent.parent)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{build_script} failed:\n{result.stdout}\n{result.stderr}")
        return Path(result.stdout.strip().splitlines()[-1])
    if not os.access(DEFAULT_BINARY, os.X_OK):
        missing("an SSTP-capable SoftEther vpnserver", f"sudo bash {build_script}   (or set {BINARY_ENV})")
    return DEFAULT_BINARY


def locate_vpncmd(server_binary: Path) -> Path:
    beside = server_binary.parent / "vpncmd"
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("vpncmd")
    if found is None:
        missing("SoftEther's admin tool vpncmd", "apt-get install softether-vpncmd")
    return Path(found)


_NAMESPACE_PREFIXES = ("sstpsrv", "sstpcli", "sstppeer")


def remove_stale_namespaces() -> None:
    """Namespaces this module made in a test run that was killed before its teardown."""
    netns.remove_stale_namespaces(_NAMESPACE_PREFIXES)


def _running_softether_pid() -> int | None:
    """PID of a vpnserver that owns the state directories right now, if any."""
    for pid_file in Path("/run/softether").glob(".pid_*"):
        try:
            pid = int(pid_file.read_text().split()[0])
            if Path(f"/proc/{pid}/comm").read_text().strip().startswith("vpn"):
                return pid
        except (OSError, ValueError, IndexError):
            continue
    return None


class StateDirectories:
    """Moves the compiled-in state directories aside and brings them back."""

    def prepare(self) -> None:
        pid = _running_softether_pid()
        if pid is not None:
            raise RuntimeError(
                f"another SoftEther server (pid {pid}) uses {STATE_DIRS[0]}, which the test server "
                f"needs. If it is left over from an interrupted test run (`ip netns identify {pid}` "
                f"shows a sstpsrv-... namespace), stop it with `kill {pid}`; otherwise stop that "
                "service while the tests run."
            )
        for directory in STATE_DIRS:
            backup = directory.with_name(directory.name + _BACKUP_SUFFIX)
            if (directory / _STATE_MARKER).exists():
                shutil.rmtree(directory)  # left over by an interrupted test run
            elif directory.exists():
                if backup.exists():
                    raise RuntimeError(f"both {directory} and {backup} exist; sort them out by hand")
                directory.rename(backup)
            directory.mkdir(parents=True)
            (directory / _STATE_MARKER).touch()

    def restore(self) -> None:
        for directory in STATE_DIRS:
            backup = directory.with_name(directory.name + _BACKUP_SUFFIX)
            if (directory / _STATE_MARKER).exists():
                shutil.rmtree(directory)
            if backup.exists() and not directory.exists():
                backup.rename(directory)


class VpncmdError(RuntimeError):
    pass


class ServerBusy(RuntimeError):
    """Another test run (or bench) has the machine's one SoftEther test server."""


class ServerTurn:
    """An exclusive lock on the one SoftEther test server this machine can run. The kernel drops
    it when its holder dies, so an interrupted run never blocks the next one."""

    def __init__(self, wait_seconds: float = TURN_WAIT_SECONDS) -> None:
        self.wait_seconds = wait_seconds
        self._file = None

    def acquire(self) -> None:
        TURN_LOCK.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(TURN_LOCK, "a")  # noqa: SIM115 - held open as long as the lock is; release() closes it
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self.release()
                    raise ServerBusy(
                        f"another test run has used the SoftEther test server for over "
                        f"{self.wait_seconds:.0f} s ({TURN_LOCK} is locked); wait for it to finish."
                    ) from None
                time.sleep(2)

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None


class SoftEtherServer:
    """vpnserver in its own namespace, configured for SSTP, plus a client namespace to test from.

    Use as a context manager; everything is undone on exit, also after a failure half-way.
    """

    def __init__(self, binary: Path, vpncmd: Path, workdir: Path, port: int = 443, wait_seconds: float = TURN_WAIT_SECONDS) -> None:
        self.binary, self.vpncmd, self.workdir = binary, vpncmd, workdir
        self.host, self.port, self.server_name = SERVER_ADDRESS, port, SERVER_NAME
        self.hub, self.username = HUB, USERNAME
        # Random per run; kept in memory only (vpncmd gets it through a private file, deleted at once).
        self.password = secrets.token_urlsafe(16)
        self.server_ns = Namespace("sstpsrv")
        self.client_ns = Namespace("sstpcli")
        self.server_interface = self.client_interface = ""
        self.process: subprocess.Popen | None = None
        self.log_path = workdir / "vpnserver.log"
        self.startup_seconds = 0.0  # first start: process launch to configured and serving
        self.served_kind = "good"
        self._state = StateDirectories()
        self._turn = ServerTurn(wait_seconds)  # for another test run or bench to finish
        pki = make_test_pki(workdir / "pki", SERVER_NAME, SERVER_ADDRESS, OTHER_SERVER_NAME)
        self.ca_path, self.other_ca_path = pki.ca_path, pki.other_ca_path
        self.certificates: dict[str, ServerCertificate] = pki.certificates

    # -- what tests read -------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def served_cert_sha256(self) -> str:
        """SHA-256 (hex) of the DER certificate the server presents now."""
        return self.certificates[self.served_kind].sha256

    @property
    def url(self) -> str:
        return f"https://{self.server_name}:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> SoftEtherServer:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open(self) -> None:
        self._turn.acquire()
        remove_stale_namespaces()
        self.server_ns.__enter__()
        self.client_ns.__enter__()
        self.server_interface, self.client_interface = veth_pair(self.server_ns, SERVER_ADDRESS, self.client_ns, CLIENT_ADDRESS)
        # A default route, so that a full-tunnel client visibly replaces it and its host route to
        # the server via this gateway means something.
        self.client_ns.run("ip", "route", "add", "default", "via", SERVER_ADDRESS, "dev", self.client_interface)
        # `ip netns exec` bind-mounts this over /etc/hosts, so a client started that way resolves
        # the server's name; the host's /etc/hosts is never touched.
        (self.client_ns.etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n::1\tlocalhost\n{SERVER_ADDRESS}\t{SERVER_NAME} {OTHER_SERVER_NAME}\n")
        self._state.prepare()
        (STATE_DIRS[0] / "vpn_server.config").write_text(_SEED_CONFIG.format(hub=HUB, port=self.port))
        began = time.monotonic()
        self.start(wait_for_certificate=False)
        self._configure()
        self._wait_serving(self.certificates["good"].sha256)
        self.startup_seconds = time.monotonic() - began

    def close(self) -> None:
        """Stop the server and remove everything; each step runs even if an earlier one fails."""
        errors: list[Exception] = []
        for step in (self.stop, self.client_ns.close, self.server_ns.close, self._state.restore, self._turn.release):
            try:
                step()
            except Exception as error:  # noqa: BLE001 - keep going: the other steps must still run; the first error is raised after them
                errors.append(error)
        if errors:
            raise errors[0]

    def start(self, wait_for_certificate: bool = True, timeout: float = 30.0) -> None:
        """Start vpnserver (it keeps its configuration from the last run) and wait until ready."""
        if self.running:
            return
        with open(self.log_path, "ab") as log:
            # --foreground: no daemon fork and no watchdog, so the PID we hold is the server.
            self.process = self.server_ns.popen(
                str(self.binary), "start", "--foreground", stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            wait_for_tcp(self.server_ns, "127.0.0.1", self.port, timeout, still_worth_waiting=lambda: self.running)
            if wait_for_certificate:
                self._wait_serving(self.served_cert_sha256, timeout)
        except TimeoutError as error:
            raise RuntimeError(f"vpnserver did not come up ({error}); exit status {self.process.poll()}; log:\n{self.log_tail()}") from None

    def stop(self, kill: bool = False) -> None:
        """Stop the server by its PID: SIGTERM (clean shutdown, saves its config) or SIGKILL."""
        if self.process is None:
            return
        if kill and self.process.poll() is None:
            self.process.kill()
        stop_process(self.process)
        self.process = None

    def ensure_default(self) -> None:
        """Back to the state tests expect: running, serving the good certificate, and the client
        namespace's default route via the server's address (a full-tunnel client replaces it, and
        it vanishes with the client's TUN device)."""
        if not self.running:
            self.stop()  # reap a crashed process
            self.start()
        if self.served_kind != "good":
            self.serve_certificate("good")
        self.client_ns.run("ip", "route", "replace", "default", "via", SERVER_ADDRESS, "dev", self.client_interface)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- configuration -----------------------------------------------------------------------------

    def serve_certificate(self, kind: str) -> None:
        """Switch the certificate the server presents: "good", "wrong-name" or "other-ca"."""
        if kind not in CERTIFICATE_KINDS:
            raise ValueError(f"unknown certificate kind {kind!r}; one of {CERTIFICATE_KINDS}")
        certificate = self.certificates[kind]
        self.vpncmd_batch([f"ServerCertSet /LOADCERT:{certificate.cert_path} /LOADKEY:{certificate.key_path}", "Flush"])
        self.served_kind = kind
        self._wait_serving(certificate.sha256)

    @contextlib.contextmanager
    def serving(self, kind: str) -> Iterator[ServerCertificate]:
        """Serve another certificate for the duration of a `with` block."""
        self.serve_certificate(kind)
        try:
            yield self.certificates[kind]
        finally:
            self.serve_certificate("good")

    def _configure(self) -> None:
        good = self.certificates["good"]
        self.vpncmd_batch(
            [
                f"ServerCertSet /LOADCERT:{good.cert_path} /LOADKEY:{good.key_path}",
                "ProtoOptionsSet SSTP /NAME:Enabled /VALUE:yes",
                f"Hub {HUB}",
                f"UserCreate {USERNAME} /GROUP:none /REALNAME:none /NOTE:none",
                f"UserPasswordSet {USERNAME} /PASSWORD:{self.password}",
                f"SecureNatHostSet /MAC: /IP:{VIRTUAL_HOST} /MASK:255.255.255.0",
                "NatDisable",
                dhcp_set_command(),
                "SecureNatEnable",
                # Write the configuration now, so a SIGKILLed server restarts with all of the above.
                "Flush",
            ]
        )

    @contextlib.contextmanager
    def dhcp_pushing(self, domain: str, routes: list[str]) -> Iterator[None]:
        """SecureNAT's DHCP server answers with `domain` (option 15) and `routes` (121/249, each
        "network/mask/gateway") while the block runs; the usual settings come back afterwards."""
        self.vpncmd_batch([f"Hub {HUB}", dhcp_set_command(domain, routes)])
        try:
            yield
        finally:
            self.vpncmd_batch([f"Hub {HUB}", dhcp_set_command()])

    def vpncmd_batch(self, commands: list[str]) -> str:
        """Run admin commands through vpncmd; raise if any of them fails.

        The commands go through a 0600 file in a private directory, deleted right after, so the
        user password never appears in argv. vpncmd exits 0 even when a command fails, so success
        is judged from its output, which echoes the commands: it is redacted before use.
        """
        private_dir = Path(tempfile.mkdtemp(prefix="vpncmd-"))  # mode 0700
        try:
            command_file = private_dir / "commands"
            fd = os.open(command_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("\n".join(commands) + "\n")
            result = self.server_ns.run(str(self.vpncmd), f"127.0.0.1:{self.port}", "/SERVER", f"/IN:{command_file}", check=False, timeout=60)
        finally:
            shutil.rmtree(private_dir, ignore_errors=True)
        output = (result.stdout + result.stderr).replace(self.password, "********")
        succeeded = output.count("The command completed successfully.")
        if result.returncode != 0 or "Error occurred" in output or succeeded != len(commands):
            raise VpncmdError(f"vpncmd failed ({succeeded}/{len(commands)} commands succeeded, exit status {result.returncode}):\n{output}")
        return output

    def _wait_serving(self, sha256: str, timeout: float = 20.0) -> None:
        served_certificate_sha256(self.client_ns, self.host, self.port, self.server_name, expected=sha256, timeout=timeout)

    # -- a TCP peer behind the server, for throughput tests ------------------------------------

    @contextlib.contextmanager
    def bridge_peer(self, timeout: float = 20.0, ipv6: bool = False) -> Iterator[Namespace]:
        """A third namespace on the hub's Ethernet segment, at 198.18.30.2/24.

        SoftEther bridges hub DEFAULT to a tap device; the tap is moved into the peer namespace
        (SoftEther only holds its file descriptor, so it keeps working). A client in the client
        namespace reaches 198.18.30.2 only through the tunnel, e.g. to run `iperf3 -s` there.
        Restarting the server while a peer exists recreates the tap in the server namespace and
        breaks the peer: do not stop() inside this block. `ipv6`: the peer keeps IPv6 (for a
        router advertising a prefix into the hub), with forwarding on so it never autoconfigures.
        """
        tap = f"tap_{TAP_DEVICE}"
        peer = Namespace("sstppeer")
        bridged = False
        try:
            peer.__enter__()
            self.vpncmd_batch([f"BridgeCreate {HUB} /DEVICE:{TAP_DEVICE} /TAP:yes"])
            bridged = True
            self._wait_for_interface(self.server_ns, tap, timeout)
            self.server_ns.run("ip", "link", "set", tap, "netns", peer.name)
            if ipv6:
                peer.run("sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.default.forwarding=1")
            else:  # IPv6 off: the peer should not chatter (router solicitations, DAD) into the hub.
                peer.run("sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
            peer.run("ip", "addr", "add", f"{BRIDGE_PEER_ADDRESS}/24", "dev", tap)
            peer.run("ip", "link", "set", tap, "up")
            yield peer
        finally:
            try:
                if bridged and self.running:
                    self.vpncmd_batch([f"BridgeDelete {HUB} /DEVICE:{TAP_DEVICE}", "Flush"])
            finally:
                peer.close()

    @staticmethod
    def _wait_for_interface(ns: Namespace, name: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while ns.run("ip", "link", "show", name, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not appear in {ns.name}")
            time.sleep(0.05)


def dhcp_set_command(domain: str = "none", routes: list[str] | None = None) -> str:
    push = f" /PUSHROUTE:{','.join(routes)}" if routes else ""
    return (
        f"DhcpSet /START:{DHCP_FIRST} /END:{DHCP_LAST} /MASK:255.255.255.0 /EXPIRE:7200 "
        f"/GW:{VIRTUAL_HOST} /DNS:{VIRTUAL_HOST} /DNS2:none /DOMAIN:{domain} /LOG:yes{push}"
    )


def ping_once(ns: Namespace, address: str, timeout: float = 10.0) -> bool:
    """Whether `address` answers a ping from `ns` within `timeout` (retrying once a second)."""
    result = ns.run("ping", "-c", "1", "-w", str(int(timeout)), address, check=False)
    return result.returncode == 0
