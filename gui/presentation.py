"""How the connection is put into words and icon states (pure functions, shared by the tray
menu, its tooltip and the status window)."""

from __future__ import annotations

import ipaddress
import math
import re

from sstpvpn.client.core.types import Failure, FailureKind, Layer, State, Status

from .icons import TrayState

APP_NAME = "SSTP VPN"

_CONNECTING_STATES = {State.HANDSHAKE, State.NEGOTIATING, State.AUTHENTICATING, State.CONFIGURING, State.DISCONNECTING}
_STATE_WORDS = {
    State.IDLE: "Disconnected",
    State.HANDSHAKE: "Connecting (contacting the server)",
    State.NEGOTIATING: "Connecting (negotiating the link)",
    State.AUTHENTICATING: "Connecting (signing in)",
    State.CONFIGURING: "Connecting (setting up the network)",
    State.CONNECTED: "Connected",
    State.DISCONNECTING: "Disconnecting",
    State.DISCONNECTED: "Disconnected",
}


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
            return "Waiting for a network"  # reconnects as soon as the server can be reached
        return f"Reconnecting in {max(0, round(reconnect_in))} s"
    if status.state is State.DISCONNECTED and status.failure is not None:
        return "Failed"
    return _STATE_WORDS[status.state]


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
        return [f"{APP_NAME}: disconnecting and quitting…"]
    failure = status.failure if status.state is State.DISCONNECTED else None
    if profile_name is None or not (active or failure is not None):
        lines = [f"{APP_NAME}: not connected"]
    else:
        lines = [f"{APP_NAME}: {profile_name}, {state_text(status, reconnect_in).lower()}"]
    if status.state is State.CONNECTED and status.plan is not None:
        since = f" · {duration_text(now - status.connected_at)}" if status.connected_at is not None else ""
        lines.append(f"Address {status.plan.address}{since}")
    elif failure is not None:
        lines.append(f"Last attempt: {last_attempt(failure)}")  # the whole sentence: the tooltip, the Log window
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
FLAG_FIELDS = {
    "--ca-file": "Extra CA file",
    "--pin-sha256": "Pinned SHA-256",
    "--sni": "TLS server name",
    "--route": "Also route",
    "--mtu": "MTU",
    "--proxy": "Proxy URL",
    "--auth": "Sign in with",
    "--client-cert": "Certificate file",
    "--eap-server-name": "EAP server name",
    "--eap-ca-file": "EAP CA file",
    "--eap-pin-sha256": "EAP pinned SHA-256",
}
# Flags that are a check box in the editor (its text up to the parenthesis): "(the “Allow PAP” box)".
FLAG_BOXES = {
    "--allow-pap": "Allow PAP",
    "--allow-chap-md5": "Allow CHAP-MD5 and EAP-MD5",
}
FLAG_MENTION = re.compile(r"\((or )?(--[a-z][a-z0-9-]*)\)")


def in_gui_words(sentence: str) -> str:
    """A sentence of client/ as the GUI shows it: "(--ca-file)" becomes "(the “Extra CA file”
    field)", "(--allow-pap)" "(the “Allow PAP” box)"; a flag in neither table stays as it is."""

    def field(match: re.Match[str]) -> str:
        label = FLAG_FIELDS.get(match.group(2))
        if label is not None:
            return f"({match.group(1) or ''}the “{label}” field)"
        box = FLAG_BOXES.get(match.group(2))
        return match.group(0) if box is None else f"({match.group(1) or ''}the “{box}” box)"

    return FLAG_MENTION.sub(field, sentence)


_LAYER_REASONS = {
    Layer.APP: "internal error",
    Layer.RUNNER: "internal error",
    Layer.PLATFORM: "this system is not supported",
    Layer.PROFILE: "the profile needs a fix",
    Layer.SESSION: "the profile is in use elsewhere",
    Layer.NETWORK: "network setup failed on this computer",
    Layer.SLEEP: "the computer slept",
    Layer.DNS: "server name not found",
    Layer.TCP: "server unreachable",
    Layer.PROXY: "proxy failed",
    Layer.TLS: "encrypted connection failed",
    Layer.HTTP: "server refused the VPN request",
    Layer.SSTP: "the server ended the connection",
    Layer.LCP: "link negotiation failed",
    Layer.AUTH: "sign-in failed",
    Layer.IPCP: "address negotiation failed",
}


def last_attempt(failure: Failure) -> str:
    """A few words for why an attempt failed, for the tray menu ("Last attempt: sign-in
    refused"), from the failure's kind and layer; the full sentence is in the tooltip, the notice
    and the Log window."""
    if failure.where in (Layer.DNS, Layer.PROXY):
        return _LAYER_REASONS[failure.where]
    if failure.kind is FailureKind.AUTHENTICATION:
        return "sign-in refused"  # the password, the certificate, or no method both sides allow
    if failure.kind is FailureKind.TRUST:
        return "certificate not trusted"
    if failure.kind is FailureKind.UNREACHABLE:
        return "server unreachable"
    return _LAYER_REASONS.get(failure.where, "failed")
