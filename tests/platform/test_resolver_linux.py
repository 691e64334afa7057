"""resolv.conf rendering and in-place writing (pure file logic)."""

from __future__ import annotations

import ipaddress
import os

from sstpvpn.platform.resolver_linux import HEADER, render_resolv_conf, resolved_manages, write_in_place


def test_the_vpn_servers_replace_the_nameservers_and_the_rest_stays():
    original = b"# from dhcp\nsearch home.test\nnameserver 198.18.20.53\n  nameserver ::1\noptions edns0"
    servers = [ipaddress.ip_address("198.18.30.1"), ipaddress.ip_address("2001:db8::53")]
    assert render_resolv_conf(original, servers) == (
        HEADER + b"nameserver 198.18.30.1\nnameserver 2001:db8::53\n# from dhcp\nsearch home.test\noptions edns0\n"
    )


def test_rendering_twice_does_not_stack_headers_and_a_missing_file_is_fine():
    servers = [ipaddress.ip_address("198.18.30.1")]
    once = render_resolv_conf(None, servers)
    assert once == HEADER + b"nameserver 198.18.30.1\n"
    assert render_resolv_conf(once, servers) == once


def test_writing_in_place_keeps_the_file_and_follows_a_symlink(tmp_path):
    target = tmp_path / "real-resolv.conf"
    target.write_bytes(b"a much longer original content\n" * 3)
    link = tmp_path / "resolv.conf"
    link.symlink_to(target)
    inode = target.stat().st_ino
    write_in_place(link, b"nameserver 198.18.30.1\n")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"nameserver 198.18.30.1\n"
    assert target.stat().st_ino == inode


def test_writing_a_missing_file_creates_it(tmp_path):
    write_in_place(tmp_path / "resolv.conf", b"x\n")
    assert (tmp_path / "resolv.conf").read_bytes() == b"x\n"


def test_a_plain_file_is_not_systemd_resolved(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_bytes(b"nameserver 127.0.0.53\n")  # the stub address alone proves nothing
    assert resolved_manages(path) is False
    assert resolved_manages(tmp_path / "missing") is False


def test_without_a_look_at_pid_1_only_a_service_of_systemd_counts_as_its_namespace(monkeypatch):
    from sstpvpn.platform import resolver_linux

    real_stat = os.stat

    def no_pid_1(path, *args, **kwargs):
        if str(path).startswith("/proc/1/"):
            raise PermissionError(13, "Permission denied")  # the sandbox: no CAP_SYS_PTRACE
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(resolver_linux.os, "stat", no_pid_1)
    monkeypatch.setattr(resolver_linux.os, "getppid", lambda: 1)
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
    assert resolver_linux._in_init_netns() is True
    monkeypatch.delenv("INVOCATION_ID")
    assert resolver_linux._in_init_netns() is False  # an orphan that systemd did not start
    monkeypatch.setattr(resolver_linux, "_remembered_init_netns", True)
    assert resolver_linux._in_init_netns() is True  # settled before the capabilities went
