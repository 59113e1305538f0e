"""Where runs are stored: MLflow's default local store, pinned to the project folder.

MLflow resolves ``sqlite:///mlflow.db`` and ``./mlruns`` against the current folder, so steps
started from different folders would write to different stores. Unless the user sets
``MLFLOW_TRACKING_URI``, every step uses ``<project>/mlflow.db`` and ``<project>/mlruns``.
"""

from __future__ import annotations

import logging
import os
import subprocess
from functools import cache
from pathlib import Path

import mlflow

import glioma

DB_NAME = "mlflow.db"
ARTIFACTS_DIR = "mlruns"


def project_root() -> Path:
    """The folder holding ``MLproject`` (the checkout); the current folder for other installs."""
    override = os.environ.get("GLIOMA_HOME")
    if override:
        return Path(override).resolve()
    checkout = Path(glioma.__file__).resolve().parents[1]
    return checkout if (checkout / "MLproject").is_file() else Path.cwd().resolve()


def default_tracking_uri() -> str:
    return f"sqlite:///{project_root() / DB_NAME}"


def configure_tracking() -> str:
    """Point MLflow at the user's URI or the pinned project store; return the URI in use."""
    uri = os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri == default_tracking_uri():
        _initialise_local_store(uri)
    mlflow.set_tracking_uri(uri)
    return uri


@cache
def _initialise_local_store(uri: str) -> None:
    """Create the database with its Default experiment's artifacts under ``<project>/mlruns``."""
    if (project_root() / DB_NAME).exists():
        return
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    # MLflow logs "Creating initial MLflow database tables..." to stderr at INFO; a step that
    # then fails must still print only its one-line error.
    db_logger = logging.getLogger("mlflow.store.db.utils")
    level = db_logger.level
    db_logger.setLevel(logging.WARNING)
    try:
        SqlAlchemyStore(uri, str(project_root() / ARTIFACTS_DIR))
    finally:
        db_logger.setLevel(level)


@cache
def code_version() -> str:
    """Package version plus the git commit of the checkout, when there is one."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=project_root(),
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{glioma.__version__}+{commit}" if commit else glioma.__version__
