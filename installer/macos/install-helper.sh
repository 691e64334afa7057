#!/bin/sh
# Installs or removes sstp-vpn-helper, the root LaunchDaemon through which the tray app and
# `sstp-vpn connect`, run as the user, get their utun interface, routes and DNS.
# UNTESTED on macOS: no Mac has run it yet (tests/unit/test_helper_macos.py runs its `plist` mode
# on Linux).
#
# usage: sudo sh install-helper.sh install [--group NAME] [--app PATH | --python PATH]
#        sudo sh install-helper.sh uninstall
#             sh install-helper.sh plist --program PATH --group NAME --gid N   (print the plist only)
#
#   --group NAME   who may use the helper besides root (default: admin, gid 80 on every Mac: the
#                  users macOS lets change network settings). Another name is created if missing;
#                  add users with: sudo dseditgroup -o edit -a USER -t user NAME
#   --app PATH     the "SSTP VPN.app" whose Contents/MacOS/sstp-vpn-helper to install (default:
#                  the app this script is inside of, Contents/Resources/install-helper.sh)
#   --python PATH  development: run `PATH -m sstpvpn.platform.helper_macos` from a checkout
#                  installed with pip into PATH's environment (that code then runs as root)
#
# The daemon runs a root-owned copy under /Library/PrivilegedHelperTools, never the app in
# /Applications: an app dragged there belongs to the user who dragged it, and a root daemon must
# not run code an ordinary process can replace.
#
# Run by hand with sudo, or from the app through the standard administrator prompt:
#   osascript -e 'do shell script "sh \"/Applications/SSTP VPN.app/Contents/Resources/install-helper.sh\" install" with administrator privileges'
# Either way the password is asked once, here; connecting later asks nothing.
set -eu

LABEL=org.sstp-vpn.helper
PLIST=/Library/LaunchDaemons/$LABEL.plist
SOCKET=/var/run/sstp-vpn-helper.sock
HELPER_HOME=/Library/PrivilegedHelperTools/$LABEL
JOURNAL=/var/db/sstp-vpn/network-journal.json
HERE=$(cd "$(dirname "$0")" && pwd)
TEMPLATE=$HERE/$LABEL.plist

say() { echo "install-helper.sh: $*"; }
fail() { echo "install-helper.sh: $*" >&2; exit 1; }

xml_escape() { printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g'; }
sed_escape() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }

# The plist for PROGRAM, GROUP and GID, on stdout.
render_plist() {
    program=$(sed_escape "$(xml_escape "$1")")
    group=$(sed_escape "$(xml_escape "$2")")
    sed -e "s|@PROGRAM@|$program|" -e "s|@GROUP@|$group|" -e "s|@GID@|$3|" "$TEMPLATE"
}

check_group_name() {
    case "$1" in
        "" | -* | *[!A-Za-z0-9_.-]*) fail "'$1' cannot be a group name (letters, digits, '_', '.', '-')" ;;
    esac
}

check_number() {
    case "$1" in
        "" | *[!0-9]*) fail "'$1' is not a group id" ;;
    esac
}

group_id() {
    dscl . -read "/Groups/$1" PrimaryGroupID 2>/dev/null | awk '/^PrimaryGroupID:/ { print $2 }'
}

require_root() {
    [ "$(id -u)" -eq 0 ] || fail "run it with sudo (it installs a root LaunchDaemon)"
}

