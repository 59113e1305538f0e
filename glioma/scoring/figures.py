"""Pictures of memorisation: the closest synthetic/training pairs, and the r histograms."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from glioma.data.preview import CHANNEL_NAMES  # noqa: E402
from glioma.scoring.memorisation import NearestTraining  # noqa: E402


def nearest_pairs_figure(
    synthetic: np.ndarray,
    training: np.ndarray,
    nearest: NearestTraining,
    *,
    training_ids: list[str],
    pairs: int = 8,
):
    """The ``pairs`` most-correlated synthetic images beside their nearest training image.

    Each row: synthetic T1, T1ce, T2, FLAIR | training T1, T1ce, T2, FLAIR, with r.
    """
    order = np.argsort(-nearest.correlation)[:pairs]
    fig, axes = plt.subplots(
        len(order), 8, figsize=(10, 1.35 * len(order) + 0.6), squeeze=False, constrained_layout=True
    )
    for row, i in enumerate(order):
        j = int(nearest.index[i])
        for c in range(8):
            image = synthetic[i] if c < 4 else training[j]
            ax = axes[row, c]
            ax.imshow(np.flipud(image[c % 4].T), cmap="gray", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(
                    f"{'synthetic' if c < 4 else 'training'}\n{CHANNEL_NAMES[c % 4]}", fontsize=8
                )
        axes[row, 0].set_ylabel(f"#{i}\nr={nearest.correlation[i]:.3f}", fontsize=7)
        axes[row, 4].set_ylabel(training_ids[j], fontsize=6)
    fig.suptitle("Synthetic images closest to a training image (Pearson r)", fontsize=9)
    return fig


def correlation_histogram(synthetic_r: np.ndarray, held_out_r: np.ndarray, threshold: float):
    """Nearest-training r of synthetic images next to that of held-out real images."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2), constrained_layout=True)
    bins = np.linspace(min(synthetic_r.min(), held_out_r.min(), 0.0), 1.0, 41)
    ax.hist(
        synthetic_r, bins=bins, alpha=0.6, density=True, label=f"synthetic (n={len(synthetic_r)})"
    )
    if len(held_out_r):
        ax.hist(
            held_out_r,
            bins=bins,
            alpha=0.6,
            density=True,
            label=f"held-out real (n={len(held_out_r)})",
        )
    ax.axvline(threshold, color="k", linestyle="--", linewidth=1, label=f"r = {threshold}")
    ax.set_xlabel("highest Pearson r with any training image")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    return fig


def real_vs_synthetic_figure(
    real: dict[str, np.ndarray], synthetic: dict[str, np.ndarray], *, per_grade: int = 4
):
    """Per grade, ``per_grade`` real patches beside as many synthetic ones, 4 contrasts each.

    Rows: a grade's patch pairs; columns: real T1, T1ce, T2, FLAIR | synthetic T1 ... FLAIR.
    What a person looks at first: do the samples look like the data, lesion and all?
    """
    rows = [
        (g, i) for g in sorted(real) for i in range(min(per_grade, len(real[g]), len(synthetic[g])))
    ]
    fig, axes = plt.subplots(
        len(rows), 8, figsize=(10, 1.3 * len(rows) + 0.7), squeeze=False, constrained_layout=True
    )
    for row, (grade, i) in enumerate(rows):
        for c in range(8):
            image = (real if c < 4 else synthetic)[grade][i]
            ax = axes[row, c]
            ax.imshow(np.flipud(image[c % 4].T), cmap="gray", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(
                    f"{'real' if c < 4 else 'synthetic'}\n{CHANNEL_NAMES[c % 4]}", fontsize=8
                )
        axes[row, 0].set_ylabel(grade, fontsize=8)
    fig.suptitle("Real and synthetic patches per grade", fontsize=9)
    return fig
