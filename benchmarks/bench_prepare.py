"""Benchmark ``prepare`` against nibabel alone reading the same NIfTI files.

The issue's target: ``prepare`` should cost at most 1.5x the time that nibabel alone needs to
read and decompress the same files, with ``prepare`` using its parallel workers. Reading and
decompressing is the irreducible cost of the step, so it is the yardstick; everything above it
(reorientation, checks, lesion choice, normalisation, resampling, pool start-up, writing the
dataset) is overhead that the ratio makes visible.

This is a benchmark, not a timed test: it prints figures and whether the target is met, and
always exits 0 unless something fails.

    .venv/bin/python benchmarks/bench_prepare.py [--scale S] [--workers W] [--patch-size P]
        [--fov-mm F] [--repeats R] [--root DIR]
"""

from __future__ import annotations

import os

# tqdm reads TQDM_* variables when it is imported, so this must precede the glioma imports.
os.environ.setdefault("TQDM_DISABLE", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

from glioma.data.patches import PatchSpec  # noqa: E402
from glioma.data.phantom.cohort import generate_cohort  # noqa: E402
from glioma.data.prepare import prepare_site  # noqa: E402
from glioma.data.records import MODALITIES  # noqa: E402
from glioma.data.sources import discover  # noqa: E402
from glioma.parallel import process_pool  # noqa: E402

# isort: split
# This script's folder, on sys.path when it runs as a script from any working directory.
from machine import Interference, best_of, machine_line, versions_line  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO / "data" / "bench" / "phantom"
TARGET_RATIO = 1.5
KEYS = (*MODALITIES, "seg")


@dataclass(frozen=True)
class SiteResult:
    site: str
    subjects: int
    megabytes: float
    nib_serial_s: float
    nib_parallel_s: float
    prepare_s: float

    @property
    def subjects_per_s(self) -> float:
        return self.subjects / self.prepare_s

    @property
    def ratio_serial(self) -> float:
        return self.prepare_s / self.nib_serial_s

    @property
    def ratio_parallel(self) -> float:
        return self.prepare_s / self.nib_parallel_s


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.25, help="phantom cohort scale")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--patch-size", type=int, default=32, help="patch side in pixels")
    parser.add_argument("--fov-mm", type=float, default=64.0, help="patch field of view, mm")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best is kept")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="phantom cache folder")
    return parser.parse_args(argv)


def machine_info(workers: int) -> str:
    """What the figures depend on, so that runs on different machines can be told apart."""
    return f"{machine_line()}\n{versions_line(np, nib)}; workers={workers}"


def subject_files(source: Path, site: str) -> list[tuple[Path, ...]]:
    """The five files of every subject that ``prepare`` would process, found the same way."""
    return [tuple(r.paths[k] for k in KEYS) for r in discover(source, site).records]


def megabytes(subjects: list[tuple[Path, ...]]) -> float:
    return sum(p.stat().st_size for files in subjects for p in files) / 1e6


def read_subject(files: tuple[Path, ...]) -> int:
    """Read and decompress one subject as a bare reader would; return the voxel count.

    Only a count travels back from a worker, as only a small patch does in ``prepare``, so
    neither side pays for sending volumes between processes.
    """
    return sum(nib.load(str(p)).get_fdata(dtype=np.float32).size for p in files)


def read_serial(subjects: list[tuple[Path, ...]]) -> None:
    """The honest baseline: one reader in one process decompressing every file."""
    for files in subjects:
        read_subject(files)


def read_parallel(subjects: list[tuple[Path, ...]], workers: int) -> None:
    """The same reading spread over ``prepare``'s kind of pool, start-up included as there."""
    with process_pool(workers) as pool:
        list(pool.map(read_subject, subjects, chunksize=1))


def run_prepare(source: Path, site: str, spec: PatchSpec, workers: int) -> None:
    """One full ``prepare_site`` into a throw-away folder (writing the dataset included)."""
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as out_dir:
        prepare_site(source, site, out_dir, spec, seed=0, workers=workers)


def bench_site(source: Path, site: str, spec: PatchSpec, workers: int, repeats: int) -> SiteResult:
    subjects = subject_files(source, site)
    read_serial(subjects)  # untimed: warm the page cache so no timing includes disk reads
    return SiteResult(
        site=site,
        subjects=len(subjects),
        megabytes=megabytes(subjects),
        nib_serial_s=best_of(repeats, lambda: read_serial(subjects)),
        nib_parallel_s=best_of(repeats, lambda: read_parallel(subjects, workers)),
        prepare_s=best_of(repeats, lambda: run_prepare(source, site, spec, workers)),
    )


HEADER = (
    f"{'site':<10} {'subj':>5} {'MB':>7} {'nib ser s':>10} {'nib par s':>10} {'prepare s':>10}"
    f" {'subj/s':>8} {'prep/ser':>9} {'prep/par':>9}"
)


def format_row(r: SiteResult) -> str:
    return (
        f"{r.site:<10} {r.subjects:>5d} {r.megabytes:>7.1f} {r.nib_serial_s:>10.3f}"
        f" {r.nib_parallel_s:>10.3f} {r.prepare_s:>10.3f} {r.subjects_per_s:>8.1f}"
        f" {r.ratio_serial:>9.2f} {r.ratio_parallel:>9.2f}"
    )


def total(results: list[SiteResult]) -> SiteResult:
    return SiteResult(
        site="all",
        subjects=sum(r.subjects for r in results),
        megabytes=sum(r.megabytes for r in results),
        nib_serial_s=sum(r.nib_serial_s for r in results),
        nib_parallel_s=sum(r.nib_parallel_s for r in results),
        prepare_s=sum(r.prepare_s for r in results),
    )


def verdict(results: list[SiteResult]) -> str:
    worst = max(r.ratio_serial for r in results)
    met = "MET" if worst <= TARGET_RATIO else "NOT MET"
    return (
        f"target prepare <= {TARGET_RATIO}x nibabel serial reading time: {met}"
        f" (worst site ratio {worst:.2f})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    spec = PatchSpec(size=args.patch_size, fov_mm=args.fov_mm)
    print(machine_info(args.workers))
    start = time.perf_counter()
    sources = generate_cohort(args.root, seed=0, scale=args.scale, workers=args.workers)
    print(f"cohort: {args.root} (scale {args.scale}, ready in {time.perf_counter() - start:.1f} s)")
    print(f"patch {spec.size} px, fov {spec.fov_mm:g} mm; best of {args.repeats} runs\n")
    interference = Interference.start()
    results = [
        bench_site(source, site, spec, args.workers, args.repeats)
        for site, source in sources.items()
    ]
    print(HEADER)
    for row in [*results, total(results)]:
        print(format_row(row))
    print("\n" + interference.report())
    print(verdict(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
