"""Passwords never leak: connect with a saved profile through an authenticating proxy, ping,
disconnect, write a support bundle, and look for both passwords everywhere the client left
something: every file under its config/state/runtime folders, the network journal folder, the
bundle, its standard output and error, and the command line of the client and of every process it
started (sampled all through the session). Also in its memory, for the record (see
`test_passwords_in_client_memory`).

Looked for, in each place: the password in UTF-8, in UTF-16LE (MS-CHAPv2 hashes that), in base64
(alone, and as the proxy's Basic "user:password"), and the NT hash MS-CHAPv2 derives from it
(raw and hex), which is as good as the password to an attacker.
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time
import zipfile
from pathlib import Path

import pytest

from sstpvpn.client.core.mschapv2 import password_hash
from tests.integration import client_process
from tests.integration.client_process import ClientProcess
from tests.integration.softether import VIRTUAL_HOST
from tests.proxies import start_tinyproxy
from tests.realparts import require_program

pytestmark = pytest.mark.realparts

PROXY_PASSWORD = "PxSecretZebra4711qvK"  # distinctive; tinyproxy's config grammar takes letters and digits only
PROXY_USER = "proxyuser"
JOURNAL_DIR = Path("/var/lib/sstp-vpn")


def forms(password: str, user: str | None = None) -> dict[str, bytes]:
    """The ways a password could show up in bytes."""
    found = {
        "utf-8": password.encode(),
        "utf-16le": password.encode("utf-16-le"),
        "base64": base64.b64encode(password.encode()),
        "nt-hash": password_hash(password),
        "nt-hash hex": password_hash(password).hex().encode(),
    }
    if user is not None:
        found["basic auth"] = base64.b64encode(f"{user}:{password}".encode())
    return found


def leaks(data: bytes, secrets: dict[str, dict[str, bytes]]) -> list[str]:
    return [f"{name} ({form})" for name, table in secrets.items() for form, value in table.items() if value in data]


def descendants(pid: int) -> set[int]:
    """The process and everything below it, from /proc's parent links."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo += children.get(current, [])
    return found


class CommandLineSampler(threading.Thread):
    """Reads /proc/<pid>/cmdline of the client and all its descendants every 20 ms, so that short
    helper processes (ip, resolvectl, ...) are seen too."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.command_lines: dict[int, bytes] = {}
        self.environments: dict[int, bytes] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for pid in descendants(self.pid):
                if self.command_lines.get(pid):  # an empty one was read mid-exec: read it again
                    continue
                try:
                    self.command_lines[pid] = Path(f"/proc/{pid}/cmdline").read_bytes()
                    self.environments[pid] = Path(f"/proc/{pid}/environ").read_bytes()
                except OSError:
                    pass
            self.stop.wait(0.02)


def readable_memory(pid: int) -> bytes:
    """All readable private memory of a process (heap, anonymous maps, stacks)."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as memory:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            path = fields[5] if len(fields) > 5 else ""
            if "r" not in fields[1] or (path and not path.startswith("[")) or path == "[vvar]" or end - start > 1 << 30:
                continue
            try:
                memory.seek(start)
                chunks.append(memory.read(end - start))
            except OSError:
                continue
    return b"".join(chunks)


def files_under(*folders: Path) -> list[Path]:
    return [path for folder in folders if folder.exists() for path in folder.rglob("*") if path.is_file()]


