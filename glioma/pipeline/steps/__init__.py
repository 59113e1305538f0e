"""The study's steps, one module each; ``STEPS`` maps a node's step name to its ``StepSpec``."""

from glioma.pipeline.spec import StepSpec
from glioma.pipeline.steps import (
    cross_eval,
    prepare,
    sample,
    score_gen,
    train_cls,
    train_cls_fold,
    train_ddpm,
)

STEPS: dict[str, StepSpec] = {
    module.STEP.name: module.STEP
    for module in (prepare, train_ddpm, sample, score_gen, train_cls_fold, train_cls, cross_eval)
}

__all__ = ["STEPS"]
