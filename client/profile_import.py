"""Profiles from other programs' files, and our own export format. Pure: bytes in, profiles and
notes out; no file, keyring or clock is touched here (profile_transfer.py is the edge).

Three formats, told apart by their content:

- Windows' phone book, `rasphone.pbk` (INI sections, one per entry; UTF-16 with a BOM, UTF-8 or
  the ANSI code page). An SSTP entry has `VpnStrategy=5` (SSTP only) or `6` (SSTP first) and the
  server in `PhoneNumber`. Windows keeps the user name and password elsewhere (the credential
  store), so an imported entry has no user name.
- NetworkManager's keyfile, `*.nmconnection`: `[connection] type=vpn`, `[vpn]
  service-type=org.freedesktop.NetworkManager.sstp` and the network-manager-sstp keys (`gateway`,
  `user`, `domain`, `ca-cert`, `proxy-*`, `mtu`, ...), routing from `[ipv4]`/`[ipv6]`.
- Our own export (`sstp-vpn profiles export`): TOML, `sstp_vpn_export = 1` and `[[profiles]]`
  with every profile field except the id; a `profiles.toml` is read the same way.

Passwords are never read: the keys that hold them are skipped by name, unseen. Every entry comes
with notes saying what was left out and why.
"""

from __future__ import annotations

import tomllib
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

import tomli_w

from .core.i18n import _
from .endpoint import EndpointError, parse_endpoint
from .profiles import MAX_EXTRA_ROUTES, Profile, ProfileFileError, ProxyChoice, ProxyMode, _profile_from_table, _profile_to_table

MAX_IMPORT_BYTES = 1_000_000  # a phone book with hundreds of entries is ~300 KB
MAX_PROFILES = 100  # per file; the rest is left out with a note
MAX_NAME_LENGTH = 80
EXPORT_VERSION = 1
NM_SSTP_SERVICE = "org.freedesktop.NetworkManager.sstp"

# rasphone.pbk: VpnStrategy values that mean SSTP (RASENTRY.dwVpnStrategy: VS_SstpOnly, VS_SstpFirst)
PBK_SSTP_STRATEGIES = {5: "SSTP only", 6: "SSTP first"}


def pbk_other_strategies() -> dict[int, str]:
    """The other VpnStrategy values, as the import notes name them."""
    return {
        # Translators: a Windows VPN type setting (VpnStrategy): the VPN type is chosen automatically
        0: _("automatic"),
        # Translators: a Windows VPN type setting (VpnStrategy)
        1: _("PPTP only"),
        # Translators: a Windows VPN type setting (VpnStrategy): PPTP tried first
        2: _("PPTP first"),
        # Translators: a Windows VPN type setting (VpnStrategy)
        3: _("L2TP only"),
        # Translators: a Windows VPN type setting (VpnStrategy): L2TP tried first
        4: _("L2TP first"),
        # Translators: a Windows VPN type setting (VpnStrategy)
        7: _("IKEv2 only"),
        # Translators: a Windows VPN type setting (VpnStrategy): IKEv2 tried first
        8: _("IKEv2 first"),
    }


# AuthRestrictions bits (AR_F_Auth*) and ExcludedProtocols bits (RASNP_*)
AR_PAP, AR_SPAP, AR_MD5CHAP, AR_MSCHAP, AR_EAP, AR_MSCHAP2 = 0x8, 0x10, 0x20, 0x40, 0x80, 0x200
RASNP_IPV6 = 0x8


def eap_types() -> dict[int, str]:
    """Windows' EAP types (CustomAuthKey), as the import notes name them."""
    return {
        # Translators: a Windows sign-in method
        13: _("EAP-TLS (smart card or certificate)"),
        25: "PEAP",  # not translated: a protocol name
        26: "EAP-MSCHAPv2",  # not translated: a protocol name
    }


class ImportFormatError(ValueError):
    """The file cannot be read as any of the formats; the message is one sentence naming the file
    and the line or key."""


