"""Distances between two feature sets: the Fréchet distance (FID's formula) and KID.

Fréchet distance of two Gaussians fitted to the features (pytorch-fid's implementation):

    d^2 = ||mu_1 - mu_2||^2 + Tr(C_1 + C_2 - 2 (C_1 C_2)^(1/2))

With fewer samples than feature dimensions the covariances are singular; pytorch-fid then adds
a small offset to their diagonals. We warn whenever that regime applies, and always report the
sample counts, because such an FD is biased upwards and not comparable across set sizes.

KID (Bińkowski et al. 2018): the unbiased squared MMD with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, averaged over random equal-size subsets (torchmetrics' kernel code).
Unbiased, so it is usable for the tens of images a study's LGG class has. (Scoring a set
against itself gives a slightly negative value: its subsets share samples.)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from torchmetrics.image.kid import poly_mmd


@dataclass(frozen=True)
class FrechetResult:
    value: float
    n_a: int
    n_b: int
    singular: bool  # fewer samples than dimensions in either set: covariance not full rank


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of (N, D) features, in float64, as pytorch-fid computes them."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need (N >= 2, D) features, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> FrechetResult:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets."""
    (mu_a, cov_a), (mu_b, cov_b) = gaussian_stats(features_a), gaussian_stats(features_b)
    dims = features_a.shape[1]
    singular = min(len(features_a), len(features_b)) <= dims
    if singular:
        warnings.warn(
            f"Fréchet distance from {len(features_a)} and {len(features_b)} samples in {dims} "
            "dimensions: singular covariance (pytorch-fid adds a small diagonal offset); "
            "the value is biased upwards and comparable only at equal sample counts",
            stacklevel=2,
        )
    with warnings.catch_warnings():  # scipy's notice about pytorch-fid's sqrtm(disp=False)
        warnings.filterwarnings("ignore", "The `disp` argument", DeprecationWarning)
        value = float(np.atleast_1d(calculate_frechet_distance(mu_a, cov_a, mu_b, cov_b))[0].real)
    return FrechetResult(max(value, 0.0), len(features_a), len(features_b), singular)


@dataclass(frozen=True)
class KIDResult:
    mean: float
    std: float
    subset_size: int
    subsets: int


def kernel_inception_distance(
    features_a: np.ndarray,
    features_b: np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> KIDResult:
    """KID between two (N, D) feature sets: mean and std over ``subsets`` random subsets."""
    size = min(subset_size, len(features_a), len(features_b))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {size}")
    a = torch.as_tensor(np.asarray(features_a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(features_b), dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        ia = torch.randperm(len(a), generator=generator)[:size]
        ib = torch.randperm(len(b), generator=generator)[:size]
        values.append(float(poly_mmd(a[ia], b[ib])))
    return KIDResult(float(np.mean(values)), float(np.std(values)), size, subsets)
