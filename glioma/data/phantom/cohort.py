"""Generate the two-site phantom cohort on disk, in the layouts that ``prepare`` reads.

Deterministic by seed: subject ``i`` of a site draws from its own stream
``SeedSequence([seed, site_index, i])``, so the cohort is the same with any number of workers.
A finished cohort leaves ``phantom.json``; asking again for the same settings reuses it.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock
from tqdm.auto import tqdm

from glioma.data.phantom.anatomy import sample_head, sample_tumour, tissue_labels, tumour_labels
from glioma.data.phantom.contrasts import MODALITIES, render_contrasts
from glioma.data.phantom.sites import SITES, SiteSpec, write_subject
from glioma.fileio import write_json, write_text
from glioma.parallel import process_pool

PHANTOM_VERSION = 1
MANIFEST_NAME = "manifest.csv"


@dataclass(frozen=True)
class SubjectPlan:
    site: str
    subject_id: str
    grade: str
    seed: tuple[int, int, int]


def cohort_sizes(spec: SiteSpec, scale: float) -> dict[str, int]:
    """The study's class counts times ``scale``; 8 or more per grade (test set + 5 folds)."""
    return {grade: max(8, int(round(n * scale))) for grade, n in spec.counts.items()}


def plan_site(site: str, seed: int, scale: float) -> list[SubjectPlan]:
    spec = SITES[site]
    site_index = list(SITES).index(site)
    prefix = "A" if spec.layout == "brats" else "B"
    plans, index = [], 0
    for grade, count in cohort_sizes(spec, scale).items():
        for _ in range(count):
            subject_id = f"Phantom{prefix}_{grade}_{index:04d}"
            plans.append(SubjectPlan(site, subject_id, grade, (seed, site_index, index)))
            index += 1
    return plans


def render_subject(plan: SubjectPlan) -> tuple[np.ndarray, np.ndarray]:
    """The four contrasts (4, X, Y, Z) and BraTS labels of one planned subject, in RAS."""
    spec = SITES[plan.site]
    rng = np.random.default_rng(np.random.SeedSequence(list(plan.seed)))
    grid = spec.grid()
    head = sample_head(rng)
    tissue = tissue_labels(grid, head, rng)
    tumour = sample_tumour(rng, plan.grade, head)
    seg = tumour_labels(grid, tumour, tissue > 0, rng)
    images = render_contrasts(grid, tissue, seg, tumour, style=spec.style, rng=rng)
    return images, seg


def _generate_one(plan: SubjectPlan, root: Path) -> dict[str, str]:
    spec = SITES[plan.site]
    images, seg = render_subject(plan)
    site_root = root / plan.site
    folder = (
        site_root / plan.grade / plan.subject_id
        if spec.layout == "brats"
        else site_root / "images" / plan.subject_id
    )
    paths = write_subject(folder, plan.subject_id, spec=spec, images=images, seg=seg)
    row = {"subject_id": plan.subject_id, "grade": plan.grade}
    row.update({k: str(p.relative_to(site_root)) for k, p in paths.items()})
    return row


def _write_manifest(site_root: Path, rows: list[dict[str, str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["subject_id", "grade", *MODALITIES, "seg"])
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: r["subject_id"]))
    path = site_root / MANIFEST_NAME
    write_text(path, buffer.getvalue())
    return path


def site_input(root: Path, site: str) -> Path:
    """What ``prepare`` reads for a phantom site: the BraTS root or the manifest CSV."""
    return root / site if SITES[site].layout == "brats" else root / site / MANIFEST_NAME


def generate_cohort(
    root: str | Path, *, seed: int = 0, scale: float = 0.25, workers: int = 2
) -> dict[str, Path]:
    """Write both phantom sites under ``root``; return each site's ``prepare`` input.

    Reuses an earlier cohort with the same seed, scale and generator version. A file lock
    makes steps that prepare both sites at once (parallel workers) generate it once.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(root / ".phantom.lock"):
        return _generate_locked(
            root, {"version": PHANTOM_VERSION, "seed": seed, "scale": scale}, workers
        )


def _generate_locked(root: Path, settings: dict, workers: int) -> dict[str, Path]:
    marker = root / "phantom.json"
    if marker.exists() and json.loads(marker.read_text()) == settings:
        return {site: site_input(root, site) for site in SITES}
    seed, scale = settings["seed"], settings["scale"]
    for site in SITES:
        shutil.rmtree(root / site, ignore_errors=True)
    marker.unlink(missing_ok=True)
    plans = [plan for site in SITES for plan in plan_site(site, seed, scale)]
    rows: dict[str, list[dict[str, str]]] = {site: [] for site in SITES}
    with process_pool(workers) as pool:
        futures = [pool.submit(_generate_one, plan, root) for plan in plans]
        for plan, future in tqdm(
            zip(plans, futures), total=len(plans), desc="phantom", unit="subj"
        ):
            rows[plan.site].append(future.result())
    for site, spec in SITES.items():
        if spec.layout == "manifest":
            _write_manifest(root / site, rows[site])
    write_json(marker, settings)
    return {site: site_input(root, site) for site in SITES}
