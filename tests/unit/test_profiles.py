"""The profile model, its validation, the TOML store, turning a profile into runner settings, and
the `sstp-vpn profiles` commands (run as a user would, in a subprocess)."""

from __future__ import annotations

import ipaddress
import os
import stat
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from sstpvpn.client.profile_settings import ProfileSettingsError, connect_command, system_proxy, transport_settings
from sstpvpn.client.profiles import (
    SCHEMA_VERSION,
    Profile,
    ProfileBook,
    ProfileFileError,
    ProfileStore,
    ProxyChoice,
    ProxyMode,
    UnknownProfile,
    new_profile_id,
    profile_problems,
)


def make_profile(**changes) -> Profile:
    values = dict(id=new_profile_id(), name="Office", host="vpn.example.com", username="alice")
    values.update(changes)
    return Profile(**values)


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    return ProfileStore(tmp_path / "config" / "sstp-vpn" / "profiles.toml")


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "ca.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


# -- the store ---------------------------------------------------------------------------------


def test_empty_store_has_no_profiles(store):
    assert store.load().profiles == ()
    assert not store.path.exists()


def test_round_trip_keeps_every_field(store, ca_file):
    profile = make_profile(
        port=8443,
        sni="vpn.internal",
        ca_file=str(ca_file),
        pin_sha256="ab" * 32,
        allow_pap=True,
        allow_chap_md5=True,
        full_tunnel=False,
        ipv6=True,
        mtu=1400,
        auto_reconnect=True,
        extra_routes=("10.20.0.0/16", "fd00:1::/64"),
        use_vpn_dns=False,
        proxy=ProxyChoice(ProxyMode.MANUAL, "proxy.example.com", 3128, "bob"),
    )
    store.save(profile)
    assert store.load().profiles == (profile,)
    assert ProfileStore(store.path).load().by_id(profile.id) == profile


def test_file_is_versioned_private_and_written_atomically(store):
    store.save(make_profile())
    document = tomllib.loads(store.path.read_text())
    assert document["schema"] == SCHEMA_VERSION
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    store.save(make_profile(name="Home"))
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["profiles.toml"]  # no temporary files left


def test_renaming_keeps_the_id(store):
    profile = store.save(make_profile())
    store.save(replace(profile, name="Head office"))
    (renamed,) = store.load().profiles
    assert renamed.id == profile.id and renamed.name == "Head office"


def test_names_are_unique_ignoring_case(store):
    store.save(make_profile(name="Office"))
    with pytest.raises(ProfileFileError, match="already called"):
        store.save(make_profile(name="office"))


def test_find_by_name_or_id(store):
    profile = store.save(make_profile(name="Office"))
    book = store.load()
    assert book.find("OFFICE") == profile
    assert book.find(profile.id) == profile
    assert book.find("nothing") is None


def test_remove_forgets_last_used_and_pinned_certificate(store, ca_file):
    profile = store.save(make_profile())
    pinned = store.save_pinned_certificate(profile.id, ca_file.read_bytes())
    store.save(replace(profile, ca_file=str(pinned)))
    store.set_last_used(profile.id)
    assert store.load().last_used == profile.id
    store.remove(profile.id)
    assert store.load() == ProfileBook()
    assert not pinned.exists()
    with pytest.raises(UnknownProfile):
        store.remove(profile.id)


def test_other_programs_changes_are_kept(store):
    """Each change re-reads the file: the CLI and the tray app can both edit it."""
    store.save(make_profile(name="A"))
    ProfileStore(store.path).save(make_profile(name="B"))
    store.save(make_profile(name="C"))
    assert [p.name for p in store.load().profiles] == ["A", "B", "C"]


