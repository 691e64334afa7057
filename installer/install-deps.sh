#!/usr/bin/env bash
# Install what a fresh Debian 12 (bookworm) machine needs to run the whole SSTP VPN test suite:
# Debian packages, then the project itself (editable, with the gui and test extras) via pip.
#
# usage: sudo installer/install-deps.sh [--user USER]
#        Idempotent. Without --user it starts no services (CI). With --user it also lets USER run the
#        tray app as themselves: installer/linux/enable-helper.sh USER (group sstp-vpn, helper).
# env:   PYTHON           interpreter to install the project into (default: python3)
#        LOCK_WAIT_SECONDS how long to wait for another apt/dpkg run to finish (default: 1800)
#
# The SoftEther test server itself is built on demand by ../shared/softether/build.sh (the
# integration fixture runs it under CI=true); its build packages are listed here as well, so the
# test run never needs apt.
set -euo pipefail

PACKAGES=(
    # Python and pip, for the project and its test tools
    ca-certificates
    python3
    python3-pip

    # Network namespaces, routes, ping and sysctl inside them; setpriv/unshare; systemd's
    # shared library for the private systemd-resolved of the DNS tests (unpacked below)
    iproute2
    iputils-ping
    procps
    systemd
    util-linux

    # Network safety (issue 19): nftables for the kill switch (the app's own firewall table);
    # radvd sends IPv6 router advertisements through the tunnel, dnsmasq answers DNS on each side
    # of it, tcpdump reads the leak captures when a test fails
    dnsmasq-base
    nftables
    radvd
    tcpdump

    # SoftEther SSTP test server: build tools (same list as shared/softether/build.sh),
    # its resources and its admin CLI
    cmake
    g++
    gcc
    libncurses-dev
    libreadline-dev
    libssl-dev
    make
    softether-common
    softether-vpncmd
    zlib1g-dev

    # HTTP proxies with authentication (htpasswd is in apache2-utils) and TLS tools
    apache2-utils
    curl
    openssl
    squid
    tinyproxy

    # A real NTLM verifier for squid (tests/ntlm_proxy.py): Samba's ntlm_auth and winbindd
    # checking a standalone Samba's tdbsam user (pdbedit is in samba)
    samba
    winbind

    # Kerberos proxy authentication (client/proxy_auth.py): libkrb5-dev (with gcc above) builds
    # python-gssapi and krb5, pyspnego's Kerberos; tests/kerberos_proxy.py runs an MIT KDC for its own
    # realm (krb5kdc, kdb5_util in krb5-kdc; kadmin.local in krb5-admin-server) and kinit
    # (krb5-user); squid's negotiate_kerberos_auth checks the tickets
    krb5-admin-server
    krb5-kdc
    krb5-user
    libkrb5-dev

    # Throughput benchmark
    iperf3

    # EAP servers for the PEAP/EAP-TLS tests (tests/eap): FreeRADIUS, and hostapd as a
    # RADIUS-only server (its PEAP sends the [MS-PEAP] crypto binding TLV)
    freeradius
    hostapd

    # GUI tests: virtual X server, tray host, screenshots and synthetic clicks, a font
    fonts-dejavu-core
    imagemagick
    trayer
    xdotool
    xvfb

    # Qt runtime libraries the PySide6 wheel loads from the system (real-parts.md section 1)
    libdbus-1-3
    libegl1
    libfontconfig1
    libgl1
    libglib2.0-0
    libx11-xcb1
    libxcb-cursor0
    libxcb-icccm4
    libxcb-image0
    libxcb-keysyms1
    libxcb-randr0
    libxcb-render-util0
    libxcb-shape0
    libxcb-sync1
    libxcb-xfixes0
    libxkbcommon-x11-0

    # OS keyring: a private session bus, gnome-keyring's Secret Service, gdbus for readiness polls
    dbus
    gnome-keyring
    libglib2.0-bin

    # The desktop's proxy settings (tests/desktop): GNOME's through gsettings and dconf on a private
    # session bus (dbus-run-session, gsettings: above), KDE's kioslaverc written by kwriteconfig5
    dconf-cli
    dconf-gsettings-backend
    dconf-service
    gsettings-desktop-schemas
    libkf5config-bin

    # The .deb (installer/build.py deb, tests/installer): a venv to build in, PyInstaller's
    # needs (objdump; the shared libpython Debian's python3 does not link), a desktop-entry
    # checker, and the libraries the package declares that nothing above brings
    binutils
    desktop-file-utils
    libpython3.11
    libwayland-client0
    libwayland-cursor0
    python3-venv
    xkb-data
)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HELPER_USER=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --user) HELPER_USER="${2:?--user needs a user name}"; shift 2 ;;
        *) echo "usage: install-deps.sh [--user USER]" >&2; exit 2 ;;
    esac
done
PYTHON_GIVEN="${PYTHON:+yes}"
PYTHON="${PYTHON:-python3}"
LOCK_WAIT_SECONDS="${LOCK_WAIT_SECONDS:-1800}"

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: run as root (it installs Debian packages)" >&2
    exit 1
fi

missing_packages() {
    local package
    for package in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q "ok installed" \
            || echo "$package"
    done
}

