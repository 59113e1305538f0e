import json
import os

import numpy as np
import pandas as pd
import pytest
from conftest import make_brats_root, ras_affine, synthetic_subject, write_subject

from glioma.config import PrepareConfig, build_config
from glioma.data.dataset import PROVENANCE_COLUMNS, SUBJECT_COLUMNS, read_dataset
from glioma.data.lesion import choose_lesion_mask
from glioma.data.nifti import load_subject
from glioma.data.patches import PatchSpec, extract_patch
from glioma.data.prepare import prepare_site
from glioma.data.records import SubjectRecord
from glioma.data.splits import make_splits, read_splits, training_subjects
from glioma.pipeline.steps.prepare import run_prepare

SPEC = PatchSpec(16, 48.0)


def _patch(paths, convention="brats"):
    record = SubjectRecord("s", "HGG", "x", paths, convention)
    volumes = load_subject(record)
    lesion, kind = choose_lesion_mask(volumes.seg, convention)
    return extract_patch(volumes, lesion, SPEC), kind


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_brats_layout_gives_dataset_files(tmp_path, suffix):
    root = make_brats_root(tmp_path / "brats", n_per_grade=8, suffix=suffix)
    result = prepare_site(root, "brats", tmp_path / "out", SPEC, seed=0, workers=2)
    dataset = read_dataset(tmp_path / "out")
    assert dataset.images.shape == (16, 4, 16, 16) and dataset.images.dtype == np.float32
    assert dataset.images.min() >= -1 and dataset.images.max() <= 1
    assert list(dataset.subjects.columns) == [*SUBJECT_COLUMNS, *PROVENANCE_COLUMNS]
    assert (
        set(dataset.subjects["orientation"]) == {"RAS"}
        and not dataset.subjects["resampled"].notna().any()
    )
    assert (dataset.subjects["label"] == (dataset.subjects["grade"] == "HGG")).all()
    assert not dataset.subjects["synthetic"].any()
    # LGG subjects have no enhancing label: the mask falls back to the core.
    kinds = dataset.subjects.groupby("grade")["mask_source"].unique()
    assert list(kinds["LGG"]) == ["core"] and list(kinds["HGG"]) == ["enhancing"]
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["data_hash"] == result.dataset.data_hash and meta["patch_size"] == 16
    assert pd.read_csv(tmp_path / "out" / "exclusions.csv").empty


def test_manifest_layout_binary_mask_is_enhancing(manifest_csv, tmp_path):
    result = prepare_site(manifest_csv, "clinic", tmp_path / "out", SPEC, workers=1)
    subjects = result.dataset.subjects
    assert len(subjects) == 16 and set(subjects["site"]) == {"clinic"}
    assert set(subjects["mask_source"]) == {"enhancing"}
    assert set(subjects["spacing_mm"]) == {"2x2x3"}


@pytest.mark.parametrize("axcodes", [("L", "P", "S"), ("P", "I", "R"), ("S", "R", "A")])
def test_orientation_does_not_change_the_patch(tmp_path, axcodes):
    images, seg = synthetic_subject(4)
    reference, _ = _patch(write_subject(tmp_path / "ras", "s", images, seg))
    turned, _ = _patch(write_subject(tmp_path / "turned", "s", images, seg, axcodes=axcodes))
    np.testing.assert_allclose(turned.pixels, reference.pixels, atol=1e-6)
    assert turned.slice_index == reference.slice_index


def test_patch_covers_a_fixed_field_of_view(tmp_path):
    """Twice the voxel size, same anatomy: the patch should barely change."""
    images, seg = synthetic_subject(5, shape=(40, 40, 16))
    fine, _ = _patch(
        write_subject(tmp_path / "fine", "s", images, seg, ras_affine((40, 40, 16), (1, 1, 3)))
    )
    coarse_images, coarse_seg = images[:, ::2, ::2], seg[::2, ::2]
    coarse, _ = _patch(
        write_subject(
            tmp_path / "coarse", "s", coarse_images, coarse_seg, ras_affine((20, 20, 16), (2, 2, 3))
        )
    )
    assert abs(coarse.lesion_area_mm2 - fine.lesion_area_mm2) / fine.lesion_area_mm2 < 0.25
    assert np.corrcoef(fine.pixels.ravel(), coarse.pixels.ravel())[0, 1] > 0.6


@pytest.mark.parametrize(
    ("labels", "kind"), [((1, 2, 4), "enhancing"), ((1, 2), "core"), ((2,), "whole")]
)
def test_mask_fallback(tmp_path, labels, kind):
    images, seg = synthetic_subject(6, labels=labels)
    patch, used = _patch(write_subject(tmp_path, "s", images, seg))
    assert used == kind and patch.lesion_area_mm2 > 0


def test_splits_are_deterministic_stratified_and_disjoint():
    ids = [f"s{i:03d}" for i in range(60)]
    grades = ["LGG" if i % 4 == 0 else "HGG" for i in range(60)]
    splits = make_splits(ids, grades, seed=1)
    shuffled = make_splits(ids[::-1], grades[::-1], seed=1)
    assert splits == shuffled
    assert splits != make_splits(ids, grades, seed=2)
    test = set(splits["test"])
    assert len(test) == 12 and sum(grades[ids.index(s)] == "LGG" for s in test) == 3
    folds = [set(f) for f in splits["folds"]]
    assert len(folds) == 5 and all(not (f & test) for f in folds)
    assert set().union(*folds) | test == set(ids)
    assert sum(len(f) for f in folds) == 48
    for k in range(5):
        train = set(training_subjects(splits, k))
        assert not (train & test) and not (train & folds[k])


def test_prepare_writes_splits_without_test_leak(brats_root, tmp_path):
    prepare_site(brats_root, "brats", tmp_path / "a", SPEC, seed=3, workers=1)
    prepare_site(brats_root, "brats", tmp_path / "b", SPEC, seed=3, workers=2)
    splits = read_splits(tmp_path / "a")
    assert splits == read_splits(tmp_path / "b")
    np.testing.assert_array_equal(
        read_dataset(tmp_path / "a").images, read_dataset(tmp_path / "b").images
    )
    assert not set(splits["test"]) & set(training_subjects(splits))


def test_prepare_is_reused_until_the_source_changes_on_disk(brats_root, project_home):
    def prepared():
        overrides = {"site": "brats", "data": str(brats_root), "workers": 1, "patch_size": 16}
        return run_prepare(build_config(PrepareConfig, overrides)).run_id

    first = prepared()
    assert prepared() == first, "same parameters, same files: reused"
    flair = sorted(brats_root.rglob("*flair.nii.gz"))[0]
    stat = flair.stat()
    os.utime(flair, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file was rewritten
    edited = prepared()
    assert edited != first
    images, seg = synthetic_subject(999, "HGG")
    write_subject(brats_root / "HGG" / "Sub_HGG_999", "Sub_HGG_999", images, seg)
    assert prepared() not in (first, edited), "a subject added: prepared again"
