"""The ``train_ddpm`` step: one DDPM per grade of one site, registered as ``...@best``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import torch
from tqdm.auto import tqdm

from glioma.config import TrainDDPMConfig, as_params, int_list
from glioma.data.dataset import Dataset, read_dataset
from glioma.data.preview import grid_figure
from glioma.data.splits import read_splits
from glioma.devices import resolve_device
from glioma.diffusion.checkpoint import save_checkpoint
from glioma.diffusion.distributed import broadcast, init_distributed, is_main_process
from glioma.diffusion.pyfunc import LoadedDDPM, log_ddpm, sampling_state
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.training import DDPMTrainer, TrainSettings
from glioma.diffusion.unet import UNetConfig
from glioma.errors import DataError
from glioma.pipeline.prepare_step import DATASET_ARTIFACT
from glioma.pipeline.upstream import (
    VOLATILE,
    artifact_folder,
    checked_prepare_run,
    load_prepared,
    prepare_run_output,
    prepared_site,
)
from glioma.tracking import project_root, step_run
from glioma.tracking.registry import ddpm_alias, ddpm_model_name, register

GRID_IMAGES = 16


@dataclass(frozen=True)
class DDPMOutput:
    run_id: str
    grade: str
    variant: str
    model_name: str
    version: str


def ddpm_subjects(
    dataset: Dataset, splits: dict, grade: str, val_fraction: float, seed: int, fold: int = -1
):
    """(training ids, validation ids) of one grade: non-test subjects only, split by seed.

    With ``fold`` = k the classifier's fold-k validation subjects are left out too, so that the
    fold-k classifier can train on this DDPM's images and still be validated on unseen subjects.
    """
    test = set(splits["test"]) | (set(splits["folds"][fold]) if fold >= 0 else set())
    pool = sorted(
        s
        for s, g in zip(dataset.subjects["subject_id"], dataset.subjects["grade"])
        if g == grade and s not in test
    )
    if len(pool) < 2:
        raise DataError(
            f"train_ddpm: only {len(pool)} non-test {grade} subject(s); need at least 2"
        )
    rng = np.random.default_rng(seed)
    n_val = max(1, int(round(val_fraction * len(pool))))
    val = sorted(rng.choice(pool, size=n_val, replace=False).tolist())
    train = [s for s in pool if s not in set(val)]
    refuse_test_subjects(train + val, splits)
    return train, val


def refuse_test_subjects(subject_ids: list[str], splits: dict) -> None:
    """The science rule: no test subject ever reaches a model evaluated on it."""
    leaked = sorted(set(subject_ids) & set(splits["test"]))
    if leaked:
        raise DataError(f"train_ddpm: refusing to train on test subject(s) {', '.join(leaked)}")


def _images(dataset: Dataset, ids: list[str]) -> torch.Tensor:
    return torch.from_numpy(dataset.select(ids)[0])


def checkpoint_path(config: TrainDDPMConfig, grade: str, data_hash: str) -> Path:
    """Where this exact training (settings + data) keeps ``last.pt``: the key of ``--resume``."""
    settings = {k: v for k, v in as_params(config).items() if k not in VOLATILE and k != "grade"}
    key = hashlib.sha256(
        json.dumps([settings, grade, data_hash], sort_keys=True).encode()
    ).hexdigest()[:16]
    return (
        project_root()
        / "data"
        / "checkpoints"
        / f"ddpm-{config.site}-{grade}-{config.variant}-{key}"
        / "last.pt"
    )


def _trainer(config: TrainDDPMConfig, image_size: int, device: torch.device) -> DDPMTrainer:
    unet = UNetConfig(
        image_size=image_size,
        base_channels=config.base_channels,
        channel_mults=int_list(config.channel_mults, "channel_mults"),
        num_res_blocks=config.num_res_blocks,
        attention_resolutions=int_list(config.attention_resolutions, "attention_resolutions")
        if config.attention_resolutions
        else (),
    )
    settings = TrainSettings(
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        mi_weight=config.mi_weight,
        mi_pair=config.mi_pair,
        ema_decay=config.ema_decay,
        seed=config.seed,
        bf16=config.bf16,
    )
    return DDPMTrainer(
        unet, NoiseSchedule(config.num_steps, config.beta_start, config.beta_end), settings, device
    )


def _log_grid(trainer: DDPMTrainer, name: str, seed: int) -> None:
    ddpm = LoadedDDPM(trainer.sampling_model.eval(), trainer.schedule, trainer.unet_config)
    images = ddpm.sample(GRID_IMAGES, seed=seed, steps=20)
    figure = grid_figure(images, title=name)
    mlflow.log_figure(figure, f"samples/{name}.png")
    plt.close(figure)


@dataclass
class GradeTraining:
    """Everything one grade's training needs, built the same way on every process."""

    trainer: DDPMTrainer
    train_ids: list[str]
    val_ids: list[str]
    train: torch.Tensor
    val: torch.Tensor
    last: Path  # this configuration's resumable checkpoint


