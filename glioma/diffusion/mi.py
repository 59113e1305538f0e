"""Differentiable mutual information between two images, from a Parzen joint histogram.

The paper adds MI to the DDPM loss but does not print its estimator; this is our
reconstruction. Each pixel value v is softly assigned to K bin centres c_k with Gaussian
weights w_k(v) = exp(-(v - c_k)^2 / 2 sigma^2) / sum_j exp(-(v - c_j)^2 / 2 sigma^2). For a
pair of images a, b (all channels and pixels flattened, N values each), per sample:

    p(k, l) = 1/N sum_i w_k(a_i) w_l(b_i),   p(k) = sum_l p(k, l),   p(l) = sum_k p(k, l)
    MI(a, b) = sum_{k,l} p(k, l) log( p(k, l) / (p(k) p(l)) )      (nats)

It is near 0 for independent images, equals the (soft) entropy of a for identical images,
falls as noise is added, and is smooth in the pixel values, so gradients reach the network.
"""

from __future__ import annotations

import torch

DEFAULT_BINS = 16
EPS = 1e-10


def soft_bins(
    values: torch.Tensor, bins: int, *, low: float = -1.0, high: float = 1.0
) -> torch.Tensor:
    """(B, N) values -> (B, N, K) soft bin memberships summing to 1 over K."""
    centres = torch.linspace(low, high, bins, device=values.device, dtype=values.dtype)
    sigma = (high - low) / (bins - 1) * 0.5
    logits = -0.5 * ((values.unsqueeze(-1) - centres) / sigma) ** 2
    return torch.softmax(logits, dim=-1)


def mutual_information(a: torch.Tensor, b: torch.Tensor, bins: int = DEFAULT_BINS) -> torch.Tensor:
    """Per-sample MI (nats) between ``a`` and ``b`` of shape (B, ...); returns shape (B,)."""
    if a.shape != b.shape:
        raise ValueError(f"MI needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    a = a.reshape(a.shape[0], -1).float()
    b = b.reshape(b.shape[0], -1).float()
    wa, wb = soft_bins(a, bins), soft_bins(b, bins)
    joint = torch.einsum("bnk,bnl->bkl", wa, wb) / a.shape[1]
    pa = joint.sum(dim=2, keepdim=True)
    pb = joint.sum(dim=1, keepdim=True)
    return (joint * (torch.log(joint + EPS) - torch.log(pa * pb + EPS))).sum(dim=(1, 2))
