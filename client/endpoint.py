"""A server's address as people write it: HOST, HOST:PORT, [IPV6] or [IPV6]:PORT (port 443 unless
given). Shared by the command line, the profiles and the transport, which sends the same form as
the HTTP Host header of the SSTP request."""

from __future__ import annotations

import ipaddress

from .core.i18n import _

DEFAULT_PORT = 443


class EndpointError(ValueError):
    """The text is not a server address; the message is the sentence for the user."""


def parse_endpoint(text: str) -> tuple[str, int]:
    """(host, port) from HOST, HOST:PORT, [IPV6] or [IPV6]:PORT; raises EndpointError."""
    host, port = text, DEFAULT_PORT
    if text.startswith("["):
        host, _bracket, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise EndpointError(_("Cannot read the server address {address}: write [IPv6]:PORT.").format(address=repr(text)))
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, text)
    if not host:
        raise EndpointError(_("The server address {address} has no host name.").format(address=repr(text)))
    return host, port


def format_endpoint(host: str, port: int) -> str:
    """The inverse of parse_endpoint: brackets around an IPv6 address, the port only if not 443."""
    name = f"[{host}]" if ":" in host else host
    return name if port == DEFAULT_PORT else f"{name}:{port}"


def is_ip_address(text: str) -> bool:
    """True for an IPv4 or IPv6 address (an IPv6 zone allowed, no brackets), False for a host name."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise EndpointError(_("The port in {address} must be a number from 1 to 65535.").format(address=repr(whole)))
    return int(text)
