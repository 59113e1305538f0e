"""``train_cls_fold``: one fold's classifier, the unit a killed ``train_cls`` keeps.

Fold k is validated on fold k's subjects and tested on the test split; it trains on every other
non-test subject, plus, for the ddpm setups, the samples of the fold's own DDPMs (which never
saw fold k or the test split: ``refuse_leaks`` checks their training subjects). The fold's
model is a logged model of this run (tag ``model_id``) whose files stay until its ensemble
takes them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import torch
from tqdm.auto import tqdm

from glioma.classify.augment import classic_augmentation
from glioma.classify.export import log_fold_model, stored_precision
from glioma.classify.network import build_classifier
from glioma.classify.training import labels_tensor, predict_logits, train_fold
from glioma.config import TrainClsFoldConfig
from glioma.config.plan import FoldChains
from glioma.config.synthetic import guarded_folds
from glioma.data.dataset import Dataset
from glioma.devices import resolve_device
from glioma.errors import DataError
from glioma.evaluate.metrics import binary_metrics, confusion, confusion_figure
from glioma.names import FOLD_MODEL, GRADES, MODEL_ID, SETUP_VARIANT
from glioma.pipeline.graph import Node, node
from glioma.pipeline.inputs import (
    check_lineage,
    data_read,
    load_dataset,
    load_prepared,
    refuse_leaks,
)
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.spec import StepInputs, StepSpec, SyntheticSet, T, needed
from glioma.pipeline.steps.sample import synthetic_set
from glioma.tracking.datasets import DataRead, log_reads


@dataclass(frozen=True)
class FoldData:
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: np.ndarray
    test_y: np.ndarray
    real_counts: dict[str, int]  # real training images per grade


def fold_data(dataset: Dataset, splits: dict, fold: int) -> FoldData:
    """Fold k: validation = its subjects; training = every other non-test subject."""
    ids = dataset.subjects["subject_id"].to_numpy()
    val, test = np.isin(ids, splits["folds"][fold]), np.isin(ids, splits["test"])
    train = ~val & ~test
    grades = dataset.subjects["grade"].to_numpy()
    labels = dataset.subjects["label"].to_numpy()
    return FoldData(
        torch.from_numpy(dataset.images[train]),
        labels_tensor(labels[train]),
        torch.from_numpy(dataset.images[val]),
        labels_tensor(labels[val]),
        dataset.images[test],
        labels[test],
        {g: int((grades[train] == g).sum()) for g in GRADES},
    )


@dataclass(frozen=True)
class FoldInputs(StepInputs, Generic[T]):
    """A fold trains on one prepare run and, in the ddpm setups, on each grade's synthetic set
    (inputs ``sample_<grade>`` and ``ddpm_<grade>``)."""

    prepare: T
    synthetic: Mapping[str, SyntheticSet[T]] = field(default_factory=dict)

    def flat(self) -> dict[str, T]:
        out = {"prepare": self.prepare}
        for grade, part in self.synthetic.items():
            out |= {f"sample_{grade}": part.sample, f"ddpm_{grade}": part.ddpm}
        return out

    @staticmethod
    def where(config: TrainClsFoldConfig) -> str:
        """How an error names the fold."""
        return f"train_cls_fold {config.site} {config.setup} fold {config.fold}"

    @classmethod
    def read(cls, flat: Mapping[str, NodeResult], config: TrainClsFoldConfig) -> FoldInputs:
        where = cls.where(config)
        sets = {
            grade: SyntheticSet(
                needed(flat, f"sample_{grade}", where), needed(flat, f"ddpm_{grade}", where)
            )
            for grade in GRADES
            if f"sample_{grade}" in flat or f"ddpm_{grade}" in flat
        }
        inputs = cls(needed(flat, "prepare", where), sets)
        inputs.check(config)
        return inputs

    def check(self, config: TrainClsFoldConfig) -> None:
        """A ddpm-setup fold has both grades' sets of its site and variant; any other fold has
        none. One line naming the fold and what is wrong."""
        where = self.where(config)
        variant = SETUP_VARIANT.get(config.setup)
        if variant is None:
            if self.synthetic:
                raise DataError(f"{where}: a {config.setup} fold takes no synthetic images")
            return
        missing = [grade for grade in GRADES if grade not in self.synthetic]
        if missing:
            raise DataError(
                f"{where}: no synthetic {' or '.join(missing)} set (sample and DDPM); a "
                f"{config.setup} fold trains on both grades' samples"
            )
        for grade, part in self.synthetic.items():
            part.check(grade=grade, site=config.site, variant=variant, where=where)


def synthetic_sets(
    inputs: FoldInputs[NodeResult], splits: dict, config: TrainClsFoldConfig
) -> list[tuple[NodeResult, Dataset]]:
    """The fold's synthetic images per grade, each checked against the leakage rule: from a
    DDPM of this site's prepare run that saw neither the test split nor (unless ``ddpm_scope``
    is ``site``) this fold."""
    sets, prepare_run = [], inputs.prepare.run_id
    for grade, part in inputs.synthetic.items():
        sample, ddpm = part.sample, part.ddpm
        check_lineage(sample, ddpm, prepare_run=prepare_run)
        refuse_leaks(ddpm.run_id, splits, guarded_folds(config.ddpm_scope, config.fold))
        dataset = load_dataset(sample.run_id)
        if (dataset.subjects["grade"] != grade).any():
            raise DataError(f"sample run {sample.run_id}: expected only {grade} images")
        sets.append((sample, dataset))
    return sets


def ratio_share(
    synthetic: Dataset, real_counts: dict[str, int], ratio: float
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images, labels, ids): the first ``ratio`` x (the fold's real images of that grade) of
    one grade's synthetic set. A site-scoped DDPM drew for all non-test subjects; the fold
    trains on four fifths of them, and the ratio must hold for the fold."""
    grade = str(synthetic.subjects["grade"].iloc[0])
    keep = max(1, round(ratio * real_counts[grade]))
    rows = synthetic.subjects.iloc[:keep]
    return synthetic.images[:keep], rows["label"].to_numpy(), rows["subject_id"].tolist()


