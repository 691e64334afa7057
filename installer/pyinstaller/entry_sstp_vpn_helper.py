"""The bundled `sstp-vpn-helper` (Linux): PyInstaller runs this file as __main__."""

import sys

from sstpvpn.platform.helper_linux import main

sys.exit(main())
