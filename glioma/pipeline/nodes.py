"""Declaring the study's nodes: each builder takes its upstream nodes and a typed config.

The builders know the study's shape (which DDPMs a classifier fold needs, which sample a score
reads); they run nothing. ``glioma.pipeline.study`` and ``glioma.pipeline.entries`` compose
them into the graphs that ``main`` and each single entry point need.
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
from glioma.config.classify import held_out_for
from glioma.config.ddpm import ddpm_config_for
from glioma.data.sources import discover
from glioma.data.splits import too_small, training_refused
from glioma.names import GRADES, N_FOLDS, SETUP_VARIANT
from glioma.pipeline.graph import GIVEN, Node, given, node
from glioma.pipeline.inputs import checked_run
from glioma.pipeline.steps.prepare import data_fingerprint, site_name


def site_of(prepare: Node) -> str:
    """The site a prepare node (declared, or a given run) stands for."""
    if prepare.step == GIVEN:
        return checked_run(prepare.config.run_id, "prepare").data.tags["site"]
    return site_name(prepare.config)


def refuse_small_site(prepare: Node, *, hint: str = "") -> None:
    """Before anything runs: a site that is certainly evaluation-only cannot be trained on.

    Discovery (file names, no voxels) gives at most the subjects prepare keeps; when even those
    are too few for a test set and 5 folds, say so in one line now, not after the other steps.
    """
    if prepare.step == GIVEN or prepare.config.source == "phantom":
        return
    config = prepare.config
    found = discover(Path(config.source).expanduser(), "check", grades=config.grades or None)
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
    overrides = {"site": site, "source": data, "profile": profile, "seed": seed, **extra}
    return prepare_node(build_config(PrepareConfig, overrides))


def ddpm_node(prepare: Node, config: TrainDDPMConfig) -> Node:
    tags = {"site": config.site, "grade": config.grade, "variant": config.variant}
    tags |= {"fold": folds_label(config.held_out_folds), "profile": config.profile}
    return node("train_ddpm", config, {"prepare": prepare}, tags=tags)


def folds_label(held_out: tuple[int, ...]) -> str | None:
    """(3,) -> "3", (0, 1, 2) -> "0-1-2", () -> None: the ``fold`` tag of a DDPM and its samples."""
    return "-".join(map(str, held_out)) or None


def sample_node(ddpm: Node, config: SampleConfig, *, held_out: tuple[int, ...] = ()) -> Node:
    tags = {"site": config.site, "grade": config.grade, "variant": config.variant}
    tags |= {"fold": folds_label(held_out), "profile": config.profile}
    return node("sample", config, {"ddpm": ddpm}, tags=tags)


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
    inputs = {"sample": sample, "ddpm": ddpm, "prepare": prepare}
    if classifier is not None:
        inputs["classifier"] = classifier
    if other is not None and config.tstr:
        inputs |= {"other_sample": other[0], "other_ddpm": other[1]}
    tags = {"site": config.site, "grade": config.grade, "variant": config.variant}
    return node("score_gen", config, inputs, tags=tags | {"profile": config.profile})


def fold_ddpm(
    prepare: Node, *, grade: str, variant: str, fold: int, cls: TrainClsConfig
) -> tuple[Node, Node]:
    """(sample, DDPM) of one grade for classifier fold ``fold``: the DDPM that ``ddpm_scope``
    assigns it (one that never saw the fold, or, under ``site``, the site's one)."""
    common = {"site": cls.site, "grade": grade, "profile": cls.profile, "seed": cls.seed}
    mi_weight = cls.ddpm_mi_weight if variant == "mi" else 0.0
    held_out = held_out_for(cls.ddpm_scope, fold)
    shared = {k: v for k, v in common.items() if k != "grade"}
    shared |= {"held_out": ",".join(map(str, held_out)), "mi_weight": mi_weight}
    ddpm = ddpm_node(prepare, ddpm_config_for(grade, shared))
    overrides = {**common, "variant": variant, "n_per_subject": cls.synthetic_ratio}
    return sample_node(ddpm, build_config(SampleConfig, overrides), held_out=held_out), ddpm


def fold_node(prepare: Node, config: TrainClsFoldConfig, cls: TrainClsConfig) -> Node:
    """Fold ``config.fold``'s classifier with, for the ddpm setups, its fold's synthetic sets."""
    inputs = {"prepare": prepare}
    if config.setup in SETUP_VARIANT:
        for grade in GRADES:
            sample, ddpm = fold_ddpm(
                prepare, grade=grade, variant=SETUP_VARIANT[config.setup], fold=config.fold,
                cls=cls,
            )  # fmt: skip
            inputs |= {f"sample_{grade}": sample, f"ddpm_{grade}": ddpm}
    tags = {"site": config.site, "setup": config.setup, "fold": config.fold}
    tags |= {"ddpm_scope": config.ddpm_scope if config.setup in SETUP_VARIANT else None}
    return node("train_cls_fold", config, inputs, tags=tags | {"profile": config.profile})


def classifier_node(prepare: Node, config: TrainClsConfig) -> Node:
    """The ensemble of one site and setup over its five fold nodes."""
    inputs = {"prepare": prepare}
    inputs |= {
        f"fold{k}": fold_node(prepare, config.fold_config(k), config) for k in range(N_FOLDS)
    }
    tags = {"site": config.site, "setup": config.setup, "profile": config.profile}
    tags |= {"ddpm_scope": config.ddpm_scope if config.setup in SETUP_VARIANT else None}
    return node("train_cls", config, inputs, tags=tags)


def cross_eval_node(
    target_prepare: Node, classifiers: dict[str, Node], config: CrossEvalConfig
) -> Node:
    inputs = {"target_prepare": target_prepare}
    inputs |= {f"train_cls_{setup}": n for setup, n in classifiers.items()}
    tags = {"site": config.source_site, "direction": config.direction, "profile": config.profile}
    return node("cross_eval", config, inputs, tags=tags)
