"""What this machine's settings say about a proxy for https://<server>: the "system" proxy choice.

One entry point, `system_proxy_for(host)`, answers with a SystemProxy: the manual HTTP proxy to use
for the server (None when there is none or the server is on the bypass list), the auto-config (PAC)
URL, whether the proxy is to be found automatically (WPAD), and where the answer came from.

Sources, the first that sets something wins:
- everywhere: the environment, https_proxy / HTTPS_PROXY / all_proxy / ALL_PROXY with no_proxy;
- Linux: GNOME (and the desktops that share its settings: Cinnamon, MATE, Budgie...) through the
  `gsettings` program, org.gnome.system.proxy; then KDE's ~/.config/kioslaverc, read when the
  session is KDE's or the file sets a proxy;
- Windows: WinINet's per-user settings in the registry (what Edge, Chrome and Windows itself use);
- macOS: `scutil --proxy`, the System Configuration's proxies of the current network service.

Each source is read in two steps: the raw values (a program's output, a file, registry values), then
a pure function that turns them into a SystemProxy, so the second step is unit-tested with recorded
values. The bypass lists follow each system's own rules: a name entry matches the server's name
(and, except on Windows, its subdomains), an address or a range (10.0.0.0/8) matches the server's
address when the profile names the server by address, or one of `addresses` the caller passes.
"""

from __future__ import annotations

import fnmatch
import importlib
import ipaddress
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core.i18n import _
from .proxy import ProxySettings

# Where an answer came from (SystemProxy.source); source_name() gives the words diagnose prints.
ENVIRONMENT = "environment"
GNOME = "GNOME"
KDE = "KDE"
WINDOWS = "Windows"
MACOS = "macOS"

PROGRAM_TIMEOUT = 5.0  # seconds for gsettings / scutil: both answer in milliseconds
ENVIRONMENT_PROXIES = ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
REVERSED = "ReversedException"  # SystemProxy.bypassed_by when KDE's list names the hosts that DO use the proxy


class SystemProxyError(ValueError):
    """The setting exists but cannot be used (a SOCKS-only proxy, a malformed address); the message is
    the sentence for the user."""


@dataclass(frozen=True)
class SystemProxy:
    """What the system says for one server. Everything that is set is kept (Windows and macOS may set
    WPAD, a PAC URL and a manual proxy at once, tried in that order): `mode` is the first that applies."""

    source: str = ""  # ENVIRONMENT, GNOME, KDE, WINDOWS, MACOS; "" when nothing says anything
    proxy: ProxySettings | None = None  # the manual proxy for this server (None: none set, or bypassed)
    pac_url: str = ""  # the auto-config (PAC) script's URL
    auto_detect: bool = False  # find the PAC script by WPAD
    bypassed_by: str = ""  # the bypass entry the server matched (REVERSED: not on KDE's list of proxied hosts)

    @property
    def mode(self) -> str:
        """ "auto-detect", "auto-config", "manual" or "none", the first that applies."""
        if self.auto_detect:
            return "auto-detect"
        if self.pac_url:
            return "auto-config"
        if self.proxy is not None:
            return "manual"
        return "none"

    @property
    def pac_urls(self) -> tuple[str, ...]:
        """The auto-config scripts to try, in order, as pac.PacSource takes them: "" for WPAD, then
        the PAC URL; after them comes `proxy`, then a direct connection."""
        return (("",) if self.auto_detect else ()) + ((self.pac_url,) if self.pac_url else ())

    def describe(self, host: str) -> str:
        """The sentence `diagnose` prints, e.g. "System proxy (GNOME): proxy.corp:3128." """
        source = source_name(self.source)
        if not self.source:
            return _("System proxy: none (neither the environment nor the desktop settings name a proxy).")
        sentences = []
        if self.auto_detect:
            sentences.append(_("System proxy ({source}): found automatically (WPAD).").format(source=source))
        if self.pac_url and sentences:
            sentences.append(_("Then the auto-config script {url}.").format(url=self.pac_url))
        elif self.pac_url:
            sentences.append(_("System proxy ({source}): the auto-config script {url}.").format(source=source, url=self.pac_url))
        if self.proxy is not None:
            if sentences:
                sentences.append(_("Then the proxy {proxy}.").format(proxy=self.proxy.address))
            else:
                sentences.append(_("System proxy ({source}): {proxy}.").format(source=source, proxy=self.proxy.address))
        if not sentences:
            if self.bypassed_by == REVERSED:
                sentences.append(
                    _("System proxy ({source}): none for {host}, which is not among the hosts the proxy is used for.").format(
                        source=source, host=host
                    )
                )
            elif self.bypassed_by:
                sentences.append(
                    _("System proxy ({source}): none for {host}, which matches the exception {entry}.").format(
                        source=source, host=host, entry=self.bypassed_by
                    )
                )
            else:
                sentences.append(_("System proxy ({source}): none.").format(source=source))
        return " ".join(sentences)


