"""Where runs are stored: MLflow's default local store, pinned to the project folder.

MLflow resolves ``sqlite:///mlflow.db`` and ``./mlruns`` against the current folder, so steps
started from different folders would write to different stores. Unless the user sets
``MLFLOW_TRACKING_URI``, every step uses ``<project>/mlflow.db`` and ``<project>/mlruns``.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path

import mlflow

import glioma

DB_NAME = "mlflow.db"


def is_project(folder: Path) -> bool:
    """A folder holding this project's ``MLproject`` (a checkout of the suite)."""
    spec = folder / "MLproject"
    return spec.is_file() and spec.read_text().lstrip().startswith("name: glioma")


def project_root() -> Path:
    """``GLIOMA_HOME`` when set; else the checkout the command runs in (the current folder or
    one above it), so two clones that share a virtualenv keep their own stores; else the
    checkout of the installed package; else the current folder."""
    override = os.environ.get("GLIOMA_HOME")
    if override:
        return Path(override).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if is_project(folder):
            return folder
    checkout = Path(glioma.__file__).resolve().parents[1]
    return checkout if is_project(checkout) else here


def default_tracking_uri() -> str:
    return f"sqlite:///{project_root() / DB_NAME}"


_pinned: str | None = None  # the project store this module pointed MLflow at, if any


def configure_tracking() -> str:
    """Point MLflow at the user's URI or the pinned project store; return the URI in use.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI`` (for subprocesses), so a
    value there that this module put is not taken for the user's choice: the project store
    is resolved again (``GLIOMA_HOME`` may have changed).
    """
    global _pinned
    # One bar per artifact download, dozens per study: noise beside the steps' own bars.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    given = os.environ.get("MLFLOW_TRACKING_URI")
    if given and given != _pinned:
        if given == default_tracking_uri():  # e.g. what `mlflow run` passes on
            _initialise_local_store(given)
        mlflow.set_tracking_uri(given)
        return given
    uri = default_tracking_uri()
    _initialise_local_store(uri)
    mlflow.set_tracking_uri(uri)
    _pinned = uri
    return uri


@cache
def _initialise_local_store(uri: str) -> None:
    """Create the database with its Default experiment's artifacts under ``<project>/mlruns``.

    MLflow's default artifact root for a database store is ``./mlruns`` of the folder the
    store is first opened from (no setting names another), so this process opens the new
    store from the project folder, through the public client.
    """
    root = project_root()
    if (root / DB_NAME).exists():
        return
    # MLflow logs "Creating initial MLflow database tables..." to stderr at INFO; a step that
    # then fails must still print only its one-line error.
    db_logger = logging.getLogger("mlflow.store.db.utils")
    level = db_logger.level
    db_logger.setLevel(logging.WARNING)
    here = Path.cwd()
    root.mkdir(parents=True, exist_ok=True)  # a GLIOMA_HOME named before it exists
    try:
        os.chdir(root)
        mlflow.MlflowClient(uri).get_experiment("0")  # creates the tables and Default
    finally:
        os.chdir(here)
        db_logger.setLevel(level)


def experiment_id() -> str:
    """The experiment a study's runs go to: ``MLFLOW_EXPERIMENT_ID`` or ``_NAME``, else Default.

    Resolved once by the study and handed to its workers, so runs started on other processes
    land beside the study run.
    """
    if os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return os.environ["MLFLOW_EXPERIMENT_ID"]
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if not name:
        return mlflow.get_experiment_by_name("Default").experiment_id
    found = mlflow.get_experiment_by_name(name)
    return found.experiment_id if found else mlflow.create_experiment(name)
