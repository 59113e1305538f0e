"""Every node config of the study, computed once from ``main``'s config.

``study_configs`` turns a ``MainConfig`` into the narrower configs of every step it declares:
each site's prepare, and per training seed each ensemble's, each classifier fold's DDPM and
sample chains, each score's and each direction's. The config flows down in one go;
``glioma.pipeline.study`` wires nodes from these values and never reads ``main``'s config back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from glioma.config.build import build_config
from glioma.config.classify import CrossEvalConfig, TrainClsConfig, setup_list
from glioma.config.plan import ChainConfigs, FoldChains, StudyPlan, plan_for
from glioma.config.prepare import PrepareConfig
from glioma.config.scoring import ScoreGenConfig
from glioma.config.study import MainConfig
from glioma.names import SETUP_VARIANT


@dataclass(frozen=True)
class ScoredSet:
    """One grade's chain of fold 0 and the config that scores its samples."""

    chain: ChainConfigs
    score: ScoreGenConfig


@dataclass(frozen=True)
class SeedConfigs:
    """What one training seed declares after prepare (keys: site and setup, site and variant,
    source and target site)."""

    classifiers: Mapping[tuple[str, str], TrainClsConfig]
    chains: Mapping[tuple[str, str], tuple[FoldChains, ...]]  # per fold of each ensemble
    scored: Mapping[tuple[str, str], Mapping[str, ScoredSet]]  # per grade
    evaluations: Mapping[tuple[str, str], CrossEvalConfig]


@dataclass(frozen=True)
class StudyConfigs:
    """The sites' prepare configs (shared by every seed), each training site's hint for when it
    turns out too small, and each training seed's configs."""

    prepares: Mapping[str, PrepareConfig]
    too_small_hints: Mapping[str, str]
    seeds: Mapping[int, SeedConfigs]


def study_configs(config: MainConfig) -> StudyConfigs:
    sites = config.site_data()
    prepares = {site: prepare_config(config, site, data) for site, data in sites.items()}
    trained = dict.fromkeys(source for source, _ in config.directions_sites())
    hints = {site: one_direction_hint(config, site) for site in trained}
    seeds = {seed: seed_configs(replace(config, seed=seed)) for seed in config.training_seeds()}
    return StudyConfigs(prepares, hints, seeds)


def seed_configs(config: MainConfig) -> SeedConfigs:
    plan = plan_for(config)
    setups = setup_list(config.setups)
    directions = config.directions_sites()
    trained = list(dict.fromkeys(source for source, _ in directions))
    classifiers = {
        (site, setup): classifier_config(config, plan, site, setup)
        for site in trained
        for setup in setups
    }
    chains = {key: plan.classifier_chains(c) for key, c in classifiers.items()}
    variants = dict.fromkeys(SETUP_VARIANT[s] for s in setups if s in SETUP_VARIANT)
    scored = {
        (site, variant): scored_fold0(plan, site, variant)
        for site in trained
        for variant in variants
    }
    evaluations = {pair: cross_eval_config(config, *pair) for pair in directions}
    return SeedConfigs(classifiers, chains, scored, evaluations)


def prepare_config(config: MainConfig, site: str, data: str) -> PrepareConfig:
    overrides = {"site": site, "data": data, "phantom_scale": config.phantom_scale}
    overrides |= {"profile": config.profile, "seed": config.seed, "workers": config.workers}
    return build_config(PrepareConfig, overrides)


def classifier_config(config: MainConfig, plan: StudyPlan, site: str, setup: str) -> TrainClsConfig:
    """The ensemble of ``site`` and ``setup``; its plan fields are the plan's."""
    overrides = {"site": site, "setup": setup, "imagenet_weights": config.imagenet_weights}
    return build_config(TrainClsConfig, overrides | plan.plan_values() | plan.common)


def scored_fold0(plan: StudyPlan, site: str, variant: str) -> dict[str, ScoredSet]:
    """The samples fold 0's classifier trains with, per grade, and their scores' configs."""
    chains = plan.fold_chains(site, variant, 0)
    return {g: ScoredSet(c, plan.score_config(site, g, variant)) for g, c in chains.items()}


def cross_eval_config(config: MainConfig, source_site: str, target_site: str) -> CrossEvalConfig:
    data = config.site_data()
    cross = {"source_site": source_site, "target_site": target_site, "setups": config.setups}
    cross |= {"source_data": data[source_site], "target_data": data[target_site]}
    cross |= {"n_boot": config.n_boot, "profile": config.profile, "seed": config.seed}
    return build_config(CrossEvalConfig, cross)


def one_direction_hint(config: MainConfig, small: str) -> str:
    """What to type when training site ``small`` turns out evaluation-only."""
    other = config.site_a if small == config.site_b else config.site_b
    direction = "a-to-b" if small == config.site_b else "b-to-a"
    return f"give --directions {direction}: train on {other}, evaluate on {small}"
