"""The one question asked before switching from a connected profile to another, from the profiles
window and from the tray menu alike: "Disconnect Office and connect Home?"; Cancel leaves the
session alone."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox, QWidget

from sstpvpn.client.core.i18n import _
from sstpvpn.client.profiles import Profile, ProfileFileError, ProfileStore

from .connection import ConnectionController


def ask_to_switch(
    parent: QWidget | None,
    controller: ConnectionController,
    store: ProfileStore,
    current: Profile,
    profile: Profile,
    closed: Callable[[], None],
) -> QMessageBox:
    """Open the question (not modal) and return it; `closed` runs when it is answered either way.
    Yes connects `profile` as it is on disk then (the controller ends the running session first)."""
    question = QMessageBox(
        QMessageBox.Icon.Question,
        # Translators: title of the question asked before switching to another connection
        _("Switch connection"),
        _("Disconnect {current} and connect {profile}?").format(current=current.name, profile=profile.name),
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        parent,
    )
    question.setObjectName("switch_question")
    question.setDefaultButton(QMessageBox.StandardButton.Cancel)
    # Translators: button of the "Switch connection" question
    question.button(QMessageBox.StandardButton.Yes).setText(_("Disconnect and connect"))

    def answered(_result: int) -> None:
        closed()
        if question.clickedButton() is not question.button(QMessageBox.StandardButton.Yes) or controller.shutting_down:
            return
        try:
            chosen = store.load().by_id(profile.id)  # as it is now
        except ProfileFileError:
            chosen = None
        if chosen is not None:
            controller.connect_profile(chosen)  # ends the running session first

    question.finished.connect(answered)
    question.open()
    return question
