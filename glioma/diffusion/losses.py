"""The training objective: Huber on the noise, optionally plus the MI regulariser.

    L = (1 - w) * SmoothL1(eps_hat, eps) + w * MI(pair)

with w = ``mi_weight`` (paper: 0.1 -> 0.9 / 0.1) and the MI pair either (x0_hat, x0), the
denoised estimate against the clean image (default), or (eps_hat, eps). Minimising MI pushes
the model away from reproducing its training images. With w = 0 the loss is exactly the
standard DDPM objective; MI is then still computed, without gradient, for monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from glioma.diffusion.mi import mutual_information
from glioma.diffusion.schedule import NoiseSchedule

MI_PAIRS = ("x0", "eps")


@dataclass
class LossTerms:
    total: torch.Tensor
    huber: torch.Tensor
    mi: torch.Tensor

    def detached(self) -> dict[str, float]:
        return {
            k: float(v.detach())
            for k, v in (("loss", self.total), ("huber", self.huber), ("mi", self.mi))
        }


def diffusion_loss(
    model: nn.Module,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    *,
    mi_weight: float = 0.0,
    mi_pair: str = "x0",
) -> LossTerms:
    """Loss terms for one batch at the given steps ``t`` and noise."""
    if mi_pair not in MI_PAIRS:
        raise ValueError(f"mi_pair must be one of {MI_PAIRS}, got {mi_pair!r}")
    x_t = schedule.q_sample(x0, t, noise)
    eps_hat = model(x_t, t)
    huber = F.smooth_l1_loss(eps_hat, noise)
    with torch.set_grad_enabled(torch.is_grad_enabled() and mi_weight > 0):
        x0_hat = schedule.predict_x0(x_t, t, eps_hat)
        pair = (x0_hat, x0) if mi_pair == "x0" else (eps_hat, noise)
        mi = mutual_information(*pair).mean()
    if mi_weight == 0:
        return LossTerms(huber, huber, mi.detach())
    return LossTerms((1.0 - mi_weight) * huber + mi_weight * mi, huber, mi)
