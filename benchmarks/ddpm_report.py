"""The printed side of ``bench_ddpm.py``: its header, result tables and verdicts on the targets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

# isort: split
from machine import machine_line, versions_line

if TYPE_CHECKING:
    from bench_ddpm import SampleResult, TrainResult

FLOP_TARGET = 0.30  # training FLOP/s against the matmul's
SPEEDUP_TARGET = 15.0  # DDPM-1000 time over DDIM-50 time
DDIM_STEPS = 50
DDPM_STEPS = 1000


def print_header(device: torch.device) -> None:
    """Everything the figures depend on, so that runs on different machines can be compared."""
    print(f"{machine_line()}\n{versions_line(torch)}")
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"device: {device}{gpu}")
    print(f"torch threads: {torch.get_num_threads()} (interop {torch.get_num_interop_threads()})")
    print(
        f"float32 matmul precision: {torch.get_float32_matmul_precision()}; "
        f"cuda matmul tf32: {torch.backends.cuda.matmul.allow_tf32}, "
        f"cudnn conv tf32: {torch.backends.cudnn.allow_tf32}"
    )


def ok(met: bool) -> str:
    return "met" if met else "NOT met"


def print_table(title: str, head: str, rows: Sequence[str]) -> None:
    """A titled table: its head over a rule as wide, then one line a row."""
    print(f"\n{title}\n{head}\n{'-' * len(head)}")
    for row in rows:
        print(row)


def training_row(r: TrainResult, matmul: float) -> str:
    flop_per_s = r.flops / r.step_s
    share = flop_per_s / matmul
    return (
        f"{r.profile:<8}{r.size:>5}{r.batch:>6}{r.mi_weight:>6.1f}{r.step_s:>12.3f}"
        f"{r.median_step_s:>9.3f}{r.batch / r.step_s:>9.2f}{r.flops / 1e9:>11.2f}"
        f"{flop_per_s / 1e9:>9.2f}{share:>7.1%}  {ok(share >= FLOP_TARGET)}"
    )


def sampling_row(r: SampleResult) -> str:
    ddim = _marked(r.ddim_s, r.ddim_timed, DDIM_STEPS)
    ddpm = _marked(r.ddpm_s, r.ddpm_timed, DDPM_STEPS)
    speedup = r.ddpm_s / r.ddim_s
    return (
        f"{r.profile:<8}{r.size:>5}{r.batch:>6}{ddim:>13}{r.batch / r.ddim_s:>9.3f}"
        f"{ddpm:>15}{r.batch / r.ddpm_s:>9.4f}{speedup:>9.1f}x  {ok(speedup >= SPEEDUP_TARGET)}"
    )


def print_tables(
    trains: Sequence[TrainResult], samples: Sequence[SampleResult], matmul: float
) -> None:
    """The two result tables, with each row's verdict on its target."""
    print_table(
        "Training (trainer loop: loss fwd+bwd, grad clip, AdamW, EMA)",
        f"{'profile':<8}{'size':>5}{'batch':>6}{'MI w':>6}{'best s/step':>12}{'median':>9}"
        f"{'img/s':>9}{'GFLOP/step':>11}{'GFLOP/s':>9}{'vs mm':>7}  target>=30%",
        [training_row(r, matmul) for r in trains],
    )
    print(f"matmul yardstick: {matmul / 1e9:.1f} GFLOP/s (float32, best of the run)")
    print_table(
        "Sampling (one batch; *: extrapolated from (n) timed steps of the real chain)",
        f"{'profile':<8}{'size':>5}{'batch':>6}{'DDIM-50 s':>13}{'img/s':>9}"
        f"{'DDPM-1000 s':>15}{'img/s':>9}{'DDPM/DDIM':>10}  target>=15x",
        [sampling_row(r) for r in samples],
    )


def _marked(seconds: float, timed_steps: int, steps: int) -> str:
    return f"{seconds:.1f}" if timed_steps >= steps else f"*{seconds:.1f} ({timed_steps})"
