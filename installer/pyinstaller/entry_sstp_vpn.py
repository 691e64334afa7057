"""The bundled `sstp-vpn` command: PyInstaller runs this file as __main__."""

import sys

from sstpvpn.client.cli import main

sys.exit(main())
