"""The BraTS releases' folder layouts, as they ship, and where each takes its grades from.

- 2018/2019: ``HGG/<id>/`` and ``LGG/<id>/`` holding ``<id>_t1``, ``_t1ce``, ``_t2``,
  ``_flair``, ``_seg``; grade from the folder (``name_mapping.csv``, when present, must agree).
- 2020: flat ``<id>/``, the same names; grade from ``name_mapping.csv`` (``Grade`` by
  ``BraTS_2020_subject_ID``).
- 2021: flat, the same names, no grade: a grades CSV (``subject_id, grade``).
- 2023 and later: flat, ``<id>-t1n``, ``-t1c``, ``-t2w``, ``-t2f``, ``-seg``, enhancing
  tumour labelled 3 (not 4), no grade: a grades CSV.

Quirks of the real releases are followed: BraTS 2020's ``BraTS20_Training_355`` ships its mask
as ``W39_1998.09.19_Segm.nii``, so a subject whose ``<id>_seg`` is missing takes the one file
of its folder whose name says ``seg`` (recorded in a note); mapping files carry ``NA`` and
blank cells; a ``--grades`` CSV, when given, decides the grade for every layout without folders.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from glioma.data.records import (
    GRADES,
    MODALITIES,
    NIFTI_SUFFIXES,
    Discovery,
    Exclusion,
    SubjectRecord,
    without_duplicates,
)
from glioma.errors import DataError

NAME_MAPPING = "name_mapping.csv"
GRADES_FILE = "grades.csv"
SUFFIXES_2019 = {m: f"_{m}" for m in (*MODALITIES, "seg")}
SUFFIXES_2023 = {"t1": "-t1n", "t1ce": "-t1c", "t2": "-t2w", "flair": "-t2f", "seg": "-seg"}
# BraTS 2023 relabelled the enhancing tumour 3 (it was 4); a different mask convention.
CONVENTION = {"2019": "brats", "2023": "brats2023"}


def _find(folder: Path, subject_id: str, suffix: str) -> Path | None:
    for ending in NIFTI_SUFFIXES:
        candidate = folder / f"{subject_id}{suffix}{ending}"
        if candidate.exists():
            return candidate
    return None


def _odd_seg(folder: Path, taken: set[Path]) -> Path | None:
    """The one NIfTI in ``folder`` whose name says seg(m), when ``<id>_seg`` is missing."""
    found = [
        p
        for p in folder.iterdir()
        if p not in taken and p.name.endswith(NIFTI_SUFFIXES) and "seg" in p.name.lower()
    ]
    return found[0] if len(found) == 1 else None


def subject_files(folder: Path, naming: str, found: Discovery) -> dict[str, Path] | str:
    """The subject's five files, or the reason they cannot all be found."""
    subject_id = folder.name
    suffixes = SUFFIXES_2023 if naming == "2023" else SUFFIXES_2019
    paths = {key: _find(folder, subject_id, suffix) for key, suffix in suffixes.items()}
    if paths["seg"] is None:
        paths["seg"] = _odd_seg(folder, {p for p in paths.values() if p})
        if paths["seg"] is not None:
            found.notes.append(f"{subject_id}: mask read from {paths['seg'].name}")
    missing = [key for key, path in paths.items() if path is None]
    if missing:
        names = ", ".join(f"{subject_id}{suffixes[key]}" for key in missing)
        return f"missing {', '.join(missing)} (expected {names} as .nii.gz or .nii)"
    return paths  # type: ignore[return-value]


def _naming(folders: list[Path]) -> str:
    """``2023`` when the subjects' files end in -t1n/-t1c/..., else the 2019 names."""
    for folder in folders[:5]:
        if any(p.name.startswith(f"{folder.name}-t1n") for p in folder.iterdir()):
            return "2023"
    return "2019"


def read_grade_table(path: Path, id_column: str | None = None) -> dict[str, str]:
    """``{subject id: grade}`` from a grades CSV (``subject_id, grade``) or a name_mapping.csv.

    For a mapping file the id column is the newest ``BraTS_<year>_subject_ID`` column (the
    release's own ids); blank and ``NA`` cells are skipped, grades upper-cased.
    """
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    if id_column is None:
        id_columns = sorted(c for c in columns if re.fullmatch(r"BraTS_\d{4}_subject_ID", c))
        id_column = id_columns[-1] if id_columns else "subject_id"
    grade_column = next((c for c in columns if c.lower() == "grade"), None)
    if id_column not in columns or grade_column is None:
        raise DataError(f"{path}: needs columns {id_column} and grade, has {', '.join(columns)}")
    return {
        row[id_column]: row[grade_column].upper()
        for row in rows
        if row[id_column] and row[id_column].upper() != "NA"
    }


