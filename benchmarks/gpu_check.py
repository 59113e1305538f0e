"""The ``paper`` profile's real job on a CUDA machine: throughput and memory, part by part.

The paper profile (96 px, UNet 64 ch (1,2,2,4), DDPM-1000 sampling, ResNet-152 folds, the
five-fold ensemble served by ``mlflow models serve``) has never run on this project's CPU
machines. This script runs each part for about ``--seconds`` on the given device and prints
images/s and peak GPU memory, so that a GPU session (or a user sizing a cluster) knows what a
study costs there:

1. DDPM training steps (the trainer's own loop: loss with the MI term, backward, clipping,
   AdamW, EMA), float32 and bfloat16 autocast;
2. sampling: DDIM-50 and the paper's ancestral DDPM-1000, whole chains, a batch of 32;
3. ResNet-152 fold training (batch 32, focal loss, one-cycle SGD);
4. the served ensemble: five ResNet-152 folds behind ``mlflow models serve``, batch 64, next to
   a plain torch forward of the same models (``bench_cls.serving_vs_torch``).

``--tiny`` shrinks every part (16 px, 8 channels, 20 diffusion steps, ResNet-18) to check the
script itself on a CPU in a minute; its figures mean nothing.

    .venv/bin/python benchmarks/gpu_check.py [--device cuda] [--seconds 60] [--tiny]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from glioma.classify.network import GliomaResNet
from glioma.classify.settings import ClsSettings
from glioma.classify.training import train_fold
from glioma.config.profiles import PROFILES
from glioma.devices import resolve_device
from glioma.diffusion.losses import MITerm
from glioma.diffusion.samplers import ddim_sample, ddpm_sample
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.training import DDPMTrainer, TrainSettings
from glioma.diffusion.unet import UNetConfig

# isort: split
from bench_cls import serving_vs_torch
from bench_ddpm import unet_config
from machine import machine_line, versions_line


def timed(part: Callable[[], int], device: torch.device, seconds: float) -> tuple[float, float]:
    """(images/s, peak GiB) of ``part`` (it returns the images it processed), repeated for
    about ``seconds`` after one warm-up call."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    part()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    sync()
    start, images = time.perf_counter(), 0
    while time.perf_counter() - start < seconds or images == 0:
        images += part()
        sync()
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return images / (time.perf_counter() - start), peak


def ddpm_training(unet: UNetConfig, batch: int, bf16: bool, device, seconds: float):
    settings = TrainSettings(
        batch_size=batch, lr=2e-4, mi=MITerm(weight=0.1), bf16=bf16, eval_every=10**9
    )
    trainer = DDPMTrainer(unet, NoiseSchedule(), settings, device=device)
    images = torch.rand(batch, 4, unet.image_size, unet.image_size) * 2 - 1
    return timed(lambda: (trainer.train_steps(images, 5), 5 * batch)[1], device, seconds)


def sampling(unet: UNetConfig, sampler: str, steps: int, num_steps: int, device, seconds: float):
    trainer = DDPMTrainer(unet, NoiseSchedule(num_steps), TrainSettings(), device=device)
    model, schedule = trainer.model.eval(), trainer.schedule
    shape = (32, 4, unet.image_size, unet.image_size)

    @torch.no_grad()
    def chain() -> int:
        if sampler == "ddim":
            ddim_sample(model, schedule, shape, steps=steps, device=device)
        else:
            ddpm_sample(model, schedule, shape, device=device)
        return shape[0]

    return timed(chain, device, seconds)


def classifier_training(arch: str, size: int, device, seconds: float):
    x, y = torch.rand(128, 4, size, size) * 2 - 1, (torch.rand(128) > 0.5).float()
    settings = ClsSettings(epochs=1, batch_size=32)

    def epoch() -> int:
        model = GliomaResNet(arch)
        train_fold(model, train=(x, y), val=(x[:32], y[:32]), settings=settings, device=device)
        return len(x)

    return timed(epoch, device, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--tiny", action="store_true", help="a CPU check of the script itself")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"{machine_line()}\n{versions_line(torch)}\ndevice: {device}", flush=True)
    if device.type == "cuda":
        print(f"gpu: {torch.cuda.get_device_name(device)}")
    paper = PROFILES["paper"]
    unet, batch = unet_config("paper"), int(paper["train_ddpm"]["batch_size"])
    arch, size = paper["train_cls"]["arch"], int(paper["prepare"]["patch_size"])
    num_steps = 1000
    if args.tiny:
        unet = UNetConfig(
            image_size=16, base_channels=8, channel_mults=(1, 2), attention_resolutions=(8,)
        )
        batch, arch, size, num_steps = 4, "resnet18", 16, 20
    rows = []
    for bf16 in (False, True):
        rate, peak = ddpm_training(unet, batch, bf16, device, args.seconds)
        rows.append((f"DDPM training, batch {batch}, {'bf16' if bf16 else 'fp32'}", rate, peak))
        print(f"  {rows[-1][0]}: {rate:.1f} img/s, peak {peak:.2f} GiB", flush=True)
    for sampler, steps in (("ddim", min(50, num_steps)), ("ddpm", num_steps)):
        rate, peak = sampling(unet, sampler, steps, num_steps, device, args.seconds)
        rows.append(
            (
                f"sampling {sampler.upper()}-{steps if sampler == 'ddim' else num_steps}, batch 32",
                rate,
                peak,
            )
        )
        print(f"  {rows[-1][0]}: {rate:.2f} img/s, peak {peak:.2f} GiB", flush=True)
    rate, peak = classifier_training(arch, size, device, args.seconds)
    rows.append((f"{arch} fold training at {size} px, batch 32", rate, peak))
    print(f"  {rows[-1][0]}: {rate:.1f} img/s, peak {peak:.2f} GiB", flush=True)
    home = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    os.environ["GLIOMA_HOME"] = str(home)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    torch_s, json_s, parquet_s = serving_vs_torch(arch, size, 3, home)
    rows.append((f"served 5-fold {arch} ensemble, batch 64 (Parquet)", 64 / parquet_s, 0.0))
    print(f"  served ensemble: torch {64 / torch_s:.1f} img/s, served {64 / parquet_s:.1f} img/s")
    print("\n| part | images/s | peak GPU GiB |\n| --- | --- | --- |")
    for name, rate, peak in rows:
        print(f"| {name} | {rate:.2f} | {peak:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
