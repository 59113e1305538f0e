"""Can a classifier tell the synthetic images from the real ones? The classifier two-sample test.

C2ST (Lopez-Paz & Oquab, 2017): a small CNN is trained to separate real training patches
(label 0) from synthetic ones (label 1) on a seeded, stratified half of each set; its ROC AUC
on the other halves is the statistic. 0.5: the classifier cannot tell them apart; 1: every
synthetic image is recognised. Unlike FD or precision it needs no feature space chosen in
advance: whatever gives the samples away (washed-out channels, missing rims, noise texture) is
what it learns. The interval is the percentile bootstrap of the test halves, each set resampled
on its own (``auc_interval``). The reference is the same test between the training
images and real images of the same grade that the DDPM never saw (its held-out ones): what
"indistinguishable" gives with this many images, which is rarely exactly 0.5 on a few dozen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn
from torch.nn import functional as F

from glioma.scoring.settings import TwoSampleSettings

MIN_PER_HALF = 2  # images of each set in each half: fewer and there is no AUC to speak of


@dataclass(frozen=True)
class TwoSampleResult:
    auc: float
    low: float  # the bootstrap interval of the AUC
    high: float
    n_train: int  # images the classifier learned from (both sets)
    n_test: int  # images its AUC rests on

    def metrics(self, prefix: str) -> dict[str, float]:
        return {
            prefix: self.auc,
            f"{prefix}_low": self.low,
            f"{prefix}_high": self.high,
            f"{prefix}_n_test": float(self.n_test),
        }


class SmallCNN(nn.Module):
    """Three 3x3 conv blocks (width, 2 width, 4 width; GroupNorm, SiLU, 2x2 pooling), global
    average pooling and one logit: tens of thousands of weights, enough to see texture and
    contrast, too few to memorise a few dozen images in 40 epochs."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        layers, c = [], channels
        for w in (width, 2 * width, 4 * width):
            conv = nn.Conv2d(c, w, 3, padding=1)
            layers += [conv, nn.GroupNorm(4, w), nn.SiLU(), nn.MaxPool2d(2)]
            c = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3))).squeeze(1)


def auc_interval(
    labels: np.ndarray, scores: np.ndarray, *, n_boot: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the ROC AUC, resampling each class within itself (so
    every resample has both). AUC as Mann-Whitney: the share of (positive, negative) pairs
    ranked right, ties counted half; one pair matrix, every resample a weighting of it."""
    positive, negative = scores[labels == 1], scores[labels == 0]
    pairs = (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative[None, :])
    rng = np.random.default_rng(seed)

    def counts(n: int) -> np.ndarray:
        draws = rng.integers(0, n, (n_boot, n))
        return np.stack([np.bincount(row, minlength=n) for row in draws]).astype(np.float64)

    weights_p, weights_n = counts(len(positive)), counts(len(negative))
    aucs = np.einsum("bi,ij,bj->b", weights_p, pairs, weights_n) / (len(positive) * len(negative))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(aucs, (tail, 100 - tail))
    return float(low), float(high)


def halves(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``n`` indices into two halves (the first gets the odd one)."""
    order = rng.permutation(n)
    return order[: (n + 1) // 2], order[(n + 1) // 2 :]


def _train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: TwoSampleSettings):
    """Adam on the class-balanced logistic loss, with random left-right and up-down flips."""
    gen = torch.Generator().manual_seed(settings.seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
    positive = float(y.sum())
    weight = torch.tensor((len(y) - positive) / max(positive, 1.0), device=x.device)
    model.train()
    for _ in range(settings.epochs):
        for batch in torch.randperm(len(x), generator=gen).split(settings.batch_size):
            images = x[batch.to(x.device)]
            flips = torch.rand(2, generator=gen) < 0.5
            if flips[0]:
                images = images.flip(-1)
            if flips[1]:
                images = images.flip(-2)
            loss = F.binary_cross_entropy_with_logits(
                model(images), y[batch.to(y.device)], pos_weight=weight
            )
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return model.eval()


def two_sample_auc(
    real: np.ndarray,
    other: np.ndarray,
    *,
    settings: TwoSampleSettings | None = None,
    device: torch.device | str = "cpu",
) -> TwoSampleResult | None:
    """C2ST of ``real`` against ``other`` (N, C, H, W); None when either set has fewer than
    ``2 * MIN_PER_HALF`` images."""
    settings = settings or TwoSampleSettings()
    if min(len(real), len(other)) < 2 * MIN_PER_HALF:
        return None
    rng = np.random.default_rng(settings.seed)
    (real_fit, real_test), (other_fit, other_test) = halves(len(real), rng), halves(len(other), rng)

    def stacked(a: np.ndarray, b: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(np.concatenate([real[a], other[b]]).astype(np.float32))
        y = torch.cat([torch.zeros(len(a)), torch.ones(len(b))])
        return x.to(device), y.to(device)

    torch.manual_seed(settings.seed)
    model = SmallCNN(real.shape[1], settings.width).to(device)
    model = _train(model, *stacked(real_fit, other_fit), settings)
    x, y = stacked(real_test, other_test)
    with torch.no_grad():
        scores = torch.sigmoid(model(x)).cpu().numpy().astype(np.float64)
    labels = y.cpu().numpy().astype(int)
    low, high = auc_interval(labels, scores, n_boot=settings.n_boot, seed=settings.seed)
    return TwoSampleResult(
        auc=float(roc_auc_score(labels, scores)),
        low=low,
        high=high,
        n_train=len(real_fit) + len(other_fit),
        n_test=len(labels),
    )
