"""Proxy auto-config (PAC) and WPAD: which proxies, in which order, lead to the VPN server.

A PAC file is JavaScript whose `FindProxyForURL(url, host)` answers a list such as
"PROXY a:3128; PROXY b:8080; DIRECT". `decide()` fetches the file (the profile's URL, or one found
by WPAD), runs that function for `https://<server>:<port>/` and turns the answer into an ordered
list of candidates: a ProxySettings for each HTTP proxy, None for DIRECT. The transport tries them
in that order (transport.open_stream); SOCKS and HTTPS (TLS to the proxy) entries cannot carry
our CONNECT and are skipped with a log line.

Everything here is time-boxed and ends in a sentence, never a hang:
- the download (file, HTTP or HTTPS, never through a proxy) gets `timeout` seconds in all, name
  resolution included (it runs in a daemon thread that is left behind if it overruns);
- the JavaScript runs in a child process (pypac's PACFile on dukpy/QuickJS, which holds the GIL
  and cannot be interrupted: a `while(true){}` would stop us otherwise), killed after `timeout`.

WPAD: DHCP option 252 where the OS tells it (NetworkManager: `nmcli -t -f DHCP4 device show`,
the option `wpad`), then `http://wpad.<domain>/wpad.dat` for each domain of the resolver's search
list (/etc/resolv.conf, systemd-resolved's own copy) and its parents up to the organisation's
domain (pypac's WPAD devolution, bounded by the public suffix list). The first file that arrives
is used.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.i18n import _
from .proxy import ProxySettings, authority, duration

log = logging.getLogger(__name__)

PAC_TIMEOUT = 5.0  # seconds for the download, and again for running the JavaScript
MAX_PAC_BYTES = 1024 * 1024  # real PAC files are a few kB; a bigger answer is not one
RESOLV_CONF_FILES = (Path("/etc/resolv.conf"), Path("/run/systemd/resolve/resolv.conf"))


class PacError(Exception):
    """No proxy decision could be made; the message is the sentence for the user."""


@dataclass(frozen=True)
class PacSource:
    """Where the proxy list comes from: a PAC URL, or "" for WPAD discovery.

    `proxy` carries what every proxy the PAC names is used with (user name, password, and any
    authentication choice of ProxySettings); its host and port are replaced by the PAC's."""

    url: str = ""
    proxy: ProxySettings | None = field(default=None, repr=False)
    timeout: float = PAC_TIMEOUT
    # The system's settings only, as Windows and browsers follow them: another auto-config to try
    # when this one cannot be had (WPAD found nothing, then the configured URL), and the ways to
    # take when none can (the system's proxy, else directly). A PAC the profile names has neither:
    # the user chose it, so its failure is told.
    then: PacSource | None = None
    otherwise: tuple[ProxySettings | None, ...] | None = None


@dataclass(frozen=True)
class PacEntry:
    """One element of FindProxyForURL's answer."""

    kind: str  # "DIRECT", "PROXY", "HTTPS", "SOCKS", "SOCKS4", "SOCKS5", or what the file wrote
    host: str = ""
    port: int = 0

    @property
    def text(self) -> str:
        return self.kind if self.kind == "DIRECT" else f"{self.kind} {authority(self.host, self.port)}"


@dataclass(frozen=True)
class ProxyDecision:
    """What the PAC file decided for the server, before any connection."""

    pac_url: str  # the file that was used
    found_by: str  # "profile", "wpad-dhcp" or "wpad-dns"
    result: str  # FindProxyForURL's answer as the file gave it
    candidates: tuple[ProxySettings | None, ...]  # in order; None is DIRECT
    skipped: tuple[str, ...] = ()  # entries that cannot be used (SOCKS, HTTPS)
    unavailable: str = ""  # found_by "none": why no auto-config could be had (the system's next setting is used)

    @property
    def source(self) -> str:
        """ "PAC http://…" or "WPAD (DHCP) http://…" (the technical names are not translated)."""
        if self.found_by == "none":
            # Translators: the start of a line such as "no automatic proxy configuration → DIRECT"
            return _("no automatic proxy configuration")
        how = {"wpad-dhcp": "WPAD (DHCP) ", "wpad-dns": "WPAD (DNS) "}.get(self.found_by, "")
        return f"{how}PAC {self.pac_url}"


def candidate_label(candidate: ProxySettings | None) -> str:
    """ "PROXY host:port" or "DIRECT", as a PAC file writes them."""
    return "DIRECT" if candidate is None else f"PROXY {candidate.address}"


