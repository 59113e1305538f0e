"""The learning curve's figures (``bench_learning_curve.py``): each metric against optimiser
steps per arm and grade, and the T1ce of each arm's last HGG samples beside real ones."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

# isort: split
from rings import t1ce_figure  # noqa: E402

from glioma.names import GRADES  # noqa: E402


def plot(frame: pd.DataFrame, path: Path) -> None:
    panels = ("fd_radiomic", "precision", "recall", "memorisation_mean", "tstr_balanced_accuracy")
    fig, axes = plt.subplots(len(GRADES), len(panels), figsize=(4 * len(panels), 7))
    for row, grade in enumerate(GRADES):
        for col, metric in enumerate(panels):
            ax = axes[row, col]
            for arm, part in frame[frame.grade == grade].groupby("arm"):
                ax.plot(part.steps, part[metric], marker="o", label=arm)
            if metric == "fd_radiomic":
                ax.axhline(frame[frame.grade == grade].fd_radiomic_held_out.iloc[0], ls="--", c="k")
                ax.set_yscale("log")
            ax.set_title(f"{grade} {metric}")
            ax.set_xlabel("optimiser steps")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def rings_figure(frame: pd.DataFrame, real: np.ndarray, out: Path) -> None:
    """T1ce of 8 real HGG patches, then of 8 samples of each label at its last step."""
    rows = {"real": real[:8]}
    for label, part in frame[frame.grade == "HGG"].groupby("arm", sort=False):
        step = int(part.steps.max())
        name = label.replace(":", "_").replace("+", "_").replace("=", "-")
        rows[f"{label}\n{step}"] = np.load(out / f"samples-{name}-{step}.npz")["HGG"][:8]
    figure = t1ce_figure(rows)
    figure.savefig(out / "rings.png", dpi=90)
    plt.close(figure)
