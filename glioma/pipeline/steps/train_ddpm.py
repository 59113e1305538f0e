"""``train_ddpm``: one grade's DDPM of one site, registered as ``...@best`` or ``...@fold<k>``.

``compute`` trains (no MLflow in it: it reports each epoch to a callback); ``record`` is the
one place that logs: parameters, the per-epoch curves, sample grids, the training subjects,
and the model. Under ``torchrun`` every process trains (DistributedDataParallel) and rank 0
alone runs this step; the other ranks follow in ``follow_main_process``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import torch
from tqdm.auto import tqdm

from glioma.config import TrainDDPMConfig, int_list, result_fields
from glioma.data.dataset import Dataset, read_dataset
from glioma.data.preview import grid_figure
from glioma.data.splits import read_splits
from glioma.devices import resolve_device
from glioma.diffusion.checkpoint import save_checkpoint
from glioma.diffusion.distributed import broadcast
from glioma.diffusion.pyfunc import LoadedDDPM, log_ddpm, sampling_state
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.training import DDPMTrainer, TrainSettings
from glioma.diffusion.unet import UNetConfig
from glioma.errors import DataError
from glioma.names import DATASET_ARTIFACT, DDPM_MODEL, TRAINING_SUBJECTS
from glioma.pipeline.inputs import artifact_folder, load_prepared
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.spec import Inputs, StepSpec
from glioma.tracking import project_root
from glioma.tracking.registry import ddpm_alias, ddpm_model_name, register, set_alias

GRID_IMAGES = 16
EpochReport = Callable[[int, dict[str, float], np.ndarray | None], None]


def split_subjects(
    dataset: Dataset, splits: dict, *, grade: str, val_fraction: float, seed: int, fold: int = -1
) -> tuple[list[str], list[str]]:
    """(training ids, validation ids) of one grade: non-test subjects only, split by seed.

    With ``fold`` = k the classifier's fold-k validation subjects are left out too, so that the
    fold-k classifier can train on this DDPM's images and still be validated on unseen subjects.
    """
    excluded = set(splits["test"]) | (set(splits["folds"][fold]) if fold >= 0 else set())
    pool = sorted(
        s
        for s, g in zip(dataset.subjects["subject_id"], dataset.subjects["grade"])
        if g == grade and s not in excluded
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


def checkpoint_path(config: TrainDDPMConfig, data_hash: str) -> Path:
    """Where this exact training (result settings + data) keeps ``last.pt``: ``--resume``'s key."""
    settings = {k: str(v) for k, v in result_fields(config).items()}
    key = hashlib.sha256(json.dumps([settings, data_hash], sort_keys=True).encode()).hexdigest()
    name = f"ddpm-{config.site}-{config.grade}-{config.variant}-{key[:16]}"
    return project_root() / "data" / "checkpoints" / name / "last.pt"


def unet_config(config: TrainDDPMConfig, image_size: int) -> UNetConfig:
    attention = config.attention_resolutions
    return UNetConfig(
        image_size=image_size,
        base_channels=config.base_channels,
        channel_mults=int_list(config.channel_mults, "channel_mults"),
        num_res_blocks=config.num_res_blocks,
        attention_resolutions=int_list(attention, "attention_resolutions") if attention else (),
    )


def build_trainer(config: TrainDDPMConfig, image_size: int) -> DDPMTrainer:
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
    schedule = NoiseSchedule(config.num_steps, config.beta_start, config.beta_end)
    device = resolve_device(config.device)
    return DDPMTrainer(unet_config(config, image_size), schedule, settings, device)


@dataclass
class GradeTraining:
    """Everything one grade's training needs, built the same way on every process."""

    trainer: DDPMTrainer
    train_ids: list[str]
    val_ids: list[str]
    last: Path  # this configuration's resumable checkpoint
    resumed_from: int  # epochs done before this process started (0: a fresh start)


def grade_training(config: TrainDDPMConfig, dataset: Dataset, splits: dict) -> GradeTraining:
    train_ids, val_ids = split_subjects(
        dataset,
        splits,
        grade=config.grade,
        val_fraction=config.val_fraction,
        seed=config.seed,
        fold=config.fold,
    )
    trainer = build_trainer(config, dataset.images.shape[-1])
    last = checkpoint_path(config, dataset.data_hash)
    if config.resume:
        trainer.resume_from(last)
    return GradeTraining(trainer, train_ids, val_ids, last, trainer.epoch)


def job_images(dataset: Dataset, job: GradeTraining) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, validation) images of one grade's job, in dataset order."""
    train = torch.from_numpy(dataset.select(job.train_ids)[0])
    return train, torch.from_numpy(dataset.select(job.val_ids)[0])


