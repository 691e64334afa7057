"""`sstp-vpn profiles list|add|set|remove|show` and the profile half of `sstp-vpn connect --profile`.

The same profile file and keyring entries as the tray app. Passwords reach the keyring from
standard input (`--password-stdin`) or the SSTP_VPN_PROXY_PASSWORD variable, never from argv.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .core.i18n import _
from .core.types import KillSwitchMode
from .eap_options import add_eap_options, method_names
from .endpoint import EndpointError, parse_endpoint
from .profiles import MAX_MTU, Profile, ProfileFileError, ProfileStore, ProxyChoice, ProxyMode, Revocation, new_profile_id, profile_problems

if TYPE_CHECKING:  # keyring is imported only by the commands that use it
    from collections.abc import Callable

    from .secret_store import SecretStore

PROXY_PASSWORD_ENV = "SSTP_VPN_PROXY_PASSWORD"


class ProfileCommandError(Exception):
    """A usage problem with a profile command; the message is the sentence."""


def add_profiles_parser(commands: argparse._SubParsersAction) -> None:
    profiles = commands.add_parser("profiles", help=_("manage the saved connection profiles (shared with the tray app)"))
    actions = profiles.add_subparsers(dest="profiles_command", required=True)
    actions.add_parser("list", help=_("one line per profile"))
    show = actions.add_parser("show", help=_("all settings of one profile (never its passwords)"))
    show.add_argument("name", help=_("profile name or id"))
    remove = actions.add_parser("remove", help=_("delete a profile and its saved passwords"))
    remove.add_argument("name", help=_("profile name or id"))
    add = actions.add_parser("add", help=_("save a new profile"))
    add.add_argument("name", help=_("a name for the profile, e.g. Office"))
    add.add_argument("server", metavar="HOST[:PORT]", help=_("the SSTP server (port 443 unless given)"))
    add.add_argument("--user", required=True, help=_("user name (HUB\\user for SoftEther hubs)"))
    add.add_argument("--password-stdin", action="store_true", help=_("read the password from standard input and save it in the keyring"))
    add.add_argument("--ca-file", metavar="PEM", default="", help=_("also trust the CA certificates in this file"))
    add.add_argument("--sni", metavar="NAME", default="", help=_("TLS server name to send and check (default: HOST)"))
    add.add_argument("--pin-sha256", metavar="HEX", default="", help=_("also require this SHA-256 fingerprint of the server certificate"))
    add_proxy_options(add)
    add_revocation_option(add, default=Revocation.SOFT.value)
    add_session_options(add)
    add.add_argument("--mtu", type=int, default=MAX_MTU, help=_("largest packet in the tunnel (default {mtu})").format(mtu=MAX_MTU))
    add.add_argument("--auto-reconnect", action="store_true", help=_("the tray app reconnects when the connection drops"))
    change = actions.add_parser(
        "set",
        help=_("change the proxy, revocation and kill switch settings of a saved profile (the tray app's profile editor changes every setting)"),
    )
    change.add_argument("name", help=_("profile name or id"))
    add_proxy_options(change, changing=True)
    add_revocation_option(change)
    add_kill_switch_options(change, changing=True)
    export = actions.add_parser("export", help=_("write profiles to a new file (TOML; never passwords)"))
    export.add_argument("names", nargs="*", metavar="NAME", help=_("the profiles to export (default: all)"))
    export.add_argument("file", metavar="FILE", help=_("the file to write (must not exist)"))
    import_ = actions.add_parser("import", help=_("add profiles from an export, a Windows rasphone.pbk or a NetworkManager .nmconnection file"))
    import_.add_argument("file", metavar="FILE")
    import_.add_argument("--user", default="", help=_("user name for the imported profiles the file gives none (rasphone.pbk holds none)"))


def add_proxy_options(parser: argparse.ArgumentParser, changing: bool = False, one_off: bool = False) -> None:
    """How a saved profile reaches the server: `profiles add` and `profiles set` (`changing`: also
    --proxy none and --proxy-allow-basic, and nothing changes what is not given); `one_off`: how
    `connect HOST` and `diagnose HOST` reach it (the proxy password is read, not saved)."""
    way = parser.add_mutually_exclusive_group()
    if one_off:
        proxy_help = _(
            "http://[user@]host:port; 'system' for this computer's proxy settings (the desktop's, or Windows' or macOS'); "
            "'wpad' for a proxy auto-config (PAC) file found on the network by WPAD; the proxy password comes from ${variable}"
        )
    elif changing:
        proxy_help = _(
            "http://[user@]host:port; 'system' for this computer's proxy settings (the desktop's, or Windows' or macOS'); "
            "'wpad' for a proxy auto-config (PAC) file found on the network by WPAD; 'none' to connect directly; "
            "the proxy password is saved from ${variable}"
        )
    else:
        proxy_help = _(
            "http://[user@]host:port; 'system' for this computer's proxy settings (the desktop's, or Windows' or macOS'); "
            "'wpad' for a proxy auto-config (PAC) file found on the network by WPAD; the proxy password is saved from ${variable}"
        )
    way.add_argument(
        "--proxy",
        metavar="URL|system|wpad|none" if changing else "URL|system|wpad",  # not translated: the option's values
        default=None if changing or one_off else "",
        help=proxy_help.format(variable=PROXY_PASSWORD_ENV),
    )
    way.add_argument(
        "--proxy-pac",
        metavar="URL",
        help=_("the proxy auto-config (PAC) file at this http:// or https:// address chooses the proxy for the server, or a direct connection"),
    )
    if one_off:
        user_help = _(
            "with --proxy-pac or --proxy wpad: the user name (DOMAIN\\user or user) for the proxies the PAC file names, "
            "for NTLM or Basic; its password comes from ${variable}; without it only Kerberos is used"
        )
    else:
        user_help = _(
            "with --proxy-pac or --proxy wpad: the user name (DOMAIN\\user or user) for the proxies the PAC file names, "
            "for NTLM or Basic; its password is saved from ${variable}; without it only Kerberos is used"
        )
    parser.add_argument("--proxy-user", metavar="USER", help=user_help.format(variable=PROXY_PASSWORD_ENV))
    basic = parser.add_mutually_exclusive_group()
    basic.add_argument(
        "--proxy-no-basic",
        action="store_true",
        help=_("never send the proxy password by Basic authentication, which the proxy's network can read: NTLM or Negotiate (Kerberos) only"),
    )
    if changing:
        basic.add_argument("--proxy-allow-basic", action="store_true", help=_("allow Basic authentication to the proxy again"))


def add_revocation_option(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """`--revocation soft|hard`: for `profiles add` and `set`, and `connect HOST` and `diagnose`."""
    parser.add_argument(
        "--revocation",
        choices=[choice.value for choice in Revocation],
        default=default,
        help=_(
            "when the server certificate's revocation (CRL, OCSP) cannot be checked: 'soft' connects and warns (default), 'hard' refuses; "
            "a revoked certificate is always refused"
        ),
    )


def add_kill_switch_options(parser: argparse.ArgumentParser, changing: bool = False) -> None:
    """`--kill-switch off|connected|always` and `--kill-switch-allow-lan`: `connect`, `profiles add`;
    `changing` (`profiles set`): also --kill-switch-block-lan, and what is not given stays."""
    parser.add_argument(
        "--kill-switch",
        choices=[mode.value for mode in KillSwitchMode],
        default=None,
        help=_(
            "block all traffic outside the VPN: 'connected' from the first connection until you disconnect (reconnecting included), "
            "'always' from the start of connecting; 'off' by default. `sstp-vpn repair` removes a block left behind"
        ),
    )
    lan = parser.add_mutually_exclusive_group()
    lan.add_argument(
        "--kill-switch-allow-lan", action="store_true", help=_("with the kill switch on, still allow the local network (printers, shares)")
    )
    if changing:
        lan.add_argument("--kill-switch-block-lan", action="store_true", help=_("with the kill switch on, block the local network too (the default)"))


def proxy_choice(args: argparse.Namespace, current: ProxyChoice | None = None) -> ProxyChoice:
    """The proxy that --proxy / --proxy-pac / --proxy-no-basic (/ --proxy-allow-basic) describe,
    over `current` (a saved profile's, for `profiles set`: what is not given stays)."""
    current = current or ProxyChoice()
    if args.proxy_pac is not None:
        choice = ProxyChoice(ProxyMode.PAC, pac_url=args.proxy_pac.strip())
    elif args.proxy is None:
        choice = current
    elif args.proxy.strip().lower() in ("", "none"):
        choice = ProxyChoice()
    elif args.proxy.strip().lower() == "system":
        choice = ProxyChoice(ProxyMode.SYSTEM)
    elif args.proxy.strip().lower() == "wpad":
        choice = ProxyChoice(ProxyMode.PAC)
    elif args.proxy.split("?")[0].lower().endswith((".pac", ".dat")):
        raise ProfileCommandError(_("{url} is the address of a proxy auto-config (PAC) file: give it with --proxy-pac.").format(url=args.proxy))
    else:
        try:
            choice = ProxyChoice.manual_from_url(args.proxy)
        except ValueError as error:
            raise ProfileCommandError(str(error)) from None
    if choice.mode is ProxyMode.PAC and current.mode is ProxyMode.PAC:
        choice = replace(choice, username=current.username)  # another PAC file: the same user
    if args.proxy_user is not None:
        if choice.mode is not ProxyMode.PAC:
            raise ProfileCommandError(
                _(
                    "--proxy-user goes with --proxy-pac or --proxy wpad: a proxy URL carries its own user name (http://user@host:port), "
                    "and the system's settings use none."
                )
            )
        choice = replace(choice, username=args.proxy_user.strip())
    allow_basic = current.allow_basic
    if args.proxy_no_basic:
        allow_basic = False
    elif getattr(args, "proxy_allow_basic", False):
        allow_basic = True
    return replace(choice, allow_basic=allow_basic)


def add_session_options(parser: argparse.ArgumentParser) -> None:
    """Routing, DNS and authentication choices: saved by `profiles add`, given to `connect` directly."""
    parser.add_argument("--no-default-route", action="store_true", help=_("split tunnel: route only the VPN's network through it"))
    parser.add_argument(
        "--route", action="append", default=[], metavar="NETWORK", help=_("also route this network through the VPN, e.g. 10.20.0.0/16 (repeatable)")
    )
    parser.add_argument("--no-vpn-dns", action="store_true", help=_("keep this computer's DNS servers"))
    add_password_method_options(parser)
    parser.add_argument("--ipv6", action="store_true", help=_("negotiate IPv6 (IPV6CP) as well"))
    add_kill_switch_options(parser)
    add_eap_options(parser)


def add_password_method_options(parser: argparse.ArgumentParser) -> None:
    """The weaker password sign-in methods to allow besides MS-CHAPv2: `profiles add`, `connect` and `diagnose --user`."""
    parser.add_argument("--allow-pap", action="store_true", help=_("allow PAP, which sends the password in clear inside TLS"))
    parser.add_argument("--allow-chap-md5", action="store_true", help=_("allow CHAP-MD5 and EAP-MD5 (weak)"))


def session_choices(args: argparse.Namespace) -> dict[str, Any]:
    """The Profile fields that add_session_options sets: the same for `profiles add` and `connect HOST`."""
    return dict(
        allow_pap=args.allow_pap,
        allow_chap_md5=args.allow_chap_md5,
        full_tunnel=not args.no_default_route,
        extra_routes=tuple(args.route),
        use_vpn_dns=not args.no_vpn_dns,
        ipv6=args.ipv6,
        kill_switch=KillSwitchMode(args.kill_switch or KillSwitchMode.OFF.value),
        kill_switch_allow_lan=args.kill_switch_allow_lan,
        auth_method=args.auth or "password",
        client_certificate=os.path.abspath(args.client_cert) if args.client_cert else "",
        eap_server_name=args.eap_server_name,
        eap_ca_file=os.path.abspath(args.eap_ca_file) if args.eap_ca_file else "",
        eap_pin_sha256=args.eap_pin_sha256,
        eap_tls13=args.eap_tls13,
    )


def session_profile(args: argparse.Namespace, host: str, port: int) -> Profile:
    """`connect HOST ...`: an unsaved profile with the user and the session options, for
    profile_settings.build_connect (the server and proxy settings come from the options directly)."""
    return Profile(id="", name="", host=host, port=port, username=args.user, **session_choices(args))


def run_profiles(args: argparse.Namespace, store: ProfileStore | None = None, secrets: SecretStore | None = None) -> int:
    """Raises ProfileCommandError (usage) or ProfileFileError (the file)."""
    store = store or ProfileStore()
    if args.profiles_command in ("import", "export"):
        return _transfer(args, store)
    from .secret_store import KeyringUnavailable, SecretStore

    secrets = secrets or SecretStore()
    if args.profiles_command == "list":
        profiles = store.load().profiles
        if not profiles:
            print(_("No profiles yet: add one with `sstp-vpn profiles add NAME HOST --user USER`, or in the tray app."))
        for profile in profiles:
            print(f"{profile.name}\t{profile.server}\t{profile.username}")
        return 0
    if args.profiles_command == "show":
        profile = find_profile(store, args.name)
        for line in describe_profile(profile, password_state(secrets, profile)):
            print(line)
        return 0
    if args.profiles_command == "remove":
        profile = find_profile(store, args.name)
        store.remove(profile.id)
        try:
            secrets.forget_profile(profile.id)
        except KeyringUnavailable as error:
            warning = _("warning: {reason}").format(reason=error.sentence)
            print(f"sstp-vpn: {warning}", file=sys.stderr)
        print(_("Removed the profile {name}.").format(name=repr(profile.name)))
        return 0
    if args.profiles_command == "set":
        return _set(args, store, secrets)
    return _add(args, store, secrets)


def _transfer(args: argparse.Namespace, store: ProfileStore) -> int:
    """`profiles export [NAME...] FILE` and `profiles import FILE [--user USER]` (profile_transfer.py)."""
    from pathlib import Path

    from .profile_transfer import TransferError, export_file, import_file

    try:
        if args.profiles_command == "export":
            exported = export_file(store, Path(args.file), args.names)
            names = ", ".join(repr(p.name) for p in exported)
            print(_("Exported {names} to {file} (no passwords).").format(names=names, file=args.file))
            return 0
        report = import_file(store, Path(args.file), args.user)
    except TransferError as error:
        raise ProfileFileError(str(error)) from None  # exit code 1: the file, not the usage
    for line in report.lines():
        print(line)
    return 0 if report.added or not report.skipped else 1


def _add(args: argparse.Namespace, store: ProfileStore, secrets: SecretStore) -> int:
    from .secret_store import SecretKind

    try:
        host, port = parse_endpoint(args.server)
    except EndpointError as error:
        raise ProfileCommandError(str(error)) from None
    proxy = proxy_choice(args)
    book = store.load()
    if book.find(args.name) is not None:
        raise ProfileCommandError(_("A profile called {name} exists already: remove it first, or choose another name.").format(name=repr(args.name)))
    profile = Profile(
        id=new_profile_id(),
        name=args.name,
        host=host,
        port=port,
        username=args.user,
        sni=args.sni,
        ca_file=os.path.abspath(args.ca_file) if args.ca_file else "",
        pin_sha256=args.pin_sha256,
        mtu=args.mtu,
        auto_reconnect=args.auto_reconnect,
        proxy=proxy,
        revocation=Revocation(args.revocation),
        **session_choices(args),
    )
    problems = profile_problems(profile, book.profiles)
    if problems:
        raise ProfileCommandError(" ".join(problems.values()))
    password = _read_stdin_password() if args.password_stdin else None
    proxy_password = getattr(args, "proxy_password_env", None) if proxy.username else None  # main() took it out
    store.save(profile)
    print(_("Saved the profile {name}.").format(name=repr(profile.name)))
    _keep_secrets(secrets, profile, ((SecretKind.VPN, password), (SecretKind.PROXY, proxy_password)))
    return 0


def _keep_secrets(secrets: SecretStore, profile: Profile, kinds_and_secrets: tuple[tuple[Any, str | None], ...]) -> None:
    """Into the keyring; a keyring that is not there is a warning (the profile is saved)."""
    from .secret_store import KeyringUnavailable, SecretKind, item_label

    for kind, secret in kinds_and_secrets:
        if secret:
            try:
                secrets.set(profile.id, kind, secret, label=item_label(profile, kind))
            except KeyringUnavailable as error:
                if kind is SecretKind.VPN:
                    warning = _("warning: the VPN password was not saved. {reason}").format(reason=error.sentence)
                else:
                    warning = _("warning: the proxy password was not saved. {reason}").format(reason=error.sentence)
                print(f"sstp-vpn: {warning}", file=sys.stderr)


def _set(args: argparse.Namespace, store: ProfileStore, secrets: SecretStore) -> int:
    """`profiles set NAME --proxy ... --revocation ...`: what is given changes, the rest stays."""
    from .secret_store import SecretKind

    proxy_given = args.proxy is not None or args.proxy_pac is not None or args.proxy_user is not None
    kill_switch_given = args.kill_switch is not None or args.kill_switch_allow_lan or args.kill_switch_block_lan
    if not (proxy_given or args.proxy_no_basic or args.proxy_allow_basic or args.revocation or kill_switch_given):
        raise ProfileCommandError(
            _(
                "Nothing to change: give --proxy, --proxy-pac, --proxy-user, --proxy-no-basic, --proxy-allow-basic, --revocation, "
                "--kill-switch, --kill-switch-allow-lan or --kill-switch-block-lan."
            )
        )
    profile = find_profile(store, args.name)
    revocation = Revocation(args.revocation) if args.revocation else profile.revocation
    kill_switch = KillSwitchMode(args.kill_switch) if args.kill_switch else profile.kill_switch
    allow_lan = profile.kill_switch_allow_lan
    if args.kill_switch_allow_lan or args.kill_switch_block_lan:
        allow_lan = args.kill_switch_allow_lan
    changed = replace(
        profile, proxy=proxy_choice(args, profile.proxy), revocation=revocation, kill_switch=kill_switch, kill_switch_allow_lan=allow_lan
    )
    problems = profile_problems(changed, [p for p in store.load().profiles if p.id != profile.id])
    if problems:
        raise ProfileCommandError(" ".join(problems.values()))
    store.save(changed)
    print(_("Changed the profile {name}.").format(name=repr(changed.name)))
    proxy_password = getattr(args, "proxy_password_env", None) if proxy_given and changed.proxy.username else None  # main() took it out
    _keep_secrets(secrets, changed, ((SecretKind.PROXY, proxy_password),))
    return 0


def _read_stdin_password() -> str:
    line = sys.stdin.readline()
    if not line:
        raise ProfileCommandError(_("--password-stdin was given but standard input is empty."))
    return line.rstrip("\r\n")


def find_profile(store: ProfileStore, name: str) -> Profile:
    profile = store.load().find(name)
    if profile is None:
        raise ProfileCommandError(_("There is no profile called {name}; `sstp-vpn profiles list` shows them.").format(name=repr(name)))
    return profile


def password_state(secrets: SecretStore, profile: Profile) -> str:
    from .secret_store import KeyringUnavailable, SecretKind

    if not profile.remember_password:
        # Translators: `profiles show`, the state of the profile's password
        return _("asked for at every connection (never saved)")
    try:
        # Translators: `profiles show`, the state of the profile's password
        return _("saved in the system keyring") if secrets.get(profile.id, SecretKind.VPN) else _("not saved (asked for when connecting)")
    except KeyringUnavailable as error:
        # Translators: `profiles show`, the state of the profile's password when the keyring cannot tell
        return _("unknown: {reason}").format(reason=error.sentence)


def describe_profile(profile: Profile, password: str) -> list[str]:
    proxy = describe_proxy(profile.proxy)
    none = _("(none)")
    # Translators: `profiles show`, a yes/no setting
    yes, no = _("yes"), _("no")
    # Translators: `profiles show`, the line "proxy Basic authentication: ..."
    basic = _("allowed") if profile.proxy.allow_basic else _("never (NTLM or Negotiate only)")
    # Translators: `profiles show`, the line "proxy user: ..." of a PAC profile without a proxy user name
    kerberos_only = _("(none: Kerberos only)")
    methods = ["MS-CHAPv2", "EAP-MSCHAPv2"] + (["CHAP-MD5", "EAP-MD5"] if profile.allow_chap_md5 else []) + (["PAP"] if profile.allow_pap else [])
    if profile.auth_method != "password":
        methods = [method_names().get(profile.auth_method, profile.auth_method)]
        if profile.auth_method == "eap-tls":
            # Translators: `profiles show`, the client certificate file of EAP-TLS
            methods.append(_("certificate {path}").format(path=profile.client_certificate))
        eap = [_("EAP server {name}").format(name=profile.eap_server_name or _("(name not set)"))]
        if profile.eap_ca_file:
            eap.append(_("CA file {path}").format(path=profile.eap_ca_file))
        if profile.eap_pin_sha256:
            eap.append(_("pinned SHA-256 {fingerprint}").format(fingerprint=profile.eap_pin_sha256))
        if profile.eap_tls13:
            eap.append(_("TLS 1.3 allowed"))
        methods.append(", ".join(eap))
    system_trust = _("(system trust store only)")
    # Translators: `profiles show`, the line "routing: ..."
    routing = _("all traffic (full tunnel)") if profile.full_tunnel else _("only the VPN network (split tunnel)")
    # Translators: `profiles show`, the line "DNS: ..." (whose DNS servers are used)
    dns = _("the VPN's servers") if profile.use_vpn_dns else _("this computer's own")
    return [
        f"name: {profile.name}",
        f"id: {profile.id}",
        f"server: {profile.server}",
        f"user: {profile.username}",
        f"password: {password}",
        f"TLS server name: {profile.sni or profile.host}",
        f"CA file: {profile.ca_file or system_trust}",
        f"pinned SHA-256: {profile.pin_sha256 or none}",
        f"authentication: {', '.join(methods)}",
        f"routing: {routing}",
        f"extra routes: {', '.join(profile.extra_routes) or none}",
        f"DNS: {dns}",
        f"IPv6: {yes if profile.ipv6 else no}",
        f"MTU: {profile.mtu}",
        f"reconnect automatically: {yes if profile.auto_reconnect else no}",
        f"proxy: {proxy}",
        *([f"proxy user: {profile.proxy.username or kerberos_only}"] if profile.proxy.mode is ProxyMode.PAC else []),
        f"proxy Basic authentication: {basic}",
        f"revocation: {describe_revocation(profile.revocation)}",
        f"kill switch: {describe_kill_switch(profile.kill_switch, profile.kill_switch_allow_lan)}",
    ]


def describe_proxy(choice: ProxyChoice) -> str:
    """The value of `profiles show`'s "proxy:" line."""
    if choice.mode is ProxyMode.NONE:
        # Translators: `profiles show`, the line "proxy: none"
        return _("none")
    if choice.mode is ProxyMode.SYSTEM:
        # Translators: `profiles show`, the line "proxy: ...": whatever the desktop's (or Windows', macOS') settings say
        return _("the system's proxy settings")
    if choice.mode is ProxyMode.PAC and choice.pac_url:
        # Translators: `profiles show`, the line "proxy: ..."; {url} is the PAC file's address
        return _("as the proxy auto-config (PAC) file {url} says").format(url=choice.pac_url)
    if choice.mode is ProxyMode.PAC:
        # Translators: `profiles show`, the line "proxy: ..."
        return _("as the proxy auto-config (PAC) file found by WPAD says")
    return choice.url


def describe_revocation(revocation: Revocation) -> str:
    """The value of `profiles show`'s "revocation:" line."""
    if revocation is Revocation.HARD:
        # Translators: `profiles show`, the line "revocation: ..."
        return _("hard: refuse to connect when the server certificate's revocation cannot be checked")
    # Translators: `profiles show`, the line "revocation: ..."
    return _("soft: connect and warn when the server certificate's revocation cannot be checked")


def describe_kill_switch(mode: KillSwitchMode, allow_lan: bool) -> str:
    """The value of `profiles show`'s "kill switch:" line."""
    if mode is KillSwitchMode.OFF:
        # Translators: `profiles show`, the line "kill switch: ..."
        return _("off")
    if mode is KillSwitchMode.CONNECTED:
        # Translators: `profiles show`, the line "kill switch: ..."
        when = _("while connected and reconnecting")
    else:
        # Translators: `profiles show`, the line "kill switch: ..."
        when = _("always, from the start of connecting until you disconnect")
    # Translators: `profiles show`, the end of the line "kill switch: ..."
    return f"{when}, " + (_("local network allowed") if allow_lan else _("local network blocked"))


def profile_passwords(
    profile: Profile, secrets: SecretStore | Callable[[], SecretStore], password_stdin: bool, proxy_password_stdin: bool = False
) -> tuple[str, str | None]:
    """The VPN and proxy passwords for `connect --profile`: standard input if asked, else the
    keyring, else a prompt on a terminal. The proxy password: the keyring, or None (the caller then
    takes --proxy-password-stdin or $SSTP_VPN_PROXY_PASSWORD). `secrets` may be a function that
    makes the store: the keyring (its back-end probe) is then loaded only when a password is looked
    up there, never when both come from standard input."""
    from .profile_settings import needs_proxy_password
    from .secret_store import KeyringUnavailable, SecretKind

    def store() -> SecretStore:
        nonlocal secrets
        if callable(secrets):  # a SecretStore is not callable: the function that makes one
            secrets = secrets()
        return secrets

    keyring_problem = None
    password = None
    if password_stdin:
        password = _read_stdin_password()
    else:
        try:
            password = store().get(profile.id, SecretKind.VPN) if profile.remember_password else None  # else: "ask every time"
        except KeyringUnavailable as error:
            keyring_problem = error.sentence
        if password is None:
            if not sys.stdin.isatty():
                if keyring_problem:
                    why = _("{reason}: pass --password-stdin and write it to standard input.").format(reason=keyring_problem.rstrip("."))
                elif not profile.remember_password:
                    why = _(
                        "The profile {name} asks for its password at every connection: pass --password-stdin and write it to standard input."
                    ).format(name=repr(profile.name))
                else:
                    why = _("No password is saved for the profile {name}: pass --password-stdin and write it to standard input.").format(
                        name=repr(profile.name)
                    )
                raise ProfileCommandError(why)
            import getpass

            password = getpass.getpass(_("Password for {user} ({profile}): ").format(user=profile.username, profile=profile.name))
    proxy_password = None
    if needs_proxy_password(profile) and not proxy_password_stdin:
        try:
            proxy_password = store().get(profile.id, SecretKind.PROXY)
        except KeyringUnavailable:
            proxy_password = None
    return password, proxy_password


__all__ = [
    "ProfileCommandError",
    "ProfileFileError",
    "add_profiles_parser",
    "add_session_options",
    "add_revocation_option",
    "add_kill_switch_options",
    "add_proxy_options",
    "proxy_choice",
    "session_choices",
    "session_profile",
    "run_profiles",
    "find_profile",
    "profile_passwords",
    "describe_profile",
]
