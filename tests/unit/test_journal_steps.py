"""Journal steps as types: each OS's step dataclasses turn into the JSON records older versions
wrote ({"op": ..., fields}) and back; an unknown or damaged record is a sentence."""

from __future__ import annotations

import pytest

from sstpvpn.platform import netconfig_macos, netconfig_windows
from sstpvpn.platform.errors import PlatformError

# Records exactly as the previous version (before typed steps) wrote them.
OLD_WINDOWS = [
    {"op": "interface", "luid": 7, "family": 2, "mtu": 65535, "automatic_metric": 1, "metric": 25},
    {"op": "address", "luid": 7, "address": "198.18.30.10", "prefixlen": 32},
    {"op": "server_route", "luid": 9, "dst": "203.0.113.5", "prefixlen": 32, "next_hop": "192.0.2.1"},
    {"op": "tunnel_route", "luid": 7, "dst": "0.0.0.0", "prefixlen": 1, "next_hop": "0.0.0.0"},
    {"op": "dns", "method": "api", "luid": 7, "guid": "00" * 16},
]
OLD_MACOS = [
    {"op": "address", "ifname": "utun7", "local": "198.18.30.10"},
    {"op": "address6", "ifname": "utun7", "local": "fe80::1/64"},
    {"op": "server_route", "family": "-inet", "dst": "203.0.113.5/32", "gateway": "192.0.2.1"},
    {"op": "tunnel_route", "ifname": "utun7", "family": "-inet", "dst": "0.0.0.0/1"},
    {"op": "dns", "key": "Setup:/Network/Service/X/DNS", "existed": True, "servers": ["192.0.2.53"], "ours": ["198.18.30.53"]},
]


@pytest.mark.parametrize("catalog, records", [(netconfig_windows.CATALOG, OLD_WINDOWS), (netconfig_macos.CATALOG, OLD_MACOS)])
def test_old_records_read_as_types_and_write_back_the_same(catalog, records):
    steps = [catalog.from_json(record) for record in records]
    assert [type(step).OP for step in steps] == [record["op"] for record in records]
    assert [catalog.to_json(step) for step in steps] == records


def test_the_fields_are_typed_attributes():
    step = netconfig_macos.CATALOG.from_json(OLD_MACOS[-1])
    assert isinstance(step, netconfig_macos.DnsChanged)
    assert step.servers == ("192.0.2.53",) and step.existed is True


def test_an_optional_field_an_older_record_lacks_takes_its_default():
    step = netconfig_windows.CATALOG.from_json({"op": "dns", "method": "netsh", "luid": 7, "index": 17})
    assert step == netconfig_windows.DnsSet("netsh", 7, guid=None, index=17)


def test_an_unknown_op_is_a_sentence_and_a_missing_field_a_key_error():
    with pytest.raises(PlatformError, match=r"a step this version does not know \('firewall'\)"):
        netconfig_windows.CATALOG.from_json({"op": "firewall"})
    with pytest.raises(KeyError, match="luid"):
        netconfig_windows.CATALOG.from_json({"op": "address", "address": "198.18.30.10", "prefixlen": 32})
