"""A reinstall over the installed program with the "autostart" task, then the silent uninstall (the
last tests of the run): the reinstall stops and deletes the service SstpVpnHelper before it replaces
the files and creates it anew, and adds the tray's Run value; the uninstall removes the program, its
Start-menu entries, its uninstall key, the service and the Run value, and keeps what
installer/windows/README.md says stays: a network undo journal in %ProgramData%\\SSTP VPN (the
record of how to restore routes and DNS after a crash)."""

from __future__ import annotations

import re

from tests.windows.wine_env import AUTOSTART_VALUE, RUN_KEY, SERVICE_KEY, SETUP_EXE, UNINSTALL_KEY, wine_build


def our_files(drive_c):
    """Everything on drive C: whose path names SSTP VPN, except the Wine user's own data."""
    return sorted(
        str(path.relative_to(drive_c))
        for path in drive_c.rglob("*")
        if ("sstp" in str(path.relative_to(drive_c)).lower()) and not str(path.relative_to(drive_c)).startswith("users/")
    )


def run_entries(log: str) -> dict[str, int]:
    """Inno Setup's log of the [Run] entries: each command line (file name and parameters) with the
    exit code of its process."""
    entries = re.findall(r"Filename: (.*)\n.*?Parameters: (.*)\n.*?Process exit code: (\d+)", log)
    return {f"{filename.strip()} {parameters.strip()}": int(code) for filename, parameters, code in entries}


def test_reinstall_replaces_the_service_and_adds_the_autostart(installed, tmp_path):
    """What an upgrade does, with the task chosen this time: PrepareToInstall ([Code]) finds the
    service, stops it if it runs, deletes it and waits until it is gone; then `sc create` makes it anew
    (it fails while one of that name exists, even one only marked for deletion)."""
    assert installed.registry_values(SERVICE_KEY) is not None
    log = tmp_path / "setup.log"
    installed.wine.run(
        [SETUP_EXE, "/VERYSILENT", "/SUPPRESSMSGBOXES", "/NORESTART", "/SP-", "/TASKS=autostart", f"/LOG={wine_build.windows_path(log)}"],
        quiet=True,
        timeout=300,
    )
    installed.wine.wait()
    text = log.read_text(encoding="utf-8", errors="replace")

    assert re.search(r"SstpVpnHelper: state \d+, process \d+", text), text
    assert "SstpVpnHelper: deleted" in text, text
    commands = run_entries(text)
    [create] = [command for command in commands if " create SstpVpnHelper " in command]
    assert commands[create] == 0, text
    for verb in ("description", "failure"):  # Wine 8.0 says success to `failure` without storing it
        [command] = [command for command in commands if f" {verb} SstpVpnHelper" in command]
        assert commands[command] == 0, (command, text)
    service = installed.registry_values(SERVICE_KEY)
    assert service is not None and service["ImagePath"] == f'"{installed.helper}"'

    # The tray, unelevated, from the machine-wide Run key: no scheduled task.
    assert installed.registry_values(RUN_KEY)[AUTOSTART_VALUE] == f'"{installed.tray}"'


def test_silent_uninstall_removes_the_program_and_keeps_only_a_journal(installed):
    # What the service leaves in its folder: a journal (kept) and its log (removed).
    service_folder = installed.program_data / "service"
    journal, service_log = service_folder / "network-journal.json", service_folder / "service.log"
    service_folder.mkdir(parents=True, exist_ok=True)
    for left in service_folder.iterdir():  # a cached prefix may hold an earlier run's files
        left.unlink()
    # A step the service cannot undo (from a later version): the service, which starts with every
    # Wine program, keeps it, and so must the uninstaller.
    journal.write_text('{"format": "sstp-vpn undo journal", "version": 1, "owner": {}, "steps": [{"op": "a step of a later version"}]}\n')
    service_log.write_text("a line of the service's log\n")
    assert installed.program_folder.is_dir()

    installed.wine.run([installed.uninstaller, "/VERYSILENT", "/SUPPRESSMSGBOXES", "/NORESTART"], quiet=True, timeout=300)
    installed.wine.wait()  # unins000.exe hands over to a copy of itself in the temporary folder

    assert not installed.program_folder.exists()
    assert not installed.start_menu_folder.exists()
    assert installed.registry_key(UNINSTALL_KEY) is None
    assert installed.registry_key(SERVICE_KEY) is None
    assert AUTOSTART_VALUE not in (installed.registry_values(RUN_KEY) or {})
    assert journal.is_file() and not service_log.exists()  # the folders go only when empty
    assert our_files(installed.drive_c) == [
        "ProgramData/SSTP VPN",
        "ProgramData/SSTP VPN/service",
        "ProgramData/SSTP VPN/service/network-journal.json",
    ]
    journal.unlink()
    service_folder.rmdir()
    installed.program_data.rmdir()
