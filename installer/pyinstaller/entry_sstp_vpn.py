"""The bundled `sstp-vpn` command: PyInstaller runs this file as __main__."""

import multiprocessing
import sys

from sstpvpn.client.cli import main

multiprocessing.freeze_support()  # the PAC evaluator's child process (client/pac.py) starts here and ends in it
sys.exit(main())
