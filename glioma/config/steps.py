"""The step table: every entry point once, with its config and the pipeline function it runs.

The function is named (``"module:function"``), not imported, so the table is as light as the
configs: the console script, ``--help``, MLproject's shims and the tests all read it, and
only running a step imports the pipeline (torch, MLflow).
"""

from __future__ import annotations

from dataclasses import dataclass

from glioma.config.classify import CrossEvalConfig, TrainClsConfig
from glioma.config.ddpm import SampleConfig, TrainDDPMConfig
from glioma.config.fields import StepConfig
from glioma.config.prepare import PrepareConfig
from glioma.config.scoring import ScoreGenConfig, TuneConfig
from glioma.config.study import MainConfig


@dataclass(frozen=True)
class Step:
    config: type[StepConfig]
    run: str  # "module:function" of glioma.pipeline, called with the built config


STEPS: dict[str, Step] = {
    step.config.step: step
    for step in (
        Step(MainConfig, "glioma.pipeline.study:run_main"),
        Step(PrepareConfig, "glioma.pipeline.entries:run_prepare"),
        Step(TrainDDPMConfig, "glioma.pipeline.entries:run_train_ddpm"),
        Step(SampleConfig, "glioma.pipeline.entries:run_sample"),
        Step(ScoreGenConfig, "glioma.pipeline.entries:run_score_gen"),
        Step(TrainClsConfig, "glioma.pipeline.entries:run_train_cls"),
        Step(CrossEvalConfig, "glioma.pipeline.entries:run_cross_eval"),
        Step(TuneConfig, "glioma.pipeline.tune:run_tune"),
    )
}
# Every entry point (MLproject's and the console's) and the config it takes.
CONFIGS: dict[str, type[StepConfig]] = {name: step.config for name, step in STEPS.items()}
