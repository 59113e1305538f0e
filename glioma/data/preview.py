"""Preview of prepared patches: a few subjects per grade, the four contrasts side by side."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

CHANNEL_NAMES = ("T1", "T1ce", "T2", "FLAIR")


def preview_figure(images: np.ndarray, subjects: pd.DataFrame, per_grade: int = 3, seed: int = 0):
    """Rows: up to ``per_grade`` random subjects of each grade; columns: T1, T1ce, T2, FLAIR."""
    rng = np.random.default_rng(seed)
    rows = []
    for grade in ("LGG", "HGG"):
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
