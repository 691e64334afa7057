"""DNS through systemd-resolved: a private resolved and system bus run in the test's namespace
(see with_private_resolved.sh), the platform layer configures the tunnel link there, and the
test asks that resolved what it was told."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.platform.client_network import Agent, snapshot
from tests.realparts import missing, require_program

SCRIPT = str(Path(__file__).with_name("with_private_resolved.sh"))
UNPACKED_RESOLVED = Path(os.environ.get("SSTPVPN_TEST_RESOLVED_ROOT", "/opt/sstp-vpn-test/systemd-resolved"))
STUB_RESOLV_CONF = (
    b"# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).\n"
    b"# Do not edit.\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n"
)


@pytest.fixture
def resolved_ns(client_ns, tmp_path):
    require_program("dbus-daemon", "apt-get install dbus")
    require_program("unshare", "apt-get install util-linux")
    for root in (UNPACKED_RESOLVED, Path("/")):
        if (root / "lib/systemd/systemd-resolved").exists() and (root / "usr/bin/resolvectl").exists():
            break
    else:
        missing(
            "systemd-resolved (unpacked, not installed: installing it takes over this machine's /etc/resolv.conf)",
            f"apt-get install systemd dbus && apt-get download systemd-resolved && dpkg-deb -x systemd-resolved_*.deb {UNPACKED_RESOLVED}",
        )
    (client_ns.etc / "resolv.conf").write_bytes(STUB_RESOLV_CONF)
    # Not under tmp_path: resolved drops to its own user and must reach the bus socket here.
    runtime = Path(tempfile.mkdtemp(prefix="sstpvpn-resolved-"))
    runtime.chmod(0o755)
    client_ns.resolved_prefix = ("unshare", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "bash", SCRIPT, str(runtime), str(root))
    client_ns.bus = f"unix:path={runtime}/bus"
    client_ns.resolvectl = str(root / "usr/bin/resolvectl")
    try:
        yield client_ns
    finally:
        client_ns.close()  # stops resolved and the bus (they die with the agent's PID namespace)
        shutil.rmtree(runtime, ignore_errors=True)


def link_dns(ns, ifname: str) -> dict:
    """What the private resolved holds for the link: servers, domains, default-route."""

    def ask(*arguments: str) -> str:
        result = ns.run("env", f"DBUS_SYSTEM_BUS_ADDRESS={ns.bus}", ns.resolvectl, *arguments)
        return result.stdout.split(":", 1)[1].strip() if ":" in result.stdout else result.stdout.strip()

    return {"dns": ask("dns", ifname).split(), "domain": ask("domain", ifname).split(), "default_route": ask("default-route", ifname)}


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("full", {"dns": ["198.18.30.1"], "domain": ["~."], "default_route": "yes"}),
        ("split", {"dns": ["198.18.30.1"], "domain": [], "default_route": "no"}),
    ],
)
def test_dns_goes_to_resolved_per_link_and_is_reverted(resolved_ns, tmp_path, mode, expected):
    before = snapshot(resolved_ns)
    agent = Agent(resolved_ns, "session", "--mode", mode, "--journal", str(tmp_path / "j.json"), prefix=resolved_ns.resolved_prefix)
    tun = agent.next()["ifname"]
    untouched = link_dns(resolved_ns, tun)
    assert untouched["dns"] == [] and untouched["domain"] == []

    assert agent.go()["event"] == "applied"
    assert link_dns(resolved_ns, tun) == expected
    assert snapshot(resolved_ns)["resolv.conf"] == STUB_RESOLV_CONF  # the file is resolved's: untouched

    assert agent.go()["notes"] == []
    assert link_dns(resolved_ns, tun) == untouched
    assert agent.go()["event"] == "closed"
    assert snapshot(resolved_ns) == before


@pytest.mark.parametrize("mode, domains", [("full", ["~.", "corp.test"]), ("split", ["corp.test"])])
def test_a_pushed_domain_becomes_the_links_domain_and_goes_with_it(resolved_ns, tmp_path, mode, domains):
    before = snapshot(resolved_ns)
    agent = Agent(
        resolved_ns,
        "session",
        "--mode",
        mode,
        "--journal",
        str(tmp_path / "j.json"),
        "--push-domain",
        "corp.test",
        prefix=resolved_ns.resolved_prefix,
    )
    tun = agent.next()["ifname"]
    applied = agent.go()
    assert applied["event"] == "applied" and applied["pushed_notes"] == []
    assert link_dns(resolved_ns, tun)["domain"] == domains  # split: only corp.test names go to the VPN
    assert agent.go()["notes"] == []
    assert link_dns(resolved_ns, tun)["domain"] == []
    assert agent.go()["event"] == "closed"
    assert snapshot(resolved_ns) == before
