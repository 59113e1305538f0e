"""Runs of the study's steps: names, tags and the start/stop rules every step shares.

Every run records the host and process that ran it (``host``, ``pid``, ``pid_start``), so a
run whose process is gone can be told from one still running (``glioma.tracking.liveness``),
and ends FINISHED, or FAILED with its one-line reason in the ``error`` tag.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from glioma.errors import GliomaError
from glioma.names import param_text
from glioma.tracking.store import configure_tracking

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
# Tags of the machinery: what a run's reuse key is and which code and process made it.
REUSE_KEY = "reuse_key"
CODE_FINGERPRINT = "code_fingerprint"
GIT_COMMIT = "git_commit"
HOST, PID, PID_START = "host", "pid", "pid_start"
RAY_NODE = "ray_node"
TORCH_THREADS = "torch_threads"
ERROR = "error"
REUSED_RUN = "reused_run"
# MLflow's system tags (its documentation's "System tags"), set on a run made with the client
PARENT_RUN_ID = "mlflow.parentRunId"
SOURCE_TAGS = ("mlflow.user", "mlflow.source.name", "mlflow.source.type")
# "Started monitoring system metrics" at INFO for every training run: noise beside the bars.
logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)


def process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), '' where unknown.

    With the pid it tells a live process from a later one that reused the pid.
    """
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def process_tags() -> dict[str, str]:
    pid = os.getpid()
    return {HOST: socket.gethostname(), PID: str(pid), PID_START: process_start(pid)}


def one_line(exc: BaseException) -> str:
    """What a user reads about a failure: our errors' own line, else the type and first line."""
    if isinstance(exc, GliomaError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def run_label(step: str, tags: dict[str, Any]) -> str:
    """``train_ddpm-phantom-a-HGG-mi-fold3``: the run name, and the console's label."""
    parts = [str(tags[k]) for k in ("site", "grade", "variant", "setup") if tags.get(k)]
    if tags.get("direction"):
        parts.append(str(tags["direction"]))
    if tags.get("fold") not in (None, "", -1, "-1"):
        parts.append(f"fold{tags['fold']}")
    if tags.get("seed") not in (None, ""):  # a study over several training seeds
        parts.append(f"seed{tags['seed']}")
    return "-".join([step, *parts])


def active_run_tag(name: str) -> str:
    """A tag of the active run as the store holds it now (tags set after its start included)."""
    return mlflow.get_run(mlflow.active_run().info.run_id).data.tags.get(name, "")


def log_new_params(run_id: str, params: dict[str, Any]) -> None:
    """Log ``params`` as strings, except those ``mlflow run`` already logged as it was given."""
    logged = MlflowClient().get_run(run_id).data.params
    mlflow.log_params({k: param_text(v) for k, v in params.items() if k not in logged})


def wants_system_metrics(step_trains: bool) -> bool | None:
    """True for a training step unless ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING`` says false;
    None (MLflow's own setting decides) for the others."""
    setting = os.environ.get("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "").strip().lower()
    return True if step_trains and setting not in ("false", "0") else None


@contextmanager
def open_run(
    step: str,
    params: dict[str, Any],
    tags: dict[str, Any],
    *,
    experiment_id: str | None = None,
    parent_run_id: str | None = None,
    adopt_run_id: str | None = None,
    system_metrics: bool = False,
) -> Iterator[mlflow.ActiveRun]:
    """Open the run of one step and end it FINISHED, or FAILED with its reason in ``error``.

    ``adopt_run_id``: carry on in a run that exists already (the one ``mlflow run`` created);
    otherwise a new run in ``experiment_id``, a child of ``parent_run_id`` when one is given
    (or of the active run). ``system_metrics``: record MLflow's system metrics (CPU, memory,
    disk; GPU with nvidia-ml-py) while it runs, unless the user turned them off.
    """
    configure_tracking()
    active = mlflow.active_run()
    monitor = {"log_system_metrics": wants_system_metrics(system_metrics)}
    if adopt_run_id:
        run = mlflow.start_run(run_id=adopt_run_id, **monitor)
    elif parent_run_id is not None and active is not None and active.info.run_id != parent_run_id:
        # MLflow nests a new run only under the active one; a tune trial's steps go under the
        # trial's run while the tune run is active: made under its parent, then started.
        created = created_child_run(parent_run_id, experiment_id)
        run = mlflow.start_run(run_id=created, nested=True, **monitor)
    else:
        nested = parent_run_id is not None or active is not None
        run = mlflow.start_run(
            experiment_id=experiment_id, parent_run_id=parent_run_id, nested=nested, **monitor
        )
    try:
        shown = {k: str(v) for k, v in tags.items() if v not in (None, "")}
        mlflow.set_tags({"step": step, "mlflow.runName": run_label(step, tags), **shown})
        mlflow.set_tags(process_tags())
        log_new_params(run.info.run_id, params)
        yield run
    except BaseException as exc:
        mlflow.set_tag(ERROR, one_line(exc)[:5000])
        interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
        mlflow.end_run("KILLED" if interrupted else "FAILED")
        raise
    mlflow.end_run("FINISHED")


@contextmanager
def child_run(step: str, params: dict[str, Any], **tags: Any) -> Iterator[mlflow.ActiveRun]:
    """A run that a step opens inside its own (``cross_eval_setup``, one per setup)."""
    with open_run(step, params, tags) as run:
        yield run


def created_child_run(
    parent_run_id: str, experiment_id: str | None = None, tags: dict[str, str] | None = None
) -> str:
    """A new run under ``parent_run_id`` (in its experiment unless another is given), with the
    user and source tags MLflow's ``start_run`` gives a run started from a script.

    ``start_run(parent_run_id=...)`` refuses while another run is active in this process, so
    the run is made with the client; the tags ``start_run`` would add from a git checkout
    (``mlflow.source.git.*``) are left out: ``git_commit`` records the code.
    """
    client = MlflowClient()
    experiment = experiment_id or client.get_run(parent_run_id).info.experiment_id
    source = dict(zip(SOURCE_TAGS, (getpass.getuser(), sys.argv[0], "LOCAL"), strict=True))
    made = {**source, **(tags or {}), PARENT_RUN_ID: parent_run_id}
    return client.create_run(experiment, tags=made).info.run_id


def begin_child_run(
    step: str, params: dict[str, Any], tags: dict[str, Any], *, parent_run_id: str
) -> str:
    """A child run opened now and left RUNNING while its work runs elsewhere (a tune trial:
    the graph runs its steps under it, perhaps on Ray); ``end_child_run`` ends it."""
    configure_tracking()
    shown = {k: str(v) for k, v in tags.items() if v not in (None, "")}
    shown |= {"step": step, "mlflow.runName": run_label(step, tags), **process_tags()}
    run_id = created_child_run(parent_run_id, tags=shown)
    client = MlflowClient()
    for name, value in params.items():
        client.log_param(run_id, name, param_text(value))
    return run_id


def end_child_run(run_id: str, *, error: str = "") -> None:
    """End a ``begin_child_run`` run: FINISHED, or FAILED with ``error`` as its reason."""
    client = MlflowClient()
    if error:
        client.set_tag(run_id, ERROR, error[:5000])
    client.set_terminated(run_id, "FAILED" if error else "FINISHED")


def fail_project_run(message: str) -> None:
    """Mark the run that ``mlflow run`` created as FAILED when the step could not start."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return
    configure_tracking()
    client = MlflowClient()
    if client.get_run(run_id).info.status in ("FINISHED", "FAILED", "KILLED"):
        return
    client.set_tag(run_id, ERROR, message[:5000])
    client.set_terminated(run_id, status="FAILED")
