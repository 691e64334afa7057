"""The "system" proxy read from recorded settings: the environment, GNOME's `gsettings` output, KDE's
kioslaverc, WinINet's registry values (through a stand-in winreg) and macOS's `scutil --proxy`.
The real GNOME and KDE settings are read in tests/desktop; the registry under Wine in
tests/windows/test_system_proxy_registry.py."""

from __future__ import annotations

import pytest

from sstpvpn.client.system_proxy import (
    INTERNET_SETTINGS,
    REVERSED,
    SystemProxy,
    SystemProxyError,
    bypass_entry,
    from_environment,
    from_gnome,
    from_kioslaverc,
    from_scutil,
    from_windows,
    parse_gsettings,
    read_windows,
    system_proxy_for,
)

# `gsettings list-recursively org.gnome.system.proxy` on Debian 12 (GLib 2.74, gsettings-desktop-schemas 43)
# after `gsettings set` of mode, https host/port and ignore-hosts.
GSETTINGS_MANUAL = """\
org.gnome.system.proxy autoconfig-url ''
org.gnome.system.proxy ignore-hosts ['localhost', '*.internal.example', '10.0.0.0/8']
org.gnome.system.proxy mode 'manual'
org.gnome.system.proxy use-same-proxy true
org.gnome.system.proxy.ftp host ''
org.gnome.system.proxy.ftp port 0
org.gnome.system.proxy.http authentication-password ''
org.gnome.system.proxy.http authentication-user ''
org.gnome.system.proxy.http enabled false
org.gnome.system.proxy.http host ''
org.gnome.system.proxy.http port 8080
org.gnome.system.proxy.http use-authentication false
org.gnome.system.proxy.https host 'proxy.corp'
org.gnome.system.proxy.https port 3128
org.gnome.system.proxy.socks host ''
org.gnome.system.proxy.socks port 0
"""

# `scutil --proxy` with HTTPS, PAC and exceptions set (the shape macOS 13 prints; not run on a Mac).
SCUTIL = """\
<dictionary> {
  ExceptionsList : <array> {
    0 : *.local
    1 : 169.254/16
    2 : internal.example
  }
  ExcludeSimpleHostnames : 1
  FTPPassive : 1
  HTTPEnable : 0
  HTTPSEnable : 1
  HTTPSPort : 3128
  HTTPSProxy : proxy.corp
  ProxyAutoConfigEnable : 0
  ProxyAutoDiscoveryEnable : 0
}
"""

HOST = "vpn.example.com"


def gnome(text: str = GSETTINGS_MANUAL, host: str = HOST, **changes: object) -> SystemProxy:
    values = parse_gsettings(text)
    values.update(changes)
    return from_gnome(values, host)


# -- the environment --------------------------------------------------------------------------


def test_environment_https_proxy_then_all_proxy_with_no_proxy():
    env = {"ALL_PROXY": "http://all:1", "https_proxy": "http://user@proxy.corp:8080", "no_proxy": "internal.example, .lan ,*"}
    found = from_environment({k: v for k, v in env.items() if k != "no_proxy"}, HOST)
    assert found is not None and found.source == "environment" and found.mode == "manual"
    assert (found.proxy.host, found.proxy.port, found.proxy.username) == ("proxy.corp", 8080, "user")
    assert from_environment({"all_proxy": "http://all:1"}, HOST).proxy.host == "all"
    assert from_environment({"https_proxy": "  ", "all_proxy": ""}, HOST) is None
    bypassed = from_environment({"https_proxy": "http://p:1", "no_proxy": "internal.example,.lan"}, "vpn.internal.example")
    assert bypassed.proxy is None and bypassed.bypassed_by == "internal.example" and bypassed.mode == "none"
    assert from_environment({"https_proxy": "http://p:1", "NO_PROXY": ".lan"}, "gw.lan").bypassed_by == ".lan"
    assert from_environment({"https_proxy": "http://p:1", "no_proxy": "*"}, HOST).bypassed_by == "*"
    assert from_environment({"https_proxy": "http://p:1", "no_proxy": "notexample.com"}, HOST).proxy is not None


def test_environment_socks_or_garbage_is_a_sentence_without_the_url():
    with pytest.raises(SystemProxyError, match=r"system proxy setting \(the environment\) cannot be used: Only HTTP"):
        from_environment({"all_proxy": "socks5://127.0.0.1:1080"}, HOST)
    with pytest.raises(SystemProxyError) as caught:
        from_environment({"https_proxy": "http://u:secret@proxy"}, HOST)
    assert "secret" not in str(caught.value) and "no port" in str(caught.value)


