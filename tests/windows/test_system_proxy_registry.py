"""The "system" proxy on Windows: WinINet's per-user values written with `wine reg add` into the
prefix's registry, read back by client/system_proxy.py (the checkout's file, loaded into the
build's Windows Python, so no new build is needed) through the stdlib winreg. The values are put
back as they were at the end."""

from __future__ import annotations

import json
from pathlib import Path

from tests.windows.wine_env import REPO_ROOT, run_windows_python, wine_build

SETTINGS = r"HKCU\Software\Microsoft\Windows\CurrentVersion\Internet Settings"
CONNECTIONS = SETTINGS + r"\Connections"
NAMES = {SETTINGS: ("ProxyEnable", "ProxyServer", "ProxyOverride", "AutoConfigURL"), CONNECTIONS: ("DefaultConnectionSettings",)}

# The checkout's system_proxy.py as sstpvpn.client.system_proxy: its relative imports (.proxy,
# .core.i18n) resolve in the installed package.
SCRIPT = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("sstpvpn.client.system_proxy", {module!r})
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
raw = module.read_windows()
if raw is None:
    raise SystemExit("no registry")
answers = {{}}
for host in ("vpn.example.com", "vpn.corp.example", "intranet"):
    found = module.system_proxy_for(host, environ={{}})  # the registry, whatever Wine passed on of the environment
    answers[host] = {{
        "source": found.source,
        "mode": found.mode,
        "proxy": found.proxy.address if found.proxy else None,
        "pac_url": found.pac_url,
        "bypassed_by": found.bypassed_by,
        "describe": found.describe(host),
    }}
raw = {{name: value.hex() if isinstance(value, bytes) else value for name, value in raw.items()}}
print("RESULT " + json.dumps({{"raw": raw, "answers": answers}}))
"""


def read_back(wine: wine_build.Wine, folder: Path) -> dict:
    module = wine_build.windows_path(REPO_ROOT / "client" / "system_proxy.py")
    output = run_windows_python(wine, SCRIPT.format(module=module), folder)
    [line] = [line for line in output.splitlines() if line.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


def reg(wine: wine_build.Wine, *arguments: str) -> None:
    result = wine.run(["reg", *arguments], check=False, quiet=True, timeout=120)
    assert result.returncode == 0, result.stdout


def reg_set(wine: wine_build.Wine, key: str, name: str, value: str | int | bytes) -> None:
    if isinstance(value, int):
        kind, data = "REG_DWORD", str(value)
    elif isinstance(value, bytes):
        kind, data = "REG_BINARY", value.hex()
    else:
        kind, data = "REG_SZ", value
    reg(wine, "add", key, "/v", name, "/t", kind, "/d", data, "/f")


def blob(flags: int) -> bytes:
    """DefaultConnectionSettings: version 0x46, a counter, the flags, then empty length-prefixed fields."""
    return (0x46).to_bytes(4, "little") + (7).to_bytes(4, "little") + flags.to_bytes(4, "little") + bytes(32)


def test_wininet_registry_settings_are_read_back(wine, tmp_path):
    before = read_back(wine, tmp_path)["raw"]
    try:
        reg_set(wine, SETTINGS, "ProxyEnable", 1)
        reg_set(wine, SETTINGS, "ProxyServer", "http=web.corp.example:80;https=secure.corp.example:8443")
        reg_set(wine, SETTINGS, "ProxyOverride", "*.corp.example;<local>")
        reg_set(wine, CONNECTIONS, "DefaultConnectionSettings", blob(0x03))  # direct + proxy: no auto-detect
        if "AutoConfigURL" in before:
            reg(wine, "delete", SETTINGS, "/v", "AutoConfigURL", "/f")
        manual = read_back(wine, tmp_path)
        assert manual["raw"]["ProxyServer"] == "http=web.corp.example:80;https=secure.corp.example:8443"
        answers = manual["answers"]
        assert answers["vpn.example.com"] == {
            "source": "Windows",
            "mode": "manual",
            "proxy": "secure.corp.example:8443",
            "pac_url": "",
            "bypassed_by": "",
            "describe": "System proxy (Windows): secure.corp.example:8443.",
        }
        assert (answers["vpn.corp.example"]["mode"], answers["vpn.corp.example"]["bypassed_by"]) == ("none", "*.corp.example")
        assert answers["intranet"]["bypassed_by"] == "<local>"

        reg_set(wine, SETTINGS, "AutoConfigURL", "http://wpad.corp.example/proxy.pac")
        reg_set(wine, CONNECTIONS, "DefaultConnectionSettings", blob(0x0D))  # + auto-config URL + auto-detect
        automatic = read_back(wine, tmp_path)["answers"]["vpn.example.com"]
        assert (automatic["mode"], automatic["pac_url"], automatic["proxy"]) == (
            "auto-detect",
            "http://wpad.corp.example/proxy.pac",
            "secure.corp.example:8443",
        )

        reg_set(wine, SETTINGS, "ProxyEnable", 0)
        reg(wine, "delete", SETTINGS, "/v", "AutoConfigURL", "/f")
        reg_set(wine, CONNECTIONS, "DefaultConnectionSettings", blob(0x01))
        assert read_back(wine, tmp_path)["answers"]["vpn.example.com"]["mode"] == "none"
    finally:
        for key, names in NAMES.items():
            for name in names:
                if name in before:
                    value = before[name]
                    reg_set(wine, key, name, bytes.fromhex(value) if name == "DefaultConnectionSettings" else value)
                else:
                    wine.run(["reg", "delete", key, "/v", name, "/f"], check=False, quiet=True, timeout=120)
    assert read_back(wine, tmp_path)["raw"] == before
