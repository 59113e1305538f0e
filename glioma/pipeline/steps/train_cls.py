"""``train_cls``: the five-fold ensemble of one site and setup, registered and tested.

The fold classifiers are upstream nodes (``train_cls_fold``), so a killed ``train_cls`` keeps
the folds that finished. This step copies their logged models into one self-contained
ensemble, itself a logged model (``mlflow models serve`` and ``build-docker`` need nothing
else), registers it ``glioma-ensemble-<site>-<setup>@champion`` and the folds inside it as
versions of ``glioma-cls-<site>-<setup>`` (``@fold0`` .. ``@fold4``), then deletes each fold's
logged-model files and points the fold run's ``fold_model_uri`` tag (and the logged model's
``weights_in``) at the registered copy: every fold's weights are stored once.
``classifier_node`` declares it over its five fold nodes; ``run_train_cls`` is the entry point.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic

import matplotlib.pyplot as plt
import mlflow
import numpy as np
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.tracking import MlflowClient

from glioma.classify.export import inner_folders, log_ensemble
from glioma.config import TrainClsConfig
from glioma.config.plan import FoldChains, plan_for
from glioma.evaluate.metrics import binary_metrics, confusion, confusion_figure
from glioma.names import ENSEMBLE_MODEL, GRADES, MODEL_ID, N_FOLDS, SETUP_VARIANT
from glioma.pipeline.graph import Node, node
from glioma.pipeline.inputs import data_read, load_prepared
from glioma.pipeline.invoke import run_target
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.spec import StepInputs, StepSpec, T, needed
from glioma.pipeline.steps.prepare import upstream_prepare, with_site_of
from glioma.pipeline.steps.train_cls_fold import fold_node
from glioma.tracking.datasets import as_dataset, log_reads
from glioma.tracking.model_card import training_tags, write_card
from glioma.tracking.registry import (
    cls_model_name,
    ensemble_model_name,
    register,
    register_source,
    set_alias,
)

FOLD_MODEL_URI = "fold_model_uri"  # tag of a fold run once its ensemble holds its model
WEIGHTS_IN = "weights_in"  # tag of a fold's logged model: where its files went


def fold_model_uri(fold: NodeResult) -> str:
    """Where a fold's model is: inside an ensemble once taken in, else its logged model."""
    return fold.tags.get(FOLD_MODEL_URI) or f"models:/{fold.tags[MODEL_ID]}"


def fold_summary(folds: list[NodeResult]) -> dict[str, float]:
    """Mean and std over folds of every test and validation metric."""
    metrics = [f.metrics for f in folds]
    names = [n for n in metrics[0] if n.startswith(("val_", "test_"))]
    out = {}
    for name in names:
        values = np.array([m.get(name, np.nan) for m in metrics], dtype=np.float64)
        out[f"folds_{name}_mean"] = float(np.nanmean(values))
        out[f"folds_{name}_std"] = float(np.nanstd(values))
    return out


def register_models(config: TrainClsConfig, logged) -> tuple[str, dict[str, str]]:
    """The ensemble (logged model ``logged``) ``@champion``, and each fold inside it
    ``@fold<k>``: (version, fold versions). The folds' sources lie in the ensemble's
    artifacts, so a tracking server accepts them."""
    run_id = mlflow.active_run().info.run_id
    ensemble = ensemble_model_name(config.site, config.setup)
    version = register(logged.model_uri, ensemble, "champion")
    root = mlflow.get_logged_model(logged.model_id).artifact_location.rstrip("/")
    inner, name = inner_folders(logged.flavors), cls_model_name(config.site, config.setup)
    folds = {
        str(k): register_source(
            f"{root}/{inner[f'fold{k}']}", name, f"fold{k}", run_id, logged.model_id
        )
        for k in range(N_FOLDS)
    }
    return version, folds


def ddpm_lineage(folds: list[NodeResult]) -> list[str]:
    """The registered DDPMs whose samples the folds trained on (none for real-only setups)."""
    runs = sorted({v for f in folds for k, v in f.tags.items() if k.startswith("ddpm_")
                   and k.endswith("_run")})  # fmt: skip
    found = []
    for run_id in runs:
        tags = mlflow.get_run(run_id).data.tags
        named = tags.get("model_name") and tags.get("model_version")
        found.append(f"models:/{tags['model_name']}/{tags['model_version']}" if named else run_id)
    return found


def take_in_folds(folds: list[NodeResult], name: str, versions: dict[str, str]) -> None:
    """Point each fold run (and its logged model) at its registered copy inside the ensemble,
    then delete the logged model's own files: every fold's weights are stored once."""
    client = MlflowClient()
    for k, fold in enumerate(folds):
        if FOLD_MODEL_URI in fold.tags:
            continue  # taken in by an earlier ensemble already
        uri = f"models:/{name}/{versions[str(k)]}"
        client.set_tag(fold.run_id, FOLD_MODEL_URI, uri)
        model_id = fold.tags[MODEL_ID]
        client.set_logged_model_tags(model_id, {WEIGHTS_IN: uri})
        # No public API deletes artifacts (tests/test_public_api.py says where MLflow has it).
        get_artifact_repository(
            client.get_logged_model(model_id).artifact_location
        ).delete_artifacts()


