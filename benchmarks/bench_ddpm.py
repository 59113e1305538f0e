"""Benchmark DDPM training and sampling at the ``quick`` and ``paper`` patch sizes.

The issue asks for, in one run on one machine:

- training images/s and sampling images/s at each profile's patch size;
- the FLOP/s a training step achieves against the FLOP/s a plain large float32 matrix product
  reaches in the same run (target: >= 30%), since the matmul is the best this machine's BLAS
  can do and the ratio shows how much of it the UNet wastes;
- DDIM-50 against DDPM-1000 sampling time (target: DDIM >= 15x faster).

Training is timed through ``DDPMTrainer.train_steps``, the loop the pipeline runs (loss,
backward, gradient clipping, AdamW, EMA), so the figure is what training really costs; with
MI weight 0 and 0.1, to show the MI term's cost. FLOPs are counted with ``FlopCounterMode`` on
the meta device: the count depends only on the model and the shapes, and counting there costs
nothing. On a small CPU the DDPM-1000 chain can take many minutes: it runs whole while it fits
``--ddpm-budget`` seconds, else its time is extrapolated from its first steps (every step
costs the same), and at 96 px both samplers are extrapolated from a few steps; extrapolated
figures are marked. Timings are best-of-N, because a shared CPU makes single figures noisy.

This is a benchmark, not a timed test: it prints figures and whether the targets are met, and
exits 0 unless something fails.

    .venv/bin/python benchmarks/bench_ddpm.py [--device auto|cpu|cuda] [--profiles quick,paper]
        [--repeats N] [--quick-only] [--ddpm-budget S] [--threads T] [--matmul-size N]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import torch
from torch.utils.flop_counter import FlopCounterMode

from glioma.config import TrainDDPMConfig, build_config
from glioma.config.profiles import PROFILES
from glioma.devices import resolve_device
from glioma.diffusion.losses import MITerm, diffusion_loss
from glioma.diffusion.samplers import Progress, ddim_sample, ddpm_sample
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.settings import Augmentation
from glioma.diffusion.training import DDPMTrainer, TrainSettings
from glioma.diffusion.unet import UNet, UNetConfig
from glioma.errors import ConfigError

# isort: split
# This script's folder, on sys.path when it runs as a script from any working directory.
from ddpm_report import DDIM_STEPS, DDPM_STEPS, print_header, print_tables
from machine import Interference, best_of, wall_s

MI_WEIGHTS = (0.0, 0.1)
CPU_SAMPLE_BATCH = {32: 16, 96: 4}  # sampling batch on CPU, by patch size
PAPER_CPU_BATCH = 4  # training batch at 96 px on CPU (the profile's 32 takes ~30 s a step)
PAPER_CPU_STEPS = 2  # sampler steps per timed round at 96 px on CPU
MIN_DDPM_TIMED = 50  # never extrapolate DDPM-1000 from fewer steps than this, budget or not


@dataclass(frozen=True)
class SizePlan:
    """What to run at one profile's size; CPU plans are cut down to keep the run short."""

    profile: str
    unet: UNetConfig
    lr: float
    train_batch: int
    sample_batch: int
    warmup_steps: int
    steps_per_round: int  # consecutive training steps timed together
    rounds: int  # training: best of this many rounds
    sampler_steps: int  # sampler steps per round when extrapolating (0: whole chains)
    sampler_rounds: int  # best of this many rounds of both samplers, interleaved
    ddpm_budget_s: float  # whole chains: a DDPM-1000 longer than this is extrapolated
    note: str


@dataclass(frozen=True)
class TrainResult:
    profile: str
    size: int
    batch: int
    mi_weight: float
    step_s: float
    median_step_s: float
    flops: float


@dataclass(frozen=True)
class SampleResult:
    profile: str
    size: int
    batch: int
    ddim_s: float
    ddim_timed: int
    ddpm_s: float
    ddpm_timed: int


# The figures in the README were measured on the trainer's loop without augmentation.
NO_AUGMENT = Augmentation(prob=0.0)


def unet_config(profile: str) -> UNetConfig:
    """The UNet that ``profile``'s train_ddpm step builds, at its prepare patch size."""
    patch_size = int(PROFILES[profile]["prepare"]["patch_size"])
    return build_config(TrainDDPMConfig, {"profile": profile}).unet(patch_size)


