"""How the connection is put into words and icon states (pure functions, shared by the tray
menu, its tooltip and the status window)."""

from __future__ import annotations

import ipaddress
import math
import re

from sstpvpn.client.core.i18n import _
from sstpvpn.client.core.types import Failure, FailureKind, Layer, State, Status

from .icons import TrayState

APP_NAME = "SSTP VPN"  # a name: the same in every language

_CONNECTING_STATES = {State.HANDSHAKE, State.NEGOTIATING, State.AUTHENTICATING, State.CONFIGURING, State.DISCONNECTING}


def _state_words(state: State) -> str:
    """The words for a session state (the status window's State, the tray menu's header)."""
    words = {
        # Translators: connection state (status window, profiles list); shown lowercased in the tray menu
        State.IDLE: _("Disconnected"),
        # Translators: connection state, while the first contact with the server is made
        State.HANDSHAKE: _("Connecting (contacting the server)"),
        # Translators: connection state, while the PPP link is negotiated
        State.NEGOTIATING: _("Connecting (negotiating the link)"),
        # Translators: connection state, while the user name and password are checked
        State.AUTHENTICATING: _("Connecting (signing in)"),
        # Translators: connection state, while addresses, routes and DNS are set up on this computer
        State.CONFIGURING: _("Connecting (setting up the network)"),
        # Translators: connection state (status window, profiles list); shown lowercased in the tray menu
        State.CONNECTED: _("Connected"),
        # Translators: connection state (status window, profiles list); shown lowercased in the tray menu
        State.DISCONNECTING: _("Disconnecting"),
        # Translators: connection state (status window, profiles list); shown lowercased in the tray menu
        State.DISCONNECTED: _("Disconnected"),
    }
    return words[state]


def tray_state(status: Status, reconnect_in: float | None = None) -> TrayState:
    if status.state is State.CONNECTED:
        return TrayState.CONNECTED
    if status.state in _CONNECTING_STATES or reconnect_in is not None:
        return TrayState.CONNECTING
    if status.state is State.DISCONNECTED and status.failure is not None:
        return TrayState.ERROR
    return TrayState.DISCONNECTED


def state_text(status: Status, reconnect_in: float | None = None) -> str:
    if reconnect_in is not None and status.state in (State.DISCONNECTED, State.IDLE):
        if math.isinf(reconnect_in):
            # Translators: connection state: reconnects as soon as the server can be reached
            return _("Waiting for a network")
        # Translators: connection state; {seconds} counts down to the next attempt, "s" = seconds
        return _("Reconnecting in {seconds} s").format(seconds=max(0, round(reconnect_in)))
    if status.state is State.DISCONNECTED and status.failure is not None:
        # Translators: connection state after an attempt that did not succeed
        return _("Failed")
    return _state_words(status.state)


