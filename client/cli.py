"""`sstp-vpn`: the command line. A contract others script against: progress lines on stdout,
exactly one `connected: <address>` line, one sentence on stderr on failure, fixed exit codes."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from . import eap_options
from .core.i18n import _
from .core.types import Failure, FailureKind
from .endpoint import EndpointError, parse_endpoint
from .profile_commands import (
    PROXY_PASSWORD_ENV,
    ProfileCommandError,
    ProfileFileError,
    add_password_method_options,
    add_profiles_parser,
    add_proxy_options,
    add_revocation_option,
    add_session_options,
)
from .session_lock import SessionInUse, SessionLock, lock_profile

EXIT_OK = 0
EXIT_OTHER = 1
EXIT_USAGE = 2
EXIT_CODES = {
    FailureKind.AUTHENTICATION: 3,
    FailureKind.TRUST: 4,
    FailureKind.UNREACHABLE: 5,
    FailureKind.PROTOCOL: 6,
    FailureKind.OTHER: EXIT_OTHER,
}


class UsageError(Exception):
    pass


class _VersionAction(argparse._VersionAction):
    """--version, with the version read only when asked for (sstpvpn.client.__version__)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from . import __version__

        self.version = f"sstp-vpn {__version__}"
        super().__call__(parser, namespace, values, option_string)


def check_routes(texts: list[str]) -> None:
    """A usage error that says what is wrong with the first bad --route value."""
    from .profiles import extra_routes_problem

    problem = extra_routes_problem(texts)
    if problem:
        raise UsageError(problem)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sstp-vpn", description=_("Connect to an SSTP VPN server."))
    parser.add_argument("--version", action=_VersionAction, help=_("show the version and exit"))
    commands = parser.add_subparsers(dest="command", required=True)

    def server_options(sub: argparse.ArgumentParser, server_nargs: str | None = None) -> None:
        sub.add_argument("server", metavar="HOST[:PORT]", nargs=server_nargs, help=_("the SSTP server (port 443 unless given)"))
        sub.add_argument("--ca-file", metavar="PEM", help=_("also trust the CA certificates in this file"))
        sub.add_argument("--sni", metavar="NAME", help=_("TLS server name to send and check (default: HOST)"))
        add_proxy_options(sub, one_off=True)
        add_revocation_option(sub)
        sub.add_argument("--timeout", type=float, default=15.0, metavar="SECONDS", help=_("for each connection step (default 15)"))

    connect = commands.add_parser("connect", help=_("connect and stay in the foreground until interrupted"))
    server_options(connect, server_nargs="?")
    connect.add_argument("--profile", metavar="NAME", help=_("use a saved profile (see `sstp-vpn profiles`) instead of HOST and the options"))
    connect.add_argument("--user", help=_("user name (HUB\\user for SoftEther hubs); required with HOST"))
    connect.add_argument("--password-stdin", action="store_true", help=_("read the password from the first line of standard input"))
    connect.add_argument(
        "--proxy-password-stdin",
        action="store_true",
        help=_("read the proxy password from standard input (the line after the VPN password with --password-stdin) instead of ${variable}").format(
            variable=PROXY_PASSWORD_ENV
        ),
    )
    connect.add_argument("--pin-sha256", metavar="HEX", help=_("also require this SHA-256 fingerprint of the server certificate"))
    add_session_options(connect)
    connect.add_argument(
        "--allow-no-auth",
        action="store_true",
        help=_(
            "accept a server that asks for no authentication "
            "(refused by default: nothing would bind the tunnel to your account); with HOST only, not --profile"
        ),
    )
    connect.add_argument("--ifname", metavar="NAME", help=_("name of the tunnel interface"))
    connect.add_argument(
        "--keepalive",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help=_("echo the server after this much silence; twice that without an answer ends the session (default 20)"),
    )
    connect.add_argument("-v", "--verbose", action="store_true", help=_("print protocol details"))
    connect.add_argument(
        "--reconnect",
        action="store_true",
        help=_("reconnect when the session drops (backoff; waits for a network; stops on refused credentials or an untrusted server)"),
    )

    diagnose = commands.add_parser(
        "diagnose", help=_("check every step to the server; with --user, also sign in (and out, before any network change)")
    )
    server_options(diagnose, server_nargs="?")
    diagnose.add_argument(
        "--profile",
        metavar="NAME",
        help=_(
            "check a saved profile's way to its server instead of HOST and the options: its proxy (PAC file, system settings), "
            "certificate settings and revocation policy, with the proxy password from the keyring; without signing in"
        ),
    )
    diagnose.add_argument(
        "--user", help=_("also check this user name and the password: sign in, then disconnect before IPv4 is configured (nothing changes here)")
    )
    diagnose.add_argument("--password-stdin", action="store_true", help=_("with --user: read the password from the first line of standard input"))
    add_password_method_options(diagnose)  # with --user: the methods the sign-in may use, as for connect
    bundle = commands.add_parser("bundle", help=_("write a support bundle (versions, OS, profiles, last attempts, recent log; no password)"))
    bundle.add_argument("--output", metavar="PATH", help=_("file to write (.txt, or .zip for a zip); default: a dated file here"))
    commands.add_parser(
        "repair",
        help=_("remove what SSTP VPN left on this computer after a crash (routes, DNS settings, kill switch, tunnel interface)"),
    )
    add_profiles_parser(commands)
    return parser