# ---------------------------------------------------------------------------------------------
# The answer of FindProxyForURL (pure)

_DEFAULT_PORTS = {"PROXY": 80, "HTTP": 80, "HTTPS": 443, "SOCKS": 1080, "SOCKS4": 1080, "SOCKS5": 1080}


def parse_result(value: str) -> list[PacEntry]:
    """ "PROXY a:3128; PROXY b; DIRECT" -> entries in order. Elements that are not understood are
    left out with a log line (as browsers do)."""
    entries: list[PacEntry] = []
    for element in value.split(";"):
        words = element.split()
        if not words:
            continue
        kind = words[0].upper()
        if kind == "DIRECT" and len(words) == 1:
            entries.append(PacEntry("DIRECT"))
            continue
        if kind not in _DEFAULT_PORTS or len(words) != 2:
            log.info("PAC answer element %r is not understood; skipped", element.strip())
            continue
        host, port = _host_port(words[1], _DEFAULT_PORTS[kind])
        if not host:
            log.info("PAC answer element %r has no usable host:port; skipped", element.strip())
            continue
        entries.append(PacEntry("PROXY" if kind == "HTTP" else kind, host, port))
    return entries


def _host_port(text: str, default_port: int) -> tuple[str, int]:
    """ "host:port", "host", "[v6]:port", "[v6]" -> (host, port); ("", 0) when malformed."""
    match = re.fullmatch(r"\[([0-9A-Fa-f:.%\w]+)\](?::(\d+))?|([^:\[\]/\s]+)(?::(\d+))?", text)
    if match is None:
        return "", 0
    host = match.group(1) or match.group(3)
    port_text = match.group(2) or match.group(4)
    port = int(port_text) if port_text else default_port
    if not 0 < port < 65536:
        return "", 0
    return host, port


def candidates(entries: Iterable[PacEntry], template: ProxySettings | None = None) -> tuple[list[ProxySettings | None], list[str]]:
    """The entries we can use, in order (None for DIRECT, repeats dropped), and those skipped."""
    usable: list[ProxySettings | None] = []
    skipped: list[str] = []
    for entry in entries:
        if entry.kind == "DIRECT":
            candidate: ProxySettings | None = None
        elif entry.kind == "PROXY":
            candidate = ProxySettings(entry.host, entry.port) if template is None else dataclasses.replace(template, host=entry.host, port=entry.port)
        else:
            log.info("PAC entry %s skipped: SSTP VPN speaks only to HTTP proxies (PROXY) or directly (DIRECT)", entry.text)
            skipped.append(entry.text)
            continue
        if candidate not in usable:
            usable.append(candidate)
    return usable, skipped


# ---------------------------------------------------------------------------------------------
# WPAD places (pure parts take the text; the edges read it)


def search_domains(resolv_conf: str) -> list[str]:
    """The domains of `search` (or the older `domain`) lines, in order; the last line wins, as in
    the resolver."""
    domains: list[str] = []
    for line in resolv_conf.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(words) >= 2 and words[0] in ("search", "domain"):
            domains = [word.strip(".").lower() for word in words[1:] if word.strip(".")]
    return domains


def nmcli_wpad_urls(output: str) -> list[str]:
    """PAC URLs from DHCP option 252 in `nmcli -t -f DHCP4 device show` output
    ("DHCP4.OPTION[7]:wpad = http\\://…"), in order, without repeats."""
    urls: list[str] = []
    for line in output.splitlines():
        name, _sep, value = line.partition(":")
        value = re.sub(r"\\(.)", r"\1", value)  # terse mode escapes ":" and "\" in values: "http\://…"
        if not name.startswith("DHCP4.OPTION"):
            continue
        key, sep, url = value.partition("=")
        url = url.strip().rstrip("\x00").strip()
        if sep and key.strip() in ("wpad", "private_252", "option_252") and url.lower().startswith(("http://", "https://")) and url not in urls:
            urls.append(url)
    return urls


def dns_wpad_urls(domains: Iterable[str]) -> list[str]:
    """http://wpad.<domain>/wpad.dat for each domain and its parents, stopping at the organisation's
    domain (the public suffix list) and never at a single label, without repeats."""
    from pypac.wpad import proxy_urls_from_dns

    urls: list[str] = []
    for domain in domains:
        for url in proxy_urls_from_dns("host." + domain):
            # never wpad.<one label> (wpad.local, wpad.com): whoever registers it would serve the proxy list
            if url not in urls and "." in url.removeprefix("http://wpad.").removesuffix("/wpad.dat"):
                urls.append(url)
    return urls


