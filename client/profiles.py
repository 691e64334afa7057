"""Connection profiles: the model, its validation, and the per-user TOML store.

One file, `profiles.toml` in the user's config folder (platformdirs), shared by the tray app and
`sstp-vpn --profile`. It never holds a password: those live in the OS keyring, keyed by the
profile's `id`, which never changes (renaming keeps the password). Every change re-reads the file,
applies itself and writes a complete new file atomically (temporary file, fsync, rename), so a
crash leaves either the old or the new file, and two programs editing it do not lose whole files.

    schema = 1
    last_used = "3f2a..."
    [[profiles]]
    id = "3f2a..."
    name = "Office"
    host = "vpn.example.com"
    ...
"""

from __future__ import annotations

import enum
import ipaddress
import os
import re
import tempfile
import tomllib
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from .certificate_files import ca_file_problem
from .core.i18n import _
from .core.types import KillSwitchMode
from .eap_options import settings_problems
from .endpoint import format_endpoint, is_ip_address

SCHEMA_VERSION = 1
APP_DIR_NAME = "sstp-vpn"
PROFILES_FILE = "profiles.toml"
MIN_MTU = 576  # the smallest MRU PPP must accept (RFC 1661 allows less, IPv4 needs 576)
MAX_MTU = 1500  # the engine's default MRU; SSTP over a 1500-byte path cannot carry more
MAX_EXTRA_ROUTES = 32

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class ProxyMode(enum.Enum):
    NONE = "none"
    SYSTEM = "system"  # the environment's / desktop's proxy for HTTPS
    PAC = "pac"  # a proxy auto-config file: pac_url, or found by WPAD when it is ""
    MANUAL = "manual"


class Revocation(enum.Enum):
    """What a revocation check that cannot be done (no CRL or OCSP answer) means for the connection;
    a certificate found revoked is always refused."""

    SOFT = "soft"  # connect, with a warning in the log and the status window
    HARD = "hard"  # refuse to connect


@dataclass(frozen=True)
class ProxyChoice:
    mode: ProxyMode = ProxyMode.NONE
    host: str = ""  # MANUAL only
    port: int = 0
    username: str = ""  # its password is in the keyring
    pac_url: str = ""  # PAC only: http(s)://…/proxy.pac; "" means WPAD discovery
    allow_basic: bool = True  # False: never send the proxy password with Basic (in clear to the proxy)

    @property
    def url(self) -> str:
        """http://[user@]host:port for a manual proxy, else ""."""
        if self.mode is not ProxyMode.MANUAL:
            return ""
        from urllib.parse import quote

        user = f"{quote(self.username, safe='')}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{user}{host}:{self.port}"

    @classmethod
    def manual_from_url(cls, url: str) -> ProxyChoice:
        """Parse http://[user@]host:port. Raises ValueError with a sentence; a password in the URL
        is refused, because it would end up in the profile file."""
        from .proxy import ProxySettings  # h11: not needed to read profiles

        settings = ProxySettings.parse(url)
        if settings.password is not None:
            raise ValueError(_("Leave the password out of the proxy URL: it goes in the proxy password field, which keeps it in the system keyring."))
        return cls(ProxyMode.MANUAL, settings.host, settings.port, settings.username or "")


