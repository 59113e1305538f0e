"""``cross_eval``: the ensembles of a source site tested on every subject of a target site.

One ``cross_eval`` run per direction (``<source>-to-<target>``) with a child run per setup, so
the setups line up in the MLflow UI with the same metric names and the tags ``setup`` and
``direction``. Every subject of the target site counts: none of them reached the models. Each
metric comes with a subject-level bootstrap 95 % interval; each setup is compared with
``baseline`` by an exact McNemar test on the same subjects; the target's majority-class
accuracy is printed beside the results, because plain accuracy near it means nothing. Each
subject's probability per setup is kept (``direction_predictions.csv``): a study over several
training seeds pairs them across seeds. ``cross_eval_node`` declares it over the target's
prepare node and one ensemble node per setup; ``run_cross_eval`` is the entry point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd

from glioma.config import CrossEvalConfig, TrainClsConfig, as_params, build_config, setup_list
from glioma.data.dataset import Dataset
from glioma.evaluate.metrics import confusion, confusion_figure
from glioma.evaluate.stats import bootstrap_ci, majority_accuracy, mcnemar_exact, point_estimates
from glioma.evaluate.tables import results_table
from glioma.names import DIRECTION_PREDICTIONS, DIRECTION_RESULTS, MODEL_ID
from glioma.pipeline.graph import Node, node
from glioma.pipeline.inputs import data_read, load_dataset
from glioma.pipeline.invoke import run_target
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.spec import StepInputs, StepSpec, T, needed
from glioma.pipeline.steps.prepare import prepare_for
from glioma.pipeline.steps.train_cls import classifier_for
from glioma.scoring.report import markdown_table
from glioma.tracking import child_run
from glioma.tracking.datasets import DataRead, as_dataset, log_reads
from glioma.tracking.model_card import cross_site_tag, write_card


@dataclass(frozen=True)
class SetupResult:
    setup: str
    row: dict[str, float]
    subjects: np.ndarray  # the target's subject ids, in the order of labels
    labels: np.ndarray
    probabilities: np.ndarray
    ensemble_uri: str
    model_id: str  # the ensemble's logged model: its page shows these cross-site figures
    train_cls_run: str
    ddpm_scope: str  # which DDPMs made its synthetic images ("" for the real-only setups)


def ordered_setups(config: CrossEvalConfig) -> tuple[str, ...]:
    """McNemar compares every setup with baseline: evaluate it first."""
    setups = setup_list(config.setups)
    if "baseline" in setups:
        setups = ("baseline", *[s for s in setups if s != "baseline"])
    return setups


@dataclass(frozen=True)
class CrossEvalInputs(StepInputs, Generic[T]):
    """The target site's prepare run and each setup's ensemble (inputs ``train_cls_<setup>``)."""

    target_prepare: T
    ensembles: Mapping[str, T]

    def flat(self) -> dict[str, T]:
        named = {f"train_cls_{setup}": run for setup, run in self.ensembles.items()}
        return {"target_prepare": self.target_prepare} | named

    @classmethod
    def read(cls, flat: Mapping[str, NodeResult], config: CrossEvalConfig) -> CrossEvalInputs:
        where = f"cross_eval {config.direction}"
        ensembles = {s: needed(flat, f"train_cls_{s}", where) for s in ordered_setups(config)}
        return cls(needed(flat, "target_prepare", where), ensembles)


def evaluate(
    config: CrossEvalConfig, inputs: CrossEvalInputs[NodeResult], target: Dataset
) -> list[SetupResult]:
    """Every setup's metrics with CIs (and McNemar vs baseline) on all target subjects."""
    images, labels = target.images, target.subjects["label"].to_numpy().astype(int)
    subjects = target.subjects["subject_id"].to_numpy()
    results, baseline = [], None
    for setup in ordered_setups(config):
        ensemble = inputs.ensembles[setup]
        uri = ensemble.tags["ensemble_uri"]
        probabilities = mlflow.pyfunc.load_model(uri).predict(images)["prob_hgg"].to_numpy()
        predicted = (probabilities >= 0.5).astype(int)
        row = point_estimates(labels, probabilities)
        intervals = bootstrap_ci(labels, probabilities, n_boot=config.n_boot, seed=config.seed)
        for name, (low, high) in intervals.items():
            row |= {f"{name}_ci_low": low, f"{name}_ci_high": high}
        if baseline is not None:
            test = mcnemar_exact(labels, predicted, baseline)
            row |= {"mcnemar_p_vs_baseline": test["p_value"]}
            row |= {
                "only_this_right": test["only_first_right"],
                "only_baseline_right": test["only_second_right"],
            }
        baseline = predicted if setup == "baseline" else baseline
        row |= {"majority_accuracy": majority_accuracy(labels), "n_subjects": len(labels)}
        scope = ensemble.tags.get("ddpm_scope", "")
        model_id = ensemble.tags.get(MODEL_ID, "")
        results.append(
            SetupResult(
                setup, row, subjects, labels, probabilities, uri, model_id, ensemble.run_id, scope
            )
        )
    return results


