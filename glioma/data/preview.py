"""Preview of prepared patches: a few subjects per grade, the four contrasts side by side."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from glioma.names import GRADES  # noqa: E402

CHANNEL_NAMES = ("T1", "T1ce", "T2", "FLAIR")


def preview_figure(
    images: np.ndarray, subjects: pd.DataFrame, *, per_grade: int = 3, seed: int = 0
):
    """Rows: up to ``per_grade`` random subjects of each grade; columns: T1, T1ce, T2, FLAIR."""
    rng = np.random.default_rng(seed)
    rows = []
    for grade in GRADES:
        index = np.flatnonzero(subjects["grade"].to_numpy() == grade)
        rows += sorted(rng.choice(index, size=min(per_grade, len(index)), replace=False).tolist())
    fig, axes = plt.subplots(
        len(rows), 4, figsize=(6.4, 1.7 * len(rows)), squeeze=False, constrained_layout=True
    )
    for r, i in enumerate(rows):
        for c, name in enumerate(CHANNEL_NAMES):
            ax = axes[r, c]
            ax.imshow(images[i, c].T, cmap="gray", vmin=-1, vmax=1, origin="lower")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
        row = subjects.iloc[i]
        axes[r, 0].set_ylabel(f"{row['grade']}\n{row['subject_id']}", fontsize=6)
    return fig


def grid_figure(images: np.ndarray, title: str = "", columns: int = 4):
    """Images (N, 4, H, W) as a grid: one row of the four contrasts per image block.

    Each image is shown as its four channels side by side, ``columns`` images per row.
    """
    n = len(images)
    rows = int(np.ceil(n / columns))
    tiles = np.full((rows * images.shape[2], columns * 4 * images.shape[3]), -1.0, np.float32)
    h, w = images.shape[2:]
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        # (H, 4W): T1 | T1ce | T2 | FLAIR, shown as in preview_figure (x right, y up)
        strip = np.concatenate([np.flipud(channel.T) for channel in image], axis=1)
        tiles[r * h : (r + 1) * h, c * 4 * w : (c + 1) * 4 * w] = strip
    fig, ax = plt.subplots(figsize=(min(16, 1.2 * columns * 4 * w / h), 1.2 * rows + 0.5))
    ax.imshow(tiles, cmap="gray", vmin=-1, vmax=1)
    ax.set_axis_off()
    ax.set_title(title or f"{n} images; each: T1 | T1ce | T2 | FLAIR", fontsize=9)
    fig.tight_layout()
    return fig


def figure_pixels(figure) -> np.ndarray:
    """A drawn figure as RGB pixels (H, W, 3) uint8: what ``mlflow.log_image`` takes, so a
    series of figures can share one image key and MLflow's step slider."""
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
