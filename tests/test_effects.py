"""Paired differences to baseline over seeds and subjects: known cases, the test's level, the
interval's two sources of variance, the tables and the forest plot; a two-seed study end to end
(here, not in test_main.py, so that pytest-xdist runs it beside the Ray study)."""

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score
from test_main import graph_signatures, node_runs, run_signatures

from glioma.config import MainConfig, build_config
from glioma.evaluate.effects import (
    EFFECT_METRICS,
    PairedOutputs,
    paired_effect,
    per_seed,
    study_effects,
)
from glioma.evaluate.figures import forest_figure
from glioma.evaluate.tables import effects_table, seed_summary, seeds_table
from glioma.pipeline.study import run_main, study_graph
from glioma.scoring.report import seed_comparison_table


def outputs(rng, n: int = 60, seeds: int = 3, gain: float = 0.0, spread: float = 0.0):
    """Labels, a noisy baseline and a setup ``gain`` better, ``spread`` apart between seeds."""
    labels = rng.integers(0, 2, n)
    noise = lambda: rng.random((seeds, n))  # noqa: E731
    baseline = np.clip(0.25 * labels + 0.75 * noise(), 0, 1)
    shift = gain + spread * np.linspace(-1, 1, seeds)[:, None]
    setup = np.clip((0.25 + shift) * labels + (0.75 - shift) * noise(), 0, 1)
    return PairedOutputs(labels, setup, baseline, tuple(range(seeds)))


def test_each_seed_point_is_that_seeds_difference_on_all_subjects():
    paired = outputs(np.random.default_rng(0), gain=0.2)
    found = per_seed(paired)
    metrics = {
        "balanced_accuracy": lambda y, p: balanced_accuracy_score(y, p >= 0.5),
        "macro_f1": lambda y, p: f1_score(y, p >= 0.5, average="macro"),
        "roc_auc": roc_auc_score,
    }
    for name, metric in metrics.items():
        expected = [
            metric(paired.labels, s) - metric(paired.labels, b)
            for s, b in zip(paired.setup, paired.baseline)
        ]
        assert found[name] == pytest.approx(expected, abs=1e-12)


def test_identical_setups_differ_by_nothing():
    paired = outputs(np.random.default_rng(1))
    same = PairedOutputs(paired.labels, paired.baseline, paired.baseline, paired.seeds)
    for row in paired_effect(same, n_boot=200):
        assert (row["difference"], row["ci_low"], row["ci_high"]) == (0.0, 0.0, 0.0)
        assert row["p_value"] == 1.0


def test_a_clear_gain_is_found_and_the_pooled_test_holds_its_level_under_the_null():
    rng = np.random.default_rng(2)
    clear = {r["metric"]: r for r in paired_effect(outputs(rng, gain=0.5), n_boot=500)}
    assert all(clear[m]["ci_low"] > 0 and clear[m]["p_value"] < 0.01 for m in EFFECT_METRICS)
    rejected = [
        paired_effect(outputs(rng, n=30, seeds=2), n_boot=200, seed=k)[0]["p_value"] < 0.05
        for k in range(200)
    ]
    assert np.mean(rejected) <= 0.09  # 5 % nominal; 200 null studies


def test_the_interval_holds_the_seeds_variance_and_one_seed_is_the_subject_bootstrap():
    """Seeds that repeat one run add nothing to the subjects' interval; seeds that disagree
    (the gain, none, and a larger gain) widen it."""
    one = outputs(np.random.default_rng(3), seeds=1, gain=0.2)
    repeat = lambda a: np.repeat(a, 3, axis=0)  # noqa: E731
    same = PairedOutputs(one.labels, repeat(one.setup), repeat(one.baseline), (0, 1, 2))
    better = np.clip(one.setup + 0.2 * (one.labels - 0.5), 0, 1)
    varied = np.concatenate([one.setup, one.baseline, better])
    disagree = PairedOutputs(one.labels, varied, repeat(one.baseline), (0, 1, 2))
    single, calm, wild = (paired_effect(o, n_boot=1000) for o in (one, same, disagree))
    for alone, repeated, spread in zip(single, calm, wild):
        assert np.isnan(alone["seed_sd"]) and len(alone["seed_differences"]) == 1
        interval = (repeated["ci_low"], repeated["ci_high"])
        assert interval == pytest.approx((alone["ci_low"], alone["ci_high"]), abs=1e-12)
        assert repeated["seed_sd"] == pytest.approx(0.0, abs=1e-12) and spread["seed_sd"] > 0.05
        width = lambda r: r["ci_high"] - r["ci_low"]  # noqa: E731
        assert width(spread) > 1.2 * width(repeated)
        assert alone["ci_low"] < alone["difference"] < alone["ci_high"]


def long_predictions(rng, directions=("a-to-b", "b-to-a"), seeds=(0, 1)) -> pd.DataFrame:
    rows = []
    for direction in directions:
        labels = rng.integers(0, 2, 40)
        for seed in seeds:
            for k, setup in enumerate(("baseline", "augment", "ddpm")):
                prob = np.clip((0.2 + 0.1 * k) * labels + 0.7 * rng.random(40), 0, 1)
                rows += [
                    {
                        "direction": direction,
                        "seed": seed,
                        "setup": setup,
                        "subject_id": f"s{i}",
                        "label": labels[i],
                        "prob_hgg": prob[i],
                    }  # fmt: skip
                    for i in range(40)
                ]
    return pd.DataFrame(rows)


