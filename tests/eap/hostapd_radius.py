"""hostapd (Debian's `hostapd` 2.10) as a RADIUS-only EAP server (driver=none): its PEAP server
sends the [MS-PEAP] Crypto Binding TLV in PEAPv0 (FreeRADIUS 3 does not) and derives the MSK from
IPMK when the binding was used, so it checks our compound keys, Compound MAC and CSK-based MSK
against an implementation written by someone else (wpa_supplicant/hostapd's eap_server_peap.c)."""

from __future__ import annotations

import secrets
from pathlib import Path

from tests.eap.freeradius import RadiusServer, free_udp_port, start_until_ready
from tests.eap.pki import EapPki

USER, PASSWORD = "alice", "correct horse battery"


def start_hostapd(program: str, directory: Path, pki: EapPki) -> RadiusServer:
    secret = secrets.token_hex(12).encode()
    (directory / "clients").write_text(f"127.0.0.1/32 {secret.decode()}\n")
    (directory / "users").write_text(f'*\tPEAP\n"{USER}"\tMSCHAPV2\t"{PASSWORD}"\t[2]\n')
    last = ""
    for _attempt in range(3):
        port = free_udp_port()
        conf = directory / "hostapd.conf"
        conf.write_text(
            "\n".join(
                [
                    "driver=none",
                    "interface=sstptest0",
                    "logger_stdout=-1",
                    "logger_stdout_level=0",
                    "eap_server=1",
                    f"eap_user_file={directory / 'users'}",
                    f"ca_cert={pki.ca}",
                    f"server_cert={pki.server_cert}",
                    f"private_key={pki.server_key}",
                    f"radius_server_clients={directory / 'clients'}",
                    f"radius_server_auth_port={port}",
                    "",
                ]
            )
        )
        log = directory / f"hostapd-{port}.log"
        process = start_until_ready([program, "-dd", str(conf)], log, "Setup of interface done", 20)
        if process is not None:
            return RadiusServer(process, port, secret, log)
        last = log.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"hostapd did not start:\n{last}")