@dataclass(frozen=True)
class ImportedProfile:
    profile: Profile  # id "" (the edge gives it one); username may be "" (rasphone.pbk)
    notes: tuple[str, ...] = ()  # what was left out or changed, each a sentence


@dataclass(frozen=True)
class ImportResult:
    format: str  # "a Windows phone book (rasphone.pbk)", "a NetworkManager connection", "an SSTP VPN export"
    entries: tuple[ImportedProfile, ...]
    notes: tuple[str, ...] = ()  # about the file as a whole (skipped entries, limits)


# ---------------------------------------------------------------------------------------------
# Export


def export_text(profiles: tuple[Profile, ...] | list[Profile]) -> str:
    """Our export format: every field of each profile except its id (which ties it to this
    computer's keyring). Never a password: profiles hold none."""
    tables = []
    for profile in profiles:
        table = _profile_to_table(profile)
        del table["id"]
        tables.append(table)
    header = "# SSTP VPN profiles (no passwords). Import with `sstp-vpn profiles import FILE` or the tray's Import profiles….\n"
    return header + tomli_w.dumps({"sstp_vpn_export": EXPORT_VERSION, "profiles": tables})


# ---------------------------------------------------------------------------------------------
# Reading


def parse_profiles(data: bytes, source: str) -> ImportResult:
    """Profiles from a file's bytes; `source` names the file in sentences. Raises ImportFormatError."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFormatError(
            _("{source} is {size:,} bytes; a profile file to import is at most {limit:,} bytes.").format(
                source=source, size=len(data), limit=MAX_IMPORT_BYTES
            )
        )
    text = decode_text(data, source)
    lines = text.splitlines()
    first = next((line.strip() for line in lines if line.strip() and not line.lstrip().startswith(("#", ";"))), "")
    if not first:
        raise ImportFormatError(_("{source} is empty: there is nothing to import.").format(source=source))
    if first.startswith(("sstp_vpn_export", "schema", "[[profiles]]", "last_used")):
        return _parse_export(text, source)
    groups = _read_ini(lines, source)
    names = {name.casefold() for name, _line, _keys in groups}
    if "connection" in names and "vpn" in names:
        return _parse_nmconnection(groups, source)
    if "connection" in names:
        return _parse_nmconnection(groups, source)  # says it is not a VPN connection
    return _parse_phonebook(groups, source)


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 or UTF-16 by their BOM; UTF-16 without one when every other byte is zero; else UTF-8,
    else Windows' ANSI code page (1252), as rasphone.pbk may be written."""
    if data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif len(data) >= 4 and data[1:20:2].count(0) >= min(len(data[1:20:2]), 5):
        encoding = "utf-16-le"
    else:
        encoding = "utf-8"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        if encoding != "utf-8":
            raise ImportFormatError(
                _("{source} is not readable text (byte {position} is not {encoding}).").format(
                    source=source, position=error.start, encoding=encoding.upper()
                )
            ) from None
        text = data.decode("cp1252", errors="replace")
    if "\x00" in text:
        line = text[: text.index(chr(0))].count(chr(10)) + 1
        raise ImportFormatError(_("{source} is not a text file (it holds a zero character at line {line}).").format(source=source, line=line))
    return text


def clean_name(raw: str) -> str:
    """A profile name from someone else's file: no control or formatting characters (newlines,
    bidirectional overrides), single spaces, at most MAX_NAME_LENGTH characters."""
    kept = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c for c in raw if unicodedata.category(c) != "Cf")
    return " ".join(kept.split())[:MAX_NAME_LENGTH].strip()


def _named(profile: Profile, raw_name: str, notes: list[str]) -> Profile:
    name = clean_name(raw_name)
    if name != raw_name:
        notes.append(
            _("The name {raw} was cleaned to {name} (no control characters, at most {limit} characters).").format(
                raw=repr(raw_name[:MAX_NAME_LENGTH]), name=repr(name), limit=MAX_NAME_LENGTH
            )
        )
    return replace(profile, name=name)