def make_plan(profile: str, device: torch.device, repeats: int, ddpm_budget: float) -> SizePlan:
    """Profile batch sizes and whole sampler chains on CUDA; smaller, partial runs on CPU.

    On CPU the 32 px chains run whole unless DDPM-1000 would exceed ``ddpm_budget`` seconds
    (then it is extrapolated); at 96 px one sampler step takes about a second, so both chains
    are extrapolated from short interleaved rounds and the batches are 4.
    """
    unet, batch = unet_config(profile), int(PROFILES[profile]["train_ddpm"]["batch_size"])
    lr = float(PROFILES[profile]["train_ddpm"]["lr"])
    budget = ddpm_budget if ddpm_budget > 0 else float("inf")
    if device.type == "cuda":
        return SizePlan(profile, unet, lr, batch, batch, 3, 10, repeats, 0, 1, budget, "")
    if unet.image_size <= 32:
        sample_batch = CPU_SAMPLE_BATCH[32]
        return SizePlan(profile, unet, lr, batch, sample_batch, 1, 1, repeats, 0, 1, budget, "")
    note = (
        f"CPU: batch {PAPER_CPU_BATCH} instead of {batch} for training and sampling; DDIM-50 and "
        f"DDPM-1000 extrapolated from the best of {repeats} interleaved rounds of "
        f"{PAPER_CPU_STEPS} steps each"
    )
    cpu_batches, k = (PAPER_CPU_BATCH, CPU_SAMPLE_BATCH[96]), PAPER_CPU_STEPS
    return SizePlan(profile, unet, lr, *cpu_batches, 1, 1, repeats, k, repeats, budget, note)


def synchronizer(device: torch.device) -> Callable[[], None] | None:
    """What waits for queued GPU work, so that wall-clock time covers it; nothing on CPU."""
    return partial(torch.cuda.synchronize, device) if device.type == "cuda" else None


def matmul_flop_per_s(device: torch.device, size: int, repeats: int) -> float:
    """Best FLOP/s of a plain float32 ``size`` x ``size`` matmul: this machine's yardstick."""
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    inner = 3 if device.type == "cpu" else 20

    def run() -> None:
        for _ in range(inner):
            torch.mm(a, b)

    run()  # warm-up: thread pool, BLAS buffers, cuBLAS handle
    best = best_of(max(repeats, 5), run, synchronizer(device))
    return inner * 2.0 * size**3 / best


def step_flops(unet: UNetConfig, batch: int, mi_weight: float) -> float:
    """FLOPs of one training step's loss forward and backward, counted on the meta device."""
    model, schedule = UNet(unet).to("meta"), NoiseSchedule()
    shape = (batch, unet.channels, unet.image_size, unet.image_size)
    x0, noise = torch.empty(shape, device="meta"), torch.empty(shape, device="meta")
    t = torch.zeros(batch, dtype=torch.long, device="meta")
    with FlopCounterMode(display=False) as counter:
        diffusion_loss(model, schedule, x0, t, noise, mi=MITerm(weight=mi_weight)).total.backward()
    return float(counter.get_total_flops())


def fake_images(count: int, unet: UNetConfig) -> torch.Tensor:
    """Random patches in the data range [-1, 1]; the cost does not depend on their content."""
    shape = (count, unet.channels, unet.image_size, unet.image_size)
    return torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 2 - 1


def bench_training(plan: SizePlan, mi_weight: float, device: torch.device) -> TrainResult:
    """Best-of-rounds time per step of the trainer's own loop; warm-up steps are dropped."""
    settings = TrainSettings(
        batch_size=plan.train_batch, lr=plan.lr, mi=MITerm(weight=mi_weight), augment=NO_AUGMENT
    )
    trainer = DDPMTrainer(plan.unet, NoiseSchedule(), settings, device=device)
    trainer.train_steps(fake_images(plan.train_batch, plan.unet), plan.warmup_steps)
    images = fake_images(plan.steps_per_round * plan.train_batch, plan.unet)
    sync = synchronizer(device)
    rounds = [
        wall_s(lambda: trainer.train_steps(images, plan.steps_per_round), sync)
        / plan.steps_per_round
        for _ in range(plan.rounds)
    ]
    size, flops = plan.unet.image_size, step_flops(plan.unet, plan.train_batch, mi_weight)
    best, median = min(rounds), statistics.median(rounds)
    return TrainResult(plan.profile, size, plan.train_batch, mi_weight, best, median, flops)


class _StopSampling(Exception):
    """Raised from the progress hook to end a sampler after the steps we mean to time."""


Sampler = Callable[[Progress], torch.Tensor]


def sampler_seconds(run: Sampler, steps: int, timed_steps: int, device: torch.device) -> float:
    """Time of the whole ``steps`` chain, extrapolated linearly when fewer steps are timed."""
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if timed_steps < steps and done >= timed_steps:
            raise _StopSampling

    def chain() -> None:
        with contextlib.suppress(_StopSampling):
            run(progress)

    return wall_s(chain, synchronizer(device)) * steps / timed_steps


def ddpm_steps_to_time(plan: SizePlan, ddim_s: float) -> int:
    """All DDPM steps if the chain fits the budget at DDIM's per-step cost, else what fits."""
    per_step = ddim_s / DDIM_STEPS
    fitting = int(plan.ddpm_budget_s / per_step) if per_step > 0 else DDPM_STEPS
    return min(DDPM_STEPS, max(fitting, MIN_DDPM_TIMED))


