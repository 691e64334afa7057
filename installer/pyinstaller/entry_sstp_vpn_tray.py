"""The bundled `sstp-vpn-tray` app: PyInstaller runs this file as __main__."""

import multiprocessing
import sys

from sstpvpn.gui.app import main

multiprocessing.freeze_support()  # the PAC evaluator's child process (client/pac.py) starts here and ends in it
sys.exit(main())