def test_the_environment_comes_before_the_desktop():
    def run(command, env):
        raise AssertionError("the desktop must not be asked")

    found = system_proxy_for(HOST, environ={"HTTPS_PROXY": "http://p:3128"}, platform="linux", run=run)
    assert (found.source, found.proxy.address) == ("environment", "p:3128")


# -- bypass lists ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "host", "matches"),
    [
        ("example.com", "vpn.example.com", True),
        ("example.com", "example.com", True),
        ("example.com", "vpnexample.com", False),
        (".example.com", "vpn.example.com", True),
        ("*.example.com", "example.com", True),
        ("*.example.com", "vpn.example.com.", True),
        ("VPN.Example.COM", "vpn.example.com", True),
        ("bücher.example", "xn--bcher-kva.example", True),
        ("10.0.0.0/8", "10.20.30.40", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("10.0.0.0/8", "vpn.example.com", False),  # an address rule is no name rule: not resolved
        ("169.254/16", "169.254.3.4", True),  # macOS's short form
        ("fe80::/10", "[fe80::1]", True),
        ("192.0.2.7", "192.0.2.7", True),
        ("192.0.2.7", "192.0.2.8", False),
        ("vpn.example.com:443", "vpn.example.com", True),
        ("vpn.example.com:8443", "vpn.example.com", False),
        ("10.*", "10.1.2.3", True),
        ("*corp*", "vpn.mycorp.example", True),
        ("*", "anything", True),
        ("<local>", "intranet", True),
        ("<local>", "vpn.example.com", False),
        ("", "vpn.example.com", False),
    ],
)
def test_bypass_entries(entry, host, matches):
    assert bypass_entry([entry], host, 443) == (entry if matches else "")


def test_bypass_address_rules_match_addresses_the_caller_knows():
    assert bypass_entry(["10.0.0.0/8"], HOST, 443, ["10.1.1.1"]) == "10.0.0.0/8"
    assert bypass_entry(["10.0.0.0/8"], HOST, 443, ["192.0.2.1", "not an address"]) == ""


def test_windows_bypass_entries_are_globs_over_the_whole_name():
    assert bypass_entry(["example.com"], "vpn.example.com", 443, windows=True) == ""
    assert bypass_entry(["*.example.com"], "vpn.example.com", 443, windows=True) == "*.example.com"
    assert bypass_entry(["192.168.*"], "192.168.1.1", 443, windows=True) == "192.168.*"
    assert bypass_entry(["<local>"], "intranet", 443, windows=True) == "<local>"


# -- GNOME -------------------------------------------------------------------------------------


def test_gsettings_output_is_read_with_its_types():
    values = parse_gsettings(GSETTINGS_MANUAL)
    assert values["mode"] == "manual" and values["https.port"] == 3128 and values["use-same-proxy"] is True
    assert values["ignore-hosts"] == ["localhost", "*.internal.example", "10.0.0.0/8"]
    assert parse_gsettings("org.gnome.system.proxy ignore-hosts @as []\n")["ignore-hosts"] == []
    quoted = parse_gsettings("org.gnome.system.proxy ignore-hosts ['a,b', \"it's\", 'x\\'y']\n")
    assert quoted["ignore-hosts"] == ["a,b", "it's", "x'y"]


def test_gnome_manual_https_proxy_and_ignore_hosts():
    found = gnome()
    assert (found.source, found.mode, found.proxy.address, found.bypassed_by) == ("GNOME", "manual", "proxy.corp:3128", "")
    inside = gnome(host="vpn.internal.example")
    assert (inside.mode, inside.proxy, inside.bypassed_by) == ("none", None, "*.internal.example")
    assert gnome(host="10.9.8.7").bypassed_by == "10.0.0.0/8"


def test_gnome_falls_back_to_the_http_proxy_and_refuses_socks_only():
    values = {"https.host": "", "http.host": "web.corp", "http.port": 8080}
    assert gnome(**values).proxy.address == "web.corp:8080"
    with pytest.raises(SystemProxyError, match=r"\(GNOME\) names only a SOCKS proxy"):
        gnome(**{"https.host": "", "socks.host": "socks.corp", "socks.port": 1080})
    assert gnome(**{"https.host": ""}).mode == "none"
    with pytest.raises(SystemProxyError, match="port in the proxy URL"):
        gnome(**{"https.port": 0})


