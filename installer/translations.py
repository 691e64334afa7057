"""The translators' tool: find the sentences marked with `_` / `ngettext`, bring every language's
catalogue up to date with them, compile the catalogues the app loads, and say what is missing.

    python3 installer/translations.py update      # after changing sentences: new ones appear untranslated
    python3 installer/translations.py new LANG    # start a language, e.g. `new it`
    python3 installer/translations.py compile     # after translating: writes the .mo files the app reads
    python3 installer/translations.py check       # what tests/unit/test_translations.py checks

The catalogues live in assets/locale/<language>/LC_MESSAGES/sstp-vpn.po (the translators' text) and
sstp-vpn.mo next to it (compiled, shipped in the package; the test fails when it is stale). They
keep no line numbers, so moving code does not change them. Babel does the reading and writing.
"""

from __future__ import annotations

import argparse
import gettext
import io
import re
import string
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("client", "gui", "platform")
LOCALE = REPO_ROOT / "assets" / "locale"
DOMAIN = "sstp-vpn"
KEYWORDS = {"_": None, "ngettext": (1, 2)}  # client/core/i18n.py
COMMENT_TAG = "Translators:"
HEADER_COMMENT = "# SSTP VPN's sentences, translated. How to add or mend a translation: README.md, Languages.\n#"
FIXED_DATE = datetime(2026, 1, 1, tzinfo=UTC)  # the template's date: a constant, so updating changes only what changed


# argparse's own words, which the command line shows around ours: its help frame and its error
# sentences. No catalogue of Python's ships them; argparse looks them up at run time through the
# lookup platform/language.py hands it, so they live in our catalogue (taken from Python 3.11's
# argparse.py, the words a user of `sstp-vpn` can meet).
ARGPARSE_WORDS: tuple[str | tuple[str, str], ...] = (
    "usage: ",
    "positional arguments",
    "options",
    "show this help message and exit",
    "%(prog)s: error: %(message)s\n",
    "argument %(argument_name)s: %(message)s",
    "unrecognized arguments: %s",
    "the following arguments are required: %s",
    "one of the arguments %s is required",
    "not allowed with argument %s",
    "expected one argument",
    "expected at most one argument",
    "expected at least one argument",
    ("expected %s argument", "expected %s arguments"),
    "ambiguous option: %(option)s could match %(matches)s",
    "invalid %(type)s value: %(value)r",
    "invalid choice: %(value)r (choose from %(choices)s)",
    "ignored explicit argument %r",
    "can't open '%(filename)s': %(error)s",
)


def template() -> Catalog:
    """Every marked sentence of the code, with the translators' comments and where it is used,
    and argparse's words."""
    catalog = Catalog(domain=DOMAIN, project="SSTP VPN", creation_date=FIXED_DATE, charset="utf-8", fuzzy=False)
    for words in ARGPARSE_WORDS:
        comment = "Python's argparse, around the command line's own help and errors; keep each %(name)s and %s"
        catalog.add(words, locations=[("argparse.py", None)], auto_comments=[comment])
    for folder in SOURCE_FOLDERS:
        found = extract_from_dir(
            REPO_ROOT / folder, keywords=KEYWORDS, comment_tags=(COMMENT_TAG,), strip_comment_tags=True, directory_filter=_not_cache
        )
        for filename, lineno, message, comments, context in found:
            flags = ("python-brace-format",) if _placeholders(message if isinstance(message, str) else message[0]) else ()
            catalog.add(message, locations=[(f"{folder}/{filename}", lineno)], auto_comments=comments, context=context, flags=flags)
    return catalog


def _not_cache(path: str) -> bool:
    return Path(path).name != "__pycache__"


