"""`sstp-vpn connect HOST` and `diagnose HOST` take --revocation soft|hard for the one server they
reach; `connect --profile` takes the profile's own setting and refuses the option."""

from __future__ import annotations

import pytest

from sstpvpn.client import cli
from sstpvpn.client.profiles import Revocation


@pytest.mark.parametrize("command", ["connect", "diagnose"])
def test_revocation_reaches_the_transport_settings(command):
    def settings(*options: str):
        return cli.transport_settings(cli.build_parser().parse_args([command, "vpn.example.com", *options]))

    assert settings().revocation is Revocation.SOFT
    assert settings("--revocation", "hard").revocation is Revocation.HARD
    assert settings("--revocation", "soft").revocation is Revocation.SOFT


def test_a_profile_brings_its_own_revocation_setting():
    args = cli.build_parser().parse_args(["connect", "--profile", "Office", "--revocation", "hard"])
    with pytest.raises(cli.UsageError, match="--profile takes the server settings from the profile; leave out --revocation."):
        cli.profile_connect_command(args)  # before the profile file, the keyring or the network
