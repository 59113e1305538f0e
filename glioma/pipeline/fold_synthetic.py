"""Synthetic training images for one classifier fold, and the leakage guard.

A fold-k classifier is validated on fold k's subjects and tested on the test split, so its
synthetic images must come from DDPMs that saw neither: per fold and grade, a DDPM trained with
``fold = k`` (registered as ``glioma-ddpm-<site>-<grade>-<variant>@fold<k>``), reused when a
finished run with the same settings exists. Whatever their origin, synthetic images pass
``refuse_leaks``, which reads the DDPM run's ``training_subjects.json``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import numpy as np

from glioma.config import SampleConfig, TrainDDPMConfig, as_params, build_config
from glioma.data.dataset import read_dataset
from glioma.errors import DataError
from glioma.pipeline.prepare_step import DATASET_ARTIFACT
from glioma.pipeline.upstream import VOLATILE, artifact_folder, checked_run
from glioma.tracking.reuse import find_finished_run

VARIANT_OF_SETUP = {"ddpm": "std", "ddpm_mi": "mi"}


@dataclass(frozen=True)
class SyntheticSet:
    images: np.ndarray
    labels: np.ndarray
    sample_run: str
    ddpm_run: str


def ddpm_seen_subjects(ddpm_run: str) -> set[str]:
    """Every subject a DDPM run trained on or selected its checkpoint with."""
    subjects = mlflow.artifacts.load_dict(f"runs:/{ddpm_run}/training_subjects.json")
    return set(subjects["train"]) | set(subjects["validation"])


def refuse_leaks(ddpm_run: str, splits: dict, fold: int) -> None:
    """The science rule: no DDPM behind a fold's training data saw its evaluation subjects."""
    evaluated = set(splits["folds"][fold]) | set(splits["test"])
    leaked = sorted(ddpm_seen_subjects(ddpm_run) & evaluated)
    if leaked:
        shown = ", ".join(leaked[:10]) + (
            f" and {len(leaked) - 10} more" if len(leaked) > 10 else ""
        )
        raise DataError(
            f"train_cls: refusing synthetic images of DDPM run {ddpm_run} for fold {fold}: it "
            f"trained on subject(s) {shown}, which this fold validates or tests on"
        )


def fold_ddpm_run(
    prepare_run: str, grade: str, variant: str, fold: int, mi_weight: float, profile: str, seed: int
) -> str:
    """The finished fold-k DDPM of one grade and variant; trains it when there is none."""
    from glioma.pipeline.train_ddpm_step import run_train_ddpm

    overrides = {
        "prepare_run": prepare_run,
        "grade": grade,
        "fold": fold,
        "mi_weight": 0 if variant == "std" else mi_weight,
        "profile": profile,
        "seed": seed,
    }
    config = build_config(TrainDDPMConfig, overrides)
    # site is not compared: the prepare run decides it, and this config carries the default
    params = {k: v for k, v in as_params(config).items() if k not in (*VOLATILE, "site")}
    run = find_finished_run("train_ddpm", params, {"grade": grade, "fold": fold})
    if run is not None:
        return run.info.run_id
    return run_train_ddpm(config)[0].run_id


def fold_sample_run(ddpm_run: str, n: int, profile: str, seed: int) -> str:
    """A finished sample run of ``n`` images from ``ddpm_run``; samples when there is none."""
    from glioma.pipeline.sample_step import run_sample

    tags = checked_run(ddpm_run, "train_ddpm").data.tags
    overrides = {"model": ddpm_run, "n": n, "profile": profile, "seed": seed}
    overrides |= {k: tags[k] for k in ("site", "grade", "variant")}
    run = find_finished_run("sample", overrides, {"ddpm_run": ddpm_run})
    if run is not None:
        return run.info.run_id
    return run_sample(build_config(SampleConfig, overrides)).run_id


def synthetic_for_fold(
    setup: str,
    prepare_run: str,
    splits: dict,
    fold: int,
    real_counts: dict[str, int],
    ratio: float,
    mi_weight: float,
    profile: str,
    seed: int,
) -> list[SyntheticSet]:
    """Per grade, ``ratio`` x the fold's real training images, from the fold's own DDPMs."""
    variant = VARIANT_OF_SETUP[setup]
    sets = []
    for grade, count in real_counts.items():
        n = max(1, round(ratio * count))
        ddpm_run = fold_ddpm_run(prepare_run, grade, variant, fold, mi_weight, profile, seed)
        refuse_leaks(ddpm_run, splits, fold)
        sample_run = fold_sample_run(ddpm_run, n, profile, seed)
        dataset = read_dataset(artifact_folder(sample_run, DATASET_ARTIFACT))
        if (dataset.subjects["grade"] != grade).any():
            raise DataError(f"sample run {sample_run}: expected only {grade} images")
        labels = dataset.subjects["label"].to_numpy()
        sets.append(SyntheticSet(dataset.images, labels, sample_run, ddpm_run))
    return sets
