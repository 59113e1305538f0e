"""Benchmark the whole study: ``main`` on a fresh store, then a rerun that reuses every step.

The issue's budget: the quick profile finishes the study on the phantom cohort in at most
15 minutes on a 2-core machine (goal: 10). This runs ``python -m entrypoints.main`` exactly as
a user would (a fresh project folder, no MLFLOW_* variables), then again, and prints the wall
time of both and where the first run's time went, read back from its MLflow store.

    .venv/bin/python benchmarks/bench_study.py [--profile quick] [--keep DIR]
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow

# isort: split
from machine import Interference, machine_line, versions_line

REPO = Path(__file__).resolve().parents[1]
# Step runs that do work themselves (train_cls and main only nest them), in the order shown.
LEAF_STEPS = ("prepare", "train_ddpm", "sample", "train_cls_fold", "score_gen", "cross_eval")


def timed_main(home: Path, profile: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(GLIOMA_HOME=str(home), TQDM_DISABLE="1")
    command = [sys.executable, "-m", "entrypoints.main", "--profile", profile]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def step_seconds(home: Path) -> dict[str, tuple[int, float]]:
    """Per step: how many runs, and their summed wall seconds."""
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    totals: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])
    for run in mlflow.search_runs(search_all_experiments=True, output_format="list"):
        step = run.data.tags.get("step", "")
        totals[step][0] += 1
        totals[step][1] += (run.info.end_time - run.info.start_time) / 1000
    return {step: tuple(value) for step, value in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--keep", default="", help="project folder to use and keep")
    args = parser.parse_args()
    print(machine_line())
    print(versions_line(mlflow))
    home = Path(args.keep or tempfile.mkdtemp(prefix="bench-study-"))
    home.mkdir(parents=True, exist_ok=True)
    interference = Interference.start()
    first = timed_main(home, args.profile)
    again = timed_main(home, args.profile)
    print(f"\nstudy ({args.profile}), fresh store: {first / 60:.1f} min ({first:.0f} s)")
    print(f"rerun, every step reused: {again:.1f} s")
    steps = step_seconds(home)
    print("\n| step | runs | wall s | share |\n| --- | --- | --- | --- |")
    accounted = 0.0
    for step in LEAF_STEPS:
        count, seconds = steps.get(step, (0, 0.0))
        accounted += seconds
        print(f"| {step} | {count} | {seconds:.0f} | {seconds / first:.0%} |")
    rest = first - accounted
    other = "other (phantom generation, ensembles, start-up, logging)"
    print(f"| {other} | | {rest:.0f} | {rest / first:.0%} |")
    print(f"\nproject folder: {home}\n{interference.report()}")


if __name__ == "__main__":
    main()
