"""The words the user reads, in the user's language.

`_("Sentence with {name}.").format(name=...)` marks a sentence for the translators and looks it up
in the catalogue chosen at the edge (client/language.py, when the CLI, the tray or the helper
starts); until one is chosen the English text is used, as in the tests. The core only looks up:
choosing a language and reading its catalogue (the environment, files) happen at the edges.

Rules the translators rely on (tests/unit/test_translations.py checks them):
- the argument of `_` is one string literal, never an f-string or a variable, so it can be found;
- placeholders are named (`{host}`, not `{}`), so a translation may put them in another order;
- `_` runs when the sentence is needed, never at import time (the language is not chosen yet).
"""

from __future__ import annotations

import gettext

_catalogue: gettext.NullTranslations = gettext.NullTranslations()


def use_catalogue(catalogue: gettext.NullTranslations) -> None:
    """From now on, sentences come from `catalogue` (NullTranslations: English)."""
    global _catalogue
    _catalogue = catalogue


def _(message: str) -> str:
    return _catalogue.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form for `count` ("1 profile" / "2 profiles"); languages have their own plural rules."""
    return _catalogue.ngettext(singular, plural, count)
