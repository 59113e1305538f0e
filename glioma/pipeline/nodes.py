"""Declaring the study's nodes: each builder takes its upstream nodes and a typed config.

The builders know the study's shape (which DDPMs a classifier fold needs, which sample a score
reads); they run nothing. Every train_ddpm -> sample -> score_gen chain is declared here from a
``StudyPlan`` (``synthetic_set``, ``fold_sets``, ``scored_sets``); ``glioma.pipeline.study``,
``glioma.pipeline.entries`` and ``glioma.pipeline.tune`` compose them into the graphs that
``main``, each single entry point and each tune trial need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from glioma.config import (
    CrossEvalConfig,
    PrepareConfig,
    SampleConfig,
    ScoreGenConfig,
    TrainClsConfig,
    TrainClsFoldConfig,
    TrainDDPMConfig,
    build_config,
)
from glioma.config.plan import StudyPlan
from glioma.data.sources import discover
from glioma.data.splits import too_small, training_refused
from glioma.names import GRADES, N_FOLDS, SETUP_VARIANT, other_grade
from glioma.pipeline.given import given
from glioma.pipeline.graph import GIVEN, Node, node
from glioma.pipeline.spec import SyntheticSet
from glioma.pipeline.steps.cross_eval import CrossEvalInputs
from glioma.pipeline.steps.prepare import data_fingerprint, site_name
from glioma.pipeline.steps.sample import SampleInputs
from glioma.pipeline.steps.score_gen import ScoreInputs
from glioma.pipeline.steps.train_cls import EnsembleInputs
from glioma.pipeline.steps.train_cls_fold import FoldInputs
from glioma.pipeline.steps.train_ddpm import DDPMInputs


def site_of(prepare: Node) -> str:
    """The site a prepare node (declared, or a given run) stands for: its ``site`` tag."""
    return dict(prepare.tags)["site"]


def refuse_small_site(prepare: Node, *, hint: str = "") -> None:
    """Before anything runs: a site that is certainly evaluation-only cannot be trained on.

    Discovery (file names, no voxels) gives at most the subjects prepare keeps; when even those
    are too few for a test set and 5 folds, say so in one line now, not after the other steps.
    """
    if prepare.step == GIVEN or prepare.config.data == "phantom":
        return
    config = prepare.config
    found = discover(Path(config.data).expanduser(), "check", grades=config.grades or None)
    reason = too_small([r.grade for r in found.records])
    if reason:
        raise training_refused(site_name(config), reason, hint)


def prepare_node(config: PrepareConfig) -> Node:
    tags = {"site": site_name(config), "profile": config.profile}
    return node("prepare", config, tags=tags, data=data_fingerprint(config))


def prepare_for(
    site: str, data: str, *, profile: str, seed: int, prepare_run: str = "", **extra: Any
) -> Node:
    """The prepare node of ``site`` (reading ``data``), or the finished run the user named."""
    if prepare_run:
        return given(prepare_run, "prepare")
    overrides = {"site": site, "data": data, "profile": profile, "seed": seed, **extra}
    return prepare_node(build_config(PrepareConfig, overrides))


def ddpm_node(prepare: Node, config: TrainDDPMConfig) -> Node:
    tags = {"site": config.site, "grade": config.grade, "variant": config.variant}
    tags |= {"fold": folds_label(config.held_out_folds), "profile": config.profile}
    return node("train_ddpm", config, DDPMInputs(prepare), tags=tags)


def folds_label(held_out: tuple[int, ...]) -> str | None:
    """(3,) -> "3", (0, 1, 2) -> "0-1-2", () -> None: the ``fold`` tag of a DDPM and its samples."""
    return "-".join(map(str, held_out)) or None


def sample_node(ddpm: Node, config: SampleConfig, *, held_out: tuple[int, ...] = ()) -> Node:
    tags = {"site": config.site, "grade": config.grade, "variant": config.variant}
    tags |= {"fold": folds_label(held_out), "profile": config.profile}
    return node("sample", config, SampleInputs(ddpm), tags=tags)


def score_node(
    sample: Node,
    ddpm: Node,
    prepare: Node,
    *,
    config: ScoreGenConfig,
    classifier: Node | None,
    other: tuple[Node, Node] | None = None,
) -> Node:
    """score_gen of ``sample``; ``other`` (the other grade's sample and DDPM) adds TSTR."""
    paired = SyntheticSet(*other) if other is not None and config.tstr else None
    inputs = ScoreInputs(sample, ddpm, prepare, classifier=classifier, other=paired)
    tags = {"site": config.site, "grade": config.grade, "variant": config.variant}
    return node("score_gen", config, inputs, tags=tags | {"profile": config.profile})


def synthetic_set(
    prepare: Node,
    plan: StudyPlan,
    *,
    site: str,
    grade: str,
    variant: str,
    held_out: tuple[int, ...] = (),
    sample: SampleConfig | None = None,
) -> tuple[Node, Node]:
    """(sample, DDPM): the plan's DDPM of ``grade`` and ``variant`` trained on ``prepare``
    without the ``held_out`` folds, and its images (``sample``: the user's, else the plan's)."""
    ddpm = ddpm_node(prepare, plan.ddpm_config(site, grade, variant, held_out=held_out))
    drawn = sample or plan.sample_config(site, grade, variant)
    return sample_node(ddpm, drawn, held_out=held_out), ddpm


def fold_sets(
    prepare: Node, plan: StudyPlan, *, site: str, variant: str, fold: int
) -> dict[str, tuple[Node, Node]]:
    """Per grade, the (sample, DDPM) that classifier fold ``fold`` trains with: the DDPM that
    the plan's ``ddpm_scope`` assigns it (one that never saw the fold, or the site's one)."""
    held_out = plan.held_out(fold)
    return {
        grade: synthetic_set(
            prepare, plan, site=site, grade=grade, variant=variant, held_out=held_out
        )
        for grade in GRADES
    }


def scored_sets(
    prepare: Node,
    sets: dict[str, tuple[Node, Node]],
    configs: dict[str, ScoreGenConfig],
    *,
    classifier: Node | None = None,
) -> list[Node]:
    """score_gen of each grade's set with its config; the other grade's set adds TSTR."""
    return [
        score_node(
            sample,
            ddpm,
            prepare,
            config=configs[grade],
            classifier=classifier,
            other=sets.get(other_grade(grade)),
        )  # fmt: skip
        for grade, (sample, ddpm) in sets.items()
    ]


def fold_node(prepare: Node, config: TrainClsFoldConfig, plan: StudyPlan) -> Node:
    """Fold ``config.fold``'s classifier with, for the ddpm setups, its fold's synthetic sets."""
    synthetic = {}
    if config.setup in SETUP_VARIANT:
        sets = fold_sets(
            prepare, plan, site=config.site, variant=SETUP_VARIANT[config.setup], fold=config.fold
        )
        synthetic = {grade: SyntheticSet(sample, ddpm) for grade, (sample, ddpm) in sets.items()}
    inputs = FoldInputs(prepare, synthetic)
    inputs.check(config)  # the plan gave this fold what its setup needs
    tags = {"site": config.site, "setup": config.setup, "fold": config.fold}
    tags |= {"ddpm_scope": config.ddpm_scope if config.setup in SETUP_VARIANT else None}
    return node("train_cls_fold", config, inputs, tags=tags | {"profile": config.profile})


def classifier_node(prepare: Node, config: TrainClsConfig, plan: StudyPlan) -> Node:
    """The ensemble of one site and setup over its five fold nodes (``plan``: the DDPMs and
    samples of the ddpm setups; ``plan_for(config)`` outside a study)."""
    folds = tuple(fold_node(prepare, config.fold_config(k), plan) for k in range(N_FOLDS))
    inputs = EnsembleInputs(prepare, folds)
    tags = {"site": config.site, "setup": config.setup, "profile": config.profile}
    tags |= {"ddpm_scope": config.ddpm_scope if config.setup in SETUP_VARIANT else None}
    return node("train_cls", config, inputs, tags=tags)


def cross_eval_node(
    target_prepare: Node, classifiers: dict[str, Node], config: CrossEvalConfig
) -> Node:
    inputs = CrossEvalInputs(target_prepare, dict(classifiers))
    tags = {"site": config.source_site, "direction": config.direction, "profile": config.profile}
    return node("cross_eval", config, inputs, tags=tags)
