"""The translations: every catalogue is finished (each sentence the code marks is translated, with
the same placeholders and accelerators, compiled into the .mo the app loads), the user's language
is chosen as gettext would, and the command line speaks it.

The tray's German session, with screenshots, is tests/gui/test_german_session.py.
"""

from __future__ import annotations

import gettext
import importlib.util
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

from sstpvpn.client.core import i18n
from sstpvpn.platform import language as language_module
from sstpvpn.platform.language import available_languages, catalogue_for, parse_apple_languages, use_users_language, wanted_languages

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMISED = ("de", "fr")  # complete, checked below; README, Languages


def _load_tool() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("translations_tool", REPO_ROOT / "installer" / "translations.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = _load_tool()


@pytest.fixture(scope="module")
def template() -> Catalog:
    return tool.template()


@pytest.fixture
def english_afterwards():
    yield
    i18n.use_catalogue(gettext.NullTranslations())


# -- the catalogues ---------------------------------------------------------------------------------


def test_the_promised_languages_are_shipped() -> None:
    assert set(PROMISED) <= set(tool.languages())
    assert set(PROMISED) <= set(available_languages())  # compiled, where the installed package looks


def test_the_template_holds_the_code_sentences(template: Catalog) -> None:
    ids = {message.id if isinstance(message.id, str) else message.id[0] for message in template if message.id}
    # A few from each layer, so an extraction that silently finds nothing cannot pass the next test.
    assert len(ids) > 500
    assert {"client/core", "client", "gui", "platform"} <= {
        "/".join(location[0].split("/")[:-1]) for message in template for location in message.locations
    }


@pytest.mark.parametrize("language", tool.languages())
def test_the_catalogue_is_finished(language: str, template: Catalog) -> None:
    assert tool.problems(language, template) == []


def test_unfinished_catalogues_are_told_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tool, "LOCALE", tmp_path)
    code = Catalog(domain=tool.DOMAIN)
    for message in ("Connect to {host}.", "&Quit", "Fuzzy", "Missing", "Right {host}"):
        code.add(message)
    code.add(("{count} profile", "{count} profiles"))
    translated = Catalog(locale="de", domain=tool.DOMAIN)
    translated.add("Connect to {host}.", "Mit {server} verbinden.")
    translated.add("&Quit", "Beenden")
    translated.add("Gone", "Weg")
    translated.add("Fuzzy", "Unscharf", flags=("fuzzy",))
    translated.add("Right {host}", "Richtig {host}")
    translated.add(("{count} profile", "{count} profiles"), ("{count} Profil", "{count} Profile {host}"))
    tool.write_catalogue(translated, "de")
    found = tool.problems("de", code)
    assert found == [
        "missing: 'Missing'",
        "no longer in the code: 'Gone'",
        "0 accelerators (&) instead of 1: '&Quit'",
        "placeholders ['server'] instead of ['host']: 'Connect to {host}.'",
        "fuzzy: 'Fuzzy'",
        "placeholders ['count', 'host'] do not fit ['count']: '{count} profile'",
        "sstp-vpn.mo is missing: run `python3 installer/translations.py compile`",
    ]
    tool.compile_all()
    assert tool.problems("de", code)[-1].startswith("placeholders")  # compiled: the .mo is current
    translated.add("Missing", "Fehlt")
    tool.write_catalogue(translated, "de")
    assert "sstp-vpn.mo is older than sstp-vpn.po: run `python3 installer/translations.py compile`" in tool.problems("de", code)


# -- choosing the language --------------------------------------------------------------------------


def test_the_language_comes_from_the_environment_in_gettext_order() -> None:
    nothing_from_the_system = list
    assert wanted_languages({"LANGUAGE": "de:fr", "LC_ALL": "it_IT.UTF-8", "LANG": "en_US.UTF-8"}, nothing_from_the_system) == ["de", "fr"]
    assert wanted_languages({"LC_ALL": "fr_FR.UTF-8", "LANG": "de_DE.UTF-8"}, nothing_from_the_system) == ["fr_FR.UTF-8"]
    assert wanted_languages({"LC_MESSAGES": "de_AT", "LANG": "fr_FR.UTF-8"}, nothing_from_the_system) == ["de_AT"]
    assert wanted_languages({"LANG": "C"}, nothing_from_the_system) == ["en"]
    assert wanted_languages({}, lambda: ["de_DE"]) == ["de_DE"]  # Windows and macOS programs get no LANG


