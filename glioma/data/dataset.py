"""The dataset files every step reads and writes (DESIGN.md): ``images.npy``, ``subjects.csv``,
``meta.json``. Written atomically; read back with checks that name the file and the problem.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glioma.errors import DataError
from glioma.fileio import write_json, write_npy, write_text

SUBJECT_COLUMNS = (
    "subject_id",
    "grade",
    "label",
    "site",
    "synthetic",
    "slice_index",
    "mask_source",
    "spacing_mm",
    "lesion_area_mm2",
    "source",
)
# Written by prepare when it knows them (real data); synthetic datasets leave them out.
PROVENANCE_COLUMNS = (
    "orientation",
    "dtype",
    "field_strength_t",
    "resampled",
    "converted",
    "brain_mask",
)
IMAGES, SUBJECTS, META = "images.npy", "subjects.csv", "meta.json"


@dataclass(frozen=True)
class Dataset:
    images: np.ndarray  # (N, 4, H, W) float32 in [-1, 1]
    subjects: pd.DataFrame  # one row per image, SUBJECT_COLUMNS
    meta: dict[str, Any]

    @property
    def data_hash(self) -> str:
        return str(self.meta["data_hash"])

    def select(self, ids) -> tuple[np.ndarray, list[str]]:
        """(images, subject ids) of the rows whose subject is in ``ids``, in dataset order."""
        keep = self.subjects["subject_id"].isin(list(ids)).to_numpy()
        return self.images[keep], self.subjects["subject_id"][keep].tolist()


def data_hash(images: np.ndarray, subjects: pd.DataFrame) -> str:
    """Content hash of the pixels and the subject table: the identity of a dataset."""
    digest = hashlib.sha256()
    digest.update(str((images.dtype.str, images.shape)).encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    digest.update(subjects.to_csv(index=False).encode())
    return digest.hexdigest()[:16]


def write_dataset(
    folder: str | Path, images: np.ndarray, subjects: pd.DataFrame, meta: dict[str, Any]
) -> Dataset:
    """Write the three files; ``meta`` gains ``data_hash``, ``n_images`` and ``image_shape``."""
    folder = Path(folder)
    images = np.ascontiguousarray(images, dtype=np.float32)
    columns = [*SUBJECT_COLUMNS, *(c for c in PROVENANCE_COLUMNS if c in subjects.columns)]
    subjects = subjects.loc[:, columns].reset_index(drop=True)
    if len(subjects) != len(images):
        raise DataError(f"{folder}: {len(images)} images but {len(subjects)} subject rows")
    meta = {
        **meta,
        "data_hash": data_hash(images, subjects),
        "n_images": len(images),
        "image_shape": list(images.shape[1:]),
    }
    write_npy(folder / IMAGES, images)
    write_text(folder / SUBJECTS, subjects.to_csv(index=False))
    write_json(folder / META, meta)
    return Dataset(images, subjects, meta)


def read_dataset(folder: str | Path) -> Dataset:
    """Load and check a dataset folder written by ``write_dataset``."""
    folder = Path(folder)
    for name in (IMAGES, SUBJECTS, META):
        if not (folder / name).is_file():
            raise DataError(f"{folder / name}: missing; not a dataset folder")
    try:
        images = np.load(folder / IMAGES, allow_pickle=False)
        subjects = pd.read_csv(folder / SUBJECTS, dtype={"subject_id": str})
        meta = json.loads((folder / META).read_text())
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{folder}: unreadable dataset file ({exc})") from None
    if images.ndim != 4 or images.shape[1] != 4 or images.dtype != np.float32:
        raise DataError(
            f"{folder / IMAGES}: expected float32 (N, 4, H, W), got {images.dtype} {images.shape}"
        )
    missing = [c for c in SUBJECT_COLUMNS if c not in subjects.columns]
    if missing:
        raise DataError(f"{folder / SUBJECTS}: missing column(s) {', '.join(missing)}")
    if len(subjects) != len(images):
        raise DataError(f"{folder}: {len(images)} images but {len(subjects)} rows in {SUBJECTS}")
    return Dataset(images, subjects, meta)
