"""Clinical exports: DICOM series (converted by dcm2niix), contrasts on their own grids, and
volumes that are not skull-stripped. Real DICOM files are written with pydicom from the same
NIfTI volumes, so the DICOM path can be checked against the NIfTI path.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from conftest import MODALITIES, ras_affine, synthetic_subject, write_nifti, write_subject
from dicom_helpers import oblique_affine, write_series

from glioma.data.nifti import ReadOptions
from glioma.data.patches import PatchSpec
from glioma.data.prepare import prepare_site

SPEC = PatchSpec(16, 48.0)
KEYS = (*MODALITIES, "seg")


def write_manifest(path: Path, rows: list[dict]) -> Path:
    columns = ["subject_id", "grade", *KEYS, *(["brain_mask"] if "brain_mask" in rows[0] else [])]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def row(sid: str, paths: dict, root: Path, grade: str = "HGG", **extra) -> dict:
    return {"subject_id": sid, "grade": grade} | {
        k: str(Path(p).relative_to(root)) if p else "" for k, p in (paths | extra).items()
    }


def prepare(manifest: Path, out: Path, cache: Path):
    options = ReadOptions(dicom_cache=cache)
    return prepare_site(manifest, "clinic", out, SPEC, workers=1, options=options)


@pytest.mark.parametrize("geometry", ["axial", "oblique"])
def test_dicom_series_give_the_patch_of_the_nifti_files(tmp_path, geometry):
    images, seg = synthetic_subject(7)
    affine = ras_affine(seg.shape) if geometry == "axial" else oblique_affine(seg.shape, (2, 2, 3))
    nifti = write_subject(tmp_path / "nifti" / "s1", "s1", images, seg, affine=affine)
    dicom = dict(nifti)
    for channel, key in ((1, "t1ce"), (3, "flair")):
        dicom[key] = write_series(
            tmp_path / "dicom" / key, images[channel], affine, description=key
        )
    cache = tmp_path / "cache"
    from_nifti = prepare(
        write_manifest(tmp_path / "a.csv", [row("s1", nifti, tmp_path)]), tmp_path / "a", cache
    )
    from_dicom = prepare(
        write_manifest(tmp_path / "b.csv", [row("s1", dicom, tmp_path)]), tmp_path / "b", cache
    )
    assert not from_dicom.exclusions
    # int16 storage with slope 0.05 moves a voxel by <= 0.025 of ~600: far below 1e-3 of the range
    np.testing.assert_allclose(from_dicom.dataset.images, from_nifti.dataset.images, atol=2e-3)
    subject = from_dicom.dataset.subjects.iloc[0]
    assert subject["converted"].startswith("t1ce:") and ",flair:" in subject["converted"]
    assert subject["field_strength_t"] == 3.0 and subject["resampled"] == ""
    entries = sorted(p.name for p in cache.iterdir() if not p.name.startswith("."))
    assert len(entries) == 2 and all((cache / e / "volume.nii.gz").is_file() for e in entries)
    stamp = (cache / entries[0] / "volume.nii.gz").stat().st_mtime_ns
    prepare(tmp_path / "b.csv", tmp_path / "b2", cache)  # the same series: converted once
    assert (cache / entries[0] / "volume.nii.gz").stat().st_mtime_ns == stamp


def test_series_that_do_not_convert_are_excluded_with_dcm2niix_reason(tmp_path):
    images, seg = synthetic_subject(8)
    affine = ras_affine(seg.shape)
    rows = []
    for sid, damage in (("good", None), ("mixed", "mixed"), ("gap", "gap"), ("scout", "scout")):
        paths = write_subject(tmp_path / sid, sid, images, seg)
        folder = tmp_path / sid / "t1ce_dicom"
        if damage == "scout":  # a localiser: one 2-D slice, marked LOCALIZER
            write_series(
                folder, images[1][:, :, 8:9], affine, image_type=r"ORIGINAL\PRIMARY\LOCALIZER"
            )
        else:
            write_series(folder, images[1], affine, skip_slices=(7,) if damage == "gap" else ())
        if damage == "mixed":  # a second series dropped into the same folder
            write_series(tmp_path / sid / "other", images[2], affine, series_number=9)
            for path in (tmp_path / sid / "other").iterdir():
                path.rename(folder / f"B{path.name}")
        rows.append(row(sid, paths | {"t1ce": folder}, tmp_path))
    result = prepare(write_manifest(tmp_path / "m.csv", rows), tmp_path / "out", tmp_path / "c")
    assert list(result.dataset.subjects["subject_id"]) == ["good"]
    reasons = {e.subject_id: e.reason for e in result.exclusions}
    assert "2 series in one folder" in reasons["mixed"]
    assert (
        "missing or unevenly spaced slices" in reasons["gap"] and "Missing images" in reasons["gap"]
    )
    assert "made no volume" in reasons["scout"]
    assert all("t1ce_dicom" in r and "\n" not in r for r in reasons.values())


def test_thick_slice_t2_is_resampled_onto_the_mask_grid(tmp_path):
    """T2 acquired at 4 mm beside a 1 mm T1ce and mask: read through the affines."""
    shape = (28, 30, 36)
    images, seg = synthetic_subject(9, shape=shape)
    fine = ras_affine(shape, (2.0, 2.0, 1.0))
    same_grid = write_subject(tmp_path / "fine", "s", images, seg, affine=fine)
    thick = images[2].reshape(shape[0], shape[1], 9, 4).mean(axis=3)  # 4 slices -> one 4 mm slice
    affine = fine.copy()
    affine[2, 2], affine[2, 3] = 4.0, fine[2, 3] + 1.5  # centre of each block of four
    paths = dict(same_grid, t2=write_nifti(tmp_path / "thick" / "s_t2.nii.gz", thick, affine))
    manifest = write_manifest(
        tmp_path / "m.csv", [row("s", same_grid, tmp_path), row("t", paths, tmp_path)]
    )
    result = prepare(manifest, tmp_path / "out", tmp_path / "c")
    subjects = result.dataset.subjects.set_index("subject_id")
    assert subjects.loc["t", "resampled"] == "t2" and subjects.loc["s", "resampled"] == ""
    reference, resampled = result.dataset.images[:, 2]
    # The 4 mm series averages away the phantom's per-voxel noise (10 %): r 0.87 measured.
    assert np.corrcoef(reference.ravel(), resampled.ravel())[0, 1] > 0.8
    np.testing.assert_array_equal(
        result.dataset.images[0, [0, 1, 3]], result.dataset.images[1, [0, 1, 3]]
    )


def unstripped_head(seed: int, *, noise: bool):
    """A raw head: scanner noise around the brain (``noise``), or a bright scalp that reaches
    the sides of the box on a zero background."""
    images, seg = synthetic_subject(seed)
    x, y, z = np.ogrid[:28, :30, :16]
    radius = ((x - 14) / 14.5) ** 2 + ((y - 15) / 15.5) ** 2 + ((z - 8) / 9) ** 2
    if not noise:
        images[:, (radius < 1.0) & (images[0] == 0)] = 900.0
    else:
        rng = np.random.default_rng(seed)
        background = images == 0
        images[background] = np.abs(rng.normal(0, 15, size=int(background.sum())))
    brain = synthetic_subject(seed)[0][0] != 0
    return images, seg, brain.astype(np.uint8)


def test_a_head_that_is_not_skull_stripped_is_excluded_unless_a_brain_mask_is_given(tmp_path):
    rows, masked_rows = [], []
    for sid, noise in (("noisy", True), ("scalp", False)):
        images, seg, brain = unstripped_head(11, noise=noise)
        paths = write_subject(tmp_path / sid, sid, images, seg)
        mask = write_nifti(tmp_path / sid / f"{sid}_brain.nii.gz", brain, ras_affine(seg.shape))
        rows.append(row(sid, paths, tmp_path))
        masked_rows.append(row(sid, paths, tmp_path, brain_mask=mask))
    images, seg = synthetic_subject(11)
    stripped = write_subject(tmp_path / "cut", "cut", images[:, :, :, 3:], seg[:, :, 3:])
    rows.append(row("cut", stripped, tmp_path))  # a stripped brain cut by the slab: kept
    masked_rows.append(row("cut", stripped, tmp_path, brain_mask=""))
    result = prepare(write_manifest(tmp_path / "m.csv", rows), tmp_path / "out", tmp_path / "c")
    assert list(result.dataset.subjects["subject_id"]) == ["cut"]
    reasons = {e.subject_id: e.reason for e in result.exclusions}
    assert "not skull-stripped (background not zero" in reasons["noisy"]
    assert "% of the border voxels are bright" in reasons["scalp"]
    assert all("HD-BET or SynthStrip" in r and "brain_mask" in r for r in reasons.values())
    unchecked = prepare_site(
        tmp_path / "m.csv", "clinic", tmp_path / "u", SPEC, workers=1,
        options=ReadOptions(dicom_cache=tmp_path / "c", skull_check=False),
    )  # fmt: skip
    assert len(unchecked.dataset.subjects) == 3  # the user said the volumes are fine
    masked = prepare(
        write_manifest(tmp_path / "k.csv", masked_rows), tmp_path / "k", tmp_path / "c"
    )
    subjects = masked.dataset.subjects.set_index("subject_id")
    assert sorted(subjects.index) == ["cut", "noisy", "scalp"] and not masked.exclusions
    assert subjects.loc["noisy", "brain_mask"] == "brain_mask column"
    assert subjects.loc["cut", "brain_mask"] == "non-zero voxels"
    # With the mask, the scalp is background and the brain is normalised as the stripped one's.
    noisy, scalp = (masked.dataset.images[subjects.index.get_loc(s)] for s in ("noisy", "scalp"))
    np.testing.assert_allclose(noisy, scalp, atol=1e-5)
