"""Hand-crafted radiomic features, and from them ``FD_radiomic``: a Fréchet distance that needs
no downloaded network, so it works offline and on the phantom cohort.

Per contrast, inside the brain (pixels above background in any contrast):
first-order statistics (mean, std, skewness, kurtosis, 10th/50th/90th percentiles, histogram
entropy) and grey-level co-occurrence texture (scikit-image; 32 levels, distance 1, four
angles averaged, background pairs excluded): contrast, dissimilarity, homogeneity, energy,
correlation. 13 features x 4 contrasts = 52 per image.

The features have different units, so before the Fréchet distance both sets are standardised
with the real set's mean and standard deviation (z-scores): every feature counts alike.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from skimage.feature import graycomatrix, graycoprops
from tqdm.auto import tqdm

from glioma.data.preview import CHANNEL_NAMES
from glioma.scoring.distances import FrechetResult, frechet_distance
from glioma.scoring.encoders import foreground

LEVELS = 32
HISTOGRAM_BINS = 32
TEXTURE = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation")
FIRST_ORDER = ("mean", "std", "skewness", "kurtosis", "p10", "p50", "p90", "entropy")
ANGLES = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)


def feature_names() -> list[str]:
    return [f"{c}_{f}" for c in CHANNEL_NAMES for f in FIRST_ORDER + TEXTURE]


def _first_order(values: np.ndarray) -> list[float]:
    histogram, _ = np.histogram(values, bins=HISTOGRAM_BINS, range=(-1.0, 1.0))
    p = histogram[histogram > 0] / len(values)
    with warnings.catch_warnings():  # a constant region has undefined skewness: 0 below
        warnings.simplefilter("ignore", RuntimeWarning)
        moments = [stats.skew(values), stats.kurtosis(values)]
    return [
        float(values.mean()),
        float(values.std()),
        *(float(np.nan_to_num(m)) for m in moments),
        *np.percentile(values, (10, 50, 90)).tolist(),
        float(-(p * np.log(p)).sum()),
    ]


def _texture(channel: np.ndarray, inside: np.ndarray) -> list[float]:
    """GLCM properties of the brain pixels: level 0 marks background and is cut out."""
    levels = np.clip(((channel + 1.0) / 2.0 * LEVELS).astype(np.int64), 0, LEVELS - 1) + 1
    levels[~inside] = 0
    glcm = graycomatrix(levels.astype(np.uint8), [1], ANGLES, levels=LEVELS + 1, symmetric=True)
    glcm = glcm[1:, 1:].astype(np.float64)
    if glcm.sum() == 0:  # no two neighbouring brain pixels
        return [0.0] * len(TEXTURE)
    with warnings.catch_warnings():  # correlation of a constant region is undefined
        warnings.simplefilter("ignore", RuntimeWarning)
        values = [np.nan_to_num(graycoprops(glcm, p)).mean() for p in TEXTURE]
    return [float(v) for v in values]


def radiomic_features(images: np.ndarray, progress: bool = True) -> np.ndarray:
    """(N, 4, H, W) in [-1, 1] -> (N, 52) features (order: ``feature_names()``)."""
    inside = foreground(images)
    rows = []
    for image, mask in tqdm(
        zip(images, inside), total=len(images), desc="radiomics", disable=not progress
    ):
        if not mask.any():
            mask = np.ones_like(mask)
        row = []
        for channel in image:
            row += _first_order(channel[mask]) + _texture(channel, mask)
        rows.append(row)
    return np.asarray(rows, dtype=np.float64)


def standardise(features: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """z-scores with ``reference``'s mean and std (constant features: std 1)."""
    std = reference.std(axis=0)
    return (features - reference.mean(axis=0)) / np.where(std > 0, std, 1.0)


def radiomic_frechet_distance(real: np.ndarray, other: np.ndarray) -> FrechetResult:
    """FD_radiomic of two ``radiomic_features`` sets, in the real set's z-scores."""
    return frechet_distance(standardise(real, real), standardise(other, real))
