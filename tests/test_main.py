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
