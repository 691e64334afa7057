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


def test_windows_and_macos_get_the_none_answers_through_current():
    """Checked in a fresh interpreter that pretends to be that system before current.py is imported."""
    import subprocess
    import sys

    for name in ("win32", "darwin"):
        code = (
            f"import sys; sys.platform = {name!r}; from sstpvpn.platform import current; "
            "print(current.read_traffic_counters.__name__, current.routes_through.__name__, "
            "current.read_traffic_counters('utun4'), current.routes_through('utun4'))"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
        assert result.stdout.split() == ["not_counted", "not_shown", "None", "None"]