@dataclass(frozen=True)
class Profile:
    id: str
    name: str
    host: str
    port: int = 443
    username: str = ""
    sni: str = ""  # TLS server name to send and check; "" means the host
    ca_file: str = ""  # extra CA certificates (PEM) to trust; "" means the system store only
    pin_sha256: str = ""  # also require this SHA-256 of the server certificate; "" means none
    pinned_at: str = ""  # when the user trusted the pinned certificate (ISO 8601 UTC); "" unknown
    allow_pap: bool = False
    allow_chap_md5: bool = False  # also EAP-MD5
    full_tunnel: bool = True  # False: only the VPN's network goes through the tunnel
    extra_routes: tuple[str, ...] = ()  # more networks through the tunnel, e.g. "10.20.0.0/16"
    use_vpn_dns: bool = True  # False: keep this machine's DNS servers
    ipv6: bool = False
    kill_switch: KillSwitchMode = KillSwitchMode.OFF  # block all but the tunnel: off, while connected, always
    kill_switch_allow_lan: bool = False  # the kill switch lets the local networks through
    mtu: int = MAX_MTU
    auto_reconnect: bool = False
    proxy: ProxyChoice = field(default_factory=ProxyChoice)
    # Sign-in method (eap_options.py): "password" (MS-CHAPv2 / EAP-MSCHAPv2), "eap-tls" or "peap".
    # For EAP-TLS the keyring's secret for this profile is the key's passphrase.
    auth_method: str = "password"
    client_certificate: str = ""  # EAP-TLS: PEM (certificate + key) or PKCS#12
    eap_server_name: str = ""  # the name in the EAP (NPS/RADIUS) server's certificate
    eap_ca_file: str = ""  # CA certificates trusted for the EAP server besides the system store
    eap_pin_sha256: str = ""  # SHA-256 fingerprint the EAP server's certificate must have
    eap_tls13: bool = False  # EAP-TLS over TLS 1.3 (RFC 9190)
    revocation: Revocation = Revocation.SOFT  # the server's chain is checked by CRL and OCSP
    # True: the password (or EAP-TLS key passphrase) is kept in the keyring. False: "ask every
    # time" (one-time passwords): it is asked for at each connection and never kept.
    remember_password: bool = True

    @property
    def server(self) -> str:
        return format_endpoint(self.host, self.port)


def new_profile_id() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------------------------
# Validation: one sentence per field that is wrong


def profile_problems(profile: Profile, others: tuple[Profile, ...] | list[Profile] = ()) -> dict[str, str]:
    """Field name -> what is wrong with it and how to fix it. Empty when the profile is usable.
    `others` are the other saved profiles (for the unique-name rule)."""
    problems: dict[str, str] = {}
    name = profile.name.strip()
    if not name:
        problems["name"] = _("Give the profile a name.")
    elif any(other.name.strip().casefold() == name.casefold() and other.id != profile.id for other in others):
        problems["name"] = _("Another profile is already called {name}: choose another name.").format(name=repr(name))
    host_problem = host_name_problem(profile.host)
    if host_problem:
        problems["host"] = host_problem
    if not 0 < profile.port < 65536:
        problems["port"] = _("The port must be a number from 1 to 65535.")
    if not profile.username.strip():
        problems["username"] = _("Enter the user name (HUB\\user for SoftEther hubs).")
    if profile.sni and host_name_problem(profile.sni):
        problems["sni"] = _("The TLS server name must be a host name like vpn.example.com, or empty.")
    if profile.ca_file:
        ca_problem = ca_file_problem(Path(profile.ca_file))
        if ca_problem:
            problems["ca_file"] = ca_problem
    problems.update(
        settings_problems(profile.auth_method, profile.client_certificate, profile.eap_server_name, profile.eap_ca_file, profile.eap_pin_sha256)
    )
    if profile.pin_sha256:
        from . import trust  # cryptography: only to check a pin

        try:
            trust.parse_pin(profile.pin_sha256)
        except ValueError as error:
            problems["pin_sha256"] = str(error)
    routes_problem = extra_routes_problem(profile.extra_routes)
    if routes_problem:
        problems["extra_routes"] = routes_problem
    if not MIN_MTU <= profile.mtu <= MAX_MTU:
        problems["mtu"] = _("The MTU must be from {minimum} to {maximum}.").format(minimum=MIN_MTU, maximum=MAX_MTU)
    proxy = profile.proxy
    if proxy.mode is ProxyMode.MANUAL and (host_name_problem(proxy.host) or not 0 < proxy.port < 65536):
        problems["proxy"] = _("Write the proxy as http://host:port (or http://user@host:port).")
    if proxy.mode is ProxyMode.PAC and proxy.pac_url and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", proxy.pac_url, re.IGNORECASE):
        problems["pac_url"] = _("Write the PAC file's address as http://host/proxy.pac, or leave it empty to find it by WPAD.")
    return problems


