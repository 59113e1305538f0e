"""The ``train_cls`` step: five fold classifiers of one site and setup, their ensemble, and the
ensemble's evaluation on the site's test split.

Runs: one ``train_cls`` run per site and setup, with a nested run per fold (tag ``fold``). Fold
models are logged with MLflow's ``pickle`` serialisation, not MLflow 3's default ``pt2``
export: ``pt2`` needs an input example, fixes the traced shapes, and loads back as a graph
module, which would lose ``features`` (FD_cls) and the weight averaging of the ensemble. The
pickle needs ``glioma`` importable where the model is loaded; the project's environment has it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import torch
from tqdm.auto import tqdm

from glioma.classify.augment import classic_augmentation
from glioma.classify.ensemble import PIP_REQUIREMENTS, fold_signature, log_ensemble
from glioma.classify.network import build_classifier
from glioma.classify.training import ClsSettings, labels_tensor, predict_logits, train_fold
from glioma.config import TrainClsConfig, as_params
from glioma.data.dataset import Dataset
from glioma.devices import resolve_device
from glioma.errors import DataError
from glioma.evaluate.metrics import binary_metrics, confusion, confusion_figure
from glioma.pipeline.fold_synthetic import synthetic_for_fold
from glioma.pipeline.upstream import load_prepared, prepare_run_output, prepared_site
from glioma.tracking import step_run
from glioma.tracking.registry import cls_model_name, ensemble_model_name, register

METRICS = ("accuracy", "f1", "balanced_accuracy", "roc_auc")


@dataclass(frozen=True)
class ClsOutput:
    run_id: str
    model_name: str
    ensemble_name: str
    fold_versions: dict[str, str]
    ensemble_version: str
    test_metrics: dict[str, float]


@dataclass(frozen=True)
class FoldData:
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    real_counts: dict[str, int]  # real training images per grade


def fold_data(dataset: Dataset, splits: dict, fold: int) -> FoldData:
    """Fold k: validation = its subjects; training = every other non-test subject."""
    ids = dataset.subjects["subject_id"].to_numpy()
    val = np.isin(ids, splits["folds"][fold])
    train = ~val & ~np.isin(ids, splits["test"])
    grades = dataset.subjects["grade"].to_numpy()
    labels = dataset.subjects["label"].to_numpy()
    return FoldData(
        torch.from_numpy(dataset.images[train]),
        labels_tensor(labels[train]),
        torch.from_numpy(dataset.images[val]),
        labels_tensor(labels[val]),
        {g: int((grades[train] == g).sum()) for g in ("LGG", "HGG")},
    )


def with_synthetic(
    config: TrainClsConfig, data: FoldData, prepare_run: str, splits: dict, fold: int
):
    """The fold's training set plus its synthetic images (setups ddpm, ddpm_mi only)."""
    if config.setup not in ("ddpm", "ddpm_mi"):
        return data.train_x, data.train_y, {}
    sets = synthetic_for_fold(
        config.setup,
        prepare_run,
        splits,
        fold,
        data.real_counts,
        config.synthetic_ratio,
        config.mi_weight,
        config.profile,
        config.seed,
    )
    x = torch.cat([data.train_x, *(torch.from_numpy(s.images) for s in sets)])
    y = torch.cat([data.train_y, *(labels_tensor(s.labels) for s in sets)])
    lineage = {f"sample_run_{i}": s.sample_run for i, s in enumerate(sets)}
    lineage |= {f"ddpm_run_{i}": s.ddpm_run for i, s in enumerate(sets)}
    return x, y, lineage


