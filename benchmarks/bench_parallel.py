"""Benchmark how to spend the cores on small DDPMs: one process with all threads, or one
process per core with one thread each (the study trains 40 small per-fold DDPMs).

Same quick-profile UNet, batch and images in both arms, measured side by side in one run:
training images/s of one process using every usable cpu as torch threads, against the summed
images/s of one single-threaded process per cpu running at the same time.

    .venv/bin/python benchmarks/bench_parallel.py [--images 160] [--batch 8]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import torch

from glioma.config import TrainDDPMConfig, build_config
from glioma.pipeline.steps.train_ddpm import build_trainer

# isort: split
from machine import Interference, machine_line, usable_cpus, versions_line


def images_per_s(threads: int, images: int, batch: int, start: mp.Barrier | None = None) -> float:
    """Quick-profile DDPM training throughput with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    config = build_config(TrainDDPMConfig, {"batch_size": batch, "device": "cpu"})
    data = torch.rand(images, 4, 32, 32) * 2 - 1
    trainer = build_trainer(config, 32, images)
    trainer.train_steps(data, 2)  # warm-up
    if start is not None:
        start.wait()
    begin = time.perf_counter()
    trainer.train_steps(data, -(-images // batch))
    return images / (time.perf_counter() - begin)


def _worker(args: tuple) -> float:
    return images_per_s(1, *args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    cpus = usable_cpus()
    print(machine_line())
    print(versions_line(torch))
    interference = Interference.start()
    one = images_per_s(cpus, args.images, args.batch)
    context = mp.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(cpus)
        with context.Pool(cpus) as pool:
            rates = pool.map(_worker, [(args.images, args.batch, barrier)] * cpus)
    many = sum(rates)
    print(f"\n| arm | train img/s |\n| --- | --- |\n| 1 process x {cpus} threads | {one:.1f} |")
    print(f"| {cpus} processes x 1 thread | {many:.1f} |\n\nprocesses / threads: {many / one:.2f}x")
    print(interference.report())


if __name__ == "__main__":
    main()