def extra_routes_problem(routes: tuple[str, ...] | list[str]) -> str | None:
    """None when every entry is a network like 10.20.0.0/16 or fd00:1::/64, else a sentence."""
    if len(routes) > MAX_EXTRA_ROUTES:
        return _("At most {count} extra routes: join neighbouring networks into larger ones.").format(count=MAX_EXTRA_ROUTES)
    for text in routes:
        try:
            network = ipaddress.ip_network(text, strict=True)
        except ValueError:
            return _(
                "{text} is not a network: write it like 10.20.0.0/16 (the address with its host bits zero, a slash and the prefix length)."
            ).format(text=repr(text))
        if network.prefixlen == 0:
            return _('{text} would route everything: choose "all traffic through the VPN" instead.').format(text=text)
    return None


def host_name_problem(text: str) -> str | None:
    """None for a DNS name or an IP address, else a sentence."""
    host = text.strip()
    if not host:
        return _("Enter the server's host name or address.")
    if host != text or " " in host:
        return _("The host name must not contain spaces.")
    if is_ip_address(host):
        return None
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(_HOST_LABEL.match(label) for label in name.split(".")):
        return _("{host} is not a valid host name: use letters, digits, dots and hyphens, like vpn.example.com.").format(host=repr(host))
    return None


# ---------------------------------------------------------------------------------------------
# The store


class ProfileFileError(Exception):
    """The profile file cannot be read or written; the message is the sentence for the user."""


class UnknownProfile(ProfileFileError):
    pass


@dataclass(frozen=True)
class ProfileBook:
    """Everything in the file."""

    profiles: tuple[Profile, ...] = ()
    last_used: str = ""  # a profile id, for the tray's left click

    def by_id(self, profile_id: str) -> Profile | None:
        return next((p for p in self.profiles if p.id == profile_id), None)

    def find(self, name_or_id: str) -> Profile | None:
        """By exact id, else by name (case-insensitive)."""
        wanted = name_or_id.strip().casefold()
        return self.by_id(name_or_id) or next((p for p in self.profiles if p.name.casefold() == wanted), None)


def default_profiles_path() -> Path:
    import platformdirs

    return platformdirs.user_config_path(APP_DIR_NAME) / PROFILES_FILE


class ProfileStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else default_profiles_path()

    @property
    def certificates_dir(self) -> Path:
        """Where pinned server certificates are kept (see `save_pinned_certificate`)."""
        return self.path.parent / "certificates"

    def load(self) -> ProfileBook:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return ProfileBook()
        except OSError as error:
            raise ProfileFileError(_("The profile file {path} cannot be read ({reason}).").format(path=self.path, reason=error.strerror)) from None
        try:
            document = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ProfileFileError(
                _("The profile file {path} is damaged ({reason}): fix it or move it aside.").format(path=self.path, reason=error)
            ) from None
        return _book_from_document(document, self.path)

    def save(self, profile: Profile) -> Profile:
        """Add the profile, or replace the one with its id. Raises ProfileFileError when it is not
        valid (first problem's sentence)."""
        book = self.load()
        others = [p for p in book.profiles if p.id != profile.id]
        problems = profile_problems(profile, others)
        if problems:
            raise ProfileFileError(next(iter(problems.values())))
        profile = replace(profile, name=profile.name.strip())
        if book.by_id(profile.id) is None:
            profiles = book.profiles + (profile,)
        else:
            profiles = tuple(profile if p.id == profile.id else p for p in book.profiles)
        self._write(replace(book, profiles=profiles))
        return profile

    def remove(self, profile_id: str) -> Profile:
        """Remove it (and its pinned certificate, if we saved one). Returns what was removed.
        The caller forgets its secrets (SecretStore.forget_profile)."""
        book = self.load()
        profile = book.by_id(profile_id)
        if profile is None:
            raise UnknownProfile(_("There is no profile with id {id}.").format(id=profile_id))
        last_used = "" if book.last_used == profile_id else book.last_used
        self._write(ProfileBook(tuple(p for p in book.profiles if p.id != profile_id), last_used))
        if profile.ca_file and Path(profile.ca_file).parent == self.certificates_dir:
            Path(profile.ca_file).unlink(missing_ok=True)
        return profile

    def set_last_used(self, profile_id: str) -> None:
        book = self.load()
        if book.last_used != profile_id and book.by_id(profile_id) is not None:
            self._write(replace(book, last_used=profile_id))

    def save_pinned_certificate(self, profile_id: str, certificate_pem: bytes) -> Path:
        """Keep a server certificate the user chose to trust, as the profile's CA file."""
        path = self.certificates_dir / f"{profile_id}.pem"
        _write_atomically(path, certificate_pem)
        return path

    def _write(self, book: ProfileBook) -> None:
        document: dict[str, Any] = {"schema": SCHEMA_VERSION}
        if book.last_used:
            document["last_used"] = book.last_used
        document["profiles"] = [_profile_to_table(p) for p in book.profiles]
        _write_atomically(self.path, tomli_w.dumps(document).encode("utf-8"))


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows cannot open a folder
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


# ---------------------------------------------------------------------------------------------
# TOML mapping (explicit, so the file format is visible in one place)


def _profile_to_table(profile: Profile) -> dict[str, Any]:
    table = {key: value for key, value in asdict(profile).items() if key != "proxy"}
    table["extra_routes"] = list(profile.extra_routes)
    table["revocation"] = profile.revocation.value
    table["kill_switch"] = profile.kill_switch.value
    proxy = profile.proxy
    table["proxy"] = {"mode": proxy.mode.value}
    if proxy.mode is ProxyMode.MANUAL:
        table["proxy"].update(host=proxy.host, port=proxy.port)
        if proxy.username:
            table["proxy"]["username"] = proxy.username
    if proxy.mode is ProxyMode.PAC and proxy.pac_url:
        table["proxy"]["pac_url"] = proxy.pac_url
    if proxy.mode is ProxyMode.PAC and proxy.username:  # for the proxies the PAC file names (NTLM, Basic)
        table["proxy"]["username"] = proxy.username
    if not proxy.allow_basic:
        table["proxy"]["allow_basic"] = False
    return table


def _book_from_document(document: dict[str, Any], path: Path) -> ProfileBook:
    schema = document.get("schema")
    if not isinstance(schema, int):
        raise ProfileFileError(_("The profile file {path} has no schema number: fix it or move it aside.").format(path=path))
    if schema > SCHEMA_VERSION:
        raise ProfileFileError(
            _(
                "The profile file {path} was written by a newer version of SSTP VPN "
                "(schema {schema}; this version reads {supported}): update SSTP VPN."
            ).format(path=path, schema=schema, supported=SCHEMA_VERSION)
        )
    tables = document.get("profiles", [])
    if not isinstance(tables, list):
        raise ProfileFileError(_("The profile file {path} is damaged (profiles is not a list): fix it or move it aside.").format(path=path))
    profiles = tuple(_profile_from_table(table, position, path) for position, table in enumerate(tables, 1))
    last_used = document.get("last_used", "")
    return ProfileBook(profiles, last_used if isinstance(last_used, str) else "")