def transport_settings(args: argparse.Namespace, pin: str | None = None):
    from .profiles import Revocation
    from .transport import ProxySettings, TransportSettings

    try:
        host, port = parse_endpoint(args.server)
    except EndpointError as error:
        raise UsageError(str(error)) from None
    proxy = None
    pac = None
    way = (args.proxy or "").strip().lower()
    if args.proxy_user is not None and args.proxy_pac is None and way != "wpad":
        raise UsageError(
            _(
                "--proxy-user goes with --proxy-pac or --proxy wpad: a proxy URL carries its own user name (http://user@host:port), "
                "and the system's settings use none."
            )
        )
    if args.proxy_pac is not None or way == "wpad":
        from .pac import PacSource

        user = (args.proxy_user or "").strip() or None
        password = proxy_password(args) if user else None
        pac = PacSource((args.proxy_pac or "").strip(), ProxySettings("", 0, user, password, allow_basic=not args.proxy_no_basic))
    elif way == "system":  # as a profile's "system" choice: a manual proxy, or the system's PAC file or WPAD
        from .profile_settings import ProfileSettingsError, pac_source, proxy_settings
        from .profiles import Profile, ProxyChoice, ProxyMode

        system = Profile(id="", name="", host=host, port=port, proxy=ProxyChoice(ProxyMode.SYSTEM, allow_basic=not args.proxy_no_basic))
        try:
            proxy, pac = proxy_settings(system, None), pac_source(system, None)
        except ProfileSettingsError as error:
            raise UsageError(str(error)) from None
    elif args.proxy:
        try:
            proxy = ProxySettings.parse(args.proxy)
        except ValueError as error:
            raise UsageError(str(error)) from None
        proxy = dataclasses.replace(proxy, allow_basic=not args.proxy_no_basic)
        if proxy.password is not None:
            warning = _(
                "warning: a password in --proxy is visible to other users in the process list; use --proxy-password-stdin or ${variable} instead."
            ).format(variable=PROXY_PASSWORD_ENV)
            print(f"sstp-vpn: {warning}", file=sys.stderr)
        elif proxy.username is not None:
            proxy = dataclasses.replace(proxy, password=proxy_password(args))
    try:
        return TransportSettings(
            host=host,
            port=port,
            sni=args.sni,
            ca_file=args.ca_file,
            pin_sha256=pin,
            proxy=proxy,
            timeout=args.timeout,
            revocation=Revocation(args.revocation or Revocation.SOFT.value),
            pac=pac,
        )
    except ValueError as error:  # a malformed pin
        raise UsageError(str(error)) from None


def proxy_password(args: argparse.Namespace) -> str | None:
    """The proxy password of `connect HOST` / `diagnose HOST`: the next line of standard input with
    --proxy-password-stdin, else $SSTP_VPN_PROXY_PASSWORD (main() took it out of the environment)."""
    if getattr(args, "proxy_password_stdin", False):
        return read_stdin_line("--proxy-password-stdin")
    return getattr(args, "proxy_password_env", None)


def read_stdin_line(option: str) -> str:
    line = sys.stdin.readline()
    if not line:
        raise UsageError(_("{option} was given but standard input is empty.").format(option=option))
    return line.rstrip("\r\n")


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return read_stdin_line("--password-stdin")
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(_("Password for {user}: ").format(user=args.user))
    raise UsageError(_("No password: pass --password-stdin and write it to standard input."))


def read_retry_password(args: argparse.Namespace) -> str | None:
    """One more password after the server refused one but allows another try (MS-CHAPv2 R=1):
    the next line of standard input with --password-stdin, else a prompt on a terminal; None when
    there is neither (or standard input has ended), which gives up."""
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n") if line else None
    if sys.stdin.isatty():
        import getpass

        try:
            prompt = _("New password for {user}: ").format(user=args.user) if args.user else _("New password for this profile: ")
            return getpass.getpass(prompt)
        except (EOFError, KeyboardInterrupt):
            return None
    return None


