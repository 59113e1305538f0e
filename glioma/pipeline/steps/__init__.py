"""The study's steps, one module each, as the step table (``glioma.config.steps``) lists them.

``spec_of(name)`` is a node step's ``StepSpec``, imported on first use: a step module imports
the graph machinery (to run its own entry point), and the machinery reads the specs only when
it runs a node, so nothing here imports a step module at import time.
"""

from __future__ import annotations

import importlib
from functools import cache

from glioma.config.steps import TABLE
from glioma.pipeline.spec import StepSpec


@cache
def spec_of(name: str) -> StepSpec:
    """The ``StepSpec`` of node step ``name`` (its module's ``STEP``)."""
    step = TABLE.get(name)
    if step is None or not step.node:
        raise KeyError(f"{name!r} is not a node step of the step table")
    spec = importlib.import_module(step.where).STEP
    if spec.name != name:
        raise ValueError(f"{step.where}: its STEP is {spec.name!r}, the step table says {name!r}")
    return spec


__all__ = ["spec_of"]
