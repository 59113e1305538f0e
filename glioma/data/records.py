"""What discovery finds: subject records, exclusions, and the manifest CSV layout.

Discovery never reads voxels; it only decides which files belong to which subject and which
subjects cannot be used at all (unknown grade, duplicate id, missing file). Those become
``Exclusion`` rows, so nothing is lost without a trace. The BraTS releases' layouts are in
``glioma.data.layouts``; ``glioma.data.sources`` chooses between them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from glioma.errors import DataError
from glioma.names import LABELS

MODALITIES = ("t1", "t1ce", "t2", "flair")
GRADES = LABELS  # grade folder / manifest value -> label
NIFTI_SUFFIXES = (".nii.gz", ".nii")
MANIFEST_COLUMNS = ("subject_id", "grade", *MODALITIES, "seg")


@dataclass(frozen=True)
class SubjectRecord:
    subject_id: str
    grade: str
    site: str
    paths: dict[str, Path]  # modality, "seg" (and "brain_mask") -> NIfTI file or DICOM folder
    mask_convention: str  # "brats" (1, 2, 4), "brats2023" (1, 2, 3) or "auto" (binary = ET)


@dataclass(frozen=True)
class Exclusion:
    subject_id: str
    grade: str
    path: str
    reason: str


@dataclass
class Discovery:
    records: list[SubjectRecord] = field(default_factory=list)
    exclusions: list[Exclusion] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # one console line each (layout, quirks)
    inputs: list[Path] = field(default_factory=list)  # files read besides the subjects' own


def without_duplicates(found: Discovery, places: list[str]) -> Discovery:
    """Exclude every copy of a repeated subject id: which copy is right cannot be known."""
    by_id: dict[str, list[str]] = {}
    for record, where in zip(found.records, places):
        by_id.setdefault(record.subject_id, []).append(where)
    kept = Discovery(exclusions=list(found.exclusions), notes=found.notes, inputs=found.inputs)
    for record, where in zip(found.records, places):
        others = [w for w in by_id[record.subject_id] if w != where]
        if others:
            reason = f"duplicate subject id (also at {'; '.join(others)})"
            kept.exclusions.append(Exclusion(record.subject_id, record.grade, where, reason))
        else:
            kept.records.append(record)
    return kept


def read_manifest(csv_path: str | Path, site: str) -> Discovery:
    """Subjects listed in a manifest CSV; paths are relative to the CSV's folder.

    A path may name a NIfTI file or a DICOM series folder (converted by ``glioma.data.dicom``);
    an optional ``brain_mask`` column gives a brain mask for volumes that are not skull-stripped.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: manifest CSV does not exist")
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        absent = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
        if absent:
            raise DataError(f"{csv_path}: manifest lacks column(s) {', '.join(absent)}")
        rows = list(reader)
    found, places = Discovery(), []
    for line, row in enumerate(rows, start=2):
        subject_id = (row["subject_id"] or "").strip()
        grade = (row["grade"] or "").strip().upper()
        where = f"{csv_path}:{line}"
        if not subject_id:
            found.exclusions.append(Exclusion("", grade, where, "empty subject_id"))
            continue
        if grade not in GRADES:
            found.exclusions.append(
                Exclusion(
                    subject_id,
                    row["grade"],
                    where,
                    f"unknown grade {row['grade']!r} (expected LGG or HGG)",
                )
            )
            continue
        optional = ["brain_mask"] if (row.get("brain_mask") or "").strip() else []
        keys = (*MODALITIES, "seg", *optional)
        paths = {key: csv_path.parent / (row[key] or "").strip() for key in keys}
        missing = [k for k, p in paths.items() if not (row[k] or "").strip() or not p.exists()]
        if missing:
            detail = ", ".join(f"{k} ({paths[k]})" for k in missing)
            found.exclusions.append(
                Exclusion(subject_id, grade, where, f"missing file for {detail}")
            )
            continue
        found.records.append(SubjectRecord(subject_id, grade, site, paths, "auto"))
        places.append(where)
    return without_duplicates(found, places)
