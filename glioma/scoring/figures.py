"""Pictures of memorisation: the closest synthetic/training pairs, and the r histograms."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from glioma.data.preview import CHANNEL_NAMES  # noqa: E402
from glioma.scoring.memorisation import COPY_RATIO, CopyDistances, NearestTraining  # noqa: E402


def pairs_figure(
    pairs: list,
    names: tuple[str, str],
    row_labels: list[str],
    title: str,
    *,
    right_labels: list[str] | None = None,
):
    """One row per (left, right) image pair: left T1, T1ce, T2, FLAIR | right T1 ... FLAIR.

    Drawn as one mosaic in one axes (white gaps between rows and between the two sides): the
    same picture as a grid of 8 small axes per row, which took 1.2 s a figure on this VM
    against 0.2 s (a score_gen draws three). ``right_labels`` name the right-hand images.
    """
    size = pairs[0][0].shape[-1]
    gap = max(2, size // 4)

    def strip(image: np.ndarray) -> np.ndarray:  # the four contrasts, 1 px apart
        parts = [np.flipud(image[c].T) for c in range(4)]
        line = np.full((size, 1), np.nan)
        return np.concatenate([x for part in parts for x in (part, line)][:-1], axis=1)

    blank = np.full((size, gap), np.nan)
    rows = [np.concatenate([strip(a), blank, strip(b)], axis=1) for a, b in pairs]
    spacer = np.full((gap // 2, rows[0].shape[1]), np.nan)
    mosaic = np.concatenate([part for row in rows for part in (row, spacer)][:-1], axis=0)
    fig, ax = plt.subplots(figsize=(10, 1.35 * len(pairs) + 0.6))
    cmap = plt.get_cmap("gray").copy()
    cmap.set_bad("white")
    ax.imshow(mosaic, cmap=cmap, vmin=-1, vmax=1, interpolation="nearest")
    columns = [c * (size + 1) + size / 2 - 0.5 + (gap - 1 if c >= 4 else 0) for c in range(8)]
    ax.set_xticks(columns, [f"{names[c >= 4]}\n{CHANNEL_NAMES[c % 4]}" for c in range(8)])
    ax.xaxis.tick_top()
    centres = [r * (size + gap // 2) + size / 2 - 0.5 for r in range(len(pairs))]
    ax.set_yticks(centres, row_labels)
    ax.tick_params(length=0, labelsize=7)
    if right_labels:
        right = ax.secondary_yaxis("right")
        right.set_yticks(centres, right_labels)
        right.tick_params(length=0, labelsize=6)
        right.spines["right"].set_visible(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


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
    return pairs_figure(
        pairs_shown, ("synthetic", "training"), labels, "Synthetic images closest to a training "
        "image (Pearson r)", right_labels=[training_ids[int(nearest.index[i])] for i in order],
    )  # fmt: skip


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
    right = [training_ids[int(distances.index[i])] for i in order]
    return pairs_figure(shown, ("synthetic", "nearest training"), labels, title, right_labels=right)


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
    return pairs_figure(pairs, ("real", "synthetic"), [g for g, _ in rows], title)
