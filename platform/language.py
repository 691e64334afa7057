"""Choosing the user's language and loading its catalogue (the edge of client/core/i18n.py).

The catalogues are assets/locale/<language>/LC_MESSAGES/sstp-vpn.mo, compiled from the .po files
next to them (installer/translations.py). The language comes from the environment as gettext reads
it everywhere (LANGUAGE, a list such as "de:fr", then LC_ALL, LC_MESSAGES, LANG); where none of
those is set, as for programs started by Windows or macOS, from the system's display languages.
A language without a catalogue falls through to the next one wanted, and finally to English.
"""

from __future__ import annotations

import argparse
import gettext
import locale
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from sstpvpn.client.core import i18n

DOMAIN = "sstp-vpn"
ENVIRONMENT_NAMES = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")  # gettext's order
ENGLISH = "en"  # the language the sentences are written in: it has no catalogue


def catalogue_folder() -> Path:
    from sstpvpn import assets

    return Path(assets.__file__).resolve().parent / "locale"


def available_languages(folder: Path | None = None) -> list[str]:
    """The languages with a compiled catalogue, e.g. ["de", "fr"]."""
    folder = folder or catalogue_folder()
    return sorted(path.parent.parent.name for path in folder.glob(f"*/LC_MESSAGES/{DOMAIN}.mo"))


def wanted_languages(environ: Mapping[str, str] | None = None, system_languages: Callable[[], list[str]] | None = None) -> list[str]:
    """The user's languages, most wanted first, as locale names ("de_DE.UTF-8", "fr")."""
    environ = os.environ if environ is None else environ
    for name in ENVIRONMENT_NAMES:
        value = environ.get(name, "")
        if value:
            # "C" and "POSIX" mean untranslated; LANGUAGE lists several, separated by ":".
            return [language for language in value.split(":") if language and language not in ("C", "POSIX")] or [ENGLISH]
    return (system_languages or system_display_languages)()


def catalogue_for(languages: list[str], folder: Path | None = None) -> tuple[str, gettext.NullTranslations]:
    """(the language chosen, its catalogue): the first of `languages` with a catalogue, else English."""
    folder = folder or catalogue_folder()
    for language in languages:
        base = language.split(".")[0].split("@")[0]  # de_DE.UTF-8@euro -> de_DE
        if base.split("_")[0] == ENGLISH:
            break
        for candidate in (base, base.split("_")[0]):
            path = folder / candidate / "LC_MESSAGES" / f"{DOMAIN}.mo"
            if path.is_file():
                with path.open("rb") as file:
                    return candidate, gettext.GNUTranslations(file)
    return ENGLISH, gettext.NullTranslations()


def use_users_language(environ: Mapping[str, str] | None = None) -> str:
    """Load the catalogue of the user's language for every sentence from now on; returns the
    language chosen ("de", "fr" ... or "en")."""
    language, catalogue = catalogue_for(wanted_languages(environ))
    i18n.use_catalogue(catalogue)
    # argparse looks its own words ("usage: ", "options", its errors) up through its module's `_`
    # and `ngettext` (gettext's global functions) when it prints: our catalogue has them
    # (installer/translations.py, ARGPARSE_WORDS).
    setattr(argparse, "_", i18n._)  # noqa: B010 (argparse declares no such attribute to type checkers)
    setattr(argparse, "ngettext", i18n.ngettext)  # noqa: B010
    return language


# -- the system's display languages, where the environment names none -----------------------------


def system_display_languages() -> list[str]:
    if sys.platform == "win32":
        return _windows_display_language()
    if sys.platform == "darwin":
        return _macos_display_languages()
    return []


def _windows_display_language() -> list[str]:
    import ctypes

    language_id = ctypes.windll.kernel32.GetUserDefaultUILanguage()  # type: ignore[attr-defined]
    name = locale.windows_locale.get(language_id)
    return [name] if name else []


def _macos_display_languages() -> list[str]:
    try:
        output = subprocess.run(["defaults", "read", "-g", "AppleLanguages"], capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return parse_apple_languages(output)


def parse_apple_languages(output: str) -> list[str]:
    """`defaults read -g AppleLanguages` prints a property list: ("de-DE", en) -> ["de_DE", "en"]."""
    languages = []
    for line in output.splitlines():
        item = line.strip().strip("(),").strip().strip('"')
        if item:
            languages.append(item.replace("-", "_"))
    return languages