def grade_training(
    config: TrainDDPMConfig, grade: str, dataset: Dataset, splits: dict
) -> GradeTraining:
    train_ids, val_ids = ddpm_subjects(
        dataset, splits, grade, config.val_fraction, config.seed, config.fold
    )
    trainer = _trainer(config, dataset.images.shape[-1], resolve_device(config.device))
    last = checkpoint_path(config, grade, dataset.data_hash)
    if config.resume:
        trainer.resume_from(last)
    return GradeTraining(
        trainer, train_ids, val_ids, _images(dataset, train_ids), _images(dataset, val_ids), last
    )


def train_grade(
    config: TrainDDPMConfig, grade: str, dataset: Dataset, splits: dict, prepare_run: str
) -> DDPMOutput:
    """Train, checkpoint, log and register one grade's DDPM inside the active run."""
    run = mlflow.active_run()
    job = grade_training(config, grade, dataset, splits)
    trainer = job.trainer
    mlflow.set_tags(
        {"parent_step_run": prepare_run, "data_hash": dataset.data_hash, "grade": grade}
    )
    mlflow.log_dict({"train": job.train_ids, "validation": job.val_ids}, "training_subjects.json")
    mlflow.log_params({"n_train_images": len(job.train_ids), "n_val_images": len(job.val_ids)})
    if trainer.epoch:
        mlflow.set_tag("resumed_from_epoch", trainer.epoch)
        for epoch, metrics in enumerate(trainer.history):
            mlflow.log_metrics(metrics, step=epoch)
    bar = tqdm(total=config.epochs, initial=trainer.epoch, desc=f"ddpm {grade}", unit="epoch")

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        mlflow.log_metrics(metrics, step=epoch)
        bar.update()
        bar.set_postfix(loss=f"{metrics['train_loss']:.4f}", val=f"{metrics['val_loss']:.4f}")
        every = config.sample_every
        if every and (epoch + 1) % every == 0 and epoch + 1 < config.epochs:
            _log_grid(trainer, f"epoch_{epoch + 1:04d}", config.seed)

    trainer.fit(job.train, job.val, job.last, on_epoch, config.checkpoint_every_s)
    bar.close()
    mlflow.log_metrics({"best_epoch": trainer.best_epoch, "best_val_loss": trainer.best_val})
    mlflow.log_artifact(str(job.last), "checkpoints")
    best = job.last.parent / "best.pt"
    save_checkpoint(best, sampling_state(trainer.best_state, trainer.unet_config, trainer.schedule))
    trainer.sampling_model.load_state_dict(trainer.best_state)
    _log_grid(trainer, "best", config.seed)
    name, logged = ddpm_model_name(config.site, grade, config.variant), log_ddpm(best)
    if config.register:
        alias = ddpm_alias(config.fold)
        version = register(logged.model_uri, name, alias)
        where = f"models:/{name}@{alias} (version {version})"
    else:
        version, where = "", f"runs:/{run.info.run_id}/ddpm (not registered)"
    print(
        f"train_ddpm {config.site} {grade} {config.variant}: best epoch {trainer.best_epoch}, "
        f"val loss {trainer.best_val:.4f} -> {where}"
    )
    # Both checkpoints are in the run now (last.pt as an artifact, best.pt inside the model):
    # the local copies only served a crash, and 40 of them per study add up (1.1 GB quick).
    shutil.rmtree(job.last.parent, ignore_errors=True)
    return DDPMOutput(run.info.run_id, grade, config.variant, name, version)


def _follow_main_process(config: TrainDDPMConfig, grades: list[str]) -> list[DDPMOutput]:
    """A torchrun worker other than rank 0: same data, same batches, no MLflow, no files."""
    folder = broadcast(None)
    dataset, splits = read_dataset(folder), read_splits(folder)
    for grade in grades:
        job = grade_training(config, grade, dataset, splits)
        job.trainer.fit(job.train, job.val)
    return []


def run_train_ddpm(config: TrainDDPMConfig) -> list[DDPMOutput]:
    """Both grades (or ``config.grade``) of ``config.site``; prepares the site first if needed.

    Under ``torchrun`` every process trains (DistributedDataParallel); rank 0 alone logs.
    """
    grades = [config.grade] if config.grade else ["LGG", "HGG"]
    if config.prepare_run:  # the given prepare run decides the site
        site = checked_prepare_run(config.prepare_run).data.tags["site"]
        config = dataclasses.replace(config, site=site)
    if init_distributed(resolve_device(config.device)) and not is_main_process():
        return _follow_main_process(config, grades)
    tags = {"site": config.site, "variant": config.variant, "profile": config.profile}
    if config.fold >= 0:
        tags["fold"] = config.fold
    outputs = []
    with step_run("train_ddpm", as_params(config), grade=config.grade or None, **tags):
        if config.prepare_run:
            prepared = prepare_run_output(config.prepare_run)
        else:
            prepared = prepared_site(config.site, config.source, config.profile, config.seed)
        dataset, splits = load_prepared(prepared)
        broadcast(str(artifact_folder(prepared.run_id, DATASET_ARTIFACT)))
        if config.grade:
            return [train_grade(config, config.grade, dataset, splits, prepared.run_id)]
        for grade in grades:
            with step_run("train_ddpm", as_params(config), grade=grade, **tags):
                outputs.append(train_grade(config, grade, dataset, splits, prepared.run_id))
    return outputs