def grid_images(trainer: DDPMTrainer, seed: int) -> np.ndarray:
    ddpm = LoadedDDPM(trainer.sampling_model.eval(), trainer.schedule, trainer.unet_config)
    return ddpm.sample(GRID_IMAGES, seed=seed, steps=20)


def fit(config: TrainDDPMConfig, job: GradeTraining, dataset: Dataset, report: EpochReport):
    """Train to the last epoch, reporting each one (with a grid every ``sample_every``)."""
    trainer = job.trainer

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        every, done = config.sample_every, epoch + 1
        grid = done % every == 0 and done < config.epochs if every else False
        report(epoch, metrics, grid_images(trainer, config.seed) if grid else None)

    train, val = job_images(dataset, job)
    trainer.fit(
        train,
        val,
        checkpoint=job.last,
        on_epoch=on_epoch,
        checkpoint_every_s=config.checkpoint_every_s,
    )
    best = job.last.parent / "best.pt"
    save_checkpoint(best, sampling_state(trainer.best_state, trainer.unet_config, trainer.schedule))
    trainer.sampling_model.load_state_dict(trainer.best_state)
    return best, grid_images(trainer, config.seed)


def log_grid(images: np.ndarray, name: str) -> None:
    figure = grid_figure(images, title=name)
    mlflow.log_figure(figure, f"samples/{name}.png")
    plt.close(figure)


def run(config: TrainDDPMConfig, inputs: Inputs) -> None:
    """Train one grade inside the run ``ensure`` opened, and log it (the one place)."""
    prepare = inputs["prepare"]
    dataset, splits = load_prepared(prepare.run_id)
    broadcast(str(artifact_folder(prepare.run_id, DATASET_ARTIFACT)))  # torchrun's followers
    job = grade_training(config, dataset, splits)
    mlflow.set_tags({"data_hash": dataset.data_hash})
    mlflow.log_dict({"train": job.train_ids, "validation": job.val_ids}, TRAINING_SUBJECTS)
    mlflow.log_params({"n_train_images": len(job.train_ids), "n_val_images": len(job.val_ids)})
    if job.resumed_from:
        mlflow.set_tag("resumed_from_epoch", job.resumed_from)
        for epoch, metrics in enumerate(job.trainer.history):
            mlflow.log_metrics(metrics, step=epoch)
    bar = tqdm(total=config.epochs, initial=job.resumed_from, desc=f"ddpm {config.grade}")

    def report(epoch: int, metrics: dict[str, float], grid: np.ndarray | None) -> None:
        mlflow.log_metrics(metrics, step=epoch)
        bar.update()
        bar.set_postfix(loss=f"{metrics['train_loss']:.4f}", val=f"{metrics['val_loss']:.4f}")
        if grid is not None:
            log_grid(grid, f"epoch_{epoch + 1:04d}")

    best, best_grid = fit(config, job, dataset, report)
    bar.close()
    trainer = job.trainer
    mlflow.log_metrics({"best_epoch": trainer.best_epoch, "best_val_loss": trainer.best_val})
    log_grid(best_grid, "best")
    logged = log_ddpm(best, name=DDPM_MODEL)
    where = f"runs:/{mlflow.active_run().info.run_id}/{DDPM_MODEL} (not registered)"
    if config.register:
        name, alias = (
            ddpm_model_name(config.site, config.grade, config.variant),
            ddpm_alias(config.fold),
        )
        version = register(logged.model_uri, name, alias)
        mlflow.set_tags({"model_name": name, "model_version": version})
        where = f"models:/{name}@{alias} (version {version})"
    print(
        f"train_ddpm {config.site} {config.grade} {config.variant}: best epoch "
        f"{trainer.best_epoch}, val loss {trainer.best_val:.4f} -> {where}"
    )
    # best.pt is inside the model now; last.pt only served a crash, and 40 of them per study
    # add up (1.1 GB quick): neither is kept or logged.
    shutil.rmtree(job.last.parent, ignore_errors=True)


def publish(config: TrainDDPMConfig, result: NodeResult) -> None:
    """Point ``@best`` / ``@fold<k>`` at this result's version (after a reuse too)."""
    if result.reused:
        broadcast(None)  # torchrun's followers: nothing to train for this grade
        if result.tags.get("model_version"):
            set_alias(
                result.tags["model_name"], ddpm_alias(config.fold), result.tags["model_version"]
            )


def follow_main_process(config: TrainDDPMConfig, grades: list[str]) -> None:
    """A torchrun rank other than 0: the same data and batches as rank 0, no MLflow, no files."""
    for grade in grades:
        folder = broadcast(None)
        if folder is None:
            continue  # rank 0 reused a finished run of this grade
        dataset, splits = read_dataset(folder), read_splits(folder)
        job = grade_training(dataclasses.replace(config, grade=grade), dataset, splits)
        job.trainer.fit(*job_images(dataset, job))


STEP = StepSpec("train_ddpm", run, publish)
