"""A short coverage-guided fuzzing run of each target (tests/fuzz/targets.py), so that CI fuzzes
on every run: about 30 s in all. The long run is the same command with a larger
-max_total_time (see tests/fuzz/run_atheris.py)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz import targets
from tests.realparts import missing

ROOT = Path(__file__).resolve().parents[2]
SECONDS = {"sstp": 6, "ppp": 6, "engine": 12}


@pytest.mark.parametrize("target", sorted(SECONDS))
def test_short_fuzzing_run_finds_no_crash(target: str, tmp_path: Path) -> None:
    if importlib.util.find_spec("atheris") is None:
        missing("the Python package atheris", "pip install atheris")
    artifacts = tmp_path / "artifacts"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.run_atheris",
            target,
            "--corpus",
            str(tmp_path / "corpus"),
            "--artifacts",
            str(artifacts),
            f"-max_total_time={SECONDS[target]}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS[target] + 60,
    )
    crashes = sorted(p.name for p in artifacts.glob("*")) if artifacts.exists() else []
    assert run.returncode == 0 and not crashes, f"{crashes}\n{run.stderr[-4000:]}"
    executed = int(re.search(r"stat::number_of_executed_units: (\d+)", run.stderr).group(1))
    coverage = int(re.findall(r"cov: (\d+)", run.stderr)[-1])
    print(f"{target}: {executed} inputs, coverage {coverage}")
    assert executed > 300, "the fuzzer hardly ran"
    # The corpus grew past the seeds: the coverage feedback is doing something.
    assert len(list((tmp_path / "corpus").iterdir())) > len(targets.seeds(target))


def test_targets_accept_their_seeds() -> None:
    for name, target in targets.TARGETS.items():
        for seed in targets.seeds(name):
            target(seed)
