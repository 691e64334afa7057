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

from .core.i18n import _, ngettext
from .profile_import import MAX_IMPORT_BYTES, ImportFormatError, ImportResult, export_text, parse_profiles, windows_user_note
from .profiles import Profile, ProfileFileError, ProfileStore, _write_atomically, new_profile_id, profile_problems

MAX_FIELD_LENGTH = 1024  # a host, user name or path longer than this is not a real setting
_FILE_FIELDS = ("ca_file", "eap_ca_file")  # cleared, with a note, when the file is not here


def _file_field_note(key: str, path: str, problem: str) -> str:
    """The note when the CA file (`key`) of an imported profile is not usable here."""
    if key == "ca_file":
        return _("Its CA file {path} is not usable here, so it was left empty: {reason}").format(path=path, reason=problem)
    return _("Its EAP CA file {path} is not usable here, so it was left empty: {reason}").format(path=path, reason=problem)


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
        count = len(self.added)
        if self.added:
            first = ngettext("Imported {count} profile from {format}:", "Imported {count} profiles from {format}:", count)
        else:
            first = ngettext("Imported {count} profile from {format}.", "Imported {count} profiles from {format}.", count)
        lines = [first.format(count=count, format=self.format)]
        # Translators: an imported profile in the summary, in place of its user name
        no_user = _("no user name")
        lines += [f"  {profile.name} ({profile.username or no_user}@{profile.server})" for profile in self.added]
        lines += [_("Not imported: {reason}").format(reason=sentence) for sentence in self.skipped]
        lines += [_("Note: {note}").format(note=sentence) for sentence in self.notes]
        return lines


def read_import_file(path: Path) -> ImportResult:
    """Parse a file to import. Raises TransferError (cannot read) or ImportFormatError (content)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_IMPORT_BYTES + 1)
    except OSError as error:
        raise TransferError(_("{path} cannot be read ({reason}).").format(path=path, reason=error.strerror or error)) from None
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
            notes = [note for note in notes if note != windows_user_note()]
        if not profile.username:
            report.skipped.append(
                _("{label} has no user name in the file: give one (sstp-vpn profiles import FILE --user NAME).").format(label=repr(label))
            )
            continue
        too_long = [key for key, value in vars(profile).items() if isinstance(value, str) and len(value) > MAX_FIELD_LENGTH]
        if too_long:
            report.skipped.append(
                _("{label}: its {fields} is longer than {limit} characters.").format(
                    label=repr(label[:MAX_FIELD_LENGTH]), fields=", ".join(too_long), limit=MAX_FIELD_LENGTH
                )
            )
            continue
        name = unique_name(profile.name, taken)
        if name != profile.name:
            notes.append(
                _("A profile called {name} exists already: this one is called {new_name}; the existing one was not changed.").format(
                    name=repr(profile.name), new_name=repr(name)
                )
            )
        profile = replace(profile, id=new_profile_id(), name=name)
        problems = profile_problems(profile, existing)
        for key in _FILE_FIELDS:
            if key in problems:
                notes.append(_file_field_note(key, getattr(profile, key), problems.pop(key)))
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
                raise TransferError(_("There is no profile called {name}; `sstp-vpn profiles list` shows them.").format(name=repr(name)))
            if profile not in chosen:
                chosen.append(profile)
    if not chosen:
        raise TransferError(_("There are no profiles to export."))
    if path.exists():
        raise TransferError(_("{path} exists already: choose another file name, or remove it first.").format(path=path))
    try:
        _write_atomically(path, export_text(chosen).encode("utf-8"))
    except OSError as error:
        raise TransferError(_("{path} cannot be written ({reason}).").format(path=path, reason=error.strerror or error)) from None
    return chosen


__all__ = ["ImportReport", "TransferError", "ProfileFileError", "export_file", "import_file", "import_profiles", "read_import_file", "unique_name"]
