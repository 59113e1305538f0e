"""The ``cross_eval`` step: champion ensembles of a source site tested on a target site.

One ``cross_eval`` run per direction (``<source>-to-<target>``) with a nested run per setup, so
the setups line up in the MLflow UI with the same metric names and the tags ``setup`` and
``direction``. Every subject of the target site counts: none of them reached the models. Each
metric comes with a subject-level bootstrap 95 % interval; each setup is compared with
``baseline`` by an exact McNemar test on the same subjects; the target's majority-class
accuracy is printed beside the results, because plain accuracy near it means nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd

from glioma.config import CrossEvalConfig, TrainClsConfig, as_params, build_config, setup_list
from glioma.evaluate.figures import study_heatmaps
from glioma.evaluate.metrics import confusion, confusion_figure
from glioma.evaluate.stats import (
    METRICS,
    bootstrap_ci,
    majority_accuracy,
    mcnemar_exact,
    point_estimates,
)
from glioma.pipeline.upstream import load_prepared, prepared_site
from glioma.scoring.report import markdown_table
from glioma.tracking import step_run
from glioma.tracking.registry import ensemble_model_name, resolve_alias
from glioma.tracking.reuse import find_finished_run


@dataclass(frozen=True)
class CrossEvalOutput:
    run_id: str
    direction: str
    results: pd.DataFrame  # one row per setup: metrics, CIs, McNemar vs baseline
    majority_accuracy: float


def champion_versions(source: str, setups: tuple[str, ...]) -> str:
    """``setup:version,...`` of the champions now: what a cross_eval result depends on."""
    versions = [(s, resolve_alias(ensemble_model_name(source, s), "champion")) for s in setups]
    return ",".join(f"{s}:{v.version if v else '-'}" for s, v in versions)


def champion_uri(config: CrossEvalConfig, setup: str) -> tuple[str, str]:
    """The source's ``@champion`` ensemble of ``setup`` (trained first if missing), its run."""
    name = ensemble_model_name(config.source, setup)
    version = resolve_alias(name, "champion")
    if version is None:
        from glioma.pipeline.train_cls_step import run_train_cls

        print(f"models:/{name}@champion does not exist yet: training it first")
        overrides = {"site": config.source, "setup": setup, "source": config.source_data}
        run_train_cls(build_config(TrainClsConfig, {**overrides, "profile": config.profile}))
        version = resolve_alias(name, "champion")
    return f"models:/{name}@champion", version.run_id


def evaluate_setup(config, setup, images, labels, baseline_predicted) -> tuple[dict, np.ndarray]:
    """Metrics with CIs of one setup in its nested run; returns (row, predicted labels)."""
    uri, train_run = champion_uri(config, setup)
    probabilities = mlflow.pyfunc.load_model(uri).predict(images)["prob_hgg"].to_numpy()
    predicted = (probabilities >= 0.5).astype(int)
    tags = {"site": config.source, "setup": setup, "direction": config.direction}
    with step_run("cross_eval_setup", as_params(config), profile=config.profile, **tags):
        mlflow.set_tags({"ensemble_uri": uri, "train_cls_run": train_run})
        row = point_estimates(labels, probabilities)
        for name, (low, high) in bootstrap_ci(
            labels, probabilities, config.n_boot, config.seed
        ).items():
            row |= {f"{name}_ci_low": low, f"{name}_ci_high": high}
        if baseline_predicted is not None:
            test = mcnemar_exact(labels, predicted, baseline_predicted)
            row |= {"mcnemar_p_vs_baseline": test["p_value"]}
            row |= {
                "only_this_right": test["only_first_right"],
                "only_baseline_right": test["only_second_right"],
            }
        row |= {"majority_accuracy": majority_accuracy(labels), "n_subjects": len(labels)}
        mlflow.log_metrics({k: v for k, v in row.items() if np.isfinite(v)})
        figure = confusion_figure(confusion(labels, probabilities), f"{setup}, {config.direction}")
        mlflow.log_figure(figure, "confusion.png")
        plt.close(figure)
    return {"setup": setup, "direction": config.direction, **row}, predicted


def results_table(results: pd.DataFrame) -> pd.DataFrame:
    """The readable table: 'value [low, high]' per metric, McNemar p, one row per setup."""
    table = results[["direction", "setup"]].copy()
    for name in METRICS:
        table[name] = [
            f"{v:.3f} [{lo:.3f}, {hi:.3f}]"
            for v, lo, hi in zip(
                results[name], results[f"{name}_ci_low"], results[f"{name}_ci_high"]
            )
        ]
    if "mcnemar_p_vs_baseline" in results:
        table["mcnemar_p_vs_baseline"] = [
            "" if pd.isna(p) else f"{p:.3g}" for p in results["mcnemar_p_vs_baseline"]
        ]
    return table


def log_study_figures(results: pd.DataFrame, prefix: str = "") -> None:
    """The 4 x 2 heatmaps and the results table (CSV, Markdown) in the active run."""
    figure = study_heatmaps(results)
    mlflow.log_figure(figure, f"{prefix}study_heatmaps.png")
    plt.close(figure)
    table = results_table(results)
    mlflow.log_text(results.to_csv(index=False), f"{prefix}study_results.csv")
    mlflow.log_text(markdown_table(table), f"{prefix}study_results.md")


def other_direction(config: CrossEvalConfig) -> pd.DataFrame | None:
    """The results of the reverse direction's newest finished cross_eval, if it has every setup."""
    reverse = f"{config.target}-to-{config.source}"
    params = {"setups": config.setups, "profile": config.profile, "n_boot": config.n_boot}
    run = find_finished_run("cross_eval", params, {"direction": reverse})
    if run is None:
        return None
    path = mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/direction_results.csv")
    return pd.read_csv(path)


def run_cross_eval(config: CrossEvalConfig) -> CrossEvalOutput:
    """Evaluate every setup's champion of ``source`` on all of ``target``'s subjects."""
    setups = setup_list(config.setups)
    if "baseline" in setups:  # McNemar compares every setup with it: evaluate it first
        setups = ("baseline", *[s for s in setups if s != "baseline"])
    target = prepared_site(config.target, config.target_data, config.profile, config.seed)
    dataset, _ = load_prepared(target)
    labels = dataset.subjects["label"].to_numpy().astype(int)
    tags = {"site": config.source, "direction": config.direction}
    with step_run("cross_eval", as_params(config), profile=config.profile, **tags) as run:
        mlflow.set_tags({"parent_step_run": target.run_id, "data_hash": dataset.data_hash})
        rows, baseline = [], None
        for setup in setups:
            row, predicted = evaluate_setup(config, setup, dataset.images, labels, baseline)
            baseline = predicted if setup == "baseline" else baseline
            rows.append(row)
        results = pd.DataFrame(rows)
        mlflow.set_tag("champion_versions", champion_versions(config.source, setups))
        mlflow.log_text(results.to_csv(index=False), "direction_results.csv")
        mlflow.log_text(markdown_table(results_table(results)), "direction_results.md")
        majority = majority_accuracy(labels)
        mlflow.log_metric("majority_accuracy", majority)
        reverse = other_direction(config)
        if reverse is not None:
            log_study_figures(pd.concat([results, reverse], ignore_index=True))
        print(
            f"cross_eval {config.direction}: {len(labels)} subjects, majority-class accuracy "
            f"{majority:.3f} (what always answering the larger class scores)\n"
            + markdown_table(
                results_table(results)[["setup", "accuracy", "balanced_accuracy", "f1", "macro_f1"]]
            )
        )
        return CrossEvalOutput(run.info.run_id, config.direction, results, majority)
