"""`sstp-vpn connect HOST` and `diagnose HOST` reach the server as a profile can: through a proxy
URL, the system's proxy settings, a PAC file (at an address, or found by WPAD) with the proxy user
for the proxies it names, and with Basic authentication forbidden if asked."""

from __future__ import annotations

import pytest

from sstpvpn.client import cli
from sstpvpn.client.diagnose import system_proxy_origin
from sstpvpn.client.pac import PacSource
from sstpvpn.client.proxy import ProxySettings


def settings(*options: str, command: str = "diagnose", password: str | None = None):
    args = cli.build_parser().parse_args([command, "vpn.example.com", *options])
    args.proxy_password_env = password  # as main() takes it out of the environment
    return cli.transport_settings(args)


@pytest.mark.parametrize("command", ["connect", "diagnose"])
def test_a_pac_file_with_its_proxy_user(command):
    chosen = settings("--proxy-pac", "http://wpad.corp.test/proxy.pac", "--proxy-user", "CORP\\bob", command=command, password="pw")
    assert chosen.proxy is None
    assert chosen.pac == PacSource("http://wpad.corp.test/proxy.pac", ProxySettings("", 0, "CORP\\bob", "pw"))
    found = settings("--proxy", "wpad", "--proxy-no-basic", command=command)
    assert found.pac == PacSource("", ProxySettings("", 0, None, None, allow_basic=False))


def test_a_proxy_url_and_basic_forbidden():
    assert settings("--proxy", "http://bob@proxy.corp:3128", "--proxy-no-basic", password="pw").proxy == ProxySettings(
        "proxy.corp", 3128, "bob", "pw", allow_basic=False
    )
    assert settings("--proxy", "http://proxy.corp:3128").proxy == ProxySettings("proxy.corp", 3128)
    with pytest.raises(cli.UsageError, match="--proxy-user goes with --proxy-pac or --proxy wpad"):
        settings("--proxy", "http://proxy.corp:3128", "--proxy-user", "bob")


def test_the_systems_proxy_and_where_it_comes_from(monkeypatch):
    monkeypatch.setenv("https_proxy", "http://proxy.corp.test:8080")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert settings("--proxy", "system", "--proxy-no-basic").proxy == ProxySettings("proxy.corp.test", 8080, allow_basic=False)
    assert system_proxy_origin("vpn.example.com") == "System proxy (the environment): proxy.corp.test:8080."
    environ = {"https_proxy": "http://proxy.corp.test:8080", "no_proxy": ".example.com", "HOME": "/nonexistent"}
    assert system_proxy_origin("vpn.example.com", environ=environ) == (
        "System proxy (the environment): none for vpn.example.com, which matches the exception .example.com."
    )


@pytest.mark.parametrize("option", [("--proxy-pac", "http://wpad/p.pac"), ("--proxy-user", "bob"), ("--proxy-no-basic",)])
def test_a_profile_brings_its_own_proxy(option):
    args = cli.build_parser().parse_args(["connect", "--profile", "Office", *option])
    with pytest.raises(cli.UsageError, match="--profile takes the server settings from the profile; leave out --proxy-"):
        cli.profile_connect_command(args)


def test_diagnose_needs_a_server_or_a_profile(capsys):
    assert cli.main(["diagnose"]) == cli.EXIT_USAGE
    assert capsys.readouterr().err == "sstp-vpn: Give the server, or --profile NAME.\n"
    assert cli.main(["diagnose", "vpn.example.com", "--profile", "Office"]) == cli.EXIT_USAGE
    assert "leave out HOST." in capsys.readouterr().err
