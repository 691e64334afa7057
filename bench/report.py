"""The bench's findings as a plain-text table (the JSON output is the same data, unformatted)."""

from __future__ import annotations

import re
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
            # Addresses differ between runs: one label per line however they end.
            label = "connected: <address>" if line.startswith("connected:") else re.sub(r"\b\d+\.\d+\.\d+\.\d+\b", "<address>", line)
            by_line.setdefault(label, []).append(seconds)
    return list(by_line.items())


# The SSTP clients measured through SoftEther, in report order, with their short names.
CLIENTS = {"tunnel": "sstp-vpn", "before": "before", "minimal": "minimal"}


def _runs_median(path: dict, direction: str) -> float | None:
    return median([r["bits_per_second"] for r in path[direction]["runs"]])


def _client_cpu(path: dict, direction: str) -> tuple[float | None, float | None]:
    """Median % of one core of the path's client, and its cores per Gbit/s carried."""
    used = [r for r in path[direction]["runs"] if "client" in r["cpu"] and r["bits_per_second"] > 0]
    return median([r["cpu"]["client"] for r in used]), median([r["cpu"]["client"] / 100 / (r["bits_per_second"] / 1e9) for r in used])


def _throughput_lines(paths: dict) -> list[str]:
    lines = []
    for path in paths.values():
        cells = [_mbit([r["bits_per_second"] for r in path[d]["runs"]]) for d in DIRECTIONS]
        lines.append(f"{path['label']:<44}{cells[0]:>24}{cells[1]:>24}")
    clients = [key for key in CLIENTS if key in paths]
    pairs = [(key, base) for key in clients for base in ("minimal", "relay") if base in paths and base != key]
    if "tunnel" in paths and "before" in paths:
        pairs.append(("tunnel", "before"))
    if "tunnel" in paths and "veth" in paths:
        pairs.append(("tunnel", "veth"))
    for key, base in pairs:
        ratios = [_ratio(_runs_median(paths[key], d), _runs_median(paths[base], d)) for d in DIRECTIONS]
        name = f"ratio {CLIENTS[key]} / {CLIENTS.get(base, base)}"
        lines.append(f"{name:<44}{ratios[0]:>24}{ratios[1]:>24}")
    return lines


def _summary_lines(results: dict) -> list[str]:
    """The issue's table: each client through SoftEther, side by side, with the ratios."""
    paths, connect = results["paths"], results.get("connect", {}).get("clients", {})
    clients = [key for key in CLIENTS if key in paths or key in connect]
    if not clients:
        return []
    pairs = [(a, b) for a, b in (("tunnel", "minimal"), ("tunnel", "before"), ("before", "minimal")) if a in clients and b in clients]
    head = f"{'median':<40}" + "".join(f"{CLIENTS[key]:>12}" for key in clients) + "".join(f"{CLIENTS[a] + '/' + CLIENTS[b]:>18}" for a, b in pairs)
    rows: list[tuple[str, dict[str, float | None], str]] = [
        ("start -> tunnel up (s)", {k: median(connect[k]["up_seconds"]) if k in connect else None for k in clients}, "{:.3f}")
    ]
    for direction, name in (("upload", "up"), ("download", "down")):
        rows.append((f"TCP through SoftEther, {name} (Mbit/s)", {k: _mbit_or_none(paths.get(k), direction) for k in clients}, "{:.0f}"))
    for direction, name in (("upload", "up"), ("download", "down")):
        rows.append(
            (f"client CPU, {name} (% of a core)", {k: _client_cpu(paths[k], direction)[0] if k in paths else None for k in clients}, "{:.0f}")
        )
        rows.append(
            (f"client CPU per Gbit/s, {name} (cores)", {k: _client_cpu(paths[k], direction)[1] if k in paths else None for k in clients}, "{:.2f}")
        )
    lines = ["", "Summary, through the same SoftEther", head]
    for title, values, form in rows:
        cells = "".join(f"{form.format(values[k]) if values[k] is not None else '-':>12}" for k in clients)
        ratios = "".join(f"{_ratio(values[a], values[b]).strip():>18}" for a, b in pairs)
        lines.append(f"{title:<40}{cells}{ratios}")
    return lines


def _mbit_or_none(path: dict | None, direction: str) -> float | None:
    value = _runs_median(path, direction) if path is not None else None
    return value / 1e6 if value is not None else None


def _client_cpu_lines(paths: dict) -> list[str]:
    clients = [key for key in CLIENTS if key in paths]
    if not clients:
        return []
    lines = ["", "Client CPU through SoftEther: median % of one core, (cores per Gbit/s carried)"]
    lines.append(f"{'client':<44}{'upload':>24}{'download':>24}")
    per_gbit: dict[str, list[float | None]] = {}
    for key in clients:
        cells = []
        for direction in DIRECTIONS:
            percent, cost = _client_cpu(paths[key], direction)
            per_gbit.setdefault(key, []).append(cost)
            cells.append(f"{percent:.0f} % ({cost:.2f})" if percent is not None and cost is not None else "-")
        lines.append(f"{CLIENTS[key]:<44}{cells[0]:>24}{cells[1]:>24}")
    for key, base in [(key, "minimal") for key in clients if key != "minimal"] + ([("tunnel", "before")] if "before" in clients else []):
        if base in per_gbit:
            ratios = [_ratio(a, b) for a, b in zip(per_gbit[key], per_gbit[base], strict=True)]
            name = f"ratio {CLIENTS[key]} / {CLIENTS[base]} (CPU per Gbit/s)"
            lines.append(f"{name:<44}{ratios[0]:>24}{ratios[1]:>24}")
    return lines