def time_samplers(
    plan: SizePlan, ddim: Sampler, ddpm: Sampler, device: torch.device
) -> tuple[float, int, float, int]:
    """(DDIM s, its timed steps, DDPM s, its timed steps): whole chains, or the best rounds."""
    if plan.sampler_steps == 0:
        # DDIM is cheap: best of the repeats; DDPM-1000 runs once (it takes over a minute).
        ddim_s = min(
            sampler_seconds(ddim, DDIM_STEPS, DDIM_STEPS, device) for _ in range(plan.rounds)
        )
        ddpm_timed = ddpm_steps_to_time(plan, ddim_s)
        return ddim_s, DDIM_STEPS, sampler_seconds(ddpm, DDPM_STEPS, ddpm_timed, device), ddpm_timed
    # Interleaved, so that a burst of load elsewhere does not land on one sampler only.
    k, ddim_runs, ddpm_runs = plan.sampler_steps, [], []
    for _ in range(plan.sampler_rounds):
        ddim_runs.append(sampler_seconds(ddim, DDIM_STEPS, k, device))
        ddpm_runs.append(sampler_seconds(ddpm, DDPM_STEPS, k, device))
    return min(ddim_runs), k, min(ddpm_runs), k


def bench_sampling(plan: SizePlan, device: torch.device) -> SampleResult:
    """DDIM-50 and DDPM-1000 times for one batch (both samplers use the same untrained net)."""
    # channels_last, as LoadedDDPM (the samplers' loader) builds it.
    model = UNet(plan.unet, channels_last=True).to(device).eval()
    schedule = NoiseSchedule(DDPM_STEPS).to(device)
    size = plan.unet.image_size
    shape = (plan.sample_batch, plan.unet.channels, size, size)
    common = {"generator": None, "device": device}
    ddim_sample(model, schedule, shape, steps=2, **common)  # warm-up at this batch size

    def ddim(progress: Progress) -> torch.Tensor:
        return ddim_sample(model, schedule, shape, steps=DDIM_STEPS, progress=progress, **common)

    def ddpm(progress: Progress) -> torch.Tensor:
        return ddpm_sample(model, schedule, shape, progress=progress, **common)

    times = time_samplers(plan, ddim, ddpm, device)
    return SampleResult(plan.profile, size, plan.sample_batch, *times)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--profiles", default="quick,paper", help="comma-separated profiles")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds, best one counts")
    parser.add_argument("--quick-only", action="store_true", help="same as --profiles quick")
    budget = "seconds: a longer DDPM-1000 chain is timed in part and extrapolated (0: never)"
    parser.add_argument("--ddpm-budget", type=float, default=150.0, help=budget)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--matmul-size", type=int, default=0, help="0: 2048 on CPU, 8192 GPU")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    args.profiles = ["quick"] if args.quick_only else args.profiles.split(",")
    unknown = [p for p in args.profiles if p not in PROFILES]
    if unknown:
        parser.error(f"unknown profiles {unknown}; choose from {sorted(PROFILES)}")
    return args


def run_profile(plan: SizePlan, device: torch.device) -> tuple[list[TrainResult], SampleResult]:
    """Training at both MI weights, then sampling, printing each figure as it arrives."""
    print(f"\n[{plan.profile}] {plan.unet}")
    if plan.note:
        print(f"[{plan.profile}] {plan.note}")
    trains = []
    for weight in MI_WEIGHTS:
        result = bench_training(plan, weight, device)
        print(f"[{plan.profile}] train MI {weight}: {result.step_s:.3f} s/step (best)")
        trains.append(result)
    sample = bench_sampling(plan, device)
    print(
        f"[{plan.profile}] DDIM-50 {sample.ddim_s:.1f} s "
        f"({1e3 * sample.ddim_s / DDIM_STEPS:.0f} ms/step), "
        f"DDPM-1000 {sample.ddpm_s:.1f} s ({1e3 * sample.ddpm_s / DDPM_STEPS:.0f} ms/step)"
        + ("" if sample.ddpm_timed >= DDPM_STEPS else f", {sample.ddpm_timed} steps timed")
    )
    return trains, sample


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except ConfigError as error:
        print(f"bench_ddpm: {error}", file=sys.stderr)
        return 2
    interference = Interference.start()
    print_header(device)
    size = args.matmul_size or (8192 if device.type == "cuda" else 2048)
    matmul = matmul_flop_per_s(device, size, args.repeats)
    print(f"matmul {size}x{size} float32: {matmul / 1e9:.1f} GFLOP/s (best of the run)")
    trains: list[TrainResult] = []
    samples: list[SampleResult] = []
    for profile in args.profiles:
        plan = make_plan(profile, device, args.repeats, args.ddpm_budget)
        profile_trains, sample = run_profile(plan, device)
        trains += profile_trains
        samples.append(sample)
    # Measured again at the end: on a shared machine the load may have changed meanwhile.
    matmul = max(matmul, matmul_flop_per_s(device, size, args.repeats))
    print_tables(trains, samples, matmul)
    print(f"\n{interference.report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
