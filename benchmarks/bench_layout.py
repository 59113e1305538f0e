"""A/B of the UNet's memory layout (channels_last vs contiguous), side by side in one run.

Why: the layout decides oneDNN's convolution kernels on CPU. The samplers load the UNet
channels_last and training keeps it contiguous because of what this script prints.

    .venv/bin/python benchmarks/bench_layout.py
"""

from __future__ import annotations

import time

import torch

from glioma.diffusion.unet import UNet, UNetConfig

SIZES = {
    "quick": (UNetConfig(), 16),
    "paper": (
        UNetConfig(
            image_size=96,
            base_channels=64,
            channel_mults=(1, 2, 2, 4),
            num_res_blocks=2,
            attention_resolutions=(24, 12),
        ),
        4,
    ),
}


def best_seconds(
    model: UNet, x: torch.Tensor, t: torch.Tensor, train: bool, repeats: int = 5
) -> float:
    """Best wall time of one forward (inference) or forward+backward (training) pass."""

    def step() -> None:
        if train:
            model.zero_grad()
            model(x, t).square().mean().backward()
        else:
            with torch.inference_mode():
                model(x, t)

    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name, (config, batch) in SIZES.items():
        x = torch.randn(batch, 4, config.image_size, config.image_size)
        t = torch.randint(0, 1000, (batch,))
        for train in (False, True):
            results: dict[bool, list[float]] = {True: [], False: []}
            for channels_last in (True, False, True, False):  # interleaved against drift
                torch.manual_seed(0)
                model = UNet(config, channels_last=channels_last)
                results[channels_last].append(best_seconds(model, x, t, train))
            fast, plain = min(results[True]), min(results[False])
            kind = "train" if train else "infer"
            print(
                f"{name:5s} {kind} batch {batch:2d}: channels_last {fast * 1e3:6.0f} ms, "
                f"contiguous {plain * 1e3:6.0f} ms, speed-up {plain / fast:.2f}x"
            )


if __name__ == "__main__":
    main()