TCPIP_PARAMETERS = r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters"
TCPIP_NAMES = ("SearchList", "Domain", "NV Domain", "DhcpDomain")


def windows_search_domains(values: dict[str, str]) -> list[str]:
    r"""Windows' DNS suffixes from the Tcpip\Parameters values: the suffix search list (comma
    separated), then the machine's primary domain and the one DHCP gave, without repeats."""
    domains: list[str] = []
    for name in TCPIP_NAMES:
        for word in re.split(r"[,\s]+", values.get(name) or ""):
            domain = word.strip(".").lower()
            if domain and domain not in domains:
                domains.append(domain)
    return domains


def read_windows_tcpip(winreg: Any = None) -> dict[str, str]:
    r"""HKLM\...\Tcpip\Parameters' string values of TCPIP_NAMES; {} where there is no registry."""
    if winreg is None:
        try:
            winreg = importlib.import_module("winreg")
        except ImportError:
            return {}
    values: dict[str, str] = {}
    try:
        key = winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, TCPIP_PARAMETERS)
    except OSError:
        return values
    try:
        for name in TCPIP_NAMES:
            try:
                value = winreg.QueryValueEx(key, name)[0]
            except OSError:
                continue
            if isinstance(value, str):
                values[name] = value
    finally:
        winreg.CloseKey(key)
    return values


def system_search_domains() -> list[str]:
    """The DNS search domains: Windows' suffixes from the registry, elsewhere the resolver's files."""
    if sys.platform == "win32":
        return windows_search_domains(read_windows_tcpip())
    domains: list[str] = []
    for path in RESOLV_CONF_FILES:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        domains += [domain for domain in search_domains(text) if domain not in domains]
    return domains


