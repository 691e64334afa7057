"""Reading an interface's byte counters from a recorded /sys/class/net, and the systems without a
reader (the real kernel's counters: tests/platform/test_interface_facts_linux.py)."""

from __future__ import annotations

from sstpvpn.platform import applied_routes, traffic_counters
from sstpvpn.platform.traffic_counters import TrafficCounters, read_linux


def sysfs_with(tmp_path, ifname: str, rx: str, tx: str):
    statistics = tmp_path / ifname / "statistics"
    statistics.mkdir(parents=True)
    (statistics / "rx_bytes").write_text(rx)
    (statistics / "tx_bytes").write_text(tx)
    return tmp_path


def test_the_counters_of_an_interface(tmp_path):
    sysfs = sysfs_with(tmp_path, "sstp0", "123456\n", "789\n")
    assert read_linux("sstp0", sysfs) == TrafficCounters(received=123456, sent=789)


def test_a_gone_or_unreadable_interface_has_none(tmp_path):
    sysfs = sysfs_with(tmp_path, "sstp0", "garbled\n", "1\n")
    assert read_linux("sstp0", sysfs) is None
    assert read_linux("sstp1", sysfs) is None  # disconnected a moment ago
    assert read_linux(None, sysfs) is None and read_linux("", sysfs) is None


def test_systems_without_a_reader_say_so_with_none():
    assert traffic_counters.not_counted("utun4") is None
    assert applied_routes.not_shown("utun4") is None
    assert applied_routes.routes_through_linux(None) is None
