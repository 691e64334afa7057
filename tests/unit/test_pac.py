"""client/pac.py: FindProxyForURL's answer, the candidates, WPAD's places (recorded resolv.conf and
nmcli output), the decision line, and the JavaScript run by the real evaluator (pypac on dukpy) in
its time-boxed child process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sstpvpn.client import pac, profile_settings
from sstpvpn.client.pac import PacEntry, PacError, PacSource, ProxyDecision
from sstpvpn.client.profile_settings import needs_proxy_password, pac_source, proxy_settings, transport_settings
from sstpvpn.client.profiles import Profile, ProxyChoice, ProxyMode
from sstpvpn.client.proxy import ProxySettings
from sstpvpn.client.system_proxy import GNOME, WINDOWS, SystemProxy

# `nmcli -t -f DHCP4 device show` on a NetworkManager laptop whose DHCP server sends option 252
# (terse mode escapes the colons in values); a second device without DHCP prints nothing.
NMCLI_OUTPUT = r"""DHCP4.OPTION[1]:broadcast_address = 10.20.0.255
DHCP4.OPTION[2]:dhcp_client_identifier = 01\:52\:54\:00\:12\:34\:56
DHCP4.OPTION[3]:dhcp_lease_time = 3600
DHCP4.OPTION[4]:dhcp_server_identifier = 10.20.0.1
DHCP4.OPTION[5]:domain_name = corp.example.com
DHCP4.OPTION[6]:domain_name_servers = 10.20.0.1
DHCP4.OPTION[7]:expiry = 1764936000
DHCP4.OPTION[8]:ip_address = 10.20.0.57
DHCP4.OPTION[9]:requested_wpad = 1
DHCP4.OPTION[10]:routers = 10.20.0.1
DHCP4.OPTION[11]:subnet_mask = 255.255.255.0
DHCP4.OPTION[12]:wpad = http\://pac.corp.example.com/proxy.pac
"""

# systemd-resolved's stub file, as /etc/resolv.conf links to it.
RESOLVED_STUB = """# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).
# Do not edit.
nameserver 127.0.0.53
options edns0 trust-ad
search corp.example.com lab.example.org
"""


def test_parse_result_keeps_order_and_kinds() -> None:
    entries = pac.parse_result("PROXY a:3128; PROXY b:8080;DIRECT")
    assert entries == [PacEntry("PROXY", "a", 3128), PacEntry("PROXY", "b", 8080), PacEntry("DIRECT")]


def test_parse_result_defaults_ipv6_and_other_kinds() -> None:
    entries = pac.parse_result(" proxy plain ; PROXY [2001:db8::1]:3128; HTTP h:81; HTTPS s; SOCKS5 k:1080; SOCKS k ; direct ")
    assert entries == [
        PacEntry("PROXY", "plain", 80),
        PacEntry("PROXY", "2001:db8::1", 3128),
        PacEntry("PROXY", "h", 81),
        PacEntry("HTTPS", "s", 443),
        PacEntry("SOCKS5", "k", 1080),
        PacEntry("SOCKS", "k", 1080),
        PacEntry("DIRECT"),
    ]
    assert entries[1].text == "PROXY [2001:db8::1]:3128"


def test_parse_result_skips_what_it_does_not_understand(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    assert pac.parse_result("FTP f:21; PROXY a:99999; PROXY a b; ; PROXY ok:1") == [PacEntry("PROXY", "ok", 1)]
    assert "FTP f:21" in caplog.text and "PROXY a:99999" in caplog.text


def test_candidates_carry_the_profile_credentials_and_skip_socks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    template = ProxySettings("", 0, "alice", "secret")
    usable, skipped = pac.candidates(pac.parse_result("SOCKS s:1080; PROXY a:3128; HTTPS t:443; PROXY a:3128; DIRECT; DIRECT"), template)
    assert usable == [ProxySettings("a", 3128, "alice", "secret"), None]
    assert skipped == ["SOCKS s:1080", "HTTPS t:443"]
    assert "SOCKS s:1080 skipped" in caplog.text
    assert "secret" not in caplog.text


def test_search_domains_from_resolv_conf() -> None:
    assert pac.search_domains(RESOLVED_STUB) == ["corp.example.com", "lab.example.org"]
    assert pac.search_domains("domain old.example.net\nsearch new.example.net.  # comment\n") == ["new.example.net"]
    assert pac.search_domains("nameserver 10.0.0.1\n") == []


def test_dhcp_option_252_from_recorded_nmcli_output() -> None:
    assert pac.nmcli_wpad_urls(NMCLI_OUTPUT) == ["http://pac.corp.example.com/proxy.pac"]
    assert pac.nmcli_wpad_urls(NMCLI_OUTPUT + NMCLI_OUTPUT.replace("OPTION[12]", "OPTION[13]")) == ["http://pac.corp.example.com/proxy.pac"]
    assert pac.nmcli_wpad_urls("DHCP4.OPTION[1]:wpad = \nDHCP4.OPTION[2]:wpad = ftp\\://x/y\n") == []


def test_dns_wpad_urls_devolve_up_to_the_organisation() -> None:
    assert pac.dns_wpad_urls(["eu.corp.example.com", "corp.example.com", "example.co.uk", "intranet.local"]) == [
        "http://wpad.eu.corp.example.com/wpad.dat",
        "http://wpad.corp.example.com/wpad.dat",
        "http://wpad.example.com/wpad.dat",
        "http://wpad.example.co.uk/wpad.dat",
        "http://wpad.intranet.local/wpad.dat",
    ]


def test_discover_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(PacError) as raised:
        pac.discover(1.0, dhcp_urls=lambda: [], domains=lambda: [])
    assert str(raised.value).startswith("No proxy auto-config file can be looked for")
    missing = (tmp_path / "none.pac").as_uri()
    with pytest.raises(PacError) as raised:
        pac.discover(1.0, dhcp_urls=lambda: [missing], domains=lambda: [])
    assert f"WPAD looked at {missing}" in str(raised.value)
    found = tmp_path / "wpad.dat"
    found.write_text('function FindProxyForURL(url, host) { return "DIRECT"; }')
    assert pac.discover(1.0, dhcp_urls=lambda: [missing, found.as_uri()], domains=lambda: []) == ("wpad-dhcp", found.as_uri(), found.read_text())


def test_server_url() -> None:
    assert pac.server_url("vpn.example.com", 443) == "https://vpn.example.com/"
    assert pac.server_url("vpn.example.com", 8443) == "https://vpn.example.com:8443/"
    assert pac.server_url("2001:db8::5", 443) == "https://[2001:db8::5]/"


def test_describe_the_decision() -> None:
    a, b = ProxySettings("a", 3128), ProxySettings("b", 3128)
    decision = ProxyDecision("http://pac.test/proxy.pac", "profile", "PROXY a:3128; PROXY b:3128; SOCKS s:1; DIRECT", (a, b, None), ("SOCKS s:1",))
    assert pac.describe(decision) == ("PAC http://pac.test/proxy.pac → PROXY a:3128; PROXY b:3128; DIRECT (SOCKS s:1 skipped: not an HTTP proxy)")
    assert pac.describe(decision, b, [(a, "refused the connection")]) == (
        "PAC http://pac.test/proxy.pac → PROXY b:3128 (PROXY a:3128: refused the connection; SOCKS s:1 skipped: not an HTTP proxy)"
    )
    wpad = ProxyDecision("http://wpad.corp.test/wpad.dat", "wpad-dns", "DIRECT", (None,))
    assert pac.describe(wpad, None) == "WPAD (DNS) PAC http://wpad.corp.test/wpad.dat → DIRECT"


# ---------------------------------------------------------------------------------------------
# The real evaluator

PAC_JS = """
function FindProxyForURL(url, host) {
    if (isPlainHostName(host) || dnsDomainIs(host, ".intranet.test")) return "DIRECT";
    if (shExpMatch(url, "https://vpn.example.com:8443/*")) return "PROXY special:3128";
    if (isInNet(host, "198.18.0.0", "255.254.0.0")) return "PROXY lab:8080; DIRECT";
    return "PROXY a:3128; PROXY b:3128; DIRECT";
}
"""


def test_evaluate_runs_the_standard_helpers() -> None:
    def run(host: str, port: int = 443) -> str:
        return pac.evaluate(PAC_JS, pac.server_url(host, port), host, "http://pac.test/proxy.pac")

    assert run("vpn.example.com") == "PROXY a:3128; PROXY b:3128; DIRECT"
    assert run("vpn.example.com", 8443) == "PROXY special:3128"
    assert run("gw.intranet.test") == "DIRECT"
    assert run("198.18.20.1") == "PROXY lab:8080; DIRECT"


def test_broken_javascript_gives_a_sentence() -> None:
    with pytest.raises(PacError) as raised:
        pac.evaluate("function FindProxyForURL(url, host) { return ", "https://v/", "v", "http://pac.test/broken.pac")
    assert str(raised.value).startswith("The proxy auto-config file http://pac.test/broken.pac cannot be run (")
    assert "SyntaxError" in str(raised.value)
    with pytest.raises(PacError) as raised:
        pac.evaluate("function FindProxyForURL(url, host) { return undefinedFunction(host); }", "https://v/", "v", "http://pac.test/p.pac")
    assert "undefinedFunction" in str(raised.value)
    with pytest.raises(PacError, match="defines no FindProxyForURL function"):
        pac.evaluate("var x = 1;", "https://v/", "v", "http://pac.test/p.pac")


def test_endless_javascript_is_stopped_within_the_time_box() -> None:
    started = time.monotonic()
    with pytest.raises(PacError) as raised:
        pac.evaluate("function FindProxyForURL(url, host) { while (true) {} }", "https://v/", "v", "http://pac.test/loop.pac", timeout=1.5)
    elapsed = time.monotonic() - started
    assert str(raised.value) == (
        "The proxy auto-config file http://pac.test/loop.pac did not answer FindProxyForURL within 1.5 seconds: "
        "ask its administrator to check it, or choose another proxy setting."
    )
    assert 1.5 <= elapsed < 3.0


def test_decide_from_a_file_url(tmp_path: Path) -> None:
    path = tmp_path / "proxy.pac"
    path.write_text('function FindProxyForURL(url, host) { return "SOCKS5 s:1080; PROXY a:3128; DIRECT"; }')
    decision = pac.decide(PacSource(path.as_uri(), ProxySettings("", 0, "bob", "pw")), "vpn.example.com", 443)
    assert decision.candidates == (ProxySettings("a", 3128, "bob", "pw"), None)
    assert decision.skipped == ("SOCKS5 s:1080",)
    assert decision.found_by == "profile"
    path.write_text('function FindProxyForURL(url, host) { return "SOCKS s:1080"; }')
    with pytest.raises(PacError, match=r"offers only SOCKS s:1080 for vpn.example.com:443, which SSTP VPN cannot use"):
        pac.decide(PacSource(path.as_uri()), "vpn.example.com", 443)
    path.write_text('function FindProxyForURL(url, host) { return ""; }')
    with pytest.raises(PacError, match="names neither a proxy nor DIRECT"):
        pac.decide(PacSource(path.as_uri()), "vpn.example.com", 443)


def test_fetch_refuses_other_schemes_and_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PacError, match=r"ftp://x/p.pac is not an http://, https:// or file:// address"):
        pac.fetch("ftp://x/p.pac")
    with pytest.raises(PacError, match=r"Cannot fetch the proxy auto-config file file://.*none.pac \(No such file or directory\)"):
        pac.fetch((tmp_path / "none.pac").as_uri())


# ---------------------------------------------------------------------------------------------
# The profile's PAC choice


def _pac_profile(url: str = "http://pac.corp.test/proxy.pac", username: str = "") -> Profile:
    return Profile(id="p1", name="Work", host="vpn.example.com", proxy=ProxyChoice(ProxyMode.PAC, pac_url=url, username=username))


def test_pac_profile_gives_a_pac_source_and_no_fixed_proxy() -> None:
    profile = _pac_profile(username="alice")
    assert proxy_settings(profile, "pw") is None
    assert pac_source(profile, "pw") == PacSource("http://pac.corp.test/proxy.pac", ProxySettings("", 0, "alice", "pw"))
    settings = transport_settings(profile, "pw")
    assert settings.proxy is None and settings.pac is not None and settings.pac.url == "http://pac.corp.test/proxy.pac"
    assert needs_proxy_password(profile)
    assert not needs_proxy_password(_pac_profile())
    assert pac_source(_pac_profile(url=""), None) == PacSource("", ProxySettings("", 0, None, None))  # WPAD
    assert pac_source(Profile(id="p2", name="Home", host="vpn.example.com"), None) is None
    assert "pw" not in repr(settings)


@pytest.mark.parametrize(
    ("system", "expected"),
    [
        (
            SystemProxy(GNOME, pac_url="http://pac.corp.test/proxy.pac"),
            PacSource("http://pac.corp.test/proxy.pac", ProxySettings("", 0), otherwise=(None,)),
        ),
        (  # Windows' order: WPAD, then the auto-config URL, then its proxy, then directly
            SystemProxy(WINDOWS, proxy=ProxySettings("p", 3128), pac_url="http://pac.corp.test/proxy.pac", auto_detect=True),
            PacSource(
                "",
                ProxySettings("", 0),
                then=PacSource("http://pac.corp.test/proxy.pac", ProxySettings("", 0)),
                otherwise=(ProxySettings("p", 3128),),
            ),
        ),
        (SystemProxy(GNOME, proxy=ProxySettings("p", 3128)), None),
        (SystemProxy(), None),
    ],
)
def test_system_choice_follows_the_desktops_auto_config(monkeypatch: pytest.MonkeyPatch, system: SystemProxy, expected: PacSource | None) -> None:
    asked: list[tuple[str, int]] = []

    def system_proxy_for(host: str, port: int = 443, environ: object = None) -> SystemProxy:
        asked.append((host, port))
        return system

    monkeypatch.setattr(profile_settings, "system_proxy_for", system_proxy_for)
    profile = Profile(id="p3", name="Desk", host="vpn.example.com", port=8443, proxy=ProxyChoice(ProxyMode.SYSTEM))
    assert pac_source(profile, None, {}) == expected
    assert asked == [("vpn.example.com", 8443)]
    assert (transport_settings(profile, environ={}).pac is None) == (expected is None)


# Tcpip\Parameters of a domain-joined Windows 11 laptop (recorded with `reg query`), as winreg reads them.
WINDOWS_TCPIP = {
    "SearchList": "eu.corp.example.com,corp.example.com",
    "Domain": "corp.example.com",
    "NV Domain": "corp.example.com",
    "DhcpDomain": "guest.example.net",
}


class FakeWinreg:
    """The few winreg calls read_windows_tcpip makes, over recorded values."""

    HKEY_LOCAL_MACHINE = "HKLM"

    def __init__(self, values: dict[str, object]) -> None:
        self.values, self.opened, self.closed = values, [], 0

    def OpenKey(self, root: str, path: str) -> str:  # noqa: N802 - winreg's names
        self.opened.append((root, path))
        return path

    def QueryValueEx(self, key: str, name: str) -> tuple[object, int]:  # noqa: N802
        if name not in self.values:
            raise FileNotFoundError(name)
        return self.values[name], 1

    def CloseKey(self, key: str) -> None:  # noqa: N802
        self.closed += 1


def test_windows_search_domains_from_recorded_registry_values() -> None:
    fake = FakeWinreg({**WINDOWS_TCPIP, "Hostname": "LAPTOP-7"})
    values = pac.read_windows_tcpip(fake)
    assert fake.opened == [("HKLM", r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters")] and fake.closed == 1
    assert values == WINDOWS_TCPIP
    assert pac.windows_search_domains(values) == ["eu.corp.example.com", "corp.example.com", "guest.example.net"]
    assert pac.windows_search_domains({"SearchList": "", "DhcpDomain": "home."}) == ["home"]
    assert pac.read_windows_tcpip(FakeWinreg({"SearchList": 7})) == {}  # not a string: left out


def test_the_systems_settings_go_on_when_no_auto_config_can_be_had(monkeypatch: pytest.MonkeyPatch) -> None:
    """As Windows and browsers do: automatic detection that finds nothing, then an auto-config URL
    that cannot be fetched, leave the system's proxy (else a direct connection), with the reasons;
    a PAC the profile names is the user's choice, so its failure is told."""
    tried: list[str] = []

    def nothing_found(source: pac.PacSource, host: str, port: int) -> pac.ProxyDecision:
        tried.append(source.url)
        raise pac.PacError(f"nothing at {source.url or 'WPAD'}.")

    monkeypatch.setattr(pac, "_decide", nothing_found)
    system = PacSource("", then=PacSource("http://pac.corp.test/proxy.pac"), otherwise=(ProxySettings("p", 3128),))
    decision = pac.decide(system, "vpn.example.com", 443)
    assert tried == ["", "http://pac.corp.test/proxy.pac"]
    assert decision.candidates == (ProxySettings("p", 3128),)
    assert pac.describe(decision) == ("no automatic proxy configuration → PROXY p:3128 (nothing at WPAD. nothing at http://pac.corp.test/proxy.pac.)")
    assert pac.decide(PacSource("", otherwise=(None,)), "vpn.example.com", 443).candidates == (None,)
    with pytest.raises(pac.PacError, match="nothing at http://pac.corp.test/proxy.pac"):
        pac.decide(PacSource("http://pac.corp.test/proxy.pac"), "vpn.example.com", 443)
