"""`sstp-vpn diagnose` shows the revocation status, against the same real parts as
test_revocation_netns.py (an OpenSSL CA's CRLs over HTTP and `openssl ocsp` as responder in a
network namespace, the loopback SSTP server): the Revocation step after Trust and before SSTP,
good (OCSP), revoked (exit 4, the sentence naming the certificate), and with the responder and the
CRL server down: soft passes with the warning, hard fails."""

from __future__ import annotations

import re

from tests.integration.client_process import CLI
from tests.revocation.test_revocation_netns import OCSP_URL, REPO_ROOT, Lab, SstpServer, lab, services_back  # noqa: F401 - fixtures


def diagnose(lab: Lab, server: SstpServer, *extra: str):
    return lab.ns.run(
        *CLI, "diagnose", f"127.0.0.1:{server.port}", "--ca-file", str(lab.root.cert), *extra,
        env=lab.full_env(lab.fresh_cache()), cwd=REPO_ROOT, check=False,
    )  # fmt: skip


def step_ms(output: str, name: str) -> int:
    match = re.search(rf"^\s*(?:ok|FAILED)\s+{name} \((\d+) ms\)$", output, re.M)
    assert match, output
    return int(match.group(1))


def revocation_step(output: str, state: str) -> list[str]:
    match = re.search(rf"^\s*{state}\s+Revocation \(\d+ ms\)\n((?:        .*\n?)*)", output, re.M)
    assert match, output
    return [line.strip() for line in match.group(1).splitlines()]


def test_good_and_revoked(lab: Lab) -> None:
    with SstpServer(lab, "good") as server:
        good = diagnose(lab, server)
    assert good.returncode == 0, good.stdout + good.stderr
    lines = revocation_step(good.stdout, "ok")
    assert f"good.vpn.test: good (OCSP, {OCSP_URL}, fresh answer)" in lines
    assert lines[-1] == "if revocation cannot be checked: connect and warn (soft)"
    assert good.stdout.index("ok  Trust (") < good.stdout.index("ok  Revocation (") < good.stdout.index("ok  SSTP (")
    print(f"\ndiagnose, Revocation step with a fresh OCSP answer: {step_ms(good.stdout, 'Revocation')} ms")

    with SstpServer(lab, "revoked") as server:
        revoked = diagnose(lab, server)
    assert revoked.returncode == 4, revoked.stdout + revoked.stderr  # a trust failure
    lines = revocation_step(revoked.stdout, "FAILED")
    assert any(line.startswith("revoked.vpn.test: revoked on ") and "(key compromise)" in line for line in lines), lines
    assert lines[-1].startswith("The certificate revoked.vpn.test in the server's chain was revoked on ")
    assert "SSTP (" not in revoked.stdout  # nothing is sent to a revoked server


def test_responder_and_crl_down_soft_warns_hard_fails(lab: Lab, services_back: None) -> None:
    lab.stop_services()
    with SstpServer(lab, "good") as server:
        soft = diagnose(lab, server)
        hard = diagnose(lab, server, "--revocation", "hard")
    assert soft.returncode == 0, soft.stdout + soft.stderr
    lines = revocation_step(soft.stdout, "ok")
    assert lines[-1].startswith("Whether the certificate good.vpn.test was revoked could not be checked (")
    assert lines[-1].endswith("connecting anyway, as the profile's revocation check is soft.")
    assert hard.returncode == 4, hard.stdout + hard.stderr
    print(f"\ndiagnose, Revocation step with responder and CRL server down: {step_ms(soft.stdout, 'Revocation')} ms (soft)")
    lines = revocation_step(hard.stdout, "FAILED")
    assert "if revocation cannot be checked: refuse to connect (hard)" in lines
    assert "(revocation: hard), so the connection was refused" in lines[-1]