def is_secret_key(key: str) -> bool:
    """Keys that hold a password or key secret in the formats we read (NetworkManager's
    password, proxy-password, tls-user-key-secret; the phone book's PreSharedKey, ApnInfoPassword)."""
    folded = key.casefold()
    return folded.endswith(("password", "-secret")) or folded == "presharedkey"


Group = tuple[str, int, list[tuple[str, str, int]]]  # (name, line, [(key, value, line)])


def _read_ini(lines: list[str], source: str) -> list[Group]:
    """INI/GLib key file groups, in order. Duplicate groups and keys are kept (the phone book
    repeats keys within an entry); a line that is neither is an error naming it."""
    groups: list[Group] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ImportFormatError(_("Line {line} of {source} starts a section but does not end with ']'.").format(line=number, source=source))
            groups.append((line[1:-1], number, []))
            continue
        key, equals, value = line.partition("=")
        if not equals or not key.strip():
            raise ImportFormatError(_("Line {line} of {source} is neither a [section] nor key=value.").format(line=number, source=source))
        if not groups:
            raise ImportFormatError(
                _("Line {line} of {source} has the key {key} before any [section].").format(line=number, source=source, key=repr(key.strip()))
            )
        if not is_secret_key(key.strip()):  # a password is not read, not even kept here
            groups[-1][2].append((key.strip(), value.strip(), number))
    if not groups:
        raise ImportFormatError(
            _("{source} has no [section]: it is not a phone book, NetworkManager connection or SSTP VPN export.").format(source=source)
        )
    return groups


def _first(keys: list[tuple[str, str, int]], name: str) -> str | None:
    """The first non-empty value of a key (the phone book repeats PhoneNumber per link)."""
    values = [value for key, value, _line in keys if key.casefold() == name.casefold()]
    return next((value for value in values if value), values[0] if values else None)


