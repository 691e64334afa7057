"""Coverage-guided fuzzing of the SSTP and PPP decoders and the engine with atheris (libFuzzer).

    cd /work/main
    python -m tests.fuzz.run_atheris engine -max_total_time=600          # a long run
    python -m tests.fuzz.run_atheris ppp --corpus /tmp/ppp -runs=100000
    python -m tests.fuzz.run_atheris engine crash-0123abcd                # replay one input

Targets (tests/fuzz/targets.py): sstp, ppp, engine. The code under `sstpvpn` is instrumented for
coverage; the corpus folder (a temporary one unless --corpus is given) starts with the target's
seeds and keeps what libFuzzer found interesting. Any other argument goes to libFuzzer
(-max_total_time, -runs, -max_len, -jobs, ...). A crash writes `crash-<sha1>` (the input) to
--artifacts and exits non-zero; libFuzzer's last lines give the number of inputs executed
("stat::number_of_executed_units").
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["sstpvpn"]):
    from tests.fuzz import targets


def write_seeds(target: str, corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in targets.seeds(target):
        (corpus / ("seed-" + hashlib.sha1(seed).hexdigest())).write_bytes(seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=sorted(targets.TARGETS))
    parser.add_argument("--corpus", type=Path, help="corpus folder, kept and grown (default: a temporary one)")
    parser.add_argument("--artifacts", type=Path, default=Path("."), help="where crash inputs are written")
    args, libfuzzer_args = parser.parse_known_args()

    replaying = any(Path(a).is_file() for a in libfuzzer_args if not a.startswith("-"))
    corpus = args.corpus or Path(tempfile.mkdtemp(prefix=f"sstp-fuzz-{args.target}-"))
    if not replaying:
        write_seeds(args.target, corpus)
        libfuzzer_args.append(str(corpus))
    if args.target == "engine" and not any(a.startswith("-len_control=") for a in libfuzzer_args):
        # The seeds are whole recorded packet streams: mutate them at full length from the start.
        libfuzzer_args.append("-len_control=0")
    args.artifacts.mkdir(parents=True, exist_ok=True)
    argv = [sys.argv[0], f"-artifact_prefix={args.artifacts}{os.sep}", "-print_final_stats=1", *libfuzzer_args]
    atheris.Setup(argv, targets.TARGETS[args.target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
