"""``main`` end to end with a tiny profile: every step once, then a rerun that reuses them all."""

import mlflow
import pytest
from step_helpers import TINY_DDPM

from glioma.config import PROFILES, MainConfig, build_config
from glioma.pipeline import run_main

TINY_PROFILE = {
    "prepare": {"patch_size": 16, "fov_mm": 64.0, "phantom_scale": 0.01},
    "train_ddpm": dict(TINY_DDPM),
    "sample": {"sampler": "ddim", "steps": 5},
    "score_gen": {"inception": "off", "kid_subsets": 5, "msssim_pairs": 20},
    "train_cls": {"arch": "resnet18", "epochs": 2, "batch_size": 8, "imagenet_weights": "none"},
}


@pytest.fixture
def tiny_profile(monkeypatch):
    monkeypatch.setitem(PROFILES, "quick", TINY_PROFILE)


def test_main_runs_the_study_then_reuses_every_step(project_home, tiny_profile):
    config = build_config(MainConfig, {"n_boot": "100"})
    first = run_main(config)
    assert first.ran > 0 and first.reused == 0
    results = first.results
    assert len(results) == 8  # four setups x two directions
    assert set(results["direction"]) == {"phantom-a-to-phantom-b", "phantom-b-to-phantom-a"}
    assert set(results["setup"]) == {"baseline", "augment", "ddpm", "ddpm_mi"}
    client = mlflow.MlflowClient()
    names = {a.path for a in client.list_artifacts(first.run_id)}
    assert {"study_heatmaps.png", "study_results.md", "study_results.csv"} <= names
    steps = {
        r.data.tags["step"]
        for r in mlflow.search_runs(search_all_experiments=True, output_format="list")
    }
    assert {"prepare", "train_ddpm", "sample", "score_gen", "train_cls", "cross_eval"} <= steps
    second = run_main(config)
    assert second.ran == 0 and second.reused == first.ran
    assert second.results.equals(first.results)


def test_a_fold_ddpm_trained_as_a_separate_job_is_reused_by_the_study(project_home, tiny_profile):
    """The README's cluster fan-out: one job per fold DDPM, then the study finds it."""
    from entrypoints import train_ddpm as train_ddpm_entry
    from glioma.pipeline.fold_synthetic import fold_ddpm_run
    from glioma.pipeline.upstream import prepared_site

    prepare_run = prepared_site("phantom-a", "phantom", "quick", 0).run_id
    job = ["--prepare_run", prepare_run, "--grade", "HGG", "--fold", "3", "--mi_weight", "0.1"]
    assert train_ddpm_entry.main(job) == 0
    trained = mlflow.search_runs(
        search_all_experiments=True, filter_string="tags.step = 'train_ddpm'", output_format="list"
    )
    assert len(trained) == 1
    found = fold_ddpm_run(prepare_run, "HGG", "mi", 3, 0.1, "quick", 0)
    assert found == trained[0].info.run_id
