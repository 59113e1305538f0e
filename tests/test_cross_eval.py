"""cross_eval: the statistics on known cases, and the step on models with known predictions."""

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score
from step_helpers import dataset_folder, runs_of

from glioma.classify.export import save_ensemble, save_fold_model
from glioma.config import PROFILES, CrossEvalConfig, build_config
from glioma.data.dataset import read_dataset
from glioma.evaluate.stats import (
    bootstrap_ci,
    count_metrics,
    majority_accuracy,
    mcnemar_exact,
    point_estimates,
)
from glioma.pipeline.given import given
from glioma.pipeline.graph import Graph
from glioma.pipeline.invoke import run_entry
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.steps.cross_eval import cross_eval_node
from glioma.pipeline.steps.prepare import prepare_for
from glioma.tracking import configure_tracking


def test_mcnemar_on_a_known_table():
    labels = np.ones(20, int)
    first = np.array([1] * 8 + [0] * 2 + [1] * 5 + [0] * 5)  # right alone on 8 subjects
    second = np.array([0] * 8 + [1] * 2 + [1] * 5 + [0] * 5)  # right alone on 2
    result = mcnemar_exact(labels, first, second)
    assert (result["only_first_right"], result["only_second_right"]) == (8, 2)
    assert result["p_value"] == pytest.approx(2 * (1 + 10 + 45) / 1024)  # exact binomial
    assert mcnemar_exact(labels, first, first)["p_value"] == 1.0


def test_count_metrics_equal_sklearn():
    rng = np.random.default_rng(0)
    y, p = (rng.random(300) < 0.7).astype(int), (rng.random(300) < 0.6).astype(int)
    counts = [((y == a) & (p == b)).sum() for a, b in ((1, 1), (0, 1), (0, 0), (1, 0))]
    metrics = count_metrics(*counts)
    assert metrics["f1"] == pytest.approx(f1_score(y, p))
    assert metrics["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p))
    assert metrics["specificity"] == pytest.approx(recall_score(y, p, pos_label=0))
    assert majority_accuracy(np.array([1, 1, 1, 0])) == 0.75


def test_bootstrap_interval_holds_the_estimate_and_narrows_with_more_subjects():
    def noisy(n, seed):
        rng = np.random.default_rng(seed)
        y = (rng.random(n) < 0.7).astype(int)
        return y, np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)

    widths = []
    for n in (40, 400):
        y, s = noisy(n, 1)
        point, ci = point_estimates(y, s), bootstrap_ci(y, s, n_boot=500, seed=0)
        for name in ("accuracy", "f1", "macro_f1", "balanced_accuracy", "roc_auc"):
            assert ci[name][0] <= point[name] <= ci[name][1], name
        widths.append(ci["accuracy"][1] - ci["accuracy"][0])
    assert widths[1] < 0.5 * widths[0]  # ~ 1 / sqrt(n): 10x the subjects, ~1/3 the width


class ConstantLogit(torch.nn.Module):
    """A 'classifier' with a known answer: the same logit for every image."""

    def __init__(self, logit: float):
        super().__init__()
        self.logit = torch.nn.Parameter(torch.tensor(float(logit)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit.expand(len(x))


def constant_ensemble_run(site: str, setup: str, logit: float, size: int) -> str:
    """A finished train_cls run whose ensemble of five folds always answers ``logit``."""
    with mlflow.start_run() as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags({"step": "train_cls", "site": site, "setup": setup})
        folds = {
            f"fold{k}": str(save_fold_model(ConstantLogit(logit), Path(tmp) / f"fold{k}", size))
            for k in range(5)
        }
        example = np.zeros((2, 4, size, size), np.float32)
        folder = Path(tmp) / "ensemble"
        save_ensemble(folds, folder, combine="mean_prob", metadata={}, example=example)
        mlflow.log_artifacts(str(folder), "ensemble")
        mlflow.set_tag("ensemble_uri", f"runs:/{run.info.run_id}/ensemble")
    return run.info.run_id


@pytest.fixture
def constant_ensembles(project_home, monkeypatch):
    monkeypatch.setitem(
        PROFILES["quick"], "prepare", {"patch_size": 16, "fov_mm": 64.0, "phantom_scale": 0.01}
    )
    configure_tracking()  # the project's store, where cross_eval looks
    return {
        "baseline": constant_ensemble_run("phantom-a", "baseline", 10.0, 16),  # always HGG
        "augment": constant_ensemble_run("phantom-a", "augment", -10.0, 16),  # always LGG
    }


def test_cross_eval_with_known_predictions(constant_ensembles, project_home):
    config = build_config(CrossEvalConfig, {"setups": "augment,baseline", "n_boot": "200"})
    target = prepare_for("phantom-b", "phantom", profile="quick", seed=0)
    classifiers = {setup: given(run, "train_cls") for setup, run in constant_ensembles.items()}
    node = cross_eval_node(target, classifiers, config)
    result = run_entry(Graph([node]), config).result(node)
    output = pd.read_csv(
        mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/direction_results.csv")
    )
    labels = read_dataset(
        dataset_folder(NodeResult("prepare", result.tags["target_prepare_run"], {}))
    )
    labels = labels.subjects["label"].to_numpy()
    hgg, n = int(labels.sum()), len(labels)
    rows = output.set_index("setup")
    assert list(output["setup"]) == ["baseline", "augment"]  # baseline first
    assert rows.loc["baseline", "accuracy"] == pytest.approx(hgg / n)
    assert rows.loc["baseline", "sensitivity"] == 1.0 and rows.loc["baseline", "specificity"] == 0
    assert rows.loc["baseline", "balanced_accuracy"] == 0.5
    assert rows.loc["augment", "accuracy"] == pytest.approx((n - hgg) / n)
    assert rows.loc["augment", "f1"] == 0.0
    majority = mlflow.get_run(result.run_id).data.metrics["majority_accuracy"]
    assert majority == pytest.approx(max(hgg, n - hgg) / n)
    assert rows.loc["augment", "only_this_right"] == n - hgg
    assert rows.loc["augment", "only_baseline_right"] == hgg
    assert result.tags["train_cls_baseline_run"] == constant_ensembles["baseline"]  # lineage
    nested = runs_of("cross_eval_setup")
    assert {r.data.tags["setup"] for r in nested} == {"baseline", "augment"}
    assert {r.data.tags["direction"] for r in nested} == {"phantom-a-to-phantom-b"}
    assert all(r.data.tags["mlflow.parentRunId"] == result.run_id for r in nested)
    assert all("accuracy_ci_low" in r.data.metrics for r in nested)
    table = mlflow.artifacts.load_text(f"runs:/{result.run_id}/direction_results.md")
    assert table.count("| phantom-a-to-phantom-b |") == 2
