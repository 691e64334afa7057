#!/usr/bin/env bash
# CI stage: the Windows installer built on Linux through Wine, installed, smoke-tested, uninstalled.
#
# usage: sudo bash installer/windows/wine-stage.sh      (Debian 12, as root; CI=true in CI)
#
# 1. installs what is missing (Debian packages): wine64, wine32:i386 (before any prefix is made:
#    Inno Setup's compiler is 32-bit), npm, mingw (the Wine-only DLL stand-ins of wine-shims/),
#    xvfb, xdotool, imagemagick;
# 2. python3 installer/build.py windows -> dist/sstp-vpn-<version>-setup.exe (Wine prefix and the
#    prepared Windows Python are cached in /var/cache/sstp-vpn-wine between runs);
# 3. python3 -m pytest tests/windows: silent install, the CLI, diagnose, keyring, tray, Wintun,
#    the ctypes prototypes, silent uninstall (the last test). CI=true turns a missing Wine or build
#    into a failure instead of a skip.
# Every step prints its time. Measured (2-core VM): 150 s with a warm cache (build 108 s, tests
# 42 s); a fresh machine adds the Debian packages (wine32 alone about 90 s) and the downloads.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive
stage_started=$SECONDS

step() { echo "wine-stage: $1 ($((SECONDS - step_started)) s)"; step_started=$SECONDS; }
step_started=$SECONDS

if [ "$(id -u)" != 0 ]; then
    echo "wine-stage: run as root (it installs Debian packages and writes /var/cache/sstp-vpn-wine)" >&2
    exit 1
fi

wait_for_dpkg() {
    local waited=0
    while fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock >/dev/null 2>&1; do
        if [ "$waited" -ge 1800 ]; then
            echo "wine-stage: another apt/dpkg run has held its lock for 30 min" >&2
            exit 1
        fi
        sleep 5
        waited=$((waited + 5))
    done
}

apt_install() {
    wait_for_dpkg
    apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold "$@"
}

missing=()
command -v wine >/dev/null || missing+=(wine wine64)
command -v npm >/dev/null || missing+=(npm)
command -v xvfb-run >/dev/null || missing+=(xvfb xauth)
command -v xdotool >/dev/null || missing+=(xdotool)
command -v import >/dev/null || missing+=(imagemagick)
command -v fuser >/dev/null || missing+=(psmisc)
command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64-win32)
command -v objdump >/dev/null || missing+=(binutils)
if [ "${#missing[@]}" -gt 0 ]; then
    wait_for_dpkg
    apt-get update -q
    apt_install "${missing[@]}"
fi
if ! dpkg -s wine32:i386 >/dev/null 2>&1; then
    # Must come before the first prefix: a 64-bit-only prefix cannot run 32-bit programs later.
    dpkg --add-architecture i386
    wait_for_dpkg
    apt-get update -q
    apt_install wine32:i386
fi
step "Debian packages ready: $(wine --version)"

python3 installer/build.py windows
step "installer built: $(ls dist/sstp-vpn-*-setup.exe)"

python3 -m pytest tests/windows -p no:cacheprovider
step "smoke tests under Wine passed"
echo "wine-stage: done in $((SECONDS - stage_started)) s"
