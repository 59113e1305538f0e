"""Pictures of memorisation: the closest synthetic/training pairs, and the r histograms."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from glioma.data.preview import CHANNEL_NAMES  # noqa: E402
from glioma.scoring.memorisation import COPY_RATIO, CopyDistances, NearestTraining  # noqa: E402


def pairs_figure(pairs: list, names: tuple[str, str], row_labels: list[str], title: str):
    """One row per (left, right) image pair: left T1, T1ce, T2, FLAIR | right T1 ... FLAIR."""
    fig, axes = plt.subplots(
        len(pairs), 8, figsize=(10, 1.35 * len(pairs) + 0.6), squeeze=False, constrained_layout=True
    )
    for row, (left, right) in enumerate(pairs):
        for c in range(8):
            ax = axes[row, c]
            ax.imshow(np.flipud((left if c < 4 else right)[c % 4].T), cmap="gray", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{names[c >= 4]}\n{CHANNEL_NAMES[c % 4]}", fontsize=8)
        axes[row, 0].set_ylabel(row_labels[row], fontsize=7)
    fig.suptitle(title, fontsize=9)
    return fig, axes


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
    pairs_shown = [(synthetic[i], training[int(nearest.index[i])]) for i in order]
    labels = [f"#{i}\nr={nearest.correlation[i]:.3f}" for i in order]
    fig, axes = pairs_figure(
        pairs_shown, ("synthetic", "training"), labels, "Synthetic images closest to a training "
        "image (Pearson r)",
    )  # fmt: skip
    for row, i in enumerate(order):
        axes[row, 4].set_ylabel(training_ids[int(nearest.index[i])], fontsize=6)
    return fig


def most_copied_figure(
    synthetic: np.ndarray,
    training: np.ndarray,
    distances: CopyDistances,
    *,
    training_ids: list[str],
    pairs: int = 8,
):
    """The ``pairs`` synthetic images with the smallest d1 / d2 (L2 to the nearest training
    image over L2 to the second nearest) beside that nearest image; below 1/3 is a copy."""
    order = np.argsort(distances.ratio)[:pairs]
    shown = [(synthetic[i], training[int(distances.index[i])]) for i in order]
    labels = [
        f"#{i}\nd1/d2={distances.ratio[i]:.2f}"
        + (" copy" if distances.ratio[i] < COPY_RATIO else "")
        for i in order
    ]
    title = f"Most-copied synthetic images (copy: d1/d2 < 1/3; {distances.fraction():.0%} of all)"
    fig, axes = pairs_figure(shown, ("synthetic", "nearest training"), labels, title)
    for row, i in enumerate(order):
        axes[row, 4].set_ylabel(training_ids[int(distances.index[i])], fontsize=6)
    return fig


def correlation_histogram(synthetic_r: np.ndarray, held_out_r: np.ndarray, threshold: float):
    """Nearest-training r of synthetic images next to that of held-out real images (the
    distribution Akbar et al., 2025 compare; the paper's 0.55 / 0.47 are its means)."""
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
    shown = {g: min(per_grade, len(real[g]), len(synthetic[g])) for g in sorted(real)}
    rows = [(g, i) for g, n in shown.items() for i in range(n)]
    pairs = [(real[g][i], synthetic[g][i]) for g, i in rows]
    title = "Real and synthetic patches per grade"
    fig, _ = pairs_figure(pairs, ("real", "synthetic"), [g for g, _ in rows], title)
    return fig
