"""Focal loss (Lin et al. 2017) for the one HGG logit: torchvision's, mean over the batch.

FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t); alpha 0.25 and gamma 2 as in the study.
"""

from __future__ import annotations

import torch
from torchvision.ops import sigmoid_focal_loss

ALPHA, GAMMA = 0.25, 2.0


def focal_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, alpha: float = ALPHA, gamma: float = GAMMA
) -> torch.Tensor:
    return sigmoid_focal_loss(
        logits, labels.to(logits.dtype), alpha=alpha, gamma=gamma, reduction="mean"
    )
