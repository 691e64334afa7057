"""The bundled `sstp-vpn-helper` (Linux; macOS, run by launchd as root, untested): PyInstaller
runs this file as __main__."""

import sys

from sstpvpn.platform.helper import main

sys.exit(main())
