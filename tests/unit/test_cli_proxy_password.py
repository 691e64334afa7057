"""Where `sstp-vpn connect` takes the proxy password from: the next line of standard input with
--proxy-password-stdin, else $SSTP_VPN_PROXY_PASSWORD, which it removes from its environment at
once so that no program it starts inherits it."""

from __future__ import annotations

import io
import os

import pytest

from sstpvpn.client import cli


def test_both_passwords_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.build_parser().parse_args(["connect", "vpn.example.com", "--user", "alice", "--proxy", "http://bob@127.0.0.1:3128",
                                          "--password-stdin", "--proxy-password-stdin"])
    monkeypatch.setattr("sys.stdin", io.StringIO("vpn secret\nproxy secret\n"))
    assert cli.read_password(args) == "vpn secret"
    assert cli.transport_settings(args).proxy.password == "proxy secret"


def test_missing_proxy_line_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.build_parser().parse_args(["connect", "vpn.example.com", "--user", "alice", "--proxy", "http://bob@127.0.0.1:3128",
                                          "--password-stdin", "--proxy-password-stdin"])
    monkeypatch.setattr("sys.stdin", io.StringIO("vpn secret\n"))
    cli.read_password(args)
    with pytest.raises(cli.UsageError, match="--proxy-password-stdin was given but standard input is empty"):
        cli.transport_settings(args)


def test_environment_variable_is_taken_out_of_the_environment(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(cli.PROXY_PASSWORD_ENV, "proxy secret")
    seen = []
    monkeypatch.setattr(cli, "run_diagnose", lambda args: seen.append((cli.transport_settings(args).proxy.password, os.environ.get(cli.PROXY_PASSWORD_ENV))) or 0)
    assert cli.main(["diagnose", "vpn.example.com", "--proxy", "http://bob@127.0.0.1:3128"]) == 0
    assert seen == [("proxy secret", None)]
