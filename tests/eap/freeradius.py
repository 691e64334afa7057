"""FreeRADIUS (Debian's `freeradius` 3.2) as the EAP server, started in the foreground (-X) on
127.0.0.1 with a raddb of its own: a copy of /etc/freeradius/3.0 with our clients.conf (one
client, a random secret), a test user for PEAP/MS-CHAPv2 in the users file and an eap module whose
tls-common uses the test PKI (EAP-TLS requires a client certificate issued by the test CA)."""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.eap.pki import EapPki

SYSTEM_RADDB = Path("/etc/freeradius/3.0")
USER, PASSWORD = "alice", "correct horse battery"

EAP_MODULE = """eap {{
	default_eap_type = {default_type}
	timer_expire = 60
	ignore_unknown_eap_types = no
	cisco_accounting_username_bug = no
	max_sessions = ${{max_requests}}
	tls-config tls-common {{
		private_key_file = {server_key}
		certificate_file = {server_cert}
		ca_file = {ca}
		cipher_list = "DEFAULT"
		tls_min_version = "1.2"
		tls_max_version = "1.3"
		fragment_size = 1024
		cache {{
			enable = no
		}}
		verify {{
		}}
	}}
	tls {{
		tls = tls-common
	}}
	peap {{
		tls = tls-common
		default_eap_type = mschapv2
		copy_request_to_tunnel = no
		use_tunneled_reply = no
		virtual_server = "inner-tunnel"
	}}
	mschapv2 {{
	}}
}}
"""


@dataclass
class RadiusServer:
    """A RADIUS server process started for a test (FreeRADIUS, or hostapd as one)."""

    process: subprocess.Popen
    port: int
    secret: bytes
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_raddb(directory: Path, pki: EapPki, secret: bytes, default_type: str = "peap") -> Path:
    raddb = directory / "raddb"
    shutil.copytree(SYSTEM_RADDB, raddb, symlinks=True)
    conf = (raddb / "radiusd.conf").read_text()
    conf = re.sub(r"(?m)^raddbdir = .*$", f"raddbdir = {raddb}", conf)
    conf = re.sub(r"(?m)^logdir = .*$", f"logdir = {directory}", conf)
    conf = re.sub(r"(?m)^run_dir = .*$", f"run_dir = {directory}", conf)
    conf = re.sub(r"(?m)^\s*(user|group) = freerad\s*$", "", conf)
    conf = re.sub(r"(?m)^(\s*)reject_delay = .*$", r"\1reject_delay = 0", conf)
    (raddb / "radiusd.conf").write_text(conf)
    (raddb / "clients.conf").write_text(
        f'client tests {{\n\tipaddr = 127.0.0.1\n\tsecret = "{secret.decode()}"\n\trequire_message_authenticator = yes\n}}\n'
    )
    users = raddb / "mods-config" / "files" / "authorize"
    users.write_text(f'{USER}\tCleartext-Password := "{PASSWORD}"\n\n' + users.read_text())
    eap = raddb / "mods-available" / "eap"
    eap.write_text(EAP_MODULE.format(default_type=default_type, server_key=pki.server_key, server_cert=pki.server_cert, ca=pki.ca))
    # The inner tunnel's own listener (127.0.0.1:18120) is not needed and could clash.
    inner = raddb / "sites-available" / "inner-tunnel"
    inner.write_text(_without_listeners(inner.read_text()))
    return raddb


def _without_listeners(text: str) -> str:
    """The site file without its listen { ... } blocks (braces nest: listen { limit { } })."""
    out, position = [], 0
    for match in re.finditer(r"(?m)^\s*listen\s*\{", text):
        if match.start() < position:
            continue
        out.append(text[position : match.start()])
        depth, index = 0, match.end() - 1
        while index < len(text):
            depth += {"{": 1, "}": -1}.get(text[index], 0)
            index += 1
            if depth == 0:
                break
        position = index
    out.append(text[position:])
    return "".join(out)


def listen_on(raddb: Path, port: int) -> None:
    """The default site listens for authentication on 127.0.0.1:port only."""
    site = raddb / "sites-available" / "default"
    original = raddb / "sites-available" / "default.orig"
    if not original.exists():
        shutil.copy(site, original)
    text = _without_listeners(original.read_text())
    listen = f"listen {{\n\ttype = auth\n\tipaddr = 127.0.0.1\n\tport = {port}\n}}\n"
    site.write_text(text.replace("server default {", "server default {\n" + listen, 1))


def start_freeradius(program: str, directory: Path, pki: EapPki) -> RadiusServer:
    secret = secrets.token_hex(12).encode()
    raddb = write_raddb(directory, pki, secret)
    last_error = ""
    for _attempt in range(3):
        port = free_udp_port()
        log = directory / f"freeradius-{port}.log"
        listen_on(raddb, port)
        process = start_until_ready([program, "-X", "-d", str(raddb)], log, "Ready to process requests", 30)
        if process is not None:
            return RadiusServer(process, port, secret, log)
        last_error = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"FreeRADIUS did not start:\n{last_error}")


def start_until_ready(command: list[str], log: Path, ready: str, seconds: float) -> subprocess.Popen | None:
    """Run `command` with its output in `log`: the process once `ready` shows there; None (and
    the process stopped) when it exits first or takes longer than `seconds` (e.g. its port was
    taken meanwhile: the caller tries another)."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready in log.read_text(errors="replace"):
            return process
        if process.poll() is not None:
            break
        time.sleep(0.05)
    stop(process)
    return None


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