def po_path(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def languages() -> list[str]:
    return sorted(path.parents[1].name for path in LOCALE.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def read_catalogue(language: str) -> Catalog:
    with po_path(language).open("rb") as file:
        return read_po(file, locale=language, domain=DOMAIN)


def write_catalogue(catalog: Catalog, language: str) -> None:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=0, include_lineno=False, ignore_obsolete=True, sort_output=True)
    po_path(language).parent.mkdir(parents=True, exist_ok=True)
    po_path(language).write_bytes(buffer.getvalue())


def compiled(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def update(new_language: str | None = None) -> None:
    current = template()
    for language in [*languages(), *([new_language] if new_language else [])]:
        if po_path(language).exists():
            catalog = read_catalogue(language)
            catalog.update(current, no_fuzzy_matching=True, update_creation_date=True)
        else:
            catalog = Catalog(
                locale=language,
                domain=DOMAIN,
                header_comment=HEADER_COMMENT,
                project="SSTP VPN",
                creation_date=FIXED_DATE,
                revision_date=FIXED_DATE,
                last_translator="SSTP VPN developers",
                language_team=language,
                charset="utf-8",
                fuzzy=False,
            )
            catalog.update(current, no_fuzzy_matching=True)
        write_catalogue(catalog, language)
        print(f"{_shown(po_path(language))}: {len(problems(language))} entries to translate or mend")


def compile_all() -> None:
    for language in languages():
        path = po_path(language).with_suffix(".mo")
        path.write_bytes(compiled(read_catalogue(language)))
        print(_shown(path))


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


# -- what a finished catalogue must be --------------------------------------------------------------


def _placeholders(text: str) -> set[str]:
    """{name} fields, and argparse's %(name)s and %s ones."""
    percent = set(re.findall(r"%\(\w+\)[sdr]|%[sdr]", text))
    try:
        return percent | {field.split(".")[0].split("[")[0] for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError:  # a lone brace: not a format string
        return percent


def _accelerators(text: str) -> int:
    """Qt's keyboard accelerators: "&Quit" has one; "&&" and "Users & Groups" have none."""
    return len(re.findall(r"&(?=[^&\s])", text.replace("&&", "")))


def _flag_mentions(text: str) -> list[str]:
    """Mentions of flags, "(--ca-file)" and "(or --route)" (one word, any language): the tray turns them into the
    editor's field names (gui/presentation.py, FLAG_MENTION), so a translation keeps their shape."""
    return sorted(match.group(2) for match in re.finditer(r"\((\w+ )?(--[a-z][a-z0-9-]*)\)", text))


def problems(language: str, current: Catalog | None = None) -> list[str]:
    """Why the catalogue of `language` is not finished: sentences missing or left fuzzy, entries the
    code no longer has, placeholders or accelerators that differ from the English, a stale .mo."""
    current = current or template()
    catalog = read_catalogue(language)
    found = []
    wanted = {message.id if isinstance(message.id, str) else message.id[0]: message for message in current if message.id}
    have = {message.id if isinstance(message.id, str) else message.id[0]: message for message in catalog if message.id}
    for key in sorted(wanted.keys() - have.keys()):
        found.append(f"missing: {key!r}")
    for key in sorted(have.keys() - wanted.keys()):
        found.append(f"no longer in the code: {key!r}")
    for key in sorted(wanted.keys() & have.keys()):
        found.extend(_entry_problems(wanted[key], have[key]))
    found.extend(_stale_compiled(language, catalog))
    return found


def _entry_problems(english: Message, translated: Message) -> list[str]:
    singular = english.id if isinstance(english.id, str) else english.id[0]
    forms = [translated.string] if isinstance(translated.string, str) else list(translated.string)
    if translated.fuzzy:
        return [f"fuzzy: {singular!r}"]
    if not all(forms):
        return [f"untranslated: {singular!r}"]
    if isinstance(english.id, str) != isinstance(translated.id, str):
        return [f"plural forms differ from the code: {singular!r}"]
    found = []
    if isinstance(english.id, str):
        if _placeholders(forms[0]) != _placeholders(english.id):
            found.append(f"placeholders {sorted(_placeholders(forms[0]))} instead of {sorted(_placeholders(english.id))}: {singular!r}")
        if _accelerators(forms[0]) != _accelerators(english.id):
            found.append(f"{_accelerators(forms[0])} accelerators (&) instead of {_accelerators(english.id)}: {singular!r}")
        if _flag_mentions(forms[0]) != _flag_mentions(english.id):
            found.append(f"flag mentions {_flag_mentions(forms[0])} instead of {_flag_mentions(english.id)}: {singular!r}")
    else:
        allowed = _placeholders(english.id[1]) | _placeholders(english.id[0])
        for form in forms:
            if not _placeholders(form) <= allowed or not (_placeholders(english.id[0]) - {"count"}) <= _placeholders(form):
                found.append(f"placeholders {sorted(_placeholders(form))} do not fit {sorted(allowed)}: {singular!r}")
    return found


def _stale_compiled(language: str, catalog: Catalog) -> list[str]:
    path = po_path(language).with_suffix(".mo")
    if not path.exists():
        return [f"{path.name} is missing: run `python3 installer/translations.py compile`"]
    with path.open("rb") as file:
        shipped = gettext.GNUTranslations(file)
    fresh = gettext.GNUTranslations(io.BytesIO(compiled(catalog)))
    if _messages(shipped) != _messages(fresh):
        return [f"{path.name} is older than {path.with_suffix('.po').name}: run `python3 installer/translations.py compile`"]
    return []


def _messages(translations: gettext.GNUTranslations) -> dict:
    return {key: value for key, value in translations._catalog.items() if key != ""}  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Update, start, compile and check SSTP VPN's translations.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("update", help="bring every catalogue up to date with the code")
    commands.add_parser("new", help="start a catalogue for a new language").add_argument("language", help="e.g. it, pt_BR")
    commands.add_parser("compile", help="write the .mo files the app loads")
    commands.add_parser("check", help="list what is missing or wrong in each catalogue")
    args = parser.parse_args(argv)
    if args.command == "update":
        update()
    elif args.command == "new":
        update(args.language)
    elif args.command == "compile":
        compile_all()
    else:
        current = template()
        unfinished = {language: problems(language, current) for language in languages()}
        for language, found in unfinished.items():
            print(f"{language}: {len(found)} problems", *(f"  {problem}" for problem in found), sep="\n")
        return 1 if any(unfinished.values()) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
