"""The "system" proxy read from real desktop settings: GNOME's, written with `gsettings set` into a
private dconf database, and KDE's kioslaverc, written with KDE's kwriteconfig5, both in a home of
the test's own (conftest.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sstpvpn.client.profile_settings import system_proxy
from sstpvpn.client.system_proxy import SystemProxy, system_proxy_for
from tests.realparts import require_program

PROXY = "org.gnome.system.proxy"
HTTPS = "org.gnome.system.proxy.https"
SERVER = "vpn.example.com"


def read(desktop, host: str = SERVER, **extra: str) -> SystemProxy:
    return system_proxy_for(host, environ={**desktop.environ, **extra}, platform="linux")


def test_gnome_none_by_default_and_after_setting_it(gnome_desktop):
    assert read(gnome_desktop) == SystemProxy("GNOME")
    gnome_desktop.gsettings_set((PROXY, "mode", "manual"), (HTTPS, "host", "proxy.corp"), (HTTPS, "port", "3128"))
    assert read(gnome_desktop).mode == "manual"
    gnome_desktop.gsettings_set((PROXY, "mode", "none"))
    found = read(gnome_desktop)
    assert (found.source, found.mode, found.proxy) == ("GNOME", "none", None)
    assert found.describe(SERVER) == "System proxy (GNOME): none."


def test_gnome_manual_proxy_with_ignore_hosts(gnome_desktop):
    gnome_desktop.gsettings_set(
        (PROXY, "mode", "manual"),
        (HTTPS, "host", "proxy.corp"),
        (HTTPS, "port", "3128"),
        (PROXY, "ignore-hosts", "['localhost', '*.internal.example', '10.0.0.0/8']"),
    )
    started = time.monotonic()
    found = read(gnome_desktop)
    took = time.monotonic() - started
    assert (found.source, found.mode, found.proxy.address, found.bypassed_by) == ("GNOME", "manual", "proxy.corp:3128", "")
    assert found.describe(SERVER) == "System proxy (GNOME): proxy.corp:3128."
    assert took < 2, f"reading GNOME's settings took {took:.2f} s"
    # what the "system" choice of a profile gets
    assert system_proxy(SERVER, gnome_desktop.environ).address == "proxy.corp:3128"

    inside = read(gnome_desktop, "vpn.internal.example")
    assert (inside.mode, inside.proxy, inside.bypassed_by) == ("none", None, "*.internal.example")
    assert read(gnome_desktop, "10.1.2.3").bypassed_by == "10.0.0.0/8"
    assert system_proxy("vpn.internal.example", gnome_desktop.environ) is None
    assert read(gnome_desktop, "vpn.internal.example.org").proxy is not None  # not a subdomain


def test_gnome_http_proxy_serves_https_when_no_https_proxy_is_set(gnome_desktop):
    gnome_desktop.gsettings_set(
        (PROXY, "mode", "manual"),
        (PROXY, "use-same-proxy", "true"),
        ("org.gnome.system.proxy.http", "host", "web.corp"),
        ("org.gnome.system.proxy.http", "port", "8080"),
    )
    assert read(gnome_desktop).proxy.address == "web.corp:8080"


def test_gnome_auto_with_a_pac_url_or_wpad(gnome_desktop):
    gnome_desktop.gsettings_set((PROXY, "mode", "auto"), (PROXY, "autoconfig-url", "http://wpad.corp.example/proxy.pac"))
    found = read(gnome_desktop)
    assert (found.mode, found.pac_url, found.auto_detect, found.proxy) == ("auto-config", "http://wpad.corp.example/proxy.pac", False, None)
    assert found.describe(SERVER) == "System proxy (GNOME): the auto-config script http://wpad.corp.example/proxy.pac."
    gnome_desktop.gsettings_set((PROXY, "autoconfig-url", ""))
    assert read(gnome_desktop).mode == "auto-detect"


def test_the_environment_overrides_gnome(gnome_desktop):
    gnome_desktop.gsettings_set((PROXY, "mode", "manual"), (HTTPS, "host", "proxy.corp"), (HTTPS, "port", "3128"))
    found = read(gnome_desktop, https_proxy="http://env.corp:8080", no_proxy="internal.example")
    assert (found.source, found.proxy.address) == ("environment", "env.corp:8080")
    assert read(gnome_desktop, "vpn.internal.example", https_proxy="http://env.corp:8080", no_proxy="internal.example").proxy is None


def test_the_testers_own_settings_are_untouched(gnome_desktop):
    own = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "dconf" / "user"
    before = own.stat().st_mtime_ns if own.exists() else None
    gnome_desktop.gsettings_set((PROXY, "mode", "manual"), (HTTPS, "host", "proxy.corp"), (HTTPS, "port", "3128"))
    assert gnome_desktop.dconf_file.is_file()
    assert (own.stat().st_mtime_ns if own.exists() else None) == before


# -- KDE ---------------------------------------------------------------------------------------


@pytest.fixture
def kde_desktop(desktop):
    require_program("kwriteconfig5", "apt-get install libkf5config-bin")
    return desktop


def test_kde_manual_proxy_as_kde_writes_it(kde_desktop):
    kde_desktop.kwriteconfig("ProxyType", "1")
    kde_desktop.kwriteconfig("httpsProxy", "http://proxy.corp 3128")
    kde_desktop.kwriteconfig("NoProxyFor", "localhost,.internal.example,10.0.0.0/8")
    assert "[Proxy Settings]" in kde_desktop.kioslaverc.read_text()
    found = read(kde_desktop)  # no KDE session: the file says so
    assert (found.source, found.mode, found.proxy.address) == ("KDE", "manual", "proxy.corp:3128")
    assert read(kde_desktop, "vpn.internal.example").bypassed_by == ".internal.example"
    assert read(kde_desktop, "10.3.3.3").bypassed_by == "10.0.0.0/8"
    kde_desktop.kwriteconfig("ReversedException", "true")
    assert read(kde_desktop, "vpn.internal.example").proxy.address == "proxy.corp:3128"
    assert read(kde_desktop).proxy is None


def test_kde_pac_wpad_and_none_in_a_kde_session(kde_desktop):
    kde_desktop.kwriteconfig("ProxyType", "2")
    kde_desktop.kwriteconfig("Proxy Config Script", "http://wpad.corp.example/proxy.pac")
    assert read(kde_desktop).pac_url == "http://wpad.corp.example/proxy.pac"
    kde_desktop.kwriteconfig("ProxyType", "3")
    assert read(kde_desktop).mode == "auto-detect"
    kde_desktop.kwriteconfig("ProxyType", "0")
    assert read(kde_desktop, XDG_CURRENT_DESKTOP="KDE").source == "KDE"
    assert read(kde_desktop).source != "KDE"  # not a KDE session, and the file sets nothing


def test_kde_environment_mode_reads_the_variables_it_names(kde_desktop):
    kde_desktop.kwriteconfig("ProxyType", "4")
    kde_desktop.kwriteconfig("httpsProxy", "CORP_HTTPS_PROXY")
    found = read(kde_desktop, CORP_HTTPS_PROXY="http://named.corp:3128", XDG_CURRENT_DESKTOP="KDE")
    assert (found.source, found.proxy.address) == ("KDE", "named.corp:3128")
