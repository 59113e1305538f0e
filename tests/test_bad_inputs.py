"""Bad inputs: a damaged subject is excluded with a reason that names the problem, the rest of
the site is still prepared, and what stops a whole step is a one-line ``DataError``.

Every test writes real NIfTI files. The BraTS roots hold 9 subjects per grade: the splits need
at least 8 of each grade, so one damaged subject must leave 8.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import make_brats_root, make_manifest, synthetic_subject, write_nifti, write_subject

from glioma.data.nifti import ReadOptions
from glioma.data.patches import PatchSpec
from glioma.data.prepare import EXCLUSIONS, PrepareResult, prepare_site
from glioma.errors import DataError

REPO = Path(__file__).resolve().parents[1]
N_PER_GRADE = 9
VICTIM = "Sub_LGG_003"
ALL_IDS = {f"Sub_{g}_{i:03d}" for g in ("LGG", "HGG") for i in range(N_PER_GRADE)}


# --- helpers -----------------------------------------------------------------------------------


def brats(tmp_path: Path) -> Path:
    return make_brats_root(tmp_path / "brats", n_per_grade=N_PER_GRADE)


def nifti_path(root: Path, subject_id: str, key: str) -> Path:
    grade = subject_id.split("_")[1]
    return root / grade / subject_id / f"{subject_id}_{key}.nii.gz"


def rewrite(path: Path, change: Callable[[np.ndarray, np.ndarray], tuple]) -> Path:
    """Replace a NIfTI file with ``change(data, affine) -> (data, affine)``."""
    image = nib.load(str(path))
    data, affine = change(np.asarray(image.dataobj), image.affine.copy())
    path.unlink()
    return write_nifti(path, data, affine)


SPEC = PatchSpec(16, 48.0)


def prepare(source: Path, out_dir: Path, strict: bool = False) -> PrepareResult:
    return prepare_site(source, "x", out_dir, SPEC, seed=0, workers=1, strict=strict)


def exclusion_rows(out_dir: Path) -> list[dict[str, str]]:
    with open(out_dir / EXCLUSIONS, newline="") as handle:
        return list(csv.DictReader(handle))


def assert_only_excluded(
    result: PrepareResult, subject_id: str, phrase: str, names: Path | None = None, copies=1
) -> list[dict[str, str]]:
    """Only ``subject_id`` is excluded, with ``phrase`` (and the file ``names``) in the reason."""
    kept = set(result.dataset.subjects["subject_id"])
    assert subject_id not in kept
    rows = exclusion_rows(result.out_dir)
    assert [r["subject_id"] for r in rows] == [subject_id] * copies
    for row in rows:
        assert phrase.lower() in row["reason"].lower(), row["reason"]
        assert "\n" not in row["reason"]
        if names is not None:
            assert str(names) in row["reason"]
    assert len(kept) == len(result.dataset.images) and kept
    return rows


def damage_and_prepare(
    tmp_path: Path, key: str, change: Callable[[np.ndarray, np.ndarray], tuple]
) -> tuple[PrepareResult, Path]:
    """Rewrite ``key`` of the victim with ``change``, prepare, return the result and the file."""
    root = brats(tmp_path)
    path = rewrite(nifti_path(root, VICTIM, key), change)
    return prepare(root, tmp_path / "out"), path


def data_error(source: Path, out_dir: Path, strict: bool = False) -> str:
    with pytest.raises(DataError) as info:
        prepare(source, out_dir, strict)
    return str(info.value)


def set_voxel(value: float) -> Callable[[np.ndarray, np.ndarray], tuple]:
    def change(data, affine):
        data = data.astype(np.float32)
        data[14, 15, 8] = value
        return data, affine

    return change


# --- subject-level damage: excluded, the rest prepared -----------------------------------------


def test_truncated_gzip_is_excluded(tmp_path):
    root = brats(tmp_path)
    path = nifti_path(root, VICTIM, "flair")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    assert_only_excluded(prepare(root, tmp_path / "out"), VICTIM, "truncated", names=path)


def test_garbage_bytes_are_excluded(tmp_path):
    root = brats(tmp_path)
    path = nifti_path(root, VICTIM, "t1")
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    assert_only_excluded(prepare(root, tmp_path / "out"), VICTIM, "unreadable", names=path)


def test_missing_modality_is_excluded(tmp_path):
    root = brats(tmp_path)
    nifti_path(root, VICTIM, "t2").unlink()
    assert_only_excluded(prepare(root, tmp_path / "out"), VICTIM, "missing t2")


def test_contrast_on_its_own_grid_is_resampled_not_excluded(tmp_path):
    """A T2 that covers fewer slices (shape differs) is resampled onto the mask's grid; the
    lesion slice is inside its coverage, so the patch is (almost) the one the full T2 gives."""
    intact = prepare(brats(tmp_path / "intact"), tmp_path / "intact-out")
    result, _ = damage_and_prepare(tmp_path, "t2", lambda d, a: (d[:, :, :-2], a))
    assert pd.read_csv(result.out_dir / EXCLUSIONS).empty
    rows = result.dataset.subjects.set_index("subject_id")
    assert rows.loc[VICTIM, "resampled"] == "t2" and (rows["resampled"].fillna("") != "").sum() == 1
    # Only the victim's T2 changes, by its percentiles losing the two cropped slices (< 2 %).
    diff = np.abs(result.dataset.images - intact.dataset.images).max(axis=(2, 3))
    victim = rows.index.get_loc(VICTIM)
    assert diff[victim, 2] < 0.03 and np.delete(diff, victim, axis=0).max() == 0
    assert diff[victim, [0, 1, 3]].max() == 0


def test_strict_grids_excludes_a_contrast_off_the_grid(tmp_path):
    root = brats(tmp_path)
    path = rewrite(nifti_path(root, VICTIM, "t2"), lambda d, a: (d[:, :, :-2], a))
    options = ReadOptions(strict_grids=True)
    result = prepare_site(root, "x", tmp_path / "out", SPEC, workers=1, options=options)
    assert_only_excluded(result, VICTIM, "strict_grids", names=path)


def test_shifted_contrast_is_resampled_far_one_has_no_overlap(tmp_path):
    def shift(mm):
        def change(data, affine):
            affine[0, 3] += mm
            return data, affine

        return change

    result, _ = damage_and_prepare(tmp_path / "near", "t1ce", shift(4.0))
    assert result.dataset.subjects.set_index("subject_id").loc[VICTIM, "resampled"] == "t1ce"
    result, path = damage_and_prepare(tmp_path / "far", "t1ce", shift(500.0))
    rows = assert_only_excluded(result, VICTIM, "no overlap", names=path)
    assert "mm apart" in rows[0]["reason"]


def test_empty_mask_is_excluded(tmp_path):
    result, path = damage_and_prepare(tmp_path, "seg", lambda d, a: (np.zeros_like(d), a))
    assert_only_excluded(result, VICTIM, "empty", names=path)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_voxels_are_excluded(tmp_path, value):
    result, path = damage_and_prepare(tmp_path, "flair", set_voxel(value))
    assert_only_excluded(result, VICTIM, "NaN", names=path)


def test_real_4d_volume_is_excluded(tmp_path):
    result, path = damage_and_prepare(
        tmp_path, "flair", lambda d, a: (np.stack([d, d, d], axis=-1), a)
    )
    assert_only_excluded(result, VICTIM, "4-D", names=path)


def test_trailing_singleton_dimension_is_accepted(tmp_path):
    root = brats(tmp_path)
    clean = prepare(root, tmp_path / "clean")
    path = rewrite(nifti_path(root, VICTIM, "flair"), lambda d, a: (d[..., None], a))
    assert nib.load(str(path)).shape[3:] == (1,)
    result = prepare(root, tmp_path / "out")
    assert exclusion_rows(result.out_dir) == []
    assert set(result.dataset.subjects["subject_id"]) == ALL_IDS
    np.testing.assert_array_equal(result.dataset.images, clean.dataset.images)


def test_unknown_grade_in_manifest_is_excluded(tmp_path):
    manifest = make_manifest(tmp_path / "clinic", n_per_grade=N_PER_GRADE)
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    victim = rows[2]["subject_id"]
    rows[2]["grade"] = "GBM"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    rows = assert_only_excluded(prepare(manifest, tmp_path / "out"), victim, "unknown grade")
    assert "GBM" in rows[0]["reason"]


def test_unknown_grade_folder_is_excluded(tmp_path):
    root = brats(tmp_path)
    images, seg = synthetic_subject(7)
    write_subject(root / "XGG" / "Sub_XGG_000", "Sub_XGG_000", images, seg)
    result = prepare(root, tmp_path / "out")
    rows = assert_only_excluded(result, "Sub_XGG_000", "unknown grade")
    assert "XGG" in rows[0]["reason"]
    assert set(result.dataset.subjects["subject_id"]) == ALL_IDS


def test_duplicate_subject_id_excludes_every_copy(tmp_path):
    root = brats(tmp_path)
    twin = "Sub_HGG_000"
    shutil.copytree(root / "HGG" / twin, root / "LGG" / twin)
    result = prepare(root, tmp_path / "out")
    rows = assert_only_excluded(result, twin, "duplicate", copies=2)
    assert {r["grade"] for r in rows} == {"HGG", "LGG"}
    assert set(result.dataset.subjects["subject_id"]) == ALL_IDS - {twin}


# --- whole-step failures: DataError with one line naming the input ------------------------------


def missing_root(tmp_path: Path) -> tuple[Path, bool]:
    return tmp_path / "nowhere", False


def empty_root(tmp_path: Path) -> tuple[Path, bool]:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty", False


def empty_grade_folders(tmp_path: Path) -> tuple[Path, bool]:
    for grade in ("HGG", "LGG"):
        (tmp_path / "hollow" / grade).mkdir(parents=True)
    return tmp_path / "hollow", False


def every_mask_empty(tmp_path: Path) -> tuple[Path, bool]:
    root = brats(tmp_path)
    for subject_id in ALL_IDS:
        rewrite(nifti_path(root, subject_id, "seg"), lambda d, a: (np.zeros_like(d), a))
    return root, False


def strict_with_one_bad_subject(tmp_path: Path) -> tuple[Path, bool]:
    root = brats(tmp_path)
    rewrite(nifti_path(root, VICTIM, "t1ce"), set_voxel(np.nan))
    return root, True


def manifest_without_flair(tmp_path: Path) -> tuple[Path, bool]:
    manifest = make_manifest(tmp_path / "clinic", n_per_grade=1)
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(manifest, "w", newline="") as handle:
        fields = [f for f in rows[0] if f != "flair"]
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return manifest, False


@pytest.mark.parametrize("make_case", [missing_root, empty_root, empty_grade_folders])
def test_missing_or_empty_root_names_the_path(tmp_path, make_case):
    source, _ = make_case(tmp_path)
    assert str(source) in data_error(source, tmp_path / "out")


def test_no_valid_subject_still_writes_exclusions(tmp_path):
    source, _ = every_mask_empty(tmp_path)
    out = tmp_path / "out"
    message = data_error(source, out)
    assert "no valid subject" in message and str(out / EXCLUSIONS) in message
    rows = exclusion_rows(out)
    assert {r["subject_id"] for r in rows} == ALL_IDS and len(rows) == len(ALL_IDS)
    assert all("empty" in r["reason"] for r in rows)


def test_strict_mode_stops_at_the_bad_file(tmp_path):
    source, strict = strict_with_one_bad_subject(tmp_path)
    message = data_error(source, tmp_path / "out", strict)
    assert str(nifti_path(source, VICTIM, "t1ce")) in message
    assert "NaN" in message and "strict" in message
    assert not (tmp_path / "out" / "images.npy").exists()


def test_strict_mode_stops_at_a_missing_file(tmp_path):
    root = brats(tmp_path)
    nifti_path(root, VICTIM, "t2").unlink()
    message = data_error(root, tmp_path / "out", strict=True)
    assert str(root / "LGG" / VICTIM) in message and "missing t2" in message


def test_manifest_without_a_column_names_it(tmp_path):
    manifest, _ = manifest_without_flair(tmp_path)
    message = data_error(manifest, tmp_path / "out")
    assert str(manifest) in message
    assert "flair" in message.replace(str(manifest), "")


@pytest.mark.parametrize(
    "make_case",
    [
        missing_root,
        empty_root,
        empty_grade_folders,
        every_mask_empty,
        strict_with_one_bad_subject,
        manifest_without_flair,
    ],
)
def test_data_error_message_is_one_line(tmp_path, make_case):
    source, strict = make_case(tmp_path)
    message = data_error(source, tmp_path / "out", strict)
    assert message.strip() and "\n" not in message and "\r" not in message


def test_cli_missing_source_is_one_line_without_traceback(tmp_path):
    missing = tmp_path / "no-such-root"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID")}
    env["GLIOMA_HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "entrypoints", "prepare", "--data", str(missing), "--site", "x"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert str(missing) in lines[0]
    assert "Traceback" not in proc.stderr
