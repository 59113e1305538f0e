"""``train_ddpm``: one grade's DDPM of one site, registered as ``...@best`` or ``...@fold<k>``.

``grade_training`` plans (subjects, trainer, resumable checkpoint), ``compute`` trains (no
MLflow in it: it reports each validation to a callback), ``record_start`` and ``record`` log
(parameters, training subjects, then the best step, its grid and the model); ``run`` strings
them together and logs the curves as they come. Which subjects a DDPM may see is
``glioma.data.splits.ddpm_subjects``. Under ``torchrun`` every process trains
(DistributedDataParallel) and rank 0 alone runs this step; the other ranks follow in
``follow_main_process``. ``ddpm_node`` declares the node; ``run_train_ddpm`` is the entry
point (both grades, or one).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import torch
from tqdm.auto import tqdm

from glioma.config import TrainDDPMConfig
from glioma.data.dataset import Dataset, read_dataset
from glioma.data.preview import figure_pixels, grid_figure
from glioma.data.splits import ddpm_subjects, read_splits
from glioma.devices import resolve_device
from glioma.diffusion.checkpoint import save_checkpoint
from glioma.diffusion.distributed import broadcast, init_distributed, is_main_process
from glioma.diffusion.pyfunc import LoadedDDPM, log_ddpm, sampling_state
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.training import DDPMTrainer
from glioma.names import (
    DATASET_ARTIFACT,
    DDPM_MODEL,
    GRADES,
    LABELS,
    MODEL_ID,
    TRAINING_SUBJECTS,
)
from glioma.pipeline.graph import Graph, Node, node
from glioma.pipeline.inputs import artifact_folder, data_read, load_prepared
from glioma.pipeline.invoke import run_entry, run_group
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.spec import StepInputs, StepSpec, T
from glioma.pipeline.steps.prepare import upstream_prepare, with_site_of
from glioma.tracking import project_root
from glioma.tracking.datasets import log_reads
from glioma.tracking.registry import ddpm_alias, ddpm_model_name, register, set_alias
from glioma.tracking.runs import REUSE_KEY, active_run_tag

GRID_IMAGES = 16
EvalReport = Callable[[int, dict[str, float], np.ndarray | None], None]


def checkpoint_path(config: TrainDDPMConfig, key: str) -> Path:
    """Where the training of reuse key ``key`` keeps ``last.pt``: ``--resume`` continues a run
    only under the key its finished run would have (settings, data and code alike), so a
    source edit never resumes a checkpoint of other code."""
    name = f"ddpm-{config.site}-{config.grade_label}-{config.variant}-{key[:16]}"
    return project_root() / "data" / "checkpoints" / name / "last.pt"


def build_trainer(config: TrainDDPMConfig, image_size: int, n_train: int) -> DDPMTrainer:
    """The trainer of the library values the config builds (``TrainDDPMConfig.unet`` ...)."""
    return DDPMTrainer(
        config.unet(image_size),
        NoiseSchedule.of(config.noise_schedule),
        config.train_settings(n_train),
        resolve_device(config.device),
    )


@dataclass
class GradeTraining:
    """Everything one grade's training needs, built the same way on every process."""

    trainer: DDPMTrainer
    train_ids: list[str]
    val_ids: list[str]
    last: Path  # this configuration's resumable checkpoint
    resumed_from: int  # optimiser steps done before this process started (0: a fresh start)


def grade_training(
    config: TrainDDPMConfig, dataset: Dataset, splits: dict, *, key: str
) -> GradeTraining:
    """One grade's job, or, for a conditional DDPM, both grades' (each split on its own);
    ``key``: the node's reuse key, which names its resumable checkpoint."""
    train_ids, val_ids = [], []
    for grade in GRADES if config.conditional else (config.grade,):
        subjects = dataset.subjects
        train, val = ddpm_subjects(
            subjects["subject_id"].tolist(),
            subjects["grade"].tolist(),
            splits,
            grade=grade,
            val_fraction=config.val_fraction,
            seed=config.seed,
            held_out=config.held_out_folds,
        )
        train_ids, val_ids = train_ids + train, val_ids + val
    trainer = build_trainer(config, dataset.images.shape[-1], len(train_ids))
    last = checkpoint_path(config, key)
    if config.resume:
        trainer.resume_from(last)
    return GradeTraining(trainer, train_ids, val_ids, last, trainer.step)


def job_images(dataset: Dataset, job: GradeTraining) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, validation) images of one job, in dataset order."""
    train = torch.from_numpy(dataset.select(job.train_ids)[0])
    return train, torch.from_numpy(dataset.select(job.val_ids)[0])


def job_labels(dataset: Dataset, job: GradeTraining) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(training, validation) classes of a conditional job, in the order of ``job_images``."""
    if not job.trainer.unet_config.num_classes:
        return None
    subjects = dataset.subjects

    def labels(ids: list[str]) -> torch.Tensor:
        rows = subjects[subjects["subject_id"].isin(ids)]
        return torch.tensor([LABELS[g] for g in rows["grade"]], dtype=torch.long)

    return labels(job.train_ids), labels(job.val_ids)


