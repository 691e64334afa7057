"""The start-up preamble the CLI and the tray share: unsupported system, untested-system note,
helper or root, journal repair (only when this process makes the tunnel itself)."""

from __future__ import annotations

import pytest

from sstpvpn.client.core.types import Failure, FailureKind, Layer
from sstpvpn.platform import current
from sstpvpn.platform.errors import PlatformError
from sstpvpn.platform.session_preparation import SessionPreparation, prepare

NOTE = "The macOS support of SSTP VPN has not yet been run on a real macOS system; ..."


class Repairs:
    """A recorded journal repair: its answer, or the PlatformError it raises."""

    def __init__(self, answer: bool | PlatformError = False) -> None:
        self.answer = answer
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        if isinstance(self.answer, PlatformError):
            raise self.answer
        return self.answer


def test_an_unsupported_system_is_refused_before_anything_else():
    repair = Repairs(True)
    asked = []
    prepared = prepare(
        "SSTP VPN runs on Linux, Windows and macOS; this system (freebsd14) is not supported.", None, lambda: asked.append(True) or False, repair
    )
    assert prepared == SessionPreparation(
        failure=Failure(Layer.PLATFORM, "SSTP VPN runs on Linux, Windows and macOS; this system (freebsd14) is not supported.", FailureKind.OTHER)
    )
    assert repair.calls == 0 and asked == []


@pytest.mark.parametrize("left_behind", [True, False])
def test_root_repairs_what_a_crashed_session_left(left_behind):
    repair = Repairs(left_behind)
    assert prepare(None, NOTE, lambda: False, repair) == SessionPreparation(repaired=left_behind, note=NOTE)
    assert repair.calls == 1


def test_through_the_helper_the_helper_repairs():
    repair = Repairs(True)
    assert prepare(None, None, lambda: True, repair) == SessionPreparation()
    assert repair.calls == 0


def test_a_failed_repair_is_the_failure_to_show():
    sentence = "The journal /run/sstp-vpn/journal.json is damaged; it was moved aside."
    prepared = prepare(None, NOTE, lambda: False, Repairs(PlatformError(sentence)))
    assert prepared == SessionPreparation(failure=Failure(Layer.NETWORK, sentence, FailureKind.OTHER), note=NOTE)


def test_an_error_that_is_not_the_platforms_is_a_bug_and_is_raised():
    with pytest.raises(ZeroDivisionError):
        prepare(None, None, lambda: False, lambda: 1 / 0)


def test_current_prepares_with_this_systems_answers(monkeypatch, tmp_path):
    journals = []
    monkeypatch.setattr(current, "uses_network_helper", lambda: False)
    monkeypatch.setattr(current, "default_journal_path", lambda: tmp_path / "journal.json")
    monkeypatch.setattr(current, "repair_from_journal", lambda path: journals.append(path) or True)
    assert current.prepare_session() == SessionPreparation(repaired=True, note=current.untested_note())
    assert journals == [tmp_path / "journal.json"]
    monkeypatch.setattr(current, "uses_network_helper", lambda: True)
    assert current.prepare_session() == SessionPreparation(note=current.untested_note())
    assert journals == [tmp_path / "journal.json"]
    monkeypatch.setattr(current, "unsupported_sentence", lambda: "Not here.")
    assert current.prepare_session().failure == Failure(Layer.PLATFORM, "Not here.", FailureKind.OTHER)
