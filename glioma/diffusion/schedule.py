"""The forward process, and the network's parameterisation, in one place.

Notation (Ho et al., 2020): beta_t is the noise added at step t, alpha_t = 1 - beta_t,
abar_t = prod_{s<=t} alpha_s, SNR_t = abar_t / (1 - abar_t). Forward:
q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.
Posterior: q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I) with
beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t). Steps are indexed 0 .. T-1.

Schedules (``ScheduleConfig.schedule``), each as abar over u = t / T:

- ``linear`` (Ho et al., 2020): beta evenly from ``beta_start`` to ``beta_end``.
- ``cosine`` (Nichol & Dhariwal, 2021, eq. 17): abar(u) = f(u) / f(0),
  f(u) = cos^2((u + s) / (1 + s) pi / 2), s = 0.008; beta_t = 1 - abar_t / abar_{t-1} capped
  at 0.999 (their clipping; diffusers' ``squaredcos_cap_v2``).
- ``sigmoid`` (Jabri et al., 2023; Chen, 2023, alg. 1): abar(u) = (sigmoid(e / tau) -
  sigmoid((u (e - b) + b) / tau)) / (sigmoid(e / tau) - sigmoid(b / tau)) with b = -3, e = 3,
  tau = 1, betas capped at 0.999, as in lucidrains' ``denoising-diffusion-pytorch``.
- ``zero_terminal_snr`` (Lin et al., 2024, alg. 1): sqrt(abar) shifted so that its last value
  is 0 and scaled so that its first is unchanged: the last step is pure noise, as sampling
  assumes. Then abar_{T-1} = 0 and an eps-predicting network cannot give x0 there, so it
  needs ``prediction`` v or x0.

Parameterisations (``ScheduleConfig.prediction``), the network's output o (Salimans & Ho,
2022, for v): ``eps`` o = eps, x0_hat = (x_t - sqrt(1 - abar_t) o) / sqrt(abar_t); ``v``
o = v = sqrt(abar_t) eps - sqrt(1 - abar_t) x_0, x0_hat = sqrt(abar_t) x_t - sqrt(1 - abar_t) o;
``x0`` o = x_0. Why it matters: d x0_hat / d o is -1 / sqrt(SNR_t) for eps (157 at t = 999 of
the linear schedule: a small error in o decides a whole channel's brightness at high noise),
at most 1 in magnitude for v and x0.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from glioma.diffusion.settings import ScheduleConfig

MAX_BETA = 0.999  # Nichol & Dhariwal's cap: beta_t = 1 would make abar 0 before the last step
COSINE_OFFSET = 0.008  # s of the cosine schedule (Nichol & Dhariwal, 2021)
SIGMOID_RANGE = (-3.0, 3.0, 1.0)  # start, end, tau of the sigmoid schedule (Chen, 2023)


def _betas_from_abar(abar: torch.Tensor) -> torch.Tensor:
    """abar at u = 0, 1/T, ..., 1 (T + 1 values, abar[0] = 1) -> T betas, capped."""
    return (1.0 - abar[1:] / abar[:-1]).clamp(0.0, MAX_BETA)


def cosine_betas(num_steps: int, s: float = COSINE_OFFSET) -> torch.Tensor:
    """Nichol & Dhariwal (2021), eq. 17."""
    u = torch.linspace(0, 1, num_steps + 1, dtype=torch.float64)
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    return _betas_from_abar(f / f[0])


def sigmoid_betas(num_steps: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0):
    """Chen (2023), algorithm 1 (the sigmoid of Jabri et al., 2023)."""
    u = torch.linspace(0, 1, num_steps + 1, dtype=torch.float64)
    v_start, v_end = (torch.tensor([start, end], dtype=torch.float64) / tau).sigmoid()
    abar = (v_end - ((u * (end - start) + start) / tau).sigmoid()) / (v_end - v_start)
    return _betas_from_abar(abar / abar[0])


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Lin et al. (2024), algorithm 1: the same curve of sqrt(abar), shifted to end at 0."""
    root = torch.cumprod(1.0 - betas, dim=0).sqrt()
    first, last = root[0].clone(), root[-1].clone()
    root = (root - last) * first / (first - last)
    abar = root**2
    alphas = torch.cat([abar[:1], abar[1:] / abar[:-1]])
    return 1.0 - alphas


