"""The silent uninstall (the last test of the run): the program, its Start-menu entries and its
uninstall key go; what installer/windows/README.md says stays, stays: a network undo journal in
%ProgramData%\\SSTP VPN (the record of how to restore routes and DNS after a crash)."""

from __future__ import annotations

from tests.windows.wine_env import UNINSTALL_KEY


def our_files(drive_c):
    """Everything on drive C: whose path names SSTP VPN, except the Wine user's own data."""
    return sorted(
        str(path.relative_to(drive_c))
        for path in drive_c.rglob("*")
        if ("sstp" in str(path.relative_to(drive_c)).lower()) and not str(path.relative_to(drive_c)).startswith("users/")
    )


def test_silent_uninstall_removes_the_program_and_keeps_only_a_journal(installed):
    journal = installed.program_data / "network-journal.json"
    installed.program_data.mkdir(parents=True, exist_ok=True)
    journal.write_text('{"steps": []}\n')
    assert installed.program_folder.is_dir()

    installed.wine.run([installed.uninstaller, "/VERYSILENT", "/SUPPRESSMSGBOXES", "/NORESTART"], quiet=True, timeout=300)
    installed.wine.wait()  # unins000.exe hands over to a copy of itself in the temporary folder

    assert not installed.program_folder.exists()
    assert not installed.start_menu_folder.exists()
    assert installed.registry_key(UNINSTALL_KEY) is None
    assert journal.is_file()  # kept: the folder goes only when empty
    assert our_files(installed.drive_c) == ["ProgramData/SSTP VPN", "ProgramData/SSTP VPN/network-journal.json"]
    journal.unlink()
    installed.program_data.rmdir()
