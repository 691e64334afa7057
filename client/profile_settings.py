"""Turns a saved profile (plus passwords from the keyring or the user) into what the runner and
`diagnose` take: TransportSettings, EngineSettings, NetworkOptions. Shared by the tray app and
`sstp-vpn connect --profile`.

The "system" proxy choice means the proxy this machine uses for HTTPS: the https_proxy /
all_proxy environment variables (with no_proxy), then the desktop's settings (GNOME, KDE, Windows,
macOS), read by system_proxy.py.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from pathlib import Path

from .core.auth import AuthPolicy
from .core.engine import EngineSettings
from .core.events import Credentials
from .eap_options import tls_method_settings
from .pac import PacSource
from .profiles import Profile, ProxyMode
from .proxy import ProxySettings
from .runner import Connect, NetworkOptions
from .system_proxy import SystemProxyError, system_proxy_for
from .transport import TransportSettings


class ProfileSettingsError(ValueError):
    """The profile cannot be used as it is; the message is the sentence for the user."""


def system_proxy(host: str, environ: Mapping[str, str] | None = None) -> ProxySettings | None:
    """The HTTP proxy this machine uses for https://host, or None for a direct connection."""
    try:
        return system_proxy_for(host, environ=environ).proxy
    except SystemProxyError as error:
        raise ProfileSettingsError(str(error)) from None


def proxy_settings(profile: Profile, proxy_password: str | None, environ: Mapping[str, str] | None = None) -> ProxySettings | None:
    choice = profile.proxy
    if choice.mode is ProxyMode.NONE:
        return None
    if choice.mode is ProxyMode.SYSTEM:
        found = system_proxy(profile.host, environ)
        return None if found is None else dataclasses.replace(found, allow_basic=choice.allow_basic)
    if choice.mode is ProxyMode.PAC:
        return None  # the PAC file decides when connecting (pac_source)
    username = choice.username or None
    return ProxySettings(choice.host, choice.port, username, proxy_password if username else None, allow_basic=choice.allow_basic)


def pac_source(profile: Profile, proxy_password: str | None, environ: Mapping[str, str] | None = None) -> PacSource | None:
    """The proxy auto-config of a PAC profile (its URL, "" for WPAD), with the profile's proxy user
    and password for every proxy the file names; for the "system" choice, the system's auto-config
    URL or its automatic detection (WPAD) when it says so; None otherwise."""
    choice = profile.proxy
    if choice.mode is ProxyMode.SYSTEM:
        try:
            found = system_proxy_for(profile.host, profile.port, environ=environ)
        except SystemProxyError:
            return None  # proxy_settings() tells it
        if not found.pac_urls:
            return None
        # Windows' and browsers' order: automatic detection, the auto-config URL, the proxy, directly.
        template = ProxySettings("", 0, allow_basic=choice.allow_basic)
        source = None
        for url in reversed(found.pac_urls):
            source = PacSource(url, template, then=source)
        assert source is not None
        fallback = dataclasses.replace(found.proxy, allow_basic=choice.allow_basic) if found.proxy else None
        return dataclasses.replace(source, otherwise=(fallback,))
    if choice.mode is not ProxyMode.PAC:
        return None
    username = choice.username or None
    return PacSource(choice.pac_url, ProxySettings("", 0, username, proxy_password if username else None, allow_basic=choice.allow_basic))


def transport_settings(
    profile: Profile, proxy_password: str | None = None, environ: Mapping[str, str] | None = None, timeout: float = 15.0
) -> TransportSettings:
    """Raises ProfileSettingsError when the profile's pin or proxy cannot be used."""
    try:
        return TransportSettings(
            host=profile.host,
            port=profile.port,
            sni=profile.sni or None,
            ca_file=Path(profile.ca_file) if profile.ca_file else None,
            pin_sha256=profile.pin_sha256 or None,
            revocation=profile.revocation,
            proxy=proxy_settings(profile, proxy_password, environ),
            timeout=timeout,
            pac=pac_source(profile, proxy_password, environ),
        )
    except ValueError as error:  # a malformed pin
        raise ProfileSettingsError(str(error)) from None


def needs_proxy_password(profile: Profile) -> bool:
    return profile.proxy.mode in (ProxyMode.MANUAL, ProxyMode.PAC) and bool(profile.proxy.username)


def connect_command(
    profile: Profile, password: str, proxy_password: str | None = None, environ: Mapping[str, str] | None = None, ifname: str | None = None
) -> Connect:
    """The tray app's Connect command for a saved profile."""
    return build_connect(profile, transport_settings(profile, proxy_password, environ), password, ifname=ifname)


def build_connect(
    profile: Profile,
    transport: TransportSettings,
    password: str,
    *,
    ifname: str | None = None,
    hello_interval: float = EngineSettings.hello_interval,
    allow_no_auth: bool = False,
) -> Connect:
    """The one builder of the runner's Connect command: the profile's user, sign-in, routing and DNS
    choices over `transport`. The tray app and `connect --profile` pass a saved profile; `connect
    HOST ...` an unsaved one made from its options (profile_commands.session_profile)."""
    engine = EngineSettings(
        credentials=Credentials(profile.username, password),
        host=transport.http_host,
        auth=AuthPolicy(
            allow_pap=profile.allow_pap,
            allow_chap_md5=profile.allow_chap_md5,
            tls_method=tls_method_settings(
                profile.auth_method,
                profile.client_certificate,
                profile.eap_server_name,
                profile.eap_ca_file,
                profile.eap_pin_sha256,
                profile.eap_tls13,
                password,
            ),
            allow_no_auth=allow_no_auth,
        ),
        ipv6=profile.ipv6,
        mru=profile.mtu,
        hello_interval=hello_interval,
    )
    network = NetworkOptions(
        full_tunnel=profile.full_tunnel,
        ifname=ifname,
        use_vpn_dns=profile.use_vpn_dns,
        extra_routes=tuple(ipaddress.ip_network(route) for route in profile.extra_routes),
        kill_switch=profile.kill_switch,
        kill_switch_allow_lan=profile.kill_switch_allow_lan,
    )
    return Connect(transport, engine, network)