def test_study_effects_pairs_subjects_by_id_and_the_forest_plot_has_a_row_each(tmp_path):
    predictions = long_predictions(np.random.default_rng(5))
    effects = study_effects(predictions, n_boot=200)
    assert len(effects) == 2 * 2 * 3  # directions x setups other than baseline x metrics
    assert set(effects["n_seeds"]) == {2} and set(effects["n_subjects"]) == {40}
    shuffled = study_effects(predictions.sample(frac=1.0, random_state=0), n_boot=200)
    assert shuffled["difference"].to_numpy() == pytest.approx(effects["difference"].to_numpy())
    table = effects_table(effects)
    assert list(table.columns) == ["direction", "setup", *EFFECT_METRICS, "n_seeds"]
    assert len(table) == 4 and table.iloc[0]["roc_auc"].count("p=") == 1
    figure = forest_figure(effects)
    assert len(figure.axes) == 3 and all(len(ax.get_yticks()) == 4 for ax in figure.axes)
    figure.savefig(tmp_path / "forest.png")
    assert (tmp_path / "forest.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="lack subjects"):
        study_effects(predictions.drop(index=predictions.index[5]), n_boot=100)
    assert study_effects(predictions[predictions["setup"] != "baseline"]).empty


def test_over_seeds_the_tables_say_mean_and_sd():
    results = pd.DataFrame(
        [
            {
                "direction": "a-to-b",
                "setup": "baseline",
                "seed": seed,
                "n_subjects": 40,
                **{
                    m: value
                    for m in (
                        "accuracy",
                        "f1",
                        "macro_f1",
                        "balanced_accuracy",
                        "roc_auc",
                        "sensitivity",
                        "specificity",
                    )
                },
            }  # fmt: skip
            for seed, value in ((0, 0.8), (1, 0.9), (2, 0.7))
        ]
    )
    summary = seed_summary(results)
    assert summary.loc[0, "balanced_accuracy"] == pytest.approx(0.8)
    assert summary.loc[0, "balanced_accuracy_sd"] == pytest.approx(0.1)
    assert summary.loc[0, "n_seeds"] == 3
    assert seeds_table(summary).loc[0, "balanced_accuracy"] == "0.800 ± 0.100"


def test_the_generative_comparison_over_seeds_pairs_mi_with_std_by_seed():
    metrics = {
        "std": {0: {"fd_radiomic": 10.0}, 1: {"fd_radiomic": 14.0}, 2: {"fd_radiomic": 12.0}},
        "mi": {0: {"fd_radiomic": 9.0}, 1: {"fd_radiomic": 15.0}, 2: {"fd_radiomic": 9.0}},
    }
    table = seed_comparison_table(metrics).set_index("metric")
    row = table.loc["fd_radiomic"]
    assert (row["std"], row["std_sd"]) == pytest.approx((12.0, 2.0))
    assert (row["mi"], row["mi_sd"]) == pytest.approx((11.0, np.sqrt(12.0)))
    assert row["mi_minus_std"] == pytest.approx(-1.0)  # (-1 + 1 - 3) / 3
    assert row["mi_minus_std_sd"] == pytest.approx(2.0)
    assert row["n_seeds"] == 3 and row["better"] == "lower"
    assert list(table.index) == ["fd_radiomic"]  # metrics neither variant has are left out


def test_a_study_over_two_seeds_pairs_each_setup_with_baseline(project_home, tiny_profile):
    """--seeds 0,1: one prepare per site, the rest per seed; on the main run the results of both
    seeds, their mean and SD, and the paired differences whose seed points are each seed's own
    cross_eval figures; seed 0 is the one-seed study, which then reuses every step."""
    settings = {"setups": "baseline,augment", "directions": "a-to-b", "n_boot": "100"}
    first = run_main(build_config(MainConfig, settings | {"seeds": "0,1"}))
    graph = study_graph(build_config(MainConfig, settings | {"seeds": "0,1"}))
    assert first.ran == len(graph) and graph.steps()["prepare"] == 2
    runs = node_runs()
    assert run_signatures(runs) == graph_signatures(graph)
    assert {r.data.tags.get("seed") for r in runs if r.data.tags["step"] != "prepare"} == {"0", "1"}
    assert sorted(first.results["seed"]) == [0, 0, 1, 1]  # two setups x two seeds
    client = mlflow.MlflowClient()
    names = {a.path for a in client.list_artifacts(first.run_id)}
    assert {"study_effects.png", "study_effects.md", "study_effects.csv"} <= names
    text = mlflow.artifacts.load_text(f"runs:/{first.run_id}/study_results.md")
    assert "±" in text and "n_seeds" in text
    effects = pd.read_csv(
        mlflow.artifacts.download_artifacts(f"runs:/{first.run_id}/study_effects.csv")
    ).set_index("metric")
    assert list(effects.index) == ["balanced_accuracy", "macro_f1", "roc_auc"]
    assert set(effects["setup"]) == {"augment"} and set(effects["n_seeds"]) == {2}
    rows = first.results.set_index(["seed", "setup"])
    for metric in effects.index:
        per_seed = [float(v) for v in effects.loc[metric, "seed_differences"].split(";")]
        own = [rows.loc[(s, "augment"), metric] - rows.loc[(s, "baseline"), metric] for s in (0, 1)]
        assert per_seed == pytest.approx(own, abs=1e-5)
        assert effects.loc[metric, "difference"] == pytest.approx(sum(own) / 2, abs=1e-5)
        assert effects.loc[metric, "ci_low"] <= effects.loc[metric, "ci_high"]
    one = run_main(build_config(MainConfig, settings))
    assert one.ran == 0 and one.reused == len(study_graph(build_config(MainConfig, settings)))
    seed0 = first.results[first.results["seed"] == 0].drop(columns="seed")
    assert one.results.reset_index(drop=True).equals(seed0.reset_index(drop=True))
