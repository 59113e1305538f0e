"""The step table: every step once, with its config and the module that holds it.

A row names its module, it does not import it (``"glioma.pipeline.steps.sample"``), so the table
is as light as the configs: the console script, ``--help``, the MLproject check, the graph
machinery (``glioma.pipeline.steps.spec_of``) and the tests all read it, and only running a
step imports its module (torch, MLflow). A step's module holds all of it: its inputs record,
its node builder, its run function (``STEP``, a ``StepSpec``, for a node of the graph), the
reading of a run the user names, and ``run_<step>(config)``, what its entry point calls.
Adding a step is four touches (docs/DESIGN.md, "Adding a step"): its module, its row here (with
its config, in this layer), its MLproject entry and its docs line.
"""

from __future__ import annotations

from dataclasses import dataclass

from glioma.config.classify import CrossEvalConfig, TrainClsConfig, TrainClsFoldConfig
from glioma.config.ddpm import SampleConfig, TrainDDPMConfig
from glioma.config.fields import StepConfig
from glioma.config.prepare import PrepareConfig
from glioma.config.scoring import ScoreGenConfig, TuneConfig
from glioma.config.study import MainConfig

NODE_STEPS = "glioma.pipeline.steps"


@dataclass(frozen=True)
class Step:
    """One step. ``node``: a node of the graph (``STEP`` in its module; main and tune only
    compose graphs); ``entry``: users run it alone (``run_<step>`` in its module; not one
    classifier fold); ``module``: where it lives, ``glioma.pipeline.steps.<step>`` unless said."""

    config: type[StepConfig]
    node: bool = True
    entry: bool = True
    module: str = ""

    @property
    def name(self) -> str:
        return self.config.step

    @property
    def where(self) -> str:
        """The module that holds the step."""
        return self.module or f"{NODE_STEPS}.{self.name}"

    @property
    def function(self) -> str:
        """``module:function`` that its entry point calls with the built config."""
        return f"{self.where}:run_{self.name}" if self.entry else ""


TABLE: dict[str, Step] = {
    step.name: step
    for step in (
        Step(MainConfig, node=False, module="glioma.pipeline.study"),
        Step(PrepareConfig),
        Step(TrainDDPMConfig),
        Step(SampleConfig),
        Step(ScoreGenConfig),
        Step(TrainClsFoldConfig, entry=False),
        Step(TrainClsConfig),
        Step(CrossEvalConfig),
        Step(TuneConfig, node=False, module="glioma.pipeline.tune"),
    )
}


# Functions, not constants: they read the table as it is when called (a test adds a row).
def entry_points() -> dict[str, Step]:
    """Every entry point (MLproject's and the console's)."""
    return {name: step for name, step in TABLE.items() if step.entry}


def configs() -> dict[str, type[StepConfig]]:
    """Each entry point's config."""
    return {name: step.config for name, step in entry_points().items()}


def node_configs() -> dict[str, type[StepConfig]]:
    """The steps the graph runs as nodes, in the study's order, and their configs."""
    return {name: step.config for name, step in TABLE.items() if step.node}