def system_dhcp_wpad_urls(timeout: float = 2.0) -> list[str]:
    """Option 252 as NetworkManager saw it; [] where nmcli is not there or says nothing."""
    nmcli = shutil.which("nmcli")
    if nmcli is None:
        return []
    try:
        done = subprocess.run([nmcli, "-t", "-f", "DHCP4", "device", "show"], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return nmcli_wpad_urls(done.stdout) if done.returncode == 0 else []


# ---------------------------------------------------------------------------------------------
# Download


def fetch(url: str, timeout: float = PAC_TIMEOUT) -> str:
    """The PAC file's text, within `timeout` seconds in all. Raises PacError."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "file") or (scheme != "file" and not parts.hostname):
        raise PacError(
            _("The proxy auto-config address {url} is not an http://, https:// or file:// address: check the PAC address.").format(url=url)
        )
    outcome: list[str | PacError] = []

    def work() -> None:
        try:
            outcome.append(_download(url, scheme, timeout))
        except PacError as error:
            outcome.append(error)

    worker = threading.Thread(target=work, name="pac-fetch", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise PacError(
            _("The proxy auto-config file {url} did not arrive within {duration}: check the PAC address and your network.").format(
                url=url, duration=duration(timeout)
            )
        )
    result = outcome[0]
    if isinstance(result, PacError):
        raise result
    return result


def _download(url: str, scheme: str, timeout: float) -> str:
    import urllib.error  # urllib.request brings http.client and email: only when a PAC file is fetched
    import urllib.request

    deadline = time.monotonic() + timeout
    if scheme == "file":
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
        try:
            with path.open("rb") as file:
                return _text(url, file.read(MAX_PAC_BYTES + 1))
        except OSError as error:
            raise PacError(_cannot_fetch(url, error.strerror or str(error))) from None
    from . import trust

    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]  # the PAC itself comes directly
    if scheme == "https":
        handlers.append(urllib.request.HTTPSHandler(context=trust.verifying_context(None)))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"User-Agent": "sstp-vpn", "Accept": "application/x-ns-proxy-autoconfig, */*"})
    try:
        with opener.open(request, timeout=timeout) as response:
            body = b""
            while len(body) <= MAX_PAC_BYTES and time.monotonic() < deadline:
                chunk = response.read(16 * 1024)
                if not chunk:
                    break
                body += chunk
            return _text(url, body)
    except urllib.error.HTTPError as error:
        raise PacError(
            _("The web server answered HTTP {status} {reason} for the proxy auto-config file {url}: check the PAC address.").format(
                status=error.code, reason=error.reason, url=url
            )
        ) from None
    except urllib.error.URLError as error:
        reason = error.reason
        raise PacError(_cannot_fetch(url, getattr(reason, "strerror", None) or str(reason))) from None
    except TimeoutError:
        raise PacError(
            _("The proxy auto-config file {url} did not arrive within {duration}: check the PAC address and your network.").format(
                url=url, duration=duration(timeout)
            )
        ) from None
    except OSError as error:  # reset, closed early, a malformed status line
        raise PacError(_cannot_fetch(url, error.strerror or str(error) or type(error).__name__)) from None


def _cannot_fetch(url: str, reason: str) -> str:
    return _("Cannot fetch the proxy auto-config file {url} ({reason}): check the PAC address and your network.").format(url=url, reason=reason)


def _text(url: str, body: bytes) -> str:
    if len(body) > MAX_PAC_BYTES:
        raise PacError(
            _("The proxy auto-config file {url} is larger than {size} kB, which no PAC file is: check the PAC address.").format(
                url=url, size=MAX_PAC_BYTES // 1024
            )
        )
    return body.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# Running FindProxyForURL


def child_main() -> None:
    """The evaluator process: reads {"js", "url", "host"} as JSON on stdin, writes ["ok", answer] or
    ["error", why] as JSON on stdout."""
    job = json.load(sys.stdin)
    try:
        from pypac.parser import PACFile

        value = PACFile(job["js"]).find_proxy_for_url(job["url"], job["host"])
        answer = ["ok", value if isinstance(value, str) else repr(value)]
    except Exception as error:  # noqa: BLE001 - any failure of the file's JavaScript is told to the parent
        answer = ["error", str(error) or type(error).__name__]
    json.dump(answer, sys.stdout)


def _frozen_child(js: str, url: str, host: str, conn) -> None:  # pragma: no cover - the frozen bundle's child
    import io

    sys.stdin, sys.stdout = io.StringIO(json.dumps({"js": js, "url": url, "host": host})), io.StringIO()
    child_main()
    conn.send(json.loads(sys.stdout.getvalue()))
    conn.close()


def _run_child(js: str, url: str, host: str, timeout: float) -> list[str] | None:
    """The child's answer, or None when it did not give one within `timeout` (it is killed)."""
    if getattr(sys, "frozen", False):  # pragma: no cover - a PyInstaller bundle has no python -c; its entry calls freeze_support()
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_frozen_child, args=(js, url, host, sender), daemon=True)
        process.start()
        sender.close()
        try:
            return receiver.recv() if receiver.poll(timeout) else None
        except EOFError:
            return ["error", ""]
        finally:
            receiver.close()
            if process.is_alive():
                process.kill()
            process.join(2)
    command = [sys.executable, "-c", "from sstpvpn.client.pac import child_main; child_main()"]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as child:
        try:
            out, _err = child.communicate(json.dumps({"js": js, "url": url, "host": host}), timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            return None
    try:
        answer = json.loads(out)
    except ValueError:
        return ["error", ""]
    return answer if isinstance(answer, list) and len(answer) == 2 else ["error", ""]


def evaluate(js: str, url: str, host: str, pac_url: str, timeout: float = PAC_TIMEOUT) -> str:
    """FindProxyForURL(url, host) of `js`, run in a child process killed after `timeout` seconds.
    Raises PacError naming `pac_url`."""
    if "FindProxyForURL" not in js:
        raise PacError(
            _("The file {url} defines no FindProxyForURL function, so it is not a proxy auto-config file: check the PAC address.").format(url=pac_url)
        )
    try:
        answer = _run_child(js, url, host, timeout)
    except OSError as error:
        raise PacError(_("Cannot start the proxy auto-config evaluator ({reason}).").format(reason=error.strerror or error)) from None
    if answer is None:
        raise PacError(
            _(
                "The proxy auto-config file {url} did not answer FindProxyForURL within {duration}: ask its administrator "
                "to check it, or choose another proxy setting."
            ).format(url=pac_url, duration=duration(timeout))
        )
    status, value = answer
    if status != "ok":
        raise PacError(
            _("The proxy auto-config file {url} cannot be run ({error}): ask its administrator to fix it, or choose another proxy setting.").format(
                url=pac_url, error=_short(value) or _("the evaluator stopped")
            )
        )
    return value


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# The decision


def server_url(host: str, port: int) -> str:
    """The URL the PAC file is asked about: https://host[:port]/ (as a browser would ask)."""
    shown = f"[{host}]" if ":" in host else host
    return f"https://{shown}/" if port == 443 else f"https://{shown}:{port}/"


def discover(
    timeout: float = PAC_TIMEOUT,
    dhcp_urls: Callable[[], list[str]] = system_dhcp_wpad_urls,
    domains: Callable[[], list[str]] = system_search_domains,
) -> tuple[str, str, str]:
    """WPAD: (found_by, url, text) of the first PAC file found within `timeout` seconds in all.
    Raises PacError saying where it looked."""
    deadline = time.monotonic() + timeout
    places = [("wpad-dhcp", url) for url in dhcp_urls()] + [("wpad-dns", url) for url in dns_wpad_urls(domains())]
    tried: list[str] = []
    for found_by, url in places:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        tried.append(url)
        try:
            return found_by, url, fetch(url, left)
        except PacError as error:
            log.info("WPAD: %s", error)
    if not places:
        raise PacError(
            _(
                "No proxy auto-config file can be looked for: this network gives no WPAD address (DHCP) and no search domain (DNS). "
                "Enter the PAC address in the proxy settings, or choose another proxy setting."
            )
        )
    raise PacError(
        _(
            "No proxy auto-config file was found on this network within {duration} (WPAD looked at {places}): enter the PAC address "
            "in the proxy settings, or choose another proxy setting."
        ).format(duration=duration(timeout), places=", ".join(tried or [url for _how, url in places]))
    )


def decide(source: PacSource, host: str, port: int) -> ProxyDecision:
    """The decision of the first auto-config that can be had (`source`, then its `then`), else the
    source's `otherwise` ways with the reason. Raises PacError (the first one's) when there are none."""
    reasons: list[str] = []
    tried: PacSource | None = source
    while tried is not None:
        try:
            return _decide(tried, host, port)
        except PacError as error:
            reasons.append(str(error))
            tried = tried.then
    if source.otherwise is None:
        raise PacError(reasons[0])
    log.info("No automatic proxy configuration for %s: %s", authority(host, port), " ".join(reasons))
    return ProxyDecision("", "none", "", source.otherwise, unavailable=" ".join(reasons))


def _decide(source: PacSource, host: str, port: int) -> ProxyDecision:
    if source.url:
        found_by, pac_url, text = "profile", source.url, fetch(source.url, source.timeout)
    else:
        found_by, pac_url, text = discover(source.timeout)
    result = evaluate(text, server_url(host, port), host, pac_url, source.timeout)
    usable, skipped = candidates(parse_result(result), source.proxy)
    if not usable:
        if skipped:
            raise PacError(
                _(
                    "The proxy auto-config file {url} offers only {entries} for {server}, which SSTP VPN cannot use: it connects through "
                    "HTTP proxies (PROXY) or directly (DIRECT). Ask the file's administrator, or choose another proxy setting."
                ).format(url=pac_url, entries=", ".join(skipped), server=authority(host, port))
            )
        raise PacError(
            _(
                "The proxy auto-config file {url} answered “{answer}” for {server}, which names neither a proxy nor DIRECT: "
                "ask its administrator to check it, or choose another proxy setting."
            ).format(url=pac_url, answer=_short(result), server=authority(host, port))
        )
    decision = ProxyDecision(pac_url, found_by, result, tuple(usable), tuple(skipped))
    log.info("%s for %s: %s", decision.source, authority(host, port), "; ".join(candidate_label(c) for c in usable))
    return decision


def describe(decision: ProxyDecision, used: ProxySettings | None | str = "", passed_over: Iterable[tuple[ProxySettings | None, str]] = ()) -> str:
    """One line for `diagnose` and the log: "PAC http://…/proxy.pac → PROXY b:3128 (PROXY a:3128: did
    not answer)". `used` is the candidate that worked ("" before any connection: the whole list),
    `passed_over` the (candidate, why) of those that did not."""
    chosen = "; ".join(candidate_label(candidate) for candidate in decision.candidates) if isinstance(used, str) else candidate_label(used)
    notes = [f"{candidate_label(candidate)}: {why}" for candidate, why in passed_over]
    notes += [_("{entry} skipped: not an HTTP proxy").format(entry=entry) for entry in decision.skipped]
    notes += [decision.unavailable] if decision.unavailable else []
    line = f"{decision.source} → {chosen}"
    return f"{line} ({'; '.join(notes)})" if notes else line
