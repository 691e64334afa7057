"""The file edge of profile import and export (profile_import.py parses and writes the text):
read a file with a size limit, add what it holds to the profile store without overwriting
anything, write an export. Shared by `sstp-vpn profiles import|export` and the tray's
Import profiles….

A name that is taken already gets " (2)" (or " (3)", ...): nothing is ever replaced, and the
report says so. Nothing here reads or writes a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from .profile_import import MAX_IMPORT_BYTES, ImportFormatError, ImportResult, export_text, parse_profiles
from .profiles import Profile, ProfileFileError, ProfileStore, _write_atomically, new_profile_id, profile_problems

MAX_FIELD_LENGTH = 1024  # a host, user name or path longer than this is not a real setting
_FILE_FIELDS = {"ca_file": "CA file", "eap_ca_file": "EAP CA file"}  # cleared, with a note, when the file is not here


class TransferError(Exception):
    """The file cannot be read or written; the message is the sentence for the user."""


@dataclass
class ImportReport:
    format: str = ""
    added: list[Profile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # sentences: why an entry was not added
    notes: list[str] = field(default_factory=list)  # sentences: what was left out or changed

    def lines(self) -> list[str]:
        """The summary, for the command line and the tray's dialog."""
        lines = [f"Imported {len(self.added)} profile{'s' if len(self.added) != 1 else ''} from {self.format}" + (":" if self.added else ".")]
        lines += [f"  {profile.name} ({profile.username or 'no user name'}@{profile.server})" for profile in self.added]
        lines += [f"Not imported: {sentence}" for sentence in self.skipped]
        lines += [f"Note: {sentence}" for sentence in self.notes]
        return lines


def read_import_file(path: Path) -> ImportResult:
    """Parse a file to import. Raises TransferError (cannot read) or ImportFormatError (content)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_IMPORT_BYTES + 1)
    except OSError as error:
        raise TransferError(f"{path} cannot be read ({error.strerror or error}).") from None
    return parse_profiles(data, str(path))


def unique_name(name: str, taken: set[str]) -> str:
    """name, or "name (2)", "name (3)", ... whichever is free (compared ignoring case)."""
    base, number = name, 2
    numbered = re.fullmatch(r"(.*) \((\d{1,4})\)", name)
    if numbered and numbered.group(1):
        base, number = numbered.group(1), int(numbered.group(2)) + 1
    candidate = name
    while candidate.casefold() in taken:
        candidate, number = f"{base} ({number})", number + 1
    return candidate


def import_profiles(store: ProfileStore, result: ImportResult, user_name: str = "") -> ImportReport:
    """Add every entry as a new profile. `user_name` is given to entries without one (the Windows
    phone book has none). Raises ProfileFileError when the store cannot be read or written."""
    report = ImportReport(result.format, notes=list(result.notes))
    existing = store.load().profiles
    taken = {profile.name.casefold() for profile in existing}
    for entry in result.entries:
        profile, notes = entry.profile, list(entry.notes)
        label = profile.name or profile.server
        if not profile.username and user_name.strip():
            profile = replace(profile, username=user_name.strip())
            notes = [note for note in notes if "user name" not in note]
        if not profile.username:
            report.skipped.append(f"{label!r} has no user name in the file: give one (sstp-vpn profiles import FILE --user NAME).")
            continue
        too_long = [key for key, value in vars(profile).items() if isinstance(value, str) and len(value) > MAX_FIELD_LENGTH]
        if too_long:
            report.skipped.append(f"{label[:MAX_FIELD_LENGTH]!r}: its {', '.join(too_long)} is longer than {MAX_FIELD_LENGTH} characters.")
            continue
        name = unique_name(profile.name, taken)
        if name != profile.name:
            notes.append(f"A profile called {profile.name!r} exists already: this one is called {name!r}; the existing one was not changed.")
        profile = replace(profile, id=new_profile_id(), name=name)
        problems = profile_problems(profile, existing)
        for key, title in _FILE_FIELDS.items():
            if key in problems:
                notes.append(f"Its {title} {getattr(profile, key)} is not usable here, so it was left empty: {problems.pop(key)}")
                profile = replace(profile, ca_file="") if key == "ca_file" else replace(profile, eap_ca_file="")
        if problems:
            report.skipped.append(f"{label!r}: " + " ".join(problems.values()))
            continue
        store.save(profile)
        existing = (*existing, profile)
        taken.add(name.casefold())
        report.added.append(profile)
        report.notes += [f"{name}: {note}" for note in notes]
    return report


def import_file(store: ProfileStore, path: Path, user_name: str = "") -> ImportReport:
    try:
        return import_profiles(store, read_import_file(path), user_name)
    except ImportFormatError as error:
        raise TransferError(str(error)) from None


def export_file(store: ProfileStore, path: Path, names: list[str] | tuple[str, ...] = ()) -> list[Profile]:
    """Write the named profiles (all when none are named) to a new file; an existing file is
    never replaced. Raises TransferError or ProfileFileError."""
    book = store.load()
    chosen = list(book.profiles)
    if names:
        chosen = []
        for name in names:
            profile = book.find(name)
            if profile is None:
                raise TransferError(f"There is no profile called {name!r}; `sstp-vpn profiles list` shows them.")
            if profile not in chosen:
                chosen.append(profile)
    if not chosen:
        raise TransferError("There are no profiles to export.")
    if path.exists():
        raise TransferError(f"{path} exists already: choose another file name, or remove it first.")
    try:
        _write_atomically(path, export_text(chosen).encode("utf-8"))
    except OSError as error:
        raise TransferError(f"{path} cannot be written ({error.strerror or error}).") from None
    return chosen


__all__ = ["ImportReport", "TransferError", "ProfileFileError", "export_file", "import_file", "import_profiles", "read_import_file", "unique_name"]