def _integer(keys: list[tuple[str, str, int]], name: str, source: str, default: int) -> int:
    value = _first(keys, name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        line = next(line for key, v, line in keys if key.casefold() == name.casefold() and v == value)
        raise ImportFormatError(
            _("Line {line} of {source}: {key} must be a number, not {value}.").format(line=line, source=source, key=name, value=repr(value[:40]))
        ) from None


# -- rasphone.pbk ------------------------------------------------------------------------------

# Phone-book settings SSTP VPN honours; every other setting with a non-default value is named in a note.
_PBK_IGNORED_UNLESS = {
    "IpAssign": "1",  # 2: a fixed address of the user's choosing
    "IpNameAssign": "1",  # 2: fixed DNS servers
    "IpDnsSuffix": "",
    "CustomDialDll": "",
    "CustomRasDialDll": "",
    "PrerequisiteEntry": "",
    "AutoLogon": "0",  # 1: sign in with the Windows account
    "IpSecFlags": "0",
    "DisableClassBasedDefaultRoute": "0",
    "IpInterfaceMetric": "0",
}


def _parse_phonebook(groups: list[Group], source: str) -> ImportResult:
    entries: list[ImportedProfile] = []
    file_notes: list[str] = []
    for raw_name, section_line, keys in groups:
        label = clean_name(raw_name) or _("(the entry at line {line})").format(line=section_line)
        phone_number = _first(keys, "PhoneNumber")
        if phone_number is None and _first(keys, "VpnStrategy") is None:
            file_notes.append(
                _("The section [{label}] at line {line} is not a phone-book entry (no PhoneNumber): skipped.").format(label=label, line=section_line)
            )
            continue
        strategy = _integer(keys, "VpnStrategy", source, 0)
        if strategy not in PBK_SSTP_STRATEGIES:
            kind = pbk_other_strategies().get(strategy) or _("VPN type {number}").format(number=strategy)
            file_notes.append(
                _("{label} is not an SSTP entry (VpnStrategy={strategy}, {kind}): skipped.").format(label=repr(label), strategy=strategy, kind=kind)
            )
            continue
        if len(entries) >= MAX_PROFILES:
            file_notes.append(
                _("Only the first {count} SSTP entries were read; {label} and later ones were left out.").format(
                    count=MAX_PROFILES, label=repr(label)
                )
            )
            break
        try:
            host, port = parse_endpoint(phone_number or "")
        except EndpointError as error:
            file_notes.append(_("{label} was skipped: its PhoneNumber (the server) cannot be read. {reason}").format(label=repr(label), reason=error))
            continue
        notes: list[str] = []
        auth = _integer(keys, "AuthRestrictions", source, AR_MSCHAP2)
        excluded = _integer(keys, "ExcludedProtocols", source, 0)
        profile = Profile(
            id="",
            name="",
            host=host,
            port=port,
            allow_pap=bool(auth & AR_PAP),
            allow_chap_md5=bool(auth & AR_MD5CHAP),
            full_tunnel=_integer(keys, "IpPrioritizeRemote", source, 1) != 0,
            ipv6=not excluded & RASNP_IPV6,
            auto_reconnect=_integer(keys, "RedialOnLinkFailure", source, 0) != 0,
        )
        profile = _named(profile, raw_name, notes)
        notes.append(windows_user_note())
        if auth & (AR_PAP | AR_MD5CHAP):
            if auth & AR_PAP and auth & AR_MD5CHAP:
                # Translators: the names of two sign-in methods, as in "Windows allowed PAP and CHAP-MD5"
                allowed = _("{first} and {second}").format(first="PAP", second="CHAP-MD5")
            else:
                allowed = "PAP" if auth & AR_PAP else "CHAP-MD5"
            notes.append(
                _(
                    "Windows allowed {methods} for it, so the profile allows {methods} too "
                    "(weak: turn it off in the editor unless the server needs it)."
                ).format(methods=allowed)
            )
        if auth & (AR_SPAP | AR_MSCHAP):
            notes.append(_("SPAP and MS-CHAP (version 1) were allowed in Windows; SSTP VPN does not offer them."))
        if auth & AR_EAP:
            eap_type = _integer(keys, "CustomAuthKey", source, 0)
            what = eap_types().get(eap_type) or _("EAP type {number}").format(number=eap_type)
            if eap_type != 26:
                notes.append(
                    _(
                        "Windows signs in with {method}, whose settings the phone book keeps in a form SSTP VPN cannot read: "
                        "the profile uses the password method; choose the sign-in method in the editor."
                    ).format(method=what)
                )
        differing = sorted(
            name for name, default in _PBK_IGNORED_UNLESS.items() if (value := _first(keys, name)) is not None and value not in ("", default)
        )
        if differing:
            notes.append(_("Left out (not supported): {settings}.").format(settings=", ".join(differing)))
        entries.append(ImportedProfile(profile, tuple(notes)))
    # Translators: the kind of file, as in "Imported 2 profiles from a Windows phone book (rasphone.pbk)"
    return ImportResult(_("a Windows phone book (rasphone.pbk)"), tuple(entries), tuple(file_notes))


def windows_user_note() -> str:
    """The note on every phone-book entry that it has no user name (dropped when one is given)."""
    return _("Windows keeps the user name and password outside the phone book: give the user name, and the password when connecting.")


# -- NetworkManager keyfile --------------------------------------------------------------------

_NM_VPN_TAKEN = {
    "service-type",
    "gateway",
    "user",
    "domain",
    "ca-cert",
    "proxy-server",
    "proxy-port",
    "proxy-user",
    "mtu",
    "refuse-pap",
    "refuse-chap",
}
_NM_NOT_SETTINGS = {"password-flags", "proxy-password-flags", "tls-user-key-secret-flags", "uuid", "refuse-eap", "refuse-mschap", "refuse-mschapv2"}
_NM_UNSUPPORTED = ("ignore-cert-warn", "connection-type", "tls-ext")


def _nm_unsupported_why() -> dict[str, str]:
    """network-manager-sstp settings SSTP VPN does not take, and why (the end of a note)."""
    return {
        "ignore-cert-warn": _("SSTP VPN never ignores a certificate problem; it shows an unknown certificate and asks before trusting it"),
        "connection-type": _("certificate sign-in (tls) is set in the editor: choose EAP-TLS and its certificate file there"),
        "tls-ext": _("SSTP VPN always sends the server name (SNI)"),
    }


def _unescape(value: str) -> str:
    """GLib key-file escapes: \\s \\n \\t \\r \\\\."""
    out, chars = [], iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}.get(following, "\\" + following))
        else:
            out.append(char)
    return "".join(out)


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "true", "1")