def run_connect(args: argparse.Namespace) -> int:
    from sstpvpn.platform import current

    # The first attempt's preamble (supported system, a crashed session's network settings
    # restored), before any password is asked for; run_session repeats it for each retry.
    preparation = current.prepare_session()
    if preparation.note or preparation.repaired:
        from .session_loop import announce_preparation

        announce_preparation(preparation, first=True)
    if preparation.failure is not None:
        return fail(preparation.failure)
    if args.profile:
        command = profile_connect_command(args)
    else:
        if not args.server or not args.user:
            raise UsageError(_("Give the server and --user, or --profile NAME."))
        command = host_connect_command(args)
    from .session_loop import run_session

    return run_session(command, args.reconnect, args.verbose, fail, lambda: read_retry_password(args))


def begin_head_start(args: argparse.Namespace) -> None:
    """`connect HOST` without a proxy: resolve and open TCP to the server on a thread now, while
    the rest of start-up runs (head_start.py); the transport takes it over. After the password
    is read, and after the preamble's repair (which may restore the resolver's settings). Not with
    the kill switch 'always', which is in place before the first packet to the server."""
    if args.proxy or args.proxy_pac is not None or args.kill_switch == "always":
        return
    try:
        host, port = parse_endpoint(args.server)
    except EndpointError:
        return  # transport_settings says what is wrong
    from . import head_start

    head_start.begin(host, port, args.timeout)


# Options that describe the server; a profile brings its own.
_SERVER_OPTIONS: tuple[str, ...] = (
    "server",
    "user",
    "ca_file",
    "sni",
    "proxy",
    "proxy_pac",
    "proxy_user",
    "proxy_no_basic",
    "pin_sha256",
    "revocation",
    "no_default_route",
    "route",
    "no_vpn_dns",
    "allow_pap",
    "allow_chap_md5",
    "ipv6",
    "kill_switch",
    "kill_switch_allow_lan",
    "allow_no_auth",
)


_SERVER_OPTIONS += eap_options.OPTION_NAMES  # EAP-TLS / PEAP options (eap_options.py): a profile has its own


_held_session_locks: list[SessionLock] = []  # the kernel drops them when this process ends


def host_connect_command(args: argparse.Namespace):
    """The Connect command for `connect HOST --user USER ...`: the options as an unsaved profile,
    built like a saved one (profile_settings.build_connect)."""
    check_routes(args.route)  # a usage error before any password is asked for
    password = read_password(args)  # first: with --proxy-password-stdin, that comes on the next line
    begin_head_start(args)  # before the heavy imports below
    from .profile_commands import session_profile
    from .profile_settings import build_connect

    transport = transport_settings(args, args.pin_sha256)
    problem = eap_options.options_problem(args)  # --auth eap-tls / peap
    if problem:
        raise UsageError(problem)
    return build_connect(
        session_profile(args, transport.host, transport.port),
        transport,
        password,
        ifname=args.ifname,
        hello_interval=args.keepalive,
        allow_no_auth=args.allow_no_auth,
    )


def profile_connect_command(args: argparse.Namespace):
    """The Connect command for `connect --profile NAME`: settings from the profile, passwords from
    standard input, the keyring or a prompt."""
    from . import profile_settings
    from .profile_commands import find_profile, profile_passwords
    from .profiles import ProfileStore

    given = [name for name in _SERVER_OPTIONS if getattr(args, name)]
    if given:
        options = ", ".join("HOST" if name == "server" else "--" + name.replace("_", "-") for name in given)
        raise UsageError(_("--profile takes the server settings from the profile; leave out {options}.").format(options=options))
    profile = find_profile(ProfileStore(), args.profile)
    args.reconnect = args.reconnect or profile.auto_reconnect  # the profile's choice; --reconnect adds it
    # Before any password prompt or network change: one client per profile. Held until exit.
    _held_session_locks.append(lock_profile(profile.id, profile.name, "sstp-vpn connect"))
    password, proxy_password = profile_passwords(profile, _secret_store, args.password_stdin, args.proxy_password_stdin)
    if args.proxy_password_stdin:
        proxy_password = read_stdin_line("--proxy-password-stdin")
    elif proxy_password is None and profile_settings.needs_proxy_password(profile):
        proxy_password = args.proxy_password_env  # main() took it out of the environment
    try:
        transport = profile_settings.transport_settings(profile, proxy_password, timeout=args.timeout)
    except profile_settings.ProfileSettingsError as error:
        raise UsageError(str(error)) from None
    return profile_settings.build_connect(profile, transport, password, ifname=args.ifname, hello_interval=args.keepalive)


def _secret_store():
    """The keyring, loaded (and its back-end picked) only when a password is looked up there."""
    from .secret_store import SecretStore

    return SecretStore()


