"""diagnose's Sign-in step and `sstp-vpn diagnose --user`, against a real TLS + SSTP server on
loopback (tests/loopback_sstp.py): it signs in, disconnects before IPCP, and never asks the
platform for a tunnel device, routes or DNS."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sstpvpn.client import cli
from sstpvpn.client.core.engine import EngineSettings
from sstpvpn.client.core.events import Credentials, SignedIn
from sstpvpn.client.core.types import FailureKind
from sstpvpn.client.diagnose import diagnose, print_report
from sstpvpn.client.sign_in import sign_in
from sstpvpn.client.transport import TransportSettings
from sstpvpn.platform import current
from tests.loopback_sstp import LoopbackSstpServer
from tests.unit.scripted_server import CHAP_MD5, EAP, PAP, ServerConfig

PASSWORD = "correct horse battery"
REFUSED = "The server refused the user name or password. Check them and try again."


@pytest.fixture(autouse=True)
def no_platform(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any question to the platform about tunnels, routes or DNS fails the test."""
    calls: list[str] = []
    for name in ("open_tunnel", "route_problem_before_connecting", "prepare_session"):

        def refuse(*args: object, _name: str = name, **kwargs: object) -> None:
            calls.append(_name)
            raise AssertionError(f"platform.current.{_name} was called")

        monkeypatch.setattr(current, name, refuse)
    return calls


def settings_for(server: LoopbackSstpServer) -> TransportSettings:
    return TransportSettings("localhost", server.port, ca_file=server.cert_path, timeout=10)


def engine(password: str = PASSWORD) -> EngineSettings:
    return EngineSettings(Credentials("alice", password), host="localhost")


def test_sign_in_accepted_disconnects_before_ipcp(tmp_path: Path, no_platform: list[str]) -> None:
    with LoopbackSstpServer(tmp_path) as server:
        result = sign_in(settings_for(server), engine())
    assert result.signed_in == SignedIn("alice", "MS-CHAPv2") and result.failure is None
    assert result.sentence == "Signed in as alice with MS-CHAPv2; disconnected before any network change."
    (seen,) = server.servers
    assert seen.binding is not None and seen.binding.ok  # a real sign-in, crypto binding over the real certificate
    assert seen.lcp_terminate_requests == 1 and seen.stage == "disconnected"  # LCP Terminate, then Call Disconnect
    assert seen.ipcp_requests == [] and seen.problems == []
    assert no_platform == []
    assert not any(PASSWORD in line for line in result.log)


def test_sign_in_refused(tmp_path: Path) -> None:
    with LoopbackSstpServer(tmp_path) as server:
        result = sign_in(settings_for(server), engine("wrong"))
    assert result.signed_in is None
    assert result.failure is not None and result.failure.kind is FailureKind.AUTHENTICATION
    assert result.sentence == REFUSED
    assert server.signed_in == []


def test_diagnose_adds_the_sign_in_step(tmp_path: Path) -> None:
    with LoopbackSstpServer(tmp_path, ServerConfig(methods=(EAP, EAP))) as server:
        report = diagnose(settings_for(server), sign_in_as=engine())
    names = [step.name for step in report.steps]
    assert names[-2:] == ["SSTP", "Sign-in"] and report.would_connect
    assert report.signed_in is not None
    text = io.StringIO()
    print_report(report, text)
    assert "Result: Signed in as alice with EAP-MSCHAPv2; disconnected before any network change." in text.getvalue()
    assert len(server.signed_in) == 1 and server.signed_in[0].ipcp_requests == []


def test_diagnose_without_credentials_does_not_sign_in(tmp_path: Path) -> None:
    with LoopbackSstpServer(tmp_path) as server:
        report = diagnose(settings_for(server))
    assert [step.name for step in report.steps][-1] == "SSTP" and report.would_connect and report.signed_in is None
    assert server.signed_in == []


