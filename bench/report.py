"""The bench's findings as a plain-text table (the JSON output is the same data, unformatted)."""

from __future__ import annotations

import statistics

from bench import perf_profile, profile_summary

DIRECTIONS = ("upload", "download")


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _mbit(values: list[float]) -> str:
    if not values:
        return "-"
    low, high = min(values) / 1e6, max(values) / 1e6
    return f"{median(values) / 1e6:8.0f}  ({low:.0f}-{high:.0f})"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:8.2f}" if a and b else "       -"


def _seconds(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{median(values):.3f} s  (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"


def _progress_medians(timelines: list[list[tuple[float, str]]]) -> list[tuple[str, list[float]]]:
    """Per progress line (in the order of the first run), its times over all runs."""
    by_line: dict[str, list[float]] = {}
    for timeline in timelines:
        for seconds, line in timeline:
            label = "connected: <address>" if line.startswith("connected:") else line
            by_line.setdefault(label, []).append(seconds)
    return list(by_line.items())


def format_report(results: dict) -> str:
    machine, settings = results["machine"], results["settings"]
    lines = [
        f"SSTP VPN throughput bench: {machine['nproc']} CPUs ({machine['cpu_model']}), kernel {machine['kernel']}",
        f"  Python {machine['python']}, {machine['openssl']}, {machine['iperf3']}; load average at start {machine['loadavg']}",
        f"  iperf3: {settings['runs']} runs x {settings['seconds']:g} s per direction and path, interleaved; median (min-max) in Mbit/s",
        "",
        f"{'path':<34}{'upload':>24}{'download':>24}",
    ]
    paths = results["paths"]
    for path in paths.values():
        cells = [_mbit([r["bits_per_second"] for r in path[d]["runs"]]) for d in DIRECTIONS]
        lines.append(f"{path['label']:<34}{cells[0]:>24}{cells[1]:>24}")
    tunnel = paths.get("tunnel")
    if tunnel is not None:
        for base in ("veth", "relay"):
            if base not in paths:
                continue
            ratios = [
                _ratio(median([r["bits_per_second"] for r in tunnel[d]["runs"]]), median([r["bits_per_second"] for r in paths[base][d]["runs"]]))
                for d in DIRECTIONS
            ]
            lines.append(f"{'ratio tunnel / ' + base:<34}{ratios[0]:>24}{ratios[1]:>24}")
    if results.get("tunnel_info"):
        info = results["tunnel_info"]
        lines.append(f"  tunnel: MTU {info.get('mtu')}, client address {info.get('address')}")
    if results.get("relay_tls"):
        lines.append(f"  relay TLS: {results['relay_tls']}")

    lines += ["", "CPU during the iperf3 runs, median, % of ONE core and cores per Gbit/s carried (machine: % of all cores busy)"]
    for path in paths.values():
        for direction in DIRECTIONS:
            runs = path[direction]["runs"]
            if not runs:
                continue
            labels = sorted({label for r in runs for label in r["cpu"]})
            parts = []
            for label in labels:
                used = [r for r in runs if label in r["cpu"] and r["bits_per_second"] > 0]
                percent = median([r["cpu"][label] for r in used])
                # Cost per byte, comparable across paths: cores busy per Gbit/s carried.
                per_gbit = median([r["cpu"][label] / 100 / (r["bits_per_second"] / 1e9) for r in used])
                parts.append(f"{label} {percent:.0f} % ({per_gbit:.2f} core/Gbit/s)")
            parts.append(f"machine {median([r['machine_busy'] for r in runs]):.0f} %")
            lines.append(f"  {path['label']:<32} {direction:<9} " + ", ".join(parts))

    connect = results.get("connect")
    if connect:
        lines += ["", "Connect time (client start -> `connected:` line)"]
        lines.append(f"  connect -> connected:               {_seconds(connect['connected_seconds'])}")
        startup = connect["startup"]
        lines.append(f"  interpreter only (python -c pass):  {_seconds(startup['interpreter'])}")
        lines.append(f"  `sstp-vpn --version`:               {_seconds(startup['version'])}")
        lines.append(f"  start-up + imports of connect path: {_seconds(startup['connect_imports'])}")
        if connect.get("first_line_seconds"):
            lines.append(f"  start -> its `Connecting to` line:  {_seconds(connect['first_line_seconds'])}")
        if connect.get("estimated_tcp_to_connected") is not None:
            lines.append(
                f"  => TCP connect -> connected, about: {connect['estimated_tcp_to_connected']:.3f} s (connected minus the `Connecting to` line)"
            )
        lines.append(f"  SIGINT -> exit 0:                   {_seconds(connect['disconnect_seconds'])}")
        lines.append("  progress lines, median seconds since the client's start:")
        for label, values in _progress_medians(connect["progress_lines"]):
            lines.append(f"    {median(values):6.3f} s  {label}")

    for title, summary in results.get("profiles", {}).items():
        lines += ["", profile_summary.format_summary(title, summary)]
    for title, summary in results.get("perf_profiles", {}).items():
        lines += ["", perf_profile.format_summary(title, summary)]
    if results.get("errors"):
        lines += ["", "ERRORS:"] + [f"  {error}" for error in results["errors"]]
    return "\n".join(lines)
