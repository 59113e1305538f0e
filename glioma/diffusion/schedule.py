"""The DDPM forward process and the quantities both samplers need, in one place.

Notation (Ho et al., 2020): beta_t is the noise added at step t, alpha_t = 1 - beta_t,
abar_t = prod_{s<=t} alpha_s. Forward: q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I).
Posterior: q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I) with
beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t). Steps are indexed 0 .. T-1.
"""

from __future__ import annotations

import torch

from glioma.diffusion.settings import ScheduleConfig


class NoiseSchedule:
    """The tables of a ``ScheduleConfig`` (float64 for exactness, cast on use)."""

    def __init__(
        self,
        num_steps: int = ScheduleConfig.num_steps,
        beta_start: float = ScheduleConfig.beta_start,
        beta_end: float = ScheduleConfig.beta_end,
    ):
        self.config = ScheduleConfig(num_steps=num_steps, beta_start=beta_start, beta_end=beta_end)
        self.num_steps, self.beta_start, self.beta_end = num_steps, beta_start, beta_end
        self.betas = torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self.alphas_cumprod_prev = torch.cat(
            [torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]]
        )
        self.posterior_variance = (
            self.betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        )

    @classmethod
    def of(cls, config: ScheduleConfig) -> NoiseSchedule:
        return cls(config.num_steps, config.beta_start, config.beta_end)

    TABLES = ("betas", "alphas", "alphas_cumprod", "alphas_cumprod_prev", "posterior_variance")

    def to(self, device: torch.device | str) -> NoiseSchedule:
        """Keep the tables on the model's device, so sampling does not copy them every step."""
        for name in self.TABLES:
            setattr(self, name, getattr(self, name).to(device))
        return self

    @staticmethod
    def gather(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """values[t] shaped (B, 1, 1, 1) in ``like``'s dtype and device."""
        picked = values.to(like.device)[t.to(like.device)].to(like.dtype)
        return picked.view(-1, *([1] * (like.ndim - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
        abar = self.gather(self.alphas_cumprod, t, x0)
        return abar.sqrt() * x0 + (1.0 - abar).sqrt() * noise

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """SNR_t = abar_t / (1 - abar_t), float64, shape of ``t`` (Kingma et al., 2021)."""
        abar = self.alphas_cumprod[t.to(self.alphas_cumprod.device)]
        return abar / (1.0 - abar)

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)."""
        abar = self.gather(self.alphas_cumprod, t, x_t)
        return (x_t - (1.0 - abar).sqrt() * eps) / abar.sqrt()

    def posterior_mean(self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """mu~_t = (sqrt(abar_{t-1}) beta_t x0 + sqrt(alpha_t)(1-abar_{t-1}) x_t) / (1-abar_t)."""
        abar, abar_prev = (
            self.gather(self.alphas_cumprod, t, x_t),
            self.gather(self.alphas_cumprod_prev, t, x_t),
        )
        beta, alpha = self.gather(self.betas, t, x_t), self.gather(self.alphas, t, x_t)
        return (abar_prev.sqrt() * beta * x0 + alpha.sqrt() * (1.0 - abar_prev) * x_t) / (
            1.0 - abar
        )