def duration_text(seconds: float) -> str:
    """0:05:07, 12:00:00, 2 d 03:04:05"""
    total = max(0, int(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{days} d {hours:02d}:{minutes:02d}:{secs:02d}" if days else clock


def summary_lines(
    profile_name: str | None, status: Status, now: float, reconnect_in: float | None = None, *, active: bool = True, shutting_down: bool = False
) -> list[str]:
    """How the VPN is, in a line or two: the first entries of the tray menu and the tooltip's
    first lines, the same words in both. `profile_name` is the session's (or the last one's);
    `active`: a session is connecting, connected or waiting to reconnect."""
    if shutting_down:
        # Translators: tray menu header and tooltip while the app quits; {app_name} is "SSTP VPN"
        return [_("{app_name}: disconnecting and quitting…").format(app_name=APP_NAME)]
    failure = status.failure if status.state is State.DISCONNECTED else None
    if profile_name is None or not (active or failure is not None):
        # Translators: tray menu header and tooltip; {app_name} is "SSTP VPN"
        lines = [_("{app_name}: not connected").format(app_name=APP_NAME)]
    else:
        lines = [f"{APP_NAME}: {profile_name}, {in_a_sentence(state_text(status, reconnect_in))}"]
    if status.state is State.CONNECTED and status.plan is not None:
        since = f" · {duration_text(now - status.connected_at)}" if status.connected_at is not None else ""
        # Translators: tray menu header and tooltip: the VPN address this computer got
        lines.append(_("Address {address}").format(address=status.plan.address) + since)
    elif failure is not None:
        # Translators: tray menu header and tooltip; {reason} is a few words such as "sign-in refused"
        lines.append(_("Last attempt: {reason}").format(reason=last_attempt(failure)))  # the whole sentence: the tooltip, the Log window
    return lines


def tooltip(
    profile_name: str | None, status: Status, now: float, reconnect_in: float | None = None, *, active: bool = True, shutting_down: bool = False
) -> str:
    """The menu's summary lines, then, after a failure, its whole sentence."""
    lines = summary_lines(profile_name, status, now, reconnect_in, active=active, shutting_down=shutting_down)
    if status.state is State.DISCONNECTED and status.failure is not None and not shutting_down:
        lines.append(in_gui_words(status.failure.reason))
    return "\n".join(lines)


def ipv6_link_local(identifier: bytes | None) -> str:
    """The IPv6 link-local address IPV6CP's interface identifier gives, or ""."""
    if not identifier or len(identifier) != 8:
        return ""
    return str(ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + identifier))


def menu_label(text: str) -> str:
    """A profile name as menu text: a single & would become a keyboard shortcut."""
    return text.replace("&", "&&")


def plain_text(text: str) -> str:
    """Menu or button text as the user reads it: "&Connect “R&&D”" -> "Connect “R&D”"."""
    return re.sub(r"&(.)", r"\1", text)


def accelerator(text: str) -> str | None:
    """The key of a menu text's accelerator ("&Quit" -> "q"), or None."""
    match = re.search(r"(?<!&)(?:&&)*&([^&])", text)
    return match.group(1).lower() if match else None


def with_accelerators(texts: list[str], first: frozenset[str] = frozenset()) -> list[str]:
    """The texts of one menu, each with an accelerator no other entry has: a word's first letter
    where one is free, else a letter of a later word (a profile's name), else any. Entries whose
    plain text is in `first` choose before the others; a text that has one keeps it."""
    taken = {key for key in map(accelerator, texts) if key}
    result = list(texts)
    order = sorted(range(len(texts)), key=lambda index: plain_text(texts[index]) not in first)
    for index in order:
        text = texts[index]
        if accelerator(text):
            continue
        letters, position = [], 0  # positions of the letters and digits shown (not those of "&&")
        while position < len(text):
            if text.startswith("&&", position):
                position += 2
                continue
            if text[position].isalnum():
                letters.append(position)
            position += 1
        initials = [p for p in letters if p == 0 or not text[p - 1].isalnum()]
        first_word_end = next((p for p in range(len(text)) if text[p].isspace()), len(text))
        later = [p for p in letters if p not in initials and p > first_word_end]
        for position in initials + later + [p for p in letters if p not in initials and p not in later]:
            if text[position].lower() not in taken:
                taken.add(text[position].lower())
                result[index] = f"{text[:position]}&{text[position:]}"
                break
    return result


# The sentences of client/ (and platform/) are shared with the command line, which names a profile
# setting by its flag, in parentheses: "add its CA certificate to the profile (--ca-file)". The GUI
# names the editor's field instead (the labels of gui/editor.py, without the colon).
# tests/gui/test_gui_wording.py checks that every such flag in client/ and platform/ is here.
def flag_fields() -> dict[str, str]:
    """Flag -> the editor's field label, without the colon, in the user's language."""
    return {
        # Translators: the profile editor's field label without its colon: translate it as that label
        "--ca-file": _("Extra CA file"),
        # Translators: the profile editor's field label without its colon: translate it as that label
        "--pin-sha256": _("Pinned SHA-256"),
        # Translators: the profile editor's field label without its colon: translate it as that label
        "--sni": _("TLS server name"),
        # Translators: the profile editor's field label without its colon: translate it as that label
        "--route": _("Also route"),
        "--mtu": "MTU",  # not translated: a protocol term, the editor's label is "MTU:" too
        # Translators: the profile editor's field label without its colon: translate it as that label
        "--proxy": _("Proxy URL"),
        # Translators: the profile editor's field label without its colon: translate it as that label
        "--auth": _("Sign in with"),
        # Translators: the profile editor's field label without its colon: translate it as that label
        "--client-cert": _("Certificate file"),
        # Translators: the profile editor's field label without its colon: translate it as that label
        "--eap-server-name": _("EAP server name"),
        # Translators: the profile editor's field label without its colon: translate it as that label
        "--eap-ca-file": _("EAP CA file"),
        # Translators: the profile editor's field label without its colon: translate it as that label
        "--eap-pin-sha256": _("EAP pinned SHA-256"),
    }


# Flags that are a check box in the editor (its text up to the parenthesis): "(the “Allow PAP” box)".
def flag_boxes() -> dict[str, str]:
    """Flag -> the editor's check box text up to the parenthesis, in the user's language."""
    return {
        # Translators: the profile editor's check box, its text up to the parenthesis: translate it as that box
        "--allow-pap": _("Allow PAP"),
        # Translators: the profile editor's check box, its text up to the parenthesis: translate it as that box
        "--allow-chap-md5": _("Allow CHAP-MD5 and EAP-MD5"),
    }


# "(--ca-file)", and "(or --route)" in any language ("(oder --route)", "(ou --route)").
FLAG_MENTION = re.compile(r"\((\w+ )?(--[a-z][a-z0-9-]*)\)")


def in_a_sentence(words: str) -> str:
    """A state's words after a comma: "Connected" -> "connected". Only the first letter, so that a
    German noun inside keeps its capital ("wird verbunden (Server wird kontaktiert)")."""
    return words[:1].lower() + words[1:]


def in_gui_words(sentence: str) -> str:
    """A sentence of client/ as the GUI shows it: "(--ca-file)" becomes "(the “Extra CA file”
    field)", "(--allow-pap)" "(the “Allow PAP” box)"; a flag in neither table stays as it is."""
    fields, boxes = flag_fields(), flag_boxes()

    def field(match: re.Match[str]) -> str:
        either = bool(match.group(1))  # "(or --route)": another way to fix it
        label = fields.get(match.group(2))
        if label is not None:
            if either:
                # Translators: replaces "(or --route)" in a sentence; {label} is the profile editor's field
                return _("(or the “{label}” field)").format(label=label)
            # Translators: replaces "(--ca-file)" in a sentence; {label} is the profile editor's field
            return _("(the “{label}” field)").format(label=label)
        box = boxes.get(match.group(2))
        if box is None:
            return match.group(0)
        if either:
            # Translators: replaces "(or --allow-pap)" in a sentence; {label} is the profile editor's check box
            return _("(or the “{label}” box)").format(label=box)
        # Translators: replaces "(--allow-pap)" in a sentence; {label} is the profile editor's check box
        return _("(the “{label}” box)").format(label=box)

    return FLAG_MENTION.sub(field, sentence)


def _layer_reasons() -> dict[Layer, str]:
    """A few words for a failure at each layer, after "Last attempt:" in the tray menu."""
    return {
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.APP: _("internal error"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.RUNNER: _("internal error"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.PLATFORM: _("this system is not supported"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.PROFILE: _("the profile needs a fix"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.SESSION: _("the profile is in use elsewhere"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.NETWORK: _("network setup failed on this computer"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.SLEEP: _("the computer slept"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.DNS: _("server name not found"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.TCP: _("server unreachable"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.PROXY: _("proxy failed"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.TLS: _("encrypted connection failed"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.HTTP: _("server refused the VPN request"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.SSTP: _("the server ended the connection"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.LCP: _("link negotiation failed"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.AUTH: _("sign-in failed"),
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        Layer.IPCP: _("address negotiation failed"),
    }


def last_attempt(failure: Failure) -> str:
    """A few words for why an attempt failed, for the tray menu ("Last attempt: sign-in
    refused"), from the failure's kind and layer; the full sentence is in the tooltip, the notice
    and the Log window."""
    reasons = _layer_reasons()
    if failure.where in (Layer.DNS, Layer.PROXY):
        return reasons[failure.where]
    if failure.kind is FailureKind.AUTHENTICATION:
        # the password, the certificate, or no method both sides allow
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        return _("sign-in refused")
    if failure.kind is FailureKind.TRUST:
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        return _("certificate not trusted")
    if failure.kind is FailureKind.UNREACHABLE:
        # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
        return _("server unreachable")
    if failure.where in reasons:
        return reasons[failure.where]
    # Translators: why the last attempt failed, after "Last attempt:" in the tray menu header
    return _("failed")
