from __future__ import annotations

import pytest

from tests.platform.client_network import client_network
from tests.realparts import require_program, require_root


@pytest.fixture
def client_ns():
    require_root("network namespaces and TUN devices")
    require_program("ip", "apt-get install iproute2")
    with client_network() as client:
        yield client
