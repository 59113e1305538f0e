"""``main``: the whole study as one declared graph, run serially or on Ray.

prepare per site -> per fold, grade and variant a DDPM -> its samples -> per site trained on
and setup five fold classifiers -> their ensemble -> score_gen of the fold-0 samples (each
site, grade and variant) -> cross_eval per direction (``--directions``: both, or one, so an
evaluation-only site can be a target). With ``--seeds 0,1,2`` everything after prepare is
declared once per training seed (the sites' data and splits are shared). Every node's config
is computed once, in the config layer (``glioma.config.declared.study_configs``); this module
only wires nodes from those values. The figures and tables on the ``main`` run are
``glioma.pipeline.summary``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import pandas as pd

from glioma.classify.network import require_imagenet_weights
from glioma.config import MainConfig
from glioma.config.declared import SeedConfigs, study_configs
from glioma.pipeline.graph import Graph, Node, tagged
from glioma.pipeline.invoke import run_group
from glioma.pipeline.steps.cross_eval import cross_eval_node
from glioma.pipeline.steps.prepare import prepare_node, refuse_small_site
from glioma.pipeline.steps.score_gen import scored_sets
from glioma.pipeline.steps.train_cls import classifier_node
from glioma.pipeline.summary import summarise
from glioma.scoring.inception import find_weights


@dataclass(frozen=True)
class StudyOutput:
    run_id: str
    results: pd.DataFrame  # one row per setup and direction
    reused: int  # steps reused instead of run
    ran: int


def study_graph(config: MainConfig) -> Graph:
    """The whole study, declared (see the module docstring); nothing runs here. Every node's
    config comes from ``study_configs``, computed once; the sites are prepared once; the rest is
    declared once per training seed, each copy tagged with its seed when there are several (one
    seed: the same nodes as ever)."""
    declared = study_configs(config)
    prepared = {site: prepare_node(c) for site, c in declared.prepares.items()}
    for site, hint in declared.too_small_hints.items():
        refuse_small_site(prepared[site], hint=hint)
    several, targets = len(declared.seeds) > 1, []
    for seed, configs in declared.seeds.items():
        trained = seed_part(configs, prepared)
        targets += tagged(trained, "seed", seed, shared=prepared.values()) if several else trained
    return Graph([*prepared.values(), *targets])


def seed_part(configs: SeedConfigs, prepared: dict[str, Node]) -> list[Node]:
    """One seed's DDPMs, samples, classifiers, scores and evaluations, wired from its configs."""
    classifiers = {
        (site, setup): classifier_node(prepared[site], config, configs.chains[(site, setup)])
        for (site, setup), config in configs.classifiers.items()
    }
    scores = [
        scored_sets(prepared[site], sets, classifier=classifiers.get((site, "baseline")))
        for (site, _), sets in configs.scored.items()
    ]
    evaluations = [
        cross_eval_node(
            prepared[target],
            {setup: node for (site, setup), node in classifiers.items() if site == source},
            config,
        )
        for (source, target), config in configs.evaluations.items()
    ]
    return [*evaluations, *[s for nodes in scores for s in nodes]]


def check_weights(graph: Graph) -> None:
    """Before anything trains: the weight files the declared steps require are on this machine
    (MissingWeightsError says where each goes), not after hours of DDPMs."""
    configs = [item.config for item in graph.nodes if item.step in ("score_gen", "train_cls")]
    for inception in {c.inception_weights for c in configs if c.step == "score_gen"
                      and c.inception == "required"}:  # fmt: skip
        find_weights(inception)
    for arch in {c.arch for c in configs if c.step == "train_cls"
                 and c.imagenet_weights == "required"}:  # fmt: skip
        require_imagenet_weights(arch)


def run_main(config: MainConfig) -> StudyOutput:
    """The study; every step reuses a finished run with the same key."""
    graph = study_graph(config)
    check_weights(graph)
    summary = partial(summarise, config=config)
    invocation = run_group(graph, config, settings=config, summarise=summary)
    outcome = invocation.outcome
    return StudyOutput(invocation.run_id, invocation.summary, outcome.reused, outcome.ran)
