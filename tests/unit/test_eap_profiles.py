"""EAP-TLS and PEAP in profiles and on the command line: the fields survive the TOML file, each
wrong one gets its sentence, a profile becomes the engine's TlsMethodSettings (the keyring secret
is the key passphrase for EAP-TLS), and `profiles add` / `connect` take the flags."""

from __future__ import annotations

import argparse
from dataclasses import replace

import pytest

from sstpvpn.client import eap_options
from sstpvpn.client.core.eap_tls import TlsMethod
from sstpvpn.client.profile_settings import connect_command
from sstpvpn.client.profiles import Profile, ProfileStore, new_profile_id, profile_problems
from tests.eap.pki import make_eap_pki
from tests.unit.test_profiles import sstp_vpn

PIN = "AB" * 32


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_eap_pki(tmp_path_factory.mktemp("pki"))


def _profile(**changes) -> Profile:
    values = dict(id=new_profile_id(), name="Office", host="vpn.example.com", username="alice")
    values.update(changes)
    return Profile(**values)


def test_eap_fields_survive_the_profile_file(tmp_path, pki):
    store = ProfileStore(tmp_path / "profiles.toml")
    profile = _profile(
        auth_method="eap-tls",
        client_certificate=str(pki.client_p12),
        eap_server_name="nps.corp.example",
        eap_ca_file=str(pki.ca),
        eap_pin_sha256=PIN,
        eap_tls13=True,
    )
    store.save(profile)
    assert store.load().profiles == (profile,)
    # A file written before these fields existed still loads, as password sign-in.
    old = _profile()
    assert old.auth_method == "password" and profile_problems(old) == {}


def test_each_wrong_eap_field_gets_its_sentence(tmp_path, pki):
    problems = profile_problems(_profile(auth_method="eap-tls"))
    assert problems["client_certificate"].startswith("EAP-TLS needs your certificate file")
    assert problems["eap_server_name"].startswith("Enter the name in the authentication server's certificate")
    problems = profile_problems(_profile(auth_method="peap", eap_server_name="bad name", eap_ca_file=str(tmp_path / "none.pem"), eap_pin_sha256="12"))
    assert set(problems) == {"eap_server_name", "eap_ca_file", "eap_pin_sha256"}
    assert profile_problems(_profile(auth_method="kerberos"))["auth_method"].startswith("The sign-in method must be one of")
    assert profile_problems(_profile(auth_method="peap", eap_pin_sha256=PIN)) == {}  # a pin alone is enough
    assert profile_problems(_profile(auth_method="eap-tls", client_certificate=str(pki.client_pem), eap_server_name="nps.corp.example")) == {}


def test_a_profile_becomes_the_engines_tls_settings(pki):
    profile = _profile(
        auth_method="eap-tls",
        client_certificate=str(pki.client_pem),
        eap_server_name="nps.corp.example",
        eap_ca_file=str(pki.ca),
        eap_pin_sha256=PIN,
        eap_tls13=True,
    )
    tls = connect_command(profile, "key passphrase").engine.auth.tls_method
    assert tls.method is TlsMethod.EAP_TLS and tls.server_name == "nps.corp.example"
    assert tls.ca_file == pki.ca and tls.client_certificate == pki.client_pem and tls.pin_sha256 == bytes.fromhex(PIN)
    assert tls.key_passphrase == "key passphrase" and tls.allow_tls13
    assert "key passphrase" not in repr(tls)
    peap = connect_command(replace(profile, auth_method="peap"), "pw").engine
    assert peap.auth.tls_method.method is TlsMethod.PEAP and peap.auth.tls_method.key_passphrase is None
    assert peap.credentials.password == "pw"
    assert connect_command(replace(profile, auth_method="password"), "pw").engine.auth.tls_method is None


def _connect_args(*argv: str) -> argparse.Namespace:
    from sstpvpn.client.cli import build_parser

    return build_parser().parse_args(["connect", "vpn.example.com", "--user", "alice", *argv])


def _tls_from_flags(args: argparse.Namespace, password: str):
    from sstpvpn.client.profile_commands import session_profile
    from sstpvpn.client.profile_settings import build_connect
    from sstpvpn.client.transport import TransportSettings

    command = build_connect(session_profile(args, "vpn.example.com", 443), TransportSettings("vpn.example.com"), password)
    return command.engine.auth.tls_method


def test_connect_flags_give_the_tls_settings(pki):
    args = _connect_args("--auth", "peap", "--eap-server-name", "nps.corp.example", "--eap-ca-file", str(pki.ca))
    assert eap_options.options_problem(args) is None
    tls = _tls_from_flags(args, "pw")
    assert tls.method is TlsMethod.PEAP and tls.server_name == "nps.corp.example" and tls.ca_file == pki.ca
    assert _tls_from_flags(_connect_args(), "pw") is None
    problem = eap_options.options_problem(_connect_args("--auth", "eap-tls", "--eap-server-name", "x.example.com"))
    assert "EAP-TLS needs your certificate file" in problem


def test_profiles_add_with_eap_tls_and_connect_refuses_eap_flags_with_a_profile(tmp_path, pki):
    home = tmp_path / "config"
    added = sstp_vpn(
        home,
        "profiles",
        "add",
        "Corp",
        "vpn.example.com",
        "--user",
        "alice",
        "--auth",
        "eap-tls",
        "--client-cert",
        str(pki.client_p12),
        "--eap-server-name",
        "nps.corp.example",
        "--eap-ca-file",
        str(pki.ca),
    )
    assert added.returncode == 0, added.stderr
    shown = sstp_vpn(home, "profiles", "show", "Corp").stdout
    assert f"authentication: EAP-TLS (certificate), certificate {pki.client_p12}, EAP server nps.corp.example, CA file {pki.ca}" in shown
    incomplete = sstp_vpn(home, "profiles", "add", "Bad", "vpn.example.com", "--user", "alice", "--auth", "peap")
    assert incomplete.returncode == 2 and "authentication server's certificate" in incomplete.stderr
    mixed = sstp_vpn(home, "connect", "--profile", "Corp", "--eap-server-name", "x.example.com")
    assert mixed.returncode == 2 and "leave out --eap-server-name" in mixed.stderr
