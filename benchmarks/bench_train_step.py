"""CPU speed of the quick DDPM's training step: float32 eager against the alternatives.

The quick profile's trainer (UNet 32 ch (1,2,2), batch 16, 32 px, the MI term of the chosen
form on) runs ``--steps`` optimiser steps per variant, variants interleaved A B C D A B C D for
``--repeats`` rounds so a drifting machine hurts each alike; the median steps/s and the ratio to
``fp32-cl`` (today's default: float32, channels_last weights) are printed with the machine-speed
line of the same run. ``compile`` counts its compile time separately (the first steps).

    .venv/bin/python benchmarks/bench_train_step.py --threads 1 --steps 30
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

# isort: split
from machine import machine_line, versions_line
from speed import speed_line

from glioma.config import TrainDDPMConfig, build_config
from glioma.pipeline.steps.train_ddpm import build_trainer

VARIANTS = ("fp32-cl", "fp32-contiguous", "bf16-autocast", "compile")


def trainer_for(variant: str, mi_weight: float):
    overrides = {"grade": "HGG", "profile": "quick", "mi_weight": mi_weight}
    if variant == "bf16-autocast":
        overrides["bf16"] = True
    trainer = build_trainer(build_config(TrainDDPMConfig, overrides), 32, 44)
    if variant == "fp32-contiguous":
        trainer.model.to(memory_format=torch.contiguous_format)
    if variant == "compile":
        trainer.trained = torch.compile(trainer.model)
    return trainer


def steps_per_s(variant: str, images: torch.Tensor, steps: int, mi_weight: float) -> tuple:
    trainer = trainer_for(variant, mi_weight)
    start = time.perf_counter()
    trainer.train_steps(images, 3)  # warm-up (and, for compile, the compilation)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    trainer.train_steps(images, steps)
    return steps / (time.perf_counter() - start), warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--mi_weight", type=float, default=0.1)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{machine_line()}\n{versions_line(torch)}\n{speed_line()}", flush=True)
    print(f"torch threads {args.threads}, {args.steps} steps per variant per round", flush=True)
    images = torch.rand(44, 4, 32, 32) * 2 - 1
    variants = args.variants.split(",")
    rates: dict[str, list[float]] = {v: [] for v in variants}
    warm: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.repeats):
        for variant in variants:
            try:
                rate, first = steps_per_s(variant, images, args.steps, args.mi_weight)
            except Exception as exc:  # noqa: BLE001 - a variant this machine cannot run
                print(f"{variant}: failed ({type(exc).__name__}: {exc})"[:300], flush=True)
                continue
            rates[variant].append(rate)
            warm[variant].append(first)
            print(f"{variant}: {rate:.2f} steps/s (first 3 steps {first:.1f} s)", flush=True)
    base = statistics.median(rates["fp32-cl"]) if rates.get("fp32-cl") else None
    print("| variant | steps/s (median) | x fp32-cl | first 3 steps, s |")
    print("| --- | --- | --- | --- |")
    for variant in variants:
        if rates[variant]:
            median = statistics.median(rates[variant])
            ratio = f"{median / base:.2f}" if base else ""
            first = statistics.median(warm[variant])
            print(f"| {variant} | {median:.2f} | {ratio} | {first:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
