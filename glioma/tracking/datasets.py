"""The data a run read, as MLflow dataset inputs (the run page's *Datasets* and a search key).

One name per dataset: the site of a prepared cohort (``phantom-a``), or
``<site>-<grade>-<variant>-synthetic`` for a sample run's images (a conditional DDPM's sample
has no grade: ``<site>-<variant>-synthetic``). The split a run used is the input's context
(``training``, ``validation``, ``test``, ``evaluation``, ``synthetic``; ``prepared`` for the
prepare run's own output); its digest is of the dataset's content hash and the subjects of
that split, so two runs that read the same images show the same digest. The source is the
dataset folder the prepare or sample run logged (``source_of``: its artifact location, or the
local copy where MLflow has no dataset source for that location's scheme, as with a tracking
server's ``mlflow-artifacts:``), and the input's ``source_run`` tag names that run.
``mlflow.search_runs(filter_string="dataset.name = 'phantom-a' AND dataset.context = 'test'")``
finds every run that read that site's test split.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.data.dataset_source_registry import resolve_dataset_source

ATTEMPTS = 4  # log_input_once
CONTEXTS = ("prepared", "training", "validation", "test", "evaluation", "synthetic")


def source_of(location: str, local: Path) -> str:
    """``location`` when MLflow has a dataset source for its scheme, else ``local``'s URI."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "interpreted in multiple ways"
            resolve_dataset_source(location)
    except mlflow.exceptions.MlflowException:
        return local.resolve().as_uri()
    return location


def dataset_name(subjects: pd.DataFrame, meta: dict) -> str:
    """The site, or ``<site>[-<grade>]-<variant>-synthetic`` for a synthetic set."""
    site = str(meta.get("site") or subjects["site"].iloc[0])
    if not meta.get("synthetic"):
        return site
    grades = sorted(set(subjects["grade"]))
    grade = grades[0] if len(grades) == 1 else ""
    variant = str(meta.get("variant", "")) or "ddpm"
    return "-".join(part for part in (site, grade, variant, "synthetic") if part)


def digest(data_hash: str, subject_ids: Iterable[str]) -> str:
    """16 hex digits over the dataset's content hash and the (sorted) subjects read."""
    text = data_hash + "\0" + "\0".join(sorted(map(str, subject_ids)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DataRead:
    """Rows of one dataset a run read, in one context (its split): what ``log_reads`` logs.

    ``subjects`` and ``meta``: the dataset's subject table and meta (site, data_hash, ...);
    ``subject_ids``: the rows read (None: all); ``source``: where the dataset folder is;
    ``run_id``: the prepare or sample run that logged it (the input's ``source_run`` tag).
    """

    subjects: pd.DataFrame
    meta: dict
    context: str
    source: str
    subject_ids: tuple[str, ...] | None = None
    run_id: str = ""

    def __post_init__(self) -> None:
        if self.context not in CONTEXTS:
            shown = ", ".join(CONTEXTS)
            raise ValueError(f"context: expected one of {shown}, got {self.context!r}")


def as_dataset(read: DataRead) -> mlflow.data.Dataset:
    """The read as an MLflow dataset: its rows' subject table, named and digested as above
    (also what metrics are linked to: ``mlflow.log_metrics(..., dataset=)``)."""
    rows = read.subjects
    if read.subject_ids is not None:
        rows = rows[rows["subject_id"].isin(read.subject_ids)]
    columns = [c for c in ("subject_id", "grade", "label", "site") if c in rows.columns]
    table = rows[columns].reset_index(drop=True)
    if "label" in table:  # MLflow's schema warns of integer columns (no missing values here)
        table["label"] = table["label"].astype("float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "interpreted in multiple ways" (source)
        return mlflow.data.from_pandas(
            table,
            source=read.source,
            name=dataset_name(read.subjects, read.meta),
            digest=digest(str(read.meta["data_hash"]), rows["subject_id"]),
            targets="label" if "label" in columns else None,
        )


def log_reads(reads: Iterable[DataRead]) -> None:
    """Log each read as an input of the active run."""
    for read in reads:
        tags = {"source_run": read.run_id} if read.run_id else None
        log_input_once(as_dataset(read), context=read.context, tags=tags)


def log_input_once(dataset: mlflow.data.Dataset, *, context: str, tags: dict | None) -> None:
    """``mlflow.log_input``, again after a clash: MLflow's SQL store makes a dataset's row on
    its first use without a lock, so two steps (Ray workers) that log the same dataset at once
    collide on its unique key (seen on a two-worker study); a second try finds the row."""
    for attempt in range(ATTEMPTS):
        try:
            mlflow.log_input(dataset, context=context, tags=tags)
            return
        except mlflow.exceptions.MlflowException as exc:
            if "unique constraint" not in str(exc).lower() or attempt == ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
