"""The Windows and macOS build scripts, which cannot run here: they must at least fit together.

PyInstaller cannot build for Windows or macOS on Linux, so each spec file is executed with
recording stand-ins for PyInstaller's spec API (pure configuration logic: what would be built,
with which manifest, plist and files). The Inno Setup script is checked against what the
Windows spec produces, and every file the scripts name must exist.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import plistlib
import re
import subprocess
import sys
import tomllib
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sstpvpn.platform import tun_windows
from sstpvpn.platform.netconfig_windows import default_journal_path

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALLER = REPO_ROOT / "installer"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
SPECS = {name: INSTALLER / name / "sstp-vpn.spec" for name in ("linux", "windows", "macos")}
ENTRY_POINTS = {**PYPROJECT["project"]["scripts"], **PYPROJECT["project"]["gui-scripts"]}


class SpecApi:
    """Stand-ins for the names PyInstaller defines for a spec file; they record every call."""

    def __init__(self) -> None:
        self.analyses, self.executables, self.collections, self.bundles = [], [], [], []
        api = self

        class Analysis:
            def __init__(self, scripts, **options) -> None:
                self.options = options
                self.scripts = [("pyiboot01_bootstrap", "bootstrap.py", "PYSOURCE")] + [(Path(script).stem, script, "PYSOURCE") for script in scripts]
                self.pure = []
                self.binaries = list(options.get("binaries", []))
                self.datas = list(options.get("datas", []))
                api.analyses.append(self)

        class PYZ:
            def __init__(self, *tocs, **options) -> None:
                pass

        class EXE:
            def __init__(self, pyz, scripts, *tocs, **options) -> None:
                self.scripts, self.options, self.name = scripts, options, options["name"]
                api.executables.append(self)

        class COLLECT:
            def __init__(self, *items, **options) -> None:
                self.items, self.options, self.name = items, options, options["name"]
                api.collections.append(self)

        class BUNDLE:
            def __init__(self, collection, **options) -> None:
                self.collection, self.options = collection, options
                api.bundles.append(self)

        self.names = {"Analysis": Analysis, "PYZ": PYZ, "EXE": EXE, "COLLECT": COLLECT, "BUNDLE": BUNDLE}


def hooks_module() -> types.ModuleType:
    """What the specs use from PyInstaller.utils.hooks: the assets as PyInstaller would collect them."""
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    icons = REPO_ROOT / "assets" / "icons"
    hooks.collect_data_files = lambda package, **options: [(str(path), "sstpvpn/assets/icons") for path in sorted(icons.iterdir())]
    hooks.copy_metadata = lambda distribution: []
    return hooks


@contextlib.contextmanager
def spec_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """sys.path, the helper modules a spec imports and PyInstaller's hooks: put back afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks_module())
    before = set(sys.modules)
    try:
        yield
    finally:
        for name in set(sys.modules) - before:
            if name in ("sstpvpn_bundle", "wintun_files", "qt_trim_linux"):
                del sys.modules[name]


def run_spec(spec: Path, monkeypatch: pytest.MonkeyPatch) -> SpecApi:
    api = SpecApi()
    with spec_run(monkeypatch):
        exec(compile(spec.read_text(), str(spec), "exec"), {**api.names, "SPECPATH": str(spec.parent)})
    return api


@pytest.fixture
def official_wintun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-in files in platform/wintun's layout (the real DLL is not in the repository)."""
    for architecture in tun_windows.ARCHITECTURES.values():
        (tmp_path / architecture).mkdir()
        (tmp_path / architecture / "wintun.dll").write_bytes(b"MZ stand-in for " + architecture.encode())
    (tmp_path / "LICENSE.txt").write_text("Prebuilt Binaries License (stand-in)\n")
    monkeypatch.setenv("SSTP_VPN_WINTUN_DIR", str(tmp_path))
    return tmp_path


def test_every_spec_and_script_compiles():
    for spec in SPECS.values():
        compile(spec.read_text(), str(spec), "exec")
    for script in sorted(INSTALLER.rglob("*.py")):
        compile(script.read_text(), str(script), "exec")
    for shell_script in (INSTALLER / "macos" / "make-dmg.sh", *sorted((INSTALLER / "linux" / "debian").glob("p*"))):
        assert subprocess.run(["sh", "-n", str(shell_script)]).returncode == 0, shell_script


def test_entry_scripts_run_the_console_scripts_of_pyproject():
    """Each bundled command starts the same function as the pip-installed command of that name."""
    sys.path.insert(0, str(INSTALLER / "pyinstaller"))
    try:
        import sstpvpn_bundle as bundle
    finally:
        sys.path.remove(str(INSTALLER / "pyinstaller"))
        sys.modules.pop("sstpvpn_bundle", None)
    for command in (bundle.TRAY, bundle.CLI, bundle.HELPER):
        imports = [node for node in ast.walk(ast.parse(command.script.read_text())) if isinstance(node, ast.ImportFrom)]
        started = {f"{node.module}:{alias.name}" for node in imports for alias in node.names}
        assert ENTRY_POINTS[command.name] in started, (command.name, started)


