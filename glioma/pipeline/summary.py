"""The ``main`` run's figures and tables, read back from the finished study's runs.

Both sites' data cards; the results table and heatmaps (with several training seeds: each seed's
rows, then the mean and SD over seeds); the paired differences to baseline with their intervals
and the pooled test (``glioma.evaluate.effects``) as ``study_effects.{md,csv,png}``; the
std-vs-mi comparison of each site and grade. One place logs them: ``summarise``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import mlflow
import pandas as pd

from glioma.config import MainConfig
from glioma.data.card import data_cards_figure
from glioma.data.dataset import read_dataset
from glioma.data.prepare import EXCLUSIONS
from glioma.evaluate.effects import study_effects
from glioma.evaluate.figures import forest_figure, study_heatmaps
from glioma.evaluate.tables import effects_table, results_table, seed_summary, seeds_table
from glioma.names import DATASET_ARTIFACT, DIRECTION_PREDICTIONS, DIRECTION_RESULTS
from glioma.pipeline.executors import Outcome
from glioma.pipeline.inputs import artifact_folder
from glioma.scoring.report import comparison_table, markdown_table, seed_comparison_table


def read_back(outcome: Outcome, artifact: str) -> pd.DataFrame:
    """Every cross_eval run's ``artifact`` (a CSV), with its training seed."""
    frames = []
    for item, result in outcome.in_order("cross_eval"):
        path = mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/{artifact}")
        frames.append(pd.read_csv(path).assign(seed=item.config.seed))
    return pd.concat(frames, ignore_index=True)


def study_results(outcome: Outcome) -> pd.DataFrame:
    """Every direction's results table (and seed), read back from its cross_eval runs."""
    return read_back(outcome, DIRECTION_RESULTS)


def log_comparisons(outcome: Outcome) -> None:
    """std vs mi side by side for each site and grade that was scored in both variants; over
    several seeds, each variant's mean and SD and the paired mi - std difference."""
    scored: dict[tuple[str, str], dict[str, dict[int, dict]]] = {}
    for item, result in outcome.in_order("score_gen"):
        key = (item.config.site, item.config.grade)
        by_seed = scored.setdefault(key, {}).setdefault(item.config.variant, {})
        by_seed[item.config.seed] = result.metrics
    for (site, grade), by_variant in sorted(scored.items()):
        if len(by_variant) < 2:
            continue
        seeds = {seed for runs in by_variant.values() for seed in runs}
        if len(seeds) > 1:
            table = seed_comparison_table(by_variant)
        else:
            table = comparison_table({v: next(iter(r.values())) for v, r in by_variant.items()})
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


def log_figure(figure, name: str) -> None:
    mlflow.log_figure(figure, name)
    plt.close(figure)


def log_effects(outcome: Outcome, config: MainConfig) -> pd.DataFrame:
    """The paired differences to baseline over seeds and subjects: table and forest plot."""
    effects = study_effects(
        read_back(outcome, DIRECTION_PREDICTIONS), n_boot=config.n_boot, seed=config.seed
    )
    if effects.empty:  # no baseline among the setups
        return effects
    stored = effects.assign(
        seed_differences=[";".join(f"{v:.6g}" for v in d) for d in effects["seed_differences"]]
    )
    mlflow.log_text(stored.to_csv(index=False), "study_effects.csv")
    mlflow.log_text(markdown_table(effects_table(effects)), "study_effects.md")
    log_figure(forest_figure(effects), "study_effects.png")
    return effects


def summarise(outcome: Outcome, config: MainConfig) -> pd.DataFrame:
    """The study's figures and tables, on the main run; returns the results (every seed's)."""
    log_data_cards(outcome)
    results = study_results(outcome)
    several = results["seed"].nunique() > 1
    shown = seed_summary(results) if several else results
    log_figure(study_heatmaps(shown), "study_heatmaps.png")
    stored = results if several else results.drop(columns="seed")
    mlflow.log_text(stored.to_csv(index=False), "study_results.csv")
    table = seeds_table(shown) if several else results_table(results)
    mlflow.log_text(markdown_table(table), "study_results.md")
    effects = log_effects(outcome, config)
    log_comparisons(outcome)
    columns = ["direction", "setup", "ddpm_scope", "accuracy", "balanced_accuracy", "f1"]
    print(
        f"main: done ({outcome.ran} steps run, {outcome.reused} reused)\n"
        f"{markdown_table(table[[c for c in columns if c in table]])}"
        + (
            f"paired differences to baseline:\n{markdown_table(effects_table(effects))}"
            if not effects.empty
            else ""
        )  # fmt: skip
        + f"figures and tables: {mlflow.get_artifact_uri()}/study_heatmaps.png, study_results.md,"
        " study_effects.png"
    )
    return stored
