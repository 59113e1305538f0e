"""Find the finished run of a step by its reuse key (the multi-step workflow's get-or-run).

The key (``glioma.pipeline.keys``) is computed from everything that can change a step's result;
it is stored in the run's ``reuse_key`` tag, so finding a reusable run is one tag search.
"""

from __future__ import annotations

import mlflow
from mlflow.entities import Run

from glioma.tracking.runs import REUSE_KEY
from glioma.tracking.store import configure_tracking


def find_finished_run(step: str, key: str) -> Run | None:
    """The newest FINISHED run of ``step`` with reuse key ``key``; None if there is none."""
    configure_tracking()
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=(
            f"tags.step = '{step}' and tags.{REUSE_KEY} = '{key}' "
            "and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None
