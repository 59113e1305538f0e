"""Does a patch show the HGG lesion's enhancing ring? A count to read beside the grids.

The phantom's (and BraTS') high-grade lesions enhance at the rim: on T1ce a bright ring closes
around a dark (necrotic) core. ``has_ring`` counts a patch when its T1ce, smoothed (Gaussian,
``SMOOTH`` px) and thresholded at the patch median + ``MARGIN``, holds a bright 8-connected
component that does not touch the patch border and encloses at least ``MIN_CORE`` darker
pixels. The border rule keeps out the common false ring of low-grade patches: a dark lesion
inside bright tissue, where the "ring" is the whole background; the smoothing keeps out
speckle. It is a strict heuristic for the benchmark's tables, set on the seed-1 selection
phantom: it finds a ring in 25 % of the real HGG patches there (thin rims, small cores and
solid-enhancing lesions go uncounted), in none of the real LGG patches and in 3 % of untrained
samples (noise), so a synthetic set is read against the real share, never against 100 %. The
grids are the judge; this says how many.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from scipy import ndimage

T1CE = 1  # channel order T1, T1ce, T2, FLAIR
MARGIN = 0.3  # above the patch median, in the [-1, 1] intensity scale
MIN_CORE = 4  # pixels
SMOOTH = 0.7  # Gaussian sigma, pixels
EIGHT = np.ones((3, 3), bool)


def has_ring(image: np.ndarray) -> bool:
    """A bright closed T1ce rim off the border around a dark core (module docstring)."""
    t1ce = ndimage.gaussian_filter(image[T1CE].astype(np.float64), SMOOTH)
    bright = t1ce > np.median(t1ce) + MARGIN
    labels, count = ndimage.label(bright, structure=EIGHT)
    for k in range(1, count + 1):
        component = labels == k
        edge = component[0].any() or component[-1].any()
        if edge or component[:, 0].any() or component[:, -1].any():
            continue
        core = ndimage.binary_fill_holes(component) & ~component
        if core.sum() >= MIN_CORE:
            return True
    return False


def ring_share(images: np.ndarray) -> float:
    """The share of ``images`` (N, 4, H, W) with a ring."""
    return float(np.mean([has_ring(image) for image in images])) if len(images) else float("nan")


def t1ce_figure(rows: dict[str, np.ndarray], *, per_row: int = 8, title: str = ""):
    """One row of T1ce patches per label (real first, then each arm), ring-marked in the
    corner: what the ring count counts, to look at."""
    fig, axes = plt.subplots(
        len(rows), per_row, figsize=(1.3 * per_row, 1.45 * len(rows)), squeeze=False
    )
    for r, (label, images) in enumerate(rows.items()):
        for c in range(per_row):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c, T1CE], cmap="gray", vmin=-1, vmax=1)
                if has_ring(images[c]):
                    ax.text(1, 4, "ring", color="yellow", fontsize=6)
        axes[r, 0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    fig.suptitle(title or "T1ce of HGG patches: real, then each arm", fontsize=9)
    fig.tight_layout()
    return fig
