"""The one place that knows MLflow names: store location, experiments, run tags, registry."""

from glioma.tracking.runs import RUN_TAGS, fail_project_run, step_run
from glioma.tracking.store import code_version, configure_tracking, project_root

__all__ = [
    "RUN_TAGS",
    "code_version",
    "configure_tracking",
    "fail_project_run",
    "project_root",
    "step_run",
]
