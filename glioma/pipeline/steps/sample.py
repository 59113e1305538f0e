"""``sample``: a DDPM run -> a synthetic dataset in the real data's format, flagged synthetic.

``sample_node`` declares the node and ``synthetic_set`` the DDPM -> sample chain (from its
``ChainConfigs``) that the study, a classifier fold, ``score_gen`` and ``tune`` all declare;
``run_sample`` is the entry point (the given ``--model``'s, or the plan's DDPM of the site,
grade and variant).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Generic

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from tqdm.auto import tqdm

from glioma.config import SampleConfig, TrainDDPMConfig
from glioma.config.plan import ChainConfigs, plan_for
from glioma.data.dataset import Dataset, write_dataset
from glioma.data.preview import grid_figure
from glioma.devices import resolve_device
from glioma.diffusion.pyfunc import CHECKPOINT_ARTIFACT, LoadedDDPM
from glioma.errors import ConfigError, DataError
from glioma.names import DATASET_ARTIFACT, LABELS, MODEL_ID
from glioma.pipeline.given import given
from glioma.pipeline.graph import Node, node
from glioma.pipeline.invoke import run_target
from glioma.pipeline.keys import NodeResult
from glioma.pipeline.spec import StepInputs, StepSpec, T
from glioma.pipeline.steps.prepare import prepare_for, refuse_small_site
from glioma.pipeline.steps.train_ddpm import ddpm_node, folds_label
from glioma.tracking import code_fingerprint, project_root
from glioma.tracking.registry import ddpm_model_name, pinned, registered_ddpms


def model_uri(ddpm: NodeResult) -> str:
    """The DDPM's registered version when it has one, else the logged model of its run."""
    tags = ddpm.tags
    if tags.get("model_version"):
        return f"models:/{tags['model_name']}/{tags['model_version']}"
    if tags.get(MODEL_ID):
        return f"models:/{tags[MODEL_ID]}"
    raise DataError(f"train_ddpm run {ddpm.run_id}: no registered version and no logged model")


def load_ddpm(uri: str, device: str) -> LoadedDDPM:
    try:
        local = Path(mlflow.artifacts.download_artifacts(uri))
    except mlflow.exceptions.MlflowException as exc:
        raise DataError(f"{uri}: cannot load this DDPM ({str(exc).splitlines()[0]})") from None
    checkpoint = next(local.rglob("best.pt"), None)
    if checkpoint is None:
        raise DataError(f"{uri}: no {CHECKPOINT_ARTIFACT} (best.pt) inside; not a glioma DDPM")
    return LoadedDDPM.from_checkpoint(checkpoint, resolve_device(device))


def image_count(config: SampleConfig, ddpm: NodeResult, grade: str) -> int:
    """``n``, or n_per_subject x the real subjects of ``grade`` the DDPM trained and selected
    on (a conditional DDPM saw both grades; the per-grade counts are on its run)."""
    if config.n:
        return config.n
    params = ddpm.params
    if f"n_train_{grade}" in params:
        subjects = int(params[f"n_train_{grade}"]) + int(params[f"n_val_{grade}"])
    else:  # a DDPM run of an older release: one grade, total counts
        subjects = int(params.get("n_train_images", 0)) + int(params.get("n_val_images", 0))
    return max(1, round(config.n_per_subject * subjects))


