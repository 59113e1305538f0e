"""Differentiable mutual information between two images, from a Parzen joint histogram.

The paper adds MI to the DDPM loss but does not print its estimator; this is our
reconstruction. Each pixel value v is softly assigned to K bin centres c_k with Gaussian
weights w_k(v) = exp(-(v - c_k)^2 / 2 sigma^2) / sum_j exp(-(v - c_j)^2 / 2 sigma^2). For a
pair of images a, b (all channels and pixels flattened, N values each), per sample:

    p(k, l) = 1/N sum_i w_k(a_i) w_l(b_i),   p(k) = sum_l p(k, l),   p(l) = sum_k p(k, l)
    MI(a, b) = sum_{k,l} p(k, l) log( p(k, l) / (p(k) p(l)) )      (nats)

It is near 0 for independent images, equals the (soft) entropy of a for identical images,
falls as noise is added, and is smooth in the pixel values, so gradients reach the network.

Its scale depends on the histogram: MI <= min(H(a), H(b)) <= log K, so a weight that balances
it against the denoising loss at K = 16 bins does not at K = 32. The normalised MI (Studholme's
symmetric form, "symmetric uncertainty")

    NMI(a, b) = 2 MI(a, b) / (H(a) + H(b)),   H(a) = -sum_k p(k) log p(k)

lies in [0, 1] at any K (0: independent, 1: a is a bijective function of b), so ``mi_weight``
means the same at any histogram size.
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


def _joint(a: torch.Tensor, b: torch.Tensor, bins: int) -> torch.Tensor:
    """(B, K, K) soft joint histogram p(k, l) of two (B, ...) tensors."""
    if a.shape != b.shape:
        raise ValueError(f"MI needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    a = a.reshape(a.shape[0], -1).float()
    b = b.reshape(b.shape[0], -1).float()
    wa, wb = soft_bins(a, bins), soft_bins(b, bins)
    return torch.einsum("bnk,bnl->bkl", wa, wb) / a.shape[1]


def _mi_of_joint(joint: torch.Tensor) -> torch.Tensor:
    pa = joint.sum(dim=2, keepdim=True)
    pb = joint.sum(dim=1, keepdim=True)
    return (joint * (torch.log(joint + EPS) - torch.log(pa * pb + EPS))).sum(dim=(1, 2))


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * torch.log(p + EPS)).sum(dim=-1)


def mutual_information(a: torch.Tensor, b: torch.Tensor, bins: int = DEFAULT_BINS) -> torch.Tensor:
    """Per-sample MI (nats) between ``a`` and ``b`` of shape (B, ...); returns shape (B,)."""
    return _mi_of_joint(_joint(a, b, bins))


def normalised_mutual_information(
    a: torch.Tensor, b: torch.Tensor, bins: int = DEFAULT_BINS
) -> torch.Tensor:
    """Per-sample NMI = 2 MI / (H(a) + H(b)) in [0, 1] (module docstring); shape (B,)."""
    joint = _joint(a, b, bins)
    entropies = _entropy(joint.sum(dim=2)) + _entropy(joint.sum(dim=1))
    return (2.0 * _mi_of_joint(joint) / entropies.clamp_min(EPS)).clamp(0.0, 1.0)
