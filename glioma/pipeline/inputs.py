"""What a step reads from the runs its graph hands it: artifacts by run id, checked.

Steps never look runs up by search: the graph gives each one the run ids of its inputs, and
these helpers fetch what those runs logged (cached locally under ``data/cache/<run_id>/``, so
a worker on another machine reads through the tracking server the same way).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import mlflow

from glioma.data.dataset import Dataset, read_dataset
from glioma.data.splits import read_splits, require_training
from glioma.errors import DataError
from glioma.names import DATASET_ARTIFACT, TRAINING_SUBJECTS
from glioma.pipeline.keys import NodeResult
from glioma.tracking import configure_tracking, project_root
from glioma.tracking.datasets import DataRead, source_of


def checked_run(run_id: str, step: str) -> mlflow.entities.Run:
    """A given run of ``step``, checked: it must exist, be a ``step`` run and have FINISHED."""
    configure_tracking()
    try:
        run = mlflow.get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise DataError(f"{step}_run {run_id}: no such run") from None
    if run.data.tags.get("step") != step or run.info.status != "FINISHED":
        kind = run.data.tags.get("step", "untagged")
        raise DataError(
            f"{step}_run {run_id}: not a FINISHED {step} run ({kind}, {run.info.status})"
        )
    return run


def check_lineage(sample: NodeResult, ddpm: NodeResult, *, prepare_run: str = "") -> None:
    """A sample must come from this DDPM, and (given ``prepare_run``) the DDPM from that
    prepare run: another site's or another data's images never reach a step."""
    if sample.input_run("ddpm") != ddpm.run_id:
        raise DataError(
            f"sample run {sample.run_id}: drawn from DDPM run {sample.input_run('ddpm')}, "
            f"not {ddpm.run_id}"
        )
    if prepare_run and ddpm.input_run("prepare") != prepare_run:
        raise DataError(
            f"DDPM run {ddpm.run_id}: trained on prepare run {ddpm.input_run('prepare')}, "
            f"not {prepare_run} (another site's or data's images)"
        )


def artifact_folder(run_id: str, path: str) -> Path:
    """A local copy of a run's artifact folder, cached under ``data/cache/<run_id>/``."""
    local = project_root() / "data" / "cache" / run_id / path
    if local.exists():
        return local
    local.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=local.parent) as tmp:
        mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=tmp)
        try:
            os.replace(Path(tmp) / path, local)
        except OSError:  # a parallel step cached it first: theirs is the same files
            if not local.exists():
                raise
            shutil.rmtree(Path(tmp) / path, ignore_errors=True)
    return local


def load_dataset(run_id: str) -> Dataset:
    """The dataset a prepare or sample run logged."""
    return read_dataset(artifact_folder(run_id, DATASET_ARTIFACT))


def load_prepared(run_id: str) -> tuple[Dataset, dict]:
    """The dataset and splits as a prepare run logged them (not the mutable out_dir), for a
    step that trains or scores on them: an evaluation-only site is refused in one line."""
    folder = artifact_folder(run_id, DATASET_ARTIFACT)
    dataset, splits = read_dataset(folder), read_splits(folder)
    require_training(splits, str(dataset.meta.get("site", "?")))
    return dataset, splits


def data_read(dataset: Dataset, result: NodeResult, context: str, subject_ids=None) -> DataRead:
    """The rows of ``dataset`` (those of ``subject_ids``, or all) that ``result``, the prepare
    or sample run that logged it, holds: a dataset input of the reading run (``context``: its
    split)."""
    ids = None if subject_ids is None else tuple(map(str, subject_ids))
    location = f"{result.artifact_uri}/{DATASET_ARTIFACT}"
    source = source_of(location, artifact_folder(result.run_id, DATASET_ARTIFACT))
    return DataRead(dataset.subjects, dataset.meta, context, source, ids, result.run_id)


def ddpm_subjects(ddpm_run: str) -> dict[str, list[str]]:
    """``{"train": [...], "validation": [...]}``: what a DDPM run trained and selected on."""
    return mlflow.artifacts.load_dict(f"runs:/{ddpm_run}/{TRAINING_SUBJECTS}")


def refuse_leaks(ddpm_run: str, splits: dict, folds: tuple[int, ...] = ()) -> None:
    """The science rule: no DDPM behind a classifier saw the subjects it is evaluated on.

    Always the test split; and the subjects of ``folds`` (a fold classifier's own fold, unless
    its ``ddpm_scope`` is ``site``: see ``glioma.config.classify.guarded_folds``).
    """
    seen = ddpm_subjects(ddpm_run)
    evaluated = set(splits["test"]).union(*(splits["folds"][k] for k in folds))
    leaked = sorted((set(seen["train"]) | set(seen["validation"])) & evaluated)
    if leaked:
        shown = ", ".join(leaked[:10]) + (
            f" and {len(leaked) - 10} more" if len(leaked) > 10 else ""
        )
        if not folds:
            raise DataError(f"refusing DDPM run {ddpm_run}: it trained on test subject(s) {shown}")
        named = ", ".join(map(str, folds))
        raise DataError(
            f"refusing synthetic images of DDPM run {ddpm_run} for fold {named}: it trained on "
            f"subject(s) {shown}, which fold {named} validates or tests on"
        )
