"""Where `sstp-vpn connect` takes the proxy password from: the next line of standard input with
--proxy-password-stdin, else $SSTP_VPN_PROXY_PASSWORD, which it removes from its environment at
once so that no program it starts inherits it."""

from __future__ import annotations

import io
import os

import pytest

from sstpvpn.client import cli


def test_both_passwords_from_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.build_parser().parse_args(
        ["connect", "vpn.example.com", "--user", "alice", "--proxy", "http://bob@127.0.0.1:3128", "--password-stdin", "--proxy-password-stdin"]
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("vpn secret\nproxy secret\n"))
    assert cli.read_password(args) == "vpn secret"
    assert cli.transport_settings(args).proxy.password == "proxy secret"


def test_missing_proxy_line_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.build_parser().parse_args(
        ["connect", "vpn.example.com", "--user", "alice", "--proxy", "http://bob@127.0.0.1:3128", "--password-stdin", "--proxy-password-stdin"]
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("vpn secret\n"))
    cli.read_password(args)
    with pytest.raises(cli.UsageError, match="--proxy-password-stdin was given but standard input is empty"):
        cli.transport_settings(args)


def test_environment_variable_is_taken_out_of_the_environment(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(cli.PROXY_PASSWORD_ENV, "proxy secret")
    seen = []
    monkeypatch.setattr(
        cli, "run_diagnose", lambda args: seen.append((cli.transport_settings(args).proxy.password, os.environ.get(cli.PROXY_PASSWORD_ENV))) or 0
    )
    assert cli.main(["diagnose", "vpn.example.com", "--proxy", "http://bob@127.0.0.1:3128"]) == 0
    assert seen == [("proxy secret", None)]


# MS-CHAPv2 Failure with R=1: one more line of standard input per retry (issue 13).


def test_a_retry_password_is_the_next_line_of_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.build_parser().parse_args(["connect", "vpn.example.com", "--user", "alice", "--password-stdin"])
    monkeypatch.setattr("sys.stdin", io.StringIO("first try\nsecond try\n"))
    assert cli.read_password(args) == "first try"
    assert cli.read_retry_password(args) == "second try"
    assert cli.read_retry_password(args) is None  # standard input has ended: give up


def test_no_retry_password_without_stdin_or_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    args = cli.build_parser().parse_args(["connect", "vpn.example.com", "--user", "alice"])
    monkeypatch.setattr("sys.stdin", io.StringIO("not read\n"))  # not a terminal, no --password-stdin
    assert cli.read_retry_password(args) is None


def test_allow_no_auth_is_off_unless_asked_and_not_with_a_profile() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["connect", "vpn.example.com", "--user", "alice"]).allow_no_auth is False
    assert parser.parse_args(["connect", "vpn.example.com", "--user", "alice", "--allow-no-auth"]).allow_no_auth is True
    args = parser.parse_args(["connect", "--profile", "Office", "--allow-no-auth"])
    with pytest.raises(cli.UsageError, match="leave out --allow-no-auth"):
        cli.profile_connect_command(args)
