"""The training objective: Huber on the network's target, optionally plus the MI regulariser.

    L = (1 - w) * H + w * s * (1/B) sum_b g(t_b) lambda(t_b) D(x0_hat_b, r_b)

- H, the denoising term: SmoothL1(o, target), per sample, where o is the network's output and
  the target what the schedule's ``prediction`` says (eps, v or x_0:
  ``NoiseSchedule.target``), optionally weighted by min-SNR-gamma (Hang et al., 2023, eq. 8:
  the weight that makes every parameterisation's loss an x_0 loss weighted min(SNR_t, gamma):
  min(SNR_t, gamma) / SNR_t for eps, min(SNR_t, gamma) / (SNR_t + 1) for v, min(SNR_t, gamma)
  for x_0, as in diffusers' ``compute_snr`` recipe and lucidrains' ``denoising-diffusion-pytorch``),
  then averaged over the batch. SNR_t = abar_t / (1 - abar_t).
- w = ``mi_weight`` (paper: 0.1, i.e. 0.9 Huber + 0.1 MI).
- D, the dependence measure of ``mode``: ``mi`` (nats, ``glioma.diffusion.mi``; grows with the
  histogram size up to log K) or ``nmi`` (2 MI / (H(a) + H(b)) in [0, 1]).
- g(t) = 1[t_min <= t <= t_max], the noise window (``mi_t_min``, ``mi_t_max``; t_max 0 = T - 1).
- lambda(t), ``weighting``: ``none`` 1; ``sqrt_snr`` min(1, sqrt(SNR_t)); ``min_snr``
  min(SNR_t, gamma) / gamma. Why: for an eps-predicting network
  x0_hat = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t), so d x0_hat / d eps_hat =
  -1 / sqrt(SNR_t) (0.34 at t = 100, 3.4 at 500, 157 at 999 for the linear schedule): without
  lambda the MI gradient reaching the network is amplified up to 157x exactly where x0_hat is
  least informed. ``sqrt_snr`` cancels that factor where it exceeds 1; ``min_snr`` damps it
  harder (by SNR_t at high noise) and caps the low-noise end. A v- or x0-predicting network has
  no such factor (|d x0_hat / d o| <= 1); the weighting then only says which steps count.
- s, ``scale``: ``raw`` 1 (the paper's literal sum); ``relative`` sg(H) / sg(M) with M the
  weighted term's batch value and sg a stop-gradient: the term then enters with the denoising
  term's magnitude, so w = 0.1 means a tenth of the objective whatever D's units (H is ~1e-2,
  NMI ~0.1-0.5, MI ~1 nat). Per batch, so nothing is carried between steps (resume-exact).
- r_b, ``target``: ``self`` x0_b, the clean image the sample was noised from (the paper's term as
  we read it: "reducing dependency on the input"); ``nearest`` x0_j*, the most similar *other*
  training image of the batch, j* = argmax_{j != b} Pearson r(x0_hat_b, x0_j) (found without
  gradient, the memorisation metric's own search): the term then penalises denoised estimates
  that drift towards another training image, which is what a memorising sampler does, instead of
  asking the denoiser to forget its own input.
- ``pair`` ``eps`` uses (eps_hat, eps) instead of (x0_hat, r_b) (``target`` must be ``self``);
  eps_hat is the network's output, or, for v and x0, the noise its x0_hat implies.
- x0_hat comes from the network's output by the schedule's parameterisation
  (``NoiseSchedule.predict_x0``).

The term is minimised: MONAI's ``GlobalMutualInformationLoss`` returns -MI (a similarity
loss to minimise), so the sign is ours, fixed by the paper's stated effect (lower correlation
with the training set: 0.55 -> 0.47). With w = 0 the loss is exactly the standard DDPM objective
(H, weighted as configured); the term is then computed without gradient, for monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from glioma.diffusion.mi import mutual_information, normalised_mutual_information
from glioma.diffusion.schedule import NoiseSchedule
from glioma.diffusion.settings import (
    DENOISE_WEIGHTINGS,
    LITERAL,
    MI_MODES,
    MI_PAIRS,
    MI_SCALES,
    MI_TARGETS,
    MI_WEIGHTINGS,
    DenoiseTerm,
    MITerm,
)

__all__ = [
    "DENOISE_WEIGHTINGS",
    "MI_MODES",
    "MI_PAIRS",
    "MI_SCALES",
    "MI_TARGETS",
    "MI_WEIGHTINGS",
    "LITERAL",
    "DenoiseTerm",
    "LossTerms",
    "MITerm",
    "denoise_weights",
    "dependence",
    "diffusion_loss",
    "mi_step_weights",
    "nearest_other",
]


def denoise_weights(denoise: DenoiseTerm, snr: torch.Tensor, prediction: str) -> torch.Tensor:
    """(B,) lambda_H(t), or ones: min-SNR-gamma in the form of the ``prediction`` (module
    docstring; Hang et al., 2023)."""
    if denoise.weighting != "min_snr":
        return torch.ones_like(snr)
    clipped = snr.clamp(max=denoise.snr_gamma)
    if prediction == "v":
        return clipped / (snr + 1.0)
    if prediction == "x0":
        return clipped
    return clipped / snr


def dependence(mi: MITerm, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample dependence D (B,) between ``a`` and ``b`` in the term's measure."""
    if mi.mode == "nmi":
        return normalised_mutual_information(a, b)
    return mutual_information(a, b)


