"""Inputs a step needs from earlier steps: reuse a finished run, or run that step first."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import mlflow

from glioma.config import PrepareConfig, SampleConfig, as_params, build_config
from glioma.data.dataset import Dataset, read_dataset
from glioma.data.splits import read_splits
from glioma.errors import DataError
from glioma.pipeline.prepare_step import (
    DATASET_ARTIFACT,
    PrepareOutput,
    input_fingerprint,
    run_prepare,
)
from glioma.tracking import configure_tracking, project_root
from glioma.tracking.registry import ddpm_model_name, resolve_alias
from glioma.tracking.reuse import find_finished_run


def prepared_site(
    site: str, source: str, profile: str, seed: int, workers: int = 2, **overrides
) -> PrepareOutput:
    """The finished ``prepare`` run of ``site`` with these settings; runs prepare if none."""
    config = build_config(
        PrepareConfig,
        {
            "site": site,
            "source": source,
            "profile": profile,
            "seed": seed,
            "workers": workers,
            **overrides,
        },
    )
    params = {k: v for k, v in as_params(config).items() if k != "workers"}
    tags = {"site": site, "source_fingerprint": input_fingerprint(config)}
    run = find_finished_run("prepare", params, tags)
    if run is None:
        return run_prepare(config)
    print(f"reusing prepare run {run.info.run_id} for {site}")
    return prepare_run_output(run.info.run_id)


def checked_run(run_id: str, step: str) -> mlflow.entities.Run:
    """A given run of ``step``, checked: it must exist, be a ``step`` run and have FINISHED."""
    configure_tracking()
    try:
        run = mlflow.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise DataError(f"{step}_run {run_id}: no such run") from None
    if run.data.tags.get("step") != step or run.info.status != "FINISHED":
        raise DataError(f"{step}_run {run_id}: not a FINISHED {step} run ({run.info.status})")
    return run


def checked_prepare_run(run_id: str) -> mlflow.entities.Run:
    return checked_run(run_id, "prepare")


def sampled_run(site: str, grade: str, variant: str, profile: str, seed: int) -> str:
    """The finished ``sample`` run of the current ``@best`` DDPM; samples (or trains) if none."""
    from glioma.pipeline.sample_step import run_sample

    best = resolve_alias(ddpm_model_name(site, grade, variant), "best")
    if best is not None:
        tags = {"site": site, "grade": grade, "variant": variant, "ddpm_run": best.run_id}
        run = find_finished_run("sample", {"profile": profile, "seed": seed, "model": ""}, tags)
        if run is not None:
            print(f"reusing sample run {run.info.run_id} for {site} {grade} {variant}")
            return run.info.run_id
    overrides = {"site": site, "grade": grade, "variant": variant, "profile": profile}
    return run_sample(build_config(SampleConfig, {**overrides, "seed": seed})).run_id


def prepare_run_output(run_id: str) -> PrepareOutput:
    """What a finished prepare run produced, with its dataset folder copied locally."""
    run = checked_prepare_run(run_id)
    site = run.data.tags["site"]
    return PrepareOutput(
        run_id, site, artifact_folder(run_id, DATASET_ARTIFACT), run.data.tags["data_hash"]
    )


def artifact_folder(run_id: str, path: str) -> Path:
    """A local copy of a run's artifact folder, cached under ``data/cache/<run_id>/``."""
    local = project_root() / "data" / "cache" / run_id / path
    if not local.exists():
        local.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=local.parent) as tmp:
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=tmp)
            os.replace(Path(tmp) / path, local)
    return local


def load_prepared(output: PrepareOutput) -> tuple[Dataset, dict]:
    """The dataset and splits as the prepare run logged them (not the mutable out_dir)."""
    folder = artifact_folder(output.run_id, DATASET_ARTIFACT)
    return read_dataset(folder), read_splits(folder)


# Settings that do not change a step's result: never part of what a reused run must match.
VOLATILE = ("device", "workers", "resume", "checkpoint_every_s")


def finished_run_for(config, tags: dict | None = None) -> mlflow.entities.Run | None:
    """A FINISHED run of ``config``'s step with the same settings (and code version)."""
    params = {k: v for k, v in as_params(config).items() if k not in VOLATILE}
    return find_finished_run(config.step, params, tags)