def test_diagnose_never_signs_in_to_a_server_that_failed_a_check(tmp_path: Path) -> None:
    with LoopbackSstpServer(tmp_path) as server:
        report = diagnose(TransportSettings("localhost", server.port, timeout=10), sign_in_as=engine())  # not trusted
    assert report.failure_kind is FailureKind.TRUST
    assert "Sign-in" not in [step.name for step in report.steps]
    assert server.signed_in == []


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], server: LoopbackSstpServer, stdin: str, *extra: str):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = cli.main(["diagnose", f"localhost:{server.port}", "--ca-file", str(server.cert_path), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_diagnose_user_password_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with LoopbackSstpServer(tmp_path) as server:
        code, out, err = run_cli(monkeypatch, capsys, server, PASSWORD + "\n", "--user", "alice", "--password-stdin")
    assert code == 0, out + err
    assert "ok  Sign-in (" in out
    assert "Result: Signed in as alice with MS-CHAPv2; disconnected before any network change." in out
    assert PASSWORD not in out + err


def test_cli_diagnose_refused_password_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with LoopbackSstpServer(tmp_path) as server:
        code, out, err = run_cli(monkeypatch, capsys, server, "not it\n", "--user", "alice", "--password-stdin")
    assert code == 3, out + err
    assert "FAILED  Sign-in (" in out and f"Result: {REFUSED}" in out
    assert "not it" not in out + err


def test_cli_diagnose_without_user_is_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with LoopbackSstpServer(tmp_path) as server:
        code, out, err = run_cli(monkeypatch, capsys, server, "")
    assert code == 0, out + err
    assert "Sign-in" not in out and "Result: SSTP VPN can reach the SSTP service at localhost:" in out
    assert server.signed_in == []


def test_cli_password_stdin_without_user_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("secret\n"))
    assert cli.main(["diagnose", "localhost:1", "--password-stdin"]) == cli.EXIT_USAGE
    assert "--password-stdin needs --user" in capsys.readouterr().err


NO_PAP = (
    "The server offers only PAP, which this profile does not allow. Allow PAP (--allow-pap) in the profile only if you "
    "trust the network path, or ask the administrator to enable MS-CHAPv2."
)


def test_cli_diagnose_refuses_pap_without_allow_pap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with LoopbackSstpServer(tmp_path, ServerConfig(methods=(PAP,))) as server:
        code, out, err = run_cli(monkeypatch, capsys, server, PASSWORD + "\n", "--user", "alice", "--password-stdin")
    assert code == 3, out + err
    assert "FAILED  Sign-in (" in out and f"Result: {NO_PAP}" in out  # says which flag allows it
    assert server.signed_in == [] and PASSWORD not in out + err


def test_cli_diagnose_allow_pap_signs_in_with_pap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # The client steers to MS-CHAPv2 once; a server that insists on PAP gets it (as SoftEther re-offers).
    with LoopbackSstpServer(tmp_path, ServerConfig(methods=(PAP, PAP))) as server:
        code, out, err = run_cli(monkeypatch, capsys, server, PASSWORD + "\n", "--user", "alice", "--password-stdin", "--allow-pap")
    assert code == 0, out + err
    assert "Result: Signed in as alice with PAP; disconnected before any network change." in out
    seen = server.servers[-1]  # the sign-in's connection (the SSTP check had its own)
    assert seen.ipcp_requests == [] and seen.problems == []
    assert PASSWORD not in out + err


def test_cli_diagnose_allow_chap_md5_signs_in_with_chap_md5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with LoopbackSstpServer(tmp_path, ServerConfig(methods=(CHAP_MD5, CHAP_MD5))) as server:
        code, out, err = run_cli(monkeypatch, capsys, server, PASSWORD + "\n", "--user", "alice", "--password-stdin", "--allow-chap-md5")
    assert code == 0, out + err
    assert "Result: Signed in as alice with CHAP-MD5; disconnected before any network change." in out


def test_cli_allow_pap_without_user_is_a_usage_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["diagnose", "localhost:1", "--allow-pap"]) == cli.EXIT_USAGE
    assert "--allow-pap needs --user" in capsys.readouterr().err
