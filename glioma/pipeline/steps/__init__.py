"""The study's node steps, one module each, as the step table (``glioma.config.steps``) lists
them; ``STEPS`` maps a node's step name to its module's ``StepSpec``."""

import importlib

from glioma.config.steps import TABLE
from glioma.pipeline.spec import StepSpec


def _spec(module: str, name: str) -> StepSpec:
    spec = importlib.import_module(module).STEP
    if spec.name != name:
        raise ValueError(f"{module}: its STEP is {spec.name!r}, the step table says {name!r}")
    return spec


STEPS: dict[str, StepSpec] = {
    name: _spec(step.module, name) for name, step in TABLE.items() if step.node
}

__all__ = ["STEPS"]
