"""Real cohorts as they arrive: the BraTS releases' layouts (2019 tree, 2020 flat with
name_mapping.csv, 2021/2023 names with a grades CSV), and small evaluation-only sites.

Every test writes real NIfTI files in the release's own layout, quirks included.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from conftest import make_brats_root, ras_affine, synthetic_subject, write_nifti
from step_helpers import dataset_folder, runs_of
from test_cross_eval import constant_ensemble_run

from glioma.config import (
    PROFILES,
    CrossEvalConfig,
    MainConfig,
    PrepareConfig,
    TrainClsConfig,
    build_config,
)
from glioma.data.card import reason_kind
from glioma.data.layouts import SUFFIXES_2019, SUFFIXES_2023
from glioma.data.patches import PatchSpec
from glioma.data.prepare import prepare_site
from glioma.data.splits import read_splits, require_training
from glioma.errors import DataError
from glioma.pipeline.given import given
from glioma.pipeline.graph import Graph
from glioma.pipeline.invoke import StudyFailed, run_entry
from glioma.pipeline.steps.cross_eval import cross_eval_node
from glioma.pipeline.steps.prepare import prepare_for, run_prepare
from glioma.pipeline.steps.train_cls import run_train_cls
from glioma.pipeline.study import study_graph
from glioma.tracking import configure_tracking

SPEC = PatchSpec(16, 48.0)
MAPPING_2020 = (
    "Grade",
    "BraTS_2017_subject_ID",
    "BraTS_2018_subject_ID",
    "TCGA_TCIA_subject_ID",
    "BraTS_2019_subject_ID",
    "BraTS_2020_subject_ID",
)


def write_flat_subject(root: Path, sid: str, seed: int, grade: str, naming: str) -> Path:
    """One subject folder of a flat release; 2023 relabels the enhancing tumour 3."""
    images, seg = synthetic_subject(seed, grade, labels=(1, 2) if grade == "LGG" else (1, 2, 4))
    suffixes = SUFFIXES_2023 if naming == "2023" else SUFFIXES_2019
    if naming == "2023":
        seg = np.where(seg == 4, 3, seg).astype(np.uint8)
    folder = root / sid
    for channel, key in enumerate(("t1", "t1ce", "t2", "flair")):
        write_nifti(folder / f"{sid}{suffixes[key]}.nii.gz", images[channel], ras_affine(seg.shape))
    write_nifti(folder / f"{sid}{suffixes['seg']}.nii.gz", seg, ras_affine(seg.shape))
    return folder


def write_csv(path: Path, columns, rows) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def brats2020_root(tmp_path: Path, n_per_grade: int = 8) -> Path:
    """MICCAI_BraTS2020_TrainingData: flat folders, name_mapping.csv, subject 355's odd mask."""
    root = tmp_path / "MICCAI_BraTS2020_TrainingData"
    rows = []
    for i in range(2 * n_per_grade + 1):
        sid = f"BraTS20_Training_{i + 350:03d}"
        grade = "HGG" if i % 2 else "LGG"
        folder = write_flat_subject(root, sid, i, grade, "2019")
        if sid == "BraTS20_Training_355":  # as shipped: the mask under a scanner-made name
            (folder / f"{sid}_seg.nii.gz").rename(folder / "W39_1998.09.19_Segm.nii.gz")
        grade_cell = "" if i == 2 * n_per_grade else grade  # the last one has no grade
        rows.append([grade_cell, "NA", "NA", "NA", f"BraTS19_x_{i}", sid])
    write_csv(root / "name_mapping.csv", MAPPING_2020, rows)
    return root


def test_brats2020_flat_layout_takes_grades_from_name_mapping(tmp_path):
    root = brats2020_root(tmp_path)
    result = prepare_site(root, "brats20", tmp_path / "out", SPEC, workers=1)
    subjects = result.dataset.subjects.set_index("subject_id")
    assert len(subjects) == 16 and (subjects["grade"] == "HGG").sum() == 8
    assert subjects.loc["BraTS20_Training_351", "grade"] == "HGG"
    assert "BraTS20_Training_355" in subjects.index  # its W39_..._Segm mask was found
    assert any("W39_1998.09.19_Segm" in note for note in result.notes)
    [excluded] = result.exclusions
    assert excluded.subject_id == "BraTS20_Training_366" and "no grade" in excluded.reason
    assert "name_mapping.csv" in excluded.reason


