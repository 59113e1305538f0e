"""Benchmark score_gen's heavy parts: the nearest-training correlation search and features.

The issue asks for, in one run on one machine:

- the nearest-training Pearson search for 10,000 synthetic x 10,000 training images of
  4x96x96 next to the bare float32 matrix product of the same size (target: <= 1.5x);
- feature extraction throughput in images/s (FID Inception, classifier, radiomics) and the
  MS-SSIM pairs/s of the diversity figure.

The images are random: speed does not depend on content. The Inception network here has
random weights, because only its speed is measured (never a FID). The ``foreground`` search
costs several matrix products per block; it is timed at ``--foreground-n`` images beside the
matmul of that size.

    .venv/bin/python benchmarks/bench_scoring.py [--n 10000] [--size 96] [--device auto]
        [--foreground-n 2000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars would interleave with the table

import numpy as np
import torch
import torchmetrics

from glioma.classify.network import GliomaResNet
from glioma.devices import resolve_device
from glioma.scoring.classifier_features import classifier_features
from glioma.scoring.diversity import mean_pairwise_msssim
from glioma.scoring.inception import FIDInception, fid_inception_architecture, inception_features
from glioma.scoring.memorisation import exact_float32, nearest_training_correlation
from glioma.scoring.radiomics import radiomic_features

# isort: split
from machine import Interference, best_of, machine_line, versions_line

TARGET = 1.5


def random_images(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((n, 4, size, size), dtype=np.float32) * 2 - 1).astype(np.float32)


def matmul_s(synthetic: np.ndarray, training: np.ndarray, device, repeats: int, sync) -> float:
    """The bare (N, D) x (D, N) float32 product the search is measured against."""
    a = torch.from_numpy(synthetic.reshape(len(synthetic), -1)).to(device)
    b = torch.from_numpy(training.reshape(len(training), -1)).to(device)

    def product():
        with exact_float32():
            return a @ b.T

    return best_of(repeats, product, sync)


def search_vs_matmul(n: int, size: int, region: str, device, repeats: int, sync) -> tuple:
    synthetic, training = random_images(n, size, 0), random_images(n, size, 1)
    bare = matmul_s(synthetic, training, device, repeats, sync)
    search = best_of(
        repeats,
        lambda: nearest_training_correlation(
            synthetic, training, region=region, device=device, progress=False
        ),
        sync,
    )
    return bare, search


def throughput(label: str, n: int, action, sync) -> str:
    seconds = best_of(1, action, sync)
    return f"  {label:<44} {n / seconds:9.1f} /s  ({n} in {seconds:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--foreground-n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    print(machine_line())
    print(
        versions_line(np, torch, torchmetrics),
        f"device {device}, threads {torch.get_num_threads()}",
    )
    interference = Interference.start()

    print(f"\nnearest-training correlation, 4x{args.size}x{args.size}, float32, TF32 off")
    rows = [("full", args.n), ("foreground", args.foreground_n)]
    for region, n in rows:
        bare, search = search_vs_matmul(n, args.size, region, device, args.repeats, sync)
        verdict = (
            ""
            if region != "full"
            else ("  target met" if search / bare <= TARGET else "  TARGET MISSED")
        )
        print(
            f"  {region:<10} {n:>6} x {n:<6} matmul {bare:8.2f} s   search {search:8.2f} s"
            f"   ratio {search / bare:5.2f}x{verdict}"
        )

    print("\nfeature extraction")
    torch.manual_seed(0)
    inception = FIDInception(fid_inception_architecture())  # random weights: speed only
    for size in (32, args.size):
        images = random_images(64, size, 2)
        unit = (images + 1) / 2
        print(
            throughput(
                f"FID Inception {size}->299 px, batch 32",
                64,
                lambda u=unit: inception_features(
                    inception, u[:, :3], batch_size=32, device=device
                ),
                sync,
            )
        )
        for arch in ("resnet18", "resnet152"):
            model = GliomaResNet(arch)
            print(
                throughput(
                    f"classifier {arch} {size} px, batch 64",
                    64,
                    lambda m=model, x=images: classifier_features(
                        m, x, batch_size=64, device=str(device)
                    ),
                    sync,
                )
            )
        print(
            throughput(
                f"radiomics {size} px",
                64,
                lambda x=images: radiomic_features(x, progress=False),
                sync,
            )
        )
        print(
            throughput(
                f"MS-SSIM pairs {size} px",
                500,
                lambda x=images: mean_pairwise_msssim(x, max_pairs=500),
                sync,
            )
        )
    print("\n" + interference.report())


if __name__ == "__main__":
    main()
