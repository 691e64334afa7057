"""Choosing the platform implementation, and the `platform` name staying the standard library's."""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

import pytest

from sstpvpn.platform import current
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.tun_linux import TunDevice


def test_the_standard_platform_module_is_not_shadowed():
    import platform

    assert Path(platform.__file__).is_relative_to(sysconfig.get_paths()["stdlib"])


@pytest.mark.skipif(sys.platform != "linux", reason="Linux is the implemented platform")
def test_linux_gets_the_linux_implementation():
    assert current.SUPPORTED and current.UNSUPPORTED_SENTENCE is None
    assert current.TunDevice.__module__ == "sstpvpn.platform.tun_linux"
    assert current.NetConfigurator.__module__ == "sstpvpn.platform.netconfig_linux"


@pytest.mark.parametrize("name, sentence", [
    ("win32", "SSTP VPN cannot create its tunnel on Windows yet; that comes in a later release. "
              "It runs on Linux today."),
    ("darwin", "SSTP VPN cannot create its tunnel on macOS yet; that comes in a later release. "
               "It runs on Linux today."),
    ("freebsd14", "SSTP VPN runs on Linux (Windows and macOS are planned); this system (freebsd14) is not supported."),
    ("linux", None),
])
def test_other_systems_get_a_sentence(name, sentence):
    assert current.unsupported_sentence(name) == sentence


@pytest.mark.parametrize("name", ["", "a" * 16, "with space", "a/b"])
def test_an_impossible_interface_name_is_a_sentence(name):
    with pytest.raises(PlatformError, match="cannot be an interface name: use 1 to 15 letters or digits"):
        TunDevice.open(name)
