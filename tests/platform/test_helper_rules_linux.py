"""The helper's own rules, piece by piece (the attacks against the running helper are in
test_helper_attacks_linux.py): interface names and the administrator's config file, the
namespace descriptor, the per-user session slots and the shared log budget."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest

from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.helper_linux import InterfaceNames, load_config, namespace_problem
from sstpvpn.platform.helper_protocol import RequestRefused
from sstpvpn.platform.helper_session import SharedLogBudget, hold_user_slot


@pytest.mark.parametrize("name", [None, "sstp0", "sstp7", "sstp1234"])
def test_our_names_are_allowed(name):
    InterfaceNames().check(name)


@pytest.mark.parametrize("name", ["wg0", "docker0", "eth0", "lo", "sstp", "sstp12345", "sstptest0", "xsstp0"])
def test_other_names_are_refused_with_a_sentence(name):
    with pytest.raises(RequestRefused, match=f"creates only interfaces named sstp0, sstp1, ... .*{name!r} is neither"):
        InterfaceNames().check(name)


def test_the_administrator_may_allow_more_names(tmp_path):
    folder = tmp_path / "etc"
    folder.mkdir(mode=0o755)
    config = folder / "helper.toml"
    config.write_text('allowed_interface_names = ["corp0", "vpn-office"]\n')
    config.chmod(0o644)
    names = load_config(config)
    names.check("corp0")
    names.check("vpn-office")
    with pytest.raises(RequestRefused, match=str(config)):
        names.check("wg0")
    assert load_config(folder / "missing.toml") == InterfaceNames(config_path=folder / "missing.toml")


@pytest.mark.parametrize(
    "content, mode, owner, sentence",
    [
        ('allowed_interface_names = ["corp0"]\n', 0o666, 0, "only root may change"),
        ('allowed_interface_names = ["corp0"]\n', 0o644, 65534, "only root may change"),
        ('allowed_interface_names = ["../x"]\n', 0o644, 0, "cannot be a tunnel interface name"),
        ('allowed_interface_names = "corp0"\n', 0o644, 0, "may only hold allowed_interface_names"),
        ('routes = ["0.0.0.0/0"]\n', 0o644, 0, "may only hold allowed_interface_names"),
        ("allowed_interface_names = [\n", 0o644, 0, "cannot be read as TOML"),
    ],
)
def test_a_config_file_that_is_not_trustworthy_or_not_understood_stops_the_helper(tmp_path, content, mode, owner, sentence):
    config = tmp_path / "helper.toml"
    config.write_text(content)
    config.chmod(mode)
    os.chown(config, owner, 0)
    with pytest.raises(PlatformError, match=sentence):
        load_config(config)


def test_the_namespace_descriptor_must_be_this_namespace():
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    not_a_namespace = os.open("/proc/self/status", os.O_RDONLY)
    uts = os.open("/proc/self/ns/uts", os.O_RDONLY)  # a namespace, but not a network one
    try:
        assert namespace_problem([own]) is None
        for fds in ([], [not_a_namespace], [uts], [own, own]):
            assert "did not say which network namespace" in namespace_problem(fds)
    finally:
        for fd in (own, not_a_namespace, uts):
            os.close(fd)
    other = subprocess.run(
        [
            "unshare",
            "--net",
            sys.executable,
            "-c",
            (
                "import os, sys; sys.path[:0] = " + repr(sys.path) + "\n"
                "from sstpvpn.platform.helper_linux import namespace_problem\n"
                "print(namespace_problem([os.open(f'/proc/{os.getppid()}/ns/net', os.O_RDONLY)]))"
            ),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "another network namespace" in other.stdout, other.stderr


def test_each_user_has_four_slots_freed_when_the_holder_goes(tmp_path):
    held = [hold_user_slot(tmp_path, 1000) for _ in range(4)]
    assert None not in held
    assert hold_user_slot(tmp_path, 1000) is None
    assert hold_user_slot(tmp_path, 1001) is not None  # another user is not affected
    os.close(held[2])
    assert hold_user_slot(tmp_path, 1000) is not None


def test_the_log_budget_is_shared_and_says_what_it_dropped(tmp_path):
    budget, other_process = SharedLogBudget(tmp_path / "budget", 3, 0.5), SharedLogBudget(tmp_path / "budget", 3, 0.5)

    def record(text: str) -> logging.LogRecord:
        return logging.LogRecord("sstp-vpn-helper", logging.WARNING, __file__, 1, text, (), None)

    passed = [
        budget.filter(record("a")),
        other_process.filter(record("b")),
        budget.filter(record("c")),
        other_process.filter(record("d")),
        budget.filter(record("e")),
    ]
    assert passed == [True, True, True, False, False]
    time.sleep(0.6)
    late = record("f")
    assert other_process.filter(late)
    assert late.getMessage() == "(2 log lines of the network helper were dropped) f"
    (tmp_path / "budget").write_text("not json")  # a damaged state file starts a new window
    assert budget.filter(record("g"))


def test_each_user_logs_on_a_budget_of_their_own(tmp_path):
    shared, alice, bob = (SharedLogBudget(tmp_path / "log-budget", 2, 60) for _ in range(3))
    alice.serve_as(1000)
    bob.serve_as(1001)

    def record(text: str) -> logging.LogRecord:
        return logging.LogRecord("sstp-vpn-helper", logging.WARNING, __file__, 1, text, (), None)

    assert [alice.filter(record(str(n))) for n in range(4)] == [True, True, False, False]  # alice floods
    assert [bob.filter(record("b")), bob.filter(record("b"))] == [True, True]  # bob's sessions still log
    assert shared.filter(record("listener"))  # and so does the listener
