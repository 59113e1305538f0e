"""The one place that knows MLflow names: store location, run tags, registry, liveness."""

from glioma.tracking.fingerprint import code_fingerprint, git_commit
from glioma.tracking.runs import RUN_TAGS, child_run, fail_project_run, open_run
from glioma.tracking.store import configure_tracking, project_root

__all__ = [
    "RUN_TAGS",
    "child_run",
    "code_fingerprint",
    "configure_tracking",
    "fail_project_run",
    "git_commit",
    "open_run",
    "project_root",
]
