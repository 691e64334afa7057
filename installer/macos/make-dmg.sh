#!/bin/sh
# Packs "SSTP VPN.app" into a compressed disk image with an Applications shortcut, the usual
# drag-to-install layout. UNTESTED: needs macOS (hdiutil, ditto).
#
# usage: installer/macos/make-dmg.sh "dist/SSTP VPN.app" dist/sstp-vpn-0.1.0.dmg
# Sign the app before running this, and sign and notarize the .dmg after it (README.md).
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 APP_BUNDLE OUTPUT_DMG" >&2
    exit 2
fi
app=$1
dmg=$2
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT

# ditto keeps symbolic links, extended attributes and code signatures intact (cp -R may not).
ditto "$app" "$staging/$(basename "$app")"
ln -s /Applications "$staging/Applications"
rm -f "$dmg"
hdiutil create -volname "SSTP VPN" -srcfolder "$staging" -fs HFS+ -format UDZO -ov "$dmg"
echo "$dmg"