_EXPECTED = {
    "id": str,
    "name": str,
    "host": str,
    "port": int,
    "username": str,
    "sni": str,
    "ca_file": str,
    "pin_sha256": str,
    "pinned_at": str,
    "allow_pap": bool,
    "allow_chap_md5": bool,
    "full_tunnel": bool,
    "ipv6": bool,
    "kill_switch_allow_lan": bool,
    "mtu": int,
    "auto_reconnect": bool,
    "use_vpn_dns": bool,
    "auth_method": str,
    "client_certificate": str,
    "eap_server_name": str,
    "eap_ca_file": str,
    "eap_pin_sha256": str,
    "eap_tls13": bool,
    "remember_password": bool,
}


def _profile_from_table(table: Any, position: int, path: Path, advice: bool = True) -> Profile:
    """`advice`: the error's sentence ends with what to do about the file (the profile file);
    without it, just with a full stop (a file being imported, whose error says so itself)."""

    def damaged(problem: str, **fields: str) -> ProfileFileError:
        """`problem`: a translated one with {position} and {path} (and `fields`) to fill in."""
        text = problem.format(position=position, path=path, **fields)
        if advice:
            return ProfileFileError(_("{problem}: fix it or move the file aside.").format(problem=text))
        return ProfileFileError(f"{text}.")

    if not isinstance(table, dict):
        raise damaged(_("Profile {position} in {path} is not a table"))
    values: dict[str, Any] = {}
    for key, kind in _EXPECTED.items():
        if key not in table:
            continue
        value = table[key]
        if type(value) is not kind:  # bool is an int subclass: compare exactly
            raise damaged(_("Profile {position} in {path} has a {key} that is not a {kind}"), key=key, kind=kind.__name__)
        values[key] = value
    routes = table.get("extra_routes", [])
    if not isinstance(routes, list) or not all(isinstance(route, str) for route in routes):
        raise damaged(_("Profile {position} in {path} has extra_routes that are not a list of networks"))
    values["extra_routes"] = tuple(routes)
    try:
        values["revocation"] = Revocation(table.get("revocation", Revocation.SOFT.value))
    except ValueError:
        raise damaged(_("Profile {position} in {path} has an unknown revocation setting (soft or hard)")) from None
    try:
        values["kill_switch"] = KillSwitchMode(table.get("kill_switch", KillSwitchMode.OFF.value))
    except ValueError:
        raise damaged(_("Profile {position} in {path} has an unknown kill_switch setting (off, connected or always)")) from None
    for required in ("id", "name", "host"):
        if not values.get(required):
            raise damaged(_("Profile {position} in {path} has no {key}"), key=required)
    proxy_table = table.get("proxy", {})
    if not isinstance(proxy_table, dict):
        raise damaged(_("Profile {position} in {path} has a proxy that is not a table"))
    try:
        mode = ProxyMode(proxy_table.get("mode", "none"))
    except ValueError:
        raise damaged(_("Profile {position} in {path} has an unknown proxy mode (none, system, pac or manual)")) from None
    allow_basic = proxy_table.get("allow_basic", True)
    if type(allow_basic) is not bool:
        raise damaged(_("Profile {position} in {path} has a proxy allow_basic that is not true or false"))
    proxy = ProxyChoice(mode, allow_basic=allow_basic)
    if mode is ProxyMode.MANUAL:
        host, port, username = proxy_table.get("host"), proxy_table.get("port"), proxy_table.get("username", "")
        if not isinstance(host, str) or type(port) is not int or not isinstance(username, str):
            raise damaged(_("Profile {position} in {path} has a manual proxy without a host and port"))
        proxy = ProxyChoice(mode, host, port, username, allow_basic=allow_basic)
    if mode is ProxyMode.PAC:
        pac_url, username = proxy_table.get("pac_url", ""), proxy_table.get("username", "")
        if not isinstance(pac_url, str):
            raise damaged(_("Profile {position} in {path} has a proxy pac_url that is not text"))
        if not isinstance(username, str):
            raise damaged(_("Profile {position} in {path} has a proxy username that is not text"))
        proxy = ProxyChoice(mode, username=username, pac_url=pac_url, allow_basic=allow_basic)
    return Profile(**values, proxy=proxy)
