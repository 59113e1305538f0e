"""Benchmark the study over several training seeds against one seed, in one run, on one store.

``main --executor ray`` on a fresh project folder (one seed), then ``main --executor ray --seeds
0,1,2`` on the same folder: prepare and seed 0 are reused, seeds 1 and 2 run side by side. The
wall time of each, with the machine's speed before and after, and the ratio of the two runs
together to the first: the three-seed study's cost against one seed's (issue 20's target: at most
2.5x). Run on one store, the second run's wall is that of the seeds it adds; a three-seed study
from an empty store schedules seed 0 beside the other two as well, so it should take no longer
than the sum (not measured here: say so when quoting the ratio). Then the three-seed study's
paired differences (``study_effects.md``) and, with ``--figure``, a copy of its forest plot.

    .venv/bin/python benchmarks/bench_seeds.py [--seeds 0,1,2] [--profile quick] [--keep DIR]
        [--figure docs/study_effects_quick.png]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import mlflow
import ray

# isort: split
from bench_study import report, timed_main
from machine import Interference, machine_line, versions_line
from speed import speed_line


def main_run(home: Path) -> mlflow.entities.Run:
    """The newest finished ``main`` run of the store."""
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlflow.db'}")
    (run,) = mlflow.search_runs(
        search_all_experiments=True,
        filter_string="tags.step = 'main' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--keep", default="", help="folder for the project folder, kept")
    parser.add_argument("--figure", default="", help="copy the forest plot here")
    args = parser.parse_args()
    print(machine_line())
    print(versions_line(mlflow, ray))
    print(speed_line())
    home = Path(args.keep or tempfile.mkdtemp(prefix="bench-seeds-"))
    home.mkdir(parents=True, exist_ok=True)
    interference = Interference.start()
    one = timed_main(home, args.profile, "ray")
    report("ray, one seed", home, one, None)
    more = timed_main(home, args.profile, "ray", "--seeds", args.seeds)
    n = len(args.seeds.split(","))
    print(
        f"\n## ray, seeds {args.seeds} on the same store: {more / 60:.1f} min ({more:.0f} s) for "
        f"the {n - 1} seed(s) it adds\n\n{n} seeds against one: ({one:.0f} + {more:.0f}) / "
        f"{one:.0f} = {(one + more) / one:.2f}x (target <= 2.5x)"
    )
    run = main_run(home)
    print("\n" + mlflow.artifacts.load_text(f"{run.info.artifact_uri}/study_effects.md"))
    print(mlflow.artifacts.load_text(f"{run.info.artifact_uri}/study_results.md"))
    if args.figure:
        forest = mlflow.artifacts.download_artifacts(f"{run.info.artifact_uri}/study_effects.png")
        shutil.copyfile(forest, args.figure)
    print(f"{speed_line()} (after)\nproject folder: {home}\n{interference.report()}")


if __name__ == "__main__":
    main()