def _connect_lines(connect: dict) -> list[str]:
    clients = connect.get("clients", {})
    lines = ["", "Connect time: client start -> tunnel up (sstp-vpn: its `connected:` line; minimal: `tunnel-up`)"]
    minimal = median(clients["minimal"]["up_seconds"]) if "minimal" in clients else None
    for key, entry in clients.items():
        ratio = f", {median(entry['up_seconds']) / minimal:.2f} x minimal" if minimal and entry["up_seconds"] else ""
        lines.append(f"  {CLIENTS.get(key, key):<10} {_seconds(entry['up_seconds'])}{ratio}")
    startup = connect["startup"]
    lines.append("  sstp-vpn start-up alone:")
    lines.append(f"    interpreter only (python -c pass):  {_seconds(startup['interpreter'])}")
    lines.append(f"    `sstp-vpn --version`:               {_seconds(startup['version'])}")
    lines.append(f"    start-up + imports of connect path: {_seconds(startup['connect_imports'])}")
    if connect.get("first_line_seconds"):
        lines.append(f"    start -> its `Connecting to` line:  {_seconds(connect['first_line_seconds'])}")
    if connect.get("estimated_tcp_to_connected") is not None:
        lines.append(
            f"    => TCP connect -> connected, about: {connect['estimated_tcp_to_connected']:.3f} s (connected minus the `Connecting to` line)"
        )
    for key, entry in clients.items():
        lines.append(f"  {CLIENTS.get(key, key)}: SIGINT/SIGTERM -> exit 0: {_seconds(entry['disconnect_seconds'])}")
    for key, entry in clients.items():
        if key == "minimal":
            lines.append("  minimal client phases, median seconds since its start (bench clock; its own clock from /proc/self/stat):")
            own = entry.get("own_phase_seconds", {})
            by_phase: dict[str, list[float]] = {}
            for timeline in entry["timelines"]:
                for seconds, line in timeline:
                    by_phase.setdefault(line.partition(" ")[2], []).append(seconds)
            for name, values in by_phase.items():
                lines.append(f"    {median(values):6.3f} s  ({median(own.get(name, [])) or 0:6.3f} s)  {name}")
        else:
            lines.append(f"  {CLIENTS.get(key, key)} progress lines, median seconds since the client's start:")
            for label, values in _progress_medians(entry["timelines"]):
                lines.append(f"    {median(values):6.3f} s  {label}")
    return lines


def format_report(results: dict) -> str:
    machine, settings = results["machine"], results["settings"]
    lines = [
        f"SSTP VPN throughput bench: {machine['nproc']} CPUs ({machine['cpu_model']}), kernel {machine['kernel']}",
        f"  Python {machine['python']}, {machine['openssl']}, {machine['iperf3']}; load average at start {machine['loadavg']}",
        f"  iperf3: {settings['runs']} runs x {settings['seconds']:g} s per direction and path, interleaved; median (min-max) in Mbit/s",
    ]
    if settings.get("before"):
        lines.append(f"  before: the CLI with PYTHONPATH={settings['before']}")
    lines += _summary_lines(results)
    lines += ["", f"{'path':<44}{'upload':>24}{'download':>24}"]
    paths = results["paths"]
    lines += _throughput_lines(paths)
    info = results.get("tunnel_info") or {}
    for key, client in info.get("clients", {}).items():
        lines.append(f"  {CLIENTS.get(key, key)}: MTU {client.get('mtu')}, client address {client.get('address')}")
    if results.get("relay_tls"):
        lines.append(f"  relay TLS: {results['relay_tls']}")
    lines += _client_cpu_lines(paths)

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
                if percent is not None and per_gbit is not None:
                    parts.append(f"{label} {percent:.0f} % ({per_gbit:.2f} core/Gbit/s)")
            parts.append(f"machine {median([r['machine_busy'] for r in runs]):.0f} %")
            lines.append(f"  {path['label']:<42} {direction:<9} " + ", ".join(parts))

    if results.get("connect"):
        lines += _connect_lines(results["connect"])

    for title, summary in results.get("profiles", {}).items():
        lines += ["", profile_summary.format_summary(title, summary)]
    for title, summary in results.get("perf_profiles", {}).items():
        lines += ["", perf_profile.format_summary(title, summary)]
    if results.get("errors"):
        lines += ["", "ERRORS:"] + [f"  {error}" for error in results["errors"]]
    return "\n".join(lines)