# Another apt-get or dpkg may be running (e.g. a background install): wait for it instead of
# failing. DPkg::Lock::Timeout covers dpkg's lock; apt-get update's list lock is not covered by
# it, so any "could not get lock" failure is retried until LOCK_WAIT_SECONDS have passed.
apt_waiting_for_locks() {
    local deadline=$((SECONDS + LOCK_WAIT_SECONDS)) output status
    while true; do
        status=0
        output="$(apt-get -o DPkg::Lock::Timeout=60 "$@" 2>&1)" || status=$?
        printf '%s\n' "$output"
        if [ "$status" -eq 0 ]; then
            return 0
        fi
        if grep -qiE 'could not get lock|unable to lock|unable to acquire the dpkg frontend lock' \
                <<<"$output" && [ "$SECONDS" -lt "$deadline" ]; then
            echo "install-deps.sh: apt/dpkg is busy, waiting..." >&2
            sleep 5
            continue
        fi
        return "$status"
    done
}

# Packages must not start their services (squid, tinyproxy, dbus): tests start their own
# instances with their own configs. policy-rc.d exit 101 = "action forbidden" for invoke-rc.d
# and deb-systemd-invoke. An existing policy is left as it is.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# temporary, from install-deps.sh: start no services while installing\nexit 101\n' \
        >"$POLICY"
    chmod 755 "$POLICY"
    trap 'rm -f "$POLICY"' EXIT
fi

mapfile -t TO_INSTALL < <(missing_packages)
if [ "${#TO_INSTALL[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt_waiting_for_locks update -q
    apt_waiting_for_locks install -y -q --no-install-recommends "${TO_INSTALL[@]}"
    # Servers installed here only for the tests (which start their own instances) must not start
    # at the next boot either: a RADIUS server or a proxy listening on a desktop is nobody's wish.
    # Only those this run installed: a server that was already here stays as its owner set it.
    if [ -d /run/systemd/system ]; then
        for service in freeradius hostapd squid tinyproxy; do
            if printf '%s\n' "${TO_INSTALL[@]}" | grep -qx "$service"; then
                systemctl disable --now "$service" >/dev/null 2>&1 || true
            fi
        done
    fi
else
    echo "install-deps.sh: all Debian packages are already installed"
fi

# The DNS tests run a private systemd-resolved inside a namespace. Installing the package would
# take over this machine's /etc/resolv.conf, so it is only unpacked into a folder of its own.
RESOLVED_ROOT=/opt/sstp-vpn-test/systemd-resolved
if [ ! -x "$RESOLVED_ROOT/lib/systemd/systemd-resolved" ]; then
    workdir="$(mktemp -d)"
    (cd "$workdir" && apt-get download systemd-resolved && mkdir -p "$RESOLVED_ROOT" \
        && dpkg-deb -x systemd-resolved_*.deb "$RESOLVED_ROOT")
    rm -rf "$workdir"
fi

# pip into an interpreter; Debian's own python3 is marked externally managed (PEP 668), and pip
# refuses to install into it unless told to: on a test machine installing there is what we want.
pip_install() {
    local interpreter="$1"
    shift
    local flags=()
    if "$interpreter" - <<'PY'
import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)
PY
    then
        flags+=(--break-system-packages)
    fi
    (cd "$REPO_ROOT" && "$interpreter" -m pip install --no-input "${flags[@]}" "$@")
}

# Root's python3 gets the project editable, with the test tools: the README's test command runs it.
pip_install "$PYTHON" -e ".[gui,test]"

if [ -n "$HELPER_USER" ]; then
    # USER must be able to run the interpreter and read the project. Root's first python3 may live
    # where nobody else can reach it (pyenv under /root), and so may the checkout: then Debian's
    # python3 gets the project too, as a copy when USER cannot read the checkout. A PYTHON given
    # explicitly that USER cannot run is an error.
    USER_PYTHON="$("$PYTHON" -c 'import sys; print(sys.executable)')"
    if ! runuser -u "$HELPER_USER" -- "$USER_PYTHON" -c 'import sys' >/dev/null 2>&1; then
        if [ "$PYTHON_GIVEN" = yes ]; then
            echo "install-deps.sh: $HELPER_USER cannot run $USER_PYTHON (PYTHON); give an interpreter every user can run, e.g. PYTHON=/usr/bin/python3" >&2
            exit 1
        fi
        echo "install-deps.sh: $HELPER_USER cannot run $USER_PYTHON (root's python3), so the project goes into /usr/bin/python3 as well"
        USER_PYTHON=/usr/bin/python3
        pip_install "$USER_PYTHON" -e ".[gui]"
    fi
    if ! runuser -u "$HELPER_USER" -- "$USER_PYTHON" -c 'import sstpvpn.client' >/dev/null 2>&1; then
        echo "install-deps.sh: $HELPER_USER cannot read this checkout ($REPO_ROOT), so $USER_PYTHON gets a copy of the project"
        pip_install "$USER_PYTHON" ".[gui]"
    fi
    SCRIPTS="$("$USER_PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    HELPER="$SCRIPTS/sstp-vpn-helper" "$REPO_ROOT/installer/linux/enable-helper.sh" "$HELPER_USER"
    # The quick start's promise, checked as that user: the tray app and the command line start.
    if ! runuser -u "$HELPER_USER" -- env PATH="$SCRIPTS:/usr/local/bin:/usr/bin:/bin" sh -c 'sstp-vpn-tray --version && sstp-vpn --version' >/dev/null; then
        echo "install-deps.sh: $HELPER_USER cannot start sstp-vpn-tray or sstp-vpn from $SCRIPTS" >&2
        exit 1
    fi
    echo "install-deps.sh: $HELPER_USER can start sstp-vpn-tray (in $SCRIPTS)"
fi
