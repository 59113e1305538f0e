"""Label-preserving augmentation of DDPM training batches: flips, small rotations and zooms.

A DDPM fitted to a few dozen patches sees each one hundreds of times in 1000 optimiser steps; a
random left-right flip and a small rotation/zoom of the whole 4-channel patch (about its
centre, so the lesion stays centred) multiply the distinct images it sees. Only transforms
whose outputs are themselves plausible patches are used: left-right mirroring (the brain is
near-symmetric; a lesion's side carries no grade), rotations of a few degrees (head tilt) and
zooms of a few per cent (head size, field of view). No 90-degree turns or up-down flips: the
DDPM would learn to draw them, and samples must look like the data.

Outside the patch the sampler reads mirrored pixels (``padding_mode="reflection"``), so a
rotated patch has no constant-valued corners for the DDPM to learn as "padding". Everything
random comes from the caller's generator: the batch a resumed run replays is the batch it had.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from glioma.diffusion.settings import Augmentation

__all__ = ["Augmentation", "affine_matrices", "augment_batch"]


def affine_matrices(n: int, generator: torch.Generator, aug: Augmentation) -> torch.Tensor:
    """(n, 2, 3) sampling grids' matrices: identity for untouched images."""
    chosen = torch.rand(n, generator=generator) < aug.prob
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(aug.degrees)
    scale = 1.0 + (torch.rand(n, generator=generator) * 2 - 1) * aug.zoom
    flip, angle = torch.where(chosen, flip, 1.0), torch.where(chosen, angle, 0.0)
    scale = torch.where(chosen, scale, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    zero = torch.zeros(n)
    # grid x (width, left-right) is multiplied by the flip; a zoom > 1 samples a smaller area
    rows = [torch.stack([cos * flip, -sin, zero], 1), torch.stack([sin * flip, cos, zero], 1)]
    return torch.stack(rows, 1)


def augment_batch(
    images: torch.Tensor, generator: torch.Generator, aug: Augmentation
) -> torch.Tensor:
    """The batch (B, C, H, W), each image transformed as a whole (channels stay aligned)."""
    if aug.prob == 0 or len(images) == 0:
        return images
    theta = affine_matrices(len(images), generator, aug).to(images.device, images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(
        images, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    )
    return out.clamp(-1.0, 1.0)