def test_windows_spec_builds_three_unelevated_executables_and_bundles_wintun_where_it_is_loaded(official_wintun, monkeypatch):
    monkeypatch.setattr("sysconfig.get_platform", lambda: "win-amd64")
    api = run_spec(SPECS["windows"], monkeypatch)

    executables = {exe.name: exe.options for exe in api.executables}
    assert set(executables) == {"sstp-vpn-tray", "sstp-vpn", "sstp-vpn-helper"}
    # No executable asks for elevation (asInvoker manifests); the helper runs as the LocalSystem
    # service. Only the tray is windowed: the helper's --help and errors must show in a prompt.
    assert {name: (options["uac_admin"], options["console"]) for name, options in executables.items()} == {
        "sstp-vpn-tray": (False, False),
        "sstp-vpn": (False, True),
        "sstp-vpn-helper": (False, True),
    }
    for exe in api.executables:
        assert exe.options["upx"] is False and Path(exe.options["icon"]).is_file()
        own_scripts = [name for name, _path, _kind in exe.scripts if name != "pyiboot01_bootstrap"]
        assert own_scripts == [f"entry_{exe.name.replace('-', '_')}"]
    [collection] = api.collections
    assert collection.name == "sstp-vpn" and collection.options["upx"] is False

    # Where tun_windows looks for the DLL, relative to its own module inside the bundle.
    [analysis] = api.analyses
    expected = tun_windows.wintun_dll_path("win-amd64").relative_to(Path(tun_windows.__file__).resolve().parent)
    assert (str(official_wintun / "amd64" / "wintun.dll"), "sstpvpn/platform/" + str(expected.parent)) in analysis.binaries
    assert (str(official_wintun / "LICENSE.txt"), "sstpvpn/platform/wintun") in analysis.datas
    assert any(destination == "sstpvpn/assets/icons" for _source, destination in analysis.datas)


