"""How long ``glioma --help`` and ``glioma <step> --help`` take, as a user's shell runs them.

Each command is a fresh process (the console script of this checkout's environment), run
``--repeats`` times; the median and the slowest are printed beside the target (1.5 s) and the
machine-speed line of the same run. The steps import the pipeline (torch, MLflow) only after
their arguments parsed, so ``--help`` and a bad flag answer without it.

    .venv/bin/python benchmarks/bench_cli_help.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

# isort: split
from machine import machine_line
from speed import speed_line

from glioma.config.steps import entry_points

TARGET_S = 1.5


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    glioma = str(Path(sys.executable).with_name("glioma"))
    print(machine_line())
    print(speed_line())
    print(f"\n| command | median s | slowest s | within {TARGET_S} s |\n| --- | --- | --- | --- |")
    for words in [["--help"], *([step, "--help"] for step in entry_points())]:
        times = [seconds([glioma, *words]) for _ in range(args.repeats)]
        slowest = max(times)
        print(
            f"| glioma {' '.join(words)} | {statistics.median(times):.2f} | {slowest:.2f} | "
            f"{'yes' if slowest <= TARGET_S else 'NO'} |"
        )
    print(f"\n{speed_line()} (after)")


if __name__ == "__main__":
    main()
