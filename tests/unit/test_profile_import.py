"""Profile import (client/profile_import.py, pure) and its file edge (client/profile_transfer.py):
Windows' rasphone.pbk, NetworkManager's .nmconnection, our own export; hostile files; the
command line's export -> import round trip.

The fixtures in fixtures/import/ are written from the formats' documented keys: the phone book's
entry keys as Windows writes them (RASENTRY's VpnStrategy, AuthRestrictions AR_F_* bits,
ExcludedProtocols RASNP_* bits, the per-link DEVICE=vpn / PhoneNumber lines) and
network-manager-sstp's [vpn] keys (shared/nm-service-defines.h: gateway, user, domain, ca-cert,
ignore-cert-warn, proxy-server, proxy-port, proxy-user, lcp-echo-interval, ...)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sstpvpn.client.profile_import import (
    MAX_IMPORT_BYTES,
    MAX_PROFILES,
    ImportFormatError,
    clean_name,
    export_text,
    parse_profiles,
)
from sstpvpn.client.profile_transfer import TransferError, export_file, import_file, unique_name
from sstpvpn.client.profiles import Profile, ProfileStore, ProxyChoice, ProxyMode, new_profile_id

FIXTURES = Path(__file__).parent / "fixtures" / "import"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> ProfileStore:
    return ProfileStore(tmp_path / "config" / "sstp-vpn" / "profiles.toml")


def pbk_bytes(encoding: str = "utf-8") -> bytes:
    text = (FIXTURES / "rasphone.pbk").read_text(encoding="utf-8")
    return text.encode(encoding)


# -- rasphone.pbk -------------------------------------------------------------------------------


def test_phonebook_takes_the_sstp_entries_and_says_what_it_skipped():
    result = parse_profiles(pbk_bytes(), "rasphone.pbk")
    assert result.format.startswith("a Windows phone book")
    office, lab = (entry.profile for entry in result.entries)
    assert (office.name, office.host, office.port, office.username) == ("Office SSTP", "vpn.example.com", 443, "")
    assert office.full_tunnel is False  # IpPrioritizeRemote=0
    assert office.ipv6 is False  # ExcludedProtocols=8 (RASNP_Ipv6)
    assert office.auto_reconnect is True  # RedialOnLinkFailure=1
    assert not office.allow_pap and not office.allow_chap_md5  # AuthRestrictions=512: MS-CHAPv2 only
    assert (lab.name, lab.host, lab.port, lab.full_tunnel, lab.ipv6) == ("Lab, SSTP first", "lab.example.net", 8443, True, True)
    assert any("'Branch IKEv2' is not an SSTP entry (VpnStrategy=7, IKEv2 only)" in note for note in result.notes)
    office_notes = " ".join(result.entries[0].notes)
    assert "user name" in office_notes and "IpDnsSuffix" in office_notes
    lab_notes = " ".join(result.entries[1].notes)
    assert "PEAP" in lab_notes and "IpAssign" in lab_notes


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_phonebook_in_every_encoding_windows_writes(encoding):
    data = pbk_bytes(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data  # with its BOM, as Notepad writes it
    names = [entry.profile.name for entry in parse_profiles(data, "rasphone.pbk").entries]
    assert names == ["Office SSTP", "Lab, SSTP first"]


def test_phonebook_in_the_ansi_code_page():
    data = "[Büro Köln]\r\nVpnStrategy=5\r\nPhoneNumber=vpn.example.de\r\n".encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert parse_profiles(data, "rasphone.pbk").entries[0].profile.name == "Büro Köln"


def test_phonebook_passwords_are_never_read():
    data = b"[X]\nVpnStrategy=5\nPhoneNumber=vpn.example.com\nPreSharedKey=hunter2\nApnInfoPassword=hunter3\n"
    result = parse_profiles(data, "rasphone.pbk")
    assert "hunter" not in repr(result)


def test_phonebook_duplicate_sections_both_come_and_get_distinct_names(store):
    data = b"[Office]\nVpnStrategy=5\nPhoneNumber=a.example.com\n[Office]\nVpnStrategy=6\nPhoneNumber=b.example.com\n"
    report = import_file_bytes(store, data, user_name="alice")
    assert [(p.name, p.host) for p in report.added] == [("Office", "a.example.com"), ("Office (2)", "b.example.com")]
    assert any("exists already" in note for note in report.notes)


def test_phonebook_entry_without_a_server_is_skipped_with_a_sentence():
    result = parse_profiles(b"[Broken]\nVpnStrategy=5\nPhoneNumber=vpn:notaport\n", "rasphone.pbk")
    assert result.entries == () and "'Broken' was skipped" in result.notes[0]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"VpnStrategy=5\n[X]\n", "Line 1 of f.pbk has the key 'VpnStrategy' before any [section]"),
        (b"[X]\nVpnStrategy=5\nthis is not a setting\n", "Line 3 of f.pbk is neither a [section] nor key=value"),
        (b"[X\n", "Line 1 of f.pbk starts a section"),
        (b"[X]\nVpnStrategy=five\nPhoneNumber=a\n", "Line 2 of f.pbk: VpnStrategy must be a number"),
        (b"", "f.pbk is empty"),
        (b"\x00\x01\x02\x03garbage" * 10, "f.pbk"),
        (b"\xff\xfe\x00\xd8", "f.pbk is not readable text"),
    ],
)
def test_malformed_files_give_one_sentence_naming_file_and_line(data, fragment):
    with pytest.raises(ImportFormatError) as caught:
        parse_profiles(data, "f.pbk")
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_huge_file_is_refused_before_parsing(tmp_path, store):
    path = tmp_path / "huge.pbk"
    path.write_bytes(b"[X]\n" + b"A=" + b"x" * (MAX_IMPORT_BYTES + 10) + b"\n")
    with pytest.raises(TransferError) as caught:
        import_file(store, path)
    assert "huge.pbk" in str(caught.value) and "at most" in str(caught.value)


def test_many_entries_are_capped_with_a_note():
    data = "".join(f"[E{n}]\nVpnStrategy=5\nPhoneNumber=h{n}.example.com\n" for n in range(MAX_PROFILES + 5)).encode()
    result = parse_profiles(data, "rasphone.pbk")
    assert len(result.entries) == MAX_PROFILES and "Only the first" in result.notes[-1]


def test_odd_names_are_cleaned():
    assert clean_name("Office\u202e\u200bEvil\r\nline\ttab") == "OfficeEvil line tab"
    assert len(clean_name("x" * 500)) == 80
    data = "[\u202eevil\x07name]\nVpnStrategy=5\nPhoneNumber=vpn.example.com\n".encode()
    entry = parse_profiles(data, "rasphone.pbk").entries[0]
    assert entry.profile.name == "evil name" and "cleaned" in entry.notes[0]


# -- NetworkManager -----------------------------------------------------------------------------


def test_nmconnection_maps_the_documented_keys():
    data = (FIXTURES / "office.nmconnection").read_bytes()
    result = parse_profiles(data, "office.nmconnection")
    (entry,) = result.entries
    profile = entry.profile
    assert (profile.name, profile.host, profile.port, profile.username) == ("Office VPN", "vpn.example.com", 8443, "CORP\\alice")
    assert profile.proxy == ProxyChoice(ProxyMode.MANUAL, "proxy.corp", 3128, "bob")
    assert profile.ca_file == "/nonexistent/ca.pem"
    assert profile.full_tunnel is False and profile.extra_routes == ("10.20.0.0/16", "10.30.0.0/16")
    assert profile.ipv6 is False  # [ipv6] method=ignore
    notes = " ".join(entry.notes)
    assert "ignore-cert-warn=yes was left out" in notes
    assert "Left out (not supported): lcp-echo-interval." in notes
    assert "[vpn-secrets]" in notes
    assert "s3cret" not in repr(result)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[connection]\nid=W\ntype=wifi\n", "of type 'wifi', not a VPN"),
        ("[connection]\nid=O\ntype=vpn\n[vpn]\nservice-type=org.freedesktop.NetworkManager.openvpn\n", "not SSTP"),
        ("[connection]\nid=O\ntype=vpn\n[vpn]\nservice-type=org.freedesktop.NetworkManager.sstp\n", "has no gateway"),
        (
            "[connection]\ntype=vpn\n[vpn]\ngateway=a.example.com\nmtu=big\nservice-type=org.freedesktop.NetworkManager.sstp\n",
            "Line 5 of c: mtu must be",
        ),
    ],
)
def test_nmconnection_that_is_not_sstp_is_refused(text, fragment):
    with pytest.raises(ImportFormatError) as caught:
        parse_profiles(text.encode(), "c")
    assert fragment in str(caught.value)


# -- our export ---------------------------------------------------------------------------------


def test_export_holds_every_field_but_the_id_and_reads_back_the_same():
    original = Profile(
        id=new_profile_id(),
        name="Office",
        host="vpn.example.com",
        port=8443,
        username="HUB\\alice",
        sni="vpn.corp",
        pin_sha256="ab" * 32,
        full_tunnel=False,
        extra_routes=("10.20.0.0/16",),
        use_vpn_dns=False,
        ipv6=True,
        mtu=1400,
        auto_reconnect=True,
        proxy=ProxyChoice(ProxyMode.MANUAL, "proxy.corp", 3128, "bob"),
    )
    text = export_text([original])
    document = tomllib.loads(text)
    assert document["sstp_vpn_export"] == 1 and "id" not in document["profiles"][0]
    (entry,) = parse_profiles(text.encode(), "export.toml").entries
    assert entry.profile.id == "" and entry.notes == ()
    from dataclasses import replace

    assert replace(entry.profile, id=original.id) == original


def test_export_with_unknown_keys_and_wrong_types():
    text = 'sstp_vpn_export = 1\n[[profiles]]\nname = "A"\nhost = "a.example.com"\nusername = "u"\nfuture_thing = 3\n'
    (entry,) = parse_profiles(text.encode(), "e.toml").entries
    assert "Left out (unknown settings): future_thing." in entry.notes
    with pytest.raises(ImportFormatError) as caught:
        parse_profiles(b'sstp_vpn_export = 1\n[[profiles]]\nname = "A"\nhost = "a"\nport = "443"\n', "e.toml")
    assert "Profile 1 in e.toml has a port that is not a int" in str(caught.value)
    with pytest.raises(ImportFormatError, match="newer SSTP VPN"):
        parse_profiles(b"sstp_vpn_export = 9\n", "e.toml")
    with pytest.raises(ImportFormatError, match="e.toml is not valid TOML"):
        parse_profiles(b'sstp_vpn_export = 1\n[[profiles]\nname = "A"\n', "e.toml")


# -- the edge: store, names, files --------------------------------------------------------------


def import_file_bytes(store: ProfileStore, data: bytes, user_name: str = ""):
    from sstpvpn.client.profile_transfer import import_profiles

    return import_profiles(store, parse_profiles(data, "test file"), user_name)


def test_import_never_overwrites_and_needs_a_user_name(store):
    existing = store.save(Profile(id=new_profile_id(), name="Office SSTP", host="old.example.com", username="bob"))
    without_user = import_file_bytes(store, pbk_bytes())
    assert without_user.added == [] and len(without_user.skipped) == 2 and "--user" in without_user.skipped[0]
    report = import_file_bytes(store, pbk_bytes(), user_name="alice")
    assert [p.name for p in report.added] == ["Office SSTP (2)", "Lab, SSTP first"]
    assert store.load().by_id(existing.id) == existing
    assert {p.username for p in report.added} == {"alice"}
    assert all(p.id and p.id != existing.id for p in report.added)
    assert report.lines()[0] == "Imported 2 profiles from a Windows phone book (rasphone.pbk):"


def test_absurdly_long_settings_are_refused_in_a_short_sentence(store):
    data = b"[Long]\nVpnStrategy=5\nPhoneNumber=" + b"a" * 200_000 + b".example.com\n"
    report = import_file_bytes(store, data, user_name="alice")
    assert report.added == [] and report.skipped == ["'Long': its host is longer than 1024 characters."]


def test_unique_name():
    assert unique_name("Office", {"office"}) == "Office (2)"
    assert unique_name("Office (2)", {"office", "office (2)"}) == "Office (3)"
    assert unique_name("New", {"office"}) == "New"


def test_export_never_replaces_a_file_and_names_unknown_profiles(store, tmp_path):
    store.save(Profile(id=new_profile_id(), name="Office", host="vpn.example.com", username="alice"))
    target = tmp_path / "out.toml"
    target.write_text("keep me")
    with pytest.raises(TransferError, match="exists already"):
        export_file(store, target)
    assert target.read_text() == "keep me"
    with pytest.raises(TransferError, match="no profile called 'Home'"):
        export_file(store, tmp_path / "new.toml", ["Home"])


# -- the command line ---------------------------------------------------------------------------


def sstp_vpn(config_home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    env["XDG_CONFIG_HOME"] = str(config_home)
    return subprocess.run([sys.executable, "-m", "sstpvpn.client.cli", *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60)


def test_cli_export_then_import_round_trip(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    added = sstp_vpn(
        first, "profiles", "add", "Office", "vpn.example.com:8443", "--user", "HUB\\alice", "--no-default-route", "--route", "10.20.0.0/16"
    )
    assert added.returncode == 0, added.stderr
    assert sstp_vpn(first, "profiles", "add", "Home", "home.example.com", "--user", "bob", "--proxy", "system").returncode == 0
    exported = sstp_vpn(first, "profiles", "export", "Office", "Home", str(tmp_path / "out.toml"))
    assert exported.returncode == 0, exported.stderr
    assert "Exported 'Office', 'Home'" in exported.stdout
    imported = sstp_vpn(second, "profiles", "import", str(tmp_path / "out.toml"))
    assert imported.returncode == 0, imported.stderr
    assert "Imported 2 profiles from an SSTP VPN export" in imported.stdout
    before = {p.name: p for p in ProfileStore(first / "sstp-vpn" / "profiles.toml").load().profiles}
    after = {p.name: p for p in ProfileStore(second / "sstp-vpn" / "profiles.toml").load().profiles}
    from dataclasses import replace

    assert {name: replace(p, id="") for name, p in before.items()} == {name: replace(p, id="") for name, p in after.items()}
    again = sstp_vpn(second, "profiles", "import", str(tmp_path / "out.toml"))
    assert "Office (2)" in again.stdout and "exists already" in again.stdout
    broken = tmp_path / "broken.pbk"
    broken.write_bytes(b"[X]\nnot a setting\n")
    refused = sstp_vpn(second, "profiles", "import", str(broken))
    assert refused.returncode == 1 and refused.stderr.strip() == f"sstp-vpn: Line 2 of {broken} is neither a [section] nor key=value."
    pbk = sstp_vpn(second, "profiles", "import", str(FIXTURES / "rasphone.pbk"), "--user", "carol")
    assert pbk.returncode == 0 and "Lab, SSTP first (carol@lab.example.net:8443)" in pbk.stdout