def source_name(source: str) -> str:
    """The words for a source in a sentence: "the environment", or the desktop's or system's name."""
    if source == ENVIRONMENT:
        return _("the environment")
    return source


# -- the entry point -----------------------------------------------------------------------------


def system_proxy_for(
    host: str,
    port: int = 443,
    environ: Mapping[str, str] | None = None,
    *,
    platform: str | None = None,
    addresses: Iterable[str] = (),
    run: Callable[[list[str], Mapping[str, str]], str | None] | None = None,
) -> SystemProxy:
    """What the environment, then the desktop or system, says for https://host:port.

    `environ` (default os.environ) is both where the proxy variables are read and the environment
    the desktop is read in (HOME, XDG_CONFIG_HOME, XDG_CURRENT_DESKTOP, the session bus); `run` runs
    a program and gives its output, None when it cannot (a seam for tests). Raises SystemProxyError."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    runner = run or _run
    known = tuple(addresses)
    found = from_environment(env, host, port, known)
    if found is not None:
        return found
    if platform == "win32":
        values = read_windows()
        return from_windows(values, host, port, known) if values is not None else SystemProxy()
    if platform == "darwin":
        output = runner(["scutil", "--proxy"], env)
        return from_scutil(output, host, port, known) if output is not None else SystemProxy()
    gnome = read_gnome(env, runner)
    gnome_says = from_gnome(gnome, host, port, known) if gnome is not None else None
    if gnome_says is not None and (gnome_says.mode != "none" or gnome_says.bypassed_by):
        return gnome_says
    kde_file = kioslaverc_path(env)
    text = _read_text(kde_file) if kde_file is not None else None
    kde_session = is_kde_session(env)
    if text is not None or kde_session:
        kde_says = from_kioslaverc(text or "", env, host, port, known)
        if kde_session or kde_says.mode != "none" or kde_says.bypassed_by:
            return kde_says
    return gnome_says or SystemProxy()


def _run(command: list[str], environ: Mapping[str, str]) -> str | None:
    """A program's standard output, or None when it is missing, fails or hangs."""
    program = shutil.which(command[0], path=environ.get("PATH") or os.defpath)
    if program is None:
        return None
    try:
        result = subprocess.run(
            [program, *command[1:]],
            env=dict(environ),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PROGRAM_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


# -- bypass lists --------------------------------------------------------------------------------


def _normal_host(host: str) -> str:
    name = host.strip().strip("[]").rstrip(".").lower()
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]").split("%")[0])
    except ValueError:
        return None


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """10.0.0.0/8, fe80::/10, and macOS's short 169.254/16."""
    base, _slash, length = text.partition("/")
    if ":" not in base and base.count(".") < 3 and base.replace(".", "").isdigit():
        base = ".".join((base.split(".") + ["0", "0", "0"])[:4])
    try:
        return ipaddress.ip_network(f"{base}/{length}", strict=False)
    except ValueError:
        return None