def test_damaged_file_gives_a_sentence(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_text("schema = 1\n[[profiles]\n")
    with pytest.raises(ProfileFileError, match=r"is damaged .*fix it or move it aside"):
        store.load()


def test_wrong_types_name_the_profile_and_field(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_text('schema = 1\n[[profiles]]\nid = "x"\nname = "A"\nhost = "h"\nport = "443"\n')
    with pytest.raises(ProfileFileError, match="Profile 1 .* port that is not a int"):
        store.load()


def test_newer_schema_asks_for_an_update(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_text(f"schema = {SCHEMA_VERSION + 1}\n")
    with pytest.raises(ProfileFileError, match="newer version of SSTP VPN"):
        store.load()


def test_missing_optional_fields_take_defaults(store):
    store.path.parent.mkdir(parents=True)
    store.path.write_text('schema = 1\n[[profiles]]\nid = "x1"\nname = "A"\nhost = "vpn.example.com"\n')
    (profile,) = store.load().profiles
    assert profile == Profile(id="x1", name="A", host="vpn.example.com")


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field, fragment",
    [
        (dict(name=" "), "name", "Give the profile a name"),
        (dict(host=""), "host", "Enter the server"),
        (dict(host="vpn example.com"), "host", "spaces"),
        (dict(host="-bad-.example.com"), "host", "not a valid host name"),
        (dict(port=0), "port", "1 to 65535"),
        (dict(username=""), "username", "user name"),
        (dict(sni="not a name"), "sni", "TLS server name"),
        (dict(pin_sha256="abcd"), "pin_sha256", "64 hexadecimal digits"),
        (dict(mtu=100), "mtu", "576 to 1500"),
        (dict(extra_routes=("10.20.0.1/16",)), "extra_routes", "write it like 10.20.0.0/16"),
        (dict(extra_routes=("office",)), "extra_routes", "'office' is not a network"),
        (dict(extra_routes=("0.0.0.0/0",)), "extra_routes", "would route everything"),
        (dict(extra_routes=tuple(f"10.{n}.0.0/16" for n in range(33))), "extra_routes", "At most 32"),
        (dict(proxy=ProxyChoice(ProxyMode.MANUAL, "", 0)), "proxy", "http://host:port"),
    ],
)
def test_each_wrong_field_gets_its_sentence(changes, field, fragment):
    problems = profile_problems(make_profile(**changes))
    assert list(problems) == [field]
    assert fragment in problems[field]


def test_ca_file_must_exist_and_hold_a_certificate(tmp_path, ca_file):
    assert "does not exist" in profile_problems(make_profile(ca_file=str(tmp_path / "missing.pem")))["ca_file"]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    assert "holds no PEM certificate" in profile_problems(make_profile(ca_file=str(garbage)))["ca_file"]
    assert profile_problems(make_profile(ca_file=str(ca_file))) == {}


def test_valid_profiles_have_no_problems():
    assert profile_problems(make_profile(host="192.0.2.7")) == {}
    assert profile_problems(make_profile(host="2001:db8::1", pin_sha256=":".join(["AB"] * 32))) == {}


def test_proxy_url_with_a_password_is_refused():
    with pytest.raises(ValueError, match="password field"):
        ProxyChoice.manual_from_url("http://bob:secret@proxy:3128")
    choice = ProxyChoice.manual_from_url("http://b%40b@proxy.example.com:3128")
    assert choice == ProxyChoice(ProxyMode.MANUAL, "proxy.example.com", 3128, "b@b")
    assert choice.url == "http://b%40b@proxy.example.com:3128"


# -- profile -> runner settings ----------------------------------------------------------------


def test_connect_command_carries_the_profile(ca_file):
    profile = make_profile(
        port=8443,
        sni="vpn.internal",
        ca_file=str(ca_file),
        allow_pap=True,
        full_tunnel=False,
        ipv6=True,
        mtu=1400,
        proxy=ProxyChoice(ProxyMode.MANUAL, "proxy", 3128, "bob"),
    )
    command = connect_command(profile, "pw", "proxy-pw")
    transport, engine = command.transport, command.engine
    assert (transport.host, transport.port, transport.sni, transport.ca_file) == ("vpn.example.com", 8443, "vpn.internal", ca_file)
    assert (transport.proxy.host, transport.proxy.port, transport.proxy.username, transport.proxy.password) == ("proxy", 3128, "bob", "proxy-pw")
    assert engine.credentials.username == "alice" and engine.credentials.password == "pw"
    assert engine.host == "vpn.example.com:8443"
    assert engine.auth.allow_pap and not engine.auth.allow_chap_md5
    assert engine.ipv6 and engine.mru == 1400
    assert command.network.full_tunnel is False
    assert command.network.extra_routes == () and command.network.use_vpn_dns is True
    routed = connect_command(replace(profile, extra_routes=("10.20.0.0/16",), use_vpn_dns=False), "pw", "proxy-pw")
    assert routed.network.extra_routes == (ipaddress.ip_network("10.20.0.0/16"),)
    assert routed.network.use_vpn_dns is False
    assert "pw" not in repr(command)


def test_system_proxy_comes_from_the_environment(tmp_path):
    env = {"https_proxy": "http://user@proxy.corp:8080", "no_proxy": "internal.example.com"}
    proxy = system_proxy("vpn.example.com", env)
    assert (proxy.host, proxy.port, proxy.username) == ("proxy.corp", 8080, "user")
    assert system_proxy("vpn.internal.example.com", env) is None
    assert system_proxy("vpn.example.com", {"HOME": str(tmp_path)}) is None  # a home without desktop settings: none
    with pytest.raises(ProfileSettingsError, match="system proxy"):
        system_proxy("vpn.example.com", {"all_proxy": "socks5://127.0.0.1:1080"})
    profile = make_profile(proxy=ProxyChoice(ProxyMode.SYSTEM))
    assert transport_settings(profile, environ={"HTTPS_PROXY": "http://p:3128"}).proxy.host == "p"


# -- the command line --------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]


def sstp_vpn(config_home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    # No session bus: the keyring is unavailable, as on a server without a desktop.
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    env["XDG_CONFIG_HOME"] = str(config_home)
    return subprocess.run(
        [sys.executable, "-m", "sstpvpn.client.cli", *args], input=stdin, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60
    )


def test_profiles_commands(tmp_path):
    home = tmp_path / "config"
    listed = sstp_vpn(home, "profiles", "list")
    assert listed.returncode == 0 and "No profiles yet" in listed.stdout
    added = sstp_vpn(
        home,
        "profiles",
        "add",
        "Office",
        "vpn.example.com:8443",
        "--user",
        "HUB\\alice",
        "--proxy",
        "http://bob@proxy.corp:3128",
        "--no-default-route",
        "--route",
        "10.20.0.0/16",
        "--route",
        "fd00:1::/64",
        "--no-vpn-dns",
        "--password-stdin",
        stdin="s3cret\n",
    )
    assert added.returncode == 0, added.stderr
    assert "Saved the profile 'Office'" in added.stdout
    assert "password was not saved" in added.stderr and "No system keyring" in added.stderr
    assert "vpn.example.com:8443" in sstp_vpn(home, "profiles", "list").stdout
    shown = sstp_vpn(home, "profiles", "show", "office")
    assert shown.returncode == 0
    assert "server: vpn.example.com:8443" in shown.stdout and "proxy: http://bob@proxy.corp:3128" in shown.stdout
    assert "routing: only the VPN network (split tunnel)" in shown.stdout
    assert "extra routes: 10.20.0.0/16, fd00:1::/64" in shown.stdout and "DNS: this computer's own" in shown.stdout
    profile_file = home / "sstp-vpn" / "profiles.toml"
    assert "s3cret" not in profile_file.read_text()
    duplicate = sstp_vpn(home, "profiles", "add", "OFFICE", "other.example.com", "--user", "x")
    assert duplicate.returncode == 2 and "exists already" in duplicate.stderr
    invalid = sstp_vpn(home, "profiles", "add", "Bad", "vpn.example.com", "--user", "x", "--pin-sha256", "12")
    assert invalid.returncode == 2 and "64 hexadecimal digits" in invalid.stderr
    bad_route = sstp_vpn(home, "profiles", "add", "Bad", "vpn.example.com", "--user", "x", "--route", "10.0.0.1/8")
    assert bad_route.returncode == 2 and "write it like 10.20.0.0/16" in bad_route.stderr
    # connect checks --route before it asks for a password (stdin is empty here)
    bad_connect = sstp_vpn(home, "connect", "vpn.example.com", "--user", "x", "--route", "10.0.0.1/8", "--password-stdin", stdin="")
    assert bad_connect.returncode == 2 and "write it like 10.20.0.0/16" in bad_connect.stderr, bad_connect.stderr
    removed = sstp_vpn(home, "profiles", "remove", "Office")
    assert removed.returncode == 0 and "Removed the profile 'Office'" in removed.stdout
    missing = sstp_vpn(home, "profiles", "show", "Office")
    assert missing.returncode == 2 and "There is no profile called 'Office'" in missing.stderr


def test_connect_with_profile_refuses_server_options_and_needs_a_password(tmp_path):
    home = tmp_path / "config"
    assert sstp_vpn(home, "profiles", "add", "Office", "vpn.example.com", "--user", "alice").returncode == 0
    mixed = sstp_vpn(home, "connect", "--profile", "Office", "--user", "bob")
    assert mixed.returncode == 2 and "leave out --user" in mixed.stderr
    no_password = sstp_vpn(home, "connect", "--profile", "Office")
    assert no_password.returncode == 2
    assert "No system keyring is available" in no_password.stderr and "--password-stdin" in no_password.stderr
    neither = sstp_vpn(home, "connect")
    assert neither.returncode == 2 and "--profile NAME" in neither.stderr
