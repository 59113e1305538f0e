"""Tiny networks and images shared by the diffusion tests.

Torch runs single-threaded in those files: on a busy two-core machine its thread pool spins
and small tensor ops become 20x slower.
"""

from __future__ import annotations

import pytest
import torch

from glioma.diffusion.unet import UNet, UNetConfig

TINY8 = UNetConfig(
    image_size=8,
    base_channels=8,
    channel_mults=(1, 2),
    num_res_blocks=1,
    attention_resolutions=(4,),
)
TINY16 = UNetConfig(
    image_size=16,
    base_channels=16,
    channel_mults=(1, 2),
    num_res_blocks=1,
    attention_resolutions=(8,),
)


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_unet(config: UNetConfig = TINY8, seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    return UNet(config)


def images_in_range(n: int, size: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((n, 4, size, size), generator=gen) * 2 - 1


def structured_images(size: int = 16) -> torch.Tensor:
    """Four smooth, distinct images in [-1, 1]: two blobs and two ramps, one per channel shift."""
    axis = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    blob = lambda cx, cy: torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.15) * 2 - 1  # noqa: E731
    bases = [blob(-0.4, -0.4), blob(0.4, 0.3), x.clone(), -y]
    out = []
    for base in bases:
        out.append(torch.stack([base, base.flip(0), base.flip(1), -base]))
    return torch.stack(out).clamp(-1, 1)