@pytest.fixture
def session(softether, tmp_path: Path):
    """A saved profile that goes through tinyproxy (BasicAuth with PROXY_PASSWORD); the folders
    the client may write to; the secrets to look for."""
    require_program("tinyproxy", "apt-get install tinyproxy")
    proxy = start_tinyproxy(softether.client_ns, [softether.port], tmp_path, user=PROXY_USER, password=PROXY_PASSWORD)
    home = tmp_path / "home"
    folders = {
        "XDG_CONFIG_HOME": home / "config",
        "XDG_STATE_HOME": home / "state",
        "XDG_RUNTIME_DIR": home / "run",
        "XDG_CACHE_HOME": home / "cache",
        "XDG_DATA_HOME": home / "data",
    }
    for folder in folders.values():
        folder.mkdir(parents=True, mode=0o700)
    env = {**os.environ, **{name: str(path) for name, path in folders.items()}}
    added = softether.client_ns.run(
        *client_process.CLI,
        "profiles",
        "add",
        "Office",
        f"{softether.server_name}:{softether.port}",
        "--user",
        softether.username,
        "--ca-file",
        str(softether.ca_path),
        "--proxy",
        f"http://{PROXY_USER}@{proxy.host}:{proxy.port}",
        env=env,
        check=False,
    )
    assert added.returncode == 0, added.stderr
    secrets = {"VPN password": forms(softether.password), "proxy password": forms(PROXY_PASSWORD, PROXY_USER)}
    yield softether, proxy, home, env, secrets, added.stdout + added.stderr
    proxy.stop()


def start_client(softether, env: dict[str, str], proxy_password_from: str, *extra: str) -> ClientProcess:
    """`connect --profile Office`, the VPN password on standard input, the proxy password in
    $SSTP_VPN_PROXY_PASSWORD or on the next line of standard input."""
    client_env = {name: env[name] for name in env if name.startswith("XDG_")}
    if proxy_password_from == "environment":
        return ClientProcess(
            softether.client_ns,
            ["--profile", "Office", "--ifname", "sstptest0", *extra],
            softether.password,
            env=client_env | {"SSTP_VPN_PROXY_PASSWORD": PROXY_PASSWORD},
        )
    return ClientProcess(
        softether.client_ns,
        ["--profile", "Office", "--ifname", "sstptest0", "--proxy-password-stdin", *extra],
        f"{softether.password}\n{PROXY_PASSWORD}",
        env=client_env,
    )


@pytest.mark.parametrize("proxy_password_from", ["environment", "stdin"])
def test_passwords_never_reach_files_logs_bundle_or_command_lines(session, tmp_path, proxy_password_from):
    softether, proxy, home, env, secrets, add_output = session
    ns = softether.client_ns
    client = start_client(softether, env, proxy_password_from, "-v")
    sampler = CommandLineSampler(client.process.pid)
    sampler.start()
    try:
        client.wait_for_line("connected:", timeout=60)
        assert ns.run("ping", "-c", "3", "-i", "0.2", "-W", "2", VIRTUAL_HOST, check=False).returncode == 0
        assert "CONNECT" in proxy.log_path.read_text()  # really went through the proxy
        time.sleep(0.3)
    finally:
        client.interrupt()
        code = client.finish()
        sampler.stop.set()
        sampler.join()
    assert code == 0, (client.lines, client.stderr)

    bundle_path = tmp_path / "support.txt"
    bundle = ns.run(*client_process.CLI, "bundle", "--output", str(bundle_path), env=env, check=False)
    assert bundle.returncode == 0, bundle.stderr
    text = bundle_path.read_text()
    assert "Last attempts (1," in text and "connected" in text and f"proxy.username: '{PROXY_USER}'" in text
    assert "The server accepted the SSTP request." in text  # the recent log made it in

    found = []
    places = {
        "stdout": "\n".join(client.lines).encode(),
        "stderr": client.stderr.encode(),
        "profiles add output": add_output.encode(),
        "bundle output": (bundle.stdout + bundle.stderr).encode(),
    }
    for path in [*files_under(home, JOURNAL_DIR), bundle_path]:
        places[str(path)] = path.read_bytes()
    for pid, command_line in sampler.command_lines.items():
        program = command_line.split(b"\0")[0].decode(errors="replace")
        places[f"/proc/{pid}/cmdline ({program})"] = command_line
    for place, data in places.items():
        found += [f"{leak} in {place}" for leak in leaks(data, secrets)]
    written = [str(path.relative_to(home)) for path in files_under(home)]
    print(
        f"scanned {len(places)} places: {len(written)} files under the XDG folders ({', '.join(sorted(written))}), "
        f"{len(sampler.command_lines)} processes' command lines"
    )
    assert "state/sstp-vpn/attempts.json" in written and "state/sstp-vpn/recent.log" in written
    assert found == []

    # The environment variable, when used, stays in the client's own /proc/<pid>/environ (the
    # kernel's copy of its initial environment, readable only by its user and root); the client
    # removes it before starting programs, so none of them inherits it.
    programs = {pid: line.split(b"\0")[0].decode(errors="replace") for pid, line in sampler.command_lines.items()}
    in_environ = sorted(pid for pid, environ in sampler.environments.items() if PROXY_PASSWORD.encode() in environ)
    print(f"processes: {sorted(programs.values())}; proxy password in the environ of: {[programs.get(p) for p in in_environ]}")
    assert in_environ == ([client.process.pid] if proxy_password_from == "environment" else [])


