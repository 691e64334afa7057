"""The bundled `sstp-vpn-helper` (macOS, run by launchd as root): PyInstaller runs this file as
__main__. UNTESTED: no Mac has built or run it yet."""

import sys

from sstpvpn.platform.helper_macos import main

sys.exit(main())