def test_gnome_auto_is_a_pac_url_or_wpad_and_none_is_none():
    pac = gnome(mode="auto", **{"autoconfig-url": "http://wpad.corp/proxy.pac"})
    assert (pac.mode, pac.pac_url, pac.auto_detect, pac.proxy) == ("auto-config", "http://wpad.corp/proxy.pac", False, None)
    assert gnome(mode="auto").mode == "auto-detect"
    assert gnome(mode="auto", host="a.internal.example").mode == "none"  # ignore-hosts applies before the script
    none = gnome(mode="none")
    assert (none.source, none.mode) == ("GNOME", "none")


def test_gnome_then_kde_on_linux(tmp_path):
    home = tmp_path
    (home / ".config").mkdir()
    (home / ".config" / "kioslaverc").write_text("[Proxy Settings]\nProxyType=1\nhttpsProxy=http://kde.corp 3128\n")
    outputs = {"manual": GSETTINGS_MANUAL, "none": GSETTINGS_MANUAL.replace("'manual'", "'none'")}
    env = {"HOME": str(home)}

    def read(gnome_mode: str | None, **extra: str) -> SystemProxy:
        return system_proxy_for(HOST, environ={**env, **extra}, platform="linux", run=lambda command, e: outputs.get(gnome_mode or ""))

    assert read("manual").source == "GNOME"
    assert (read("none").source, read("none").proxy.address) == ("KDE", "kde.corp:3128")  # the file sets a proxy
    assert read(None).source == "KDE"
    (home / ".config" / "kioslaverc").write_text("[Proxy Settings]\nProxyType=0\n")
    assert read("none").source == "GNOME"  # KDE's file says nothing, and this is no KDE session
    assert read("none", XDG_CURRENT_DESKTOP="KDE").source == "KDE"
    assert read(None) == SystemProxy()
    assert read(None).describe(HOST) == "System proxy: none (neither the environment nor the desktop settings name a proxy)."


# -- KDE ---------------------------------------------------------------------------------------


def kde(text: str, host: str = HOST, environ: dict[str, str] | None = None) -> SystemProxy:
    return from_kioslaverc(text, environ or {}, host)


def test_kde_manual_proxy_in_both_spellings_with_no_proxy_for():
    text = "[General]\nx=1\n\n[Proxy Settings]\nNoProxyFor=localhost,.internal.example\nProxyType=1\nhttpsProxy=http://proxy.corp 3128\n"
    found = kde(text)
    assert (found.source, found.mode, found.proxy.address) == ("KDE", "manual", "proxy.corp:3128")
    assert kde(text.replace("http://proxy.corp 3128", "proxy.corp:8080")).proxy.address == "proxy.corp:8080"
    assert kde(text, "vpn.internal.example").bypassed_by == ".internal.example"
    assert kde(text.replace("httpsProxy=", "httpsProxy[$e]=")).proxy.address == "proxy.corp:3128"


def test_kde_reversed_exception_lists_the_hosts_that_use_the_proxy():
    text = "[Proxy Settings]\nNoProxyFor=.corp.example\nProxyType=1\nReversedException=true\nhttpsProxy=http://proxy.corp 3128\n"
    assert kde(text, "vpn.corp.example").proxy.address == "proxy.corp:3128"
    other = kde(text, HOST)
    assert (other.proxy, other.bypassed_by) == (None, REVERSED)
    assert other.describe(HOST) == "System proxy (KDE): none for vpn.example.com, which is not among the hosts the proxy is used for."


def test_kde_pac_wpad_environment_and_none():
    assert kde("[Proxy Settings]\nProxyType=2\nProxy Config Script=http://wpad.corp/p.pac\n").pac_url == "http://wpad.corp/p.pac"
    assert kde("[Proxy Settings]\nProxyType=3\n").mode == "auto-detect"
    env_mode = "[Proxy Settings]\nProxyType=4\nhttpsProxy=CORP_PROXY\nNoProxyFor=CORP_NO_PROXY\n"
    assert kde(env_mode, environ={"CORP_PROXY": "http://e.corp:81"}).proxy.address == "e.corp:81"
    assert kde(env_mode, environ={"CORP_PROXY": "http://e.corp:81", "CORP_NO_PROXY": "example.com"}).bypassed_by == "example.com"
    assert kde(env_mode).mode == "none"
    assert kde("[Proxy Settings]\nProxyType=0\nhttpsProxy=http://p 1\n").mode == "none"
    assert kde("").mode == "none"
    with pytest.raises(SystemProxyError, match=r"\(KDE\) names only a SOCKS"):
        kde("[Proxy Settings]\nProxyType=1\nsocksProxy=socks://s 1080\n")


