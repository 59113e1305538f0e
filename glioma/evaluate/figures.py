"""Figures of results: the study's Figure 2 heatmaps, the forest plot of its paired effects, and
the tuning study's Pareto front."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TITLES = {"balanced_accuracy": "balanced accuracy", "macro_f1": "macro-F1", "roc_auc": "ROC AUC"}


def direction_labels(results: pd.DataFrame, directions: list[str]) -> list[str]:
    """Column labels: the direction and how many test subjects its figures rest on."""
    if "n_subjects" not in results:
        return directions
    n = results.groupby("direction")["n_subjects"].max()
    return [f"{d}\n(n = {int(n[d])})" for d in directions]


def cell_text(row, metric: str) -> str:
    """'value [low, high]' (one seed: the subject interval) or 'mean ± SD' (over seeds)."""
    value = getattr(row, metric)
    if hasattr(row, f"{metric}_sd"):
        return f"{value:.2f}\n± {getattr(row, f'{metric}_sd'):.2f} (SD)"
    low, high = getattr(row, f"{metric}_ci_low"), getattr(row, f"{metric}_ci_high")
    return f"{value:.2f}\n[{low:.2f}, {high:.2f}]"


def study_heatmaps(
    results: pd.DataFrame, metrics: tuple[str, ...] = ("balanced_accuracy", "macro_f1")
):
    """One panel per metric: rows = setups, columns = directions (with their n); cells
    'value [low, high]' (95 % intervals), or over training seeds 'mean ± SD' (``results`` from
    ``seed_summary``); one colour scale from 0.5 (chance) to 1.

    The defaults are the columns to read on imbalanced sites (the paper's accuracy and F1
    reward always saying HGG); ``results`` has columns setup, direction, <metric>,
    <metric>_ci_low, <metric>_ci_high and, optionally, n_subjects.
    """
    setups = list(dict.fromkeys(results["setup"]))
    directions = list(dict.fromkeys(results["direction"]))
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(4.6 * len(metrics), 0.7 * len(setups) + 1.9), squeeze=False
    )
    for ax, metric in zip(axes[0], metrics):
        grid = np.full((len(setups), len(directions)), np.nan)
        for row in results.itertuples(index=False):
            grid[setups.index(row.setup), directions.index(row.direction)] = getattr(row, metric)
        image = ax.imshow(grid, cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto")
        for row in results.itertuples(index=False):
            i, j = setups.index(row.setup), directions.index(row.direction)
            value = getattr(row, metric)
            colour = "black" if value > 0.6 else "white"
            ax.text(j, i, cell_text(row, metric), ha="center", va="center", fontsize=8,
                    color=colour)  # fmt: skip
        ax.set_xticks(range(len(directions)), direction_labels(results, directions), fontsize=8)
        ax.set_yticks(range(len(setups)), setups, fontsize=8)
        ax.set_title(TITLES.get(metric, metric), fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.05, label="0.5 = chance")
    fig.tight_layout()
    return fig


def forest_figure(
    effects: pd.DataFrame, metrics: tuple[str, ...] = ("balanced_accuracy", "macro_f1", "roc_auc")
):
    """The paired differences to baseline: one panel per metric, one row per setup and
    direction; the mean over seeds (diamond), its 95 % interval (bar), each seed's difference
    (dots), the zero line, and the pooled test's p on the right.

    ``effects``: ``glioma.evaluate.effects.study_effects``'s table.
    """
    keys = list(dict.fromkeys(zip(effects["direction"], effects["setup"])))
    directions = list(dict.fromkeys(effects["direction"]))
    colours = dict(zip(directions, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    n_seeds = int(effects["n_seeds"].max())
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(3.9 * len(metrics) + 1.6, 0.42 * len(keys) + 1.6),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    for ax, metric in zip(axes[0], metrics):
        rows = effects[effects["metric"] == metric].set_index(["direction", "setup"])
        for i, key in enumerate(keys):
            row, colour = rows.loc[key], colours[key[0]]
            ax.plot([row.ci_low, row.ci_high], [i, i], color=colour, lw=2.2, solid_capstyle="butt")
            ax.plot(row.difference, i, "D", color=colour, ms=7, mec="black", mew=0.6)
            seeds = np.asarray(row.seed_differences, dtype=float)
            jitter = np.linspace(-0.18, 0.18, len(seeds)) if len(seeds) > 1 else [0.0]
            ax.scatter(
                seeds,
                i + np.asarray(jitter),
                s=14,
                facecolors="white",
                edgecolors=colour,
                linewidths=0.9,
                zorder=3,
            )
            ax.annotate(
                f"p={row.p_value:.2g}",
                (1.0, i),
                xycoords=("axes fraction", "data"),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        ax.axvline(0.0, color="black", lw=0.8, ls="--")
        ax.set_title(f"{TITLES.get(metric, metric)}: setup - baseline", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(keys)), [f"{s}\n{d}" for d, s in keys], fontsize=7)
    axes[0][0].invert_yaxis()
    seeds_said = f"{n_seeds} training seeds" if n_seeds > 1 else "1 training seed (subjects only)"
    fig.suptitle(
        f"Paired difference to baseline on the target site's subjects, {seeds_said}: "
        "diamond = mean over seeds, bar = 95 % pigeonhole bootstrap (subjects x seeds), "
        "dots = each seed",
        fontsize=8,
    )
    fig.tight_layout()
    return fig


def pareto_figure(trials: pd.DataFrame, x: str, y: str):
    """Every finished trial as a point (both objectives minimised); the Pareto front joined.

    ``trials`` has columns trial, <x>, <y>, pareto (bool), mi_weight, lr.
    """
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    points = ax.scatter(trials[x], trials[y], c=trials["mi_weight"], cmap="viridis", s=36)
    fig.colorbar(points, ax=ax, label="mi_weight")
    front = trials[trials["pareto"]].sort_values(x)
    ax.step(front[x], front[y], where="post", color="crimson", lw=1.2, label="Pareto front")
    ax.scatter(front[x], front[y], facecolors="none", edgecolors="crimson", s=90)
    for row in trials.itertuples(index=False):
        label = f"{row.trial} (lr {row.lr:.1e})"
        ax.annotate(label, (getattr(row, x), getattr(row, y)), fontsize=7,
                    xytext=(4, 3), textcoords="offset points")  # fmt: skip
    positive = trials[x][trials[x] > 0]
    if len(positive) == len(trials) and positive.max() > 20 * positive.min():
        ax.set_xscale("log")  # distances of poor and good trials differ by orders of magnitude
    ax.set_xlabel(f"{x} (lower is better)")
    ax.set_ylabel(f"{y} (lower is better)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
