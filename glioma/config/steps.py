"""The step table: every step once, with its config, its node module and its entry point.

A row names what runs the step, not imports it (``"glioma.pipeline.steps.sample"``,
``"module:function"``), so the table is as light as the configs: the console script, ``--help``,
the MLproject check, ``glioma.pipeline.steps`` (the node steps the graph machinery runs) and the
tests all read it, and only running a step imports the pipeline (torch, MLflow). Adding a step:
its config, its module under ``glioma/pipeline/steps`` (a ``StepSpec`` named ``STEP``), one row
here, its MLproject entry and its ``entrypoints/<step>.py`` (docs/DESIGN.md, "Adding a step").
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
ENTRIES = "glioma.pipeline.entries"


@dataclass(frozen=True)
class Step:
    """One step. ``node``: it is a node of the graph, run by ``glioma.pipeline.steps.<step>``
    (main and tune only compose graphs); ``entry``: the ``module:function`` its entry point
    calls with the built config ('' for a node no user runs alone: one classifier fold)."""

    config: type[StepConfig]
    node: bool = True
    entry: str = ""

    @property
    def name(self) -> str:
        return self.config.step

    @property
    def module(self) -> str:
        """The module that runs the node (``glioma.pipeline.steps.<step>``)."""
        return f"{NODE_STEPS}.{self.name}" if self.node else ""


TABLE: dict[str, Step] = {
    step.name: step
    for step in (
        Step(MainConfig, node=False, entry="glioma.pipeline.study:run_main"),
        Step(PrepareConfig, entry=f"{ENTRIES}:run_prepare"),
        Step(TrainDDPMConfig, entry=f"{ENTRIES}:run_train_ddpm"),
        Step(SampleConfig, entry=f"{ENTRIES}:run_sample"),
        Step(ScoreGenConfig, entry=f"{ENTRIES}:run_score_gen"),
        Step(TrainClsFoldConfig),
        Step(TrainClsConfig, entry=f"{ENTRIES}:run_train_cls"),
        Step(CrossEvalConfig, entry=f"{ENTRIES}:run_cross_eval"),
        Step(TuneConfig, node=False, entry="glioma.pipeline.tune:run_tune"),
    )
}
# Every entry point (MLproject's and the console's), and the config it takes.
ENTRY_POINTS: dict[str, Step] = {name: step for name, step in TABLE.items() if step.entry}
CONFIGS: dict[str, type[StepConfig]] = {name: s.config for name, s in ENTRY_POINTS.items()}
# The steps the graph runs as nodes, in the study's order.
NODE_CONFIGS: dict[str, type[StepConfig]] = {n: s.config for n, s in TABLE.items() if s.node}
