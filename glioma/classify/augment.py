"""Classic augmentation for the ``augment`` setup, from torchvision.transforms.v2.

Geometric transforms (flips, small rotations, zoom) act on the (4, H, W) tensor as a whole, so
the four contrasts stay aligned pixel for pixel; intensity scale/shift and Gaussian noise are
drawn once per image and applied to every channel alike. Background (-1) is filled as -1.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from glioma.data.patches import BACKGROUND


class IntensityScaleShift(v2.Transform):
    """x -> a x + b with a ~ U(1 - scale, 1 + scale), b ~ U(-shift, shift), one draw per image."""

    def __init__(self, scale: float = 0.1, shift: float = 0.1):
        super().__init__()
        self.scale, self.shift = scale, shift

    def make_params(self, flat_inputs: list) -> dict:
        a = 1 + (torch.rand(()) * 2 - 1) * self.scale
        return {"a": float(a), "b": float((torch.rand(()) * 2 - 1) * self.shift)}

    def transform(self, inpt, params: dict):
        return inpt * params["a"] + params["b"]


def classic_augmentation(
    *, degrees: float = 10.0, zoom: float = 0.1, intensity: float = 0.1, noise: float = 0.02
) -> v2.Compose:
    """The ``augment`` setup's random transform for one (4, H, W) float image in [-1, 1]."""
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            v2.RandomAffine(degrees=degrees, scale=(1 - zoom, 1 + zoom), fill=BACKGROUND),
            IntensityScaleShift(intensity, intensity),
            v2.GaussianNoise(sigma=noise, clip=False),
            v2.Lambda(lambda x: x.clamp(-1.0, 1.0)),
        ]
    )