install_helper() {
    require_root
    check_group_name "$GROUP"
    if [ "$GROUP" != admin ] && [ -z "$(group_id "$GROUP")" ]; then
        dseditgroup -o create -r "SSTP VPN users" "$GROUP"
        say "created the group $GROUP; add users with: sudo dseditgroup -o edit -a USER -t user $GROUP"
    fi
    gid=$(group_id "$GROUP")
    check_number "$gid"

    launchctl bootout "system/$LABEL" 2>/dev/null || true  # an older one, with its sessions restored
    rm -rf "$HELPER_HOME"
    mkdir -p "$HELPER_HOME"
    if [ -n "$PYTHON" ]; then
        [ -x "$PYTHON" ] || fail "$PYTHON is not an executable Python"
        "$PYTHON" -c 'import sstpvpn.platform.helper_macos' || fail "$PYTHON cannot import sstpvpn (pip install it first)"
        program=$HELPER_HOME/sstp-vpn-helper
        printf '#!/bin/sh\nexec %s -m sstpvpn.platform.helper_macos "$@"\n' "'$(printf '%s' "$PYTHON" | sed "s/'/'\\\\''/g")'" >"$program"
        chmod 0755 "$program"
        say "development install: launchd runs $PYTHON's sstpvpn as root"
    else
        [ -x "$APP/Contents/MacOS/sstp-vpn-helper" ] || fail "$APP/Contents/MacOS/sstp-vpn-helper is missing; give --app PATH"
        ditto "$APP" "$HELPER_HOME/SSTP VPN.app"  # keeps the code signature intact
        program="$HELPER_HOME/SSTP VPN.app/Contents/MacOS/sstp-vpn-helper"
    fi
    chown -R root:wheel "$HELPER_HOME"
    chmod -R go-w "$HELPER_HOME"

    rendered=$(mktemp)
    render_plist "$program" "$GROUP" "$gid" >"$rendered"
    plutil -lint "$rendered" >/dev/null || { rm -f "$rendered"; fail "the rendered plist is not valid"; }
    install -m 0644 -o root -g wheel "$rendered" "$PLIST"
    rm -f "$rendered"

    launchctl enable "system/$LABEL"
    launchctl bootstrap system "$PLIST"
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        [ -S "$SOCKET" ] && break
        sleep 0.5
    done
    [ -S "$SOCKET" ] || fail "launchd did not create $SOCKET; see: launchctl print system/$LABEL"
    say "installed: launchd listens on $SOCKET for root and the group $GROUP (log: /var/log/sstp-vpn-helper.log)"
}

uninstall_helper() {
    require_root
    launchctl bootout "system/$LABEL" 2>/dev/null || true  # SIGTERM: open sessions restore their network
    rm -f "$PLIST" "$SOCKET"
    rm -rf "$HELPER_HOME"
    if [ -s "$JOURNAL" ]; then
        say "$JOURNAL still lists network changes (the server route or DNS) of a connection that did not end cleanly; the next 'sudo sstp-vpn connect' undoes them first; or check 'netstat -rn' and the DNS settings, then delete the file"
    fi
    say "removed the helper; a group created for it stays (remove it with: sudo dseditgroup -o delete NAME)"
}

ACTION=${1:-}
[ "$#" -gt 0 ] && shift
GROUP=admin
GID=
PROGRAM=
PYTHON=
case "$HERE" in
    */Contents/Resources) APP=$(cd "$HERE/../.." && pwd) ;;
    *) APP= ;;
esac
while [ "$#" -gt 0 ]; do
    case "$1" in
        --group) GROUP=${2:?--group needs a name}; shift 2 ;;
        --gid) GID=${2:?--gid needs a number}; shift 2 ;;
        --app) APP=${2:?--app needs a path}; shift 2 ;;
        --python) PYTHON=${2:?--python needs a path}; shift 2 ;;
        --program) PROGRAM=${2:?--program needs a path}; shift 2 ;;
        *) fail "unknown option $1 (see the usage at the top of this script)" ;;
    esac
done

case "$ACTION" in
    install)
        [ -n "$PYTHON" ] || [ -n "$APP" ] || fail "give --app PATH (the SSTP VPN.app) or --python PATH"
        install_helper ;;
    uninstall) uninstall_helper ;;
    plist)
        [ -n "$PROGRAM" ] || fail "plist needs --program PATH"
        check_group_name "$GROUP"
        check_number "$GID"
        render_plist "$PROGRAM" "$GROUP" "$GID" ;;
    *) fail "usage: sudo $0 install [--group NAME] [--app PATH | --python PATH] | uninstall" ;;
esac
