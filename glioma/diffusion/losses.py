"""The training objective: Huber on the noise, optionally plus the MI regulariser.

    L = (1 - w) * SmoothL1(eps_hat, eps) + w * (1/B) sum_b 1[t_b >= t_min] * D(pair_b)

with w = ``mi_weight`` (paper: 0.1 -> 0.9 / 0.1), the pair either (x0_hat, x0), the denoised
estimate against the clean image (default), or (eps_hat, eps), and D the dependence measure of
``mode``:

- ``mi``: the MI in nats (``glioma.diffusion.mi.mutual_information``), the paper's term as we
  reconstruct it; its scale grows with the histogram size (up to log K).
- ``nmi``: the normalised MI 2 MI / (H(a) + H(b)) in [0, 1], the same meaning at any K.

``t_min`` (``mi_t_min``) gates the term by noise level. At t = 0 a good denoiser must give
x0_hat = x0 exactly, which is maximal MI: minimising MI there fights the denoising loss. At high
noise, x_t carries little of x0, and a denoiser whose x0_hat still pins down one training image
is memorising; that is where the regulariser belongs. t_min = 0 applies it at every step (the
paper's form). Minimising MI pushes the model away from reproducing its training images. With
w = 0 the loss is exactly the standard DDPM objective; D is then computed without gradient, for
monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from glioma.config.ddpm import MI_MODES, MI_PAIRS, check_mi_term
from glioma.diffusion.mi import mutual_information, normalised_mutual_information
from glioma.diffusion.schedule import NoiseSchedule

__all__ = ["MI_MODES", "MI_PAIRS", "LossTerms", "MITerm", "diffusion_loss"]


@dataclass(frozen=True, kw_only=True)
class MITerm:
    """The regulariser's configuration: weight, pair, measure and the smallest step it acts on."""

    weight: float = 0.0
    pair: str = "x0"
    mode: str = "mi"
    t_min: int = 0

    def __post_init__(self) -> None:
        check_mi_term(weight=self.weight, pair=self.pair, mode=self.mode, t_min=self.t_min)

    def measure(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Per-sample dependence (B,) between ``a`` and ``b``."""
        if self.mode == "nmi":
            return normalised_mutual_information(a, b)
        return mutual_information(a, b)


@dataclass
class LossTerms:
    total: torch.Tensor
    huber: torch.Tensor
    mi: torch.Tensor  # the gated term as it enters the loss (its mean over the batch)

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
    mi: MITerm | None = None,
    y: torch.Tensor | None = None,
) -> LossTerms:
    """Loss terms for one batch at the given steps ``t`` and noise (and classes ``y`` for a
    class-conditional network)."""
    mi = mi or MITerm()
    x_t = schedule.q_sample(x0, t, noise)
    eps_hat = model(x_t, t) if y is None else model(x_t, t, y)
    huber = F.smooth_l1_loss(eps_hat, noise)
    with torch.set_grad_enabled(torch.is_grad_enabled() and mi.weight > 0):
        x0_hat = schedule.predict_x0(x_t, t, eps_hat)
        pair = (x0_hat, x0) if mi.pair == "x0" else (eps_hat, noise)
        gate = (t >= mi.t_min).to(huber.dtype)
        term = (mi.measure(*pair) * gate).mean()
    if mi.weight == 0:
        return LossTerms(huber, huber, term.detach())
    return LossTerms((1.0 - mi.weight) * huber + mi.weight * term, huber, term)
