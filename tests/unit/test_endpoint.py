"""Server addresses as people write them (client/endpoint.py)."""

from __future__ import annotations

import pytest

from sstpvpn.client.endpoint import EndpointError, format_endpoint, is_ip_address, parse_endpoint


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("vpn.example.com", "vpn.example.com", 443),
        ("vpn.example.com:8443", "vpn.example.com", 8443),
        ("[2001:db8::1]", "2001:db8::1", 443),
        ("[2001:db8::1]:992", "2001:db8::1", 992),
        ("2001:db8::1", "2001:db8::1", 443),
    ],
)
def test_parse_and_format_are_inverse(text: str, host: str, port: int) -> None:
    assert parse_endpoint(text) == (host, port)
    assert parse_endpoint(format_endpoint(host, port)) == (host, port)


def test_format_leaves_out_port_443_as_the_host_header_does() -> None:
    assert format_endpoint("vpn.example.com", 443) == "vpn.example.com"
    assert format_endpoint("2001:db8::1", 8443) == "[2001:db8::1]:8443"


@pytest.mark.parametrize("text", ["[::1]x", "vpn:0", "vpn:65536", "vpn:https", ":443", "[]"])
def test_unreadable_addresses_say_why(text: str) -> None:
    with pytest.raises(EndpointError, match=repr(text).replace("[", r"\[").replace("]", r"\]")):
        parse_endpoint(text)


def test_is_ip_address() -> None:
    assert is_ip_address("192.0.2.1") and is_ip_address("2001:db8::1") and is_ip_address("fe80::1%eth0")
    assert not is_ip_address("vpn.example.com") and not is_ip_address("[2001:db8::1]") and not is_ip_address("")