# -- Windows -----------------------------------------------------------------------------------

# DefaultConnectionSettings as Windows 10 writes it: version 0x46, a counter, flags, then the
# proxy, bypass and script fields (length-prefixed), all empty here.
BLOB_AUTO_DETECT = bytes.fromhex("46000000050000000900000000000000000000000000000001000000") + bytes(32)
BLOB_DIRECT = bytes.fromhex("460000000600000001000000") + bytes(44)


class FakeWinreg:
    """The calls read_windows makes, over recorded values {key path: {name: value}}."""

    HKEY_CURRENT_USER = "HKCU"

    def __init__(self, keys):
        self.keys = keys
        self.closed = 0

    def OpenKey(self, root, path):  # noqa: N802
        assert root == "HKCU"
        if path not in self.keys:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return path

    def QueryValueEx(self, key, name):  # noqa: N802
        if name not in self.keys[key]:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        value = self.keys[key][name]
        return value, 4 if isinstance(value, int) else 3 if isinstance(value, bytes) else 1

    def CloseKey(self, key):  # noqa: N802
        self.closed += 1


def test_windows_registry_values_are_read_and_missing_ones_left_out():
    fake = FakeWinreg(
        {
            INTERNET_SETTINGS: {"ProxyEnable": 1, "ProxyServer": "proxy.corp:3128", "ProxyOverride": "*.corp.example;<local>"},
            INTERNET_SETTINGS + r"\Connections": {"DefaultConnectionSettings": BLOB_DIRECT},
        }
    )
    values = read_windows(fake)
    assert values == {
        "ProxyEnable": 1,
        "ProxyServer": "proxy.corp:3128",
        "ProxyOverride": "*.corp.example;<local>",
        "DefaultConnectionSettings": BLOB_DIRECT,
    }
    assert fake.closed == 2
    assert read_windows(FakeWinreg({})) == {}


def test_windows_manual_proxy_for_all_protocols_or_per_protocol():
    values = {"ProxyEnable": 1, "ProxyServer": "proxy.corp:3128", "ProxyOverride": "*.corp.example; <local>"}
    found = from_windows(values, HOST)
    assert (found.source, found.mode, found.proxy.address) == ("Windows", "manual", "proxy.corp:3128")
    assert from_windows(values, "vpn.corp.example").bypassed_by == "*.corp.example"
    assert from_windows(values, "intranet").bypassed_by == "<local>"
    assert from_windows({**values, "ProxyEnable": 0}, HOST).mode == "none"
    per_protocol = {"ProxyEnable": 1, "ProxyServer": "http=web.corp:80;https=secure.corp:8443;ftp=f:21"}
    assert from_windows(per_protocol, HOST).proxy.address == "secure.corp:8443"
    assert from_windows({"ProxyEnable": 1, "ProxyServer": "http=web.corp:80"}, HOST).mode == "none"
    assert from_windows({"ProxyEnable": 1, "ProxyServer": "https=http://s.corp:81"}, HOST).proxy.address == "s.corp:81"
    assert from_windows({"ProxyEnable": 1, "ProxyServer": "proxy.corp"}, HOST).proxy.address == "proxy.corp:80"
    assert from_windows({"ProxyEnable": 1, "ProxyServer": "https=[2001:db8::1]"}, HOST).proxy.address == "[2001:db8::1]:80"
    assert from_windows({"ProxyEnable": 1, "ProxyServer": "https=[2001:db8::1]:81"}, HOST).proxy.address == "[2001:db8::1]:81"
    with pytest.raises(SystemProxyError, match=r"\(Windows\) names only a SOCKS"):
        from_windows({"ProxyEnable": 1, "ProxyServer": "socks=s.corp:1080"}, HOST)


