"""`sstp-vpn profiles list|add|remove|show` and the profile half of `sstp-vpn connect --profile`.

The same profile file and keyring entries as the tray app. Passwords reach the keyring from
standard input (`--password-stdin`) or the SSTP_VPN_PROXY_PASSWORD variable, never from argv.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from .eap_options import METHOD_NAMES, add_eap_options
from .endpoint import EndpointError, parse_endpoint
from .profiles import MAX_MTU, Profile, ProfileFileError, ProfileStore, ProxyChoice, ProxyMode, new_profile_id, profile_problems

if TYPE_CHECKING:  # keyring is imported only by the commands that use it
    from .secret_store import SecretStore

PROXY_PASSWORD_ENV = "SSTP_VPN_PROXY_PASSWORD"


class ProfileCommandError(Exception):
    """A usage problem with a profile command; the message is the sentence."""


def add_profiles_parser(commands: argparse._SubParsersAction) -> None:
    profiles = commands.add_parser("profiles", help="manage the saved connection profiles (shared with the tray app)")
    actions = profiles.add_subparsers(dest="profiles_command", required=True)
    actions.add_parser("list", help="one line per profile")
    show = actions.add_parser("show", help="all settings of one profile (never its passwords)")
    show.add_argument("name", help="profile name or id")
    remove = actions.add_parser("remove", help="delete a profile and its saved passwords")
    remove.add_argument("name", help="profile name or id")
    add = actions.add_parser("add", help="save a new profile")
    add.add_argument("name", help="a name for the profile, e.g. Office")
    add.add_argument("server", metavar="HOST[:PORT]", help="the SSTP server (port 443 unless given)")
    add.add_argument("--user", required=True, help="user name (HUB\\user for SoftEther hubs)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input and save it in the keyring")
    add.add_argument("--ca-file", metavar="PEM", default="", help="also trust the CA certificates in this file")
    add.add_argument("--sni", metavar="NAME", default="", help="TLS server name to send and check (default: HOST)")
    add.add_argument("--pin-sha256", metavar="HEX", default="", help="also require this SHA-256 fingerprint of the server certificate")
    add.add_argument(
        "--proxy",
        metavar="URL|system",
        default="",
        help=f"http://[user@]host:port, or 'system'; the proxy password is saved from ${PROXY_PASSWORD_ENV}",
    )
    add_session_options(add)
    add.add_argument("--mtu", type=int, default=MAX_MTU, help=f"largest packet in the tunnel (default {MAX_MTU})")
    add.add_argument("--auto-reconnect", action="store_true", help="the tray app reconnects when the connection drops")
    export = actions.add_parser("export", help="write profiles to a new file (TOML; never passwords)")
    export.add_argument("names", nargs="*", metavar="NAME", help="the profiles to export (default: all)")
    export.add_argument("file", metavar="FILE", help="the file to write (must not exist)")
    import_ = actions.add_parser("import", help="add profiles from an export, a Windows rasphone.pbk or a NetworkManager .nmconnection file")
    import_.add_argument("file", metavar="FILE")
    import_.add_argument("--user", default="", help="user name for the imported profiles the file gives none (rasphone.pbk holds none)")


def add_session_options(parser: argparse.ArgumentParser) -> None:
    """Routing, DNS and authentication choices: saved by `profiles add`, given to `connect` directly."""
    parser.add_argument("--no-default-route", action="store_true", help="split tunnel: route only the VPN's network through it")
    parser.add_argument(
        "--route", action="append", default=[], metavar="NETWORK", help="also route this network through the VPN, e.g. 10.20.0.0/16 (repeatable)"
    )
    parser.add_argument("--no-vpn-dns", action="store_true", help="keep this computer's DNS servers")
    add_password_method_options(parser)
    parser.add_argument("--ipv6", action="store_true", help="negotiate IPv6 (IPV6CP) as well")
    add_eap_options(parser)


def add_password_method_options(parser: argparse.ArgumentParser) -> None:
    """The weaker password sign-in methods to allow besides MS-CHAPv2: `profiles add`, `connect` and `diagnose --user`."""
    parser.add_argument("--allow-pap", action="store_true", help="allow PAP, which sends the password in clear inside TLS")
    parser.add_argument("--allow-chap-md5", action="store_true", help="allow CHAP-MD5 and EAP-MD5 (weak)")


def session_choices(args: argparse.Namespace) -> dict[str, Any]:
    """The Profile fields that add_session_options sets: the same for `profiles add` and `connect HOST`."""
    return dict(
        allow_pap=args.allow_pap,
        allow_chap_md5=args.allow_chap_md5,
        full_tunnel=not args.no_default_route,
        extra_routes=tuple(args.route),
        use_vpn_dns=not args.no_vpn_dns,
        ipv6=args.ipv6,
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
            print("No profiles yet: add one with `sstp-vpn profiles add NAME HOST --user USER`, or in the tray app.")
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
            print(f"sstp-vpn: warning: {error.sentence}", file=sys.stderr)
        print(f"Removed the profile {profile.name!r}.")
        return 0
    return _add(args, store, secrets)


def _transfer(args: argparse.Namespace, store: ProfileStore) -> int:
    """`profiles export [NAME...] FILE` and `profiles import FILE [--user USER]` (profile_transfer.py)."""
    from pathlib import Path

    from .profile_transfer import TransferError, export_file, import_file

    try:
        if args.profiles_command == "export":
            exported = export_file(store, Path(args.file), args.names)
            print(f"Exported {', '.join(repr(p.name) for p in exported)} to {args.file} (no passwords).")
            return 0
        report = import_file(store, Path(args.file), args.user)
    except TransferError as error:
        raise ProfileFileError(str(error)) from None  # exit code 1: the file, not the usage
    for line in report.lines():
        print(line)
    return 0 if report.added or not report.skipped else 1


def _add(args: argparse.Namespace, store: ProfileStore, secrets: SecretStore) -> int:
    from .secret_store import KeyringUnavailable, SecretKind, item_label

    try:
        host, port = parse_endpoint(args.server)
    except EndpointError as error:
        raise ProfileCommandError(str(error)) from None
    proxy = ProxyChoice()
    if args.proxy.strip().lower() == "system":
        proxy = ProxyChoice(ProxyMode.SYSTEM)
    elif args.proxy:
        try:
            proxy = ProxyChoice.manual_from_url(args.proxy)
        except ValueError as error:
            raise ProfileCommandError(str(error)) from None
    book = store.load()
    if book.find(args.name) is not None:
        raise ProfileCommandError(f"A profile called {args.name!r} exists already: remove it first, or choose another name.")
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
        **session_choices(args),
    )
    problems = profile_problems(profile, book.profiles)
    if problems:
        raise ProfileCommandError(" ".join(problems.values()))
    password = _read_stdin_password() if args.password_stdin else None
    proxy_password = getattr(args, "proxy_password_env", None) if proxy.username else None  # main() took it out
    store.save(profile)
    print(f"Saved the profile {profile.name!r}.")
    for kind, secret in ((SecretKind.VPN, password), (SecretKind.PROXY, proxy_password)):
        if secret:
            try:
                secrets.set(profile.id, kind, secret, label=item_label(profile, kind))
            except KeyringUnavailable as error:
                which = "VPN" if kind is SecretKind.VPN else "proxy"
                print(f"sstp-vpn: warning: the {which} password was not saved. {error.sentence}", file=sys.stderr)
    return 0


def _read_stdin_password() -> str:
    line = sys.stdin.readline()
    if not line:
        raise ProfileCommandError("--password-stdin was given but standard input is empty.")
    return line.rstrip("\r\n")


def find_profile(store: ProfileStore, name: str) -> Profile:
    profile = store.load().find(name)
    if profile is None:
        raise ProfileCommandError(f"There is no profile called {name!r}; `sstp-vpn profiles list` shows them.")
    return profile


def password_state(secrets: SecretStore, profile: Profile) -> str:
    from .secret_store import KeyringUnavailable, SecretKind

    if not profile.remember_password:
        return "asked for at every connection (never saved)"
    try:
        return "saved in the system keyring" if secrets.get(profile.id, SecretKind.VPN) else "not saved (asked for when connecting)"
    except KeyringUnavailable as error:
        return f"unknown: {error.sentence}"


def describe_profile(profile: Profile, password: str) -> list[str]:
    proxy = {ProxyMode.NONE: "none", ProxyMode.SYSTEM: "the system's proxy"}.get(profile.proxy.mode, profile.proxy.url)
    methods = ["MS-CHAPv2", "EAP-MSCHAPv2"] + (["CHAP-MD5", "EAP-MD5"] if profile.allow_chap_md5 else []) + (["PAP"] if profile.allow_pap else [])
    if profile.auth_method != "password":
        methods = [METHOD_NAMES.get(profile.auth_method, profile.auth_method)]
        if profile.auth_method == "eap-tls":
            methods.append(f"certificate {profile.client_certificate}")
        methods.append(
            f"EAP server {profile.eap_server_name or '(name not set)'}"
            + (f", CA file {profile.eap_ca_file}" if profile.eap_ca_file else "")
            + (f", pinned SHA-256 {profile.eap_pin_sha256}" if profile.eap_pin_sha256 else "")
            + (", TLS 1.3 allowed" if profile.eap_tls13 else "")
        )
    return [
        f"name: {profile.name}",
        f"id: {profile.id}",
        f"server: {profile.server}",
        f"user: {profile.username}",
        f"password: {password}",
        f"TLS server name: {profile.sni or profile.host}",
        f"CA file: {profile.ca_file or '(system trust store only)'}",
        f"pinned SHA-256: {profile.pin_sha256 or '(none)'}",
        f"authentication: {', '.join(methods)}",
        f"routing: {'all traffic (full tunnel)' if profile.full_tunnel else 'only the VPN network (split tunnel)'}",
        f"extra routes: {', '.join(profile.extra_routes) or '(none)'}",
        "DNS: " + ("the VPN's servers" if profile.use_vpn_dns else "this computer's own"),
        f"IPv6: {'yes' if profile.ipv6 else 'no'}",
        f"MTU: {profile.mtu}",
        f"reconnect automatically: {'yes' if profile.auto_reconnect else 'no'}",
        f"proxy: {proxy}",
    ]


def profile_passwords(profile: Profile, secrets: SecretStore, password_stdin: bool) -> tuple[str, str | None]:
    """The VPN and proxy passwords for `connect --profile`: standard input if asked, else the
    keyring, else a prompt on a terminal. The proxy password: the keyring, or None (the caller then
    takes --proxy-password-stdin or $SSTP_VPN_PROXY_PASSWORD)."""
    from .profile_settings import needs_proxy_password
    from .secret_store import KeyringUnavailable, SecretKind

    keyring_problem = None
    password = None
    if password_stdin:
        password = _read_stdin_password()
    else:
        try:
            password = secrets.get(profile.id, SecretKind.VPN) if profile.remember_password else None  # else: "ask every time"
        except KeyringUnavailable as error:
            keyring_problem = error.sentence
        if password is None:
            if not sys.stdin.isatty():
                why = keyring_problem or (
                    f"The profile {profile.name!r} asks for its password at every connection"
                    if not profile.remember_password
                    else f"No password is saved for the profile {profile.name!r}"
                )
                raise ProfileCommandError(f"{why.rstrip('.')}: pass --password-stdin and write it to standard input.")
            import getpass

            password = getpass.getpass(f"Password for {profile.username} ({profile.name}): ")
    proxy_password = None
    if needs_proxy_password(profile):
        try:
            proxy_password = secrets.get(profile.id, SecretKind.PROXY)
        except KeyringUnavailable:
            proxy_password = None
    return password, proxy_password


__all__ = [
    "ProfileCommandError",
    "ProfileFileError",
    "add_profiles_parser",
    "add_session_options",
    "session_choices",
    "session_profile",
    "run_profiles",
    "find_profile",
    "profile_passwords",
    "describe_profile",
]
