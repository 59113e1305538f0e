"""Figures of results: the study's Figure 2 heatmaps, and the tuning study's Pareto front."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TITLES = {"balanced_accuracy": "balanced accuracy", "macro_f1": "macro-F1"}


def direction_labels(results: pd.DataFrame, directions: list[str]) -> list[str]:
    """Column labels: the direction and how many test subjects its figures rest on."""
    if "n_subjects" not in results:
        return directions
    n = results.groupby("direction")["n_subjects"].max()
    return [f"{d}\n(n = {int(n[d])})" for d in directions]


def study_heatmaps(
    results: pd.DataFrame, metrics: tuple[str, ...] = ("balanced_accuracy", "macro_f1")
):
    """One panel per metric: rows = setups, columns = directions (with their n); cells
    'value [low, high]' (95 % intervals); one colour scale from 0.5 (chance) to 1.

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
            low, high = getattr(row, f"{metric}_ci_low"), getattr(row, f"{metric}_ci_high")
            value = getattr(row, metric)
            colour = "black" if value > 0.6 else "white"
            ax.text(j, i, f"{value:.2f}\n[{low:.2f}, {high:.2f}]", ha="center", va="center",
                    fontsize=8, color=colour)  # fmt: skip
        ax.set_xticks(range(len(directions)), direction_labels(results, directions), fontsize=8)
        ax.set_yticks(range(len(setups)), setups, fontsize=8)
        ax.set_title(TITLES.get(metric, metric), fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.05, label="0.5 = chance")
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
