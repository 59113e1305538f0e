"""``main``: the whole study as one declared graph, run serially or on Ray.

prepare per site -> per fold, grade and variant a DDPM -> its samples -> per site trained on
and setup five fold classifiers -> their ensemble -> score_gen of the fold-0 samples (each
site, grade and variant) -> cross_eval per direction (``--directions``: both, or one, so an
evaluation-only site can be a target). With ``--seeds 0,1,2`` everything after prepare is
declared once per training seed (the sites' data and splits are shared). The figures and
tables on the ``main`` run are ``glioma.pipeline.summary``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import pandas as pd

from glioma.classify.network import require_imagenet_weights
from glioma.config import (
    CrossEvalConfig,
    MainConfig,
    ScoreGenConfig,
    TrainClsConfig,
    build_config,
    setup_list,
)
from glioma.config.plan import StudyPlan, plan_for
from glioma.names import SETUP_VARIANT
from glioma.pipeline.graph import Graph, Node, tagged
from glioma.pipeline.invoke import run_group
from glioma.pipeline.steps.cross_eval import cross_eval_node
from glioma.pipeline.steps.prepare import prepare_for, refuse_small_site
from glioma.pipeline.steps.score_gen import scored_sets
from glioma.pipeline.steps.train_cls import classifier_node
from glioma.pipeline.steps.train_cls_fold import fold_sets
from glioma.pipeline.summary import summarise
from glioma.scoring.inception import find_weights


@dataclass(frozen=True)
class StudyOutput:
    run_id: str
    results: pd.DataFrame  # one row per setup and direction
    reused: int  # steps reused instead of run
    ran: int


def classifier_config(config: MainConfig, plan: StudyPlan, site: str, setup: str) -> TrainClsConfig:
    """The ensemble of ``site`` and ``setup``; its plan fields are the plan's."""
    overrides = {"site": site, "setup": setup, "imagenet_weights": config.imagenet_weights}
    return build_config(TrainClsConfig, overrides | plan.plan_values() | plan.common)


def study_graph(config: MainConfig) -> Graph:
    """The whole study, declared (see the module docstring); nothing runs here. The sites are
    prepared once; the rest is declared once per training seed, each copy tagged with its seed
    when there are several (one seed: the same nodes as ever)."""
    data = {config.site_a: config.data_a, config.site_b: config.data_b}
    prepared = {site: prepare_of(config, site, where) for site, where in data.items()}
    directions = config.directions_sites()
    for site in dict.fromkeys(source_site for source_site, _ in directions):
        refuse_small_site(prepared[site], hint=one_direction_hint(config, site))
    seeds = config.training_seeds()
    several, targets = len(seeds) > 1, []
    for seed in seeds:
        trained = seed_part(replace(config, seed=seed), prepared, data)
        targets += tagged(trained, "seed", seed, shared=prepared.values()) if several else trained
    return Graph([*prepared.values(), *targets])


def seed_part(config: MainConfig, prepared: dict[str, Node], data: dict[str, str]) -> list[Node]:
    """Under ``config.seed``: the DDPMs, samples, classifiers, scores and evaluations."""
    plan = plan_for(config)
    setups = setup_list(config.setups)
    directions = config.directions_sites()
    trained = [site for site in data if site in {trained_on for trained_on, _ in directions}]
    classifiers = {
        (site, setup): classifier_node(
            prepared[site], classifier_config(config, plan, site, setup), plan
        )
        for site in trained
        for setup in setups
    }
    scores = [
        score_of_fold0(prepared[site], plan, site, variant, classifiers.get((site, "baseline")))
        for site in trained
        for variant in dict.fromkeys(SETUP_VARIANT[s] for s in setups if s in SETUP_VARIANT)
    ]
    evaluations = [
        cross_eval_node(
            prepared[target_site],
            {setup: classifiers[(source_site, setup)] for setup in setups},
            cross_eval_config(config, source_site, target_site, data),
        )
        for source_site, target_site in directions
    ]
    return [*evaluations, *[s for nodes in scores for s in nodes]]


def prepare_of(config: MainConfig, site: str, data: str) -> Node:
    common = {"profile": config.profile, "seed": config.seed, "workers": config.workers}
    return prepare_for(site, data, phantom_scale=config.phantom_scale, **common)


def cross_eval_config(
    config: MainConfig, source_site: str, target_site: str, data: dict[str, str]
) -> CrossEvalConfig:
    cross = {"source_site": source_site, "target_site": target_site, "setups": config.setups}
    cross |= {"source_data": data[source_site], "target_data": data[target_site]}
    cross["n_boot"] = config.n_boot
    return build_config(CrossEvalConfig, cross | {"profile": config.profile, "seed": config.seed})


def one_direction_hint(config: MainConfig, small: str) -> str:
    other = config.site_a if small == config.site_b else config.site_b
    direction = "a-to-b" if small == config.site_b else "b-to-a"
    return f"give --directions {direction}: train on {other}, evaluate on {small}"


def score_of_fold0(
    prepare: Node, plan: StudyPlan, site: str, variant: str, classifier: Node | None
) -> list[Node]:
    """score_gen of the samples fold 0's classifier trains with, per grade."""
    sets = fold_sets(prepare, plan, site=site, variant=variant, fold=0)
    configs = {grade: plan.score_config(site, grade, variant) for grade in sets}
    return scored_sets(prepare, sets, configs, classifier=classifier)


def check_weights(config: MainConfig) -> None:
    """Before anything trains: the weight files the profile requires are on this machine
    (MissingWeightsError says where each goes), not after hours of DDPMs."""
    if any(setup in SETUP_VARIANT for setup in setup_list(config.setups)):
        score = build_config(ScoreGenConfig, {"profile": config.profile})
        if score.inception == "required":
            find_weights(score.inception_weights)
    classifier = classifier_config(config, plan_for(config), config.site_a, "baseline")
    if classifier.imagenet_weights == "required":
        require_imagenet_weights(classifier.arch)


def run_main(config: MainConfig) -> StudyOutput:
    """The study; every step reuses a finished run with the same key."""
    check_weights(config)
    summary = partial(summarise, config=config)
    invocation = run_group(study_graph(config), config, settings=config, summarise=summary)
    outcome = invocation.outcome
    return StudyOutput(invocation.run_id, invocation.summary, outcome.reused, outcome.ran)
