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
    assert current.SUPPORTED and current.unsupported_sentence() is None
    assert current.TunDevice.__module__ == "sstpvpn.platform.tun_linux"
    assert current.NetConfigurator.__module__ == "sstpvpn.platform.netconfig_linux"


@pytest.mark.parametrize(
    "name, sentence",
    [
        ("linux", None),
        ("win32", None),
        ("darwin", None),
        ("cygwin", "Under Cygwin SSTP VPN cannot create its tunnel; run its Windows version instead."),
        ("freebsd14", "SSTP VPN runs on Linux, Windows and macOS; this system (freebsd14) is not supported."),
    ],
)
def test_other_systems_get_a_sentence(name, sentence):
    assert current.unsupported_sentence(name) == sentence


@pytest.mark.parametrize("name, system", [("win32", "Windows"), ("darwin", "macOS")])
def test_the_never_run_implementations_say_so(name, system):
    assert current.untested_note(name) == (
        f"The {system} support of SSTP VPN has not yet been run on a real {system} system; please report what works and what does not."
    )
    assert current.untested_note("linux") is None


def test_each_system_gets_its_own_modules_in_a_fresh_interpreter():
    """What current.py imports for win32 and darwin, checked by pretending to be that system
    before the import: the modules must import on any OS (ctypes.WinDLL is looked up lazily)."""
    import subprocess

    for name, tun_module, config_module in [
        ("win32", "sstpvpn.platform.tun_windows", "sstpvpn.platform.netconfig_windows"),
        ("darwin", "sstpvpn.platform.tun_macos", "sstpvpn.platform.netconfig_macos"),
    ]:
        code = (
            f"import sys; sys.platform = {name!r}; from sstpvpn.platform import current; "
            "print(current.TunDevice.__module__, current.NetConfigurator.__module__, "
            "current.repair_from_journal.__module__, current.SUPPORTED)"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
        assert result.stdout.split() == [tun_module, config_module, config_module, "True"]


@pytest.mark.parametrize("name", ["", "a" * 16, "with space", "a/b"])
def test_an_impossible_interface_name_is_a_sentence(name):
    with pytest.raises(PlatformError, match="cannot be an interface name: use 1 to 15 letters or digits"):
        TunDevice.open(name)