def _parse_nmconnection(groups: list[Group], source: str) -> ImportResult:
    by_name: dict[str, dict[str, tuple[str, int]]] = {}
    for name, _line, keys in groups:
        table = by_name.setdefault(name.casefold(), {})
        for key, text, line in keys:
            table.setdefault(key, (_unescape(text), line))  # GLib keeps the first of a repeated key
    connection, vpn = by_name.get("connection", {}), by_name.get("vpn", {})
    kind = connection.get("type", ("", 0))[0]
    if kind != "vpn":
        raise ImportFormatError(
            _("{source} is a NetworkManager connection of type {kind}, not a VPN: there is nothing to import.").format(
                source=source, kind=repr(kind or _("(none)"))
            )
        )
    service = vpn.get("service-type", ("", 0))[0]
    if service != NM_SSTP_SERVICE:
        raise ImportFormatError(
            _("{source} is a {service} connection, not SSTP ({sstp_service}): there is nothing to import.").format(
                source=source, service=service or "VPN", sstp_service=NM_SSTP_SERVICE
            )
        )

    def value(key: str, table: dict[str, tuple[str, int]] = vpn) -> str:
        return table.get(key, ("", 0))[0]

    gateway = value("gateway")
    if not gateway:
        raise ImportFormatError(_("{source} has no gateway (the server) in its [vpn] section.").format(source=source))
    try:
        host, port = parse_endpoint(gateway)
    except EndpointError as error:
        raise ImportFormatError(
            _("The gateway on line {line} of {source} cannot be read: {reason}").format(line=vpn["gateway"][1], source=source, reason=error)
        ) from None
    notes: list[str] = []
    user = value("user")
    if value("domain"):
        user = f"{value('domain')}\\{user}"
    proxy = ProxyChoice()
    if value("proxy-server"):
        proxy_port = value("proxy-port") or "8080"
        if not proxy_port.isdigit() or not 0 < int(proxy_port) < 65536:
            raise ImportFormatError(
                _("Line {line} of {source}: proxy-port must be a port number, not {value}.").format(
                    line=vpn["proxy-port"][1], source=source, value=repr(proxy_port[:20])
                )
            )
        proxy = ProxyChoice(ProxyMode.MANUAL, value("proxy-server"), int(proxy_port), value("proxy-user"))
    mtu_text = value("mtu")
    ipv4, ipv6 = by_name.get("ipv4", {}), by_name.get("ipv6", {})
    routes = []
    for key, (text, _line) in sorted(ipv4.items(), key=lambda item: item[1][1]):
        if key.startswith("route") and key[len("route") :].isdigit():
            routes.append(text.split(",")[0].strip())
    if len(routes) > MAX_EXTRA_ROUTES:
        notes.append(_("Only the first {count} of its {total} routes were taken.").format(count=MAX_EXTRA_ROUTES, total=len(routes)))
        routes = routes[:MAX_EXTRA_ROUTES]
    profile = Profile(
        id="",
        name="",
        host=host,
        port=port,
        username=user,
        ca_file=value("ca-cert").removeprefix("file://"),
        allow_pap=bool(value("refuse-pap")) and not _yes(value("refuse-pap")),
        allow_chap_md5=bool(value("refuse-chap")) and not _yes(value("refuse-chap")),
        full_tunnel=not _yes(value("never-default", ipv4)),
        extra_routes=tuple(routes),
        use_vpn_dns=not _yes(value("ignore-auto-dns", ipv4)),
        ipv6=value("method", ipv6) in ("auto", "dhcp", "manual"),
        proxy=proxy,
    )
    if mtu_text:
        if not mtu_text.isdigit():
            raise ImportFormatError(
                _("Line {line} of {source}: mtu must be a number, not {value}.").format(line=vpn["mtu"][1], source=source, value=repr(mtu_text[:20]))
            )
        profile = replace(profile, mtu=int(mtu_text))
    profile = _named(profile, value("id", connection) or gateway, notes)
    for key, why in _nm_unsupported_why().items():
        setting = value(key)
        if setting and not (key == "connection-type" and setting == "password") and not (key != "connection-type" and not _yes(setting)):
            notes.append(_("{key}={value} was left out: {why}.").format(key=key, value=setting, why=why))
    left_out = sorted(set(vpn) - _NM_VPN_TAKEN - _NM_NOT_SETTINGS - set(_NM_UNSUPPORTED))
    if left_out:
        notes.append(_("Left out (not supported): {settings}.").format(settings=", ".join(left_out)))
    if "vpn-secrets" in by_name:
        notes.append(_("The saved passwords ([vpn-secrets]) were not read: enter the password when connecting."))
    # Translators: the kind of file, as in "Imported 1 profile from a NetworkManager connection"
    return ImportResult(_("a NetworkManager connection"), (ImportedProfile(profile, tuple(notes)),))