def record(config: CrossEvalConfig, results: list[SetupResult], target: DataRead) -> None:
    """The one place cross_eval logs: a child run per setup, the direction's table."""
    mlflow.set_tags({"data_hash": target.meta["data_hash"]})
    log_reads([target])
    for result in results:
        tags = {"site": config.source_site, "setup": result.setup, "direction": config.direction}
        tags |= {"ddpm_scope": result.ddpm_scope} if result.ddpm_scope else {}
        with child_run(
            "cross_eval_setup", as_params(config), profile=config.profile, **tags
        ) as run:
            mlflow.set_tags(
                {"ensemble_uri": result.ensemble_uri, "train_cls_run": result.train_cls_run}
            )
            log_reads([target])
            finite = {k: v for k, v in result.row.items() if np.isfinite(v)}
            linked = {"model_id": result.model_id, "dataset": as_dataset(target)}
            mlflow.log_metrics(finite, **(linked if result.model_id else {}))
            name, _, version = result.ensemble_uri.removeprefix("models:/").partition("/")
            if result.ensemble_uri.startswith("models:/") and version.isdigit():
                card = cross_site_tag(config.target_site, finite, run_id=run.info.run_id)
                write_card(name, version, card)  # the version's model card gains this site
            matrix = confusion(result.labels, result.probabilities)
            figure = confusion_figure(matrix, f"{result.setup}, {config.direction}")
            mlflow.log_figure(figure, "confusion.png")
            plt.close(figure)
    table = pd.DataFrame(
        [
            {"setup": r.setup, "direction": config.direction, "ddpm_scope": r.ddpm_scope, **r.row}
            for r in results
        ]
    )
    mlflow.log_text(table.to_csv(index=False), DIRECTION_RESULTS)
    mlflow.log_text(predictions(config, results).to_csv(index=False), DIRECTION_PREDICTIONS)
    mlflow.log_text(markdown_table(results_table(table)), "direction_results.md")
    majority = majority_accuracy(results[0].labels)
    mlflow.log_metric("majority_accuracy", majority)
    shown = results_table(table)[["setup", "accuracy", "balanced_accuracy", "f1", "macro_f1"]]
    print(
        f"cross_eval {config.direction}: {len(results[0].labels)} subjects, majority-class "
        f"accuracy {majority:.3f} (what always answering the larger class scores)\n"
        + markdown_table(shown)
    )


def predictions(config: CrossEvalConfig, results: list[SetupResult]) -> pd.DataFrame:
    """Every setup's probability of HGG for every target subject: what the study's paired
    differences over seeds are computed from (``glioma.evaluate.effects``)."""
    return pd.concat(
        pd.DataFrame(
            {
                "direction": config.direction,
                "setup": r.setup,
                "subject_id": r.subjects,
                "label": r.labels,
                "prob_hgg": r.probabilities,
            }
        )
        for r in results
    )


def run(config: CrossEvalConfig, inputs: CrossEvalInputs[NodeResult]) -> None:
    target = load_dataset(inputs.target_prepare.run_id)  # read once: scored, then logged
    read = data_read(target, inputs.target_prepare, "evaluation")
    record(config, evaluate(config, inputs, target), read)


STEP = StepSpec("cross_eval", run, inputs=CrossEvalInputs, uses_torch=False)


def cross_eval_node(
    target_prepare: Node, classifiers: dict[str, Node], config: CrossEvalConfig
) -> Node:
    inputs = CrossEvalInputs(target_prepare, dict(classifiers))
    tags = {"site": config.source_site, "direction": config.direction, "profile": config.profile}
    return node("cross_eval", config, inputs, tags=tags)


def cross_eval_target(config: CrossEvalConfig) -> Node:
    """The target's prepare node and, per setup, the source site's ensemble node."""
    common = {"profile": config.profile, "seed": config.seed}
    target = prepare_for(config.target_site, config.target_data, **common)
    classifiers = {
        setup: classifier_for(
            build_config(
                TrainClsConfig,
                {"site": config.source_site, "setup": setup, "data": config.source_data} | common,
            )
        )
        for setup in setup_list(config.setups)
    }
    return cross_eval_node(target, classifiers, config)


def run_cross_eval(config: CrossEvalConfig) -> NodeResult:
    target = cross_eval_target(config)
    return run_target(target, config)