@pytest.mark.parametrize("proxy_password_from", ["environment", "stdin"])
def test_passwords_in_client_memory(session, proxy_password_from):
    """Not a pass/fail rule (Python cannot wipe a str): the count of copies of each password in the
    client's memory while connected, printed for the report. Fails only if the VPN password
    is not found at all, which would mean the scan itself is broken."""
    softether, proxy, home, env, secrets, _ = session
    client = start_client(softether, env, proxy_password_from)
    try:
        client.wait_for_line("connected:", timeout=60)
        time.sleep(1.0)
        memory = readable_memory(client.process.pid)
    finally:
        client.interrupt()
        code = client.finish()
    assert code == 0, (client.lines, client.stderr)
    counts = {f"{name} ({form})": len(re.findall(re.escape(value), memory)) for name, table in secrets.items() for form, value in table.items()}
    print(f"while connected, in {len(memory) >> 20} MiB of client memory: {counts}")
    assert counts["VPN password (utf-8)"] + counts["VPN password (utf-16le)"] + counts["VPN password (nt-hash)"] > 0


@pytest.mark.parametrize("wrong", ["vpn", "proxy"])
def test_refused_passwords_do_not_leak_either(session, tmp_path, wrong):
    """The failure paths (MS-CHAPv2 Failure, proxy 401) print and store more than success does."""
    softether, proxy, home, env, _, _ = session
    vpn_password = "WrongVpnPw9qhT3x" if wrong == "vpn" else softether.password
    proxy_password = "WrongProxyPw7mLk2" if wrong == "proxy" else PROXY_PASSWORD
    secrets = {"VPN password": forms(vpn_password), "proxy password": forms(proxy_password, PROXY_USER)}
    client = ClientProcess(
        softether.client_ns,
        ["--profile", "Office", "--ifname", "sstptest0", "--proxy-password-stdin", "-v"],
        f"{vpn_password}\n{proxy_password}",
        env={name: env[name] for name in env if name.startswith("XDG_")},
    )
    code = client.finish(timeout=60)
    assert code == (3 if wrong == "vpn" else 5), (client.lines, client.stderr)
    bundle_path = tmp_path / "support.zip"
    bundle = softether.client_ns.run(*client_process.CLI, "bundle", "--output", str(bundle_path), env=env, check=False)
    assert bundle.returncode == 0, bundle.stderr
    with zipfile.ZipFile(bundle_path) as archive:
        text = archive.read("support.txt")
    assert b"outcome [" in text  # the failure is in the timeline
    places = {"stdout": "\n".join(client.lines).encode(), "stderr": client.stderr.encode(), "bundle": text}
    places |= {str(path): path.read_bytes() for path in files_under(home, JOURNAL_DIR)}
    found = [f"{leak} in {place}" for place, data in places.items() for leak in leaks(data, secrets)]
    print(f"wrong {wrong} password: {client.stderr.strip()}")
    assert found == []
