"""Inputs a step needs from earlier steps: reuse a finished run, or run that step first."""

from __future__ import annotations

from pathlib import Path

import mlflow

from glioma.config import PrepareConfig, as_params, build_config
from glioma.data.dataset import Dataset, read_dataset
from glioma.data.splits import read_splits
from glioma.pipeline.prepare_step import DATASET_ARTIFACT, PrepareOutput, run_prepare
from glioma.tracking import project_root
from glioma.tracking.reuse import find_finished_run


def prepared_site(
    site: str, source: str, profile: str, seed: int, workers: int = 2
) -> PrepareOutput:
    """The finished ``prepare`` run of ``site`` with these settings; runs prepare if none."""
    config = build_config(
        PrepareConfig,
        {"site": site, "source": source, "profile": profile, "seed": seed, "workers": workers},
    )
    params = {k: v for k, v in as_params(config).items() if k != "workers"}
    run = find_finished_run("prepare", params, {"site": site})
    if run is None:
        return run_prepare(config)
    print(f"reusing prepare run {run.info.run_id} for {site}")
    return PrepareOutput(
        run.info.run_id,
        site,
        artifact_folder(run.info.run_id, DATASET_ARTIFACT),
        run.data.tags["data_hash"],
    )


def artifact_folder(run_id: str, path: str) -> Path:
    """A local copy of a run's artifact folder, cached under ``data/cache/<run_id>/``."""
    target = project_root() / "data" / "cache" / run_id
    local = target / path
    if not local.exists():
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(target))
    return local


def load_prepared(output: PrepareOutput) -> tuple[Dataset, dict]:
    """The dataset and splits as the prepare run logged them (not the mutable out_dir)."""
    folder = artifact_folder(output.run_id, DATASET_ARTIFACT)
    return read_dataset(folder), read_splits(folder)
