"""Find subjects in the two input layouts: a BraTS 2019 training root and a manifest CSV.

Discovery never reads voxels; it only decides which files belong to which subject and which
subjects cannot be used at all (unknown grade, duplicate id, missing file). Those become
``Exclusion`` rows, so nothing is lost without a trace.
"""

from __future__ import annotations

import csv
import hashlib
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
    paths: dict[str, Path]  # modality name and "seg" -> file
    mask_convention: str  # "brats" labels (1, 2, 4) or "auto" (binary = enhancing lesion)


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


def _find_nifti(folder: Path, subject_id: str, key: str) -> Path | None:
    for suffix in NIFTI_SUFFIXES:
        candidate = folder / f"{subject_id}_{key}{suffix}"
        if candidate.exists():
            return candidate
    return None


def _without_duplicates(found: Discovery, places: list[str]) -> Discovery:
    """Exclude every copy of a repeated subject id: which copy is right cannot be known."""
    by_id: dict[str, list[str]] = {}
    for record, where in zip(found.records, places):
        by_id.setdefault(record.subject_id, []).append(where)
    kept = Discovery(exclusions=list(found.exclusions))
    for record, where in zip(found.records, places):
        others = [w for w in by_id[record.subject_id] if w != where]
        if others:
            reason = f"duplicate subject id (also at {'; '.join(others)})"
            kept.exclusions.append(Exclusion(record.subject_id, record.grade, where, reason))
        else:
            kept.records.append(record)
    return kept


def discover_brats(root: str | Path, site: str) -> Discovery:
    """Subjects of a BraTS 2019 root: ``HGG/<id>/<id>_<modality>.nii[.gz]`` and ``LGG/...``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: BraTS root does not exist or is not a folder")
    found, places = Discovery(), []
    grade_dirs = [d for d in sorted(root.iterdir()) if d.is_dir()]
    if not any(d.name in GRADES for d in grade_dirs):
        raise DataError(f"{root}: no HGG/ or LGG/ folder; not a BraTS 2019 training root")
    for grade_dir in grade_dirs:
        for folder in sorted(p for p in grade_dir.iterdir() if p.is_dir()):
            subject_id = folder.name
            if grade_dir.name not in GRADES:
                found.exclusions.append(
                    Exclusion(
                        subject_id,
                        grade_dir.name,
                        str(folder),
                        f"unknown grade folder {grade_dir.name!r} (expected HGG or LGG)",
                    )
                )
                continue
            paths = {key: _find_nifti(folder, subject_id, key) for key in (*MODALITIES, "seg")}
            missing = [key for key, path in paths.items() if path is None]
            if missing:
                reason = (
                    f"missing {', '.join(missing)} (expected {subject_id}_<name>.nii.gz or .nii)"
                )
                found.exclusions.append(Exclusion(subject_id, grade_dir.name, str(folder), reason))
                continue
            found.records.append(SubjectRecord(subject_id, grade_dir.name, site, paths, "brats"))
            places.append(str(folder))
    return _without_duplicates(found, places)


def read_manifest(csv_path: str | Path, site: str) -> Discovery:
    """Subjects listed in a manifest CSV; file paths are relative to the CSV's folder."""
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
        paths = {key: csv_path.parent / (row[key] or "").strip() for key in (*MODALITIES, "seg")}
        missing = [
            key for key, p in paths.items() if not (row[key] or "").strip() or not p.is_file()
        ]
        if missing:
            detail = ", ".join(f"{k} ({paths[k]})" for k in missing)
            found.exclusions.append(
                Exclusion(subject_id, grade, where, f"missing file for {detail}")
            )
            continue
        found.records.append(SubjectRecord(subject_id, grade, site, paths, "auto"))
        places.append(where)
    return _without_duplicates(found, places)


def discover(source: str | Path, site: str) -> Discovery:
    """A folder is read as a BraTS root, a ``.csv`` file as a manifest."""
    source = Path(source)
    if not source.exists():
        raise DataError(f"{source}: input does not exist")
    if source.is_file() and source.suffix.lower() == ".csv":
        return read_manifest(source, site)
    if source.is_dir():
        return discover_brats(source, site)
    raise DataError(f"{source}: expected a BraTS root folder or a manifest .csv file")


def default_site_name(source: str | Path) -> str:
    """Site name when none is given: ``brats`` for a BraTS root, the CSV's stem otherwise."""
    source = Path(source)
    return source.stem.lower() if source.suffix.lower() == ".csv" else "brats"


def source_fingerprint(source: str | Path) -> str:
    """A hash of what prepare would read: every discovered file's path, size and mtime.

    It changes when a subject is added, removed, replaced or edited (and when the manifest
    changes), so a step is not reused on stale data; it reads no voxels.
    """
    source = Path(source)
    found = discover(source, "fingerprint")
    files = {p for record in found.records for p in record.paths.values()}
    files |= {Path(e.path) for e in found.exclusions if e.path}
    if source.is_file():
        files.add(source)
    digest = hashlib.sha256()
    for path in sorted(files):
        stat = path.stat() if path.is_file() else None
        size, mtime = (stat.st_size, stat.st_mtime_ns) if stat else (-1, -1)
        digest.update(f"{path.resolve()}\0{size}\0{mtime}\n".encode())
    for exclusion in sorted(found.exclusions, key=lambda e: (e.subject_id, e.reason)):
        digest.update(f"{exclusion.subject_id}\0{exclusion.reason}\n".encode())
    return digest.hexdigest()[:16]
