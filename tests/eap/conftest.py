"""Fixtures for the EAP tests: the test PKI, and one FreeRADIUS and one hostapd (RADIUS-only) for
the session."""

from __future__ import annotations

import os

import pytest

from tests.eap.freeradius import SYSTEM_RADDB, start_freeradius, stop
from tests.eap.pki import make_eap_pki
from tests.realparts import missing, require_program


@pytest.fixture(scope="session")
def eap_pki(tmp_path_factory):
    return make_eap_pki(tmp_path_factory.mktemp("eap-pki"))


@pytest.fixture(scope="session")
def freeradius(eap_pki, tmp_path_factory):
    program = require_program("freeradius", "apt-get install freeradius (or installer/install-deps.sh)")
    if not os.access(SYSTEM_RADDB / "radiusd.conf", os.R_OK):  # 0640 freerad:freerad; the tests copy it
        missing(f"read access to {SYSTEM_RADDB}", "run the EAP tests as root, or join the group freerad")
    server = start_freeradius(program, tmp_path_factory.mktemp("freeradius"), eap_pki)
    yield server
    stop(server.process)


@pytest.fixture(scope="session")
def hostapd(eap_pki, tmp_path_factory):
    from tests.eap.hostapd_radius import start_hostapd

    program = require_program("hostapd", "apt-get install hostapd (or installer/install-deps.sh)")
    server = start_hostapd(program, tmp_path_factory.mktemp("hostapd"), eap_pki)
    yield server
    stop(server.process)
