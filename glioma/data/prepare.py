"""``prepare``: input layout -> per-subject patches -> dataset files, splits and exclusions.

Subjects are processed in parallel worker processes (reading and decompressing NIfTI is the
cost); a subject that fails any check is excluded with its reason, unless ``strict``. A site
too small for a test set and folds is still written, as evaluation-only (``splits.json``).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from glioma.data.dataset import Dataset, write_dataset
from glioma.data.lesion import choose_lesion_mask
from glioma.data.nifti import READ_DEFAULTS, ReadOptions, load_subject
from glioma.data.patches import (
    BACKGROUND,
    HIGH_PERCENTILE,
    LOW_PERCENTILE,
    PatchSpec,
    extract_patch,
)
from glioma.data.records import GRADES, Exclusion, SubjectRecord
from glioma.data.sources import discover
from glioma.data.splits import is_evaluation_only, site_splits, write_splits
from glioma.errors import DataError, SubjectError
from glioma.fileio import write_text
from glioma.parallel import process_pool

EXCLUSIONS = "exclusions.csv"


@dataclass(frozen=True)
class PrepareResult:
    dataset: Dataset
    splits: dict[str, Any]
    exclusions: list[Exclusion]
    out_dir: Path
    seconds: float
    notes: list[str]  # console lines from discovery (layout, where grades came from, quirks)

    @property
    def evaluation_only(self) -> bool:
        return is_evaluation_only(self.splits)


def process_subject(
    record: SubjectRecord, spec: PatchSpec, options: ReadOptions = READ_DEFAULTS
) -> tuple[np.ndarray, dict[str, Any]]:
    """One subject's patch and its ``subjects.csv`` row; SubjectError if it cannot be used."""
    volumes = load_subject(record, options)
    try:
        lesion, mask_source = choose_lesion_mask(volumes.seg, record.mask_convention)
        patch = extract_patch(volumes, lesion, spec)
    except SubjectError as exc:
        raise SubjectError(f"{record.paths['seg']}: {exc}") from None
    row = {
        "subject_id": record.subject_id,
        "grade": record.grade,
        "label": GRADES[record.grade],
        "site": record.site,
        "synthetic": False,
        "slice_index": patch.slice_index,
        "mask_source": mask_source,
        "spacing_mm": "x".join(f"{s:.3g}" for s in patch.spacing_mm),
        "lesion_area_mm2": round(patch.lesion_area_mm2, 2),
        "source": str(record.paths["t1"].parent),
        **volumes.provenance,
    }
    return patch.pixels, row


def _try_subject(record: SubjectRecord, spec: PatchSpec, options: ReadOptions):
    try:
        return process_subject(record, spec, options)
    except SubjectError as exc:
        return Exclusion(record.subject_id, record.grade, str(record.paths["t1"].parent), str(exc))


def _process_all(records: list[SubjectRecord], spec: PatchSpec, options, workers, strict: bool):
    """Yield each record's result in input order, with a progress bar."""
    n = len(records)
    bar = tqdm(total=n, desc="prepare", unit="subj")
    pool = process_pool(workers) if workers > 1 else None
    try:
        results = (
            pool.map(_try_subject, records, [spec] * n, [options] * n, chunksize=1)
            if pool
            else (_try_subject(r, spec, options) for r in records)
        )
        for result in results:
            bar.update()
            if strict and isinstance(result, Exclusion):
                raise DataError(f"{result.path}: {result.reason} (strict mode)")
            yield result
    finally:
        bar.close()
        if pool:
            pool.shutdown(cancel_futures=True)


def write_exclusions(folder: Path, exclusions: list[Exclusion]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["subject_id", "grade", "path", "reason"])
    writer.writeheader()
    writer.writerows(asdict(e) for e in exclusions)
    path = folder / EXCLUSIONS
    write_text(path, buffer.getvalue())
    return path


def prepare_site(
    source: str | Path,
    site: str,
    out_dir: str | Path,
    spec: PatchSpec,
    *,
    seed: int = 0,
    workers: int = 2,
    strict: bool = False,
    options: ReadOptions = READ_DEFAULTS,
    grades: str | Path | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> PrepareResult:
    """Read ``source`` (BraTS root or manifest CSV) and write the site's dataset to ``out_dir``.

    ``grades``: a CSV of subject_id, grade for BraTS layouts without grade folders.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    found = discover(source, site, grades=grades)
    if strict and found.exclusions:
        first = found.exclusions[0]
        raise DataError(f"{first.path}: {first.reason} (strict mode)")
    if not found.records and not found.exclusions:
        raise DataError(f"{source}: no subjects found")
    patches, rows, exclusions = [], [], list(found.exclusions)
    for result in _process_all(found.records, spec, options, workers, strict):
        if isinstance(result, Exclusion):
            exclusions.append(result)
        else:
            patches.append(result[0])
            rows.append(result[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    exclusions_path = write_exclusions(out_dir, exclusions)
    if not rows:
        raise DataError(
            f"{source}: no valid subject ({len(exclusions)} excluded; reasons in {exclusions_path})"
        )
    subjects = pd.DataFrame(rows).sort_values("subject_id", kind="stable")
    images = np.stack(patches)[subjects.index.to_numpy()]
    splits = site_splits(subjects["subject_id"].tolist(), subjects["grade"].tolist(), seed=seed)
    meta = {
        "site": site,
        "source": str(source),
        "patch_size": spec.size,
        "fov_mm": spec.fov_mm,
        "pixel_mm": spec.pixel_mm,
        "channels": ["t1", "t1ce", "t2", "flair"],
        "normalisation": (
            f"per channel, brain voxels (non-zero in any contrast) of the whole volume: "
            f"p{LOW_PERCENTILE} -> -1, p{HIGH_PERCENTILE} -> 1, clipped; background {BACKGROUND}"
        ),
        "n_excluded": len(exclusions),
        "evaluation_only": is_evaluation_only(splits),
        **(extra_meta or {}),
    }
    dataset = write_dataset(out_dir, images, subjects, meta)
    write_splits(out_dir, splits)
    seconds = time.perf_counter() - start
    return PrepareResult(dataset, splits, exclusions, out_dir, seconds, found.notes)