def draw(ddpm: LoadedDDPM, config: SampleConfig, n: int, grade: str) -> np.ndarray:
    steps = ddpm.schedule.num_steps if config.sampler == "ddpm" else config.steps
    with tqdm(total=steps * -(-n // config.batch_size), desc=f"sample {grade}", unit="step") as bar:
        return ddpm.sample(
            n,
            seed=config.seed,
            sampler=config.sampler,
            steps=config.steps,
            eta=config.eta,
            batch_size=config.batch_size,
            progress=bar.update,
            grade=grade if ddpm.conditional else "",
            guidance=config.guidance,
        )


def synthetic_subjects(
    n: int, *, grade: str, site: str, ddpm_run: str, seed: int, source: str
) -> pd.DataFrame:
    """``subjects.csv`` rows of synthetic images: flagged, and traceable to their DDPM run."""
    return pd.DataFrame(
        {
            "subject_id": [f"syn-{ddpm_run[:8]}-{seed}-{i:05d}" for i in range(n)],
            "grade": grade,
            "label": LABELS[grade],
            "site": site,
            "synthetic": True,
            "slice_index": -1,
            "mask_source": "",
            "spacing_mm": "",
            "lesion_area_mm2": float("nan"),
            "source": source,
        }
    )


def compute(config: SampleConfig, ddpm: NodeResult) -> tuple[Dataset, Path, str]:
    """Draw the images and write the dataset files; (dataset, folder, model URI)."""
    uri = model_uri(ddpm)
    model = load_ddpm(uri, config.device)
    site, grade, variant = (
        ddpm.tags.get(k, getattr(config, k)) for k in ("site", "grade", "variant")
    )
    n = image_count(config, ddpm, grade)
    images = draw(model, config, n, grade)
    meta = {
        "synthetic": True,
        "ddpm_run": ddpm.run_id,
        "model_uri": uri,
        "sampler": config.sampler,
        "steps": config.steps,
        "eta": config.eta,
        "guidance": config.guidance if model.conditional else None,
        "seed": config.seed,
        "code_fingerprint": code_fingerprint(),
        "patch_size": model.config.image_size,
        "site": site,
        "variant": variant,
    }
    default = project_root() / "data" / "synthetic" / f"{site}-{grade}-{variant}"
    folder = Path(config.out_dir) if config.out_dir else default
    rows = synthetic_subjects(
        n, grade=grade, site=site, ddpm_run=ddpm.run_id, seed=config.seed, source=uri
    )
    return write_dataset(folder, images, rows, meta), folder, uri


def record(dataset: Dataset, folder: Path, uri: str, config: SampleConfig) -> None:
    """The one place sample logs: the dataset files, its hash, and a grid."""
    subjects = dataset.subjects
    site, grade = subjects["site"].iloc[0], subjects["grade"].iloc[0]
    mlflow.set_tags(
        {"data_hash": dataset.data_hash, "model_uri": uri, "site": site, "grade": grade}
    )
    mlflow.log_metric("n_images", len(dataset.images))
    mlflow.log_artifacts(str(folder), DATASET_ARTIFACT)
    figure = grid_figure(dataset.images[:32], title=f"{site} {grade}: {config.sampler} samples")
    mlflow.log_figure(figure, "samples.png")
    plt.close(figure)
    print(f"sample: {len(dataset.images)} synthetic {grade} images from {uri} -> {folder}")


@dataclass(frozen=True)
class SampleInputs(StepInputs, Generic[T]):
    """A sample run draws from one DDPM."""

    ddpm: T


def run(config: SampleConfig, inputs: SampleInputs[NodeResult]) -> None:
    record(*compute(config, inputs.ddpm), config)


STEP = StepSpec("sample", run, inputs=SampleInputs)


def sample_node(ddpm: Node, config: SampleConfig, *, held_out: tuple[int, ...] = ()) -> Node:
    tags = {"site": config.site, "grade": config.grade, "variant": config.variant}
    tags |= {"fold": folds_label(held_out), "profile": config.profile}
    return node("sample", config, SampleInputs(ddpm), tags=tags)


def synthetic_set(prepare: Node, chain: ChainConfigs) -> tuple[Node, Node]:
    """(sample, DDPM): the chain's DDPM trained on ``prepare`` and its images."""
    ddpm = ddpm_node(prepare, chain.ddpm)
    return sample_node(ddpm, chain.sample, held_out=chain.held_out), ddpm


def ddpm_run_of(model: str) -> str:
    """The train_ddpm run behind a models:/ URI (registered, or a logged model's id), a
    runs:/ URI or a run id."""
    logged = model.removeprefix("models:/")
    if model.startswith("models:/m-") and "/" not in logged and "@" not in logged:
        try:
            return mlflow.get_logged_model(logged).source_run_id
        except mlflow.exceptions.MlflowException:
            raise DataError(f"{model}: no such logged model") from None
    if model.startswith("models:/"):
        name, _, number = pinned(model).removeprefix("models:/").partition("/")
        return MlflowClient().get_model_version(name, number).run_id
    if model.startswith("runs:/"):
        return model.removeprefix("runs:/").split("/", 1)[0]
    return model


def sample_graph_nodes(config: SampleConfig, *, step: str = "sample") -> tuple[Node, Node]:
    """(sample, DDPM) nodes: the given model's, or those of the plan's DDPM of the config's
    site, grade and variant (the profile's MI weight for ``mi``)."""
    if config.model:
        ddpm = given(ddpm_run_of(config.model), "train_ddpm")
        tags = ddpm.config.result.tags
        grade = tags.get("grade", config.grade)  # a conditional DDPM draws the grade asked
        config = dataclasses.replace(
            config, site=tags["site"], grade=grade, variant=tags["variant"]
        )
        return sample_node(ddpm, config), ddpm
    chain = plan_for(config).chain(config.site, config.grade, config.variant, sample=config)
    announce_variant_ddpm(chain.ddpm, step=step)
    prepare = prepare_for(config.site, config.data, profile=config.profile, seed=config.seed)
    refuse_small_site(prepare)
    return synthetic_set(prepare, chain)


def announce_variant_ddpm(ddpm: TrainDDPMConfig, *, step: str) -> None:
    """Say which DDPM a variant stands for before anything runs; refuse to train one when the
    store holds DDPMs of that site, grade and variant under other MI settings only (the user's
    own, which ``--model`` picks), so a DDPM nobody asked for is never trained silently."""
    name = ddpm_model_name(ddpm.site, ddpm.grade_label, ddpm.model_label)
    settings = f"mi_weight {ddpm.mi_weight:g}"
    if ddpm.variant == "mi":
        settings += ", " + ", ".join(f"{k} {v}" for k, v in ddpm.mi_form.items())
    print(f"{step}: the {ddpm.variant} DDPM: {name} ({settings}); reused when this store has it")
    registered = registered_ddpms(ddpm.site, ddpm.grade_label, ddpm.variant)
    if registered and name not in registered:
        choices = ", ".join(f"models:/{other}@best" for other in registered)
        raise ConfigError(
            f"variant: this store's {ddpm.variant} DDPMs of {ddpm.site} {ddpm.grade_label} are "
            f"{choices}, none with the profile's MI settings ({name}); pass --model to use one, "
            f"or train {name} first with train_ddpm"
        )


def run_sample(config: SampleConfig) -> NodeResult:
    target, _ = sample_graph_nodes(config)
    return run_target(target, config)