def test_brats2019_tree_checks_its_name_mapping(tmp_path):
    root = make_brats_root(tmp_path / "MICCAI_BraTS_2019_Data_Training", n_per_grade=8)
    columns = MAPPING_2020[:-1]
    rows = [["HGG" if "HGG" in p.name else "LGG", "NA", "NA", "NA", p.name]
            for p in sorted(root.glob("*GG/*"))]  # fmt: skip
    next(r for r in rows if r[-1] == "Sub_LGG_002")[0] = "HGG"  # the mapping disagrees
    write_csv(root / "name_mapping.csv", columns, rows)
    result = prepare_site(root, "brats", tmp_path / "out", SPEC, workers=1)
    [excluded] = result.exclusions
    assert excluded.subject_id == "Sub_LGG_002" and "name_mapping.csv says HGG" in excluded.reason
    assert result.evaluation_only  # 8 HGG + 7 LGG: too few LGG for a test set and 5 folds


def test_brats2023_names_and_labels_with_grades_beside_the_root(tmp_path, capsys):
    root = tmp_path / "ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData"
    rows = []
    for i in range(16):
        sid, grade = f"BraTS-GLI-{i:05d}-000", ("HGG" if i < 8 else "LGG")
        write_flat_subject(root, sid, i, grade, "2023")
        rows.append([sid, grade])
    with pytest.raises(DataError, match="carries no grade; give --grades") as info:
        prepare_site(root, "gli", tmp_path / "out", SPEC, workers=1)
    assert "\n" not in str(info.value)
    write_csv(tmp_path / "grades.csv", ["subject_id", "grade"], rows[:-1])
    result = prepare_site(root, "gli", tmp_path / "out", SPEC, workers=1)
    subjects = result.dataset.subjects
    assert len(subjects) == 15
    assert result.notes[0].startswith("BraTS 2023+ layout: grades come from outside the release")
    kinds = subjects.groupby("grade")["mask_source"].unique()
    assert list(kinds["HGG"]) == ["enhancing"] and list(kinds["LGG"]) == ["core"]  # label 3 = ET
    [excluded] = result.exclusions
    assert excluded.subject_id == "BraTS-GLI-00015-000" and "no grade" in excluded.reason


def test_brats2021_names_with_a_given_grades_file(tmp_path):
    root = tmp_path / "BraTS2021_Training_Data"
    rows = []
    for i in range(16):
        sid = f"BraTS2021_{i:05d}"
        write_flat_subject(root, sid, i, "HGG" if i % 2 else "LGG", "2019")
        rows.append([sid, "hgg" if i % 2 else "LGG"])  # case is not a grade
    grades = write_csv(tmp_path / "elsewhere.csv", ["subject_id", "grade"], rows)
    result = prepare_site(root, "b21", tmp_path / "out", SPEC, workers=1, grades=grades)
    assert len(result.dataset.subjects) == 16 and not result.exclusions
    assert not result.evaluation_only


def small_site(tmp_path: Path) -> Path:
    """A valid BraTS-layout cohort of 6 HGG and 4 LGG: too small to train on."""
    root = make_brats_root(tmp_path / "small", n_per_grade=6)
    for i in range(4, 6):
        for path in (root / "LGG" / f"Sub_LGG_{i:03d}").iterdir():
            path.unlink()
        (root / "LGG" / f"Sub_LGG_{i:03d}").rmdir()
    return root


