"""Runs left RUNNING by a process that is gone: found at the next start and marked KILLED.

A process killed with SIGKILL (or a machine that lost power) cannot end its runs, so MLflow
shows them RUNNING forever. Every run records ``host``, ``pid`` and the process's start time;
a RUNNING run of this host whose process no longer exists (or whose pid now belongs to a
later process) is not running, and is marked KILLED with the reason. Runs of other hosts
are left alone: from here nothing can tell whether their process is alive.
"""

from __future__ import annotations

import os
import socket

import mlflow
from mlflow.tracking import MlflowClient

from glioma.tracking.runs import ERROR, HOST, PID, PID_START, process_start
from glioma.tracking.store import configure_tracking


def process_alive(pid: int, started: str) -> bool:
    """Whether ``pid`` runs and is the process that started at ``started`` (when known)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return not started or process_start(pid) in ("", started)


def orphaned_runs(host: str | None = None) -> list[mlflow.entities.Run]:
    """RUNNING runs of ``host`` (default: this one) whose process is gone."""
    configure_tracking()
    host = host or socket.gethostname()
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"attributes.status = 'RUNNING' and tags.{HOST} = '{host}'",
        output_format="list",
    )
    own = os.getpid()
    return [
        run
        for run in runs
        if (pid := int(run.data.tags.get(PID, "0") or 0)) not in (0, own)
        and not process_alive(pid, run.data.tags.get(PID_START, ""))
    ]


def mark_orphans_killed() -> list[str]:
    """Mark every orphaned run of this host KILLED; returns their run ids."""
    client = MlflowClient()
    ids = []
    for run in orphaned_runs():
        pid = run.data.tags.get(PID)
        client.set_tag(run.info.run_id, ERROR, f"process {pid} on {run.data.tags[HOST]} is gone")
        client.set_terminated(run.info.run_id, status="KILLED")
        ids.append(run.info.run_id)
    return ids
