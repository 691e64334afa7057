#!/usr/bin/env bash
# Lets USER run the tray app and `sstp-vpn connect` from this checkout as themselves: creates the
# group sstp-vpn, adds USER to it, and starts sstp-vpn-helper, the small root process that creates
# the tunnel interface and sets routes and DNS (the engine and TLS stay with the user).
#
# With systemd: installs sstp-vpn-helper.socket and sstp-vpn-helper@.service into UNIT_DIR, pointing
# at this checkout's helper, and enables the socket (started on demand, at every boot).
# Without systemd (containers, WSL): starts the helper in the background now (not at boot).
#
# usage: sudo installer/linux/enable-helper.sh USER     (install-deps.sh --user USER runs it)
#        installer/linux/enable-helper.sh --units-only  (only writes the two units into UNIT_DIR:
#                                                         no root needed, nothing else changes)
# env:   HELPER         the sstp-vpn-helper to run (default: the one on PATH)
#        UNIT_DIR       where the units go (default /etc/systemd/system)
#        HELPER_SOCKET  where the helper listens without systemd (default /run/sstp-vpn/helper.sock)
#        HELPER_LOG     its log without systemd (default /var/log/sstp-vpn-helper.log)
#
# The helper runs this checkout's code as root: fine for development; for daily use install the
# package (installer/build.py deb), whose helper lives in /usr/lib/sstp-vpn.
set -euo pipefail

GROUP=sstp-vpn
USER_NAME="${1:?usage: enable-helper.sh USER | --units-only}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
HELPER="${HELPER:-$(command -v sstp-vpn-helper || true)}"
UNIT_DIR="${UNIT_DIR:-/etc/systemd/system}"
HELPER_SOCKET="${HELPER_SOCKET:-/run/sstp-vpn/helper.sock}"

# The packaged units, with this checkout's helper; ProtectHome=read-only because a checkout (and a
# pyenv Python) usually lives in a home folder, which the packaged unit hides from the helper.
# tests/installer/test_helper_unit_sandbox.py measures the sandbox of what this writes.
write_units() {
    mkdir -p "$UNIT_DIR"
    install -m 0644 "$HERE/sstp-vpn-helper.socket" "$UNIT_DIR/sstp-vpn-helper.socket"
    sed -e "s|^ExecStart=.*|ExecStart=$HELPER --group $GROUP|" -e "s|^ProtectHome=.*|ProtectHome=read-only|" \
        "$HERE/sstp-vpn-helper@.service" >"$UNIT_DIR/sstp-vpn-helper@.service"
    chmod 0644 "$UNIT_DIR/sstp-vpn-helper@.service"
}

if [ "$USER_NAME" != --units-only ] && [ "$(id -u)" -ne 0 ]; then
    echo "enable-helper.sh: run as root (it creates a group and starts a root service)" >&2
    exit 1
fi
if [ -z "$HELPER" ] || [ ! -x "$HELPER" ]; then
    echo "enable-helper.sh: sstp-vpn-helper is not installed; run installer/install-deps.sh first" >&2
    exit 1
fi
if [ "$USER_NAME" = --units-only ]; then
    write_units
    exit 0
fi
id "$USER_NAME" >/dev/null

getent group "$GROUP" >/dev/null || groupadd --system "$GROUP"
if [ "$USER_NAME" != root ] && ! id -nG "$USER_NAME" | tr ' ' '\n' | grep -qx "$GROUP"; then
    usermod -a -G "$GROUP" "$USER_NAME"
    echo "enable-helper.sh: added $USER_NAME to the group $GROUP (effective at the next login; until then start programs with 'sg $GROUP COMMAND')"
fi

write_units

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable --now sstp-vpn-helper.socket
    echo "enable-helper.sh: sstp-vpn-helper.socket is enabled and listening"
    exit 0
fi

# No systemd: one listening helper in the background, unless one listens already.
if [ -S "$HELPER_SOCKET" ] && kill -0 "$(cat "$HELPER_SOCKET.pid" 2>/dev/null)" 2>/dev/null; then
    echo "enable-helper.sh: a helper already listens on $HELPER_SOCKET"
    exit 0
fi
mkdir -p "$(dirname "$HELPER_SOCKET")"
LOG="${HELPER_LOG:-/var/log/sstp-vpn-helper.log}"
setsid "$HELPER" --group "$GROUP" --listen "$HELPER_SOCKET" </dev/null >>"$LOG" 2>&1 &
echo $! >"$HELPER_SOCKET.pid"
for _ in $(seq 100); do
    [ -S "$HELPER_SOCKET" ] && break
    sleep 0.1
done
if [ ! -S "$HELPER_SOCKET" ]; then
    echo "enable-helper.sh: the helper did not start; see $LOG" >&2
    exit 1
fi
echo "enable-helper.sh: systemd is not running here, so the helper was started now (pid $(cat "$HELPER_SOCKET.pid"), log $LOG); after a reboot run this script again"
