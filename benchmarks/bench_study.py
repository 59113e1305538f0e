"""Benchmark the whole study: ``main`` serially and on a local Ray, side by side in one run.

For each executor: ``python -m entrypoints main --executor X`` on a fresh project folder, as a
user runs it (no MLFLOW_* variables), then the rerun that reuses every step; the wall time of
both, where the first run's time went (read back from its store), and what the study left on
disk by kind of artifact; then, per step, the time of a run serially and on Ray, which says
where the ratio comes from. The machine's speed is measured before and after (the figures scale
with it), and how much CPU other processes took meanwhile (Ray's workers are not this script's
children, so that line counts them as other processes).

Targets (issue 10, on the machine that measured 12.7 min serial): ray >= 1.25x faster than
serial, and at most 10 minutes; a quick study leaves at most 2 GB in the project folder.

    .venv/bin/python benchmarks/bench_study.py [--executors serial,ray] [--profile quick]
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
import ray

# isort: split
from machine import Interference, machine_line, versions_line
from speed import speed_line

REPO = Path(__file__).resolve().parents[1]
# Step runs that do the work (main only groups them), in the order shown.
STEPS = (
    "prepare",
    "train_ddpm",
    "sample",
    "train_cls_fold",
    "train_cls",
    "score_gen",
    "cross_eval",
)


def timed_main(home: Path, profile: str, executor: str, *extra: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(GLIOMA_HOME=str(home), TQDM_DISABLE="1")
    command = [sys.executable, "-m", "entrypoints", "main", "--profile", profile]
    command += ["--executor", executor, *extra]
    log = home / f"main-{executor}.log"
    start = time.perf_counter()
    with open(log, "a") as out:
        subprocess.run(command, cwd=REPO, env=env, check=True, stdout=out, stderr=out)
    return time.perf_counter() - start


def step_seconds(home: Path) -> dict[str, tuple[int, float]]:
    """Per step: how many runs, and their summed wall seconds (parallel ones overlap)."""
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    totals: dict[str, list] = collections.defaultdict(lambda: [0, 0.0])
    for run in mlflow.search_runs(search_all_experiments=True, output_format="list"):
        if run.info.end_time:
            step = run.data.tags.get("step", "")
            totals[step][0] += 1
            totals[step][1] += (run.info.end_time - run.info.start_time) / 1000
    return {step: tuple(value) for step, value in totals.items()}


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def disk_by_kind(home: Path) -> dict[str, int]:
    """Bytes the study left in the project folder, by kind of artifact."""
    kinds: dict[str, int] = collections.Counter()
    for experiment in (home / "mlruns").iterdir() if (home / "mlruns").exists() else []:
        for run in experiment.iterdir():
            if run.name == "models":
                kinds["DDPM models (best.pt + code)"] += size(run)
                continue
            for artifact in (run / "artifacts").iterdir() if (run / "artifacts").exists() else []:
                kind = {
                    "ensemble": "ensembles (each holds its five fold models)",
                    "fold_model": "fold models not yet in an ensemble",
                    "dataset": "datasets (prepare and sample runs)",
                }.get(artifact.name, "figures, tables, other artifacts")
                kinds[kind] += size(artifact) if artifact.is_dir() else artifact.stat().st_size
    database = home / "mlflow.db"
    kinds["mlflow.db"] = database.stat().st_size if database.exists() else 0
    for folder in ("phantom", "prepared", "cache", "synthetic", "checkpoints"):
        kinds[f"data/{folder}"] = size(home / "data" / folder)
    return kinds


def report(executor: str, home: Path, first: float, again: float | None) -> None:
    rerun = "" if again is None else f"; rerun, all reused: {again:.1f} s"
    print(f"\n## {executor}: {first / 60:.1f} min ({first:.0f} s){rerun}")
    steps = step_seconds(home)
    print("\n| step | runs | run-seconds | share of wall |\n| --- | --- | --- | --- |")
    for step in STEPS:
        count, seconds = steps.get(step, (0, 0.0))
        print(f"| {step} | {count} | {seconds:.0f} | {seconds / first:.0%} |")
    kinds = disk_by_kind(home)
    print("\n| on disk | MB |\n| --- | --- |")
    for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {n / 1e6:.0f} |")
    print(f"| **total** | **{sum(kinds.values()) / 1e6:.0f}** |")


def step_comparison(root: Path, slots: int) -> None:
    """Per step: seconds per run serially (all threads) and on Ray (one thread, ``slots`` at a
    time), and what Ray's throughput is against serial's: where the ratio comes from."""
    serial, on_ray = step_seconds(root / "serial"), step_seconds(root / "ray")
    print(f"\n| step | serial s/run | ray s/run | ray throughput ({slots} slots) |")
    print("| --- | --- | --- | --- |")
    for step in STEPS:
        (n, a), (m, b) = serial.get(step, (0, 0.0)), on_ray.get(step, (0, 0.0))
        if n and m and b:
            print(f"| {step} | {a / n:.2f} | {b / m:.2f} | {slots * (a / n) / (b / m):.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executors", default="serial,ray")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--keep", default="", help="folder for the project folders, kept")
    parser.add_argument(
        "--report", default="", help="only report the stores of an earlier run in this folder"
    )
    args = parser.parse_args()
    if args.report:
        step_comparison(Path(args.report), os.cpu_count() or 1)
        return
    print(machine_line())
    print(versions_line(mlflow, ray))
    print(speed_line())
    root = Path(args.keep or tempfile.mkdtemp(prefix="bench-study-"))
    interference = Interference.start()
    walls = {}
    for executor in args.executors.split(","):
        home = root / executor
        home.mkdir(parents=True, exist_ok=True)
        first = timed_main(home, args.profile, executor)
        again = timed_main(home, args.profile, executor)
        walls[executor] = first
        report(executor, home, first, again)
    if {"serial", "ray"} <= set(walls):
        ratio = walls["serial"] / walls["ray"]
        print(f"\nray vs serial: {ratio:.2f}x faster (target >= 1.25x)")
        step_comparison(root, os.cpu_count() or 1)
    print(f"\n{speed_line()} (after)\nproject folders: {root}\n{interference.report()}")


if __name__ == "__main__":
    main()