def mi_step_weights(mi: MITerm, t: torch.Tensor, snr: torch.Tensor) -> torch.Tensor:
    """(B,) g(t) lambda(t): the noise window times the SNR weighting."""
    gate = t >= mi.t_min
    if mi.t_max:
        gate &= t <= mi.t_max
    if mi.weighting == "sqrt_snr":
        weights = snr.sqrt().clamp(max=1.0)
    elif mi.weighting == "min_snr":
        weights = snr.clamp(max=mi.snr_gamma) / mi.snr_gamma
    else:
        weights = torch.ones_like(snr)
    return gate.to(weights.dtype) * weights


@dataclass
class LossTerms:
    total: torch.Tensor
    huber: torch.Tensor
    mi: torch.Tensor  # the weighted term's batch mean (before the relative scale)

    def detached(self) -> dict[str, float]:
        return {
            k: float(v.detach())
            for k, v in (("loss", self.total), ("huber", self.huber), ("mi", self.mi))
        }


@torch.no_grad()
def nearest_other(estimates: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """(B,) index j != b of the image most Pearson-correlated with estimate b (b itself when the
    batch has one image)."""
    if len(images) < 2:
        return torch.arange(len(images), device=images.device)

    def standardised(x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(len(x), -1).float()
        flat = flat - flat.mean(dim=1, keepdim=True)
        return flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-12)

    r = standardised(estimates) @ standardised(images).T
    r.fill_diagonal_(-torch.inf)
    return r.argmax(dim=1)


def _pair_dependence(
    mi: MITerm, x0_hat: torch.Tensor, x0: torch.Tensor, eps_hat: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Per-sample D of the configured pair and target."""
    if mi.pair == "eps":
        return dependence(mi, eps_hat, noise)
    if mi.target == "nearest":
        return dependence(mi, x0_hat, x0[nearest_other(x0_hat, x0)])
    return dependence(mi, x0_hat, x0)


def diffusion_loss(
    model: nn.Module,
    schedule: NoiseSchedule,
    x0: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    *,
    mi: MITerm | None = None,
    denoise: DenoiseTerm | None = None,
    y: torch.Tensor | None = None,
) -> LossTerms:
    """Loss terms for one batch at the given steps ``t`` and noise (and classes ``y`` for a
    class-conditional network)."""
    mi, denoise = mi or MITerm(), denoise or DenoiseTerm()
    x_t = schedule.q_sample(x0, t, noise)
    output = model(x_t, t) if y is None else model(x_t, t, y)
    snr = schedule.snr(t).to(output.device)
    target = schedule.target(x0, t, noise)
    per_sample = F.smooth_l1_loss(output, target, reduction="none").flatten(1).mean(dim=1)
    weights = denoise_weights(denoise, snr, schedule.prediction).to(per_sample.dtype)
    huber = (per_sample * weights).mean()
    with torch.set_grad_enabled(torch.is_grad_enabled() and mi.weight > 0):
        x0_hat = schedule.predict_x0(x_t, t, output)
        eps_hat = output if schedule.prediction == "eps" else schedule.predict_eps(x_t, t, x0_hat)
        steps = mi_step_weights(mi, t.to(snr.device), snr).to(huber.dtype)
        term = (_pair_dependence(mi, x0_hat, x0, eps_hat, noise) * steps).mean()
    if mi.weight == 0:
        return LossTerms(huber, huber, term.detach())
    scale = 1.0
    if mi.scale == "relative":
        scale = huber.detach() / term.detach().abs().clamp_min(1e-8)
    return LossTerms((1.0 - mi.weight) * huber + mi.weight * scale * term, huber, term)