def bypass_entry(entries: Iterable[str], host: str, port: int, addresses: Iterable[str] = (), *, windows: bool = False) -> str:
    """The first entry of a bypass list that matches the server, "" when none does.

    Entries: "*" (everything); a name, "example.com" / ".example.com" / "*.example.com", which matches
    that name and its subdomains (Windows: a glob matched against the whole name, so "example.com"
    is that name only and "*.example.com" its subdomains); "<local>" (Windows, and macOS's
    ExcludeSimpleHostnames): a name without a dot; an address or a range, "10.1.2.3", "10.0.0.0/8",
    matched against the server's address; any of these with ":port"."""
    name = _normal_host(host)
    literal = _address(name)
    candidates = [literal] if literal is not None else []
    candidates += [address for address in map(_address, addresses) if address is not None]
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        rule = entry.lower()
        if rule.startswith("[") and "]" in rule:  # [fe80::1]:443
            inside, _bracket, rest = rule[1:].partition("]")
            if rest.startswith(":") and rest[1:].isdigit() and int(rest[1:]) != port:
                continue
            rule = inside
        elif rule.count(":") == 1 and rule.rsplit(":", 1)[1].isdigit():
            rule, entry_port = rule.rsplit(":", 1)
            if int(entry_port) != port:
                continue
        if rule == "*":
            return entry
        if rule == "<local>":
            if literal is None and "." not in name:
                return entry
            continue
        if "/" in rule:
            network = _network(rule)
            if network is not None and any(address in network for address in candidates):
                return entry
            continue
        address = _address(rule)
        if address is not None:
            if address in candidates:
                return entry
            continue
        if windows:
            if fnmatch.fnmatchcase(name, rule) or any(fnmatch.fnmatchcase(str(a), rule) for a in candidates):
                return entry
            continue
        if "*" in rule.lstrip("*."):  # a glob inside the name: 10.*, *corp*
            if fnmatch.fnmatchcase(name, rule) or any(fnmatch.fnmatchcase(str(a), rule) for a in candidates):
                return entry
            continue
        domain = _normal_host(rule.lstrip("*").lstrip("."))
        if domain and literal is None and (name == domain or name.endswith("." + domain)):
            return entry
    return ""


def _proxy(url: str, source: str) -> ProxySettings:
    """An HTTP proxy from a system setting; SystemProxyError with the reason when it cannot be used."""
    try:
        return ProxySettings.parse(url)
    except ValueError as error:
        raise SystemProxyError(
            _("The system proxy setting ({source}) cannot be used: {reason}").format(source=source_name(source), reason=error)
        ) from None


def _socks_only(source: str) -> SystemProxyError:
    return SystemProxyError(
        _(
            "The system proxy setting ({source}) names only a SOCKS proxy, which SSTP VPN cannot use: set an HTTP proxy there, "
            "or choose no proxy or a manual proxy in the profile."
        ).format(source=source_name(source))
    )


def _manual(source: str, url: str, bypass: Iterable[str], host: str, port: int, addresses: Iterable[str], **options: Any) -> SystemProxy:
    matched = bypass_entry(bypass, host, port, addresses, **options)
    if matched:
        return SystemProxy(source, bypassed_by=matched)
    return SystemProxy(source, _proxy(url, source))


# -- the environment -----------------------------------------------------------------------------


def from_environment(environ: Mapping[str, str], host: str, port: int = 443, addresses: Iterable[str] = ()) -> SystemProxy | None:
    """https_proxy / all_proxy (lower case first, as curl) with no_proxy; None when no variable is set."""
    url = next((environ[name] for name in ENVIRONMENT_PROXIES if environ.get(name, "").strip()), "")
    if not url:
        return None
    no_proxy = environ.get("no_proxy") or environ.get("NO_PROXY") or ""
    return _manual(ENVIRONMENT, url, no_proxy.split(","), host, port, addresses)


# -- GNOME ---------------------------------------------------------------------------------------

GNOME_SCHEMA = "org.gnome.system.proxy"


def read_gnome(environ: Mapping[str, str], run: Callable[[list[str], Mapping[str, str]], str | None] = _run) -> dict[str, Any] | None:
    """org.gnome.system.proxy and its children, {"mode": "manual", "https.host": "proxy", ...}, from one
    `gsettings list-recursively` (it reads dconf's file; no session bus needed); None without gsettings
    or the schema."""
    output = run(["gsettings", "list-recursively", GNOME_SCHEMA], environ)
    if not output:
        return None
    return parse_gsettings(output)


def parse_gsettings(output: str) -> dict[str, Any]:
    """`gsettings list-recursively` lines, "org.gnome.system.proxy.https port 3128", as values."""
    values: dict[str, Any] = {}
    for line in output.splitlines():
        schema, _space, rest = line.partition(" ")
        key, _space, text = rest.partition(" ")
        if not schema.startswith(GNOME_SCHEMA) or not key:
            continue
        child = schema.removeprefix(GNOME_SCHEMA).lstrip(".")
        values[f"{child}.{key}" if child else key] = _gvariant(text)
    return values