def grid_images(trainer: DDPMTrainer, seed: int) -> np.ndarray:
    """16 samples of the current sampling weights (8 per grade from a conditional DDPM)."""
    ddpm = LoadedDDPM(trainer.sampling_model.eval(), trainer.schedule, trainer.unet_config)
    if not ddpm.conditional:
        return ddpm.sample(GRID_IMAGES, seed=seed, steps=20)
    half = GRID_IMAGES // 2
    return np.concatenate([ddpm.sample(half, seed=seed, steps=20, grade=g) for g in GRADES])


def fit(config: TrainDDPMConfig, job: GradeTraining, dataset: Dataset, report: EvalReport):
    """Train to the last step, reporting each validation (with a grid every ``sample_every``)."""
    trainer = job.trainer
    last_grid = [trainer.step // config.sample_every if config.sample_every else 0]

    def on_eval(step: int, metrics: dict[str, float]) -> None:
        every, total = config.sample_every, trainer.settings.train_steps
        grid = every > 0 and step // every > last_grid[0] and step < total
        if grid:
            last_grid[0] = step // every
        report(step, metrics, grid_images(trainer, config.seed) if grid else None)

    train, val = job_images(dataset, job)
    trainer.fit(
        train,
        val,
        checkpoint=job.last,
        on_eval=on_eval,
        checkpoint_every_s=config.checkpoint_every_s,
        labels=job_labels(dataset, job),
    )
    best = job.last.parent / "best.pt"
    save_checkpoint(best, sampling_state(trainer.best_state, trainer.unet_config, trainer.schedule))
    trainer.sampling_model.load_state_dict(trainer.best_state)
    return best, grid_images(trainer, config.seed)


GRID_KEY = "samples"  # the grids during training: one image key, MLflow's step slider


def log_grid(images: np.ndarray, *, step: int | None = None) -> None:
    """A grid of samples: at a training ``step`` under the image key ``samples`` (the UI's
    step slider), or, without one, the best weights' grid as ``samples/best.png``."""
    title = f"step {step}" if step is not None else "best"
    figure = grid_figure(images, title=title)
    if step is None:
        mlflow.log_figure(figure, f"{GRID_KEY}/best.png")
    else:
        mlflow.log_image(figure_pixels(figure), key=GRID_KEY, step=step)
    plt.close(figure)


@dataclass
class TrainedDDPM:
    """What ``compute`` returns: the job and its best weights (the sampling checkpoint)."""

    job: GradeTraining
    best: Path  # best.pt: the EMA weights of the best validation, with schedule and UNet
    best_grid: np.ndarray  # 16 samples of them


def compute(
    config: TrainDDPMConfig, job: GradeTraining, dataset: Dataset, report: EvalReport
) -> TrainedDDPM:
    """Train ``job`` to its last step (no MLflow: each validation goes to ``report``)."""
    return TrainedDDPM(job, *fit(config, job, dataset, report))


def record_start(
    config: TrainDDPMConfig, job: GradeTraining, dataset: Dataset, prepare: NodeResult
) -> None:
    """What the run says before training: its data, subjects, counts and settings (so a crashed
    run still names what it trained on)."""
    mlflow.set_tags({"data_hash": dataset.data_hash})
    log_reads(
        [
            data_read(dataset, prepare, "training", job.train_ids),
            data_read(dataset, prepare, "validation", job.val_ids),
        ]
    )
    mlflow.log_dict({"train": job.train_ids, "validation": job.val_ids}, TRAINING_SUBJECTS)
    steps = job.trainer.settings.train_steps
    mlflow.log_params(
        {"n_train_images": len(job.train_ids), "n_val_images": len(job.val_ids), "steps": steps}
    )
    mlflow.set_tag("held_out_folds", ",".join(map(str, config.held_out_folds)) or "none")
    mlflow.set_tag("conditional", str(config.conditional).lower())
    grades = dataset.subjects.set_index("subject_id")["grade"]
    for name, ids in (("train", job.train_ids), ("val", job.val_ids)):
        counts = grades[ids].value_counts()
        mlflow.log_params({f"n_{name}_{g}": int(counts.get(g, 0)) for g in GRADES})
    if config.epochs:
        print(
            f"train_ddpm {config.site} {config.grade_label}: epochs {config.epochs} over "
            f"{len(job.train_ids)} images = {steps} optimiser steps (instead of train_steps)"
        )
    if job.resumed_from:
        mlflow.set_tag("resumed_from_step", job.resumed_from)
        for row in job.trainer.history:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "step"}, step=int(row["step"]))