# -- our export (and profiles.toml) ------------------------------------------------------------

_EXPORT_FIELDS = set(Profile.__dataclass_fields__) - {"id"}


def _parse_export(text: str, source: str) -> ImportResult:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ImportFormatError(_("{source} is not valid TOML ({reason}).").format(source=source, reason=error)) from None
    version = document.get("sstp_vpn_export", document.get("schema"))
    if type(version) is not int:
        raise ImportFormatError(_("{source} has no sstp_vpn_export number: it is not an SSTP VPN export.").format(source=source))
    if version > EXPORT_VERSION:
        raise ImportFormatError(
            _("{source} was written by a newer SSTP VPN (format {version}; this version reads {supported}): update SSTP VPN.").format(
                source=source, version=version, supported=EXPORT_VERSION
            )
        )
    tables = document.get("profiles", [])
    if not isinstance(tables, list):
        raise ImportFormatError(_("{source}: the key profiles is not a list of [[profiles]] tables.").format(source=source))
    entries: list[ImportedProfile] = []
    file_notes: list[str] = []
    for position, table in enumerate(tables, 1):
        if len(entries) >= MAX_PROFILES:
            file_notes.append(_("Only the first {count} profiles were read; the others were left out.").format(count=MAX_PROFILES))
            break
        if not isinstance(table, dict):
            raise ImportFormatError(_("{source}: profile {position} is not a table.").format(source=source, position=position))
        notes: list[str] = []
        unknown = sorted(key for key in table if key not in _EXPORT_FIELDS and key != "id")
        if unknown:
            notes.append(_("Left out (unknown settings): {settings}.").format(settings=", ".join(unknown)))
        try:
            profile = _profile_from_table({**table, "id": "imported"}, position, Path(source), advice=False)
        except (ProfileFileError, TypeError) as error:
            raise ImportFormatError(str(error)) from None
        raw_name = profile.name
        profile = _named(replace(profile, id=""), raw_name, notes)
        entries.append(ImportedProfile(profile, tuple(notes)))
    # Translators: the kind of file, as in "Imported 3 profiles from an SSTP VPN export"
    return ImportResult(_("an SSTP VPN export"), tuple(entries), tuple(file_notes))