def _gvariant(text: str) -> Any:
    """The GVariant text forms gsettings prints for this schema: 'string', ['a', 'b'], @as [], 3128, true."""
    text = text.strip()
    if text.startswith("@"):  # a type annotation: @as []
        text = text.partition(" ")[2]
    if text in ("true", "false"):
        return text == "true"
    if text.startswith("["):
        return [_gvariant_string(item) for item in _split_list(text[1:-1])]
    if text[:1] in ("'", '"'):
        return _gvariant_string(text)
    try:
        return int(text.split()[-1])  # "3128", "uint32 3128"
    except (ValueError, IndexError):
        return text


def _gvariant_string(text: str) -> str:
    text = text.strip()
    if len(text) < 2 or text[0] not in "'\"":
        return text
    body, out, index = text[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            nxt = body[index + 1]
            if nxt == "u" and index + 6 <= len(body):
                out.append(chr(int(body[index + 2 : index + 6], 16)))
                index += 6
                continue
            out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _split_list(body: str) -> list[str]:
    """The items of a GVariant string array's body, commas inside quotes kept."""
    items, current, quote, escaped = [], "", "", False
    for char in body:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            current, escaped = current + char, True
        elif quote:
            current += char
            if char == quote:
                quote = ""
        elif char in "'\"":
            current, quote = current + char, char
        elif char == ",":
            items.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        items.append(current)
    return items


def from_gnome(values: Mapping[str, Any], host: str, port: int = 443, addresses: Iterable[str] = ()) -> SystemProxy:
    """GNOME's rules (glib-networking's resolver): mode none / manual / auto; manual takes the HTTPS
    proxy, else the HTTP one (the "same proxy for all protocols" switch fills that in); auto with an
    empty autoconfig-url means WPAD; ignore-hosts applies to manual and auto."""
    mode = values.get("mode", "none")
    ignore = values.get("ignore-hosts") or []
    if mode not in ("manual", "auto"):
        return SystemProxy(GNOME)
    matched = bypass_entry(ignore, host, port, addresses)
    if matched:
        return SystemProxy(GNOME, bypassed_by=matched)
    if mode == "auto":
        url = str(values.get("autoconfig-url") or "").strip()
        return SystemProxy(GNOME, pac_url=url, auto_detect=not url)
    for scheme in ("https", "http"):
        proxy_host = str(values.get(f"{scheme}.host") or "").strip()
        if proxy_host:
            return SystemProxy(GNOME, _proxy(_url(proxy_host, values.get(f"{scheme}.port", 0)), GNOME))
    if str(values.get("socks.host") or "").strip():
        raise _socks_only(GNOME)
    return SystemProxy(GNOME)


def _url(host: str, port: Any) -> str:
    bracketed = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{bracketed}:{port}"


# -- KDE -----------------------------------------------------------------------------------------


def is_kde_session(environ: Mapping[str, str]) -> bool:
    desktops = environ.get("XDG_CURRENT_DESKTOP", "").lower().split(":")
    return "kde" in desktops or environ.get("KDE_FULL_SESSION", "").lower() == "true"


def kioslaverc_path(environ: Mapping[str, str]) -> Path | None:
    """$XDG_CONFIG_HOME/kioslaverc, else ~/.config/kioslaverc (KDE Plasma 5 and 6)."""
    config = environ.get("XDG_CONFIG_HOME", "").strip()
    if config:
        return Path(config) / "kioslaverc"
    home = environ.get("HOME", "").strip()
    return Path(home) / ".config" / "kioslaverc" if home else None


def parse_kde_config(text: str) -> dict[str, dict[str, str]]:
    """A KDE configuration file's groups and keys; "key[$e]" (shell expansion marker) read as "key"."""
    groups: dict[str, dict[str, str]] = {}
    group: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]") and "=" not in line:
            group = groups.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        if equals and group is not None:
            group[key.strip().split("[", 1)[0]] = value.strip()
    return groups


