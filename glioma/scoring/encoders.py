"""Four MRI channels -> the three an ImageNet network takes, in [0, 1].

``pca`` (default): the 4-vector of each pixel is centred on the real images' channel means and
projected onto their first three principal components (fitted on real images only, brain
pixels only); each component is then mapped linearly to [0, 1] by the real images' 0.5th and
99.5th percentiles and clipped. The same fitted map is applied to real and synthetic images.
``modalities:T1ce,T2,FLAIR``: three chosen contrasts, [-1, 1] -> [0, 1].
``per-modality``: one contrast repeated three times (one FID per contrast).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from glioma.data.preview import CHANNEL_NAMES
from glioma.errors import ConfigError

FOREGROUND_THRESHOLD = -0.9  # background is -1 after normalisation; DDPM output is near it
PERCENTILES = (0.5, 99.5)


def foreground(images: np.ndarray) -> np.ndarray:
    """(N, 4, H, W) -> (N, H, W) bool: pixels where any contrast is above background."""
    return (images > FOREGROUND_THRESHOLD).any(axis=1)


def to_unit(images: np.ndarray) -> np.ndarray:
    """[-1, 1] -> [0, 1], clipped."""
    return np.clip((images + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class PCAEncoder:
    """The fitted 4 -> 3 projection; ``encode`` works on any (N, 4, H, W) array."""

    mean: np.ndarray  # (4,)
    components: np.ndarray  # (3, 4), rows = principal axes, sign fixed (largest entry > 0)
    low: np.ndarray  # (3,)
    high: np.ndarray  # (3,)

    @classmethod
    def fit(cls, real: np.ndarray) -> PCAEncoder:
        pixels = np.moveaxis(real, 1, -1)[foreground(real)].astype(np.float64)  # (P, 4)
        if len(pixels) < 4:
            raise ValueError("PCA encoder: fewer than 4 foreground pixels in the real images")
        mean = pixels.mean(axis=0)
        _, _, vt = np.linalg.svd(pixels - mean, full_matrices=False)
        components = vt[:3] * np.sign(vt[:3][np.arange(3), np.abs(vt[:3]).argmax(axis=1)])[:, None]
        projected = (pixels - mean) @ components.T
        low, high = np.percentile(projected, PERCENTILES, axis=0)
        return cls(mean, components, low, np.maximum(high, low + 1e-6))

    def encode(self, images: np.ndarray) -> np.ndarray:
        projected = np.einsum(
            "nchw,kc->nkhw", images - self.mean[None, :, None, None], self.components
        )
        scaled = (projected - self.low[None, :, None, None]) / (self.high - self.low)[
            None, :, None, None
        ]
        return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def channel_index(name: str) -> int:
    lookup = {n.lower(): i for i, n in enumerate(CHANNEL_NAMES)}
    if name.strip().lower() not in lookup:
        raise ConfigError(
            f"encoder: unknown contrast {name!r}; choose from {', '.join(CHANNEL_NAMES)}"
        )
    return lookup[name.strip().lower()]


def parse_encoder(spec: str) -> tuple[str, tuple[int, ...]]:
    """``pca`` | ``per-modality`` | ``modalities:A,B,C`` -> (kind, channel indices)."""
    if spec in ("pca", "per-modality"):
        return spec, ()
    if spec.startswith("modalities:"):
        channels = tuple(channel_index(n) for n in spec.split(":", 1)[1].split(","))
        if len(channels) != 3 or len(set(channels)) != 3:
            raise ConfigError(f"encoder: {spec!r} must name three different contrasts")
        return "modalities", channels
    raise ConfigError(
        f"encoder: expected pca, per-modality or modalities:T1ce,T2,FLAIR, got {spec!r}"
    )


def encoded_views(spec: str, real: np.ndarray) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """name -> function (N, 4, H, W) in [-1, 1] -> (N, 3, H, W) in [0, 1].

    One view for ``pca`` and ``modalities:...``; one per contrast for ``per-modality``. Any
    fitting uses ``real`` (the DDPM's training images) only.
    """
    kind, channels = parse_encoder(spec)
    if kind == "pca":
        return {"pca": PCAEncoder.fit(real).encode}
    if kind == "modalities":
        return {"modalities": lambda x: to_unit(x[:, list(channels)])}
    return {
        name.lower(): (lambda x, c=c: to_unit(np.repeat(x[:, c : c + 1], 3, axis=1)))
        for c, name in enumerate(CHANNEL_NAMES)
    }
