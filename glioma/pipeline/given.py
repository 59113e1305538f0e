"""Runs the user names (``--prepare_run``, ``--model``, ``--sample_run``): the one place that
knows them. ``given`` checks the run when the node is declared (it exists, is a run of that
step, FINISHED) and keeps its result in the node, so a bad id stops before anything runs and
the runners only see nodes to ensure; the graph seeds every outcome with these results.
"""

from __future__ import annotations

from glioma.pipeline.graph import GIVEN, GivenRun, Node
from glioma.pipeline.inputs import checked_run
from glioma.pipeline.keys import NodeResult
from glioma.tracking.runs import RUN_TAGS


def given(run_id: str, step: str) -> Node:
    """The node of finished run ``run_id`` of ``step``; its display tags (site, grade, ...) are
    the run's, so what reads a node's site reads a given one's the same way."""
    result = NodeResult.of(checked_run(run_id, step), reused=True)
    tags = tuple(sorted((k, v) for k, v in result.tags.items() if k in RUN_TAGS and v))
    return Node(GIVEN, GivenRun(result.run_id, step, result), tags=tags)