def schedule_betas(config: ScheduleConfig) -> torch.Tensor:
    """The T betas of ``config`` (float64)."""
    if config.schedule == "cosine":
        betas = cosine_betas(config.num_steps)
    elif config.schedule == "sigmoid":
        betas = sigmoid_betas(config.num_steps, *SIGMOID_RANGE)
    else:
        betas = torch.linspace(
            config.beta_start, config.beta_end, config.num_steps, dtype=torch.float64
        )
    return rescale_zero_terminal_snr(betas) if config.zero_terminal_snr else betas


class NoiseSchedule(nn.Module):
    """The tables of a ``ScheduleConfig`` as buffers (float64 for exactness, cast on use), and
    the conversions between the network's output, x0 and eps that the loss, the MI term and
    both samplers share. Constructor arguments are the config (as in diffusers' schedulers)."""

    TABLES = ("betas", "alphas", "alphas_cumprod", "alphas_cumprod_prev", "posterior_variance")

    def __init__(
        self,
        num_steps: int = ScheduleConfig.num_steps,
        *,
        schedule: str = ScheduleConfig.schedule,
        beta_start: float = ScheduleConfig.beta_start,
        beta_end: float = ScheduleConfig.beta_end,
        zero_terminal_snr: bool = ScheduleConfig.zero_terminal_snr,
        prediction: str = ScheduleConfig.prediction,
    ):
        super().__init__()
        self.config = ScheduleConfig(
            num_steps=num_steps,
            schedule=schedule,
            beta_start=beta_start,
            beta_end=beta_end,
            zero_terminal_snr=zero_terminal_snr,
            prediction=prediction,
        )
        self.num_steps, self.prediction = num_steps, prediction
        betas = schedule_betas(self.config)
        abar = torch.cumprod(1.0 - betas, dim=0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        tables = {
            "betas": betas,
            "alphas": 1.0 - betas,
            "alphas_cumprod": abar,
            "alphas_cumprod_prev": abar_prev,
            "posterior_variance": betas * (1.0 - abar_prev) / (1.0 - abar),
        }
        for name, values in tables.items():
            self.register_buffer(name, values, persistent=False)

    @classmethod
    def of(cls, config: ScheduleConfig) -> NoiseSchedule:
        return cls(**config.to_dict())

    @staticmethod
    def gather(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """values[t] shaped (B, 1, 1, 1) in ``like``'s dtype and device."""
        picked = values.to(like.device)[t.to(like.device)].to(like.dtype)
        return picked.view(-1, *([1] * (like.ndim - 1)))

    def _roots(self, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sqrt(abar_t), sqrt(1 - abar_t)) shaped for ``like``."""
        abar = self.gather(self.alphas_cumprod, t, like)
        return abar.sqrt(), (1.0 - abar).sqrt()

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps."""
        signal, sigma = self._roots(t, x0)
        return signal * x0 + sigma * noise

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """SNR_t = abar_t / (1 - abar_t), float64, shape of ``t`` (Kingma et al., 2021)."""
        abar = self.alphas_cumprod[t.to(self.alphas_cumprod.device)]
        return abar / (1.0 - abar)

    def target(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the network learns to output: eps, v = sqrt(abar) eps - sqrt(1 - abar) x_0, or
        x_0 (Salimans & Ho, 2022, appendix D, for v)."""
        if self.prediction == "eps":
            return noise
        if self.prediction == "x0":
            return x0
        signal, sigma = self._roots(t, x0)
        return signal * noise - sigma * x0

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """x0_hat from the network's output (module docstring: one formula per prediction)."""
        if self.prediction == "x0":
            return output
        signal, sigma = self._roots(t, x_t)
        if self.prediction == "v":
            return signal * x_t - sigma * output
        return (x_t - sigma * output) / signal

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """eps_hat = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t): the noise consistent with an
        estimate of x_0 (after clipping it, as DDIM needs)."""
        signal, sigma = self._roots(t, x_t)
        return (x_t - signal * x0) / sigma

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