def build(config: TrainClsConfig, folds: list[NodeResult], example: np.ndarray):
    """The ensemble from the five fold models, logged on this run: its ModelInfo."""
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {}
        for k, fold in enumerate(folds):
            downloaded = mlflow.artifacts.download_artifacts(
                fold_model_uri(fold), dst_path=str(Path(tmp) / "download" / str(k))
            )
            dirs[f"fold{k}"] = str(Path(downloaded).rename(Path(tmp) / f"fold{k}"))
        metadata = {"fold_runs": [f.run_id for f in folds], "combine": config.combine}
        return log_ensemble(
            dirs, name=ENSEMBLE_MODEL, combine=config.combine, metadata=metadata, example=example
        )


@dataclass(frozen=True)
class EnsembleInputs(StepInputs, Generic[T]):
    """An ensemble of the five fold runs (inputs ``fold0`` .. ``fold4``) of one prepare run."""

    prepare: T
    folds: tuple[T, ...]

    def flat(self) -> dict[str, T]:
        return {"prepare": self.prepare} | {f"fold{k}": f for k, f in enumerate(self.folds)}

    @classmethod
    def read(cls, flat: Mapping[str, NodeResult], config: TrainClsConfig) -> EnsembleInputs:
        where = f"train_cls {config.site} {config.setup}"
        folds = tuple(needed(flat, f"fold{k}", where) for k in range(N_FOLDS))
        return cls(needed(flat, "prepare", where), folds)


def run(config: TrainClsConfig, inputs: EnsembleInputs[NodeResult]) -> None:
    """Build, register and test the ensemble of the five fold runs."""
    folds = list(inputs.folds)
    dataset, splits = load_prepared(inputs.prepare.run_id)
    test = np.isin(dataset.subjects["subject_id"].to_numpy(), splits["test"])
    test_x, test_y = dataset.images[test], dataset.subjects["label"].to_numpy()[test]
    logged = build(config, folds, dataset.images[:2])
    version, fold_versions = register_models(config, logged)
    ensemble_name = ensemble_model_name(config.site, config.setup)
    uri = f"models:/{ensemble_name}/{version}"
    probs = mlflow.pyfunc.load_model(uri).predict(test_x)["prob_hgg"].to_numpy()
    test_metrics = {f"test_{k}": v for k, v in binary_metrics(test_y, probs).items()}
    fold_name = cls_model_name(config.site, config.setup)
    mlflow.set_tags(
        {
            "data_hash": dataset.data_hash,
            "ensemble_uri": uri,
            "ensemble_version": version,
            MODEL_ID: logged.model_id,
            "fold_versions": ",".join(f"{k}:{v}" for k, v in fold_versions.items()),
            "fold0_model_uri": f"models:/{fold_name}/{fold_versions['0']}",
        }
    )
    test_read = data_read(dataset, inputs.prepare, "test", splits["test"])
    log_reads([test_read])
    # on the run, and on the logged model with the test split as their dataset
    mlflow.log_metrics(test_metrics, model_id=logged.model_id, dataset=as_dataset(test_read))
    mlflow.log_metrics(fold_summary(folds) | {"n_test": int(test.sum())})
    card = training_tags(
        site=config.site,
        setup=config.setup,
        subjects={g: int((dataset.subjects["grade"] == g).sum()) for g in GRADES},
        excluded=int(dataset.meta.get("n_excluded", 0)),
        ddpms=ddpm_lineage(folds),
        test=test_metrics,
        n_test=int(test.sum()),
    )
    write_card(ensemble_name, version, card)
    title = f"{config.site} {config.setup}: ensemble, test split"
    figure = confusion_figure(confusion(test_y, probs), title)
    mlflow.log_figure(figure, "confusion_test.png")
    plt.close(figure)
    take_in_folds(folds, fold_name, fold_versions)
    shown = ", ".join(f"{k} {v:.3f}" for k, v in test_metrics.items())
    print(f"train_cls {config.site} {config.setup}: {uri} (@champion); test: {shown}")


def publish(config: TrainClsConfig, result: NodeResult) -> None:
    """``@champion`` (and ``@fold<k>``) name the ensemble this command ran or reused."""
    if not result.reused:
        return
    set_alias(
        ensemble_model_name(config.site, config.setup), "champion", result.tags["ensemble_version"]
    )
    for item in result.tags.get("fold_versions", "").split(","):
        if item:
            k, version = item.split(":")
            set_alias(cls_model_name(config.site, config.setup), f"fold{k}", version)


STEP = StepSpec("train_cls", run, inputs=EnsembleInputs, publish=publish)


def classifier_node(prepare: Node, config: TrainClsConfig, chains: tuple[FoldChains, ...]) -> Node:
    """The ensemble of one site and setup over its five fold nodes (``chains``: per fold, the
    DDPM -> sample chains of a ddpm setup, ``StudyPlan.classifier_chains``)."""
    folds = tuple(fold_node(prepare, config.fold_config(k), chains[k]) for k in range(N_FOLDS))
    inputs = EnsembleInputs(prepare, folds)
    tags = {"site": config.site, "setup": config.setup, "profile": config.profile}
    tags |= {"ddpm_scope": config.ddpm_scope if config.setup in SETUP_VARIANT else None}
    return node("train_cls", config, inputs, tags=tags)


def classifier_for(config: TrainClsConfig) -> Node:
    """The ensemble node of ``config`` alone, on its site's prepare node (or the given run)."""
    prepare = upstream_prepare(config, config.site)
    config = with_site_of(config, prepare)
    return classifier_node(prepare, config, plan_for(config).classifier_chains(config))


def run_train_cls(config: TrainClsConfig) -> NodeResult:
    target = classifier_for(config)
    return run_target(target, config)
