"""The profile editor's company-network settings (issue 17): the proxy choice (none, the system's
settings, a PAC file or WPAD, a proxy typed in), the PAC URL checked as it is typed and usable only
for PAC, "Allow Basic" for every proxy choice, and what to do when revocation cannot be checked;
each kept through Save and a later edit, and nothing moving as the PAC URL's error comes and goes."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication

from sstpvpn.client.profiles import Profile, ProxyChoice, ProxyMode, Revocation, new_profile_id
from sstpvpn.client.secret_store import SecretKind
from sstpvpn.gui.editor import proxy_modes, revocation_choices
from tests.gui.test_editor import choose, fill, open_editor, save_button, visible_errors
from tests.gui.test_editor_fields import active, field_positions, type_into, typed_in_turn
from tests.unit.test_secret_store import keyring_items

PAC_PROBLEM = "Write the PAC file's address as http://host/proxy.pac, or leave it empty to find it by WPAD."


def combo_items(combo) -> list[tuple[object, str]]:
    return [(combo.itemData(i), combo.itemText(i)) for i in range(combo.count())]


def test_the_proxy_choices_and_what_each_makes_usable(qtbot, store, secrets):
    editor = open_editor(qtbot, store, secrets)
    assert combo_items(editor.proxy_mode) == [
        (ProxyMode.NONE, "No proxy"),
        (ProxyMode.SYSTEM, "The system's proxy settings"),
        (ProxyMode.PAC, "Automatic configuration (PAC)"),
        (ProxyMode.MANUAL, "This proxy:"),
    ]
    assert [mode for mode, _label in proxy_modes()] == list(ProxyMode)  # every mode offered
    assert combo_items(editor.revocation) == [(Revocation.SOFT, "Connect and warn"), (Revocation.HARD, "Refuse to connect")]
    assert [choice for choice, _label in revocation_choices()] == list(Revocation)
    assert editor.pac_url.placeholderText() == "empty: found by WPAD (automatic discovery)"
    assert editor.allow_basic.text() == "Allow Basic authentication"
    assert editor.allow_basic_note.text().startswith("Basic sends the proxy password readable by the proxy's network.")
    assert editor.allow_basic_note.isVisibleTo(editor) and editor.allow_basic.accessibleDescription() == editor.allow_basic_note.text()
    assert editor.minimumSizeHint().width() <= 1000  # the new rows do not widen the window (901 px on this display)

    usable = {}
    for mode in ProxyMode:
        choose(editor.proxy_mode, mode)
        usable[mode] = (
            editor.pac_url.isEnabled(),
            editor.proxy_user.isEnabled(),
            editor.proxy_url.isEnabled(),
            editor.proxy_password.isEnabled(),
            editor.allow_basic.isEnabled(),
        )
        assert editor.allow_basic_note.isEnabled() is editor.allow_basic.isEnabled()
    assert usable == {  # (PAC URL, proxy user, proxy URL, proxy password, Allow Basic)
        ProxyMode.NONE: (False, False, False, False, False),
        ProxyMode.SYSTEM: (False, False, False, False, True),
        ProxyMode.PAC: (True, True, False, True, True),
        ProxyMode.MANUAL: (False, False, True, True, True),
    }
    # A new profile: Basic allowed, soft revocation (the model's defaults)
    fill(editor, name="Office", host="vpn.example.com", username="alice")
    assert editor.allow_basic.isChecked() and editor.current_profile().revocation is Revocation.SOFT


def test_the_pac_url_is_checked_as_it_is_typed(qtbot, store, secrets, screenshots):
    editor = active(qtbot, open_editor(qtbot, store, secrets))
    fill(editor, name="Office", host="vpn.example.com", username="alice")
    choose(editor.proxy_mode, ProxyMode.PAC)
    assert visible_errors(editor) == {} and save_button(editor).isEnabled()  # empty: WPAD
    assert editor.current_profile().proxy == ProxyChoice(ProxyMode.PAC, pac_url="")
    type_into(qtbot, editor.pac_url, "wpad.corp.example/proxy.pac")
    assert visible_errors(editor) == {"pac_url": PAC_PROBLEM}
    assert not save_button(editor).isEnabled() and not editor.test_button.isEnabled()
    type_into(qtbot, editor.pac_url, "http://wpad.corp.example/proxy.pac")
    assert visible_errors(editor) == {} and save_button(editor).isEnabled()
    assert editor.current_profile().proxy == ProxyChoice(ProxyMode.PAC, pac_url="http://wpad.corp.example/proxy.pac")

    type_into(qtbot, editor.pac_url, "http://wpad corp/proxy.pac")
    assert visible_errors(editor) == {"pac_url": PAC_PROBLEM}
    choose(editor.proxy_mode, ProxyMode.SYSTEM)  # the PAC URL no longer counts: no error, Save is possible
    assert visible_errors(editor) == {} and save_button(editor).isEnabled()
    assert editor.current_profile().proxy == ProxyChoice(ProxyMode.SYSTEM)
    choose(editor.proxy_mode, ProxyMode.PAC)
    assert visible_errors(editor) == {"pac_url": PAC_PROBLEM}
    type_into(qtbot, editor.pac_url, "https://config.corp.example/proxy.pac")

    editor.allow_basic.setChecked(False)
    choose(editor.revocation, Revocation.HARD)
    editor.resize(1100, 760)
    qtbot.wait(200)  # let it paint
    assert QGuiApplication.primaryScreen().grabWindow(0, *editor.frameGeometry().getRect()).save(str(screenshots / "profile-editor-proxy-pac.png"))
    with qtbot.waitSignal(editor.saved, timeout=10000) as saved:
        save_button(editor).click()
    profile = saved.args[0]
    assert profile.proxy == ProxyChoice(ProxyMode.PAC, pac_url="https://config.corp.example/proxy.pac", allow_basic=False)
    assert profile.revocation is Revocation.HARD
    assert store.load().by_id(profile.id) == profile  # in the file as shown

    again = open_editor(qtbot, store, secrets, profile)
    assert again.proxy_mode.currentData() is ProxyMode.PAC and again.pac_url.isEnabled()
    assert again.pac_url.text() == "https://config.corp.example/proxy.pac"
    assert not again.allow_basic.isChecked() and again.revocation.currentData() is Revocation.HARD
    assert again.current_profile() == profile


def test_allow_basic_and_revocation_are_kept_for_every_proxy_choice(qtbot, store, secrets):
    """An edit that changes something else gives the profile back as it was."""
    for proxy in (
        ProxyChoice(ProxyMode.NONE, allow_basic=False),
        ProxyChoice(ProxyMode.SYSTEM, allow_basic=False),
        ProxyChoice(ProxyMode.PAC, allow_basic=False),
        ProxyChoice(ProxyMode.PAC, username="CORP\\bob", pac_url="http://wpad.corp.example/wpad.dat"),
        ProxyChoice(ProxyMode.MANUAL, "proxy.corp.example", 3128, "bob", allow_basic=False),
        ProxyChoice(ProxyMode.MANUAL, "proxy.corp.example", 8080),
    ):
        profile = Profile(id=new_profile_id(), name="Corp", host="vpn.example.com", username="alice", proxy=proxy, revocation=Revocation.HARD)
        editor = open_editor(qtbot, store, secrets, profile)
        assert editor.current_profile() == profile, proxy
        assert editor.allow_basic.isChecked() is proxy.allow_basic


def test_nothing_moves_as_the_pac_url_error_comes_and_goes(qtbot, store, secrets, screenshots):
    editor = active(qtbot, open_editor(qtbot, store, secrets))
    fill(editor, name="Office", host="vpn.example.com", username="alice")
    choose(editor.proxy_mode, ProxyMode.PAC)
    editor.resize(1100, 760)
    qtbot.wait(100)
    before = field_positions(editor)
    steps = (
        (editor.pac_url, "http://wpad/proxy.pac"),
        (editor.pac_url, "wpad/proxy.pac"),  # no scheme: an error under the field
        (editor.pac_url, ""),  # empty: WPAD, fine
        (editor.pac_url, "ftp://wpad/proxy.pac"),
        (editor.pac_url, "http://wpad.corp.example/proxy.pac"),
    )
    assert typed_in_turn(qtbot, editor, steps, before) == {"pac_url"}
    assert visible_errors(editor) == {}
    typed_in_turn(qtbot, editor, ((editor.pac_url, "proxy.pac"),), before)
    assert visible_errors(editor) == {"pac_url": PAC_PROBLEM}
    qtbot.wait(200)  # let it paint
    picture = QGuiApplication.primaryScreen().grabWindow(0, *editor.frameGeometry().getRect())
    assert picture.save(str(screenshots / "profile-editor-pac-url-error.png"))
    choose(editor.proxy_mode, ProxyMode.MANUAL)  # switching the choice moves nothing either
    choose(editor.proxy_mode, ProxyMode.NONE)
    qtbot.wait(30)
    assert field_positions(editor) == before


def test_a_pac_profile_keeps_its_proxy_user_and_password_in_the_keyring(qtbot, store, secrets):
    editor = open_editor(qtbot, store, secrets)
    fill(editor, name="Corp", host="vpn.example.com", username="alice")
    choose(editor.proxy_mode, ProxyMode.PAC)
    fill(editor, pac_url="http://wpad.corp.example/wpad.dat", proxy_user="CORP\\bob", proxy_password="proxy-pw")
    with qtbot.waitSignal(editor.saved, timeout=10000) as saved:
        save_button(editor).click()
    profile = saved.args[0]
    assert profile.proxy == ProxyChoice(ProxyMode.PAC, username="CORP\\bob", pac_url="http://wpad.corp.example/wpad.dat")
    assert store.load().by_id(profile.id) == profile
    assert keyring_items(profile.id, SecretKind.PROXY) == [("SSTP VPN: Corp (CORP\\bob) proxy password", "proxy-pw")]
    assert "proxy-pw" not in store.path.read_text()
    again = open_editor(qtbot, store, secrets, profile)
    assert again.proxy_user.text() == "CORP\\bob"
    assert again.proxy_password.placeholderText() == "saved in the keyring (type to replace)"