def grades_file(root: Path, given: str | Path | None) -> Path | None:
    """The grades CSV: the one given, else ``grades.csv`` in the root, else beside it."""
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise DataError(f"{path}: grades CSV does not exist")
        return path
    for candidate in (root / GRADES_FILE, root.parent / GRADES_FILE):
        if candidate.is_file():
            return candidate
    return None


def _add(found: Discovery, folder: Path, grade: str, naming: str, site: str, places: list):
    files = subject_files(folder, naming, found)
    if isinstance(files, str):
        found.exclusions.append(Exclusion(folder.name, grade, str(folder), files))
        return
    found.records.append(SubjectRecord(folder.name, grade, site, files, CONVENTION[naming]))
    places.append(str(folder))


def discover_tree(root: Path, site: str) -> Discovery:
    """BraTS 2018/2019: ``HGG/<id>/`` and ``LGG/<id>/``; the mapping file, if any, must agree."""
    found, places = Discovery(), []
    mapping_path = root / NAME_MAPPING
    mapping = read_grade_table(mapping_path) if mapping_path.is_file() else {}
    if mapping:
        found.inputs.append(mapping_path)
    for grade_dir in (d for d in sorted(root.iterdir()) if d.is_dir()):
        for folder in sorted(p for p in grade_dir.iterdir() if p.is_dir()):
            grade = grade_dir.name
            if grade not in GRADES:
                reason = f"unknown grade folder {grade!r} (expected HGG or LGG)"
                found.exclusions.append(Exclusion(folder.name, grade, str(folder), reason))
            elif mapping.get(folder.name, grade) != grade:
                reason = f"in {grade}/ but {NAME_MAPPING} says {mapping[folder.name]}"
                found.exclusions.append(Exclusion(folder.name, grade, str(folder), reason))
            else:
                _add(found, folder, grade, _naming([folder]), site, places)
    return without_duplicates(found, places)


def discover_flat(root: Path, site: str, grades: str | Path | None = None) -> Discovery:
    """BraTS 2020 and later: one folder per subject; grades from a grades CSV or the mapping."""
    folders = [d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    naming = _naming(folders)
    found, places = Discovery(), []
    table_path = grades_file(root, grades)
    if table_path is None and (root / NAME_MAPPING).is_file():
        table_path = root / NAME_MAPPING
    if table_path is None:
        release = "BraTS 2023+" if naming == "2023" else "BraTS 2021"
        raise DataError(
            f"{root}: a {release} layout carries no grade; give --grades <CSV of subject_id, "
            f"grade> (or put {GRADES_FILE} in or beside the root)"
        )
    table = read_grade_table(table_path)
    found.inputs.append(table_path)
    if table_path.name == NAME_MAPPING:
        found.notes.append(f"BraTS 2020 layout: grades from {table_path}")
    else:
        release = "BraTS 2023+" if naming == "2023" else "BraTS 2020/2021"
        found.notes.append(
            f"{release} layout: grades come from outside the release, here {table_path}"
        )
    for folder in folders:
        grade = table.get(folder.name, "")
        if grade not in GRADES:
            detail = f"grade {grade!r}" if grade else "no grade"
            reason = f"{detail} for this subject in {table_path} (expected HGG or LGG)"
            found.exclusions.append(Exclusion(folder.name, grade, str(folder), reason))
            continue
        _add(found, folder, grade, naming, site, places)
    return without_duplicates(found, places)


def discover_brats(root: str | Path, site: str, grades: str | Path | None = None) -> Discovery:
    """Any BraTS training root: the 2019 tree when it has HGG/ or LGG/, else the flat layout."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: BraTS root does not exist or is not a folder")
    folders = [d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if not folders:
        raise DataError(f"{root}: no subject folders (expected HGG/, LGG/ or one per subject)")
    if any(d.name in GRADES for d in folders):
        return discover_tree(root, site)
    return discover_flat(root, site, grades)
