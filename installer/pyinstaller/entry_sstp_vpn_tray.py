"""The bundled `sstp-vpn-tray` app: PyInstaller runs this file as __main__."""

import sys

from sstpvpn.gui.app import main

sys.exit(main())
