"""A realistic client network in namespaces, and a driver for ns_agent.py running inside it.

Starting state of the "client" namespace, like a machine on a home network: a veth to an
"upstream" namespace with 198.18.20.2/24 (and an IPv6 address), default routes via the upstream
end, and a resolv.conf with a search line and one nameserver. The VPN server 198.18.21.1 sits
behind the gateway (on the upstream namespace's loopback), so it needs a host route.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.netns import Namespace, veth_pair

AGENT = str(Path(__file__).with_name("ns_agent.py"))
REPO = str(Path(__file__).resolve().parents[2])
RESOLV_CONF = b"# resolv.conf of the test namespace\nsearch home.test\nnameserver 198.18.20.53\noptions edns0\n"
SERVER_BEHIND_GATEWAY = "198.18.21.1"
SERVER_ON_LINK = "198.18.20.1"
GATEWAY = "198.18.20.1"


@contextlib.contextmanager
def client_network() -> Iterator[Namespace]:
    """The client namespace (with `.veth`, its uplink's name); both namespaces go afterwards."""
    with Namespace("sstpplat") as client, Namespace("sstpplat") as upstream:
        for ns in (client, upstream):  # no duplicate address detection: IPv6 state settles at once
            ns.run("sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
        client_if, upstream_if = veth_pair(client, "198.18.20.2", upstream, GATEWAY)
        client.run("ip", "-6", "addr", "add", "2001:db8:20::2/64", "dev", client_if, "nodad")
        upstream.run("ip", "-6", "addr", "add", "2001:db8:20::1/64", "dev", upstream_if, "nodad")
        upstream.run("ip", "addr", "add", f"{SERVER_BEHIND_GATEWAY}/32", "dev", "lo")
        client.run("ip", "route", "add", "default", "via", GATEWAY)
        client.run("ip", "-6", "route", "add", "default", "via", "2001:db8:20::1")
        (client.etc / "resolv.conf").write_bytes(RESOLV_CONF)
        client.veth = client_if
        yield client


class Agent:
    """An agent script (ns_agent.py unless `script` names another) in the namespace, driven line
    by line. `prefix` runs it through another program first (e.g. one that sets up a private
    systemd-resolved)."""

    def __init__(self, ns: Namespace, *arguments: str, prefix: tuple[str, ...] = (), script: str = AGENT) -> None:
        self.proc = ns.popen(
            *prefix, sys.executable, script, *arguments, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
        )

    def next(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise AssertionError(f"the agent ended early: {self.proc.stderr.read()}")
        return json.loads(line)

    def go(self) -> dict:
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return self.next()


def run_agent(ns: Namespace, *arguments: str, prefix: tuple[str, ...] = ()) -> dict:
    result = ns.run(*prefix, sys.executable, AGENT, *arguments, check=False, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def ip_json(ns: Namespace, *arguments: str) -> list[dict]:
    return json.loads(ns.run("ip", "-j", *arguments).stdout or "[]")


def snapshot(ns: Namespace) -> dict:
    """Everything the platform layer may touch, as the kernel and the file show it."""
    return {
        "addresses": ip_json(ns, "addr", "show"),
        "routes": ip_json(ns, "-4", "route", "show", "table", "all"),
        "routes6": ip_json(ns, "-6", "route", "show", "table", "all"),
        "rules": ip_json(ns, "rule", "show"),
        "resolv.conf": (ns.etc / "resolv.conf").read_bytes(),
    }


def without_qdisc(state: dict) -> dict:
    # The kernel attaches a queueing discipline the first time a link goes up and keeps it;
    # that is not a configuration the platform layer made.
    addresses = [{k: v for k, v in link.items() if k != "qdisc"} for link in state["addresses"]]
    return {**state, "addresses": addresses}


def route(routes: list[dict], dst: str) -> dict | None:
    return next((r for r in routes if r.get("dst") == dst and r.get("table", "main") == "main"), None)
