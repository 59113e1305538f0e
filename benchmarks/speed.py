"""How fast this machine is at the study's work, measured in the same run as the figures.

These VMs vary (the same code read 108 and 334 quick training img/s on two of them), so every
timing comes with this line: a 2048 x 2048 float32 matmul (GFLOP/s, all cores torch uses) and
ResNet-18 training at the quick profile's size (images/s, batch 32, 32 px). A figure from another
machine scales roughly with the second.
"""

from __future__ import annotations

import torch

from glioma.classify.augment import classic_augmentation
from glioma.classify.network import GliomaResNet
from glioma.classify.settings import ClsSettings
from glioma.classify.training import train_fold

# isort: split
from machine import best_of

TRAIN_IMAGES = {32: 256, 96: 64}  # images per timed epoch, by patch size


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    return 2 * n**3 / best_of(repeats, lambda: a @ b) / 1e9


def train_images_per_s(arch: str, size: int, augment: bool, repeats: int) -> float:
    """Images/s of one training epoch (batch 32) of a fresh ``arch`` at ``size`` px."""
    n = TRAIN_IMAGES[size]
    x = torch.rand(n, 4, size, size) * 2 - 1
    y = (torch.rand(n) > 0.5).float()
    settings = ClsSettings(epochs=1, batch_size=32)
    transform = classic_augmentation() if augment else None

    def epoch():
        train_fold(
            GliomaResNet(arch), train=(x, y), val=(x[:32], y[:32]), settings=settings,
            augment=transform,
        )  # fmt: skip

    return n / best_of(repeats, epoch)


def speed_line() -> str:
    torch.manual_seed(0)
    gflops = matmul_gflops()
    images = train_images_per_s("resnet18", 32, False, 2)
    return (
        f"machine speed: matmul 2048 {gflops:.0f} GFLOP/s, quick ResNet-18 training "
        f"{images:.0f} img/s ({torch.get_num_threads()} threads)"
    )


if __name__ == "__main__":  # ten seconds: how this machine compares with the README's
    print(speed_line())