def record(config: TrainDDPMConfig, trained: TrainedDDPM) -> None:
    """The best step, its grid and the model (registered unless ``--register false``)."""
    trainer = trained.job.trainer
    log_grid(trained.best_grid)
    logged = log_ddpm(trained.best, name=DDPM_MODEL, step=trainer.best_step)
    best = {"best_step": trainer.best_step, "best_val_loss": trainer.best_val}
    mlflow.log_metrics(best, model_id=logged.model_id)  # on the run and the logged model
    mlflow.set_tag(MODEL_ID, logged.model_id)
    where = f"{logged.model_uri} (not registered)"
    if config.register:
        name, alias = (
            ddpm_model_name(config.site, config.grade_label, config.model_label),
            ddpm_alias(config.held_out_folds),
        )
        version = register(logged.model_uri, name, alias)
        mlflow.set_tags({"model_name": name, "model_version": version})
        where = f"models:/{name}@{alias} (version {version})"
    print(
        f"train_ddpm {config.site} {config.grade_label} {config.variant}: best at step "
        f"{trainer.best_step} of {trainer.settings.train_steps}, val loss "
        f"{trainer.best_val:.4f} -> {where}"
    )


@dataclass(frozen=True)
class DDPMInputs(StepInputs, Generic[T]):
    """A DDPM trains on one prepare run."""

    prepare: T


def run(config: TrainDDPMConfig, inputs: DDPMInputs[NodeResult]) -> None:
    """Train one grade inside the run ``ensure`` opened: plan, record the start, compute with
    each validation logged as it comes, record the result."""
    prepare = inputs.prepare
    dataset, splits = load_prepared(prepare.run_id)
    key = active_run_tag(REUSE_KEY)
    broadcast((str(artifact_folder(prepare.run_id, DATASET_ARTIFACT)), key))  # torchrun's ranks
    job = grade_training(config, dataset, splits, key=key)
    record_start(config, job, dataset, prepare)
    steps, desc = job.trainer.settings.train_steps, f"ddpm {config.grade_label}"
    bar = tqdm(total=steps, initial=job.resumed_from, desc=desc, unit="step")

    def report(step: int, metrics: dict[str, float], grid: np.ndarray | None) -> None:
        mlflow.log_metrics(metrics, step=step)
        bar.update(step - bar.n)
        bar.set_postfix(loss=f"{metrics['train_loss']:.4f}", val=f"{metrics['val_loss']:.4f}")
        if grid is not None:
            log_grid(grid, step=step)

    trained = compute(config, job, dataset, report)
    bar.close()
    record(config, trained)
    # best.pt is inside the model now; last.pt only served a crash, and 40 of them per study
    # add up (1.1 GB quick): neither is kept or logged.
    shutil.rmtree(job.last.parent, ignore_errors=True)


def publish(config: TrainDDPMConfig, result: NodeResult) -> None:
    """Point ``@best`` / ``@fold<k>`` at this result's version (after a reuse too)."""
    if result.reused:
        broadcast(None)  # torchrun's followers: nothing to train for this grade
        if result.tags.get("model_version"):
            set_alias(
                result.tags["model_name"],
                ddpm_alias(config.held_out_folds),
                result.tags["model_version"],
            )


def follow_main_process(config: TrainDDPMConfig, grades: list[str]) -> None:
    """A torchrun rank other than 0: the same data and batches as rank 0, no MLflow, no files."""
    for grade in grades:
        shared = broadcast(None)
        if shared is None:
            continue  # rank 0 reused a finished run of this grade
        folder, key = shared
        dataset, splits = read_dataset(folder), read_splits(folder)
        job = grade_training(dataclasses.replace(config, grade=grade), dataset, splits, key=key)
        job.trainer.fit(*job_images(dataset, job), labels=job_labels(dataset, job))


STEP = StepSpec("train_ddpm", run, inputs=DDPMInputs, publish=publish, trains=True)


def folds_label(held_out: tuple[int, ...]) -> str | None:
    """(3,) -> "3", (0, 1, 2) -> "0-1-2", () -> None: the ``fold`` tag of a DDPM and its samples."""
    return "-".join(map(str, held_out)) or None


def ddpm_node(prepare: Node, config: TrainDDPMConfig) -> Node:
    tags = {"site": config.site, "grade": config.grade, "variant": config.variant}
    tags |= {"fold": folds_label(config.held_out_folds), "profile": config.profile}
    return node("train_ddpm", config, DDPMInputs(prepare), tags=tags)


def job_grades(config: TrainDDPMConfig) -> list[str]:
    """One DDPM per grade, or ``config.grade``'s alone, or one conditional DDPM ("")."""
    return [config.grade] if config.grade or config.conditional else list(GRADES)


def train_ddpm_nodes(config: TrainDDPMConfig) -> list[Node]:
    prepare = upstream_prepare(config, config.site)
    config = with_site_of(config, prepare)
    return [ddpm_node(prepare, dataclasses.replace(config, grade=g)) for g in job_grades(config)]


def run_train_ddpm(config: TrainDDPMConfig) -> list[NodeResult]:
    """Both grades (or ``config.grade``); under ``torchrun`` ranks > 0 follow rank 0."""
    grades = job_grades(config)
    if init_distributed(resolve_device(config.device)) and not is_main_process():
        follow_main_process(config, grades)
        return []
    targets = train_ddpm_nodes(config)
    runner = run_group if len(targets) > 1 else run_entry
    invocation = runner(Graph(targets), config)
    return [invocation.result(t) for t in targets]