def probabilities(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    return torch.sigmoid(predict_logits(model, torch.from_numpy(images))).numpy()


def log_confusion(labels: np.ndarray, probs: np.ndarray, title: str, path: str) -> None:
    figure = confusion_figure(confusion(labels, probs), title)
    mlflow.log_figure(figure, path)
    plt.close(figure)


def train_one_fold(config, dataset, splits, prepare_run, fold, test_x, test_y) -> tuple[str, dict]:
    """Train, log and register fold ``fold``; returns (registered version, its metrics)."""
    data = fold_data(dataset, splits, fold)
    train_x, train_y, lineage = with_synthetic(config, data, prepare_run, splits, fold)
    tags = {"site": config.site, "setup": config.setup, "profile": config.profile}
    with step_run("train_cls_fold", as_params(config), fold=fold, **tags):
        torch.manual_seed(config.seed + fold)
        model, init = build_classifier(config.arch, config.imagenet_weights)
        mlflow.log_params(
            {"init": init, "n_train_real": len(data.train_x), "n_train": len(train_x)}
        )
        mlflow.log_params(
            {"n_val": len(data.val_x), "n_train_synthetic": len(train_x) - len(data.train_x)}
        )
        mlflow.set_tags({"parent_step_run": prepare_run, **lineage})
        settings = ClsSettings(
            config.epochs,
            config.batch_size,
            config.lr,
            weight_decay=config.weight_decay,
            seed=config.seed + fold,
        )
        augment = classic_augmentation() if config.setup == "augment" else None
        bar = tqdm(
            total=config.epochs, desc=f"{config.setup} fold {fold}", unit="epoch", leave=False
        )

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            mlflow.log_metrics(metrics, step=epoch)
            bar.update()
            bar.set_postfix(val=f"{metrics['val_loss']:.4f}")

        device = resolve_device(config.device)
        result = train_fold(
            model, (train_x, train_y), (data.val_x, data.val_y), settings, augment, device, on_epoch
        )
        bar.close()
        model = model.cpu().eval()
        val = binary_metrics(data.val_y.numpy(), probabilities(model, data.val_x.numpy()))
        test_probs = probabilities(model, test_x)
        test = binary_metrics(test_y, test_probs)
        metrics = {f"val_{k}": v for k, v in val.items()} | {
            f"test_{k}": v for k, v in test.items()
        }
        mlflow.log_metrics(
            {**metrics, "best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss}
        )
        log_confusion(test_y, test_probs, f"fold {fold}: test split", "confusion_test.png")
        info = log_fold_model(model, dataset.images.shape[-1])
        version = register(info.model_uri, cls_model_name(config.site, config.setup), f"fold{fold}")
    return version, metrics


def log_fold_model(model: torch.nn.Module, image_size: int):
    """The fold model in MLflow's pickle format (see the module docstring for why not pt2)."""
    pytorch_logger = logging.getLogger("mlflow.pytorch")
    level = pytorch_logger.level
    pytorch_logger.setLevel(logging.ERROR)  # the pickle caution: a deliberate choice, said above
    try:
        return mlflow.pytorch.log_model(
            model,
            name="model",
            serialization_format="pickle",
            signature=fold_signature(image_size),
            pip_requirements=PIP_REQUIREMENTS,
        )
    finally:
        pytorch_logger.setLevel(level)


def log_fold_summary(fold_metrics: list[dict]) -> None:
    """Mean and std over folds of every fold metric."""
    for name in fold_metrics[0]:
        values = np.array([m[name] for m in fold_metrics], dtype=np.float64)
        mlflow.log_metrics(
            {
                f"folds_{name}_mean": float(np.nanmean(values)),
                f"folds_{name}_std": float(np.nanstd(values)),
            }
        )


def build_ensemble(
    config: TrainClsConfig, versions: dict[str, str], example: np.ndarray
) -> tuple[str, str]:
    """Log the ensemble over the fold aliases, register it ``@champion``; (model URI, version)."""
    name = cls_model_name(config.site, config.setup)
    uris = {f"fold{k}": f"models:/{name}@fold{k}" for k in range(len(versions))}
    metadata = {"fold_model": name, "fold_versions": versions, "combine": config.combine}
    info = log_ensemble(uris, config.combine, metadata, example)
    ensemble_name = ensemble_model_name(config.site, config.setup)
    version = register(info.model_uri, ensemble_name, "champion")
    return f"models:/{ensemble_name}@champion", version


def run_train_cls(config: TrainClsConfig) -> ClsOutput:
    """Train the five folds, register them and the champion ensemble, evaluate on test."""
    prepared = (
        prepare_run_output(config.prepare_run)
        if config.prepare_run
        else prepared_site(config.site, config.source, config.profile, config.seed)
    )
    if prepared.site != config.site:
        raise DataError(
            f"prepare_run {prepared.run_id} is of site {prepared.site}, not {config.site}"
        )
    dataset, splits = load_prepared(prepared)
    test = np.isin(dataset.subjects["subject_id"].to_numpy(), splits["test"])
    test_x, test_y = dataset.images[test], dataset.subjects["label"].to_numpy()[test]
    tags = {"site": config.site, "setup": config.setup, "profile": config.profile}
    with step_run("train_cls", as_params(config), **tags) as run:
        mlflow.set_tags({"parent_step_run": prepared.run_id, "data_hash": dataset.data_hash})
        versions, fold_metrics = {}, []
        for fold in range(len(splits["folds"])):
            version, metrics = train_one_fold(
                config, dataset, splits, prepared.run_id, fold, test_x, test_y
            )
            versions[str(fold)] = version
            fold_metrics.append(metrics)
        log_fold_summary(fold_metrics)
        uri, ensemble_version = build_ensemble(config, versions, dataset.images[:2])
        ensemble = mlflow.pyfunc.load_model(uri)
        probs = ensemble.predict(test_x)["prob_hgg"].to_numpy()
        test_metrics = {f"test_{k}": v for k, v in binary_metrics(test_y, probs).items()}
        mlflow.log_metrics(test_metrics | {"n_test": int(test.sum())})
        mlflow.set_tags({"ensemble_uri": uri, "ensemble_version": ensemble_version})
        log_confusion(
            test_y,
            probs,
            f"{config.site} {config.setup}: ensemble, test split",
            "confusion_test.png",
        )
        shown = ", ".join(f"{k} {v:.3f}" for k, v in test_metrics.items())
        print(f"train_cls {config.site} {config.setup}: {uri} (v{ensemble_version}); test: {shown}")
        return ClsOutput(
            run.info.run_id,
            cls_model_name(config.site, config.setup),
            ensemble_model_name(config.site, config.setup),
            versions,
            ensemble_version,
            test_metrics,
        )