def fold_reads(dataset: Dataset, splits: dict, fold: int, prepare: NodeResult) -> list[DataRead]:
    """Fold k's real subjects as dataset inputs: training, validation (fold k), test."""
    validation, test = set(splits["folds"][fold]), set(splits["test"])
    ids = dataset.subjects["subject_id"].tolist()
    training = [s for s in ids if s not in validation and s not in test]
    return [
        data_read(dataset, prepare, "training", training),
        data_read(dataset, prepare, "validation", sorted(validation)),
        data_read(dataset, prepare, "test", sorted(test)),
    ]


def probabilities(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    return torch.sigmoid(predict_logits(model, torch.from_numpy(images))).numpy()


@dataclass(frozen=True)
class TrainedFold:
    model: torch.nn.Module
    params: dict[str, object]
    metrics: dict[str, float]
    test_y: np.ndarray
    test_probs: np.ndarray
    image_size: int
    data_hash: str
    reads: tuple[DataRead, ...]  # the data it trained, selected and was tested on


def compute(config: TrainClsFoldConfig, inputs: FoldInputs[NodeResult], on_epoch) -> TrainedFold:
    """Train and evaluate fold ``config.fold``; ``on_epoch(epoch, metrics)`` after each epoch."""
    dataset, splits = load_prepared(inputs.prepare.run_id)
    data = fold_data(dataset, splits, config.fold)
    reads = fold_reads(dataset, splits, config.fold, inputs.prepare)
    sets = []
    for sample, synthetic in synthetic_sets(inputs, splits, config):
        images, labels, ids = ratio_share(synthetic, data.real_counts, config.synthetic_ratio)
        sets.append((images, labels))
        reads.append(data_read(synthetic, sample, "synthetic", ids))
    train_x = torch.cat([data.train_x, *(torch.from_numpy(x) for x, _ in sets)])
    train_y = torch.cat([data.train_y, *(labels_tensor(y) for _, y in sets)])
    torch.manual_seed(config.seed + config.fold)
    model, init = build_classifier(config.arch, config.imagenet_weights)
    result = train_fold(
        model,
        train=(train_x, train_y),
        val=(data.val_x, data.val_y),
        settings=config.training,
        augment=classic_augmentation() if config.setup == "augment" else None,
        device=resolve_device(config.device),
        on_epoch=on_epoch,
    )
    model = stored_precision(model.cpu().eval())  # the weights as the fold run stores them
    val = binary_metrics(data.val_y.numpy(), probabilities(model, data.val_x.numpy()))
    test_probs = probabilities(model, data.test_x)
    metrics = {f"val_{k}": v for k, v in val.items()}
    metrics |= {f"test_{k}": v for k, v in binary_metrics(data.test_y, test_probs).items()}
    metrics |= {"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss}
    params = {"init": init, "n_train_real": len(data.train_x), "n_train": len(train_x)}
    params |= {"n_val": len(data.val_x), "n_train_synthetic": len(train_x) - len(data.train_x)}
    return TrainedFold(
        model, params, metrics, data.test_y, test_probs, dataset.images.shape[-1],
        dataset.data_hash, tuple(reads),
    )  # fmt: skip


def record(config: TrainClsFoldConfig, fold: TrainedFold) -> None:
    """The one place the fold logs (its per-epoch curves come through ``epoch_logger``): its
    data, the model as a logged model (the *Models* tab) with its metrics linked to it."""
    mlflow.set_tags({"data_hash": fold.data_hash})
    log_reads(fold.reads)
    mlflow.log_params(fold.params)
    best = int(fold.metrics["best_epoch"])
    logged = log_fold_model(fold.model, fold.image_size, name=FOLD_MODEL, step=best)
    mlflow.set_tag(MODEL_ID, logged.model_id)
    mlflow.log_metrics(fold.metrics, model_id=logged.model_id)
    figure = confusion_figure(confusion(fold.test_y, fold.test_probs), f"fold {config.fold}: test")
    mlflow.log_figure(figure, "confusion_test.png")
    plt.close(figure)


def run(config: TrainClsFoldConfig, inputs: FoldInputs[NodeResult]) -> None:
    bar = tqdm(total=config.epochs, desc=f"{config.setup} fold {config.fold}", leave=False)

    def epoch_logger(epoch: int, metrics: dict[str, float]) -> None:
        mlflow.log_metrics(metrics, step=epoch)
        bar.update()
        bar.set_postfix(val=f"{metrics['val_loss']:.4f}")

    trained = compute(config, inputs, epoch_logger)
    bar.close()
    record(config, trained)


STEP = StepSpec("train_cls_fold", run, inputs=FoldInputs, trains=True)


def fold_node(prepare: Node, config: TrainClsFoldConfig, chains: FoldChains) -> Node:
    """Fold ``config.fold``'s classifier with, for the ddpm setups, the synthetic sets of its
    chains (``StudyPlan.fold_chains``: DDPMs that never saw the fold, or the site's one)."""
    synthetic = {g: SyntheticSet(*synthetic_set(prepare, c)) for g, c in chains.items()}
    inputs = FoldInputs(prepare, synthetic)
    inputs.check(config)  # the plan gave this fold what its setup needs
    tags = {"site": config.site, "setup": config.setup, "fold": config.fold}
    tags |= {"ddpm_scope": config.ddpm_scope if config.setup in SETUP_VARIANT else None}
    return node("train_cls_fold", config, inputs, tags=tags | {"profile": config.profile})
