"""Memorisation: each synthetic image's highest Pearson correlation with any training image.

For rows x (synthetic) and y (training), all 4 channels flattened to D values,

    r(x, y) = <x - mean(x), y - mean(y)> / (||x - mean(x)|| ||y - mean(y)||)

The search is one matrix product: with z_x = (x - mean(x)) / ||x - mean(x)||,
r(x, y) = <z_x, y> / ||y - mean(y)|| because z_x sums to zero, so the training images need
no standardised copy. Synthetic rows and training rows are processed in chunks, keeping only a
running maximum: memory is O(chunk sizes x D), whatever N. Float32 with TF32 off, because near
r = 0.95 TF32's 10-bit mantissa moves the answer.

``foreground``: shared background inflates r, so this variant correlates only the pixels
inside the brain in either image (union mask m = 1 - (1-a)(1-b) per pair). Every sum over m
expands into matrix products (7 instead of 1), so it costs about 7x the ``full`` search.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from glioma.scoring.encoders import FOREGROUND_THRESHOLD

REGIONS = ("full", "foreground")


@dataclass(frozen=True)
class NearestTraining:
    correlation: np.ndarray  # (N_syn,) highest r with any training image
    index: np.ndarray  # (N_syn,) which training image


@contextmanager
def exact_float32():
    """TF32 off for CUDA matmuls inside the block (restored after)."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def _images(images: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(images).to(device, torch.float32)


def _flat(images: torch.Tensor) -> torch.Tensor:
    return images.reshape(len(images), -1)


def _outside(images: torch.Tensor) -> torch.Tensor:
    """(N, C*H*W) 1.0 where a pixel is background in every contrast (repeated per channel)."""
    pixel = (images <= FOREGROUND_THRESHOLD).all(dim=1, keepdim=True)
    return _flat(pixel.expand_as(images).float())


def _standardised(images: torch.Tensor) -> torch.Tensor:
    """Rows (x - mean(x)) / ||x - mean(x)||."""
    z = _flat(images) - _flat(images).mean(dim=1, keepdim=True)
    return z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _inverse_centred_norms(training: np.ndarray, chunk: int, device: torch.device) -> torch.Tensor:
    """1 / ||y - mean(y)|| of every training image, computed once, chunk by chunk."""
    norms = [
        _standardised_norm(_flat(_images(training[t : t + chunk], device)))
        for t in range(0, len(training), chunk)
    ]
    return 1.0 / torch.cat(norms).clamp_min(1e-12)


def _standardised_norm(rows: torch.Tensor) -> torch.Tensor:
    return (rows - rows.mean(dim=1, keepdim=True)).norm(dim=1)


