"""Helper or root, and what stands in the way of a tunnel, for each system and user (the moved
privilege checks of the tray app)."""

from __future__ import annotations

import os
import sys

import pytest

from sstpvpn.platform import current
from sstpvpn.platform.tunnel_access import effective_capabilities, root_without_net_admin_sentence, tunnel_problem, uses_network_helper


@pytest.mark.parametrize(
    "system, euid, expected", [("linux", 1000, True), ("darwin", 501, True), ("linux", 0, False), ("darwin", 0, False), ("win32", 1000, True)]
)
def test_helper_or_root(system, euid, expected, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: euid)
    assert uses_network_helper(system) is expected
    monkeypatch.setattr(sys, "platform", system)
    assert uses_network_helper() is expected  # this system's, looked up at the call
    assert current.uses_network_helper is uses_network_helper


@pytest.mark.parametrize(
    "cap_eff, expected", [("0000000000000000", root_without_net_admin_sentence()), ("0000000000001000", None), ("000001ffffffffff", None)]
)
def test_root_on_linux_needs_cap_net_admin(tmp_path, monkeypatch, cap_eff, expected):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    status = tmp_path / "status"
    status.write_text(f"Name:\tpython\nCapInh:\t0000000000000000\nCapEff:\t{cap_eff}\n")
    assert tunnel_problem("linux", str(status)) == expected


def test_root_whose_capabilities_cannot_be_read_is_let_through(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert tunnel_problem("linux", str(tmp_path / "missing")) is None  # the connection attempt will say
    (tmp_path / "odd").write_text("Name:\tpython\n")
    assert tunnel_problem("linux", str(tmp_path / "odd")) is None


def test_effective_capabilities_are_read_from_proc_status():
    assert effective_capabilities("Name:\tx\nCapPrm:\t0000000000000001\nCapEff:\t0000000000001000\n") == 0x1000
    assert effective_capabilities("CapEff:\tzz\n") is None
    assert effective_capabilities("CapEff:\n") is None
    assert effective_capabilities("") is None


@pytest.mark.parametrize("system", ["linux", "darwin"])
def test_an_ordinary_user_is_told_when_the_network_helper_is_missing(system, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 501)
    monkeypatch.setattr(sys, "platform", system)
    monkeypatch.setenv("SSTP_VPN_HELPER_SOCKET", str(tmp_path / "helper.sock"))
    problem = tunnel_problem()
    assert "network helper, which is not running" in problem and str(tmp_path / "helper.sock") in problem
    (tmp_path / "helper.sock").touch()  # there, and ours to use
    assert tunnel_problem() is None
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    if system == "darwin":
        (tmp_path / "helper.sock").unlink()
        assert tunnel_problem() is None  # root opens utun itself


def test_windows_always_goes_through_the_network_service(monkeypatch):
    """Elevated or not: the app runs as the user and the service owns the adapter."""
    monkeypatch.setattr(sys, "platform", "win32")
    assert uses_network_helper() is True


def test_windows_says_when_the_network_service_is_not_running(monkeypatch):
    from sstpvpn.platform import helper_client, winpipe

    monkeypatch.setattr(sys, "platform", "win32")
    asked = []
    monkeypatch.setattr(winpipe, "pipe_exists", lambda name: asked.append(name) or False)
    assert tunnel_problem() == helper_client.windows_not_running_sentence()
    assert "Services (services.msc)" in tunnel_problem()
    monkeypatch.setattr(winpipe, "pipe_exists", lambda name: asked.append(name) or True)
    assert tunnel_problem() is None
    assert set(asked) == {winpipe.CONTROL_PIPE_NAME}


def test_this_system_answers_through_current():
    assert current.tunnel_problem is tunnel_problem
    if sys.platform == "linux" and os.geteuid() == 0:
        assert tunnel_problem() in (None, root_without_net_admin_sentence())  # read from this process's /proc
