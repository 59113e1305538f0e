"""Find a finished run of a step with the same parameters (the multi-step workflow pattern).

A run is reused only if it FINISHED, ran the same code version, and every given parameter
matches as a string (MLflow stores parameters as strings).
"""

from __future__ import annotations

from typing import Any

import mlflow
from mlflow.entities import Run

from glioma.tracking.runs import param_text
from glioma.tracking.store import code_version, configure_tracking


def find_finished_run(
    step: str, params: dict[str, Any], tags: dict[str, Any] | None = None
) -> Run | None:
    """The newest FINISHED run of ``step`` whose params and tags match; None if there is none."""
    configure_tracking()
    conditions = [f"tags.step = '{step}'", "attributes.status = 'FINISHED'"]
    conditions += [f"tags.{k} = '{v}'" for k, v in (tags or {}).items()]
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=" and ".join(conditions),
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    wanted = {k: param_text(v) for k, v in params.items()}
    for run in runs:
        same_code = run.data.tags.get("code_version") == code_version()
        if same_code and all(run.data.params.get(k) == v for k, v in wanted.items()):
            return run
    return None