def test_the_first_language_with_a_catalogue_is_chosen() -> None:
    assert catalogue_for(["fr_FR.UTF-8"])[0] == "fr"
    assert catalogue_for(["pt_BR", "de_AT.UTF-8@euro"])[0] == "de"
    assert catalogue_for(["en_GB", "de"])[0] == "en"  # English wanted before German
    assert catalogue_for(["C.UTF-8"])[0] == "en"
    language, catalogue = catalogue_for(["xx"])
    assert (language, type(catalogue)) == ("en", gettext.NullTranslations)


def test_a_chosen_language_translates_every_later_sentence(english_afterwards, template: Catalog) -> None:
    sentence = next(message.id for message in template if isinstance(message.id, str) and message.id and "{" not in message.id)
    assert i18n._(sentence) == sentence
    assert use_users_language({"LANGUAGE": "de"}) == "de"
    german = i18n._(sentence)
    assert use_users_language({"LANG": "fr_FR.UTF-8"}) == "fr"
    french = i18n._(sentence)
    assert len({sentence, german, french}) == 3
    assert use_users_language({"LANG": "C.UTF-8"}) == "en"
    assert i18n._(sentence) == sentence


def test_plural_forms_follow_each_language(english_afterwards, template: Catalog) -> None:
    singular, plural = next(message.id for message in template if isinstance(message.id, tuple))
    use_users_language({"LANGUAGE": "fr"})
    # French counts 0 as singular, German and English as plural.
    assert i18n.ngettext(singular, plural, 0) == i18n.ngettext(singular, plural, 1)
    use_users_language({"LANGUAGE": "de"})
    assert i18n.ngettext(singular, plural, 0) == i18n.ngettext(singular, plural, 2) != i18n.ngettext(singular, plural, 1)


def test_macos_display_languages_are_read_from_its_property_list() -> None:
    recorded = '(\n    "de-DE",\n    "fr-FR",\n    en\n)\n'  # `defaults read -g AppleLanguages` on macOS 14
    assert parse_apple_languages(recorded) == ["de_DE", "fr_FR", "en"]


def test_windows_display_language_is_the_users_ui_language(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    kernel32 = types.SimpleNamespace(GetUserDefaultUILanguage=lambda: 0x040C)  # LANGID of French (France)
    monkeypatch.setattr(ctypes, "windll", types.SimpleNamespace(kernel32=kernel32), raising=False)
    monkeypatch.setattr(language_module.sys, "platform", "win32")
    assert language_module.system_display_languages() == ["fr_FR"]


# -- the command line in German ---------------------------------------------------------------------


def _cli(language: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LANGUAGE": language}
    return subprocess.run([sys.executable, "-m", "sstpvpn.client.cli", *args], capture_output=True, text=True, env=env, timeout=60)


def _catalogue(language: str) -> gettext.GNUTranslations:
    with (REPO_ROOT / "assets" / "locale" / language / "LC_MESSAGES" / "sstp-vpn.mo").open("rb") as file:
        return gettext.GNUTranslations(file)


@pytest.mark.parametrize("language", PROMISED)
def test_the_command_line_speaks_the_users_language(language: str) -> None:
    words = _catalogue(language)
    shown = _cli(language, "--help")
    assert shown.returncode == 0
    assert shown.stdout.startswith(words.gettext("usage: ") + "sstp-vpn ")  # argparse's own words too
    assert words.gettext("Connect to an SSTP VPN server.") in shown.stdout
    assert words.gettext("show the version and exit") in shown.stdout
    refused = _cli(language, "connect", "--profile", "Nowhere")
    sentence = words.gettext("There is no profile called {name}; `sstp-vpn profiles list` shows them.").format(name=repr("Nowhere"))
    assert (refused.returncode, refused.stderr) == (2, f"sstp-vpn: {sentence}\n")
    wrong = _cli(language, "connect", "--bogus")
    assert words.gettext("unrecognized arguments: %s") % "--bogus" in wrong.stderr
    english = _cli("en", "connect", "--profile", "Nowhere")
    assert english.stderr == "sstp-vpn: There is no profile called 'Nowhere'; `sstp-vpn profiles list` shows them.\n"


@pytest.mark.parametrize("language", tool.languages())
def test_texts_the_code_puts_together_agree(language: str) -> None:
    """Where code finds one translated text inside another, the translations must agree: an editor
    label and the same label with its colon (presentation's field names in sentences), and the
    host-name advice that EAP sentences replace (client/core/eap_tls.py)."""
    translated = {message.id: message.string for message in tool.read_catalogue(language) if isinstance(message.id, str) and message.id}
    for english, text in translated.items():
        if english.endswith(":") and english[:-1] in translated:
            assert text.rstrip(" :\u00a0") == translated[english[:-1]], english
    advice = translated["Check the host name in the profile."]
    assert advice in translated["The server's certificate is for {names}, not {expected}. Check the host name in the profile."]