def test_small_site_is_prepared_as_evaluation_only(tmp_path, project_home, capsys):
    root = small_site(tmp_path)
    config = build_config(PrepareConfig, {"data": str(root), "site": "clinic"})
    result = run_prepare(config)
    out = capsys.readouterr().out
    assert "evaluation only (6 HGG, 4 LGG: fewer than 8 of each grade" in out
    folder = dataset_folder(result)
    splits = read_splits(folder)
    assert splits["evaluation_only"] and splits["test"] == [] and splits["folds"] == []
    assert json.loads((folder / "meta.json").read_text())["evaluation_only"] is True
    run = mlflow.get_run(result.run_id)
    assert run.data.tags["evaluation_only"] == "true"
    assert "data_card.png" in {
        a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)
    }
    with pytest.raises(DataError, match=r"site clinic is evaluation-only \(6 HGG, 4 LGG"):
        require_training(splits, "clinic")
    assert len(pd.read_csv(folder / "subjects.csv")) == 10


def test_an_evaluation_only_site_is_a_cross_eval_target_and_no_training_site(
    tmp_path, project_home, monkeypatch, capsys
):
    monkeypatch.setitem(PROFILES["quick"], "prepare", {"patch_size": 16, "fov_mm": 48.0})
    configure_tracking()
    root = small_site(tmp_path)
    ensembles = {
        "baseline": constant_ensemble_run("phantom-a", "baseline", 10.0, 16),  # always HGG
        "augment": constant_ensemble_run("phantom-a", "augment", -10.0, 16),  # always LGG
    }
    config = build_config(
        CrossEvalConfig,
        {"setups": "augment,baseline", "n_boot": "200", "target_site": "clinic"},
    )
    target = prepare_for("clinic", str(root), profile="quick", seed=0)
    classifiers = {setup: given(run, "train_cls") for setup, run in ensembles.items()}
    node = cross_eval_node(target, classifiers, config)
    result = run_entry(Graph([node]), config).result(node)
    rows = pd.read_csv(
        mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/direction_results.csv")
    ).set_index("setup")
    assert rows.loc["baseline", "n_subjects"] == 10
    assert rows.loc["baseline", "accuracy"] == pytest.approx(0.6)  # 6 HGG of 10
    assert rows.loc["augment", "accuracy"] == pytest.approx(0.4)
    training = build_config(TrainClsConfig, {"site": "clinic", "data": str(root)})
    with pytest.raises(DataError, match=r"^site clinic is evaluation-only \(6 HGG, 4 LGG"):
        run_train_cls(training)  # refused before anything runs: discovery alone is too few
    assert runs_of("train_cls_fold") == []
    given_run = {"prepare_run": result.tags["target_prepare_run"]}
    with pytest.raises(StudyFailed) as info:  # a finished prepare run: each fold step refuses
        run_train_cls(build_config(TrainClsConfig, given_run))
    report = str(info.value)
    assert "site clinic is evaluation-only (6 HGG, 4 LGG" in report
    assert report.count("evaluation-only") == 1  # five folds refused for one reason: said once
    assert capsys.readouterr().out.count("evaluation-only") == 1
    failed = [r for r in runs_of("train_cls_fold") if r.info.status == "FAILED"]
    assert len(failed) == 5 and all(r.data.tags.get("site") == "clinic" for r in failed)


def test_main_refuses_to_train_on_an_evaluation_only_site_before_anything_runs(tmp_path):
    root = small_site(tmp_path)
    both = build_config(MainConfig, {"data_b": str(root), "site_b": "small"})
    with pytest.raises(DataError, match=r"site small is evaluation-only .*--directions a-to-b"):
        study_graph(both)
    one = build_config(MainConfig, {"data_b": str(root), "site_b": "small", "directions": "a-to-b"})
    assert study_graph(one).steps()["cross_eval"] == 1


def test_the_data_card_groups_exclusions_by_reason_without_paths():
    reasons = [
        "/data/a/s1_t2.nii.gz: not skull-stripped (12 % of the border voxels are bright); run ...",
        "/data/b/s2_t1.nii.gz: not skull-stripped (background not zero on 80 % of the border)",
        "/data/c/t1ce: 2 series in one folder (series_3, series_4); give one series per folder",
        "missing t2 (expected s4_t2 as .nii.gz or .nii)",
    ]
    kinds = [reason_kind(r) for r in reasons]
    assert kinds[0] == kinds[1] == "not skull-stripped"
    assert kinds[2] == "# series in one folder" and kinds[3] == "missing t2"
