"""``main``: the whole study as one declared graph, run serially or on Ray.

prepare per site -> per fold, grade and variant a DDPM -> its samples -> per site trained on
and setup five fold classifiers -> their ensemble -> score_gen of the fold-0 samples (each
site, grade and variant) -> cross_eval per direction (``--directions``: both, or one, so an
evaluation-only site can be a target). The sites' data cards, the heatmaps, the results
table and the std-vs-mi comparisons go on the ``main`` run.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import mlflow
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
from glioma.config.plan import StudyPlan
from glioma.data.card import data_cards_figure
from glioma.data.dataset import read_dataset
from glioma.data.prepare import EXCLUSIONS
from glioma.evaluate.figures import study_heatmaps
from glioma.evaluate.tables import results_table
from glioma.names import DATASET_ARTIFACT, DIRECTION_RESULTS, SETUP_VARIANT
from glioma.pipeline.executors import Outcome
from glioma.pipeline.graph import Graph, Node
from glioma.pipeline.inputs import artifact_folder
from glioma.pipeline.invoke import run_graph
from glioma.pipeline.nodes import (
    classifier_node,
    cross_eval_node,
    fold_sets,
    prepare_for,
    refuse_small_site,
    scored_sets,
)
from glioma.scoring.inception import find_weights
from glioma.scoring.report import comparison_table, markdown_table


@dataclass(frozen=True)
class StudyOutput:
    run_id: str
    results: pd.DataFrame  # one row per setup and direction
    reused: int  # steps reused instead of run
    ran: int


def classifier_config(config: MainConfig, plan: StudyPlan, site: str, setup: str) -> TrainClsConfig:
    """The ensemble of ``site`` and ``setup``; its ddpm fields are the plan's."""
    overrides = {"site": site, "setup": setup, "synthetic_ratio": plan.synthetic_ratio}
    overrides |= {"ddpm_mi_weight": plan.mi_weight, "ddpm_scope": plan.ddpm_scope}
    if config.imagenet_weights:
        overrides["imagenet_weights"] = config.imagenet_weights
    return build_config(TrainClsConfig, overrides | plan.common)


def study_graph(config: MainConfig) -> Graph:
    """The whole study, declared (see the module docstring); nothing runs here."""
    plan = config.plan()
    data = {config.site_a: config.data_a, config.site_b: config.data_b}
    prepared = {site: prepare_of(config, site, where) for site, where in data.items()}
    setups = setup_list(config.setups)
    directions = config.directions_sites()
    trained = [site for site in data if site in {trained_on for trained_on, _ in directions}]
    for site in trained:
        refuse_small_site(prepared[site], hint=one_direction_hint(config, site))
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
    return Graph([*prepared.values(), *evaluations, *[s for nodes in scores for s in nodes]])


def prepare_of(config: MainConfig, site: str, data: str) -> Node:
    extra = {"phantom_scale": config.phantom_scale} if config.phantom_scale else {}
    common = {"profile": config.profile, "seed": config.seed}
    return prepare_for(site, data, workers=config.workers, **common, **extra)


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


def study_results(outcome: Outcome) -> pd.DataFrame:
    """Every direction's results table, read back from its cross_eval run."""
    frames = []
    for _, result in outcome.in_order("cross_eval"):
        path = mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/{DIRECTION_RESULTS}")
        frames.append(pd.read_csv(path))
    return pd.concat(frames, ignore_index=True)


def log_comparisons(outcome: Outcome) -> None:
    """std vs mi side by side for each site and grade that was scored in both variants."""
    scored: dict[tuple[str, str], dict[str, dict]] = {}
    for item, result in outcome.in_order("score_gen"):
        key = (item.config.site, item.config.grade)
        metrics = mlflow.get_run(result.run_id).data.metrics
        scored.setdefault(key, {})[item.config.variant] = metrics
    for (site, grade), by_variant in sorted(scored.items()):
        if len(by_variant) < 2:
            continue
        table = comparison_table(by_variant)
        mlflow.log_text(table.to_csv(index=False), f"comparison_std_vs_mi/{site}-{grade}.csv")
        mlflow.log_text(markdown_table(table), f"comparison_std_vs_mi/{site}-{grade}.md")
        print(f"main: {site} {grade} std vs mi\n{markdown_table(table)}")


def log_data_cards(outcome: Outcome) -> None:
    """Both sites' data cards side by side: the domain shift before the accuracy."""
    cards = []
    for _, result in outcome.in_order("prepare"):
        folder = artifact_folder(result.run_id, DATASET_ARTIFACT)
        cards.append((read_dataset(folder), pd.read_csv(folder / EXCLUSIONS)))
    figure = data_cards_figure(cards)
    mlflow.log_figure(figure, "data_cards.png")
    plt.close(figure)


def summarise(outcome: Outcome) -> pd.DataFrame:
    """The study's figures and tables, on the main run; returns the results."""
    log_data_cards(outcome)
    results = study_results(outcome)
    figure = study_heatmaps(results)
    mlflow.log_figure(figure, "study_heatmaps.png")
    plt.close(figure)
    mlflow.log_text(results.to_csv(index=False), "study_results.csv")
    mlflow.log_text(markdown_table(results_table(results)), "study_results.md")
    log_comparisons(outcome)
    table = results_table(results)
    shown = ["direction", "setup", "ddpm_scope", "accuracy", "balanced_accuracy", "f1"]
    table = table[[c for c in shown if c in table]]
    print(
        f"main: done ({outcome.ran} steps run, {outcome.reused} reused)\n{markdown_table(table)}"
        f"figures and tables: {mlflow.get_artifact_uri()}/study_heatmaps.png, study_results.md"
    )
    return results


def check_weights(config: MainConfig) -> None:
    """Before anything trains: the weight files the profile requires are on this machine
    (MissingWeightsError says where each goes), not after hours of DDPMs."""
    if any(setup in SETUP_VARIANT for setup in setup_list(config.setups)):
        score = build_config(ScoreGenConfig, {"profile": config.profile})
        if score.inception == "required":
            find_weights(score.inception_weights)
    classifier = classifier_config(config, config.plan(), config.site_a, "baseline")
    if classifier.imagenet_weights == "required":
        require_imagenet_weights(classifier.arch)


def run_main(config: MainConfig) -> StudyOutput:
    """The study; every step reuses a finished run with the same key."""
    check_weights(config)
    invocation = run_graph(
        study_graph(config), config, settings=config, group=True, summarise=summarise
    )
    outcome = invocation.outcome
    return StudyOutput(invocation.run_id, invocation.summary, outcome.reused, outcome.ran)