def test_windows_spec_stops_without_the_official_wintun(tmp_path, monkeypatch):
    monkeypatch.setattr("sysconfig.get_platform", lambda: "win-amd64")
    monkeypatch.setenv("SSTP_VPN_WINTUN_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match=r"wintun\.dll is missing: pass the official https://www\.wintun\.net/"):
        run_spec(SPECS["windows"], monkeypatch)


def iss_sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            current = sections.setdefault(header[1], [])
        elif current is not None:
            current.append(line)
    return sections


def test_inno_script_installs_what_the_windows_spec_builds(official_wintun, monkeypatch):
    monkeypatch.setattr("sysconfig.get_platform", lambda: "win-amd64")
    api = run_spec(SPECS["windows"], monkeypatch)
    produced = {f"{exe.name}.exe" for exe in api.executables}
    text = (INSTALLER / "windows" / "sstp-vpn.iss").read_text()
    defines = dict(re.findall(r'#define (\w+) "([^"]*)"', text))
    sections = iss_sections(text)

    # The default bundle folder is the spec's COLLECT folder under dist\, seen from this script.
    bundle_dir = (INSTALLER / "windows" / defines["BundleDir"].replace("\\", "/")).resolve()
    assert bundle_dir == REPO_ROOT / "dist" / api.collections[0].name
    assert defines["AppVersion"] == VERSION
    assert 'Source: "{#BundleDir}\\*"; DestDir: "{app}"' in sections["Files"][0]
    expanded = text.replace("{#TrayExe}", defines["TrayExe"]).replace("{#HelperExe}", defines["HelperExe"])
    referenced = set(re.findall(r"\{app\}\\([\w.-]+\.exe)", expanded))
    assert {"sstp-vpn-tray.exe", "sstp-vpn-helper.exe"} <= referenced <= produced
    assert any(line.startswith('Name: "{group}\\{#AppName}"; Filename: "{app}\\{#TrayExe}"') for line in sections["Icons"])  # the Start-menu entry

    setup = dict(line.split("=", 1) for line in sections["Setup"])
    assert re.fullmatch(r"\{\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}", setup["AppId"])
    assert setup["PrivilegesRequired"] == "admin"
    # Optional autostart: off unless chosen; the unelevated tray from the machine-wide Run key, its
    # value removed on uninstall (and by an upgrade without the task). No scheduled task any more.
    assert any('Name: "autostart"' in line and "Flags: unchecked" in line for line in sections["Tasks"])
    run_key = 'Root: HKLM; Subkey: "Software\\Microsoft\\Windows\\CurrentVersion\\Run"; '
    assert any(
        line.startswith(run_key) and 'ValueData: """{app}\\{#TrayExe}"""' in line and "uninsdeletevalue" in line and line.endswith("Tasks: autostart")
        for line in sections["Registry"]
    )
    assert any(line.startswith(run_key) and "Flags: deletevalue" in line and line.endswith("Tasks: not autostart") for line in sections["Registry"])
    assert "schtasks" not in text.lower()

    # The service: created after the files with a binPath that carries its own quotes (sc's
    # command line "\"...\"", Inno doubling each quote), then described, set to restart, started.
    assert defines["ServiceName"] == "SstpVpnHelper"
    sc = [line for line in sections["Run"] if line.startswith('Filename: "{sys}\\sc.exe"')]
    verbs = [re.search(r'Parameters: "(\w+) ', line)[1] for line in sc]
    assert verbs == ["create", "description", "failure", "start"]
    assert 'create {#ServiceName} binPath= ""\\""{app}\\{#HelperExe}\\"""" start= auto obj= LocalSystem ' in sc[0]
    assert "reset= 86400 actions= restart/5000/restart/5000/restart/5000" in sc[2]
    assert all("runhidden" in line for line in sc)
    # Stopped, waited for and deleted before an upgrade replaces the files and before uninstall removes them.
    code = text[text.index("[Code]") :]
    assert re.search(r"function PrepareToInstall\(.*?RemoveHelperService\(\).*?\nend;", code, re.DOTALL)
    assert re.search(r"procedure CurUninstallStepChanged\(.*?usUninstall.*?RemoveHelperService\(\).*?\nend;", code, re.DOTALL)
    assert "ControlService(Service, SERVICE_CONTROL_STOP" in code and "DeleteService(Service)" in code
    # Started after install as the user who ran Setup, not elevated.
    assert any("{#TrayExe}" in line and "postinstall" in line and "runasoriginaluser" in line for line in sections["Run"])
    # The journal's folders (the ones the Windows network code uses, under %ProgramData%) go only when
    # empty; the service's log goes.
    folders = default_journal_path().parent.parts[1:]  # ("SSTP VPN", "service") below C:\ProgramData
    assert folders[0] == defines["AppName"]
    for depth in range(1, len(folders) + 1):
        folder = "\\".join(("{commonappdata}", "{#AppName}", *folders[1:depth]))
        assert f'Type: dirifempty; Name: "{folder}"' in sections["UninstallDelete"]
    assert 'Type: files; Name: "{commonappdata}\\{#AppName}\\service\\service.log*"' in sections["UninstallDelete"]
    assert 'Type: files; Name: "{commonappdata}\\{#AppName}\\service\\network-journal.json.lock"' in sections["UninstallDelete"]


def test_macos_spec_builds_a_tray_only_app(monkeypatch):
    api = run_spec(SPECS["macos"], monkeypatch)
    [bundle] = api.bundles
    options = bundle.options
    assert options["name"] == "SSTP VPN.app"
    plist = options["info_plist"]
    assert plist["LSUIElement"] is True
    assert plist["CFBundleShortVersionString"] == plist["CFBundleVersion"] == VERSION
    assert plist["CFBundleDisplayName"] == "SSTP VPN"
    assert re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", options["bundle_identifier"])
    assert Path(options["icon"]).is_file()
    # PyInstaller makes the first executable in the collection the app's CFBundleExecutable.
    first = next(item for item in bundle.collection.items if hasattr(item, "scripts"))
    assert first.name == "sstp-vpn-tray" and first.options["console"] is False
    for exe in api.executables:
        entitlements = Path(exe.options["entitlements_file"])
        assert plistlib.loads(entitlements.read_bytes())  # a well-formed plist with at least one key
        assert exe.options["upx"] is False
    # build.py packs the app of that name.
    assert '"SSTP VPN.app"' in (INSTALLER / "build.py").read_text()
    assert "hdiutil create" in (INSTALLER / "macos" / "make-dmg.sh").read_text()


def load_wintun_files():
    sys.path.insert(0, str(INSTALLER / "windows"))
    try:
        import wintun_files
    finally:
        sys.path.remove(str(INSTALLER / "windows"))
        sys.modules.pop("wintun_files", None)
    return wintun_files


def test_wintun_zip_must_be_the_official_one(tmp_path):
    wintun_files = load_wintun_files()
    fake = tmp_path / "wintun-0.14.1.zip"
    with zipfile.ZipFile(fake, "w") as archive:
        archive.writestr("wintun/bin/amd64/wintun.dll", b"MZ not the real one")
        archive.writestr("wintun/LICENSE.txt", "license")
    assert hashlib.sha256(fake.read_bytes()).hexdigest() != wintun_files.ZIP_SHA256
    with pytest.raises(SystemExit, match="is not the official"):
        wintun_files.unpack_release_zip(fake, tmp_path / "unpacked")
    assert not (tmp_path / "unpacked").exists()


def test_a_changed_wintun_dll_in_the_bundle_is_caught(official_wintun, tmp_path):
    wintun_files = load_wintun_files()
    internal = tmp_path / "bundle" / "_internal"
    bundled = internal / "sstpvpn/platform/wintun"
    (bundled / "amd64").mkdir(parents=True)
    (bundled / "LICENSE.txt").write_bytes((official_wintun / "LICENSE.txt").read_bytes())
    (bundled / "amd64/wintun.dll").write_bytes((official_wintun / "amd64/wintun.dll").read_bytes())
    wintun_files.check_unmodified(internal, official_wintun)
    (bundled / "amd64/wintun.dll").write_bytes(b"MZ compressed by UPX")
    with pytest.raises(SystemExit, match="differs from"):
        wintun_files.check_unmodified(internal, official_wintun)