def from_kioslaverc(text: str, environ: Mapping[str, str], host: str, port: int = 443, addresses: Iterable[str] = ()) -> SystemProxy:
    """[Proxy Settings] ProxyType: 0 none, 1 manual (httpsProxy "http://host port" or "host:port"),
    2 a PAC URL (Proxy Config Script), 3 WPAD, 4 the environment variables httpsProxy and NoProxyFor
    name; NoProxyFor (commas) with ReversedException=true lists the only hosts that use the proxy."""
    settings = parse_kde_config(text).get("Proxy Settings", {})
    kind = settings.get("ProxyType", "0").strip()
    if kind == "2":
        return SystemProxy(KDE, pac_url=settings.get("Proxy Config Script", "").strip())
    if kind == "3":
        return SystemProxy(KDE, auto_detect=True)
    if kind not in ("1", "4"):
        return SystemProxy(KDE)
    value = settings.get("httpsProxy", "").strip()
    no_proxy = settings.get("NoProxyFor", "")
    if kind == "4":  # the settings name variables: "HTTPS_PROXY", "NO_PROXY"
        value = next((environ[name.strip()] for name in value.split(",") if environ.get(name.strip(), "").strip()), "")
        no_proxy = next((environ[name.strip()] for name in no_proxy.split(",") if environ.get(name.strip(), "").strip()), "")
    if not value:
        if settings.get("socksProxy", "").strip() and kind == "1":
            raise _socks_only(KDE)
        return SystemProxy(KDE)
    url = _kde_proxy_url(value)
    entries = no_proxy.split(",")
    if settings.get(REVERSED, "false").strip().lower() == "true":
        if bypass_entry(entries, host, port, addresses):
            return SystemProxy(KDE, _proxy(url, KDE))
        return SystemProxy(KDE, bypassed_by=REVERSED)
    return _manual(KDE, url, entries, host, port, addresses)


def _kde_proxy_url(value: str) -> str:
    """ "http://proxy.corp 3128" (what System Settings writes), "proxy.corp:3128" -> http://proxy.corp:3128."""
    text = value.strip()
    if " " in text:
        address, _space, port = text.rpartition(" ")
        text = f"{address.strip()}:{port.strip()}"
    return text if "://" in text else "http://" + text


# -- Windows -------------------------------------------------------------------------------------

INTERNET_SETTINGS = r"Software\Microsoft\Windows\CurrentVersion\Internet Settings"
CONNECTIONS = INTERNET_SETTINGS + r"\Connections"
AUTO_DETECT_FLAG = 0x08  # DefaultConnectionSettings flags: 1 direct, 2 proxy, 4 auto-config URL, 8 auto-detect


def read_windows(winreg: Any = None) -> dict[str, Any] | None:
    """WinINet's per-user values (HKCU ...\\Internet Settings: ProxyEnable, ProxyServer, ProxyOverride,
    AutoConfigURL; ...\\Connections: DefaultConnectionSettings), missing ones left out; None where
    there is no registry. `winreg` is the stdlib module (a stand-in in tests)."""
    if winreg is None:
        try:
            winreg = importlib.import_module("winreg")
        except ImportError:
            return None
    values: dict[str, Any] = {}
    for path, names in (
        (INTERNET_SETTINGS, ("ProxyEnable", "ProxyServer", "ProxyOverride", "AutoConfigURL")),
        (CONNECTIONS, ("DefaultConnectionSettings",)),
    ):
        try:
            key = winreg.OpenKey(winreg.HKEY_CURRENT_USER, path)
        except OSError:
            continue
        try:
            for name in names:
                try:
                    values[name] = winreg.QueryValueEx(key, name)[0]
                except OSError:
                    pass
        finally:
            winreg.CloseKey(key)
    return values


def connection_flags(blob: bytes) -> int:
    """The flags DWORD of a DefaultConnectionSettings blob (version, counter, flags, ...), 0 if too short."""
    return int.from_bytes(blob[8:12], "little") if len(blob) >= 12 else 0


