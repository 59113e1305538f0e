"""What the graph machinery knows about a step: how to run it inside its run, what to publish.

Each step module under ``glioma.pipeline.steps`` defines one ``StepSpec``. ``run`` computes and
logs inside the run that ``ensure`` opened (its inputs are the results of its upstream
nodes); ``publish`` points registry aliases at a result, after a run and after a reuse alike,
so an alias always names what the last command used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from glioma.pipeline.keys import NodeResult

Inputs = dict[str, NodeResult]


@dataclass(frozen=True)
class StepSpec:
    name: str
    run: Callable[[Any, Inputs], None]
    publish: Callable[[Any, NodeResult], None] | None = None
    uses_torch: bool = True  # a GPU helps it: on a cluster with GPUs, Ray gives it one
