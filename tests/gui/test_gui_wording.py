"""Sentences of client/ (shared with the command line) as the GUI shows them: a profile setting
named by its flag ("(--ca-file)") is named by the editor's field; and the few words for a failed
attempt that the tray menu's header shows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from PySide6.QtWidgets import QCheckBox, QLabel

from sstpvpn.client.cli import build_parser
from sstpvpn.client.core.types import Failure, FailureKind, Layer
from sstpvpn.gui.editor import ProfileEditor
from sstpvpn.gui.presentation import FLAG_MENTION, flag_boxes, flag_fields, in_gui_words, last_attempt

ROOT = Path(__file__).resolve().parents[2]


def flags_mentioned_in_sentences() -> dict[str, list[str]]:
    """Every "(--flag)" or "(or --flag)" in a string of client/ or platform/ (f-strings too),
    with where it is: the sentences that name a profile setting by its command-line flag."""
    found: dict[str, list[str]] = {}
    for folder in ("client", "platform"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    for match in FLAG_MENTION.finditer(node.value):
                        found.setdefault(match.group(2), []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_flag_named_in_a_sentence_has_the_editors_field():
    mentioned = flags_mentioned_in_sentences()
    assert {"--ca-file", "--eap-ca-file", "--eap-server-name", "--client-cert", "--route"} <= mentioned.keys()  # the scan sees them
    missing = {flag: where for flag, where in mentioned.items() if flag not in flag_fields() and flag not in flag_boxes()}
    assert not missing, f"add these flags to gui/presentation.py flag_fields(): {missing}"


def test_the_table_names_real_flags_and_real_editor_fields(qtbot, store, secrets):
    parser_flags: set[str] = set()
    parsers = [build_parser()]
    while parsers:  # the flags of every sub-command
        parser = parsers.pop()
        for action in parser._actions:
            parser_flags.update(action.option_strings)
            if action.choices and isinstance(action.choices, dict):
                parsers.extend(action.choices.values())
    assert set(flag_fields()) | set(flag_boxes()) <= parser_flags
    editor = ProfileEditor(store, secrets)
    qtbot.addWidget(editor)
    labels = {label.text() for label in editor.findChildren(QLabel)}
    assert {f"{field}:" for field in flag_fields().values()} <= labels
    boxes = {box.text().split(" (")[0] for box in editor.findChildren(QCheckBox)}
    assert set(flag_boxes().values()) <= boxes


@pytest.mark.parametrize(
    "sentence, shown",
    [
        (
            "The server's certificate is not trusted: if you trust this server, add its CA certificate to the profile (--ca-file).",
            "The server's certificate is not trusted: if you trust this server, add its CA certificate to the profile (the “Extra CA file” field).",
        ),
        (
            "Cannot read the CA certificate file /x.pem (No such file): check the CA file in the profile (--ca-file).",
            "Cannot read the CA certificate file /x.pem (No such file): check the CA file in the profile (the “Extra CA file” field).",
        ),
        ("set the EAP server name (--eap-server-name).", "set the EAP server name (the “EAP server name” field)."),
        ("remove the route from the profile (or --route).", "remove the route from the profile (or the “Also route” field)."),
        ("choose one (--client-cert).", "choose one (the “Certificate file” field)."),
        ("Allow PAP (--allow-pap) in the profile", "Allow PAP (the “Allow PAP” box) in the profile"),
        ("CHAP-MD5 (--allow-chap-md5)", "CHAP-MD5 (the “Allow CHAP-MD5 and EAP-MD5” box)"),
        ("pass --password-stdin", "pass --password-stdin"),  # not a profile setting: left alone
        ("The server ended the connection.", "The server ended the connection."),
    ],
)
def test_flags_become_field_names(sentence, shown):
    assert in_gui_words(sentence) == shown
    assert in_gui_words(shown) == shown


def test_the_real_trust_sentence_names_the_field():
    import ssl

    from sstpvpn.client import trust

    sentence = trust.verification_sentence(ssl.SSLCertVerificationError("unable to get local issuer certificate"), [])
    assert "(--ca-file)" in sentence
    shown = in_gui_words(sentence)
    assert "--" not in shown and "“Extra CA file”" in shown


@pytest.mark.parametrize(
    "failure, words",
    [
        (Failure(Layer.AUTH, "The server refused the user name or password.", FailureKind.AUTHENTICATION), "sign-in refused"),
        (Failure(Layer.TCP, "refused", FailureKind.UNREACHABLE), "server unreachable"),
        (Failure(Layer.DNS, "no such name", FailureKind.UNREACHABLE), "server name not found"),
        (Failure(Layer.PROXY, "proxy refused", FailureKind.UNREACHABLE), "proxy failed"),
        (Failure(Layer.TLS, "not trusted", FailureKind.TRUST), "certificate not trusted"),
        (Failure(Layer.TLS, "broke", FailureKind.PROTOCOL), "encrypted connection failed"),
        (Failure(Layer.NETWORK, "no TUN", FailureKind.OTHER), "network setup failed on this computer"),
        (Failure(Layer.PROFILE, "bad pin", FailureKind.OTHER), "the profile needs a fix"),
        (Failure(Layer.SESSION, "in use", FailureKind.OTHER), "the profile is in use elsewhere"),
        (Failure(Layer.SSTP, "aborted"), "the server ended the connection"),
    ],
)
def test_last_attempt_in_a_few_words(failure, words):
    assert last_attempt(failure) == words


def test_every_layer_has_words():
    for layer in Layer:
        for kind in FailureKind:
            assert last_attempt(Failure(layer, "x", kind)) not in ("", "failed")