def _foreground_block(syn: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Pearson r over the union of both images' foreground, per pair, by matrix products."""
    a_out, b_out = _outside(syn), _outside(train)  # 1 - a, 1 - b
    x, y = _flat(syn) + 1.0, _flat(train) + 1.0  # background near 0: less cancellation
    ax, by = a_out * x, b_out * y
    n = x.shape[1] - a_out @ b_out.T
    sx = x.sum(1, keepdim=True) - ax @ b_out.T
    sy = y.sum(1)[None, :] - a_out @ by.T
    sxx = (x * x).sum(1, keepdim=True) - (ax * x) @ b_out.T
    syy = (y * y).sum(1)[None, :] - a_out @ (by * y).T
    sxy = x @ y.T - ax @ by.T
    cov = n * sxy - sx * sy
    var = (n * sxx - sx * sx).clamp_min(0) * (n * syy - sy * sy).clamp_min(0)
    return cov / var.sqrt().clamp_min(1e-12)


def nearest_training_correlation(
    synthetic: np.ndarray,
    training: np.ndarray,
    *,
    region: str = "full",
    synthetic_chunk: int = 2048,
    training_chunk: int = 2048,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> NearestTraining:
    """For each synthetic image, the highest Pearson r with any training image, and which."""
    if region not in REGIONS:
        raise ValueError(f"region: expected one of {REGIONS}, got {region!r}")
    if synthetic.shape[1:] != training.shape[1:]:
        raise ValueError(f"shapes differ: {synthetic.shape[1:]} vs {training.shape[1:]}")
    device = torch.device(device)
    best = np.full(len(synthetic), -np.inf, dtype=np.float32)
    where = np.zeros(len(synthetic), dtype=np.int64)
    starts = range(0, len(synthetic), synthetic_chunk)
    with exact_float32(), torch.no_grad():
        if region == "full":
            inverse_norms = _inverse_centred_norms(training, training_chunk, device)
        for s in tqdm(starts, desc=f"nearest training ({region})", disable=not progress):
            syn = _images(synthetic[s : s + synthetic_chunk], device)
            z = _standardised(syn) if region == "full" else None
            top = torch.full((len(syn),), -torch.inf, device=device)
            arg = torch.zeros(len(syn), dtype=torch.long, device=device)
            for t in range(0, len(training), training_chunk):
                train = _images(training[t : t + training_chunk], device)
                if z is not None:  # r = <z_x, y> / ||y - mean(y)||
                    r = (z @ _flat(train).T) * inverse_norms[t : t + len(train)]
                else:
                    r = _foreground_block(syn, train)
                value, index = r.max(dim=1)
                better = value > top
                top = torch.where(better, value, top)
                arg = torch.where(better, index + t, arg)
            best[s : s + len(syn)] = top.cpu().numpy()
            where[s : s + len(syn)] = arg.cpu().numpy()
    return NearestTraining(best, where)


def memorisation_summary(nearest: NearestTraining, threshold: float = 0.95) -> dict[str, float]:
    """Mean, std and the fraction of images above ``threshold`` of the nearest correlations."""
    r = nearest.correlation.astype(np.float64)
    return {
        "mean": float(r.mean()),
        "std": float(r.std()),
        "fraction_above": float((r > threshold).mean()),
    }


COPY_RATIO = 1.0 / 3.0


@dataclass(frozen=True)
class CopyDistances:
    """Each synthetic image's L2 distances to its nearest and second-nearest training image."""

    nearest: np.ndarray  # (N_syn,)
    second: np.ndarray  # (N_syn,)
    index: np.ndarray  # (N_syn,) the nearest training image

    @property
    def ratio(self) -> np.ndarray:
        """d1 / d2 (0: an exact copy of one training image; near 1: no image stands out)."""
        return self.nearest / np.maximum(self.second, 1e-12)

    def copies(self, ratio: float = COPY_RATIO) -> np.ndarray:
        """True where the sample is a copy: d1 < ratio x d2 (Gu et al., 2025, after Yoon et
        al., 2023: a sample much closer to one training image than to any other)."""
        return self.ratio < ratio

    def fraction(self, ratio: float = COPY_RATIO) -> float:
        return float(self.copies(ratio).mean()) if len(self.nearest) else 0.0


def copy_distances(
    synthetic: np.ndarray,
    training: np.ndarray,
    *,
    chunk: int = 2048,
    device: torch.device | str = "cpu",
) -> CopyDistances:
    """L2 distance (all channels and pixels) to the two nearest training images, by chunks:
    ||x - y||^2 = ||x||^2 + ||y||^2 - 2 <x, y>, float64 on the host for the final roots."""
    if len(training) < 2:
        raise ValueError(f"copy distances need at least 2 training images, got {len(training)}")
    if synthetic.shape[1:] != training.shape[1:]:
        raise ValueError(f"shapes differ: {synthetic.shape[1:]} vs {training.shape[1:]}")
    device = torch.device(device)
    first = np.empty(len(synthetic))
    second = np.empty(len(synthetic))
    where = np.zeros(len(synthetic), dtype=np.int64)
    with exact_float32(), torch.no_grad():
        train = _flat(_images(training, device)).double()
        train_sq = (train * train).sum(1)
        for s in range(0, len(synthetic), chunk):
            syn = _flat(_images(synthetic[s : s + chunk], device)).double()
            d2 = (syn * syn).sum(1, keepdim=True) + train_sq[None, :] - 2.0 * syn @ train.T
            values, index = d2.clamp_min(0).topk(2, dim=1, largest=False)
            first[s : s + len(syn)] = values[:, 0].sqrt().cpu().numpy()
            second[s : s + len(syn)] = values[:, 1].sqrt().cpu().numpy()
            where[s : s + len(syn)] = index[:, 0].cpu().numpy()
    return CopyDistances(first, second, where)
