"""`sstp-vpn profiles add / set / show` and issue 17's settings: the proxy (a URL, the system's
settings, a PAC file at an address or found by WPAD, none), whether Basic authentication may carry
the proxy password, and what to do when the server certificate's revocation cannot be checked."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib

import pytest
import tomli_w
from keyring.backends import SecretService

from sstpvpn.client import cli
from sstpvpn.client.profile_commands import ProfileCommandError, describe_proxy, proxy_choice
from sstpvpn.client.profiles import Profile, ProfileFileError, ProfileStore, ProxyChoice, ProxyMode, Revocation, new_profile_id
from sstpvpn.client.secret_store import SecretKind, SecretStore
from tests.gui.desktop import environment, secret_service, session_bus
from tests.unit.test_profiles import REPO_ROOT, sstp_vpn
from tests.unit.test_secret_store import keyring_items


def parsed(*words: str):
    return cli.build_parser().parse_args(["profiles", *words])


def added(*options: str) -> ProxyChoice:
    return proxy_choice(parsed("add", "Office", "vpn.example.com", "--user", "alice", *options))


def test_add_reads_each_proxy_choice():
    assert added() == ProxyChoice()
    assert added("--proxy", "system") == ProxyChoice(ProxyMode.SYSTEM)
    assert added("--proxy", "wpad") == ProxyChoice(ProxyMode.PAC, pac_url="")
    assert added("--proxy-pac", "http://wpad.corp.example/proxy.pac") == ProxyChoice(ProxyMode.PAC, pac_url="http://wpad.corp.example/proxy.pac")
    assert added("--proxy", "http://bob@proxy.corp:3128", "--proxy-no-basic") == ProxyChoice(
        ProxyMode.MANUAL, "proxy.corp", 3128, "bob", allow_basic=False
    )
    assert added("--proxy", "wpad", "--proxy-no-basic") == ProxyChoice(ProxyMode.PAC, allow_basic=False)
    with pytest.raises(ProfileCommandError, match="is the address of a proxy auto-config \\(PAC\\) file: give it with --proxy-pac"):
        added("--proxy", "http://wpad.corp.example/proxy.pac")
    with pytest.raises(ProfileCommandError, match="Leave the password out of the proxy URL"):
        added("--proxy", "http://bob:secret@proxy.corp:3128")
    assert parsed("add", "Office", "vpn.example.com", "--user", "alice").revocation == "soft"


def test_a_pac_profile_has_a_proxy_user():
    assert added("--proxy-pac", "http://wpad/proxy.pac", "--proxy-user", "CORP\\bob") == ProxyChoice(
        ProxyMode.PAC, username="CORP\\bob", pac_url="http://wpad/proxy.pac"
    )
    assert added("--proxy", "wpad", "--proxy-user", "bob") == ProxyChoice(ProxyMode.PAC, username="bob")
    with pytest.raises(ProfileCommandError, match="--proxy-user goes with --proxy-pac or --proxy wpad"):
        added("--proxy", "http://proxy.corp:3128", "--proxy-user", "bob")
    saved = ProxyChoice(ProxyMode.PAC, username="bob", pac_url="http://wpad/proxy.pac")
    assert proxy_choice(parsed("set", "Office", "--proxy", "wpad"), saved) == ProxyChoice(ProxyMode.PAC, username="bob")  # the same user
    assert proxy_choice(parsed("set", "Office", "--proxy-user", ""), saved) == ProxyChoice(ProxyMode.PAC, pac_url="http://wpad/proxy.pac")


def test_the_store_keeps_a_pac_profiles_proxy_user(tmp_path):
    store = ProfileStore(tmp_path / "profiles.toml")
    proxy = ProxyChoice(ProxyMode.PAC, username="CORP\\bob", pac_url="http://wpad/proxy.pac", allow_basic=False)
    profile = store.save(Profile(id=new_profile_id(), name="Corp", host="vpn.example.com", username="alice", proxy=proxy))
    assert store.load().profiles == (profile,)
    (table,) = tomllib.loads(store.path.read_text())["profiles"]
    assert table["proxy"] == {"mode": "pac", "pac_url": "http://wpad/proxy.pac", "username": "CORP\\bob", "allow_basic": False}
    table["proxy"]["username"] = 7
    store.path.write_text(tomli_w.dumps({"schema": 1, "profiles": [table]}))
    with pytest.raises(ProfileFileError, match="has a proxy username that is not text"):
        store.load()


def test_set_changes_only_what_is_given():
    saved = ProxyChoice(ProxyMode.MANUAL, "proxy.corp", 3128, "bob", allow_basic=False)
    assert proxy_choice(parsed("set", "Office", "--revocation", "hard"), saved) == saved
    assert proxy_choice(parsed("set", "Office", "--proxy", "wpad"), saved) == ProxyChoice(ProxyMode.PAC, allow_basic=False)  # Basic stays forbidden
    assert proxy_choice(parsed("set", "Office", "--proxy-allow-basic"), saved) == ProxyChoice(ProxyMode.MANUAL, "proxy.corp", 3128, "bob")
    assert proxy_choice(parsed("set", "Office", "--proxy", "none"), saved) == ProxyChoice(allow_basic=False)
    assert parsed("set", "Office").revocation is None


@pytest.mark.parametrize(
    "words",
    [
        ("add", "Office", "vpn.example.com", "--user", "alice", "--proxy", "system", "--proxy-pac", "http://wpad/proxy.pac"),
        ("set", "Office", "--proxy-no-basic", "--proxy-allow-basic"),
        ("set", "Office", "--revocation", "sometimes"),
    ],
)
def test_contradicting_or_unknown_options_are_usage_errors(words, capsys):
    with pytest.raises(SystemExit) as exited:
        parsed(*words)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "not allowed with argument" in error or "invalid choice: 'sometimes'" in error


def test_describe_proxy_says_where_the_proxy_comes_from():
    assert describe_proxy(ProxyChoice()) == "none"
    assert describe_proxy(ProxyChoice(ProxyMode.SYSTEM)) == "the system's proxy settings"
    assert describe_proxy(ProxyChoice(ProxyMode.PAC)) == "as the proxy auto-config (PAC) file found by WPAD says"
    assert describe_proxy(ProxyChoice(ProxyMode.PAC, pac_url="http://wpad/p.pac")) == "as the proxy auto-config (PAC) file http://wpad/p.pac says"
    assert describe_proxy(ProxyChoice(ProxyMode.MANUAL, "proxy.corp", 3128, "bob")) == "http://bob@proxy.corp:3128"


def shown_lines(home, name: str) -> dict[str, str]:
    shown = sstp_vpn(home, "profiles", "show", name)
    assert shown.returncode == 0, shown.stderr
    return dict(line.split(": ", 1) for line in shown.stdout.splitlines())


def test_add_set_and_show_through_the_command(tmp_path):
    home = tmp_path / "config"
    profile_file = home / "sstp-vpn" / "profiles.toml"
    made = sstp_vpn(
        home,
        "profiles",
        "add",
        "Office",
        "vpn.example.com",
        "--user",
        "alice",
        "--proxy-pac",
        "https://config.corp.example/proxy.pac",
        "--proxy-no-basic",
        "--revocation",
        "hard",
    )
    assert made.returncode == 0, made.stderr
    lines = shown_lines(home, "Office")
    assert lines["proxy"] == "as the proxy auto-config (PAC) file https://config.corp.example/proxy.pac says"
    assert lines["proxy Basic authentication"] == "never (NTLM or Negotiate only)"
    assert lines["revocation"] == "hard: refuse to connect when the server certificate's revocation cannot be checked"
    (table,) = tomllib.loads(profile_file.read_text())["profiles"]
    assert table["proxy"] == {"mode": "pac", "pac_url": "https://config.corp.example/proxy.pac", "allow_basic": False}
    assert table["revocation"] == "hard"

    changed = sstp_vpn(home, "profiles", "set", "office", "--proxy", "wpad", "--revocation", "soft")
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout == "Changed the profile 'Office'.\n"
    lines = shown_lines(home, "Office")
    assert lines["proxy"] == "as the proxy auto-config (PAC) file found by WPAD says"
    assert lines["proxy Basic authentication"] == "never (NTLM or Negotiate only)"  # not given: kept
    assert lines["revocation"] == "soft: connect and warn when the server certificate's revocation cannot be checked"
    assert lines["server"] == "vpn.example.com" and lines["user"] == "alice"  # the rest as it was

    before = profile_file.read_bytes()
    bad = sstp_vpn(home, "profiles", "set", "Office", "--proxy-pac", "wpad.corp.example/proxy.pac")
    assert bad.returncode == 2
    assert bad.stderr == "sstp-vpn: Write the PAC file's address as http://host/proxy.pac, or leave it empty to find it by WPAD.\n"
    nothing = sstp_vpn(home, "profiles", "set", "Office")
    assert nothing.returncode == 2 and "Nothing to change: give --proxy, --proxy-pac" in nothing.stderr
    missing = sstp_vpn(home, "profiles", "set", "Home", "--proxy", "system")
    assert missing.returncode == 2 and "There is no profile called 'Home'" in missing.stderr
    assert profile_file.read_bytes() == before  # refused changes leave the file alone

    assert sstp_vpn(home, "profiles", "set", "Office", "--proxy", "system", "--proxy-allow-basic").returncode == 0
    lines = shown_lines(home, "Office")
    assert (lines["proxy"], lines["proxy Basic authentication"]) == ("the system's proxy settings", "allowed")
    assert sstp_vpn(home, "profiles", "set", "Office", "--proxy", "none").returncode == 0
    assert shown_lines(home, "Office")["proxy"] == "none"
    assert ProfileStore(profile_file).load().find("Office").revocation is Revocation.SOFT
    assert sstp_vpn(home, "profiles", "set", "Office", "--proxy", "wpad", "--proxy-user", "CORP\\bob").returncode == 0
    lines = shown_lines(home, "Office")
    assert (lines["proxy"], lines["proxy user"]) == ("as the proxy auto-config (PAC) file found by WPAD says", "CORP\\bob")


def test_help_describes_the_choices():
    helped = subprocess.run(
        [sys.executable, "-m", "sstpvpn.client.cli", "profiles", "set", "--help"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    text = " ".join(helped.stdout.split())
    assert "--proxy URL|system|wpad|none" in text and "--proxy-pac URL" in text
    assert "'wpad' for a proxy auto-config (PAC) file found on the network by WPAD" in text
    assert "'soft' connects and warns (default), 'hard' refuses" in text


@pytest.fixture
def keyring_bus():
    """A private bus with an unlocked gnome-keyring; DBUS_SESSION_BUS_ADDRESS points at it."""
    with session_bus() as address, secret_service(address), environment(DBUS_SESSION_BUS_ADDRESS=address):
        yield address


def test_set_to_a_proxy_with_a_user_keeps_its_password_in_the_keyring(keyring_bus, tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "DBUS_SESSION_BUS_ADDRESS": keyring_bus}

    def run(*words: str, **extra: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "sstpvpn.client.cli", "profiles", *words]
        return subprocess.run(command, capture_output=True, text=True, env={**env, **extra}, cwd=REPO_ROOT, timeout=60)

    assert run("add", "Office", "vpn.example.com", "--user", "alice").returncode == 0
    changed = run("set", "Office", "--proxy", "http://bob@proxy.corp:3128", SSTP_VPN_PROXY_PASSWORD="proxy-s3cret")
    assert changed.returncode == 0 and changed.stderr == "", changed.stderr
    profile = ProfileStore(tmp_path / "sstp-vpn" / "profiles.toml").load().find("Office")
    assert profile.proxy == ProxyChoice(ProxyMode.MANUAL, "proxy.corp", 3128, "bob")
    assert SecretStore(SecretService.Keyring()).get(profile.id, SecretKind.PROXY) == "proxy-s3cret"
    assert "s3cret" not in (tmp_path / "sstp-vpn" / "profiles.toml").read_text()
    pac = run("set", "Office", "--proxy-pac", "http://wpad/proxy.pac", "--proxy-user", "CORP\\bob", SSTP_VPN_PROXY_PASSWORD="pac-s3cret")
    assert pac.returncode == 0 and pac.stderr == "", pac.stderr
    assert keyring_items(profile.id, SecretKind.PROXY) == [("SSTP VPN: Office (CORP\\bob) proxy password", "pac-s3cret")]
    assert "s3cret" not in (tmp_path / "sstp-vpn" / "profiles.toml").read_text()
