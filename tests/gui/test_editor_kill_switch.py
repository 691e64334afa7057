"""The profile editor's kill switch (issue 19): off / while connected and reconnecting / always,
what it blocks in a sentence under it, and "Let the local network through", usable only when the
kill switch is on; saved and loaded with the profile, and refused beside a PAC file as it is chosen."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication

from sstpvpn.client.core.types import KillSwitchMode
from sstpvpn.client.profiles import Profile, ProxyMode, new_profile_id
from sstpvpn.gui.editor import kill_switch_with_pac_sentence
from tests.gui.test_editor import choose, open_editor, save_button, visible_errors


def test_the_kill_switch_is_saved_and_loaded_and_the_lan_box_follows_it(qtbot, store, secrets):
    editor = open_editor(qtbot, store, secrets, Profile(id=new_profile_id(), name="Office", host="vpn.example.com", username="alice"))
    assert [editor.kill_switch.itemText(i) for i in range(editor.kill_switch.count())] == [
        "Off",
        "While connected and reconnecting",
        "Always, from Connect until Disconnect",
    ]
    assert editor.kill_switch.currentData() is KillSwitchMode.OFF and not editor.kill_switch_allow_lan.isEnabled()
    assert "except the tunnel and the connection to the server" in editor.kill_switch_note.text()
    choose(editor.kill_switch, KillSwitchMode.CONNECTED)
    assert editor.kill_switch_allow_lan.isEnabled()
    editor.kill_switch_allow_lan.setChecked(True)
    with qtbot.waitSignal(editor.saved, timeout=10000):
        save_button(editor).click()
    (saved,) = store.load().profiles
    assert (saved.kill_switch, saved.kill_switch_allow_lan) == (KillSwitchMode.CONNECTED, True)

    again = open_editor(qtbot, store, secrets, saved)
    assert again.kill_switch.currentData() is KillSwitchMode.CONNECTED
    assert again.kill_switch_allow_lan.isChecked() and again.kill_switch_allow_lan.isEnabled()
    choose(again.kill_switch, KillSwitchMode.ALWAYS)
    again.kill_switch_allow_lan.setChecked(False)
    with qtbot.waitSignal(again.saved, timeout=10000):
        save_button(again).click()
    (saved,) = store.load().profiles
    assert (saved.kill_switch, saved.kill_switch_allow_lan) == (KillSwitchMode.ALWAYS, False)

    off = open_editor(qtbot, store, secrets, saved)
    assert off.kill_switch.currentData() is KillSwitchMode.ALWAYS and not off.kill_switch_allow_lan.isChecked()
    choose(off.kill_switch, KillSwitchMode.OFF)
    assert not off.kill_switch_allow_lan.isEnabled()
    assert off.current_profile().kill_switch is KillSwitchMode.OFF


def test_a_kill_switch_with_a_pac_file_is_refused_as_it_is_chosen(qtbot, store, secrets):
    """The connection would refuse it (the kill switch blocks the PAC file's look-ups): the editor says so first."""
    editor = open_editor(qtbot, store, secrets, Profile(id=new_profile_id(), name="Office", host="vpn.example.com", username="alice"))
    choose(editor.proxy_mode, ProxyMode.PAC)
    assert visible_errors(editor) == {} and save_button(editor).isEnabled()
    choose(editor.kill_switch, KillSwitchMode.ALWAYS)
    assert visible_errors(editor) == {"kill_switch": kill_switch_with_pac_sentence()}
    assert "proxy auto-config (PAC)" in kill_switch_with_pac_sentence() and not save_button(editor).isEnabled()
    choose(editor.proxy_mode, ProxyMode.SYSTEM)
    assert visible_errors(editor) == {} and save_button(editor).isEnabled()


def test_the_editor_shows_the_kill_switch_in_the_network_group(qtbot, store, secrets, screenshots):
    profile = Profile(id=new_profile_id(), name="Office", host="vpn.example.com", username="alice", kill_switch=KillSwitchMode.ALWAYS)
    editor = open_editor(qtbot, store, secrets, profile)
    editor.move(0, 0)
    qtbot.waitExposed(editor)
    note = editor.kill_switch_note
    assert note.isVisible() and editor.kill_switch.isVisible()
    qtbot.waitUntil(lambda: note.height() >= note.heightForWidth(note.width()))  # the explanation is not cut off
    editor.form_area.ensureWidgetVisible(editor.kill_switch_allow_lan)
    qtbot.wait(200)
    assert QGuiApplication.primaryScreen().grabWindow(0, *editor.frameGeometry().getRect()).save(str(screenshots / "profile-editor-kill-switch.png"))