def run_diagnose(args: argparse.Namespace) -> int:
    if args.profile:
        return report_diagnosis(*profile_diagnose_settings(args))
    if not args.server:
        raise UsageError(_("Give the server, or --profile NAME."))
    sign_in_as = None
    if args.user:
        from .profile_settings import build_connect
        from .profiles import Profile

        password = read_password(args)  # before any connection: a prompt must not wait behind the checks
        transport = transport_settings(args)
        # Signed in as `connect HOST` would: an unsaved profile with the user and the allowed methods.
        profile = Profile(
            id="", name="", host=transport.host, port=transport.port, username=args.user, allow_pap=args.allow_pap, allow_chap_md5=args.allow_chap_md5
        )
        sign_in_as = build_connect(profile, transport, password).engine
    elif args.password_stdin or args.allow_pap or args.allow_chap_md5:
        given = "--password-stdin" if args.password_stdin else "--allow-pap" if args.allow_pap else "--allow-chap-md5"
        raise UsageError(_("{option} needs --user: the password is checked only with a user name.").format(option=given))
    else:
        transport = transport_settings(args)
    origin = ""
    if (args.proxy or "").strip().lower() == "system":
        from .diagnose import system_proxy_origin

        origin = system_proxy_origin(transport.host, transport.port)
    return report_diagnosis(transport, origin, sign_in_as)


def report_diagnosis(transport, origin: str, sign_in_as=None) -> int:
    from .diagnose import diagnose, print_report

    report = diagnose(transport, sign_in_as=sign_in_as, proxy_origin=origin)
    print_report(report, sys.stdout)
    if report.would_connect:
        return EXIT_OK
    return EXIT_OTHER if report.failure_kind is None else EXIT_CODES[report.failure_kind]


def profile_diagnose_settings(args: argparse.Namespace):
    """`diagnose --profile NAME`: the profile's transport settings (its proxy password from the
    keyring, else $SSTP_VPN_PROXY_PASSWORD) and where its system proxy comes from."""
    from . import profile_settings
    from .diagnose import system_proxy_origin
    from .profile_commands import find_profile
    from .profiles import ProfileStore, ProxyMode
    from .secret_store import KeyringUnavailable, SecretKind, SecretStore

    given = [name for name in _SERVER_OPTIONS if getattr(args, name, None)] + (["password_stdin"] if args.password_stdin else [])
    if given:
        options = ", ".join("HOST" if name == "server" else "--" + name.replace("_", "-") for name in given)
        raise UsageError(_("--profile takes the server settings from the profile; leave out {options}.").format(options=options))
    profile = find_profile(ProfileStore(), args.profile)
    proxy_password = None
    if profile_settings.needs_proxy_password(profile):
        try:
            proxy_password = SecretStore().get(profile.id, SecretKind.PROXY)
        except KeyringUnavailable:
            proxy_password = None
        proxy_password = proxy_password or args.proxy_password_env
    try:
        transport = profile_settings.transport_settings(profile, proxy_password, timeout=args.timeout)
    except profile_settings.ProfileSettingsError as error:
        raise UsageError(str(error)) from None
    origin = system_proxy_origin(profile.host, profile.port) if profile.proxy.mode is ProxyMode.SYSTEM else ""
    return transport, origin


def run_bundle(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .support_bundle import collect, default_file_name, write_bundle

    path = Path(args.output or default_file_name())
    try:
        write_bundle(path, collect())
    except OSError as error:
        sentence = _("The support bundle could not be written to {path} ({reason}).").format(path=path, reason=error.strerror)
        print(f"sstp-vpn: {sentence}", file=sys.stderr)
        return EXIT_OTHER
    print(path.resolve())
    return EXIT_OK


def fail(failure: Failure) -> int:
    print(f"sstp-vpn: {failure.reason}", file=sys.stderr, flush=True)
    return EXIT_CODES[failure.kind]


def main(argv: list[str] | None = None) -> int:
    from sstpvpn.platform.language import use_users_language

    use_users_language()  # before the parser: its help is translated too
    parser = build_parser()
    args = parser.parse_args(argv)
    # Out of the environment before anything runs a program (even a library probing for a
    # backend does), so that no child process inherits the proxy password.
    args.proxy_password_env = os.environ.pop(PROXY_PASSWORD_ENV, None)
    try:
        if args.command == "connect":
            return run_connect(args)
        if args.command == "profiles":
            from .profile_commands import run_profiles

            return run_profiles(args)
        if args.command == "bundle":
            return run_bundle(args)
        if args.command == "repair":
            from .repair import run_repair

            return run_repair()
        return run_diagnose(args)
    except (UsageError, ProfileCommandError) as error:
        print(f"sstp-vpn: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ProfileFileError as error:
        print(f"sstp-vpn: {error}", file=sys.stderr)
        return EXIT_OTHER
    except SessionInUse as error:
        print(f"sstp-vpn: {error.sentence}", file=sys.stderr)
        return EXIT_OTHER


if __name__ == "__main__":
    sys.exit(main())