def from_windows(values: Mapping[str, Any], host: str, port: int = 443, addresses: Iterable[str] = ()) -> SystemProxy:
    """WinINet's order: auto-detect, the auto-config URL, then ProxyServer when ProxyEnable is 1:
    "host:port" for every protocol or "http=...;https=..." per protocol; ProxyOverride (semicolons,
    globs, <local>) applies to the proxy server only."""
    blob = values.get("DefaultConnectionSettings")
    auto_detect = isinstance(blob, bytes | bytearray) and bool(connection_flags(bytes(blob)) & AUTO_DETECT_FLAG)
    pac_url = str(values.get("AutoConfigURL") or "").strip()
    proxy: ProxySettings | None = None
    bypassed = ""
    server = str(values.get("ProxyServer") or "").strip()
    if _dword(values.get("ProxyEnable")) and server:
        address = _windows_https_proxy(server)
        if address:
            override = str(values.get("ProxyOverride") or "").replace(" ", ";").split(";")
            bypassed = bypass_entry(override, host, port, addresses, windows=True)
            if not bypassed:
                url = address if "://" in address else "http://" + address
                if _port_missing(url):
                    url += ":80"  # WinINet's default for a proxy named without a port
                proxy = _proxy(url, WINDOWS)
    return SystemProxy(WINDOWS, proxy, pac_url, auto_detect, "" if (auto_detect or pac_url) else bypassed)


def _port_missing(url: str) -> bool:
    authority = url.partition("://")[2].rstrip("/").rpartition("@")[2]
    return not authority.rpartition("]")[2].partition(":")[1]


def _dword(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _windows_https_proxy(server: str) -> str:
    """The HTTPS proxy of a ProxyServer value, "" when it names none; SystemProxyError when it names
    only a SOCKS proxy (WinINet would use it for HTTPS)."""
    if "=" not in server:
        return server.split(";")[0].strip()
    protocols = {}
    for item in server.replace(" ", ";").split(";"):
        name, equals, address = item.partition("=")
        if equals and address.strip():
            protocols[name.strip().lower()] = address.strip()
    if "https" in protocols:
        return protocols["https"]
    if "socks" in protocols:
        raise _socks_only(WINDOWS)
    return ""


# -- macOS ---------------------------------------------------------------------------------------


def parse_scutil(output: str) -> dict[str, Any]:
    """`scutil --proxy`'s dictionary: "  HTTPSProxy : proxy.corp" and arrays "ExceptionsList : <array> {"
    with "0 : *.local" lines up to "}"."""
    values: dict[str, Any] = {}
    array: list[str] | None = None
    for raw in output.splitlines():
        line = raw.strip()
        if array is not None:
            if line == "}":
                array = None
            else:
                array.append(line.partition(" : ")[2].strip())
            continue
        key, colon, value = line.partition(" : ")
        if not colon:
            continue
        if value.strip().startswith("<array>"):
            array = values.setdefault(key.strip(), [])
        elif not value.strip().startswith("<dictionary>"):
            values[key.strip()] = value.strip()
    return values


def from_scutil(output: str, host: str, port: int = 443, addresses: Iterable[str] = ()) -> SystemProxy:
    """HTTPSEnable/HTTPSProxy/HTTPSPort, ProxyAutoConfigEnable/ProxyAutoConfigURLString,
    ProxyAutoDiscoveryEnable; ExceptionsList and ExcludeSimpleHostnames apply to the HTTPS proxy."""
    values = parse_scutil(output)
    auto_detect = values.get("ProxyAutoDiscoveryEnable") == "1"
    pac_url = values.get("ProxyAutoConfigURLString", "").strip() if values.get("ProxyAutoConfigEnable") == "1" else ""
    proxy: ProxySettings | None = None
    bypassed = ""
    proxy_host = values.get("HTTPSProxy", "").strip()
    if values.get("HTTPSEnable") == "1" and proxy_host:
        exceptions = list(values.get("ExceptionsList", []))
        if values.get("ExcludeSimpleHostnames") == "1":
            exceptions.append("<local>")
        bypassed = bypass_entry(exceptions, host, port, addresses)
        if not bypassed:
            proxy = _proxy(_url(proxy_host, values.get("HTTPSPort", "0")), MACOS)
    elif values.get("SOCKSEnable") == "1" and not (auto_detect or pac_url):
        raise _socks_only(MACOS)
    return SystemProxy(MACOS, proxy, pac_url, auto_detect, "" if (auto_detect or pac_url) else bypassed)
