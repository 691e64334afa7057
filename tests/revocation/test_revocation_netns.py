"""Certificate revocation against real parts, in a network namespace of the test's own:

- an OpenSSL CA made here (root -> intermediate -> server certificates; tests/revocation/pki.py),
- its CRLs served over HTTP (python3 -m http.server) at 127.0.0.1:8080 inside the namespace,
- `openssl ocsp -index` answering for the intermediate (delegated responder certificate with
  OCSPSigning) at 127.0.0.1:8081,
- the loopback SSTP server presenting the server certificate and the intermediate,
- the real client, `sstp-vpn connect` (tests/integration/client_process.py), connecting as root in
  the namespace (its tunnel device lives and dies there).

Good -> connects (the log says "good (OCSP, ...)"); revoked -> refused with the sentence naming the
certificate, the date and the reason; responder and CRL server down -> soft connects with the
warning, hard refuses; a responder that never answers (a blackholed address) is given up on in
time. The time the check adds is printed (run with -s to read it).
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.client_process import CLI, ClientProcess
from tests.netns import Namespace, stop_process, veth_pair
from tests.realparts import require_program, require_root
from tests.revocation.pki import Issued, OpenSslCa
from tests.unit.scripted_server import ServerConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
CRL_BASE = "http://127.0.0.1:8080"
OCSP_URL = "http://127.0.0.1:8081"
BLACKHOLE = "198.18.41.2"  # routed to a namespace that drops it: nothing ever answers
PASSWORD = ServerConfig().password
USER = ServerConfig().username


@dataclass
class Lab:
    ns: Namespace
    folder: Path
    root: OpenSslCa
    intermediate: OpenSslCa
    responder: Issued
    leaves: dict[str, Issued]
    services: list[subprocess.Popen] = field(default_factory=list)
    cache_count: int = 0

    def start_services(self) -> None:
        if self.services:
            return
        crl = self.ns.popen(
            sys.executable, "-m", "http.server", "8080", "--bind", "127.0.0.1", "--directory", str(self.folder / "crl"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        responder = self.ns.popen(
            "openssl", "ocsp", "-index", str(self.intermediate.folder / "index.txt"), "-port", "8081",
            "-rsigner", str(self.responder.cert), "-rkey", str(self.responder.key), "-CA", str(self.intermediate.cert),
            "-ndays", "1", "-timeout", "5",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.services = [crl, responder]
        for port in (8080, 8081):
            wait_for_port(self.ns, port)

    def stop_services(self) -> None:
        for process in self.services:
            stop_process(process)
        self.services = []

    def fresh_cache(self) -> Path:
        self.cache_count += 1
        path = self.folder / f"cache{self.cache_count}"
        path.mkdir()
        return path

    def chain(self, leaf: str) -> Path:
        path = self.folder / f"{leaf}-chain.pem"
        if not path.exists():
            path.write_text(self.leaves[leaf].cert.read_text() + self.intermediate.cert.read_text())
        return path

    def env(self, cache: Path) -> dict[str, str]:
        return {"XDG_CACHE_HOME": str(cache), "XDG_CONFIG_HOME": str(self.folder / "config"), "LANGUAGE": "en"}

    def full_env(self, cache: Path) -> dict[str, str]:
        return {**os.environ, **self.env(cache)}


def wait_for_port(ns: Namespace, port: int, timeout: float = 10.0) -> None:
    """Until something listens on `port` in the namespace; without connecting to it (`openssl ocsp`
    serves one connection at a time and would wait for a request on the probe's)."""
    end = time.monotonic() + timeout
    while not ns.run("ss", "-Hltn", f"sport = :{port}").stdout.strip():
        assert time.monotonic() < end, f"nothing listens on port {port} in {ns.name}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_root("a network namespace for the CA's services and the client")
    require_program("ip", "apt-get install iproute2")
    require_program("openssl", "apt-get install openssl")
    require_program("ss", "apt-get install iproute2")
    folder = tmp_path_factory.mktemp("revocation")
    root = OpenSslCa(folder / "root", "Revocation Test Root")
    intermediate = OpenSslCa(folder / "intermediate", "Revocation Test Intermediate", issuer=root, crl_url=f"{CRL_BASE}/root.crl")
    responder = intermediate.ocsp_responder_certificate(folder)
    served = {"ocsp_url": OCSP_URL, "crl_url": f"{CRL_BASE}/intermediate.crl"}
    leaves = {
        "good": intermediate.server_certificate("good.vpn.test", folder, **served),
        "revoked": intermediate.server_certificate("revoked.vpn.test", folder, **served),
        "bare": intermediate.server_certificate("bare.vpn.test", folder, ocsp_url=None, crl_url=None),
        "blackholed": intermediate.server_certificate(
            "blackholed.vpn.test", folder, ocsp_url=f"http://{BLACKHOLE}/", crl_url=f"http://{BLACKHOLE}/intermediate.crl"
        ),
    }
    intermediate.revoke(leaves["revoked"], "keyCompromise")
    (folder / "crl").mkdir()
    root.write_crl(folder / "crl" / "root.crl")
    intermediate.write_crl(folder / "crl" / "intermediate.crl")
    with Namespace("sstprev") as ns, Namespace("sstphole") as hole:
        # The blackhole: packets for BLACKHOLE go to a namespace that neither has that address nor
        # forwards, and drops them without a word (the connection times out, as behind a firewall).
        veth_pair(ns, "198.18.41.1", hole, "198.18.41.3")
        ns.run("ip", "route", "add", f"{BLACKHOLE}/32", "via", "198.18.41.3")
        lab = Lab(ns, folder, root, intermediate, responder, leaves)
        lab.start_services()
        yield lab
        lab.stop_services()


@pytest.fixture
def services_back(lab: Lab) -> Iterator[None]:
    yield
    lab.start_services()


class SstpServer:
    def __init__(self, lab: Lab, leaf: str) -> None:
        self.process = lab.ns.popen(
            sys.executable, "-m", "tests.revocation.sstp_server", str(lab.chain(leaf)), str(lab.leaves[leaf].key),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
        )  # fmt: skip
        self.port = int(self.process.stdout.readline())

    def __enter__(self) -> SstpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        stop_process(self.process)


def connect(lab: Lab, server: SstpServer, cache: Path, *extra: str) -> ClientProcess:
    args = [f"127.0.0.1:{server.port}", "--user", USER, "--ca-file", str(lab.root.cert), "--no-default-route", "--no-vpn-dns", *extra]
    return ClientProcess(lab.ns, args, PASSWORD, env=lab.env(cache))


def connect_profile(lab: Lab, server: SstpServer, cache: Path, revocation: str) -> ClientProcess:
    """A saved profile with the revocation setting (`connect HOST` uses the default, soft)."""
    name = f"lab-{revocation}-{server.port}"
    lab.ns.run(
        *CLI, "profiles", "add", name, f"127.0.0.1:{server.port}", "--user", USER, "--ca-file", str(lab.root.cert),
        "--revocation", revocation, "--no-default-route", "--no-vpn-dns", env=lab.full_env(cache), cwd=REPO_ROOT,
    )  # fmt: skip
    return ClientProcess(lab.ns, ["--profile", name], PASSWORD, env=lab.env(cache))


def connected_in(client: ClientProcess, timeout: float = 40.0) -> float:
    started = time.monotonic()
    client.wait_for_line("connected:", timeout)
    return time.monotonic() - started


def disconnect(client: ClientProcess) -> None:
    client.interrupt()
    assert client.finish() == 0, client.stderr


def refused(client: ClientProcess) -> str:
    code = client.finish(60)
    assert code == 4, (code, client.lines, client.stderr)
    assert not any(line.startswith("connected:") for line in client.lines)
    return client.stderr


def revocation_line(client: ClientProcess) -> str:
    return next(line for line in client.lines if "revoc" in line.lower())


def test_good_certificate_connects_and_says_how_it_was_checked(lab: Lab) -> None:
    with SstpServer(lab, "good") as server:
        client = connect(lab, server, lab.fresh_cache())
        seconds = connected_in(client)
        line = revocation_line(client)
        disconnect(client)
    assert line == f"Certificate revocation: good (OCSP, {OCSP_URL})."
    print(f"\nconnect with OCSP answered: {seconds:.2f} s")


def test_revoked_certificate_is_refused_naming_it_with_date_and_reason(lab: Lab) -> None:
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    with SstpServer(lab, "revoked") as server:
        for client in (connect(lab, server, lab.fresh_cache()), connect_profile(lab, server, lab.fresh_cache(), "hard")):
            sentence = refused(client)
            assert "The certificate revoked.vpn.test in the server's chain was revoked on " + today in sentence
            assert "(reason: key compromise), according to OCSP at http://127.0.0.1:8081" in sentence


def test_revoked_by_the_crl_when_the_responder_is_down(lab: Lab, services_back: None) -> None:
    lab.services[1].terminate()  # the OCSP responder only
    lab.services[1].wait()
    with SstpServer(lab, "revoked") as server:
        sentence = refused(connect(lab, server, lab.fresh_cache()))
    assert "revoked.vpn.test" in sentence and "key compromise" in sentence and f"according to CRL at {CRL_BASE}/intermediate.crl" in sentence


def test_responder_and_crl_down_soft_connects_with_a_warning_hard_refuses(lab: Lab, services_back: None) -> None:
    lab.stop_services()
    with SstpServer(lab, "good") as server:
        client = connect(lab, server, lab.fresh_cache())
        seconds = connected_in(client)
        warning = revocation_line(client)
        disconnect(client)
        sentence = refused(connect_profile(lab, server, lab.fresh_cache(), "hard"))
    assert warning.startswith("Whether the certificate good.vpn.test was revoked could not be checked (")
    assert f"{OCSP_URL} refused the connection" in warning and "connecting anyway, as the profile's revocation check is soft." in warning
    assert "Whether the certificate good.vpn.test was revoked cannot be checked (" in sentence
    assert "(revocation: hard), so the connection was refused" in sentence and OCSP_URL in sentence
    print(f"\nconnect with responder and CRL server down (refused at once): {seconds:.2f} s")


def test_remembered_answers_survive_a_dead_responder_and_never_make_a_revoked_certificate_good(lab: Lab, services_back: None) -> None:
    good_cache, revoked_cache = lab.fresh_cache(), lab.fresh_cache()
    with SstpServer(lab, "good") as good, SstpServer(lab, "revoked") as revoked:
        client = connect(lab, good, good_cache)
        connected_in(client)
        disconnect(client)
        refused(connect(lab, revoked, revoked_cache))
        lab.stop_services()
        client = connect_profile(lab, good, good_cache, "hard")  # hard: only the remembered OCSP answer lets it connect
        connected_in(client)
        line = revocation_line(client)
        disconnect(client)
        sentence = refused(connect(lab, revoked, revoked_cache))
    assert line == f"Certificate revocation: good (OCSP, {OCSP_URL}, remembered)."
    assert "revoked.vpn.test" in sentence and "key compromise" in sentence


def test_a_certificate_without_revocation_service_connects_in_hard_mode_with_a_note(lab: Lab) -> None:
    with SstpServer(lab, "bare") as server:
        client = connect_profile(lab, server, lab.fresh_cache(), "hard")
        seconds = connected_in(client)
        line = revocation_line(client)
        disconnect(client)
    assert line == (
        "Certificate revocation: bare.vpn.test not checked (the certificate names no revocation service); "
        f"Revocation Test Intermediate good (CRL, {CRL_BASE}/root.crl)."
    )
    print(f"\nconnect, certificate without revocation service (no check): {seconds:.2f} s")


def test_a_responder_that_never_answers_is_given_up_on_in_time(lab: Lab) -> None:
    with SstpServer(lab, "blackholed") as server:
        client = connect(lab, server, lab.fresh_cache())
        seconds = connected_in(client)
        warning = revocation_line(client)
        disconnect(client)
    assert "could not be checked" in warning and "did not answer within 4 s" in warning
    print(f"\nconnect with a blackholed responder and CRL server: {seconds:.2f} s")
    assert seconds < 5 + 6  # one fetch's time (4 s) after the stagger (1 s), plus the connection itself


def test_time_the_check_adds(lab: Lab) -> None:
    """The check alone, in the namespace, as open_connection runs it (the chain OpenSSL verified)."""
    script = """
import sys, time
from pathlib import Path
from sstpvpn.client import revocation, trust
from sstpvpn.client.profiles import Revocation
chain = trust.pem_certificates(Path(sys.argv[1]).read_bytes()) + trust.pem_certificates(Path(sys.argv[2]).read_bytes())
checker = revocation.Checker(cache=revocation.Cache(Path(sys.argv[3])))
for attempt in ("fresh", "cached"):
    result = checker.check_chain(chain, chain, Revocation.SOFT)
    print(attempt, result.outcome.value, f"{result.seconds * 1000:.0f}")
"""

    def measure(leaf: str) -> list[list[str]]:
        argv = [sys.executable, "-c", script, str(lab.chain(leaf)), str(lab.root.cert), str(lab.fresh_cache())]
        out = lab.ns.run(*argv, cwd=REPO_ROOT, env=lab.full_env(lab.folder)).stdout
        return [line.split() for line in out.splitlines() if line]

    timings = {"good": measure("good"), "blackholed": measure("blackholed")}
    lab.stop_services()
    try:
        timings["down"] = measure("good")
    finally:
        lab.start_services()
    print("\nrevocation check (ms):", timings)
    assert [row[:2] for row in timings["good"]] == [["fresh", "good"], ["cached", "good"]]
    assert [row[:2] for row in timings["down"]] == [["fresh", "unknown"], ["cached", "unknown"]]
    assert int(timings["good"][0][2]) < 1000 and int(timings["good"][1][2]) < 100 and int(timings["down"][0][2]) < 1000
    assert 4500 < int(timings["blackholed"][0][2]) < 6000  # the CRL asked 1 s after the silent responder, both given up after 4 s
