"""Diversity inside a set: mean MS-SSIM over pairs of its images (lower = more diverse).

MS-SSIM is torchmetrics'. The standard form (Gaussian window 11, sigma 1.5, five scales)
needs images larger than torchmetrics allows for 32-96 pixel patches, so we keep as many of
the five scales (their standard weights, renormalised) as the patch size allows, by
torchmetrics' own size check, and record how many (2 at 32 pixels, 3 at 96).
Images are in [-1, 1] (data range 2); all four contrasts count, averaged as channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

STANDARD_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW = 11  # Gaussian window of sigma 1.5, as torchmetrics sizes it


def msssim_scales(size: int) -> int:
    """How many MS-SSIM scales torchmetrics accepts for ``size`` pixels (its own check)."""
    scales = len(STANDARD_BETAS)
    while scales > 1 and (size // max(1, scales - 1) ** 2 <= WINDOW - 1 or size < 2**scales):
        scales -= 1
    return scales


@dataclass(frozen=True)
class Diversity:
    mean: float
    std: float
    pairs: int
    scales: int


def mean_pairwise_msssim(
    images: np.ndarray, *, max_pairs: int = 2000, seed: int = 0, batch_size: int = 256
) -> Diversity:
    """Mean MS-SSIM over all pairs of ``images`` (N, C, H, W), or ``max_pairs`` random ones."""
    n = len(images)
    if n < 2:
        raise ValueError(f"MS-SSIM diversity needs at least 2 images, got {n}")
    first, second = np.triu_indices(n, k=1)
    if len(first) > max_pairs:
        keep = np.random.default_rng(seed).choice(len(first), size=max_pairs, replace=False)
        first, second = first[keep], second[keep]
    scales = msssim_scales(min(images.shape[-2:]))
    betas = tuple(b / sum(STANDARD_BETAS[:scales]) for b in STANDARD_BETAS[:scales])
    tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    values = []
    for start in range(0, len(first), batch_size):
        a = tensor[first[start : start + batch_size]]
        b = tensor[second[start : start + batch_size]]
        values.append(
            multiscale_structural_similarity_index_measure(
                a, b, data_range=2.0, betas=betas, reduction="none", normalize="relu"
            )
        )
    scores = torch.cat(values).double().numpy()
    return Diversity(float(scores.mean()), float(scores.std()), len(scores), scales)
