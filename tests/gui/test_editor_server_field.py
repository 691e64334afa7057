"""The editor's reading of the Server field, as the command line reads a server (no widgets)."""

from __future__ import annotations

import pytest

from sstpvpn.gui.editor import ServerField, ports_disagree, read_server_field


@pytest.mark.parametrize(
    "text, host, port",
    [
        ("vpn.example.com", "vpn.example.com", None),
        (" vpn.example.com:8443 ", "vpn.example.com", 8443),
        ("vpn.example.com:443", "vpn.example.com", 443),  # written, so it must agree with the Port field
        ("198.51.100.7:4433", "198.51.100.7", 4433),
        ("[2001:db8::1]:9443", "2001:db8::1", 9443),
        ("[2001:db8::1]", "2001:db8::1", None),
        ("2001:db8::1", "2001:db8::1", None),  # a bare IPv6 address has no port
        ("", "", None),
    ],
)
def test_server_field_reads_host_and_port(text, host, port):
    assert read_server_field(text) == ServerField(host, port)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("vpn.example.com:", "After “:” comes the port, from 1 to 65535."),
        ("vpn.example.com:99999", "After “:” comes the port, from 1 to 65535."),
        ("vpn.example.com:https", "After “:” comes the port, from 1 to 65535."),
        ("[2001:db8::1]8443", "Write an IPv6 address as [2001:db8::1]:8443."),
        ("[2001:db8::1", "Write an IPv6 address as [2001:db8::1]:8443."),
        (":8443", "Enter the host name before the “:”."),
    ],
)
def test_server_field_that_cannot_be_read(text, problem):
    assert read_server_field(text).problem == problem


def test_a_port_in_both_fields_must_agree():
    assert ports_disagree(read_server_field("vpn.example.com"), 8443) is None
    assert ports_disagree(read_server_field("vpn.example.com:8443"), 8443) is None
    assert ports_disagree(read_server_field("vpn.example.com:8443"), 443) == "The Server field says 8443: make them agree."
