"""Reverse processes: DDPM ancestral sampling (all T steps) and DDIM (k steps, eta).

DDPM (Ho et al.): x_{t-1} = mu~_t(x0_hat, x_t) + sqrt(beta~_t) z, z ~ N(0, I) for t > 0.
DDIM (Song et al.), on a sub-sequence tau of k steps:
    x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - s^2) eps_hat + s z,
    s = eta * sqrt((1 - abar_prev) / (1 - abar_t)) * sqrt(1 - abar_t / abar_prev);
eta = 0 is deterministic, eta = 1 matches DDPM's variance.
x0_hat comes from the network's output by the schedule's parameterisation (eps, v or x0:
``NoiseSchedule.predict_x0``) and is clipped to [-1, 1], the data range, at every step; DDIM's
eps_hat is the noise consistent with the clipped x0_hat (diffusers' ``use_clipped_model_output``).
Both match diffusers' ``DDPMScheduler`` / ``DDIMScheduler`` (``timestep_spacing="linspace"``,
``clip_sample=True``) to float32 rounding: ``tests/test_diffusion_reference.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from glioma.diffusion.schedule import NoiseSchedule

Progress = Callable[[int], None]


def _noise_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


@torch.no_grad()
def ddpm_sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    shape: tuple[int, ...],
    *,
    generator=None,
    device="cpu",
    progress: Progress | None = None,
) -> torch.Tensor:
    x = torch.randn(shape, generator=generator, device=device)
    for step in reversed(range(schedule.num_steps)):
        t = torch.full((shape[0],), step, device=device, dtype=torch.long)
        x0_hat = schedule.predict_x0(x, t, model(x, t)).clamp(-1, 1)
        x = schedule.posterior_mean(x0_hat, x, t)
        if step > 0:
            x = x + schedule.gather(schedule.posterior_variance, t, x).sqrt() * _noise_like(
                x, generator
            )
        if progress:
            progress(1)
    return x.clamp(-1, 1)


def ddim_timesteps(num_steps: int, k: int) -> list[int]:
    """k evenly spaced steps from T-1 down to 0."""
    if not 1 <= k <= num_steps:
        raise ValueError(f"DDIM steps must be 1..{num_steps}, got {k}")
    if k == 1:  # one step denoises from pure noise (T-1); linspace(0, T-1, 1) would give [0]
        return [num_steps - 1]
    return sorted(
        {int(round(v)) for v in torch.linspace(0, num_steps - 1, k).tolist()}, reverse=True
    )


@torch.no_grad()
def ddim_sample(
    model: nn.Module,
    schedule: NoiseSchedule,
    shape: tuple[int, ...],
    *,
    steps: int = 50,
    eta: float = 0.0,
    generator=None,
    device="cpu",
    progress: Progress | None = None,
) -> torch.Tensor:
    x = torch.randn(shape, generator=generator, device=device)
    taus = ddim_timesteps(schedule.num_steps, steps)
    abar_all = schedule.alphas_cumprod.cpu()  # scalars per step: no device sync
    for i, step in enumerate(taus):
        t = torch.full((shape[0],), step, device=device, dtype=torch.long)
        x0_hat = schedule.predict_x0(x, t, model(x, t)).clamp(-1, 1)
        eps_hat = schedule.predict_eps(x, t, x0_hat)  # consistent with the clipped x0
        abar = float(abar_all[step])
        abar_prev = float(abar_all[taus[i + 1]]) if i + 1 < len(taus) else 1.0
        sigma = eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)) ** 0.5
        x = abar_prev**0.5 * x0_hat + max(1 - abar_prev - sigma**2, 0.0) ** 0.5 * eps_hat
        if sigma > 0:
            x = x + sigma * _noise_like(x, generator)
        if progress:
            progress(1)
    return x.clamp(-1, 1)
