"""cross_eval: the statistics on known cases, and the step on models with known predictions."""

import mlflow
import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

from glioma.config import PROFILES, CrossEvalConfig, TrainClsConfig, build_config
from glioma.data.dataset import read_dataset
from glioma.evaluate.stats import (
    bootstrap_ci,
    count_metrics,
    majority_accuracy,
    mcnemar_exact,
    point_estimates,
)
from glioma.pipeline.cross_eval_step import run_cross_eval
from glioma.pipeline.train_cls_step import build_ensemble, log_fold_model
from glioma.tracking import configure_tracking
from glioma.tracking.registry import cls_model_name, register


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


def register_constant_champion(site: str, setup: str, logit: float, size: int) -> None:
    config = build_config(TrainClsConfig, {"site": site, "setup": setup})
    versions = {}
    with mlflow.start_run():
        for k in range(5):
            info = log_fold_model(ConstantLogit(logit), size)
            versions[str(k)] = register(info.model_uri, cls_model_name(site, setup), f"fold{k}")
        build_ensemble(config, versions, np.zeros((2, 4, size, size), np.float32))


@pytest.fixture
def tiny_sites(project_home, monkeypatch):
    monkeypatch.setitem(
        PROFILES["quick"], "prepare", {"patch_size": 16, "fov_mm": 64.0, "phantom_scale": 0.01}
    )
    configure_tracking()  # the project's store, where cross_eval looks
    for site in ("phantom-a", "phantom-b"):
        register_constant_champion(site, "baseline", 10.0, 16)  # always HGG
        register_constant_champion(site, "augment", -10.0, 16)  # always LGG


def test_cross_eval_with_known_predictions_both_directions(tiny_sites, project_home):
    config = build_config(CrossEvalConfig, {"setups": "augment,baseline", "n_boot": "200"})
    output = run_cross_eval(config)
    target = read_dataset(project_home / "data" / "prepared" / "phantom-b")
    labels = target.subjects["label"].to_numpy()
    hgg, n = int(labels.sum()), len(labels)
    rows = output.results.set_index("setup")
    assert list(output.results["setup"]) == ["baseline", "augment"]  # baseline first
    assert rows.loc["baseline", "accuracy"] == pytest.approx(hgg / n)
    assert rows.loc["baseline", "sensitivity"] == 1.0 and rows.loc["baseline", "specificity"] == 0
    assert rows.loc["baseline", "balanced_accuracy"] == 0.5
    assert rows.loc["augment", "accuracy"] == pytest.approx((n - hgg) / n)
    assert rows.loc["augment", "f1"] == 0.0
    assert output.majority_accuracy == pytest.approx(max(hgg, n - hgg) / n)
    assert rows.loc["augment", "only_this_right"] == n - hgg
    assert rows.loc["augment", "only_baseline_right"] == hgg
    nested = mlflow.search_runs(
        search_all_experiments=True,
        filter_string="tags.step = 'cross_eval_setup'",
        output_format="list",
    )
    assert {r.data.tags["setup"] for r in nested} == {"baseline", "augment"}
    assert {r.data.tags["direction"] for r in nested} == {"phantom-a-to-phantom-b"}
    assert all("accuracy_ci_low" in r.data.metrics for r in nested)
    client = mlflow.MlflowClient()
    assert "study_heatmaps.png" not in {a.path for a in client.list_artifacts(output.run_id)}
    reverse = run_cross_eval(
        build_config(
            CrossEvalConfig,
            {"source": "phantom-b", "target": "phantom-a", "setups": "augment,baseline",
             "n_boot": "200"},
        )
    )  # fmt: skip
    names = {a.path for a in client.list_artifacts(reverse.run_id)}
    assert {"study_heatmaps.png", "study_results.md", "study_results.csv"} <= names
    table = mlflow.artifacts.load_text(f"runs:/{reverse.run_id}/study_results.md")
    assert (
        table.count("| phantom-a-to-phantom-b |") == 2
        and table.count("phantom-b-to-phantom-a") == 2
    )