def test_windows_auto_detect_and_auto_config_come_first_and_keep_the_manual_proxy():
    values = {
        "ProxyEnable": 1,
        "ProxyServer": "proxy.corp:3128",
        "AutoConfigURL": "http://wpad.corp/proxy.pac",
        "DefaultConnectionSettings": BLOB_AUTO_DETECT,
    }
    found = from_windows(values, HOST)
    assert (found.mode, found.auto_detect, found.pac_url, found.proxy.address) == (
        "auto-detect",
        True,
        "http://wpad.corp/proxy.pac",
        "proxy.corp:3128",
    )
    assert found.describe(HOST) == (
        "System proxy (Windows): found automatically (WPAD). Then the auto-config script http://wpad.corp/proxy.pac. Then the proxy proxy.corp:3128."
    )
    assert found.pac_urls == ("", "http://wpad.corp/proxy.pac")
    assert from_windows({**values, "DefaultConnectionSettings": BLOB_DIRECT}, HOST).mode == "auto-config"
    assert from_windows({**values, "DefaultConnectionSettings": BLOB_DIRECT}, HOST).pac_urls == ("http://wpad.corp/proxy.pac",)
    assert from_windows({"ProxyEnable": 1, "ProxyServer": "p:1"}, HOST).pac_urls == ()
    assert from_windows({"DefaultConnectionSettings": BLOB_DIRECT}, HOST).mode == "none"
    assert from_windows({"DefaultConnectionSettings": b"\x46"}, HOST).mode == "none"


def test_windows_platform_reads_the_registry(monkeypatch):
    import sstpvpn.client.system_proxy as module

    monkeypatch.setattr(module, "read_windows", lambda: {"ProxyEnable": 1, "ProxyServer": "p.corp:3128"})
    assert system_proxy_for(HOST, environ={}, platform="win32").proxy.address == "p.corp:3128"
    monkeypatch.setattr(module, "read_windows", lambda: None)
    assert system_proxy_for(HOST, environ={}, platform="win32") == SystemProxy()


# -- macOS -------------------------------------------------------------------------------------


def test_scutil_https_proxy_with_exceptions():
    found = from_scutil(SCUTIL, HOST)
    assert (found.source, found.mode, found.proxy.address) == ("macOS", "manual", "proxy.corp:3128")
    assert from_scutil(SCUTIL, "printer.local").bypassed_by == "*.local"
    assert from_scutil(SCUTIL, "169.254.10.10").bypassed_by == "169.254/16"
    assert from_scutil(SCUTIL, "vpn.internal.example").bypassed_by == "internal.example"
    assert from_scutil(SCUTIL, "intranet").bypassed_by == "<local>"
    assert from_scutil(SCUTIL.replace("HTTPSEnable : 1", "HTTPSEnable : 0"), HOST).mode == "none"


def test_scutil_pac_and_discovery():
    pac = SCUTIL.replace("ProxyAutoConfigEnable : 0", "ProxyAutoConfigEnable : 1\n  ProxyAutoConfigURLString : http://wpad.corp/p.pac")
    found = from_scutil(pac, HOST)
    assert (found.mode, found.pac_url, found.proxy.address) == ("auto-config", "http://wpad.corp/p.pac", "proxy.corp:3128")
    assert from_scutil(SCUTIL.replace("ProxyAutoDiscoveryEnable : 0", "ProxyAutoDiscoveryEnable : 1"), HOST).mode == "auto-detect"
    assert from_scutil("<dictionary> {\n}\n", HOST) == SystemProxy("macOS")
    with pytest.raises(SystemProxyError, match=r"\(macOS\) names only a SOCKS"):
        from_scutil("<dictionary> {\n  SOCKSEnable : 1\n  SOCKSProxy : s\n  SOCKSPort : 1080\n}\n", HOST)


def test_macos_platform_runs_scutil():
    commands = []

    def run(command, env):
        commands.append(command)
        return SCUTIL

    assert system_proxy_for(HOST, environ={}, platform="darwin", run=run).proxy.address == "proxy.corp:3128"
    assert commands == [["scutil", "--proxy"]]
    assert system_proxy_for(HOST, environ={}, platform="darwin", run=lambda c, e: None) == SystemProxy()


# -- what diagnose prints ----------------------------------------------------------------------


def test_descriptions():
    assert SystemProxy("environment").describe(HOST) == "System proxy (the environment): none."
    assert gnome().describe(HOST) == "System proxy (GNOME): proxy.corp:3128."
    assert gnome(host="a.internal.example").describe("a.internal.example") == (
        "System proxy (GNOME): none for a.internal.example, which matches the exception *.internal.example."
    )
    assert SystemProxy("KDE", pac_url="http://w/p.pac").describe(HOST) == "System proxy (KDE): the auto-config script http://w/p.pac."
