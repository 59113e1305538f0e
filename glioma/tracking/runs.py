"""Runs of the study's steps: names, tags and the start/stop rules every step shares."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from glioma.tracking.store import code_version, configure_tracking

# DESIGN.md: tags on every run, where they apply.
RUN_TAGS = (
    "step",
    "site",
    "grade",
    "variant",
    "setup",
    "direction",
    "fold",
    "profile",
    "data_hash",
)


def param_text(value: Any) -> str:
    """One spelling per value, so runs started in different ways compare equal in the UI."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


@contextmanager
def step_run(step: str, params: dict[str, Any], **tags: Any) -> Iterator[mlflow.ActiveRun]:
    """Open the run of one step, nested under an active run (``main``) if there is one.

    Under ``mlflow run`` the project runner has created the run already (``MLFLOW_RUN_ID``);
    this attaches to it. An exception inside ends the run as FAILED.
    """
    configure_tracking()
    unknown = set(tags) - set(RUN_TAGS)
    if unknown:
        raise ValueError(f"unknown run tag(s) {sorted(unknown)}; add them to RUN_TAGS first")
    nested = mlflow.active_run() is not None
    with mlflow.start_run(nested=nested) as run:
        label = "-".join(str(tags[k]) for k in ("site", "grade", "variant", "setup") if tags.get(k))
        mlflow.set_tags(
            {
                "step": step,
                "code_version": code_version(),
                "mlflow.runName": f"{step}-{label}".strip("-"),
                **{k: str(v) for k, v in tags.items() if v not in (None, "")},
            }
        )
        # Under ``mlflow run`` the runner has logged the parameters it was given, as typed.
        logged = MlflowClient().get_run(run.info.run_id).data.params
        mlflow.log_params({k: param_text(v) for k, v in params.items() if k not in logged})
        yield run


def fail_project_run(message: str) -> None:
    """Mark the run that ``mlflow run`` created as FAILED when the step could not start."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return
    configure_tracking()
    client = MlflowClient()
    client.set_tag(run_id, "error", message[:5000])
    client.set_terminated(run_id, status="FAILED")
